//! Scale run (issue 15.3): a province of three replicas — real `medmesh` processes, RocksDB
//! with fsync, mTLS, next to a 3-replica federation as in production — is loaded with settled
//! claims through the hospital API, and measured at that size:
//!
//! 1. settle latency and rate of a short run while the province is empty;
//! 2. the load: `--claims` outpatient claims (register a visit, then settle it with its ten
//!    fee lines: `SettleRequest.lines`), from `--concurrency` clients, with a progress bar; a
//!    claim that fails is retried with the same serials (settlement is idempotent on them), so
//!    every claim is settled exactly once; the rate and each replica's resident memory are
//!    printed at every tenth of the load;
//! 3. each replica's resident memory (now and its peak) and disk size;
//! 4. settle latency and rate of the same short run at that size;
//! 5. the time to build a snapshot on the leader (`AdminService.Snapshot`) and its size;
//! 6. the time for a new, empty replica to join (`AdminService.AddReplica` waits until it has
//!    caught up: the snapshot sent, installed, and the log since applied), its memory and disk;
//! 7. the time for a follower, killed (`SIGKILL`), to serve again after a restart from disk,
//!    and to catch up with the leader.
//!
//! The replicas inherit this process's environment, so RocksDB's memory bounds are set as for
//! any replica: `MEDMESH_BLOCK_CACHE_MIB=32 medmesh-scale …`.
//!
//! Usage: `medmesh-scale [--claims 1000000] [--concurrency 256] [--persons 10000]
//! [--sample-seconds 10] [--base-port 7800] [--dir PATH]` (`--help` lists them).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Parser;
use indicatif::{ProgressBar, ProgressStyle};
use medmesh_node::demo;
use medmesh_node::dev::{self, start_mesh, stop_children};
use medmesh_node::network::channel;
use medmesh_node::pb;
use medmesh_node::pb::admin_service_client::AdminServiceClient;
use medmesh_node::pb::hospital_service_client::HospitalServiceClient;
use tokio::process::Child;
use tonic::transport::Channel;

/// Loads a province with settled claims and measures it at that size.
#[derive(Parser)]
#[command(name = "medmesh-scale", version)]
struct Args {
    /// Settled claims to load.
    #[arg(long, default_value_t = 1_000_000)]
    claims: u64,
    /// Concurrent hospital clients during the load.
    #[arg(long, default_value_t = 256)]
    concurrency: usize,
    /// Demo insured persons in the province (claims go round them).
    #[arg(long, default_value_t = 10_000)]
    persons: u32,
    /// Seconds of each latency sample (empty, then loaded), at 64 clients.
    #[arg(long, default_value_t = 10)]
    sample_seconds: u64,
    /// Replica r of group g listens on base_port + 10g + r.
    #[arg(long, default_value_t = 7800)]
    base_port: u16,
    /// Keep the replicas' data here (default: a temporary directory, removed at the end).
    #[arg(long)]
    dir: Option<PathBuf>,
}

const PROVINCE: &str = "110000";
/// Tries of one claim before the load gives up.
const TRIES: u32 = 50;

/// Resident memory of a process in KiB, now and at its peak (`VmRSS`, `VmHWM`).
fn rss_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// Bytes of the files under `path`, recursively.
fn disk_bytes(path: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(path) else { return 0 };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => disk_bytes(&e.path()),
            Ok(_) => e.metadata().map_or(0, |m| m.len()),
            Err(_) => 0,
        })
        .sum()
}

/// MiB with one decimal, in integers.
fn mib(bytes: u64) -> String {
    let tenths = bytes * 10 / (1 << 20);
    format!("{}.{}", tenths / 10, tenths % 10)
}

/// Seconds with two decimals, in integers.
fn secs(d: Duration) -> String {
    let hundredths = d.as_millis() / 10;
    format!("{}.{:02}", hundredths / 100, hundredths % 100)
}

/// Milliseconds with one decimal, in integers.
fn ms(d: Duration) -> String {
    let tenths = d.as_micros() / 100;
    format!("{}.{}", tenths / 10, tenths % 10)
}

