//! `medmesh dev`: a local mesh of provinces × 3 replicas and the federation's 3 replicas, as
//! separate processes on 127.0.0.1, loaded with demo data (persons, and non-local filings of
//! each province's persons for every other province).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use tokio::process::{Child, Command};

use crate::identity::Identity;
use crate::network::channel;
use crate::pb::admin_service_client::AdminServiceClient;
use crate::pb::StatusRequest;
use crate::pki::{Pki, Transport};

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
    /// Plaintext and no identity checks (a throwaway run; logged loudly).
    pub insecure: bool,
}

/// Address of replica `replica` (1–3) of province number `p` (from 1; 0 is the federation).
pub fn replica_addr(base_port: u16, p: usize, replica: u64) -> String {
    format!("127.0.0.1:{}", base_port as usize + 10 * p + replica as usize)
}

/// Environment variable through which a parent passes its pid to a replica it spawns; the
/// replica stops when its parent is gone.
pub const PARENT_PID_ENV: &str = "MEDMESH_PARENT_PID";

/// Resolves once this process's parent is no longer `parent` (it died and this process was
/// re-parented), checking once a second.
pub async fn parent_gone(parent: u32) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    loop {
        tick.tick().await;
        if std::os::unix::process::parent_id() != parent {
            return;
        }
    }
}

/// Registers handlers for SIGTERM, SIGINT and SIGHUP now; the future resolves with the name
/// of the first that arrives.
pub fn stop_signals() -> std::io::Result<impl std::future::Future<Output = &'static str>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut hup = signal(SignalKind::hangup())?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
            _ = hup.recv() => "SIGHUP",
        }
    })
}

/// Kills every child (SIGKILL: every acknowledged write is already on disk) and reaps it.
pub async fn stop_children(children: Vec<Child>) {
    let mut children = children;
    for c in &mut children {
        let _ = c.start_kill();
    }
    for mut c in children {
        let _ = c.wait().await;
    }
}

/// How far above its public port a replica of `medmesh dev`, of the tests and of the compose
/// mesh listens internally (Raft and admin).
pub const INTERNAL_PORT_OFFSET: u16 = 50;

/// The internal (Raft and admin) address of the replica whose public address is `addr`, by the
/// convention of `medmesh dev`, the tests and the compose mesh: same host, port
/// [`INTERNAL_PORT_OFFSET`] higher. A deployment may choose any other (`internal_listen`).
pub fn internal_of(addr: &str) -> anyhow::Result<String> {
    port_above(addr, INTERNAL_PORT_OFFSET)
}

/// `addr` with its port `offset` higher.
fn port_above(addr: &str, offset: u16) -> anyhow::Result<String> {
    let (host, port) = addr.rsplit_once(':').with_context(|| format!("{addr:?} is not host:port"))?;
    let port: u16 = port.parse().with_context(|| format!("{addr:?}: bad port"))?;
    let port = port.checked_add(offset).with_context(|| format!("{addr:?}: port too high"))?;
    Ok(format!("{host}:{port}"))
}

/// How far above its public port a replica of `medmesh dev` and of the tests serves its ops
/// listener (metrics): between the public and the internal ports, never one of them.
pub const OPS_PORT_OFFSET: u16 = 25;

/// The ops (metrics) address of the replica whose public address is `addr`, by the convention
/// of `medmesh dev` and the tests: same host, port [`OPS_PORT_OFFSET`] higher.
pub fn ops_of(addr: &str) -> anyhow::Result<String> {
    port_above(addr, OPS_PORT_OFFSET)
}

/// How far above its public port a replica of `medmesh dev` and of the tests serves the
/// HTTP/JSON gateway: above every public, ops and internal port of a mesh of up to seven
/// groups (the highest internal port is 113 above the base), and within the 200 ports the
/// tests reserve per mesh for groups 0 to 5.
pub const HTTP_PORT_OFFSET: u16 = 140;

/// The HTTP/JSON gateway address of the replica whose public address is `addr`, by the
/// convention of `medmesh dev` and the tests: same host, port [`HTTP_PORT_OFFSET`] higher.
pub fn http_of(addr: &str) -> anyhow::Result<String> {
    port_above(addr, HTTP_PORT_OFFSET)
}

