//! `medmesh dev`: a local mesh of provinces × 3 replicas and the federation's 3 replicas, as
//! separate processes on 127.0.0.1, loaded with demo data (persons, and non-local filings of
//! each province's persons for every other province).

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use tokio::process::{Child, Command};

use crate::network::channel;
use crate::pb::admin_service_client::AdminServiceClient;
use crate::pb::StatusRequest;

/// Options of the local mesh.
#[derive(Debug, Clone)]
pub struct DevOptions {
    /// Number of provinces (1–6).
    pub provinces: usize,
    /// Replica `r` of province `p` (both from 1) listens on `base_port + 10 p + r`.
    pub base_port: u16,
    /// Where replicas keep their data and logs.
    pub data_dir: PathBuf,
    /// Demo insured persons per province.
    pub persons: u32,
}

/// Address of replica `replica` (1–3) of province number `p` (from 1; 0 is the federation).
pub fn replica_addr(base_port: u16, p: usize, replica: u64) -> String {
    format!("127.0.0.1:{}", base_port as usize + 10 * p + replica as usize)
}

/// Spawns one replica process of the `medmesh` binary `exe`.
pub fn spawn_replica(
    exe: &Path,
    province: &str,
    id: u64,
    listen: &str,
    peers: &str,
    data_dir: &Path,
    extra_env: &[(&str, String)],
) -> anyhow::Result<Child> {
    std::fs::create_dir_all(data_dir).with_context(|| format!("creating {}", data_dir.display()))?;
    let log = std::fs::OpenOptions::new().create(true).append(true).open(data_dir.join("replica.log"))?;
    let mut cmd = Command::new(exe);
    cmd.arg("node")
        .env("MEDMESH_ID", id.to_string())
        .env("MEDMESH_PROVINCE", province)
        .env("MEDMESH_LISTEN", listen)
        .env("MEDMESH_DATA_DIR", data_dir.join("data"))
        .env("MEDMESH_PEERS", peers)
        .env("RUST_LOG", std::env::var("RUST_LOG").unwrap_or_else(|_| "info,openraft=warn".into()))
        .stdin(Stdio::null())
        .stdout(log.try_clone()?)
        .stderr(log)
        .kill_on_drop(true);
    for (k, v) in extra_env {
        cmd.env(k, v);
    }
    cmd.spawn().context("spawning replica")
}

/// Waits until every replica in `addrs` reports the same leader, itself one of the replicas
/// answering at `addrs` (a just-killed leader is still reported until the others time it out);
/// returns the leader's address as given in `addrs`.
pub async fn wait_for_leader(addrs: &[String], timeout: Duration) -> anyhow::Result<String> {
    let deadline = Instant::now() + timeout;
    loop {
        let mut seen = Vec::new();
        for a in addrs {
            if let Ok(ch) = channel(a) {
                let mut c = AdminServiceClient::new(ch);
                if let Ok(Ok(s)) = tokio::time::timeout(Duration::from_millis(500), c.status(StatusRequest {})).await {
                    let s = s.into_inner();
                    seen.push((s.id, a.clone(), s.leader_id));
                }
            }
        }
        let agreed = seen.len() == addrs.len() && seen.iter().all(|s| s.2 != 0 && s.2 == seen[0].2);
        if agreed {
            if let Some((_, addr, _)) = seen.iter().find(|s| s.0 == seen[0].2) {
                return Ok(addr.clone());
            }
        }
        if Instant::now() > deadline {
            bail!("no agreed leader among {addrs:?} within {timeout:?}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Runs the local mesh until Ctrl-C.
pub async fn run(opts: DevOptions) -> anyhow::Result<()> {
    if opts.provinces == 0 || opts.provinces > crate::demo::PROVINCES.len() {
        bail!("--provinces: between 1 and {}", crate::demo::PROVINCES.len());
    }
    let exe = std::env::current_exe()?;
    let mut children = Vec::new();
    let mut groups = Vec::new();
    let fed: Vec<String> = (1..=3).map(|r| replica_addr(opts.base_port, 0, r)).collect();
    let fed_env = [("MEDMESH_FEDERATION", fed.join(","))];
    let codes =
        std::iter::once(medmesh_state::FEDERATION).chain(crate::demo::PROVINCES.iter().take(opts.provinces).copied());
    for (p, province) in codes.enumerate() {
        let addrs: Vec<String> = (1..=3).map(|r| replica_addr(opts.base_port, p, r)).collect();
        let peers = addrs.iter().enumerate().map(|(i, a)| format!("{}={a}", i + 1)).collect::<Vec<_>>().join(",");
        for r in 1..=3u64 {
            let dir = opts.data_dir.join(format!("{province}-{r}"));
            let env: &[(&str, String)] = if p == 0 { &[] } else { &fed_env };
            children.push(spawn_replica(&exe, province, r, &addrs[r as usize - 1], &peers, &dir, env)?);
        }
        groups.push((province.to_string(), addrs));
    }
    let provinces: Vec<String> = groups.iter().skip(1).map(|g| g.0.clone()).collect();
    wait_for_leader(&groups[0].1, Duration::from_secs(60)).await?;
    for (province, addrs) in groups.iter().skip(1) {
        let leader = wait_for_leader(addrs, Duration::from_secs(60)).await?;
        crate::demo::load(channel(&leader)?, province, opts.persons)
            .await
            .map_err(|s| anyhow::anyhow!("loading demo data of {province}: {}", s.message()))?;
        crate::demo::file(channel(&leader)?, province, opts.persons, &provinces)
            .await
            .map_err(|s| anyhow::anyhow!("filing demo persons of {province}: {}", s.message()))?;
    }
    println!(
        "medmesh dev: federation and {} provinces x 3 replicas, data in {}",
        groups.len() - 1,
        opts.data_dir.display()
    );
    for (province, addrs) in &groups {
        for (i, a) in addrs.iter().enumerate() {
            let group = if province == medmesh_state::FEDERATION {
                "federation".to_string()
            } else {
                format!("province {province}")
            };
            println!("{group} replica {}: {a}", i + 1);
        }
    }
    println!(
        "demo institution {} doctor {} person card {}",
        crate::demo::institution("110000", 1),
        crate::demo::doctor("110000", 1),
        crate::demo::ss_card("110000", 1)
    );
    if provinces.len() > 1 {
        println!(
            "non-local demo: person card {} (insured in {}, filed for care everywhere) at institution {}",
            crate::demo::ss_card(&provinces[1], 1),
            provinces[1],
            crate::demo::institution(&provinces[0], 1)
        );
    }
    println!("ready; press Ctrl-C to stop");
    tokio::signal::ctrl_c().await?;
    for mut c in children {
        let _ = c.start_kill();
        let _ = c.wait().await;
    }
    Ok(())
}
