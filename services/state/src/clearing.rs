//! The federation's prepaid accounts and monthly clearing (先预付后清算), as bookkeeping over the
//! recorded transfer decisions.
//!
//! A province's prepaid account is its top-ups less what committed non-local settlements of its
//! insured (in force) have consumed; below its threshold it raises a warning, and care is never
//! refused for it.
//!
//! Clearing is kept as it happens, indexed by month, so that no command reads history: a commit
//! puts one line into the month open at the time, and a reversal takes it out again while that
//! month is open. A month is cleared (fixed) once it has ended, which costs one record however
//! many lines it has; a reversal of a line in a cleared month, or a decision whose log time ran
//! behind a cleared month, goes into the month open then as an adjustment line. Settling a
//! cleared month pays each province pair's statement total from the insured province's prepaid
//! account to the treatment province, once, and the positions fall back by it: what a pair owes
//! is always the sum of the lines of its months not yet settled. Institutions confirm their
//! lines (and may roll a confirmation back); statements' totals are their lines' sums to the fen.

use std::collections::BTreeMap;

use medmesh_payment::Period;
use medmesh_types::{InstitutionId, LogTime, Money, ProvinceCode, Serial};

use crate::kv::{decode, keys, load, scan_prefix, KvRead, Tx};
use crate::model::Outcome;
use crate::shared::*;
use crate::DomainError;

/// Checks a month written `YYYY-MM` (the payment cycle's [`Period`]).
pub(crate) fn check_month(month: &str) -> Result<Period, DomainError> {
    Period::parse(month)
        .ok_or_else(|| DomainError::invalid("month", format!("{month:?} is not a month written YYYY-MM")))
}

/// The month new lines go into: the month of `now`, or the month after the latest cleared
/// month when the log's time runs behind it (a cleared month never changes).
fn open_month(kv: &dyn KvRead, now: LogTime) -> String {
    let current = Period::of(now.date());
    let open = match load::<String>(kv, keys::FED_CLEARED_LAST).and_then(|l| Period::parse(&l)) {
        Some(last) if last >= current => last.next(),
        _ => current,
    };
    open.to_string()
}

/// Days after a month is cleared during which an institution may dispute one of its lines.
pub const DISPUTE_DAYS: i64 = 15;

/// Where a transfer's settlement line is, and the adjustment an upheld dispute made to it.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
struct LineAt {
    month: String,
    adjusted: Money,
}

fn month_record(kv: &dyn KvRead, month: &str) -> ClearingMonth {
    load(kv, &keys::fed_clearing_month(month)).unwrap_or_default()
}

/// What one province's prepaid account reflects of the positions.
#[derive(Debug, Clone, Copy, Default)]
struct Flows {
    /// As insured province: in force, with upheld disputes' adjustments.
    consumed: Money,
    /// As insured province: paid by settled months.
    paid: Money,
    /// As treatment province: received by settled months.
    received: Money,
    /// As treatment province: upheld disputes' adjustments.
    adjusted: Money,
}

fn flows(kv: &dyn KvRead) -> BTreeMap<ProvinceCode, Flows> {
    let mut out: BTreeMap<ProvinceCode, Flows> = BTreeMap::new();
    for (insured, treatment, p) in positions(kv) {
        let i = out.entry(insured).or_default();
        i.consumed += p.amount + p.adjusted;
        i.paid += p.settled;
        let t = out.entry(treatment).or_default();
        t.received += p.settled;
        t.adjusted += p.adjusted;
    }
    out
}

