//! National aggregates (issue 14.1) over the in-memory store: what a province publishes about a
//! day and a month is worked out here from the settlements made, not from the ledger; the
//! federation records each version once.

use medmesh_payment::Period;
use medmesh_types::{Date, LogTime, Money};

use crate::aggregate::{flows, AggPeriod, Aggregate};
use crate::*;

use super::{commit, inst, m, nonlocal_visit, ok, one, prov, run, seeded, ser, settle_cmd, trio, visit_of, NOW};

/// Moves the group's time to the first entry of `target` with empty entries, each as far
/// ahead as the group accepts (the way an idle leader's heartbeat entries move it).
fn advance_to(kv: &mut MemKv, target: Date) {
    loop {
        let now: LogTime = kv::load(kv, keys::TIME).unwrap();
        if now.date() >= target {
            return;
        }
        let next = LogTime(now.millis() + crate::MAX_CLOCK_STEP_MS);
        let (res, writes) = apply_batch(kv, &Batch::of::<Command>(next, Vec::new()), Role::Province);
        assert!(res.is_empty());
        kv.write(writes);
    }
}

fn today(kv: &MemKv) -> Date {
    kv::load::<LogTime>(kv, keys::TIME).unwrap().date()
}

/// Applies `cmd` at the group's time (not the fixture's NOW, which may lie behind it).
fn now_one(kv: &mut MemKv, cmd: impl Into<Command>) -> CommandResult {
    let now: LogTime = kv::load(kv, keys::TIME).unwrap();
    let (mut r, writes) = apply_batch(kv, &Batch::of(now, vec![cmd.into()]), Role::Province);
    kv.write(writes);
    r.remove(0)
}

fn settled(r: CommandResult) -> Settlement {
    match r {
        Ok(Outcome::Settlement(s)) => s,
        other => panic!("{other:?}"),
    }
}

fn aggregates_in_outbox(kv: &MemKv) -> Vec<Aggregate> {
    match run_query(kv, &Query::Outbox { limit: 100 }).unwrap() {
        Answer::SharedLog(items) => items
            .into_iter()
            .filter_map(|(_, i)| match i {
                SharedItem::Aggregate(a) => Some(*a),
                _ => None,
            })
            .collect(),
        other => panic!("{other:?}"),
    }
}

fn current(kv: &MemKv, period: AggPeriod) -> Aggregate {
    match run_query(kv, &Query::Aggregate { period }).unwrap() {
        Answer::Aggregate(a) => *a,
        other => panic!("{other:?}"),
    }
}

fn publish(kv: &mut MemKv, period: AggPeriod) -> Aggregate {
    match ok(&now_one(kv, ProvinceCommand::PublishAggregate { period })) {
        Outcome::Aggregate(a) => *a,
        other => panic!("{other:?}"),
    }
}

/// What the fund and the account paid for a settlement.
fn paid(s: &Settlement) -> Money {
    s.split.pooling_fund + s.split.critical_illness + s.split.medical_assistance + s.split.individual_account
}

