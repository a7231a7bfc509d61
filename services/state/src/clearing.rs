//! The federation's prepaid accounts and monthly clearing (先预付后清算), as bookkeeping over the
//! recorded transfer decisions.
//!
//! A province's prepaid account is its top-ups less what committed non-local settlements of its
//! insured (in force) have consumed; below its threshold it raises a warning, and care is never
//! refused for it. A clearing run for a month turns that month's committed settlements in force
//! into one statement per (insured, treatment) pair, line by line; institutions confirm their
//! lines (and may roll a confirmation back); a statement's total is the sum of its lines to the
//! fen, and the net positions follow from the statements.

use std::collections::BTreeMap;

use medmesh_types::{InstitutionId, LogTime, Money, ProvinceCode, Serial};

use crate::kv::{decode, keys, load, scan_prefix, KvRead, Tx};
use crate::model::Outcome;
use crate::shared::*;
use crate::DomainError;

/// Checks a month written `YYYY-MM`.
pub(crate) fn check_month(month: &str) -> Result<(), DomainError> {
    let ok = month.len() == 7
        && month.as_bytes()[4] == b'-'
        && month[..4].bytes().all(|b| b.is_ascii_digit())
        && month[5..].parse::<u32>().is_ok_and(|m| (1..=12).contains(&m));
    if ok {
        Ok(())
    } else {
        Err(DomainError::invalid("month", format!("{month:?} is not a month written YYYY-MM")))
    }
}

fn month_of(t: LogTime) -> String {
    let (y, m, _) = t.date().ymd();
    format!("{y:04}-{m:02}")
}

/// What each province's insured have consumed: committed settlements in force, by insured.
fn consumed(kv: &dyn KvRead) -> BTreeMap<ProvinceCode, Money> {
    let mut out = BTreeMap::new();
    for (insured, _, p) in positions(kv) {
        *out.entry(insured).or_insert(Money::ZERO) += p.amount;
    }
    out
}

/// Every province with a prepaid account or a position, with its prepaid view.
pub(crate) fn prepaid_views(kv: &dyn KvRead) -> Vec<PrepaidView> {
    let used = consumed(kv);
    let mut accounts: BTreeMap<ProvinceCode, PrepaidAccount> = BTreeMap::new();
    for (k, v) in scan_prefix(kv, keys::FED_PREPAID, usize::MAX) {
        let k = String::from_utf8_lossy(&k).to_string();
        if let Ok(p) = ProvinceCode::new(k.trim_start_matches(keys::FED_PREPAID)) {
            accounts.insert(p, decode(&v));
        }
    }
    for p in used.keys() {
        accounts.entry(p.clone()).or_default();
    }
    accounts
        .into_iter()
        .map(|(province, a)| {
            let consumed = used.get(&province).copied().unwrap_or(Money::ZERO);
            let balance = a.topped_up - consumed;
            PrepaidView {
                province,
                topped_up: a.topped_up,
                consumed,
                balance,
                warning_below: a.warning_below,
                warning: balance < a.warning_below,
            }
        })
        .collect()
}

/// Records a top-up; idempotent on (province, serial).
pub(crate) fn top_up(
    tx: &mut Tx<'_>,
    province: &ProvinceCode,
    serial: &Serial,
    amount: Money,
    warning_below: Option<Money>,
) -> Result<Outcome, DomainError> {
    if province.as_str() == FEDERATION {
        return Err(DomainError::invalid("province", "is the federation's code, not a province"));
    }
    let idem = keys::fed_topup(province, serial);
    match tx.load::<(Money, Option<Money>)>(&idem) {
        Some(old) if old == (amount, warning_below) => {}
        Some(_) => {
            return Err(DomainError::exists(
                "serial",
                format!("top-up {serial} of {province} was already recorded with different content"),
            ))
        }
        None => {
            if amount.is_zero() || amount.is_negative() {
                return Err(DomainError::invalid("amount", "must be positive"));
            }
            if warning_below.is_some_and(|w| w.is_negative()) {
                return Err(DomainError::invalid("warning_below", "must not be negative"));
            }
            let key = keys::fed_prepaid(province);
            let mut a: PrepaidAccount = tx.load(&key).unwrap_or_default();
            a.topped_up += amount;
            if let Some(w) = warning_below {
                a.warning_below = w;
            }
            tx.store(&key, &a);
            tx.store(&idem, &(amount, warning_below));
        }
    }
    let view = prepaid_views(tx).into_iter().find(|v| &v.province == province);
    view.map(Outcome::Prepaid).ok_or_else(|| DomainError::not_found("province", "no prepaid account"))
}