/// Every province with a prepaid account or a position, with its prepaid view.
pub(crate) fn prepaid_views(kv: &dyn KvRead) -> Vec<PrepaidView> {
    let flows = flows(kv);
    let settled_months = load::<u64>(kv, keys::FED_SETTLED_SEQ).unwrap_or(0);
    let mut accounts: BTreeMap<ProvinceCode, PrepaidAccount> = BTreeMap::new();
    for (k, v) in scan_prefix(kv, keys::FED_PREPAID, usize::MAX) {
        let k = String::from_utf8_lossy(&k).to_string();
        if let Ok(p) = ProvinceCode::new(k.trim_start_matches(keys::FED_PREPAID)) {
            accounts.insert(p, decode(&v));
        }
    }
    for p in flows.keys() {
        accounts.entry(p.clone()).or_default();
    }
    accounts
        .into_iter()
        .map(|(province, a)| {
            let Flows { consumed, paid, received, adjusted } = flows.get(&province).copied().unwrap_or_default();
            let balance = a.topped_up - consumed;
            PrepaidView {
                province,
                topped_up: a.topped_up,
                consumed,
                balance,
                warning_below: a.warning_below,
                warning: balance < a.warning_below,
                paid,
                owed: consumed - paid,
                received,
                adjusted,
                settled_months,
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

/// Puts a line into a month's statement of `(insured, treatment)`.
fn add_line(tx: &mut Tx<'_>, month: &str, insured: &ProvinceCode, treatment: &ProvinceCode, line: ClearingLine) {
    let (inst, serial) = (&line.institution, &line.serial);
    tx.store(&keys::fed_clearing_index(month, treatment, inst, serial), insured);
    tx.store(&keys::fed_clearing_line(month, insured, treatment, inst, serial, line.kind), &line);
    let tk = keys::fed_clearing_totals(month, insured, treatment);
    let mut t: StatementTotals = tx.load(&tk).unwrap_or_default();
    t.lines += 1;
    t.total += line.amount;
    tx.store(&tk, &t);
}

/// Updates what a pair owes.
pub(crate) fn update_position(
    tx: &mut Tx<'_>,
    insured: &ProvinceCode,
    treatment: &ProvinceCode,
    change: impl FnOnce(&mut Position),
) {
    let pkey = keys::fed_position(insured, treatment);
    let mut p: Position = tx.load(&pkey).unwrap_or_default();
    change(&mut p);
    tx.store(&pkey, &p);
}

/// A committed transfer's line goes into the month open now.
pub(crate) fn on_commit(tx: &mut Tx<'_>, transfer: &TransferId, insured: &ProvinceCode, amount: Money, now: LogTime) {
    let month = open_month(tx, now);
    let line = ClearingLine {
        institution: transfer.institution.clone(),
        serial: transfer.serial.clone(),
        amount,
        kind: LineKind::Settlement,
        confirmed: false,
        dispute: None,
    };
    add_line(tx, &month, insured, &transfer.treatment, line);
    tx.store(&keys::fed_clearing_at(transfer), &LineAt { month, adjusted: Money::ZERO });
}

/// A reversed transfer's line leaves its month while that month is open; once the month is
/// cleared, an adjustment line of minus the amount (and of an upheld dispute's adjustment) goes
/// into the month open now.
pub(crate) fn on_reverse(tx: &mut Tx<'_>, transfer: &TransferId, insured: &ProvinceCode, amount: Money, now: LogTime) {
    let Some(LineAt { month, adjusted }) = tx.load::<LineAt>(&keys::fed_clearing_at(transfer)) else { return };
    let (treatment, inst, serial) = (&transfer.treatment, &transfer.institution, &transfer.serial);
    if month_record(tx, &month).status() == MonthStatus::Open {
        let lk = keys::fed_clearing_line(&month, insured, treatment, inst, serial, LineKind::Settlement);
        let Some(line) = tx.load::<ClearingLine>(&lk) else { return };
        tx.put_delete(&lk);
        tx.put_delete(&keys::fed_clearing_index(&month, treatment, inst, serial));
        tx.put_delete(&keys::fed_clearing_at(transfer));
        let tk = keys::fed_clearing_totals(&month, insured, treatment);
        let mut t: StatementTotals = tx.load(&tk).unwrap_or_default();
        t.lines = t.lines.saturating_sub(1);
        t.total -= line.amount;
        if line.confirmed {
            t.confirmed_total -= line.amount;
        }
        if t.lines == 0 {
            tx.put_delete(&tk);
        } else {
            tx.store(&tk, &t);
        }
    } else {
        let open = open_month(tx, now);
        let line = ClearingLine {
            institution: inst.clone(),
            serial: serial.clone(),
            amount: Money::ZERO - amount - adjusted,
            kind: LineKind::Reversal,
            confirmed: false,
            dispute: None,
        };
        add_line(tx, &open, insured, treatment, line);
        if !adjusted.is_zero() {
            update_position(tx, insured, treatment, |p| p.adjusted -= adjusted);
        }
    }
}

/// Every statement's totals of a month, in (insured, treatment) order (at most one per
/// province pair).
fn statements(kv: &dyn KvRead, month: &str) -> Vec<StatementSummary> {
    scan_prefix(kv, &keys::fed_clearing_statements(month), usize::MAX)
        .into_iter()
        .filter_map(|(k, v)| {
            let k = String::from_utf8_lossy(&k).to_string();
            let mut parts = k.rsplit('/');
            let treatment = ProvinceCode::new(parts.next()?).ok()?;
            let insured = ProvinceCode::new(parts.next()?).ok()?;
            let t: StatementTotals = decode(&v);
            Some(StatementSummary {
                insured,
                treatment,
                line_count: t.lines,
                total: t.total,
                confirmed_total: t.confirmed_total,
                lines: Vec::new(),
            })
        })
        .collect()
}

fn view(kv: &dyn KvRead, month: &str) -> ClearingView {
    ClearingView { month: month.to_string(), record: month_record(kv, month), statements: statements(kv, month) }
}

/// Clears a month that has ended: its lines are fixed from now on. Clearing it again changes
/// nothing and answers the same.
pub(crate) fn run_clearing(tx: &mut Tx<'_>, month: &str, now: LogTime) -> Result<Outcome, DomainError> {
    let current = Period::of(now.date());
    if check_month(month)? >= current {
        return Err(DomainError::precondition(
            "month",
            format!("{month} has not ended (it is {current}); a month is cleared after it ends"),
        ));
    }
    let key = keys::fed_clearing_month(month);
    let mut record = month_record(tx, month);
    if record.cleared_at.is_none() {
        record.cleared_at = Some(now);
        tx.store(&key, &record);
        if tx.load::<String>(keys::FED_CLEARED_LAST).is_none_or(|last| last.as_str() < month) {
            tx.store(keys::FED_CLEARED_LAST, &month.to_string());
        }
    }
    Ok(Outcome::Clearing(view(tx, month)))
}

/// Settles a cleared month: each statement's total is paid from the insured province's
/// prepaid account to the treatment province, once; the positions fall back by it. Settling
/// it again changes nothing and answers the same.
pub(crate) fn settle(tx: &mut Tx<'_>, month: &str, now: LogTime) -> Result<Outcome, DomainError> {
    check_month(month)?;
    let key = keys::fed_clearing_month(month);
    let mut record = month_record(tx, month);
    match record.status() {
        MonthStatus::Open => {
            return Err(DomainError::precondition(
                "month",
                format!("{month} has not been cleared; clear it (RunClearing) once it has ended"),
            ))
        }
        MonthStatus::Settled => return Ok(Outcome::Clearing(view(tx, month))),
        MonthStatus::Cleared => {}
    }
    for s in statements(tx, month) {
        update_position(tx, &s.insured, &s.treatment, |p| p.settled += s.total);
    }
    record.settled_at = Some(now);
    tx.store(&key, &record);
    let seq = load::<u64>(tx, keys::FED_SETTLED_SEQ).unwrap_or(0) + 1;
    tx.store(keys::FED_SETTLED_SEQ, &seq);
    Ok(Outcome::Clearing(view(tx, month)))
}

/// The insured province of an institution's line (treatment, serial) of a month.
fn line_insured(
    kv: &dyn KvRead,
    month: &str,
    treatment: &ProvinceCode,
    institution: &InstitutionId,
    serial: &Serial,
) -> Result<ProvinceCode, DomainError> {
    check_month(month)?;
    if let Some(insured) = load::<ProvinceCode>(kv, &keys::fed_clearing_index(month, treatment, institution, serial)) {
        return Ok(insured);
    }
    // Not this institution's: another's line with that serial is refused, naming the
    // institution (one read of the serial's few institutions); no line at all is NOT_FOUND.
    let elsewhere = !scan_prefix(kv, &keys::fed_clearing_serial(month, treatment, serial), 1).is_empty();
    Err(if elsewhere {
        DomainError::precondition(
            "institution_id",
            format!("line {serial} belongs to another institution; an institution acts only on its own lines"),
        )
    } else {
        DomainError::not_found("serial", format!("no clearing line {serial} of {treatment} in {month}"))
    })
}

/// The insured province of a transfer's lines in `month`, the key of its settlement line
/// there, and that line if it is there (a serial may have only adjustment lines in a month).
fn settlement_line(
    kv: &dyn KvRead,
    month: &str,
    transfer: &TransferId,
) -> Result<(ProvinceCode, String, Option<ClearingLine>), DomainError> {
    let (treatment, inst, serial) = (&transfer.treatment, &transfer.institution, &transfer.serial);
    let insured = line_insured(kv, month, treatment, inst, serial)?;
    let key = keys::fed_clearing_line(month, &insured, treatment, inst, serial, LineKind::Settlement);
    let line = load(kv, &key);
    Ok((insured, key, line))
}

/// The month of a transfer's settlement line, while it has one.
pub(crate) fn line_month(kv: &dyn KvRead, transfer: &TransferId) -> Option<String> {
    load::<LineAt>(kv, &keys::fed_clearing_at(transfer)).map(|at| at.month)
}

/// Whether the transfer was reversed.
fn reversed(kv: &dyn KvRead, transfer: &TransferId) -> bool {
    load::<DecisionRecord>(kv, &keys::fed_decision(transfer)).is_some_and(|d| d.reversed.is_some())
}

/// An institution disputes its settlement line of a cleared month, within [`DISPUTE_DAYS`] of
/// the clearing, once; the same dispute again changes nothing.
pub(crate) fn dispute(
    tx: &mut Tx<'_>,
    month: &str,
    transfer: &TransferId,
    claimed: Money,
    reason: &str,
    now: LogTime,
) -> Result<Outcome, DomainError> {
    let serial = &transfer.serial;
    let (_, lk, line) = settlement_line(tx, month, transfer)?;
    let Some(mut line) = line else {
        return Err(DomainError::precondition(
            "serial",
            format!("{serial} has only an adjustment line in {month}; dispute the settlement's own line"),
        ));
    };
    if let Some(d) = &line.dispute {
        if d.claimed == claimed && d.reason == reason {
            return Ok(Outcome::Clearing(view(tx, month)));
        }
        return Err(DomainError::exists("serial", format!("line {serial} of {month} was disputed already")));
    }
    let record = month_record(tx, month);
    let Some(cleared_at) = record.cleared_at else {
        return Err(DomainError::precondition(
            "month",
            format!("{month} is not cleared: its lines can still change; dispute once it is cleared"),
        ));
    };
    let closes = LogTime(cleared_at.millis() + DISPUTE_DAYS * 86_400_000);
    if now > closes {
        return Err(DomainError::precondition(
            "month",
            format!("the {DISPUTE_DAYS}-day dispute window of {month} closed on {}", closes.date()),
        ));
    }
    if reversed(tx, transfer) {
        return Err(DomainError::precondition("serial", format!("{serial} was reversed: nothing is owed for it")));
    }
    if claimed == line.amount {
        return Err(DomainError::invalid(
            "claimed_amount",
            format!("is the line's amount {claimed}: nothing to dispute"),
        ));
    }
    line.dispute = Some(LineDispute { claimed, reason: reason.to_string(), raised_at: now, outcome: None });
    tx.store(&lk, &line);
    Ok(Outcome::Clearing(view(tx, month)))
}

/// The national administration upholds or rejects a dispute, once. Upheld, an adjustment
/// line of the amount claimed less the line's amount goes into the month open now.
pub(crate) fn resolve(
    tx: &mut Tx<'_>,
    month: &str,
    transfer: &TransferId,
    uphold: bool,
    note: &str,
    now: LogTime,
) -> Result<Outcome, DomainError> {
    let (treatment, inst, serial) = (&transfer.treatment, &transfer.institution, &transfer.serial);
    let (insured, lk, line) = settlement_line(tx, month, transfer)?;
    let Some((mut line, mut d)) = line.and_then(|mut l| l.dispute.take().map(|d| (l, d))) else {
        return Err(DomainError::precondition("serial", format!("line {serial} of {month} is not disputed")));
    };
    if let Some(o) = &d.outcome {
        if o.upheld == uphold {
            return Ok(Outcome::Clearing(view(tx, month)));
        }
        let was = if o.upheld { "upheld" } else { "rejected" };
        return Err(DomainError::precondition("serial", format!("the dispute of {serial} was {was} already")));
    }
    if uphold && reversed(tx, transfer) {
        return Err(DomainError::precondition(
            "serial",
            format!("{serial} was reversed since: nothing is owed for it"),
        ));
    }
    let delta = d.claimed - line.amount;
    d.outcome = Some(DisputeOutcome { upheld: uphold, note: note.to_string(), decided_at: now });
    line.dispute = Some(d);
    tx.store(&lk, &line);
    if uphold {
        let open = open_month(tx, now);
        let adj = ClearingLine {
            institution: inst.clone(),
            serial: serial.clone(),
            amount: delta,
            kind: LineKind::Dispute,
            confirmed: false,
            dispute: None,
        };
        add_line(tx, &open, &insured, treatment, adj);
        update_position(tx, &insured, treatment, |p| p.adjusted += delta);
        let ak = keys::fed_clearing_at(transfer);
        let mut at: LineAt = tx.load(&ak).unwrap_or_default();
        at.adjusted += delta;
        tx.store(&ak, &at);
    }
    Ok(Outcome::Clearing(view(tx, month)))
}

/// Confirms an institution's line of a month, or rolls its confirmation back.
pub(crate) fn confirm(
    tx: &mut Tx<'_>,
    month: &str,
    treatment: &ProvinceCode,
    institution: &InstitutionId,
    serial: &Serial,
    yes: bool,
) -> Result<Outcome, DomainError> {
    let insured = line_insured(tx, month, treatment, institution, serial)?;
    let tk = keys::fed_clearing_totals(month, &insured, treatment);
    let mut totals: StatementTotals = tx.load(&tk).unwrap_or_default();
    let before = totals.clone();
    for kind in LineKind::ALL {
        let lk = keys::fed_clearing_line(month, &insured, treatment, institution, serial, kind);
        let Some(mut line) = tx.load::<ClearingLine>(&lk).filter(|l| l.confirmed != yes) else { continue };
        line.confirmed = yes;
        if yes {
            totals.confirmed_total += line.amount;
        } else {
            totals.confirmed_total -= line.amount;
        }
        tx.store(&lk, &line);
    }
    if totals != before {
        tx.store(&tk, &totals);
    }
    Ok(Outcome::Clearing(view(tx, month)))
}

/// A month's clearing: its status, every statement's totals, and up to `page_size` lines after
/// the cursor, across statements in (insured, treatment, institution, serial, kind) order. The
/// cursor is the last line's key below the month, so a page reads only its own lines.
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
    let prefix = keys::fed_clearing_lines(month);
    let start = if page_token.is_empty() {
        prefix.clone()
    } else {
        let parts: Vec<&str> = page_token.split('/').collect();
        let well_formed = parts.len() == 5
            && ProvinceCode::new(parts[0]).is_ok()
            && ProvinceCode::new(parts[1]).is_ok()
            && InstitutionId::new(parts[2]).is_ok()
            && Serial::new(parts[3]).is_ok()
            && LineKind::ALL.iter().any(|k| k.key() == parts[4]);
        if !well_formed {
            return Err(DomainError::invalid("page_token", "is not a token this list returned"));
        }
        // Just after the last line returned.
        format!("{prefix}{page_token}\u{0}")
    };
    let mut end = prefix.clone().into_bytes();
    if let Some(last) = end.last_mut() {
        *last += 1;
    }
    let rows = kv.scan(start.as_bytes(), &end, page_size + 1);
    let more = rows.len() > page_size;
    let mut v = view(kv, month);
    let mut last = String::new();
    // Lines and statements are both in (insured, treatment) order: walk them in step.
    let mut at = 0;
    for (k, val) in rows.into_iter().take(page_size) {
        let k = String::from_utf8_lossy(&k).to_string();
        let rest = &k[prefix.len()..];
        let mut parts = rest.split('/');
        let (Some(insured), Some(treatment)) = (parts.next(), parts.next()) else { continue };
        while v.statements.get(at).is_some_and(|s| (s.insured.as_str(), s.treatment.as_str()) < (insured, treatment)) {
            at += 1;
        }
        if let Some(s) =
            v.statements.get_mut(at).filter(|s| s.insured.as_str() == insured && s.treatment.as_str() == treatment)
        {
            s.lines.push(decode(&val));
        }
        last = rest.to_string();
    }
    let next_page_token = if more { last } else { String::new() };
    Ok(crate::Answer::Clearing { view: v, next_page_token })
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
