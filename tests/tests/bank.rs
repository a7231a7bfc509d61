//! A bank-style test (after Jepsen's bank test) with real `medmesh` processes: concurrent local
//! and non-local settlements and reversals across three provinces while a nemesis SIGKILLs the
//! leaders of the federation and of provinces (then restarts them on their data) and stalls a
//! whole province with SIGSTOP. After healing, the public-API checker must find every
//! invariant true: ledgers balance, nothing stays pending, both sides and the federation agree,
//! every acknowledged settlement is present exactly once as acknowledged. Meanwhile each
//! province's agency tops up its prepaid account through the federation's replicas: every
//! acknowledged top-up must be held there once, and every pool must have paid exactly what its
//! account received.
//!
//! The workload runs with the mesh's clocks some days in the past (`MEDMESH_CLOCK_OFFSET_MS`),
//! in the last days of the previous month. The mesh is then restarted on the real clock and,
//! while the nemesis kills leaders again, the month is closed: each province's hospital
//! declares it, the agency reviews it with a deduction and pays it, and grants the hospital a
//! prepayment; the nation clears the month's non-local care and settles it between the
//! provinces' prepaid accounts. Every one of those calls is retried with its serial or
//! reference until it answers, and the checker must then find each of them applied exactly
//! once, positions fallen back by the settled statements, and money still conserved.
//!
//! The schedule comes from a seed (`MEDMESH_BANK_SEED`, printed); the processes' timing is
//! real, so a seed fixes the nemesis and the workload's choices, not the interleaving.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use medmesh_node::demo;
use medmesh_node::pb;
use medmesh_node::pb::federation_service_client::FederationServiceClient;
use medmesh_node::pb::hospital_service_client::HospitalServiceClient;
use medmesh_tests::checker::{check, snapshot_around, Acked, Snapshot};
use medmesh_tests::month::{clear_and_settle, deductible_line, month_end, past_month_offset};
use medmesh_tests::workload::{fee_lines, with_retry};
use medmesh_tests::{agency, channel_as, yuan, Mesh};
use medmesh_types::{Date, Money};
use rand::{Rng, SeedableRng};
use tokio::sync::Mutex;
use tonic::transport::Channel;
use tonic::Code;

const PROVINCES: [&str; 3] = ["110000", "310000", "440000"];
const PERSONS: u32 = 40;
const WORKERS: usize = 6;
/// Most claims a worker makes; it stops earlier once the nemesis has done its rounds.
const MAX_CLAIMS_PER_WORKER: u64 = 400;
/// Nemesis rounds.
const ROUNDS: usize = 6;

#[derive(Default)]
struct Record {
    acked: Vec<Acked>,
    unknown_reversals: Vec<(String, String)>,
    aborted: u64,
    unknown: u64,
}

/// What one claim does.
struct Plan {
    treatment: &'static str,
    insured: &'static str,
    person: u32,
    tag: String,
    n: u64,
    reverse: bool,
    /// The day of care (the mesh's "today", some days in the past).
    day: String,
}

