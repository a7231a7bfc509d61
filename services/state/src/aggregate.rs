//! National aggregates (issue 14.1): what a province publishes to the federation about a day
//! or a month, so that the national administration sees volumes, fund health, non-local flows
//! and supervision across provinces from totals alone. No identity, no claim and no claim line
//! leaves the province: an aggregate is the change of the fund ledger over the period
//! ([`crate::disclosure::FundReport`]) and the period's tally ([`crate::tally::Tally`]).
//!
//! **Publication.** When a province group applies the first entry of a new day, it keeps the
//! fund ledger as the day ended (`fundday/{date}`) and puts the ended day's aggregate, and
//! the ended month's when a month ended too, into its outbox, from where the leader sends it
//! to the federation ([`crate::FederationCommand::RecordAggregate`]). An agency may also
//! publish a period on demand (`PublishAggregate`), for the day or month so far (`closed`
//! false) or again after a correction.
//!
//! **Versions.** A publication whose figures equal the last one published is not sent again:
//! it returns the version already published. Other figures are the next version (1, 2, …).
//! The federation records each version once: the same version again with the same figures
//! changes nothing; with other figures, or out of order, it is refused. So a late or repeated
//! publication never replaces anything silently, and a correction is always a new version.

use medmesh_payment::Period;
use medmesh_types::{Date, LogTime, Money, ProvinceCode};

pub use crate::figures::{AggPeriod, Aggregate, Flow, FundReport, Tally};
use crate::kv::{keys, load, scan_prefix, KvRead, Tx};
use crate::model::FundLedger;
use crate::shared::SharedItem;
use crate::DomainError;

/// The figures of `period` now: FAILED_PRECONDITION naming `period` if it has not begun by
/// the group's time. `version` is 0.
pub fn compute(kv: &dyn KvRead, period: AggPeriod) -> Result<Aggregate, DomainError> {
    let today = match load::<LogTime>(kv, keys::TIME) {
        Some(t) if period.first_day() <= t.date() => t.date(),
        _ => return Err(DomainError::precondition("period", format!("{period} has not begun"))),
    };
    let closed = period.last_day() < today;
    let (fund, tally) = match period {
        AggPeriod::Month(m) => (crate::disclosure::fund_report(kv, m)?, crate::tally::month(kv, m)),
        AggPeriod::Day(d) => {
            let ledger = |day: Date| -> FundLedger { load(kv, &keys::fund_day_close(day)).unwrap_or_default() };
            let close = if closed { ledger(d) } else { load(kv, keys::FUND).unwrap_or_default() };
            let mut r = FundReport::between(Period::of(d), closed, &ledger(d.plus_days(-1)), &close);
            r.measure_risk(kv, Period::of(d), &close);
            (r, load(kv, &keys::tally_day(d)).unwrap_or_default())
        }
    };
    Ok(Aggregate { period, version: 0, closed, fund, tally })
}

/// The figures of `period` now, with the version under which they were published (0 when the
/// figures now differ from the last publication, or nothing was published).
pub fn current(kv: &dyn KvRead, period: AggPeriod) -> Result<Aggregate, DomainError> {
    let mut agg = compute(kv, period)?;
    if let Some(last) = load::<Aggregate>(kv, &keys::aggregate_published(&period.to_string())) {
        if last.same_figures(&agg) {
            agg.version = last.version;
        }
    }
    Ok(agg)
}

/// Publishes `period`: figures equal to the last publication return it; other figures are the
/// next version, kept here and put in the outbox for the federation.
pub(crate) fn publish(tx: &mut Tx<'_>, period: AggPeriod) -> Result<Aggregate, DomainError> {
    let mut agg = compute(tx, period)?;
    let key = keys::aggregate_published(&period.to_string());
    match tx.load::<Aggregate>(&key) {
        Some(last) if last.same_figures(&agg) => return Ok(last),
        Some(last) => agg.version = last.version + 1,
        None => agg.version = 1,
    }
    tx.store(&key, &agg);
    crate::kv::outbox(tx, SharedItem::Aggregate(Box::new(agg.clone())));
    Ok(agg)
}