#[test]
fn an_ended_day_is_published_once_with_what_was_settled_in_it() {
    let mut kv = seeded();
    let d0 = NOW.date();
    visit_of(&mut kv, "V1", "300", VisitKind::Outpatient, "2025-03-10");
    let s1 = settled(run(&mut kv, vec![settle_cmd("S1", "V1")]).remove(0));
    assert!(aggregates_in_outbox(&kv).is_empty(), "the day has not ended");

    // The first entry of the next day publishes the ended day, final.
    advance_to(&mut kv, d0.plus_days(1));
    let published = aggregates_in_outbox(&kv);
    assert_eq!(published.len(), 1, "{published:?}");
    let a = &published[0];
    assert_eq!((a.period, a.version, a.closed), (AggPeriod::Day(d0), 1, true));
    assert_eq!((a.fund.settlements, a.fund.reversals), (1, 0));
    assert_eq!(a.fund.pooling_paid, s1.split.pooling_fund);
    assert_eq!(a.fund.accounts_paid, s1.split.individual_account);
    // The fixture's institution is level 3: the settlement is listed there, with the patient's cash.
    let level3 = &a.tally.by_level[&3];
    assert_eq!((level3.settlements, level3.amount), (1, paid(&s1)));
    assert_eq!(a.tally.by_level.len(), 1);
    assert_eq!(a.tally.cash_paid, s1.split.cash);
    assert!(a.tally.nonlocal_in_by_province.is_empty());
    // What the province shows for the day is what it published.
    assert_eq!(&current(&kv, AggPeriod::Day(d0)), a);

    // The next day: one new settlement and the first one reversed; published on demand.
    let d1 = today(&kv);
    visit_of(&mut kv, "V2", "200", VisitKind::Outpatient, "2025-03-10");
    let s2 = settled(now_one(&mut kv, settle_cmd("S2", "V2")));
    let r = ProvinceCommand::Reverse { institution: inst(), serial: ser("R1"), settlement: ser("S1") };
    ok(&now_one(&mut kv, r));
    let p = publish(&mut kv, AggPeriod::Day(d1));
    assert_eq!((p.version, p.closed), (1, false), "the day so far");
    assert_eq!((p.fund.settlements, p.fund.reversals), (0, 1), "one new in force, one reversed");
    assert_eq!(p.tally.by_level[&3].settlements, 0);
    assert_eq!(p.tally.by_level[&3].amount, paid(&s2) - paid(&s1));
    assert_eq!(p.tally.cash_paid, s2.split.cash - s1.split.cash);
    // The day before is untouched by the reversal: an ended day never changes.
    assert_eq!(&current(&kv, AggPeriod::Day(d0)), a);

    // The same figures again are not sent again; new figures are the next version.
    assert_eq!(publish(&mut kv, AggPeriod::Day(d1)), p);
    assert_eq!(aggregates_in_outbox(&kv).len(), 2);
    let c = ProvinceCommand::Contribute {
        serial: ser("C9"),
        amount: m("70"),
        source: "payroll".into(),
        fund: Fund::Pooling,
    };
    ok(&now_one(&mut kv, c));
    assert_eq!(current(&kv, AggPeriod::Day(d1)).version, 0, "published figures are out of date");
    let p2 = publish(&mut kv, AggPeriod::Day(d1));
    assert_eq!((p2.version, p2.fund.contributions), (2, m("70")));
    assert_eq!(aggregates_in_outbox(&kv).len(), 3);

    // When the day ends, its final figures are version 3.
    advance_to(&mut kv, d1.plus_days(1));
    let last = aggregates_in_outbox(&kv).pop().unwrap();
    assert_eq!((last.period, last.version, last.closed), (AggPeriod::Day(d1), 3, true));
    assert_eq!(last.fund, FundReportFinal::of(&p2.fund));

    // A period not begun is refused naming the period.
    let later = AggPeriod::Day(today(&kv).plus_days(1));
    let e = run_query(&kv, &Query::Aggregate { period: later }).unwrap_err();
    assert_eq!((e.code, e.field.as_str()), (ErrorCode::FailedPrecondition, "period"), "{e}");
}

/// The same report, marked closed.
struct FundReportFinal;
impl FundReportFinal {
    fn of(r: &crate::disclosure::FundReport) -> crate::disclosure::FundReport {
        crate::disclosure::FundReport { closed: true, ..r.clone() }
    }
}

#[test]
fn an_ended_month_is_published_with_its_fund_report_and_tally() {
    let mut kv = seeded();
    visit_of(&mut kv, "V1", "300", VisitKind::Outpatient, "2025-03-10");
    let s1 = settled(run(&mut kv, vec![settle_cmd("S1", "V1")]).remove(0));
    let march = Period::parse("2025-03").unwrap();
    advance_to(&mut kv, Date::parse("2025-04-01").unwrap());
    let months: Vec<Aggregate> =
        aggregates_in_outbox(&kv).into_iter().filter(|a| matches!(a.period, AggPeriod::Month(_))).collect();
    assert_eq!(months.len(), 1);
    let a = &months[0];
    assert_eq!((a.period, a.version, a.closed), (AggPeriod::Month(march), 1, true));
    let report = match run_query(&kv, &Query::FundReport { period: march }).unwrap() {
        Answer::FundReport(r) => *r,
        other => panic!("{other:?}"),
    };
    assert_eq!(a.fund, report);
    assert_eq!(a.tally.by_level[&3].amount, paid(&s1));
    // Every day of March from the fixture's day on was published too, each once.
    let days = aggregates_in_outbox(&kv).iter().filter(|a| matches!(a.period, AggPeriod::Day(_))).count();
    assert_eq!(days as i32, Date::parse("2025-04-01").unwrap().days() - NOW.date().days());
}

#[test]
fn visitors_care_is_counted_by_insured_province_and_makes_the_flow_matrix() {
    let mut t = trio();
    nonlocal_visit(&mut t, "V1", "300", Some(FilingKind::LongTermResident));
    let s = commit(&mut t, "S1", "V1");
    let a = current(&t.treatment, AggPeriod::Day(NOW.date()));
    let flow = &a.tally.nonlocal_in_by_province[&prov("310000")];
    assert_eq!((flow.settlements, flow.amount), (1, s.split.fund_total() + s.split.individual_account));
    assert_eq!(a.fund.nonlocal_in_settlements, 1);
    assert_eq!(a.fund.nonlocal_in_amount, flow.amount);
    // The insured province sees the same care going out.
    let out = current(&t.insured, AggPeriod::Day(NOW.date()));
    assert_eq!((out.fund.nonlocal_out_settlements, out.fund.nonlocal_out_amount), (1, flow.amount));

    // The matrix: rows of (insured, treatment), sorted, from the treatment provinces' figures.
    let mut other = a.clone();
    other.tally.nonlocal_in_by_province.clear();
    other.tally.nonlocal_in_by_province.insert(prov("110000"), crate::figures::Flow { settlements: 2, amount: m("5") });
    let rows = flows(&[(prov("440000"), other), (prov("110000"), a.clone())]);
    let got: Vec<(String, String, i64)> =
        rows.iter().map(|(i, t, f)| (i.to_string(), t.to_string(), f.settlements)).collect();
    assert_eq!(
        got,
        vec![("110000".to_string(), "440000".to_string(), 2), ("310000".to_string(), "110000".to_string(), 1)]
    );
}