/// Runs the clearing of a month. A month that is over is fixed once run (running it again
/// returns its statements); a month not yet over is computed again, keeping confirmations.
pub(crate) fn run_clearing(tx: &mut Tx<'_>, month: &str, now: LogTime) -> Result<Outcome, DomainError> {
    check_month(month)?;
    if month > month_of(now).as_str() {
        return Err(DomainError::invalid("month", format!("{month} has not begun")));
    }
    let existing: Vec<ClearingStatement> =
        scan_prefix(tx, &keys::fed_clearing_month(month), usize::MAX).iter().map(|(_, v)| decode(v)).collect();
    if !existing.is_empty() && month < month_of(now).as_str() {
        return Ok(Outcome::Clearing(existing.iter().map(ClearingStatement::summary).collect()));
    }
    let confirmed: std::collections::BTreeSet<(InstitutionId, Serial)> = existing
        .iter()
        .flat_map(|s| s.lines.iter().filter(|l| l.confirmed).map(|l| (l.institution.clone(), l.serial.clone())))
        .collect();
    let mut statements: BTreeMap<(ProvinceCode, ProvinceCode), ClearingStatement> = BTreeMap::new();
    for (_, v) in scan_prefix(tx, keys::FED_DECISIONS, usize::MAX) {
        let d: DecisionRecord = decode(&v);
        if d.decision != Decision::Commit || d.reversed.is_some() || month_of(d.decided_at) != month {
            continue;
        }
        let t = &d.transfer;
        let s = statements.entry((d.insured.clone(), t.treatment.clone())).or_insert_with(|| ClearingStatement {
            month: month.to_string(),
            insured: d.insured.clone(),
            treatment: t.treatment.clone(),
            lines: Vec::new(),
        });
        s.lines.push(ClearingLine {
            institution: t.institution.clone(),
            serial: t.serial.clone(),
            amount: d.amount,
            confirmed: confirmed.contains(&(t.institution.clone(), t.serial.clone())),
        });
    }
    for s in &existing {
        tx.put_delete(&keys::fed_clearing(month, &s.insured, &s.treatment));
        for l in &s.lines {
            tx.put_delete(&keys::fed_clearing_line(month, &s.treatment, &l.institution, &l.serial));
        }
    }
    for s in statements.values_mut() {
        s.lines.sort_by(|a, b| (&a.institution, &a.serial).cmp(&(&b.institution, &b.serial)));
        for l in &s.lines {
            tx.store(&keys::fed_clearing_line(month, &s.treatment, &l.institution, &l.serial), &s.insured);
        }
        tx.store(&keys::fed_clearing(month, &s.insured, &s.treatment), s);
    }
    Ok(Outcome::Clearing(statements.values().map(ClearingStatement::summary).collect()))
}