/// Keeps the fund ledger as it stood at `last` as the close of every day from `last`'s day up
/// to (not including) `now`'s, and publishes each ended day, and each ended month. Called once
/// per applied entry of a province group, after the group's time moved to `now` and the
/// month closes were kept, before the entry's commands.
pub(crate) fn close_days(tx: &mut Tx<'_>, last: LogTime, now: LogTime) {
    let (mut day, today) = (last.date(), now.date());
    if day >= today {
        return;
    }
    let ledger: FundLedger = tx.load(keys::FUND).unwrap_or_default();
    // The group's time moves at most MAX_CLOCK_STEP_MS per entry, so one day ends per entry;
    // the bound keeps anything else from writing without end.
    for _ in 0..3 {
        if day >= today {
            break;
        }
        tx.store(&keys::fund_day_close(day), &ledger);
        // Both periods have begun and ended by `now`: publishing them cannot fail.
        let _ = publish(tx, AggPeriod::Day(day));
        if day.plus_days(1) > Period::of(day).last_day() {
            let _ = publish(tx, AggPeriod::Month(Period::of(day)));
        }
        day = day.plus_days(1);
    }
}

/// Largest magnitude of an amount in a published aggregate, yuan: sums over every province
/// stay far inside what [`Money`] holds.
const MAX_AGGREGATE_YUAN: i64 = 1_000_000_000_000_000;
/// Largest magnitude of a count in a published aggregate.
const MAX_AGGREGATE_COUNT: i64 = 1_000_000_000_000;
/// Most institution levels and most insured provinces an aggregate lists.
const MAX_AGGREGATE_ROWS: usize = 64;

/// Checks what a province sends before the federation records it: every figure within its
/// bounds, each field named.
pub(crate) fn check(agg: &Aggregate) -> Result<(), DomainError> {
    check_period("aggregate.period", agg.period)?;
    check_period("aggregate.fund.month", AggPeriod::Month(agg.fund.period))?;
    if agg.version == 0 {
        return Err(DomainError::invalid("aggregate.version", "must be 1 or more"));
    }
    let limit = Money::from_fen(MAX_AGGREGATE_YUAN * 100);
    let money = |field: &str, m: Money| -> Result<(), DomainError> {
        if m > limit || m < Money::ZERO - limit {
            return Err(DomainError::invalid(
                format!("aggregate.{field}"),
                format!("{m} is beyond ±{MAX_AGGREGATE_YUAN} yuan"),
            ));
        }
        Ok(())
    };
    let count = |field: &str, n: i64| -> Result<(), DomainError> {
        if n.unsigned_abs() > MAX_AGGREGATE_COUNT as u64 {
            return Err(DomainError::invalid(
                format!("aggregate.{field}"),
                format!("{n} is beyond ±{MAX_AGGREGATE_COUNT}"),
            ));
        }
        Ok(())
    };
    let f = &agg.fund;
    for (field, m) in [
        ("contributions", f.contributions),
        ("assistance_funded", f.assistance_funded),
        ("pooling_paid", f.pooling_paid),
        ("critical_illness_paid", f.critical_illness_paid),
        ("assistance_paid", f.assistance_paid),
        ("accounts_paid", f.accounts_paid),
        ("nonlocal_out_amount", f.nonlocal_out_amount),
        ("nonlocal_in_amount", f.nonlocal_in_amount),
        ("recovered", f.recovered),
        ("deducted", f.deducted),
        ("fines_imposed", f.fines_imposed),
        ("institution_payments", f.institution_payments),
        ("prepaid_out", f.prepaid_out),
        ("rewards_paid", f.rewards_paid),
        ("closing_balance", f.closing_balance),
        ("closing_assistance_balance", f.closing_assistance_balance),
        ("monthly_expenditure", f.monthly_expenditure),
        ("cash_paid", agg.tally.cash_paid),
    ] {
        money(field, m)?;
    }
    let t = &agg.tally;
    for (field, n) in [
        ("settlements", f.settlements),
        ("reversals", f.reversals),
        ("nonlocal_out_settlements", f.nonlocal_out_settlements),
        ("nonlocal_in_settlements", f.nonlocal_in_settlements),
        ("months_covered", f.months_covered_tenths.unwrap_or(0)),
        ("alerts", t.alerts),
        ("cases_opened", t.cases_opened),
        ("cases_executed", t.cases_executed),
        ("points", t.points),
        ("discipline_entries", t.discipline_entries),
        ("reports_received", t.reports_received),
        ("inspections", t.inspections),
    ] {
        count(field, n)?;
    }
    if t.by_level.len() > MAX_AGGREGATE_ROWS {
        return Err(DomainError::too_large("aggregate.by_level", format!("at most {MAX_AGGREGATE_ROWS} levels")));
    }
    if t.nonlocal_in_by_province.len() > MAX_AGGREGATE_ROWS {
        return Err(DomainError::too_large(
            "aggregate.nonlocal_in_by_province",
            format!("at most {MAX_AGGREGATE_ROWS} provinces"),
        ));
    }
    let rows = t.by_level.values().map(|f| ("by_level", f));
    for (field, flow) in rows.chain(t.nonlocal_in_by_province.values().map(|f| ("nonlocal_in_by_province", f))) {
        count(field, flow.settlements)?;
        money(field, flow.amount)?;
    }
    if f.period != agg.period.month() {
        return Err(DomainError::invalid("aggregate.fund.month", format!("must be {}", agg.period.month())));
    }
    Ok(())
}

