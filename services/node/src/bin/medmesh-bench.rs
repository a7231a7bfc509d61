//! Settlement benchmark: starts the federation and two provinces, each a 3-replica group of
//! real `medmesh` processes (RocksDB with fsync on), loads demo data and filings, then drives
//! realistic claims — register a visit, upload ten fee lines of mixed classes, settle — from
//! many concurrent hospital clients at a hospital of 110000, and reports settlements/s and
//! p50/p99 latency: first for patients insured in 110000 (local), then, in the same run, for
//! patients insured in 310000 (non-local: a two-phase transfer through the federation).
//!
//! With `--etcd PATH`, the same run first starts a 3-member etcd cluster (that binary, members on
//! loopback with their data in the same temporary directory as the mesh's, default fsync, mTLS
//! between members and to the client with a certificate of the bench's CA), drives 1 KiB puts
//! at each concurrency over gRPC (`etcdserverpb.KV/Put`, one HTTP/2 connection as for the
//! mesh), stops it, then runs the mesh, and prints one table side by side
//! (`scripts/bench-vs-etcd.sh`).
//!
//! Usage: `medmesh-bench [--seconds 15] [--concurrency 64,256] [--persons 2000] [--base-port 7600]
//! [--mode both|local|nonlocal] [--rules] [--etcd /usr/bin/etcd] [--settle-lines]` (`--help` lists them).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use medmesh_node::demo;
use medmesh_node::dev::{self, start_mesh, stop_children};
use medmesh_node::network::channel;
use medmesh_node::pb;
use medmesh_node::pb::admin_service_client::AdminServiceClient;
use medmesh_node::pb::hospital_service_client::HospitalServiceClient;
use tokio::sync::Mutex;

/// Settlement benchmark against a local mesh of real `medmesh` processes (the federation and
/// two provinces, 3 replicas each, RocksDB with fsync on).
#[derive(Parser)]
#[command(name = "medmesh-bench", version)]
struct Args {
    /// Seconds each phase drives claims.
    #[arg(long, default_value_t = 15)]
    seconds: u64,
    /// Concurrent hospital clients (and etcd clients); a comma-separated list runs each.
    #[arg(long, value_delimiter = ',', default_value = "256")]
    concurrency: Vec<usize>,
    /// Demo insured persons per province.
    #[arg(long, default_value_t = 2000)]
    persons: u32,
    /// Replica r of group g listens on base_port + 10g + r.
    #[arg(long, default_value_t = 7600)]
    base_port: u16,
    /// Which phases run.
    #[arg(long, value_enum, default_value_t = Mode::Both)]
    mode: Mode,
    /// Run the mesh in plaintext without identity checks (to measure what mTLS costs).
    #[arg(long)]
    insecure: bool,
    /// Record the demo knowledge base and every shipped monitoring rule in the treatment
    /// province first (to measure what monitoring before payment costs).
    #[arg(long)]
    rules: bool,
    /// An etcd binary (Debian's etcd-server: /usr/bin/etcd): measure a 3-member etcd cluster
    /// with 1 KiB puts first, in the same run, and print the two side by side.
    #[arg(long)]
    etcd: Option<PathBuf>,
    /// Send each claim's fee lines with its Settle call (`SettleRequest.lines`: register +
    /// settle, two calls and two commands) instead of a separate UploadFees.
    #[arg(long)]
    settle_lines: bool,
}

/// Which phases run.
#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Mode {
    /// Local, then non-local.
    Both,
    /// Patients insured in the treatment province only.
    Local,
    /// Patients insured in another province only.
    Nonlocal,
}

/// Whole-claim latencies, settle-call latencies, errors by status code.
type Totals = (Vec<Duration>, Vec<Duration>, std::collections::BTreeMap<String, u64>);

/// The `per_mille`-th quantile of sorted latencies (nearest rank, integer maths).
fn pct(sorted: &[Duration], per_mille: usize) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) * per_mille + 500) / 1000]
}

/// Milliseconds with one decimal, without floats.
fn ms(d: Duration) -> String {
    let tenths = d.as_micros() / 100;
    format!("{}.{}", tenths / 10, tenths % 10)
}

const TREATMENT: &str = "110000";
const INSURED: &str = "310000";

