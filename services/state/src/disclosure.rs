//! The fund's monthly report (issue 13.4, disclosure): the change of the fund ledger over a
//! month and the balances at its end.
//!
//! The ledger is a set of running totals. When the first entry of a new month is applied, the
//! ledger as it stood after the last entry of the month before is kept under
//! `fundclose/{YYYY-MM}` ([`close_months`]); a month's report is then the difference of two
//! kept ledgers, so it costs two point reads, never a scan of the month's settlements, and a
//! month that has ended reads the same for good. Apply writes the close from the entry's own
//! time (the group's time), so every replica keeps the same one.

use medmesh_payment::Period;
use medmesh_types::{LogTime, Money};

use crate::kv::{keys, load, KvRead, Tx};
use crate::model::FundLedger;
use crate::DomainError;

/// Keeps the ledger as it stood at `last` as the close of every month from `last`'s month up
/// to (not including) `now`'s. Called once per applied entry of a province group, before the
/// entry's commands, so the ledger loaded is the one the month ended with.
pub(crate) fn close_months(tx: &mut Tx<'_>, last: LogTime, now: LogTime) {
    let (mut month, current) = (Period::of(last.date()), Period::of(now.date()));
    if month >= current {
        return;
    }
    let ledger: FundLedger = tx.load(keys::FUND).unwrap_or_default();
    // The group's time moves at most MAX_CLOCK_STEP_MS per entry, so this is one month in
    // practice; the bound keeps a forged gap from writing without end.
    for _ in 0..1200 {
        if month >= current {
            break;
        }
        tx.store(&keys::fund_close(month), &ledger);
        month = month.next();
    }
}

pub use crate::figures::FundReport;

fn count(a: u64, b: u64) -> i64 {
    i64::try_from(i128::from(b) - i128::from(a)).unwrap_or(i64::MAX)
}

impl FundReport {
    /// Fills in the risk figures as GetFund's risk level measures them: the average monthly
    /// expenditure over the 12 months ending with `period`, and the months of it that `close`
    /// (the pool with its prepaid account) covers.
    pub(crate) fn measure_risk(&mut self, kv: &dyn KvRead, period: Period, close: &FundLedger) {
        self.monthly_expenditure = crate::payment::monthly_expenditure_to(kv, period);
        self.months_covered_tenths =
            medmesh_payment::prepay::months_covered_tenths(close.with_prepaid(), self.monthly_expenditure);
    }

    /// The report of `period` from the ledgers at its start and end.
    pub fn between(period: Period, closed: bool, open: &FundLedger, close: &FundLedger) -> FundReport {
        FundReport {
            period,
            closed,
            contributions: close.contributions - open.contributions,
            assistance_funded: close.assistance_funded - open.assistance_funded,
            pooling_paid: close.pooling_paid - open.pooling_paid,
            critical_illness_paid: close.critical_illness_paid - open.critical_illness_paid,
            assistance_paid: close.assistance_paid - open.assistance_paid,
            accounts_paid: close.accounts_paid - open.accounts_paid,
            settlements: count(open.settlements, close.settlements),
            reversals: count(open.reversals, close.reversals),
            nonlocal_out_settlements: count(open.nonlocal_settlements, close.nonlocal_settlements),
            nonlocal_out_amount: close.nonlocal_owed - open.nonlocal_owed,
            nonlocal_in_settlements: count(open.nonlocal_treated, close.nonlocal_treated),
            nonlocal_in_amount: close.nonlocal_receivable - open.nonlocal_receivable,
            recovered: close.recovered - open.recovered,
            deducted: close.deducted - open.deducted,
            fines_imposed: close.fines_imposed - open.fines_imposed,
            institution_payments: close.institution_payments - open.institution_payments,
            prepaid_out: close.prepaid_out - open.prepaid_out,
            rewards_paid: close.rewards_paid - open.rewards_paid,
            closing_balance: close.balance(),
            closing_assistance_balance: close.assistance_balance(),
            monthly_expenditure: Money::ZERO,
            months_covered_tenths: None,
        }
    }
}

/// The report of `period`: FAILED_PRECONDITION naming `month` if it has not begun by the
/// group's time.
pub fn fund_report(kv: &dyn KvRead, period: Period) -> Result<FundReport, DomainError> {
    let now: Option<LogTime> = load(kv, keys::TIME);
    let current = match now {
        Some(t) if Period::of(t.date()) >= period => Period::of(t.date()),
        _ => return Err(DomainError::precondition("month", format!("{period} has not begun"))),
    };
    let ledger = |p: Period| -> FundLedger { load(kv, &keys::fund_close(p)).unwrap_or_default() };
    let closed = period < current;
    let close = if closed { ledger(period) } else { load(kv, keys::FUND).unwrap_or_default() };
    let mut r = FundReport::between(period, closed, &ledger(period.prev()), &close);
    r.measure_risk(kv, period, &close);
    Ok(r)
}