/// The `per_mille`-th quantile of sorted latencies (nearest rank).
fn pct(sorted: &[Duration], per_mille: usize) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) * per_mille + 500) / 1000]
}

/// Registers and settles claim `n` (visit `V{tag}-{n}`, settlement `S{tag}-{n}`), retrying
/// with the same serials; answers the settle call's latency of the try that succeeded.
async fn claim(
    c: &mut HospitalServiceClient<Channel>,
    tag: &str,
    n: u64,
    persons: u32,
    day: &str,
) -> Result<Duration, tonic::Status> {
    let visit = format!("V{tag}-{n}");
    let person = (n % u64::from(persons)) as u32;
    let doctor = 1 + (n % 2) as u32;
    let mut tries = 0;
    loop {
        tries += 1;
        let r = async {
            c.register_visit(demo::visit_request(PROVINCE, &visit, person, doctor, day)).await?;
            let t = Instant::now();
            c.settle(demo::settle_request(PROVINCE, format!("S{tag}-{n}"), &visit, n, demo::fee_lines(n, day))).await?;
            Ok::<_, tonic::Status>(t.elapsed())
        }
        .await;
        match r {
            Ok(d) => return Ok(d),
            Err(e) if tries < TRIES && matches!(e.code(), tonic::Code::Unavailable | tonic::Code::DeadlineExceeded) => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(e) => return Err(e),
        }
    }
}

/// Settles claims from 64 clients for `seconds`; answers settlements/s and the settle call's
/// p50 and p99.
async fn sample(
    client: &HospitalServiceClient<Channel>,
    tag: &str,
    seconds: u64,
    persons: u32,
) -> anyhow::Result<String> {
    let day = demo::today();
    let start = Instant::now();
    let end = start + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for w in 0..64u64 {
        let (mut c, tag, day) = (client.clone(), tag.to_string(), day.clone());
        tasks.push(tokio::spawn(async move {
            let mut lat = Vec::new();
            let mut n = 0;
            while Instant::now() < end {
                n += 1;
                lat.push(claim(&mut c, &tag, w * 1_000_000 + n, persons, &day).await?);
            }
            Ok::<_, tonic::Status>(lat)
        }));
    }
    let mut all = Vec::new();
    for t in tasks {
        all.extend(t.await?.map_err(|e| anyhow::anyhow!("sample claim: {:?} {}", e.code(), e.message()))?);
    }
    let elapsed = start.elapsed();
    all.sort();
    let rate = all.len() as u128 * 1_000_000 / elapsed.as_micros().max(1);
    Ok(format!("{rate} settlements/s, settle p50 {} ms, p99 {} ms", ms(pct(&all, 500)), ms(pct(&all, 990))))
}

