//! Individual accounts (issue 12.5): the monthly inflow to employees' individual accounts.
//!
//! The agency credits a month's account parts of employee contributions in one command of at
//! most [`MAX_CREDITS`](crate::MAX_CREDITS) persons, exactly once per its serial; a person is credited at most
//! once per month (a second credit for the month, under another serial, is refused naming
//! the line). Residents have no individual account. The money is the persons' own, outside the
//! pooling fund: the ledger keeps it as a memo (`FundLedger::accounts_credited`); it enters
//! the fund's figures when an account pays for care (`FundLedger::accounts_paid`).

use medmesh_types::{LogTime, Money, Serial};

use crate::kv::{keys, Tx};
use crate::model::*;
use crate::rules::{find_person, idempotent};
use crate::DomainError;

/// Applies [`ProvinceCommand::CreditAccounts`].
pub(crate) fn credit(
    tx: &mut Tx<'_>,
    cmd: &ProvinceCommand,
    serial: &Serial,
    period: medmesh_payment::Period,
    credits: &[AccountCredit],
    _now: LogTime,
) -> Result<Outcome, DomainError> {
    idempotent(tx, "~credits", serial, cmd, |tx| {
        let mut total = Money::ZERO;
        let mut seen = std::collections::BTreeSet::new();
        for (i, c) in credits.iter().enumerate() {
            let field = format!("credits[{i}].certificate");
            let mut p = find_person(tx, c.certificate_kind, &c.certificate)
                .map_err(|e| DomainError::not_found(&field, e.message))?;
            if !seen.insert(p.key.clone()) {
                return Err(DomainError::invalid(&field, "the person appears twice"));
            }
            if p.insurance != medmesh_settlement::InsuranceType::Employee {
                return Err(DomainError::precondition(&field, "residents have no individual account"));
            }
            if p.status == InsuranceStatus::Terminated {
                return Err(DomainError::precondition(&field, "the person's insurance has ended"));
            }
            let mark = keys::account_credit(&p.key, period);
            if let Some(by) = tx.load::<Serial>(&mark) {
                return Err(DomainError::precondition(&field, format!("already credited for {period} (serial {by})")));
            }
            tx.store(&mark, serial);
            p.account_balance += c.amount;
            tx.store(&keys::person(&p.key), &p);
            total += c.amount;
        }
        let mut fund: FundLedger = tx.load(keys::FUND).unwrap_or_default();
        fund.accounts_credited += total;
        tx.store(keys::FUND, &fund);
        Ok(Outcome::Credited { persons: credits.len() as u32, total })
    })
}

/// Applies [`ProvinceCommand::PrepaidSeen`]: the pool follows the federation's record of this
/// province's prepaid account (issue 12.5). What was topped up left the pool into the prepaid
/// account that pays the province's insured's non-local care, so the balance falls by each
/// top-up once. The federation's total only grows, so a total at or below the one recorded is
/// an older reading and changes nothing (idempotent, and safe whichever of two readings
/// commits first). What settled clearing months paid and received are memos, ordered by the
/// federation's count of settled months the same way (they can fall: a month of adjustment
/// lines gives money back).
pub(crate) fn prepaid_seen(
    tx: &mut Tx<'_>,
    topped_up: Money,
    settled_months: u64,
    received: Money,
    paid: Money,
) -> Outcome {
    let mut fund: FundLedger = tx.load(keys::FUND).unwrap_or_default();
    let mut changed = false;
    if topped_up > fund.prepaid_topped_up {
        fund.prepaid_topped_up = topped_up;
        changed = true;
    }
    if settled_months > fund.clearing_months_seen {
        fund.clearing_months_seen = settled_months;
        fund.clearing_received = received;
        fund.clearing_paid = paid;
        changed = true;
    }
    if changed {
        tx.store(keys::FUND, &fund);
    }
    Outcome::Stored
}