/// One claim: register, upload, settle at `treatment` for a person of `insured`, then perhaps
/// reverse it. Each call is retried across replicas with the same serial.
async fn claim(clients: &[HospitalServiceClient<Channel>], plan: Plan, record: &Mutex<Record>) {
    let Plan { treatment, insured, person, tag, n, reverse, day } = plan;
    let inst = demo::institution(treatment, 1);
    let visit = format!("BV-{tag}");
    let reg = with_retry(clients, n as usize, |mut c| {
        let req = demo::nonlocal_visit_request(treatment, insured, &visit, person, 1, &day);
        async move { c.register_visit(req).await }
    })
    .await;
    if let Err(s) = reg {
        panic!("registering {visit} at {treatment} for {insured}: {s:?}");
    }
    with_retry(clients, n as usize, |mut c| {
        let req = pb::UploadFeesRequest {
            institution_id: inst.clone(),
            visit_serial: visit.clone(),
            lines: fee_lines(n, &day),
        };
        async move { c.upload_fees(req).await }
    })
    .await
    .unwrap_or_else(|s| panic!("uploading fees of {visit}: {s:?}"));
    let serial = format!("BS-{tag}");
    let settled = with_retry(clients, n as usize, |mut c| {
        let req = pb::SettleRequest {
            lines: Vec::new(),
            institution_id: inst.clone(),
            serial: serial.clone(),
            visit_serial: visit.clone(),
            use_individual_account: n % 2 == 0,
        };
        async move { c.settle(req).await.map(|r| r.into_inner()) }
    })
    .await;
    let s = match settled {
        Ok(s) => s,
        Err(s) if s.code() == Code::FailedPrecondition => {
            // A non-local settlement aborted (the insured province did not answer in time):
            // a definite outcome, nothing moved.
            record.lock().await.aborted += 1;
            return;
        }
        Err(_) => {
            record.lock().await.unknown += 1;
            return;
        }
    };
    let mut acked = Acked { treatment: treatment.into(), institution: inst.clone(), settlement: s, reversed: false };
    if reverse {
        let r = with_retry(clients, n as usize + 1, |mut c| {
            let req = pb::ReverseRequest {
                institution_id: inst.clone(),
                serial: format!("BR-{tag}"),
                settlement_serial: serial.clone(),
            };
            async move { c.reverse(req).await }
        })
        .await;
        match r {
            Ok(_) => acked.reversed = true,
            Err(s) if s.code() == Code::FailedPrecondition || s.code() == Code::NotFound => {
                panic!("reversal of acknowledged {serial} refused: {s:?}")
            }
            Err(_) => record.lock().await.unknown_reversals.push((treatment.into(), serial.clone())),
        }
    }
    record.lock().await.acked.push(acked);
}

async fn nemesis(mesh: Arc<Mutex<Mesh>>, seed: u64, rounds: usize) -> Vec<String> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ 0x9e37);
    let mut log = Vec::new();
    for round in 0..rounds {
        tokio::time::sleep(Duration::from_millis(rng.gen_range(500..2_000))).await;
        let mut m = mesh.lock().await;
        match (round + rng.gen_range(0..3)) % 4 {
            // SIGKILL the federation's leader, then restart it on its data.
            0 => {
                let id = m.federation.leader().await;
                m.federation.kill(id).await;
                log.push(format!("kill federation leader {id}"));
                drop(m);
                tokio::time::sleep(Duration::from_millis(rng.gen_range(500..2_000))).await;
                mesh.lock().await.federation.restart(id);
            }
            // SIGSTOP a whole province (a stalled site) for a few seconds.
            1 => {
                let p = rng.gen_range(0..PROVINCES.len());
                for r in 1..=3 {
                    m.provinces[p].pause(r);
                }
                log.push(format!("SIGSTOP province {}", PROVINCES[p]));
                drop(m);
                tokio::time::sleep(Duration::from_millis(rng.gen_range(2_000..4_000))).await;
                let m = mesh.lock().await;
                for r in 1..=3 {
                    m.provinces[p].resume(r);
                }
            }
            // SIGKILL a province's leader (it is both a treatment and an insured province).
            _ => {
                let p = rng.gen_range(0..PROVINCES.len());
                let id = m.provinces[p].leader().await;
                m.provinces[p].kill(id).await;
                log.push(format!("kill leader {id} of province {}", PROVINCES[p]));
                drop(m);
                tokio::time::sleep(Duration::from_millis(rng.gen_range(500..2_000))).await;
                mesh.lock().await.provinces[p].restart(id);
            }
        }
    }
    log
}

/// Top-ups each province's agency made (acknowledged, and given up on with the outcome unknown).
#[derive(Debug, Default)]
struct TopUps {
    acked: BTreeMap<String, Money>,
    unknown: BTreeMap<String, Money>,
}