/// Spawns one replica process of the `medmesh` binary `exe`, listening publicly on `listen`
/// and internally on [`internal_of`]`(listen)`; `peers` name the internal addresses. The replica stops when this
/// process ends (it gets this pid in `MEDMESH_PARENT_PID`) and is killed when its handle is
/// dropped.
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
        .env("MEDMESH_INTERNAL_LISTEN", internal_of(listen)?)
        .env("MEDMESH_OPS_LISTEN", ops_of(listen)?)
        .env("MEDMESH_HTTP_LISTEN", http_of(listen)?)
        .env("MEDMESH_DATA_DIR", data_dir.join("data"))
        .env("MEDMESH_PEERS", peers)
        // The replica ends itself when this process does (see `parent_gone`).
        .env(PARENT_PID_ENV, std::process::id().to_string())
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

/// Waits until every replica in `addrs` (public addresses; each is asked on its internal
/// listener, [`internal_of`]) reports the same leader, itself one of the replicas answering
/// (a just-killed leader is still reported until the others time it out); returns the
/// leader's public address as given in `addrs`.
pub async fn wait_for_leader(addrs: &[String], transport: &Transport, timeout: Duration) -> anyhow::Result<String> {
    let deadline = Instant::now() + timeout;
    loop {
        let mut seen = Vec::new();
        for a in addrs {
            if let Ok(ch) = channel(&internal_of(a)?, transport) {
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

/// One running group: its code, its leader's address and its replicas' addresses.
pub type RunningGroup = (String, String, Vec<String>);

/// The development certificate authority of a mesh's data directory (`{data_dir}/pki`).
pub fn dev_pki(data_dir: &Path) -> anyhow::Result<Pki> {
    Pki::open_or_create(&data_dir.join("pki"))
}

/// The directory secret of a development mesh: generated once, kept in
/// `{data_dir}/directory-secret`.
pub fn dev_directory_secret(data_dir: &Path) -> anyhow::Result<String> {
    let path = data_dir.join("directory-secret");
    if let Ok(s) = std::fs::read_to_string(&path) {
        if s.trim().len() >= 16 {
            return Ok(s.trim().to_string());
        }
    }
    std::fs::create_dir_all(data_dir)?;
    let secret = random_hex(32);
    std::fs::write(&path, &secret).with_context(|| format!("writing {}", path.display()))?;
    Ok(secret)
}

/// The dashboard's users of a development mesh: `national`, and `agency-{code}` for each of
/// `provinces`, with passwords generated once and kept in `{data_dir}/dashboard-passwords`
/// (`name password` lines, mode 0600); their argon2 hashes are written to
/// `{data_dir}/dashboard-users.toml`, whose path is returned with the names and passwords.
pub fn dev_dashboard_users(data_dir: &Path, provinces: &[&str]) -> anyhow::Result<(PathBuf, Vec<(String, String)>)> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::create_dir_all(data_dir)?;
    let pw_path = data_dir.join("dashboard-passwords");
    let kept: BTreeMap<String, String> = std::fs::read_to_string(&pw_path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| l.split_once(' ').map(|(n, p)| (n.to_string(), p.to_string())))
        .collect();
    let mut users = vec![("national".to_string(), String::new())];
    users.extend(provinces.iter().map(|p| (format!("agency-{p}"), (*p).to_string())));
    let mut out = Vec::new();
    let mut toml = String::from("# medmesh dev: the dashboard's users (passwords in dashboard-passwords)\n");
    for (name, province) in &users {
        let password = kept.get(name).cloned().unwrap_or_else(|| random_hex(16));
        let hash = crate::dashboard::auth::hash_password(&password)?;
        let role = if province.is_empty() { "national" } else { "agency" };
        toml.push_str(&format!(
            "[[user]]\nname = \"{name}\"\nrole = \"{role}\"\nprovince = \"{province}\"\npassword_hash = \"{hash}\"\n"
        ));
        out.push((name.clone(), password));
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(true)
        .mode(0o600)
        .open(&pw_path)
        .with_context(|| format!("writing {}", pw_path.display()))?;
    for (n, p) in &out {
        writeln!(f, "{n} {p}")?;
    }
    let users_path = dashboard_users_path(data_dir);
    std::fs::write(&users_path, toml).with_context(|| format!("writing {}", users_path.display()))?;
    Ok((users_path, out))
}

/// Where [`dev_dashboard_users`] writes the dashboard's users of a mesh under `data_dir`.
fn dashboard_users_path(data_dir: &Path) -> PathBuf {
    data_dir.join("dashboard-users.toml")
}

/// `n` random hexadecimal digits (development secrets and passwords).
fn random_hex(n: usize) -> String {
    use rand::Rng;
    (0..n).map(|_| format!("{:x}", rand::thread_rng().gen_range(0..16u8))).collect()
}

/// How a client of a development mesh in `data_dir` reaches it as `identity` (plaintext when
/// the mesh is insecure).
pub fn dev_transport(data_dir: &Path, identity: &Identity, insecure: bool) -> anyhow::Result<Transport> {
    if insecure {
        Ok(Transport::Insecure)
    } else {
        dev_pki(data_dir)?.transport(identity)
    }
}

/// The operator of group `group`.
pub fn operator(group: &str) -> anyhow::Result<Identity> {
    Ok(Identity::Operator { group: code(group)? })
}

/// The agency of `province`.
pub fn agency(province: &str) -> anyhow::Result<Identity> {
    Ok(Identity::Agency { province: code(province)? })
}

/// Institution `institution` of `province`.
pub fn institution(province: &str, institution: &str) -> anyhow::Result<Identity> {
    Ok(Identity::Institution {
        province: code(province)?,
        institution: medmesh_types::InstitutionId::new(institution.to_string())
            .map_err(|e| anyhow::anyhow!("institution: {e}"))?,
    })
}

fn code(p: &str) -> anyhow::Result<medmesh_types::ProvinceCode> {
    medmesh_types::ProvinceCode::new(p.to_string()).map_err(|e| anyhow::anyhow!("province {p:?}: {e}"))
}

/// The environment of replica `r` of `group` in a development mesh under `data_dir`: its
/// certificate (or plaintext when `insecure`), its province's seal key, the directory secret,
/// the group's public addresses `endpoints` and the federation's `federation` (for a province).
pub fn replica_env(
    data_dir: &Path,
    group: &str,
    r: u64,
    endpoints: &[String],
    federation: &[String],
    insecure: bool,
) -> anyhow::Result<Vec<(&'static str, String)>> {
    let pki = dev_pki(data_dir)?;
    let mut env = if insecure {
        let mut env = vec![("MEDMESH_INSECURE", "true".to_string())];
        env.extend(pki.seal_env(group)?);
        env
    } else {
        pki.replica_env(group, r, &[])?
    };
    env.push(("MEDMESH_DIRECTORY_SECRET", dev_directory_secret(data_dir)?));
    env.push(("MEDMESH_ENDPOINTS", endpoints.join(",")));
    if !insecure {
        env.push(("MEDMESH_DASHBOARD_USERS", dashboard_users_path(data_dir).display().to_string()));
    }
    if group != medmesh_state::FEDERATION {
        env.push(("MEDMESH_FEDERATION", federation.join(",")));
    }
    Ok(env)
}

/// Starts the federation and `provinces` as 3-replica groups of `exe` processes (group `g`,
/// the federation being 0, at `base_port + 10 g + r`), with data under `data_dir`; waits for
/// every leader, loads `persons` demo persons per province and files them for the others.
/// Returns the processes and the groups, the federation first.
pub async fn start_mesh(
    exe: &Path,
    provinces: &[&str],
    base_port: u16,
    data_dir: &Path,
    persons: u32,
    insecure: bool,
) -> anyhow::Result<(Vec<Child>, Vec<RunningGroup>)> {
    let mut children = Vec::new();
    let mut spawned = Vec::new();
    dev_dashboard_users(data_dir, provinces)?;
    let fed: Vec<String> = (1..=3).map(|r| replica_addr(base_port, 0, r)).collect();
    for (p, province) in std::iter::once(medmesh_state::FEDERATION).chain(provinces.iter().copied()).enumerate() {
        let addrs: Vec<String> = (1..=3).map(|r| replica_addr(base_port, p, r)).collect();
        let mut peers = Vec::new();
        for (i, a) in addrs.iter().enumerate() {
            peers.push(format!("{}={}", i + 1, internal_of(a)?));
        }
        let peers = peers.join(",");
        for r in 1..=3u64 {
            let dir = data_dir.join(format!("{province}-{r}"));
            let env = replica_env(data_dir, province, r, &addrs, &fed, insecure)?;
            children.push(spawn_replica(exe, province, r, &addrs[r as usize - 1], &peers, &dir, &env)?);
        }
        spawned.push((province.to_string(), addrs));
    }
    let codes: Vec<String> = provinces.iter().map(|c| c.to_string()).collect();
    let mut groups = Vec::new();
    for (i, (province, addrs)) in spawned.into_iter().enumerate() {
        let leader = wait_for_leader(
            &addrs,
            &dev_transport(data_dir, &operator(&province)?, insecure)?,
            Duration::from_secs(60),
        )
        .await?;
        if i > 0 {
            let agency = dev_transport(data_dir, &agency(&province)?, insecure)?;
            crate::demo::load(channel(&leader, &agency)?, &province, persons)
                .await
                .map_err(|s| anyhow::anyhow!("loading demo data of {province}: {}", s.message()))?;
            crate::demo::file(channel(&leader, &agency)?, &province, persons, &codes)
                .await
                .map_err(|s| anyhow::anyhow!("filing demo persons of {province}: {}", s.message()))?;
        }
        groups.push((province, leader, addrs));
    }
    Ok((children, groups))
}

/// Runs the local mesh until SIGTERM, SIGINT (Ctrl-C) or SIGHUP, then stops every replica it
/// started (the replicas also stop by themselves if this process dies).
pub async fn run(opts: DevOptions) -> anyhow::Result<()> {
    if opts.provinces == 0 || opts.provinces > crate::demo::PROVINCES.len() {
        bail!("--provinces: between 1 and {}", crate::demo::PROVINCES.len());
    }
    // Before any child exists, so that no signal finds this process without a handler.
    let stop = stop_signals().context("signal handlers")?;
    tokio::pin!(stop);
    let exe = std::env::current_exe()?;
    let codes: Vec<&str> = crate::demo::PROVINCES.iter().take(opts.provinces).copied().collect();
    let (children, groups) = tokio::select! {
        started = start_mesh(&exe, &codes, opts.base_port, &opts.data_dir, opts.persons, opts.insecure) => started?,
        sig = &mut stop => {
            // Dropping the half-started mesh kills the replicas spawned so far.
            eprintln!("medmesh dev: {sig} while starting; stopped");
            return Ok(());
        }
    };
    // The demo knowledge base and the shipped monitoring rules, in every province, before any
    // claim: what the dev mesh settles meets the rules as production would.
    for (province, leader, _) in groups.iter().filter(|(p, _, _)| p != medmesh_state::FEDERATION) {
        let agency = dev_transport(&opts.data_dir, &agency(province)?, opts.insecure)?;
        crate::demo::load_monitoring(channel(leader, &agency)?)
            .await
            .map_err(|s| anyhow::anyhow!("loading the monitoring rules of {province}: {}", s.message()))?;
        crate::demo::load_supervision(channel(leader, &agency)?, province)
            .await
            .map_err(|s| anyhow::anyhow!("loading the supervision records of {province}: {}", s.message()))?;
        crate::demo::publish_aggregates(channel(leader, &agency)?)
            .await
            .map_err(|s| anyhow::anyhow!("publishing the aggregates of {province}: {}", s.message()))?;
    }
    let provinces: Vec<String> = codes.iter().map(|c| c.to_string()).collect();
    println!(
        "medmesh dev: federation and {} provinces x 3 replicas, data in {}",
        groups.len() - 1,
        opts.data_dir.display()
    );
    for (province, _, addrs) in &groups {
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
        "internal listeners (Raft and AdminService, for replicas and operators): each replica's port + {INTERNAL_PORT_OFFSET}"
    );
    println!("ops listeners (Prometheus metrics at http://HOST:PORT/metrics): each replica's port + {OPS_PORT_OFFSET}");
    println!(
        "HTTP/JSON gateways for hospital systems (https://HOST:PORT/v1/transactions, /openapi.json): each replica's port + {HTTP_PORT_OFFSET}"
    );
    if let Some((_, _, addrs)) = groups.first().filter(|_| !opts.insecure) {
        println!(
            "dashboard for people: https://{}/dashboard/ (any replica's gateway); users national{}; passwords in {}",
            http_of(&addrs[0])?,
            provinces.iter().map(|p| format!(", agency-{p}")).collect::<String>(),
            opts.data_dir.join("dashboard-passwords").display()
        );
    }
    let pki = dev_pki(&opts.data_dir)?;
    if opts.insecure {
        println!("WARNING: insecure mesh: plaintext, no identities; anyone who reaches a port controls the fund");
    }
    println!("certificates (CA {}):", pki.ca_path().display());
    let mut identities = vec![Identity::National];
    for p in &provinces {
        identities.push(agency(p)?);
        identities.push(Identity::ReportOfficer { province: code(p)? });
        for n in 1..=2 {
            identities.push(institution(p, &crate::demo::institution(p, n))?);
        }
    }
    for g in std::iter::once(medmesh_state::FEDERATION).chain(provinces.iter().map(String::as_str)) {
        identities.push(operator(g)?);
    }
    for id in &identities {
        let f = pki.ensure(id, &[])?;
        println!("  {id}: --cert {} --key {}", f.cert.display(), f.key.display());
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
    let sig = stop.await;
    eprintln!("medmesh dev: {sig}; stopping {} replicas", children.len());
    stop_children(children).await;
    Ok(())
}
