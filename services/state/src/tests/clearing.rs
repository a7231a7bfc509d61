//! Clearing that settles (issue 12.4) over the federation's in-memory store: months indexed as
//! transfers are decided, cleared only after they end, adjustment lines for reversals of
//! cleared lines, settlement once, positions that fall back, and, for any sequence, what every
//! pair owes equal to the lines of its months not yet settled, recomputed independently.

use std::collections::{BTreeMap, BTreeSet};

use medmesh_types::{Date, InstitutionId, LogTime, Money, ProvinceCode, Serial};
use proptest::prelude::*;

use crate::*;

/// Noon in Beijing of `d`.
fn at(d: &str) -> LogTime {
    LogTime(i64::from(Date::parse(d).unwrap().days()) * 86_400_000 + 4 * 3_600_000)
}
fn p(code: &str) -> ProvinceCode {
    ProvinceCode::new(code).unwrap()
}
fn m(s: &str) -> Money {
    match s.strip_prefix('-') {
        Some(s) => Money::ZERO - Money::parse_yuan(s).unwrap(),
        None => Money::parse_yuan(s).unwrap(),
    }
}
fn inst(n: u8) -> InstitutionId {
    InstitutionId::new(format!("H00{n}")).unwrap()
}
fn id(treatment: &str, n: u8, serial: &str) -> TransferId {
    TransferId { treatment: p(treatment), institution: inst(n), serial: Serial::new(serial).unwrap() }
}

fn fed(kv: &mut MemKv, time: LogTime, cmd: FederationCommand) -> CommandResult {
    let (r, writes) = apply_command(kv, &Command::from(cmd), time);
    kv.write(writes);
    r
}

/// Vouches for and commits a transfer.
fn commit(kv: &mut MemKv, time: LogTime, t: &TransferId, insured: &str, amount: Money) {
    let vouch = FederationCommand::Vouch { transfer: t.clone(), insured: p(insured), amount };
    fed(kv, time, vouch).unwrap();
    let decide = FederationCommand::Decide {
        transfer: t.clone(),
        insured: p(insured),
        amount,
        decision: Decision::Commit,
        reason: String::new(),
    };
    fed(kv, time, decide).unwrap();
}

fn reverse(kv: &mut MemKv, time: LogTime, t: &TransferId) {
    let r = format!("R-{}", t.serial);
    fed(kv, time, FederationCommand::Reverse { transfer: t.clone(), reversal: Serial::new(r).unwrap() }).unwrap();
}

fn clearing(kv: &MemKv, month: &str) -> ClearingView {
    match run_query(kv, &Query::Clearing { month: month.into(), page_token: String::new(), page_size: 1 }) {
        Ok(Answer::Clearing { view, .. }) => view,
        o => panic!("{o:?}"),
    }
}

/// Every line of a month, page by page (`size` lines a page), as (insured, treatment, line).
fn lines(kv: &MemKv, month: &str, size: usize) -> Vec<(String, String, ClearingLine)> {
    let (mut out, mut token) = (Vec::new(), String::new());
    loop {
        let q = Query::Clearing { month: month.into(), page_token: token.clone(), page_size: size };
        let Ok(Answer::Clearing { view, next_page_token }) = run_query(kv, &q) else { panic!("page") };
        let on_page: usize = view.statements.iter().map(|s| s.lines.len()).sum();
        assert!(on_page <= size);
        for s in view.statements {
            out.extend(s.lines.into_iter().map(|l| (s.insured.to_string(), s.treatment.to_string(), l)));
        }
        if next_page_token.is_empty() {
            return out;
        }
        token = next_page_token;
    }
}

fn total(kv: &MemKv, month: &str, insured: &str, treatment: &str) -> Money {
    clearing(kv, month)
        .statements
        .iter()
        .find(|s| s.insured.as_str() == insured && s.treatment.as_str() == treatment)
        .map(|s| s.total)
        .unwrap_or(Money::ZERO)
}