/// Confirms a line, or rolls its confirmation back, for the institution it belongs to.
pub(crate) fn confirm(
    tx: &mut Tx<'_>,
    month: &str,
    treatment: &ProvinceCode,
    institution: &InstitutionId,
    serial: &Serial,
    yes: bool,
) -> Result<Outcome, DomainError> {
    check_month(month)?;
    let insured = match tx.load::<ProvinceCode>(&keys::fed_clearing_line(month, treatment, institution, serial)) {
        Some(insured) => insured,
        None => {
            // Not this institution's: another's line with that serial is refused, naming the
            // institution; no line at all is NOT_FOUND.
            let prefix = format!("fclrline/{month}/{treatment}/");
            let elsewhere = scan_prefix(tx, &prefix, usize::MAX)
                .iter()
                .any(|(k, _)| String::from_utf8_lossy(k).rsplit('/').next() == Some(serial.as_str()));
            return Err(if elsewhere {
                DomainError::precondition(
                    "institution_id",
                    format!("line {serial} belongs to another institution; an institution confirms only its own lines"),
                )
            } else {
                DomainError::not_found(
                    "serial",
                    format!("no clearing line {serial} of {treatment} in {month} (has the month been run?)"),
                )
            });
        }
    };
    let key = keys::fed_clearing(month, &insured, treatment);
    let mut s: ClearingStatement =
        load(tx, &key).ok_or_else(|| DomainError::not_found("month", "statement is gone"))?;
    if let Some(l) = s.lines.iter_mut().find(|l| &l.institution == institution && &l.serial == serial) {
        l.confirmed = yes;
    }
    tx.store(&key, &s);
    Ok(Outcome::Clearing(vec![s.summary()]))
}

/// Where a page of lines starts: after `(insured, treatment, institution, serial)`.
type LineCursor = (ProvinceCode, ProvinceCode, InstitutionId, Serial);

fn parse_cursor(token: &str) -> Result<Option<LineCursor>, DomainError> {
    if token.is_empty() {
        return Ok(None);
    }
    let bad = || DomainError::invalid("page_token", "is not a token this list returned");
    let parts: Vec<&str> = token.split('/').collect();
    let [insured, treatment, institution, serial] = parts[..] else { return Err(bad()) };
    Ok(Some((
        ProvinceCode::new(insured).map_err(|_| bad())?,
        ProvinceCode::new(treatment).map_err(|_| bad())?,
        InstitutionId::new(institution).map_err(|_| bad())?,
        Serial::new(serial).map_err(|_| bad())?,
    )))
}

/// A month's statements: every statement's totals, with up to `page_size` lines after the
/// cursor, across statements in (insured, treatment, institution, serial) order.
pub(crate) fn page(
    kv: &dyn KvRead,
    month: &str,
    page_token: &str,
    page_size: usize,
) -> Result<crate::Answer, DomainError> {
    check_month(month)?;
    if !(1..=crate::MAX_ROWS).contains(&page_size) {
        return Err(DomainError::invalid("page_size", format!("must be 1 to {}", crate::MAX_ROWS)));
    }
    let after = parse_cursor(page_token)?;
    let mut left = page_size;
    let mut last: Option<LineCursor> = None;
    let mut more = false;
    let mut statements = Vec::new();
    for (_, v) in scan_prefix(kv, &keys::fed_clearing_month(month), usize::MAX) {
        let s: ClearingStatement = decode(&v);
        let mut summary = s.summary();
        for l in &s.lines {
            let at = (s.insured.clone(), s.treatment.clone(), l.institution.clone(), l.serial.clone());
            if after.as_ref().is_some_and(|a| &at <= a) {
                continue;
            }
            if left == 0 {
                more = true;
                break;
            }
            left -= 1;
            summary.lines.push(l.clone());
            last = Some(at);
        }
        statements.push(summary);
    }
    let next_page_token = match (more, last) {
        (true, Some((i, t, inst, serial))) => format!("{i}/{t}/{inst}/{serial}"),
        _ => String::new(),
    };
    Ok(crate::Answer::Clearing { statements, next_page_token })
}

/// Every `(insured, treatment, position)` the federation holds, in key order.
pub(crate) fn positions(kv: &dyn KvRead) -> Vec<(ProvinceCode, ProvinceCode, Position)> {
    scan_prefix(kv, keys::FED_POSITIONS, usize::MAX)
        .into_iter()
        .filter_map(|(k, v)| {
            let k = String::from_utf8_lossy(&k).to_string();
            let mut parts = k.split('/').skip(1);
            let insured = ProvinceCode::new(parts.next()?).ok()?;
            let treatment = ProvinceCode::new(parts.next()?).ok()?;
            Some((insured, treatment, decode::<Position>(&v)))
        })
        .collect()
}
