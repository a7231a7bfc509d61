//! Settlement benchmark: starts the federation and two provinces, each a 3-replica group of
//! real `medmesh` processes (RocksDB with fsync on), loads demo data and filings, then drives
//! realistic claims — register a visit, upload ten fee lines of mixed classes, settle — from
//! many concurrent hospital clients at a hospital of 110000, and reports settlements/s and
//! p50/p99 latency: first for patients insured in 110000 (local), then, in the same run, for
//! patients insured in 310000 (non-local: a two-phase transfer through the federation).
//!
//! Usage: `medmesh-bench [--seconds 15] [--concurrency 256] [--persons 2000] [--base-port 7600]
//! [--mode both|local|nonlocal] [--rules]` (`--help` lists them).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Parser, ValueEnum};
use medmesh_node::demo;
use medmesh_node::dev::{self, start_mesh, stop_children};
use medmesh_node::network::channel;
use medmesh_node::pb;
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
    /// Concurrent hospital clients.
    #[arg(long, default_value_t = 256)]
    concurrency: usize,
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

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let Args { seconds, concurrency, persons, base_port: base, mode, insecure, rules } = Args::parse();
    let exe: PathBuf = std::env::current_exe()?.parent().unwrap().join("medmesh");
    let root = tempfile::tempdir()?;
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
        "mesh ready (federation, {TREATMENT}, {INSURED}; {security}; {monitoring}); {seconds}s per phase, {concurrency} concurrent claims"
    );
    if mode != Mode::Nonlocal {
        report("local", run(client.clone(), TREATMENT, seconds, concurrency, persons).await?);
    }
    if mode != Mode::Local {
        report("non-local", run(client, INSURED, seconds, concurrency, persons).await?);
    }
    stop_children(children).await;
    if std::env::var_os("MEDMESH_BENCH_KEEP").is_some() {
        eprintln!("replica data and logs kept in {}", root.keep().display());
    }
    Ok(())
}

/// Runs claims of persons insured in `insured` at institution 1 of [`TREATMENT`].
async fn run(
    client: HospitalServiceClient<tonic::transport::Channel>,
    insured: &'static str,
    seconds: u64,
    concurrency: usize,
    persons: u32,
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
                let visit = format!("V{insured}-{id}");
                // Odd demo persons are filed for non-local care (4k+1 and 4k+3).
                let person = (id % persons as u64) as u32 | 1;
                let ok = async {
                    c.register_visit(demo::nonlocal_visit_request(province, insured, &visit, person, 1, &day)).await?;
                    c.upload_fees(pb::UploadFeesRequest {
                        institution_id: inst.clone(),
                        visit_serial: visit.clone(),
                        lines: demo::fee_lines(id, &day),
                    })
                    .await?;
                    let t1 = Instant::now();
                    c.settle(pb::SettleRequest {
                        institution_id: inst.clone(),
                        serial: format!("S{insured}-{id}"),
                        visit_serial: visit.clone(),
                        use_individual_account: id.is_multiple_of(2),
                    })
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

fn report(label: &str, (mut t, elapsed): (Totals, Duration)) {
    t.0.sort();
    t.1.sort();
    let n = t.0.len();
    let rate = n as u128 * 1_000_000 / elapsed.as_micros().max(1);
    let errors: u64 = t.2.values().sum();
    println!("{label} settlements: {n} in {} ms = {rate} settlements/s ({errors} errors {:?})", ms(elapsed), t.2);
    println!(
        "{label} whole claim (register + upload 10 lines + settle): p50 {} ms, p99 {} ms",
        ms(pct(&t.0, 500)),
        ms(pct(&t.0, 990))
    );
    println!("{label} settle call alone: p50 {} ms, p99 {} ms", ms(pct(&t.1, 500)), ms(pct(&t.1, 990)));
}
