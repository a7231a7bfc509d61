//! Bench (issue 12.4): the time and memory of a month's clearing at a million non-local
//! decisions, on the federation's real RocksDB state machine (no Raft, no network: what one
//! replica's apply and reads cost).
//!
//! ```sh
//! cargo bench -p medmesh-storage --bench clearing -- --decisions 1000000
//! ```
//!
//! It generates the decisions (a vouch and a commit each, 1,000 commands an entry, spread over
//! 31 provinces and 200 institutions each) in the last hour of a month, lets the group's
//! time pass the month's end, then times clearing the month, settling it and reading every
//! line a page of 10,000 at a time. Memory is the process's peak resident set above what it
//! held before each step (`/proc/self/clear_refs` resets the peak), so it shows what the step
//! itself needed, not the store's caches filled while generating.

use std::time::Instant;

use medmesh_state::{run_query, Answer, Batch, Command, Decision, FederationCommand, KvRead, Query, Role, TransferId};
use medmesh_storage::TypeConfig;
use medmesh_types::{InstitutionId, LogTime, Money, ProvinceCode, Serial};
use openraft::storage::RaftStateMachine;
use openraft::{CommittedLeaderId, Entry, EntryPayload, LogId};

const PROVINCES: u32 = 31;
const INSTITUTIONS: u32 = 200;
const PER_ENTRY: usize = 1_000;
/// 2026-10-31 23:00 in Beijing.
const START: LogTime = LogTime(1_793_458_800_000);
const MONTH: &str = "2026-10";

fn province(i: u32) -> ProvinceCode {
    ProvinceCode::new(format!("{:02}0000", 11 + i)).expect("province code")
}

/// (resident, peak) in KiB, from /proc/self/status.
fn memory() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(0)
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn reset_peak() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

struct Applier {
    sm: medmesh_storage::StateMachineStore,
    index: u64,
}

impl Applier {
    async fn apply(&mut self, time: LogTime, commands: Vec<Command>) -> Vec<medmesh_state::CommandResult> {
        self.index += 1;
        let entry = Entry::<TypeConfig> {
            log_id: LogId::new(CommittedLeaderId::new(1, 1), self.index),
            payload: EntryPayload::Normal(Batch { time, commands, origins: Vec::new() }),
        };
        self.sm.apply(vec![entry]).await.expect("apply").remove(0)
    }
}

fn step(name: &str, started: Instant, before: (u64, u64)) {
    let (rss, peak) = memory();
    println!(
        "{name:<28} {:>10} ms   peak +{:>7} KiB   resident {:>8} KiB",
        started.elapsed().as_millis(),
        peak.saturating_sub(before.0),
        rss
    );
}

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let decisions: u64 = args
        .iter()
        .position(|a| a == "--decisions")
        .and_then(|i| args.get(i + 1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().expect("temp dir");
    let (_log, sm) = medmesh_storage::open(dir.path(), Role::Federation).await.expect("open store");
    let mut a = Applier { sm, index: 0 };
    println!(
        "clearing bench: {decisions} non-local decisions, {PROVINCES} provinces, {INSTITUTIONS} institutions each"
    );

    let started = Instant::now();
    let mut commands = Vec::with_capacity(PER_ENTRY);
    let mut total = Money::ZERO;
    for n in 0..decisions {
        let insured = province((n % u64::from(PROVINCES)) as u32);
        let treatment = province(((n / u64::from(PROVINCES) + 1 + n) % u64::from(PROVINCES)) as u32);
        let treatment =
            if treatment == insured { province(((n + 1) % u64::from(PROVINCES)) as u32) } else { treatment };
        let inst =
            InstitutionId::new(format!("H{}-{:03}", treatment, n % u64::from(INSTITUTIONS))).expect("institution");
        let transfer =
            TransferId { treatment, institution: inst, serial: Serial::new(format!("NS-{n}")).expect("serial") };
        let amount = Money::from_fen(10_000 + (n % 90_000) as i64);
        total += amount;
        commands.push(Command::from(FederationCommand::Vouch {
            transfer: transfer.clone(),
            insured: insured.clone(),
            amount,
        }));
        commands.push(Command::from(FederationCommand::Decide {
            transfer,
            insured,
            amount,
            decision: Decision::Commit,
            reason: String::new(),
        }));
        if commands.len() >= PER_ENTRY {
            for r in a.apply(START, std::mem::take(&mut commands)).await {
                r.expect("generated command applies");
            }
        }
    }
    if !commands.is_empty() {
        a.apply(START, commands).await;
    }
    let generated = started.elapsed().as_millis().max(1);
    println!(
        "{:<28} {generated:>10} ms   ({} decisions/s, total {total})",
        "generate (vouch + commit)",
        u128::from(decisions) * 1000 / generated
    );
    // The group's time passes the month's end, ten minutes an entry.
    for k in 1..=8 {
        a.apply(LogTime(START.0 + k * 600_000), Vec::new()).await;
    }
    let after = LogTime(START.0 + 8 * 600_000);

    let before = memory();
    reset_peak();
    let t = Instant::now();
    let r = a.apply(after, vec![FederationCommand::RunClearing { month: MONTH.into() }.into()]).await;
    r[0].as_ref().expect("cleared");
    step("clear the month", t, before);

    let before = memory();
    reset_peak();
    let t = Instant::now();
    let r = a.apply(after, vec![FederationCommand::SettleClearing { month: MONTH.into() }.into()]).await;
    r[0].as_ref().expect("settled");
    step("settle the month", t, before);

    let before = memory();
    reset_peak();
    let t = Instant::now();
    let view = a.sm.view();
    let (mut token, mut lines, mut pages, mut sum) = (String::new(), 0u64, 0u64, Money::ZERO);
    loop {
        let q = Query::Clearing { month: MONTH.into(), page_token: token, page_size: 10_000 };
        let Ok(Answer::Clearing { view: page, next_page_token }) = run_query(&view as &dyn KvRead, &q) else {
            panic!("clearing page")
        };
        pages += 1;
        for s in &page.statements {
            lines += s.lines.len() as u64;
            sum += s.lines.iter().map(|l| l.amount).sum::<Money>();
        }
        if next_page_token.is_empty() {
            break;
        }
        token = next_page_token;
    }
    step(&format!("read {pages} pages of lines"), t, before);
    assert_eq!((lines, sum), (decisions, total), "every line once, to the fen");
    println!("lines read {lines}, sum {sum}");
}