/// One phase's figures for the side-by-side table: (rate per second, p50, p99, errors,
/// settlements).
type Figures = (u128, Duration, Duration, u64, u64);

/// The last log index of the replica `admin` reaches (0 if it does not answer).
async fn last_log_index(admin: &AdminServiceClient<tonic::transport::Channel>) -> u64 {
    admin.clone().status(pb::StatusRequest {}).await.map_or(0, |s| s.into_inner().last_log_index)
}

/// Prints how many Raft entries the treatment province's leader appended during a phase, and
/// how many of the phase's commands (three per settlement, two with `--settle-lines`) each carried
/// on average.
fn entries(label: &str, before: u64, after: u64, settlements: u64, commands_per_claim: u64) {
    let n = after.saturating_sub(before);
    let per_entry = (settlements * commands_per_claim * 10).checked_div(n).unwrap_or(0);
    println!(
        "{label} Raft entries appended by {TREATMENT}'s leader: {n} ({}.{} settlement commands per entry)",
        per_entry / 10,
        per_entry % 10
    );
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let Args { seconds, concurrency, persons, base_port: base, mode, insecure, rules, etcd, settle_lines } =
        Args::parse();
    let exe: PathBuf = std::env::current_exe()?.parent().unwrap().join("medmesh");
    let root = tempfile::tempdir()?;
    let mut etcd_figures = Vec::new();
    if let Some(bin) = &etcd {
        let cluster = etcd::start(bin, root.path(), base.saturating_sub(400)).await?;
        for &c in &concurrency {
            let (mut lat, errors, elapsed) = etcd::run(&cluster, seconds, c).await?;
            lat.sort();
            let rate = lat.len() as u128 * 1_000_000 / elapsed.as_micros().max(1);
            println!(
                "etcd puts at {c} clients: {} in {} ms = {rate} puts/s, p50 {} ms, p99 {} ms ({errors} errors)",
                lat.len(),
                ms(elapsed),
                ms(pct(&lat, 500)),
                ms(pct(&lat, 990))
            );
            etcd_figures.push((rate, pct(&lat, 500), pct(&lat, 990), errors, lat.len() as u64));
        }
        cluster.stop().await;
    }
    let (children, groups) = start_mesh(&exe, &[TREATMENT, INSURED], base, root.path(), persons, insecure).await?;
    let hospital = dev::institution(TREATMENT, &demo::institution(TREATMENT, 1))?;
    let client =
        HospitalServiceClient::new(channel(&groups[1].1, &dev::dev_transport(root.path(), &hospital, insecure)?)?);
    if rules {
        let agency = dev::agency(TREATMENT)?;
        demo::load_monitoring(channel(&groups[1].1, &dev::dev_transport(root.path(), &agency, insecure)?)?).await?;
    }
    let security = if insecure { "plaintext, no identities" } else { "mTLS" };
    let monitoring = if rules { "all shipped monitoring rules" } else { "no monitoring rules" };
    eprintln!(
        "mesh ready (federation, {TREATMENT}, {INSURED}; {security}; {monitoring}); {seconds}s per phase, {concurrency:?} concurrent claims"
    );
    let (mut local, mut nonlocal) = (Vec::new(), Vec::new());
    // The treatment province's leader, asked for its last log index around each phase: how
    // many Raft entries (each fsync'd before it counts) carried the phase's commands.
    let operator = dev::dev_transport(root.path(), &dev::operator(TREATMENT)?, insecure)?;
    let leader_admin = AdminServiceClient::new(channel(&dev::internal_of(&groups[1].1)?, &operator)?);
    for &c in &concurrency {
        for (kind, insured, figures) in [("local", TREATMENT, &mut local), ("non-local", INSURED, &mut nonlocal)] {
            if (kind == "local" && mode == Mode::Nonlocal) || (kind == "non-local" && mode == Mode::Local) {
                continue;
            }
            let before = last_log_index(&leader_admin).await;
            let label = format!("{kind} at {c} clients,");
            let f = report(&label, run(client.clone(), insured, seconds, c, persons, c, settle_lines).await?);
            entries(&label, before, last_log_index(&leader_admin).await, f.4, if settle_lines { 2 } else { 3 });
            figures.push(f);
        }
    }
    stop_children(children).await;
    if etcd.is_some() {
        side_by_side(&concurrency, &etcd_figures, &local, &nonlocal);
    }
    if std::env::var_os("MEDMESH_BENCH_KEEP").is_some() {
        eprintln!("replica data and logs kept in {}", root.keep().display());
    }
    Ok(())
}