fn owed(kv: &MemKv, insured: &str, treatment: &str) -> Money {
    match run_query(kv, &Query::Positions).unwrap() {
        Answer::Positions(list) => list
            .iter()
            .find(|(i, t, _)| i.as_str() == insured && t.as_str() == treatment)
            .map(|(_, _, p)| p.owed())
            .unwrap_or(Money::ZERO),
        o => panic!("{o:?}"),
    }
}

fn prepaid(kv: &MemKv, province: &str) -> PrepaidView {
    match run_query(kv, &Query::Prepaid).unwrap() {
        Answer::Prepaid(v) => v.into_iter().find(|v| v.province.as_str() == province).unwrap(),
        o => panic!("{o:?}"),
    }
}

#[test]
fn a_month_clears_after_it_ends_and_late_reversals_become_adjustment_lines() {
    let mut f = MemKv::default();
    let (t1, t2, t3) = (id("110000", 1, "S1"), id("110000", 2, "S2"), id("110000", 1, "S3"));
    commit(&mut f, at("2025-03-05"), &t1, "310000", m("100.00"));
    commit(&mut f, at("2025-03-06"), &t2, "310000", m("200.50"));
    commit(&mut f, at("2025-03-07"), &t3, "440000", m("50.25"));
    // An open month shows its lines as they stand; it cannot be cleared before it ends.
    let open = clearing(&f, "2025-03");
    assert_eq!(open.record.status(), MonthStatus::Open);
    assert_eq!(total(&f, "2025-03", "310000", "110000"), m("300.50"));
    let e = fed(&mut f, at("2025-03-31"), FederationCommand::RunClearing { month: "2025-03".into() }).unwrap_err();
    assert_eq!((e.code, e.field.as_str()), (ErrorCode::FailedPrecondition, "month"), "{e}");
    let e = fed(&mut f, at("2025-03-31"), FederationCommand::SettleClearing { month: "2025-03".into() }).unwrap_err();
    assert_eq!((e.code, e.field.as_str()), (ErrorCode::FailedPrecondition, "month"), "{e}");
    // A reversal while the month is open takes its line out.
    reverse(&mut f, at("2025-03-20"), &t2);
    assert_eq!(total(&f, "2025-03", "310000", "110000"), m("100.00"));
    assert_eq!(lines(&f, "2025-03", 1).len(), 2);
    // Cleared on 1 April; clearing again answers the same.
    let cleared = fed(&mut f, at("2025-04-01"), FederationCommand::RunClearing { month: "2025-03".into() }).unwrap();
    let again = fed(&mut f, at("2025-04-02"), FederationCommand::RunClearing { month: "2025-03".into() }).unwrap();
    assert_eq!(cleared, again);
    let Outcome::Clearing(c) = cleared else { panic!() };
    assert_eq!((c.record.status(), c.record.cleared_at), (MonthStatus::Cleared, Some(at("2025-04-01"))));
    // April: a new settlement goes into April; reversing a March line leaves March as it was
    // and puts minus its amount into April.
    let t4 = id("110000", 2, "S4");
    commit(&mut f, at("2025-04-03"), &t4, "310000", m("80.00"));
    reverse(&mut f, at("2025-04-04"), &t1);
    assert_eq!(total(&f, "2025-03", "310000", "110000"), m("100.00"), "a cleared month never changes");
    let april = lines(&f, "2025-04", 10);
    let kinds: Vec<(String, LineKind, Money)> =
        april.iter().map(|(_, _, l)| (l.serial.to_string(), l.kind, l.amount)).collect();
    assert_eq!(
        kinds,
        vec![("S1".into(), LineKind::Reversal, m("-100.00")), ("S4".into(), LineKind::Settlement, m("80.00"))],
        "ordered by institution, then serial"
    );
    // What 310000 owes 110000 is what is in force (S4) and equals the lines of the months not
    // settled (March 100 + April −20).
    assert_eq!(owed(&f, "310000", "110000"), m("80.00"));
    // March is settled once: 100.00 from 310000 and 50.25 from 440000 reach 110000.
    let e = fed(&mut f, at("2025-04-05"), FederationCommand::SettleClearing { month: "2025-04".into() }).unwrap_err();
    assert_eq!(e.field, "month", "April is not cleared");
    let s1 = fed(&mut f, at("2025-04-05"), FederationCommand::SettleClearing { month: "2025-03".into() }).unwrap();
    let s2 = fed(&mut f, at("2025-04-06"), FederationCommand::SettleClearing { month: "2025-03".into() }).unwrap();
    assert_eq!(s1, s2, "settled once");
    assert_eq!(owed(&f, "310000", "110000"), m("-20.00"), "April's lines: 80 − 100");
    assert_eq!(owed(&f, "440000", "110000"), Money::ZERO);
    let v = prepaid(&f, "310000");
    assert_eq!((v.consumed, v.paid, v.owed), (m("80.00"), m("100.00"), m("-20.00")));
    assert_eq!(prepaid(&f, "110000").received, m("150.25"));
    // April settles the rest: 310000 gets 20 back; every position is zero.
    fed(&mut f, at("2025-05-01"), FederationCommand::RunClearing { month: "2025-04".into() }).unwrap();
    fed(&mut f, at("2025-05-01"), FederationCommand::SettleClearing { month: "2025-04".into() }).unwrap();
    assert_eq!(owed(&f, "310000", "110000"), Money::ZERO);
    assert_eq!(prepaid(&f, "310000").paid, m("80.00"));
    // A log time that ran behind a cleared month puts the line after it.
    let t5 = id("110000", 1, "S5");
    commit(&mut f, at("2025-04-30"), &t5, "310000", m("1.00"));
    assert_eq!(total(&f, "2025-05", "310000", "110000"), m("1.00"));
    assert_eq!(total(&f, "2025-04", "310000", "110000"), m("-20.00"));
}