fn record(fed: &mut MemKv, province: &str, a: &Aggregate) -> CommandResult {
    one(fed, FederationCommand::RecordAggregate { province: prov(province), aggregate: Box::new(a.clone()) })
}

fn national(fed: &MemKv, period: AggPeriod, province: Option<&str>) -> Result<Vec<(String, u32)>, DomainError> {
    match run_query(fed, &Query::NationalAggregates { period, province: province.map(prov) }) {
        Ok(Answer::NationalAggregates(list)) => Ok(list.into_iter().map(|(p, a)| (p.to_string(), a.version)).collect()),
        Ok(other) => panic!("{other:?}"),
        Err(e) => Err(e),
    }
}

#[test]
fn the_federation_records_each_version_once_and_in_order() {
    let mut kv = seeded();
    visit_of(&mut kv, "V1", "300", VisitKind::Outpatient, "2025-03-10");
    run(&mut kv, vec![settle_cmd("S1", "V1")]);
    let d0 = AggPeriod::Day(NOW.date());
    let v1 = publish(&mut kv, d0);
    let mut fed = MemKv::default();
    ok(&record(&mut fed, "110000", &v1));
    ok(&record(&mut fed, "110000", &v1)); // a repeated publication changes nothing
    assert_eq!(national(&fed, d0, None).unwrap(), vec![("110000".to_string(), 1)]);

    // Version 1 again with other figures: refused, never replaces silently.
    let mut forged = v1.clone();
    forged.tally.cash_paid += m("1");
    let e = record(&mut fed, "110000", &forged).unwrap_err();
    assert_eq!((e.code, e.field.as_str()), (ErrorCode::AlreadyExists, "aggregate.version"), "{e}");
    // A version out of order: refused naming the version.
    let v3 = Aggregate { version: 3, ..forged.clone() };
    let e = record(&mut fed, "110000", &v3).unwrap_err();
    assert_eq!((e.code, e.field.as_str()), (ErrorCode::FailedPrecondition, "aggregate.version"), "{e}");
    // The correction as version 2 is recorded and is what the nation reads.
    ok(&record(&mut fed, "110000", &Aggregate { version: 2, ..forged.clone() }));
    ok(&record(&mut fed, "310000", &v1));
    assert_eq!(national(&fed, d0, None).unwrap(), vec![("110000".to_string(), 2), ("310000".to_string(), 1)]);
    assert_eq!(national(&fed, d0, Some("310000")).unwrap(), vec![("310000".to_string(), 1)]);
    // A late version 1 after version 2 changes nothing.
    ok(&record(&mut fed, "110000", &v1));
    assert_eq!(national(&fed, d0, Some("110000")).unwrap(), vec![("110000".to_string(), 2)]);

    // Nothing published for a period, or by a province: NOT_FOUND naming which.
    let e = national(&fed, AggPeriod::Day(NOW.date().plus_days(-1)), None).unwrap_err();
    assert_eq!((e.code, e.field.as_str()), (ErrorCode::NotFound, "period"), "{e}");
    let e = national(&fed, d0, Some("440000")).unwrap_err();
    assert_eq!((e.code, e.field.as_str()), (ErrorCode::NotFound, "province"), "{e}");

    // Figures beyond any province's: refused naming the figure; version 0: refused.
    let mut huge = Aggregate { version: 3, ..forged.clone() };
    huge.fund.pooling_paid = Money::from_fen(i64::MAX);
    let e = record(&mut fed, "110000", &huge).unwrap_err();
    assert_eq!((e.code, e.field.as_str()), (ErrorCode::InvalidArgument, "aggregate.pooling_paid"), "{e}");
    let e = record(&mut fed, "110000", &Aggregate { version: 0, ..forged }).unwrap_err();
    assert_eq!((e.code, e.field.as_str()), (ErrorCode::InvalidArgument, "aggregate.version"), "{e}");

    // Only the province itself may publish its figures.
    let cmd = Command::from(FederationCommand::RecordAggregate { province: prov("110000"), aggregate: Box::new(v1) });
    assert!(crate::access::foreign_command(&cmd, &prov("310000")).is_err());
    assert!(crate::access::foreign_command(&cmd, &prov("110000")).is_ok());
}