/// Runs claims of persons insured in `insured` at institution 1 of [`TREATMENT`]; `phase`
/// keeps the serials of one phase apart from another's.
async fn run(
    client: HospitalServiceClient<tonic::transport::Channel>,
    insured: &'static str,
    seconds: u64,
    concurrency: usize,
    persons: u32,
    phase: usize,
    one_call: bool,
) -> anyhow::Result<(Totals, Duration)> {
    let province = TREATMENT;
    let inst = demo::institution(province, 1);
    let day = demo::today();
    let totals: Arc<Mutex<Totals>> = Arc::default();
    let start = Instant::now();
    let end = start + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for w in 0..concurrency {
        let mut c = client.clone();
        let (inst, day, totals) = (inst.clone(), day.clone(), totals.clone());
        tasks.push(tokio::spawn(async move {
            let (mut claim_lat, mut settle_lat) = (Vec::new(), Vec::new());
            let mut errors = std::collections::BTreeMap::<String, u64>::new();
            let mut n = 0u64;
            while Instant::now() < end {
                n += 1;
                let id = w as u64 * 1_000_000 + n;
                let t0 = Instant::now();
                let visit = format!("V{insured}-{phase}-{id}");
                // Consecutive claims of all clients go to consecutive persons, cycling through
                // the demo persons (odd ones, which are filed for non-local care: 4k+1 and
                // 4k+3). Until 2026-12-07 the person was `id % persons`, and as `id` steps by a
                // million per client, all clients billed the same few hundred persons at once.
                let odd = (u64::from(persons) / 2).max(1);
                let person = (((n * concurrency as u64 + w as u64) % odd) * 2 + 1) as u32;
                let ok = async {
                    c.register_visit(demo::nonlocal_visit_request(province, insured, &visit, person, 1, &day)).await?;
                    let mut lines = demo::fee_lines(id, &day);
                    if !one_call {
                        c.upload_fees(pb::UploadFeesRequest {
                            institution_id: inst.clone(),
                            visit_serial: visit.clone(),
                            lines: std::mem::take(&mut lines),
                        })
                        .await?;
                    }
                    let t1 = Instant::now();
                    c.settle(demo::settle_request(province, format!("S{insured}-{phase}-{id}"), &visit, id, lines))
                        .await?;
                    Ok::<_, tonic::Status>(t1.elapsed())
                }
                .await;
                match ok {
                    Ok(s) => {
                        settle_lat.push(s);
                        claim_lat.push(t0.elapsed());
                    }
                    Err(e) => {
                        let n = errors.entry(format!("{:?}", e.code())).or_default();
                        if *n == 0 && w < 4 {
                            eprintln!("first {:?} error of client {w}: {}", e.code(), e.message());
                        }
                        *n += 1;
                    }
                }
            }
            let mut t = totals.lock().await;
            t.0.extend(claim_lat);
            t.1.extend(settle_lat);
            for (code, n) in errors {
                *t.2.entry(code).or_default() += n;
            }
        }));
    }
    for t in tasks {
        t.await?;
    }
    let elapsed = start.elapsed();
    let t = std::mem::take(&mut *totals.lock().await);
    Ok((t, elapsed))
}

/// Prints a phase and answers its figures (settlements/s and the settle call's p50 and p99).
fn report(label: &str, (mut t, elapsed): (Totals, Duration)) -> Figures {
    t.0.sort();
    t.1.sort();
    let n = t.0.len();
    let rate = n as u128 * 1_000_000 / elapsed.as_micros().max(1);
    let errors: u64 = t.2.values().sum();
    let figures = (rate, pct(&t.1, 500), pct(&t.1, 990), errors, n as u64);
    println!("{label} settlements: {n} in {} ms = {rate} settlements/s ({errors} errors {:?})", ms(elapsed), t.2);
    println!(
        "{label} whole claim (register, 10 lines, settle): p50 {} ms, p99 {} ms",
        ms(pct(&t.0, 500)),
        ms(pct(&t.0, 990))
    );
    println!("{label} settle call alone: p50 {} ms, p99 {} ms", ms(pct(&t.1, 500)), ms(pct(&t.1, 990)));
    figures
}