#[test]
fn institutions_confirm_their_own_lines_and_pages_are_checked() {
    let mut f = MemKv::default();
    commit(&mut f, at("2025-03-05"), &id("110000", 1, "S1"), "310000", m("10"));
    commit(&mut f, at("2025-03-05"), &id("110000", 2, "S2"), "310000", m("20"));
    let confirm = |n: u8, serial: &str, yes| FederationCommand::ConfirmClearing {
        month: "2025-03".into(),
        treatment: p("110000"),
        institution: inst(n),
        serial: Serial::new(serial).unwrap(),
        confirm: yes,
    };
    let Outcome::Clearing(v) = fed(&mut f, at("2025-03-06"), confirm(1, "S1", true)).unwrap() else { panic!() };
    assert_eq!(v.statements[0].confirmed_total, m("10"));
    fed(&mut f, at("2025-03-06"), confirm(1, "S1", true)).unwrap();
    assert_eq!(clearing(&f, "2025-03").statements[0].confirmed_total, m("10"), "confirming twice counts once");
    let e = fed(&mut f, at("2025-03-06"), confirm(1, "S2", true)).unwrap_err();
    assert_eq!((e.code, e.field.as_str()), (ErrorCode::FailedPrecondition, "institution_id"));
    let e = fed(&mut f, at("2025-03-06"), confirm(1, "S9", true)).unwrap_err();
    assert_eq!((e.code, e.field.as_str()), (ErrorCode::NotFound, "serial"));
    // A confirmed line reversed while the month is open leaves the confirmed total too.
    reverse(&mut f, at("2025-03-07"), &id("110000", 1, "S1"));
    assert_eq!(clearing(&f, "2025-03").statements[0].confirmed_total, Money::ZERO);
    fed(&mut f, at("2025-03-07"), confirm(2, "S2", true)).unwrap();
    let Outcome::Clearing(v) = fed(&mut f, at("2025-03-08"), confirm(2, "S2", false)).unwrap() else { panic!() };
    assert_eq!(v.statements[0].confirmed_total, Money::ZERO, "a confirmation can be rolled back");
    for (token, size, field) in
        [("nonsense", 1, "page_token"), ("310000/110000/H001/S1", 1, "page_token"), ("", 0, "page_size")]
    {
        let q = Query::Clearing { month: "2025-03".into(), page_token: token.into(), page_size: size };
        assert_eq!(run_query(&f, &q).unwrap_err().field, field);
    }
    let q = Query::Clearing { month: "2025-3".into(), page_token: String::new(), page_size: 1 };
    assert_eq!(run_query(&f, &q).unwrap_err().field, "month");
}