/// Checks a period that came off the wire or the log: a month must be a calendar month.
pub(crate) fn check_period(field: &str, period: AggPeriod) -> Result<(), DomainError> {
    match period {
        AggPeriod::Month(m) if Period::new(m.year(), m.month()).is_none() => {
            Err(DomainError::invalid(field, "must be a calendar month from 2000-01 to 2199-12"))
        }
        _ => Ok(()),
    }
}

/// Federation: records a version of `province`'s aggregate of a period (see the module docs
/// for the rules).
pub(crate) fn record(tx: &mut Tx<'_>, province: &ProvinceCode, agg: &Aggregate) -> Result<(), DomainError> {
    let period = agg.period.to_string();
    let vkey = keys::fed_aggregate(&period, province, agg.version);
    match tx.load::<Aggregate>(&vkey) {
        Some(old) if &old == agg => return Ok(()),
        Some(_) => {
            return Err(DomainError::exists(
                "aggregate.version",
                format!(
                    "version {} of {province}'s aggregate of {period} was published with other figures; \
                     a correction is a new version",
                    agg.version
                ),
            ))
        }
        None => {}
    }
    let lkey = keys::fed_aggregate_latest(&period, province);
    let next = tx.load::<Aggregate>(&lkey).map_or(1, |l| l.version + 1);
    if agg.version != next {
        return Err(DomainError::precondition(
            "aggregate.version",
            format!("{province}'s next version of {period} is {next}, not {}", agg.version),
        ));
    }
    tx.store(&vkey, agg);
    tx.store(&lkey, agg);
    Ok(())
}

/// Federation: the latest aggregate of `period` of every province that published it (or of
/// `only`), by province. NOT_FOUND naming `period` (or `province`) when there is none.
pub fn national(
    kv: &dyn KvRead,
    period: AggPeriod,
    only: Option<&ProvinceCode>,
) -> Result<Vec<(ProvinceCode, Aggregate)>, DomainError> {
    let text = period.to_string();
    if let Some(p) = only {
        return load::<Aggregate>(kv, &keys::fed_aggregate_latest(&text, p))
            .map(|a| vec![(p.clone(), a)])
            .ok_or_else(|| DomainError::not_found("province", format!("{p} has published no aggregate of {text}")));
    }
    let prefix = keys::fed_aggregates_latest(&text);
    let list: Vec<(ProvinceCode, Aggregate)> = scan_prefix(kv, &prefix, 1024)
        .into_iter()
        .filter_map(|(k, v)| {
            let code = std::str::from_utf8(&k).ok()?.strip_prefix(&prefix)?;
            Some((ProvinceCode::new(code).ok()?, crate::kv::decode(&v)))
        })
        .collect();
    if list.is_empty() {
        return Err(DomainError::not_found("period", format!("no province has published an aggregate of {text}")));
    }
    Ok(list)
}

/// The non-local flow matrix of a period from the treatment provinces' aggregates: one row per
/// (insured province, treatment province) with care in the period, sorted by both.
pub fn flows(aggs: &[(ProvinceCode, Aggregate)]) -> Vec<(ProvinceCode, ProvinceCode, Flow)> {
    let mut rows: Vec<(ProvinceCode, ProvinceCode, Flow)> = aggs
        .iter()
        .flat_map(|(treatment, a)| {
            a.tally
                .nonlocal_in_by_province
                .iter()
                .map(move |(insured, f)| (insured.clone(), treatment.clone(), f.clone()))
        })
        .collect();
    rows.sort_by(|a, b| (&a.0, &a.1).cmp(&(&b.0, &b.1)));
    rows
}