/// `a / b` with two decimals, in integers.
fn ratio(a: u128, b: u128) -> String {
    let hundredths = (a * 100 + b.max(1) / 2) / b.max(1);
    format!("{}.{:02}", hundredths / 100, hundredths % 100)
}

/// The table of `scripts/bench-vs-etcd.sh`: a row per concurrency. A claim is three commands
/// (register, upload ten lines, settle), each one Raft entry fsync'd on a majority.
fn side_by_side(concurrency: &[usize], etcd: &[Figures], local: &[Figures], nonlocal: &[Figures]) {
    println!();
    println!("| clients | etcd puts/s | put p50 / p99 ms | medmesh commands/s | local settlements/s | settle p50 / p99 ms | settlements ÷ puts | non-local settlements/s | settle p50 / p99 ms | errors (etcd, local, non-local) |");
    println!("|---|---|---|---|---|---|---|---|---|---|");
    for (i, c) in concurrency.iter().enumerate() {
        let e = etcd.get(i).copied().unwrap_or_default();
        let l = local.get(i).copied().unwrap_or_default();
        let n = nonlocal.get(i).copied().unwrap_or_default();
        println!(
            "| {c} | {} | {} / {} | {} | {} | {} / {} | {} | {} | {} / {} | {}, {}, {} |",
            e.0,
            ms(e.1),
            ms(e.2),
            l.0 * 3,
            l.0,
            ms(l.1),
            ms(l.2),
            ratio(l.0, e.0),
            n.0,
            ms(n.1),
            ms(n.2),
            e.3,
            l.3,
            n.3
        );
    }
}

/// A 3-member etcd cluster on loopback, for the side-by-side run.
mod etcd {
    use std::path::Path;
    use std::time::{Duration, Instant};

    use medmesh_node::identity::Identity;
    use medmesh_node::pki::{Pki, Transport};
    use tonic::codegen::http::uri::PathAndQuery;
    use tonic::transport::Channel;

    /// `etcdserverpb.PutRequest`: only the fields a put needs.
    #[derive(Clone, PartialEq, prost::Message)]
    struct PutRequest {
        #[prost(bytes = "vec", tag = "1")]
        key: Vec<u8>,
        #[prost(bytes = "vec", tag = "2")]
        value: Vec<u8>,
    }

    /// `etcdserverpb.PutResponse`: its fields are not read.
    #[derive(Clone, PartialEq, prost::Message)]
    struct PutResponse {}

    /// The running members and a channel to the first.
    pub struct Cluster {
        children: Vec<tokio::process::Child>,
        channel: Channel,
    }

    impl Cluster {
        /// Stops every member.
        pub async fn stop(mut self) {
            for c in &mut self.children {
                let _ = c.start_kill();
                let _ = c.wait().await;
            }
        }
    }

    async fn put(channel: &Channel, key: Vec<u8>, value: Vec<u8>) -> Result<(), tonic::Status> {
        let mut grpc = tonic::client::Grpc::new(channel.clone());
        grpc.ready().await.map_err(|e| tonic::Status::unavailable(e.to_string()))?;
        let codec = tonic_prost::ProstCodec::<PutRequest, PutResponse>::default();
        grpc.unary(
            tonic::Request::new(PutRequest { key, value }),
            PathAndQuery::from_static("/etcdserverpb.KV/Put"),
            codec,
        )
        .await
        .map(|_| ())
    }