#[test]
fn an_institution_disputes_a_cleared_line_once_within_the_window() {
    let mut f = MemKv::default();
    let (t1, t2, t3) = (id("110000", 1, "S1"), id("110000", 1, "S2"), id("110000", 1, "S3"));
    commit(&mut f, at("2025-03-05"), &t1, "310000", m("100.00"));
    commit(&mut f, at("2025-03-06"), &t2, "310000", m("40.00"));
    commit(&mut f, at("2025-03-07"), &t3, "310000", m("10.00"));
    let dispute = |t: &TransferId, claimed: &str, reason: &str| FederationCommand::DisputeClearing {
        month: "2025-03".into(),
        transfer: t.clone(),
        claimed: m(claimed),
        reason: reason.into(),
    };
    let resolve = |t: &TransferId, uphold: bool| FederationCommand::ResolveDispute {
        month: "2025-03".into(),
        transfer: t.clone(),
        uphold,
        note: "checked the bill".into(),
    };
    let refused = |f: &mut MemKv, day: &str, cmd: FederationCommand| {
        let e = fed(f, at(day), cmd).unwrap_err();
        (e.code, e.field)
    };
    let precondition = |field: &str| (ErrorCode::FailedPrecondition, field.to_string());
    assert_eq!(refused(&mut f, "2025-03-20", dispute(&t1, "120", "x")), precondition("month"), "not cleared");
    fed(&mut f, at("2025-04-01"), FederationCommand::RunClearing { month: "2025-03".into() }).unwrap();
    reverse(&mut f, at("2025-04-02"), &t3);
    // Raised once; the same dispute again changes nothing, another is refused.
    fed(&mut f, at("2025-04-05"), dispute(&t1, "120.00", "two lines were left off")).unwrap();
    fed(&mut f, at("2025-04-05"), dispute(&t1, "120.00", "two lines were left off")).unwrap();
    assert_eq!(
        refused(&mut f, "2025-04-05", dispute(&t1, "130", "more")),
        (ErrorCode::AlreadyExists, "serial".to_string())
    );
    assert_eq!(refused(&mut f, "2025-04-05", dispute(&t2, "40", "same")).1, "claimed_amount");
    assert_eq!(refused(&mut f, "2025-04-05", dispute(&t2, "41", " ")).1, "reason");
    assert_eq!(refused(&mut f, "2025-04-05", dispute(&t3, "5", "x")), precondition("serial"), "reversed");
    assert_eq!(refused(&mut f, "2025-04-17", dispute(&t2, "41", "late")), precondition("month"), "window closed");
    let other = id("110000", 2, "S1");
    assert_eq!(refused(&mut f, "2025-04-05", dispute(&other, "1", "x")), precondition("institution_id"));
    assert_eq!(refused(&mut f, "2025-04-05", resolve(&t2, true)), precondition("serial"), "not disputed");
    // Upheld: +20 in April; decided once.
    fed(&mut f, at("2025-04-06"), resolve(&t1, true)).unwrap();
    fed(&mut f, at("2025-04-06"), resolve(&t1, true)).unwrap();
    assert_eq!(refused(&mut f, "2025-04-06", resolve(&t1, false)), precondition("serial"));
    let april: Vec<(String, LineKind, Money)> =
        lines(&f, "2025-04", 10).into_iter().map(|(_, _, l)| (l.serial.to_string(), l.kind, l.amount)).collect();
    assert_eq!(
        april,
        vec![("S1".into(), LineKind::Dispute, m("20.00")), ("S3".into(), LineKind::Reversal, m("-10.00"))]
    );
    let march = lines(&f, "2025-03", 10);
    let d = march[0].2.dispute.clone().expect("the line shows its dispute");
    assert_eq!((d.claimed, d.outcome.map(|o| o.upheld)), (m("120.00"), Some(true)));
    // 310000 now owes 120 + 40 for what is in force, and the prepaid accounts show it.
    assert_eq!(owed(&f, "310000", "110000"), m("160.00"));
    assert_eq!((prepaid(&f, "310000").consumed, prepaid(&f, "110000").adjusted), (m("160.00"), m("20.00")));
    // Reversing the disputed settlement gives back what was owed for it: 120.
    reverse(&mut f, at("2025-04-07"), &t1);
    assert_eq!(total(&f, "2025-04", "310000", "110000"), m("-110.00"), "+20 − 10 − 120");
    assert_eq!(owed(&f, "310000", "110000"), m("40.00"));
    assert_eq!((prepaid(&f, "310000").consumed, prepaid(&f, "110000").adjusted), (m("40.00"), Money::ZERO));
}