/// Tops up every province's prepaid account once a round until `stop`, through the
/// federation's replicas in turn, retrying a call whose outcome is unknown with its serial.
async fn top_ups(federation: Vec<String>, stop: Arc<std::sync::atomic::AtomicBool>) -> TopUps {
    let mut done = TopUps::default();
    for round in 0u32.. {
        if stop.load(std::sync::atomic::Ordering::SeqCst) {
            break;
        }
        for p in PROVINCES {
            let amount = Money::parse_yuan(&format!("{}.{:02}", 1000 + round, round % 100)).expect("amount");
            let req = pb::TopUpRequest {
                province: p.into(),
                serial: format!("BT-{round}"),
                amount: amount.to_string(),
                warning_below: String::new(),
            };
            let mut outcome = None;
            for attempt in 0..40usize {
                let addr = &federation[(round as usize + attempt) % federation.len()];
                let mut c = FederationServiceClient::new(channel_as(addr, &agency(p)));
                match tokio::time::timeout(Duration::from_secs(5), c.top_up(req.clone())).await {
                    Ok(Ok(_)) => {
                        outcome = Some(());
                        break;
                    }
                    Ok(Err(s))
                        if !matches!(
                            s.code(),
                            Code::Unavailable | Code::Unknown | Code::DeadlineExceeded | Code::Cancelled
                        ) =>
                    {
                        panic!("top-up {p}/BT-{round} refused: {s:?}")
                    }
                    _ => tokio::time::sleep(Duration::from_millis(250)).await,
                }
            }
            let book = if outcome.is_some() { &mut done.acked } else { &mut done.unknown };
            *book.entry(p.to_string()).or_default() += amount;
        }
        // Pacing: a few top-ups over the run, not a load.
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    done
}

/// Waits (90 s at most) for `check` to hold on a snapshot of the mesh; the snapshot.
async fn until_checked(
    endpoints: &[(String, String, Vec<String>)],
    federation: &str,
    day: Date,
    what: &str,
    check: impl Fn(&Snapshot) -> Result<(), String>,
) -> (Snapshot, Duration) {
    let started = Instant::now();
    let mut last;
    loop {
        match snapshot_around(endpoints, federation, day).await {
            Ok(s) => match check(&s) {
                Ok(()) => return (s, started.elapsed()),
                Err(e) => last = e,
            },
            Err(e) => last = format!("snapshot: {e:?}"),
        }
        assert!(started.elapsed() < Duration::from_secs(90), "{what}: invariants still broken after 90 s: {last}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Every replica running and resumed.
async fn heal(mesh: &Mutex<Mesh>) {
    let mut guard = mesh.lock().await;
    let m = &mut *guard;
    for g in m.provinces.iter_mut().chain(std::iter::once(&mut m.federation)) {
        for id in 1..=3 {
            if g.replica(id).running() {
                g.resume(id);
            } else {
                g.restart(id);
            }
        }
    }
}

/// Money is conserved, nothing is settled twice and nothing acknowledged is lost across three
/// provinces and the federation while leaders die and a province stalls; then the month is
/// closed — declared, reviewed, paid, prepaid, cleared and settled — while leaders die again,
/// each step exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bank_invariants_hold_under_leader_kills_and_a_stalled_province() {
    let seed: u64 = std::env::var("MEDMESH_BANK_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or(20_261_125);
    println!("bank: seed {seed} (MEDMESH_BANK_SEED={seed} replays the schedule)");
    // Two days before the end of last month (the workload takes a minute or two).
    let (offset, day, month) = past_month_offset();
    let mesh = Mesh::start_with_env(&PROVINCES, PERSONS, &[("MEDMESH_CLOCK_OFFSET_MS", offset.to_string())]).await;
    let clients: BTreeMap<String, Vec<HospitalServiceClient<Channel>>> =
        mesh.provinces.iter().map(|g| (g.province.clone(), (1..=3).map(|id| g.hospital(id)).collect())).collect();
    let province_replicas: BTreeMap<String, Vec<String>> = mesh
        .provinces
        .iter()
        .map(|g| (g.province.clone(), g.replicas.iter().map(|r| r.addr.clone()).collect()))
        .collect();
    let endpoints: Vec<(String, String, Vec<String>)> = mesh
        .provinces
        .iter()
        .map(|g| (g.province.clone(), g.replicas[0].addr.clone(), vec![demo::institution(&g.province, 1)]))
        .collect();
    let federation_addr = mesh.provinces[0].replicas[1].addr.clone();
    let federation_replicas: Vec<String> = mesh.federation.replicas.iter().map(|r| r.addr.clone()).collect();
    let mesh = Arc::new(Mutex::new(mesh));
    let record = Arc::new(Mutex::new(Record::default()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let nemesis_task = {
        let (mesh, stop) = (mesh.clone(), stop.clone());
        tokio::spawn(async move {
            let log = nemesis(mesh, seed, ROUNDS).await;
            // Let the workload run a little on the healed mesh too.
            tokio::time::sleep(Duration::from_secs(2)).await;
            stop.store(true, std::sync::atomic::Ordering::SeqCst);
            log
        })
    };

    let started = Instant::now();
    let topping = tokio::spawn(top_ups(federation_replicas.clone(), stop.clone()));
    let mut workers = Vec::new();
    for w in 0..WORKERS {
        let clients = clients.clone();
        let record = record.clone();
        let stop = stop.clone();
        let day = day.to_string();
        let mut rng = rand::rngs::StdRng::seed_from_u64(seed.wrapping_add(w as u64));
        workers.push(tokio::spawn(async move {
            for n in 0..MAX_CLAIMS_PER_WORKER {
                if stop.load(std::sync::atomic::Ordering::SeqCst) {
                    break;
                }
                let treatment = PROVINCES[rng.gen_range(0..PROVINCES.len())];
                let insured = if rng.gen_bool(0.4) { treatment } else { PROVINCES[rng.gen_range(0..PROVINCES.len())] };
                // Filed persons only (4k+1, 4k+2, 4k+3), so a non-local visit is covered.
                let person = loop {
                    let p = rng.gen_range(1..PERSONS);
                    if demo::filing_kind(p).is_some() {
                        break p;
                    }
                };
                let reverse = rng.gen_bool(0.3);
                let plan = Plan { treatment, insured, person, tag: format!("{w}-{n}"), n, reverse, day: day.clone() };
                claim(&clients[treatment], plan, &record).await;
            }
        }));
    }
    let log = nemesis_task.await.expect("nemesis");
    for w in workers {
        w.await.expect("worker");
    }
    let topped = topping.await.expect("top-ups");
    println!("bank: workload done in {:.1?}; nemesis: {log:?}", started.elapsed());

    heal(&mesh).await;
    let rec = record.lock().await;
    let (s, took) = until_checked(&endpoints, &federation_addr, day, "after the workload", |s| {
        check(s, &rec.acked, &rec.unknown_reversals)
    })
    .await;
    let nonlocal = rec.acked.iter().filter(|a| !a.settlement.insured_province.is_empty()).count();
    println!(
        "bank: invariants hold {took:.1?} after healing; {} settlements acknowledged ({nonlocal} non-local), {} reversed, {} aborted, {} unknown; federation positions {} over {} settlements",
        rec.acked.len(),
        rec.acked.iter().filter(|a| a.reversed).count(),
        rec.aborted,
        rec.unknown,
        s.positions.total,
        s.positions.settlements
    );
    // Every acknowledged top-up reached the federation once; one given up on at most once.
    for p in PROVINCES {
        let at = s.topped_up(p);
        let acked = topped.acked.get(p).copied().unwrap_or_default();
        let unknown = topped.unknown.get(p).copied().unwrap_or_default();
        assert!(acked > Money::ZERO, "{p}: no top-up was acknowledged: {topped:?}");
        assert!(
            at >= acked && at <= acked + unknown,
            "{p}: the federation holds {at} of top-ups; acknowledged {acked}, unknown {unknown}"
        );
    }
    println!("bank: top-ups {topped:?}");
    let attempted = rec.acked.len() as u64 + rec.aborted + rec.unknown;
    assert!(rec.acked.len() as u64 * 2 >= attempted, "most claims settle despite the faults");
    assert!(rec.acked.iter().any(|a| !a.settlement.insured_province.is_empty()), "non-local settlements were made");

    // The month ends: the whole mesh runs on the real clock again, and closes the month while
    // the nemesis kills leaders and stalls a province again.
    {
        let mut guard = mesh.lock().await;
        let m = &mut *guard;
        for g in std::iter::once(&mut m.federation).chain(m.provinces.iter_mut()) {
            g.stop_all().await;
        }
        for g in std::iter::once(&mut m.federation).chain(m.provinces.iter_mut()) {
            g.set_env("MEDMESH_CLOCK_OFFSET_MS", "0");
            for id in 1..=3 {
                g.restart(id);
            }
        }
    }
    let closing = Instant::now();
    let nemesis_task = {
        let mesh = mesh.clone();
        tokio::spawn(async move { nemesis(mesh, seed.wrapping_add(1), ROUNDS / 2).await })
    };
    // One local settlement in force of each hospital to deduct from (one whose reversal's
    // outcome is unknown could be reversed).
    let deduct = |p: &str| {
        let unknown = |a: &&Acked| rec.unknown_reversals.contains(&(a.treatment.clone(), a.settlement.serial.clone()));
        deductible_line(rec.acked.iter().filter(|a| a.treatment == p && !unknown(a)))
            .unwrap_or_else(|| panic!("{p}: a local settlement in force to deduct from"))
    };
    let mut closers = Vec::new();
    for p in PROVINCES {
        let (addrs, month, deduct) = (province_replicas[p].clone(), month.clone(), deduct(p));
        closers.push((p, tokio::spawn(async move { month_end(addrs, p, &month, deduct).await })));
    }
    let settled = clear_and_settle(federation_replicas.clone(), &month).await;
    let mut ends = BTreeMap::new();
    for (p, c) in closers {
        ends.insert(p, c.await.expect("month end"));
    }
    let log = nemesis_task.await.expect("nemesis");
    println!("bank: {month} closed in {:.1?}; nemesis: {log:?}; {ends:?}", closing.elapsed());

    // Each step once: the ledgers show what the callers were told, the positions fell back by
    // the settled statements, and every invariant still holds.
    heal(&mesh).await;
    let mut statements: BTreeMap<(String, String), Money> = BTreeMap::new();
    for st in &settled.statements {
        *statements.entry((st.insured_province.clone(), st.treatment_province.clone())).or_default() += yuan(&st.total);
    }
    assert!(statements.values().any(|t| *t != Money::ZERO), "the month had non-local care to settle: {settled:?}");
    let (s, took) = until_checked(&endpoints, &federation_addr, day, "after the month end", |s| {
        check(s, &rec.acked, &rec.unknown_reversals)?;
        for (p, e) in &ends {
            let f = &s.funds[*p];
            let shown = (yuan(&f.deducted), yuan(&f.institution_payments), yuan(&f.prepaid_out));
            if shown != (e.deducted, e.paid, e.prepaid) {
                return Err(format!("{p}: deducted, paid and prepaid {shown:?}; the callers were told {e:?}"));
            }
        }
        for x in &s.positions.positions {
            let want = statements.get(&(x.insured_province.clone(), x.treatment_province.clone())).copied();
            if yuan(&x.settled) != want.unwrap_or_default() {
                return Err(format!("{x:?}: the settled statement says {want:?}"));
            }
        }
        Ok(())
    })
    .await;
    println!(
        "bank: the closed month checks out {took:.1?} after healing; positions {} over {} settlements; settled {statements:?}",
        s.positions.total, s.positions.settlements
    );
}