    /// Starts members 1 to 3 of `bin` under `root`, client ports `base + 1..3`, peer ports
    /// `base + 11..13`, with mTLS from a CA of its own; waits until a put succeeds.
    pub async fn start(bin: &Path, root: &Path, base: u16) -> anyhow::Result<Cluster> {
        let pki = Pki::open_or_create(&root.join("etcd-pki"))?;
        // Any certificate of the CA serves: etcd checks only that the CA signed it.
        let files = pki.ensure(&Identity::Operator { group: medmesh_types::ProvinceCode::new("000000")? }, &[])?;
        let peers: Vec<String> = (1..=3).map(|i| format!("m{i}=https://127.0.0.1:{}", base + 10 + i)).collect();
        let mut children = Vec::new();
        for i in 1..=3u16 {
            let dir = root.join(format!("etcd-{i}"));
            std::fs::create_dir_all(&dir)?;
            let log = std::fs::File::create(dir.join("etcd.log"))?;
            let client = format!("https://127.0.0.1:{}", base + i);
            let peer = format!("https://127.0.0.1:{}", base + 10 + i);
            let mut cmd = tokio::process::Command::new(bin);
            cmd.arg(format!("--name=m{i}"))
                .arg(format!("--data-dir={}", dir.join("data").display()))
                .arg(format!("--listen-client-urls={client}"))
                .arg(format!("--advertise-client-urls={client}"))
                .arg(format!("--listen-peer-urls={peer}"))
                .arg(format!("--initial-advertise-peer-urls={peer}"))
                .arg(format!("--initial-cluster={}", peers.join(",")))
                .arg("--initial-cluster-state=new")
                .arg("--initial-cluster-token=medmesh-bench")
                .arg(format!("--cert-file={}", files.cert.display()))
                .arg(format!("--key-file={}", files.key.display()))
                .arg(format!("--trusted-ca-file={}", files.ca.display()))
                .arg("--client-cert-auth")
                .arg(format!("--peer-cert-file={}", files.cert.display()))
                .arg(format!("--peer-key-file={}", files.key.display()))
                .arg(format!("--peer-trusted-ca-file={}", files.ca.display()))
                .arg("--peer-client-cert-auth")
                .arg("--quota-backend-bytes=8589934592")
                .arg("--logger=zap")
                .arg("--log-level=warn")
                .stdout(log.try_clone()?)
                .stderr(log)
                .kill_on_drop(true);
            children.push(cmd.spawn().map_err(|e| anyhow::anyhow!("starting {}: {e}", bin.display()))?);
        }
        let transport = Transport::from_files(&files)?;
        let channel = medmesh_node::network::channel(&format!("127.0.0.1:{}", base + 1), &transport)?;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            match put(&channel, b"bench/ready".to_vec(), b"1".to_vec()).await {
                Ok(()) => break,
                Err(e) if Instant::now() > deadline => anyhow::bail!("etcd did not answer a put within 60 s: {e}"),
                Err(_) => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
        eprintln!("etcd ready: 3 members on 127.0.0.1:{}..{}, mTLS, data under {}", base + 1, base + 3, root.display());
        Ok(Cluster { children, channel })
    }

    /// Drives 1 KiB puts of distinct keys from `concurrency` clients for `seconds`; answers the
    /// latencies of the puts that succeeded, the errors and the elapsed time.
    pub async fn run(
        cluster: &Cluster,
        seconds: u64,
        concurrency: usize,
    ) -> anyhow::Result<(Vec<Duration>, u64, Duration)> {
        let start = Instant::now();
        let end = start + Duration::from_secs(seconds);
        let mut tasks = Vec::new();
        for w in 0..concurrency {
            let channel = cluster.channel.clone();
            tasks.push(tokio::spawn(async move {
                let (mut lat, mut errors, mut n) = (Vec::new(), 0u64, 0u64);
                let value = vec![b'v'; 1024];
                while Instant::now() < end {
                    n += 1;
                    let t0 = Instant::now();
                    match put(&channel, format!("bench/{concurrency}/{w}/{n}").into_bytes(), value.clone()).await {
                        Ok(()) => lat.push(t0.elapsed()),
                        Err(e) => {
                            if errors == 0 && w < 4 {
                                eprintln!("first etcd error of client {w}: {e}");
                            }
                            errors += 1;
                        }
                    }
                }
                (lat, errors)
            }));
        }
        let (mut all, mut errors) = (Vec::new(), 0);
        for t in tasks {
            let (lat, e) = t.await?;
            all.extend(lat);
            errors += e;
        }
        Ok((all, errors, start.elapsed()))
    }
}