/// A committed transfer of the property test's model.
#[derive(Debug, Clone)]
struct Transfer {
    id: TransferId,
    insured: String,
    amount: Money,
    in_force: bool,
    month: String,
    /// Claimed, and how it was decided.
    dispute: Option<(Money, Option<bool>)>,
    adjusted: Money,
}

/// One step of the property test.
#[derive(Debug, Clone)]
enum Step {
    /// Commit a new transfer: insured index, treatment index, institution, amount in fen.
    Commit(usize, usize, u8, u32),
    /// Reverse the n-th latest committed transfer (modulo), if in force.
    Reverse(usize),
    /// Let days pass.
    Days(u8),
    /// Clear the month `n` months back (0 = this month, refused).
    Clear(u8),
    /// Settle the month `n` months back.
    Settle(u8),
    /// Confirm the n-th latest committed transfer's line in its month.
    Confirm(usize),
    /// Dispute the n-th latest committed transfer's line, claiming an amount in fen.
    Dispute(usize, u32),
    /// Decide the n-th latest committed transfer's dispute.
    Resolve(usize, bool),
}

fn step() -> impl Strategy<Value = Step> {
    // Indices count back from the latest transfer, over a few, so that a dispute, its
    // decision and a reversal often meet the same transfer.
    prop_oneof![
        3 => (0..3usize, 0..3usize, 1..3u8, 1..100_000u32).prop_map(|(i, t, n, a)| Step::Commit(i, t, n, a)),
        2 => (0..3usize).prop_map(Step::Reverse),
        2 => (1..20u8).prop_map(Step::Days),
        2 => (0..3u8).prop_map(Step::Clear),
        1 => (0..4u8).prop_map(Step::Settle),
        1 => (0..3usize).prop_map(Step::Confirm),
        3 => (0..3usize, 0..100_000u32).prop_map(|(k, a)| Step::Dispute(k, a)),
        3 => (0..3usize, any::<bool>()).prop_map(|(k, u)| Step::Resolve(k, u)),
    ]
}

fn month_back(d: Date, n: u8) -> String {
    let (y, mo, _) = d.ymd();
    let idx = i64::from(y) * 12 + i64::from(mo) - 1 - i64::from(n);
    format!("{:04}-{:02}", idx / 12, idx % 12 + 1)
}

const PROVINCES: [&str; 3] = ["110000", "310000", "440000"];