/// Each running replica's resident memory, "now/peak MiB" joined.
fn memory_line(pids: &[u32]) -> String {
    pids.iter()
        .map(|&p| {
            let (now, peak) = rss_kib(p);
            format!("{}/{}", mib(now << 10), mib(peak << 10))
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// This replica's Raft status (`None` if it does not answer within a second).
async fn status(admin: &AdminServiceClient<Channel>) -> Option<pb::StatusResponse> {
    match tokio::time::timeout(Duration::from_secs(1), admin.clone().status(pb::StatusRequest {})).await {
        Ok(Ok(s)) => Some(s.into_inner()),
        _ => None,
    }
}

/// Waits until the replica `admin` reaches has applied `index` (600 s at most); answers the
/// time since `since` and the index of the snapshot it holds.
async fn caught_up(admin: &AdminServiceClient<Channel>, index: u64, since: Instant) -> anyhow::Result<(Duration, u64)> {
    loop {
        if let Some(s) = status(admin).await {
            if s.last_applied >= index {
                return Ok((since.elapsed(), s.snapshot_index));
            }
        }
        if since.elapsed() > Duration::from_secs(600) {
            anyhow::bail!("the replica did not apply index {index} within 600 s");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let Args { claims, concurrency, persons, sample_seconds, base_port: base, dir } = Args::parse();
    let exe: PathBuf = std::env::current_exe()?.parent().unwrap().join("medmesh");
    let temp = tempfile::tempdir()?;
    let root = dir.unwrap_or_else(|| temp.path().to_path_buf());
    let t = Instant::now();
    // Serials of this run: a run over the data of an earlier one (`--dir`) never replays them.
    let run = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_secs();
    let (mut children, groups) = start_mesh(&exe, &[PROVINCE], base, &root, persons, false).await?;
    let addrs = groups[1].2.clone();
    let fed = groups[0].2.clone();
    eprintln!(
        "province {PROVINCE} ready with {persons} persons in {} s; data under {}",
        secs(t.elapsed()),
        root.display()
    );
    let hospital = dev::institution(PROVINCE, &demo::institution(PROVINCE, 1))?;
    let client = HospitalServiceClient::new(channel(&groups[1].1, &dev::dev_transport(&root, &hospital, false)?)?);
    let operator = dev::dev_transport(&root, &dev::operator(PROVINCE)?, false)?;
    let admins: Vec<AdminServiceClient<Channel>> = addrs
        .iter()
        .map(|a| Ok(AdminServiceClient::new(channel(&dev::internal_of(a)?, &operator)?)))
        .collect::<anyhow::Result<_>>()?;
    // The province's replicas are the last three children (the federation's come first).
    let pids: Vec<u32> = children[3..].iter().filter_map(Child::id).collect();

    println!("empty province: {}", sample(&client, &format!("E{run}"), sample_seconds, persons).await?);

    // The load.
    let bar = ProgressBar::new(claims).with_style(
        ProgressStyle::with_template(
            "{elapsed_precise} [{bar:40}] {human_pos}/{human_len} claims, {per_sec}, eta {eta} {msg}",
        )?
        .progress_chars("=> "),
    );
    let next = Arc::new(AtomicU64::new(0));
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..concurrency {
        let (mut c, next, bar, day, tag) =
            (client.clone(), next.clone(), bar.clone(), demo::today(), format!("L{run}"));
        workers.push(tokio::spawn(async move {
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= claims {
                    return Ok::<_, tonic::Status>(());
                }
                claim(&mut c, &tag, n, persons, &day).await?;
                bar.inc(1);
            }
        }));
    }
    let watch = {
        let (bar, pids) = (bar.clone(), pids.clone());
        tokio::spawn(async move {
            let mut mark = claims / 10;
            let (mut last_n, mut last_t) = (0u64, Instant::now());
            loop {
                tokio::time::sleep(Duration::from_secs(2)).await;
                let n = bar.position();
                bar.set_message(format!("RSS MiB now/peak: {}", memory_line(&pids)));
                if n >= mark.max(1) {
                    let rate = u128::from(n - last_n) * 1000 / last_t.elapsed().as_millis().max(1);
                    let line = format!(
                        "{n} claims: {rate} claims/s since the last line; RSS MiB now/peak {}",
                        memory_line(&pids)
                    );
                    // A hidden bar (output not a terminal) prints nothing, not even these lines.
                    if bar.is_hidden() {
                        println!("{line}");
                    } else {
                        bar.println(line);
                    }
                    (last_n, last_t) = (n, Instant::now());
                    mark += claims / 10;
                }
                if n >= claims {
                    return;
                }
            }
        })
    };
    for w in workers {
        w.await?.map_err(|e| anyhow::anyhow!("a claim failed {TRIES} times: {:?} {}", e.code(), e.message()))?;
    }
    let load_time = started.elapsed();
    watch.abort();
    bar.finish();
    println!(
        "loaded {claims} claims in {} s = {} claims/s ({concurrency} clients)",
        secs(load_time),
        u128::from(claims) * 1000 / load_time.as_millis().max(1)
    );

    // Memory and disk at size.
    let leader = loop {
        if let Some(s) = status(&admins[0]).await {
            if s.leader_id != 0 {
                break s.leader_id;
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    for (r, &pid) in pids.iter().enumerate() {
        let (now, peak) = rss_kib(pid);
        let dir = root.join(format!("{PROVINCE}-{}", r + 1)).join("data");
        println!(
            "replica {}{}: RSS {} MiB (peak {} MiB); disk {} MiB (RocksDB {} MiB, snapshot {} MiB)",
            r + 1,
            if r as u64 + 1 == leader { " (leader)" } else { "" },
            mib(now << 10),
            mib(peak << 10),
            mib(disk_bytes(&dir)),
            mib(disk_bytes(&dir.join("db"))),
            mib(disk_bytes(&dir.join("snapshot")))
        );
    }

    println!("at {claims} claims: {}", sample(&client, &format!("F{run}"), sample_seconds, persons).await?);

    // A snapshot built on the leader.
    let li = leader as usize - 1;
    let t = Instant::now();
    let snap = admins[li].clone().snapshot(pb::SnapshotRequest {}).await?.into_inner();
    let snap_dir = root.join(format!("{PROVINCE}-{leader}")).join("data").join("snapshot");
    println!(
        "snapshot on the leader: built in {} s, covers index {}, {} MiB",
        secs(t.elapsed()),
        snap.snapshot_index,
        mib(disk_bytes(&snap_dir))
    );

    // A new replica joins: the snapshot is sent, installed, and the log since applied.
    let addr4 = dev::replica_addr(base, 1, 4);
    let peers = String::new();
    let mut env = dev::replica_env(&root, PROVINCE, 4, &addrs, &fed, false)?;
    env.push(("MEDMESH_BOOTSTRAP", "false".into()));
    let dir4 = root.join(format!("{PROVINCE}-4"));
    let target = status(&admins[li]).await.map_or(0, |s| s.last_applied);
    let t = Instant::now();
    let child4 = dev::spawn_replica(&exe, PROVINCE, 4, &addr4, &peers, &dir4, &env)?;
    let pid4 = child4.id().unwrap_or(0);
    children.push(child4);
    admins[li]
        .clone()
        .add_replica(pb::AddReplicaRequest {
            replica: Some(pb::Replica { id: 4, addr: dev::internal_of(&addr4)? }),
            voter: false,
        })
        .await?;
    let admin4 = AdminServiceClient::new(channel(&dev::internal_of(&addr4)?, &operator)?);
    let (joined, installed) = caught_up(&admin4, target, t).await?;
    let (now, peak) = rss_kib(pid4);
    println!(
        "a new replica caught up (index {target}; a snapshot of index {installed} sent and installed, the log since applied) in {} s; RSS {} MiB (peak {} MiB), disk {} MiB",
        secs(joined),
        mib(now << 10),
        mib(peak << 10),
        mib(disk_bytes(&dir4.join("data")))
    );
    admins[li].clone().remove_replica(pb::RemoveReplicaRequest { id: 4 }).await?;

    // A follower killed and restarted from disk.
    let follower = (1..=3u64).find(|&r| r != leader).unwrap_or(1);
    let fi = follower as usize - 1;
    let target = status(&admins[li]).await.map_or(0, |s| s.last_applied);
    let child = &mut children[3 + fi];
    child.start_kill()?;
    child.wait().await?;
    let mut peers = Vec::new();
    for (i, a) in addrs.iter().enumerate() {
        peers.push(format!("{}={}", i + 1, dev::internal_of(a)?));
    }
    let env = dev::replica_env(&root, PROVINCE, follower, &addrs, &fed, false)?;
    let t = Instant::now();
    let restarted = dev::spawn_replica(
        &exe,
        PROVINCE,
        follower,
        &addrs[fi],
        &peers.join(","),
        &root.join(format!("{PROVINCE}-{follower}")),
        &env,
    )?;
    children[3 + fi] = restarted;
    let (answering, _) = caught_up(&admins[fi], 0, t).await?;
    let (done, _) = caught_up(&admins[fi], target, t).await?;
    println!(
        "a follower killed and restarted from disk: answering after {} s, caught up (index {target}) after {} s",
        secs(answering),
        secs(done)
    );
    stop_children(children).await;
    Ok(())
}
