//! Settlement benchmark: starts a 3-replica province group (real `medmesh` processes, RocksDB
//! with fsync on), loads demo data, then drives realistic claims — register a visit, upload ten
//! fee lines of mixed classes, settle — from many concurrent hospital clients, and reports
//! settlements/s and p50/p99 latency.
//!
//! Usage: `medmesh-bench [--seconds 20] [--concurrency 256] [--persons 2000]`

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use medmesh_node::demo;
use medmesh_node::dev::{spawn_replica, wait_for_leader};
use medmesh_node::network::channel;
use medmesh_node::pb;
use medmesh_node::pb::hospital_service_client::HospitalServiceClient;
use tokio::sync::Mutex;

fn arg(name: &str, default: u64) -> u64 {
    let args: Vec<String> = std::env::args().collect();
    args.iter().position(|a| a == name).and_then(|i| args.get(i + 1)).and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// Whole-claim latencies, settle-call latencies, errors.
type Totals = (Vec<Duration>, Vec<Duration>, u64);

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

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let seconds = arg("--seconds", 20);
    let concurrency = arg("--concurrency", 256) as usize;
    let persons = arg("--persons", 2000) as u32;
    let base = arg("--base-port", 7600) as u16;
    let exe: PathBuf = std::env::current_exe()?.parent().unwrap().join("medmesh");
    let root = tempfile::tempdir()?;
    let province = "110000";
    let addrs: Vec<String> = (1..=3).map(|r| format!("127.0.0.1:{}", base + r)).collect();
    let peers = addrs.iter().enumerate().map(|(i, a)| format!("{}={a}", i + 1)).collect::<Vec<_>>().join(",");
    let mut children = Vec::new();
    for r in 1..=3u64 {
        children.push(spawn_replica(
            &exe,
            province,
            r,
            &addrs[r as usize - 1],
            &peers,
            &root.path().join(format!("r{r}")),
            &[],
        )?);
    }
    let leader = wait_for_leader(&addrs, Duration::from_secs(60)).await?;
    demo::load(channel(&leader)?, province, persons).await.map_err(|s| anyhow::anyhow!("{}", s.message()))?;
    eprintln!("group ready, leader {leader}; running {seconds}s with {concurrency} concurrent claims");

    let inst = demo::institution(province, 1);
    let day = demo::today();
    let client = HospitalServiceClient::new(channel(&leader)?);
    let totals: Arc<Mutex<Totals>> = Arc::default();
    let start = Instant::now();
    let end = start + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for w in 0..concurrency {
        let mut c = client.clone();
        let (inst, day, totals) = (inst.clone(), day.clone(), totals.clone());
        tasks.push(tokio::spawn(async move {
            let (mut claim_lat, mut settle_lat, mut errors) = (Vec::new(), Vec::new(), 0u64);
            let mut n = 0u64;
            while Instant::now() < end {
                n += 1;
                let id = w as u64 * 1_000_000 + n;
                let t0 = Instant::now();
                let visit = format!("V{id}");
                let person = (id % persons as u64) as u32;
                let ok = async {
                    c.register_visit(demo::visit_request(province, &visit, person, 1, &day)).await?;
                    c.upload_fees(pb::UploadFeesRequest {
                        institution_id: inst.clone(),
                        visit_serial: visit.clone(),
                        lines: demo::fee_lines(id, &day),
                    })
                    .await?;
                    let t1 = Instant::now();
                    c.settle(pb::SettleRequest {
                        institution_id: inst.clone(),
                        serial: format!("S{id}"),
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
                    Err(_) => errors += 1,
                }
            }
            let mut t = totals.lock().await;
            t.0.extend(claim_lat);
            t.1.extend(settle_lat);
            t.2 += errors;
        }));
    }
    for t in tasks {
        t.await?;
    }
    let elapsed = start.elapsed();
    let mut t = totals.lock().await;
    t.0.sort();
    t.1.sort();
    let n = t.0.len();
    let rate = n as u128 * 1_000_000 / elapsed.as_micros().max(1);
    println!("settlements: {n} in {} ms = {rate} settlements/s ({} errors)", ms(elapsed), t.2);
    println!(
        "whole claim (register + upload 10 lines + settle): p50 {} ms, p99 {} ms",
        ms(pct(&t.0, 500)),
        ms(pct(&t.0, 990))
    );
    println!("settle call alone: p50 {} ms, p99 {} ms", ms(pct(&t.1, 500)), ms(pct(&t.1, 990)));
    for mut c in children {
        let _ = c.start_kill();
        let _ = c.wait().await;
    }
    Ok(())
}