proptest! {
    #![proptest_config(ProptestConfig { cases: 2048, ..ProptestConfig::default() })]

    /// After any sequence: each pair owes the sum of the lines of its months not settled (the
    /// model keeps its own ledger of every line it expects, by month); a cleared month's
    /// statements never change; what insured provinces paid, treatment provinces received;
    /// disputes are accepted exactly when the rules say.
    #[test]
    fn what_a_pair_owes_is_the_lines_of_its_months_not_settled(steps in prop::collection::vec(step(), 1..60)) {
        let mut f = MemKv::default();
        let mut day = Date::parse("2025-01-10").unwrap();
        let mut transfers: Vec<Transfer> = Vec::new();
        // Expected line totals by (month, insured, treatment); cleared months with their day;
        // settled months; cleared months' statements as they were when cleared.
        let mut expected: BTreeMap<(String, String, String), Money> = BTreeMap::new();
        let mut cleared: BTreeMap<String, Date> = BTreeMap::new();
        let mut settled: BTreeSet<String> = BTreeSet::new();
        let mut frozen: BTreeMap<String, Vec<StatementSummary>> = BTreeMap::new();
        let open_month = |day: Date, cleared: &BTreeMap<String, Date>| {
            let now = month_back(day, 0);
            match cleared.keys().next_back() {
                Some(last) if *last >= now => {
                    let d = Date::parse(&format!("{last}-15")).unwrap();
                    month_back(d.plus_days(31), 0)
                }
                _ => now,
            }
        };
        for s in steps {
            let time = LogTime(i64::from(day.days()) * 86_400_000 + 4 * 3_600_000);
            match s {
                Step::Commit(i, t, n, fen) => {
                    if i == t { continue; }
                    let serial = format!("S{}", transfers.len());
                    let tid = id(PROVINCES[t], n, &serial);
                    let amount = Money::from_fen(i64::from(fen));
                    commit(&mut f, time, &tid, PROVINCES[i], amount);
                    let month = open_month(day, &cleared);
                    *expected.entry((month.clone(), PROVINCES[i].into(), PROVINCES[t].into())).or_default() += amount;
                    transfers.push(Transfer {
                        id: tid, insured: PROVINCES[i].into(), amount, in_force: true, month,
                        dispute: None, adjusted: Money::ZERO,
                    });
                }
                Step::Reverse(k) => {
                    if transfers.is_empty() { continue; }
                    let k = transfers.len() - 1 - k % transfers.len();
                    if !transfers[k].in_force { continue; }
                    let x = transfers[k].clone();
                    reverse(&mut f, time, &x.id);
                    transfers[k].in_force = false;
                    let (target, back) = if cleared.contains_key(&x.month) {
                        (open_month(day, &cleared), x.amount + x.adjusted)
                    } else {
                        (x.month.clone(), x.amount)
                    };
                    *expected.entry((target, x.insured, x.id.treatment.to_string())).or_default() -= back;
                }
                Step::Days(n) => day = day.plus_days(i32::from(n)),
                Step::Clear(n) => {
                    let month = month_back(day, n);
                    let r = fed(&mut f, time, FederationCommand::RunClearing { month: month.clone() });
                    prop_assert_eq!(r.is_ok(), n > 0, "{:?}", r);
                    if n > 0 && !cleared.contains_key(&month) {
                        cleared.insert(month.clone(), day);
                        frozen.insert(month.clone(), clearing(&f, &month).statements);
                    }
                }
                Step::Settle(n) => {
                    let month = month_back(day, n);
                    let r = fed(&mut f, time, FederationCommand::SettleClearing { month: month.clone() });
                    prop_assert_eq!(r.is_ok(), cleared.contains_key(&month), "{:?}", r);
                    if r.is_ok() { settled.insert(month); }
                }
                Step::Confirm(k) => {
                    if transfers.is_empty() { continue; }
                    let x = transfers[transfers.len() - 1 - k % transfers.len()].clone();
                    let cmd = FederationCommand::ConfirmClearing {
                        month: x.month, treatment: x.id.treatment.clone(), institution: x.id.institution.clone(),
                        serial: x.id.serial.clone(), confirm: true,
                    };
                    // A line reversed while its month was open is gone.
                    let r = fed(&mut f, time, cmd);
                    prop_assert!(r.is_ok() || !x.in_force, "{:?}", r);
                }
                Step::Dispute(k, fen) => {
                    if transfers.is_empty() { continue; }
                    let k = transfers.len() - 1 - k % transfers.len();
                    let x = transfers[k].clone();
                    let claimed = Money::from_fen(i64::from(fen));
                    let cmd = FederationCommand::DisputeClearing {
                        month: x.month.clone(), transfer: x.id.clone(), claimed, reason: "r".into(),
                    };
                    let r = fed(&mut f, time, cmd);
                    let within = cleared.get(&x.month).is_some_and(|c| day.days() - c.days() <= 15);
                    // The same dispute again answers as before, whatever happened since.
                    let want = match x.dispute {
                        Some((c, _)) => c == claimed,
                        None => within && x.in_force && claimed != x.amount,
                    };
                    prop_assert_eq!(r.is_ok(), want, "{:?} {:?}", r, x);
                    if r.is_ok() && x.dispute.is_none() {
                        transfers[k].dispute = Some((claimed, None));
                    }
                }
                Step::Resolve(k, uphold) => {
                    if transfers.is_empty() { continue; }
                    let k = transfers.len() - 1 - k % transfers.len();
                    let x = transfers[k].clone();
                    let cmd = FederationCommand::ResolveDispute {
                        month: x.month.clone(), transfer: x.id.clone(), uphold, note: String::new(),
                    };
                    let r = fed(&mut f, time, cmd);
                    let want = match x.dispute {
                        None => false,
                        Some((_, Some(decided))) => decided == uphold,
                        Some((_, None)) => !uphold || x.in_force,
                    };
                    prop_assert_eq!(r.is_ok(), want, "{:?} {:?}", r, x);
                    if let (Ok(_), Some((claimed, None))) = (&r, x.dispute) {
                        transfers[k].dispute = Some((claimed, Some(uphold)));
                        if uphold {
                            let delta = claimed - x.amount;
                            transfers[k].adjusted += delta;
                            let target = open_month(day, &cleared);
                            *expected.entry((target, x.insured, x.id.treatment.to_string())).or_default() += delta;
                        }
                    }
                }
            }
            // Each pair owes the expected lines of its unsettled months.
            for i in PROVINCES {
                for t in PROVINCES {
                    if i == t { continue; }
                    let want: Money = expected.iter()
                        .filter(|((mo, ei, et), _)| ei == i && et == t && !settled.contains(mo))
                        .map(|(_, a)| *a).sum();
                    prop_assert_eq!(owed(&f, i, t), want, "{} owes {}", i, t);
                }
            }
            // Statements hold exactly the expected totals; lines add up to them.
            let months: BTreeSet<String> = expected.keys().map(|(mo, _, _)| mo.clone()).collect();
            for mo in &months {
                let view = clearing(&f, mo);
                for s in &view.statements {
                    let want = expected.get(&(mo.clone(), s.insured.to_string(), s.treatment.to_string())).copied();
                    prop_assert_eq!(Some(s.total), want);
                }
                let all = lines(&f, mo, 7);
                let sum: Money = all.iter().map(|(_, _, l)| l.amount).sum();
                prop_assert_eq!(sum, view.statements.iter().map(|s| s.total).sum::<Money>());
                prop_assert_eq!(all.len() as u64, view.statements.iter().map(|s| s.line_count).sum::<u64>());
            }
            for (mo, before) in &frozen {
                let now: Vec<(ProvinceCode, ProvinceCode, Money, u64)> =
                    clearing(&f, mo).statements.into_iter().map(|s| (s.insured, s.treatment, s.total, s.line_count)).collect();
                let was: Vec<(ProvinceCode, ProvinceCode, Money, u64)> =
                    before.iter().cloned().map(|s| (s.insured, s.treatment, s.total, s.line_count)).collect();
                prop_assert_eq!(now, was, "cleared month {} changed", mo);
            }
            // The prepaid accounts: paid = received; upheld adjustments move between them, so
            // Σ (balance + adjusted) + Σ consumed = Σ top-ups (none here) + Σ in force.
            let views = match run_query(&f, &Query::Prepaid).unwrap() {
                Answer::Prepaid(v) => v,
                o => panic!("{o:?}"),
            };
            let sum = |g: fn(&PrepaidView) -> Money| views.iter().map(g).sum::<Money>();
            prop_assert_eq!(sum(|v| v.paid), sum(|v| v.received));
            let in_force: Money = transfers.iter().filter(|x| x.in_force).map(|x| x.amount).sum();
            prop_assert_eq!(sum(|v| v.balance + v.adjusted), Money::ZERO - in_force);
        }
    }
}
