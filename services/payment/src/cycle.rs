//! The monthly payment cycle of one institution.
//!
//! ```text
//! declare (the month is over) -> review (deductions, line by line) -> pay (once per reference,
//!                                   |  contest a deducted line once,      up to what is approved)
//!                                   |  within CONTEST_DAYS of the review;
//!                                   |  the agency accepts (the deduction is withdrawn) or rejects
//! ```
//!
//! - The declared amount is the month's [`MonthAccount::net`]: the fund's share (pooling,
//!   critical illness and individual accounts, which the fund settles with the institution) of
//!   the settlements of the month, less reversals and case recoveries. A settlement reversed or
//!   recovered on after its month was declared is counted in the month open at the time, as a
//!   late line ([`MonthAccount::late`]): a declared month never changes.
//! - `approved = declared − deducted` (a withdrawn deduction no longer counts);
//!   `outstanding = approved − paid − offset` (offset: taken from a prepayment).
//! - A review is final: one per declaration, at most [`MAX_DEDUCTIONS`] lines, each a settlement
//!   of the month at most its fund share in force ([`Declaration::review`] asks the caller),
//!   all together at most what was declared.
//!
//! Every refusal names the field at fault, as the api names it.

use medmesh_types::{Date, InstitutionId, LogTime, Money, Serial};
use serde::{Deserialize, Serialize};

use crate::Period;

/// Most deduction lines of one review.
pub const MAX_DEDUCTIONS: usize = 1000;
/// Longest free text (reason, note), in bytes.
pub const MAX_TEXT_LEN: usize = 1024;
/// Most payments of one declaration.
pub const MAX_PAYMENTS: usize = 100;
/// Days after the review within which the institution may contest a deducted line.
pub const CONTEST_DAYS: i32 = 15;

/// Why a step of the cycle was refused; `field` names what is at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayError {
    /// A field's value is not acceptable.
    #[error("{field}: {message}")]
    Invalid {
        /// The field.
        field: String,
        /// Why.
        message: String,
    },
    /// The record's state does not allow the step.
    #[error("{field}: {message}")]
    State {
        /// The field.
        field: String,
        /// Why.
        message: String,
    },
    /// A referenced record does not exist.
    #[error("{field}: {message}")]
    NotFound {
        /// The field.
        field: String,
        /// Why.
        message: String,
    },
}

impl PayError {
    /// The field at fault.
    pub fn field(&self) -> &str {
        match self {
            PayError::Invalid { field, .. } | PayError::State { field, .. } | PayError::NotFound { field, .. } => field,
        }
    }
    /// A malformed field.
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> PayError {
        PayError::Invalid { field: field.into(), message: message.into() }
    }
    /// A state that forbids the step.
    pub fn state(field: impl Into<String>, message: impl Into<String>) -> PayError {
        PayError::State { field: field.into(), message: message.into() }
    }
    /// A missing record.
    pub fn not_found(field: impl Into<String>, message: impl Into<String>) -> PayError {
        PayError::NotFound { field: field.into(), message: message.into() }
    }
}

/// Checks a free text: required, at most [`MAX_TEXT_LEN`] bytes.
pub fn check_text(field: &str, text: &str) -> Result<(), PayError> {
    if text.trim().is_empty() {
        return Err(PayError::invalid(field, "is required"));
    }
    if text.len() > MAX_TEXT_LEN {
        return Err(PayError::invalid(field, format!("is longer than {MAX_TEXT_LEN} bytes")));
    }
    Ok(())
}

/// What the fund owes one institution for one month, kept as settlements are made, reversed
/// and recovered on.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct MonthAccount {
    /// Fund share of the settlements made (or counted late) in the month.
    pub settled: Money,
    /// How many.
    pub settlements: u64,
    /// Fund share of the settlements reversed.
    pub reversed: Money,
    /// How many.
    pub reversals: u64,
    /// Recovered by executed cases.
    pub recovered: Money,
    /// Lines of other (declared) months counted here: reversals and recoveries after the
    /// declaration.
    pub late: u64,
}

impl MonthAccount {
    /// What the month adds to what the fund owes the institution.
    pub fn net(&self) -> Money {
        self.settled - self.reversed - self.recovered
    }
}

/// Where a declaration stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum DeclarationStatus {
    /// Declared, waiting for the agency's review.
    Declared,
    /// Reviewed: payable up to the approved amount.
    Reviewed,
}

/// A deduction the reviewer asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeductionInput {
    /// The settlement (a line of the declaration).
    pub settlement: Serial,
    /// How much of its fund share is refused.
    pub amount: Money,
    /// Why, as the institution will read it.
    pub reason: String,
    /// The monitoring alert the deduction rests on, if any.
    pub alert: Option<u64>,
}

/// The institution's contest of a deducted line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Contest {
    /// Why the institution disagrees.
    pub reason: String,
    /// When.
    pub at: LogTime,
    /// The agency's answer, once given.
    pub resolution: Option<Resolution>,
}

/// The agency's answer to a contest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resolution {
    /// Accepted: the deduction is withdrawn (the amount becomes payable again).
    pub accepted: bool,
    /// Why.
    pub reason: String,
    /// When.
    pub at: LogTime,
}

/// A deducted line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Deduction {
    /// The settlement.
    pub settlement: Serial,
    /// Refused amount.
    pub amount: Money,
    /// Why.
    pub reason: String,
    /// The alert it rests on.
    pub alert: Option<u64>,
    /// The institution's contest, if any (one per line).
    pub contest: Option<Contest>,
}

impl Deduction {
    /// Whether the deduction still counts (not withdrawn by an accepted contest).
    pub fn stands(&self) -> bool {
        !matches!(&self.contest, Some(Contest { resolution: Some(Resolution { accepted: true, .. }), .. }))
    }
}

/// One institution's declaration of one month.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Declaration {
    /// The institution.
    pub institution: InstitutionId,
    /// The month.
    pub period: Period,
    /// The institution's declaration serial.
    pub serial: Serial,
    /// When it was declared.
    pub declared_at: LogTime,
    /// The month's account as declared.
    pub account: MonthAccount,
    /// Declared amount ([`MonthAccount::net`]).
    pub declared: Money,
    /// Where it stands.
    pub status: DeclarationStatus,
    /// When it was reviewed.
    pub reviewed_at: Option<LogTime>,
    /// The reviewer's note.
    pub note: String,
    /// Deducted lines, in the review's order.
    pub deductions: Vec<Deduction>,
    /// Paid in money.
    pub paid: Money,
    /// Settled from a prepayment.
    pub offset: Money,
    /// References of the payments recorded, in order.
    pub payments: Vec<Serial>,
}

impl Declaration {
    /// Declares `period` with its account on `today`: the month must be over.
    pub fn new(
        institution: InstitutionId,
        period: Period,
        serial: Serial,
        account: MonthAccount,
        at: LogTime,
    ) -> Result<Declaration, PayError> {
        let today = at.date();
        if !period.ended_by(today) {
            return Err(PayError::state(
                "period",
                format!("{period} is not over on {today}: a month is declared after its last day"),
            ));
        }
        Ok(Declaration {
            institution,
            period,
            serial,
            declared_at: at,
            declared: account.net(),
            account,
            status: DeclarationStatus::Declared,
            reviewed_at: None,
            note: String::new(),
            deductions: Vec::new(),
            paid: Money::ZERO,
            offset: Money::ZERO,
            payments: Vec::new(),
        })
    }

    /// Deducted and standing.
    pub fn deducted(&self) -> Money {
        self.deductions.iter().filter(|d| d.stands()).fold(Money::ZERO, |s, d| s + d.amount)
    }

    /// Declared less deducted.
    pub fn approved(&self) -> Money {
        self.declared - self.deducted()
    }

    /// Approved less paid and offset.
    pub fn outstanding(&self) -> Money {
        self.approved() - self.paid - self.offset
    }

    /// Contests waiting for the agency.
    pub fn contests_open(&self) -> usize {
        self.deductions.iter().filter(|d| matches!(&d.contest, Some(c) if c.resolution.is_none())).count()
    }

    /// Last day a deducted line may be contested.
    pub fn contest_until(&self) -> Option<Date> {
        self.reviewed_at.map(|t| t.date().plus_days(CONTEST_DAYS))
    }

    /// Reviews the declaration once: `cap` answers, for a settlement, the most that may be
    /// deducted from it (its fund share in force, less what cases recovered), or why it is no
    /// line of this declaration. Answers the total deducted.
    pub fn review(
        &mut self,
        lines: Vec<DeductionInput>,
        note: &str,
        at: LogTime,
        mut cap: impl FnMut(&Serial) -> Result<Money, String>,
    ) -> Result<Money, PayError> {
        if self.status != DeclarationStatus::Declared {
            return Err(PayError::state("period", format!("{} was already reviewed", self.period)));
        }
        if lines.len() > MAX_DEDUCTIONS {
            return Err(PayError::invalid("deductions", format!("more than {MAX_DEDUCTIONS} lines")));
        }
        if note.len() > MAX_TEXT_LEN {
            return Err(PayError::invalid("note", format!("is longer than {MAX_TEXT_LEN} bytes")));
        }
        let mut seen = std::collections::BTreeSet::new();
        let mut total = Money::ZERO;
        let mut out = Vec::with_capacity(lines.len());
        for (i, l) in lines.into_iter().enumerate() {
            if !seen.insert(l.settlement.clone()) {
                return Err(PayError::invalid(
                    format!("deductions[{i}].settlement_serial"),
                    format!("{} appears twice", l.settlement),
                ));
            }
            if l.amount <= Money::ZERO {
                return Err(PayError::invalid(format!("deductions[{i}].amount"), "must be positive"));
            }
            check_text(&format!("deductions[{i}].reason"), &l.reason)?;
            let most =
                cap(&l.settlement).map_err(|m| PayError::state(format!("deductions[{i}].settlement_serial"), m))?;
            if l.amount > most {
                return Err(PayError::invalid(
                    format!("deductions[{i}].amount"),
                    format!(
                        "{} is more than the fund's share of settlement {} in force ({most})",
                        l.amount, l.settlement
                    ),
                ));
            }
            total += l.amount;
            out.push(Deduction {
                settlement: l.settlement,
                amount: l.amount,
                reason: l.reason,
                alert: l.alert,
                contest: None,
            });
        }
        if total > self.declared.max(Money::ZERO) {
            return Err(PayError::invalid(
                "deductions",
                format!("they add up to {total}, more than the {} declared", self.declared),
            ));
        }
        self.deductions = out;
        self.note = note.to_string();
        self.status = DeclarationStatus::Reviewed;
        self.reviewed_at = Some(at);
        Ok(total)
    }

    fn line(&mut self, settlement: &Serial) -> Result<&mut Deduction, PayError> {
        let period = self.period;
        self.deductions.iter_mut().find(|d| &d.settlement == settlement).ok_or_else(|| {
            PayError::not_found("settlement_serial", format!("settlement {settlement} was not deducted in {period}"))
        })
    }

    /// The institution contests a deducted line, once, within [`CONTEST_DAYS`] of the review.
    pub fn contest(&mut self, settlement: &Serial, reason: &str, at: LogTime) -> Result<(), PayError> {
        check_text("reason", reason)?;
        let Some(until) = self.contest_until() else {
            return Err(PayError::state("period", format!("{} is not reviewed yet", self.period)));
        };
        if at.date() > until {
            return Err(PayError::state(
                "settlement_serial",
                format!("deductions of {} could be contested until {until}", self.period),
            ));
        }
        let d = self.line(settlement)?;
        if d.contest.is_some() {
            return Err(PayError::state(
                "settlement_serial",
                format!("the deduction on {settlement} was already contested"),
            ));
        }
        d.contest = Some(Contest { reason: reason.to_string(), at, resolution: None });
        Ok(())
    }

    /// The agency answers a contest; answers the amount that became payable again (the
    /// deduction, when the contest is accepted; zero otherwise).
    pub fn resolve(&mut self, settlement: &Serial, accept: bool, reason: &str, at: LogTime) -> Result<Money, PayError> {
        check_text("reason", reason)?;
        let d = self.line(settlement)?;
        let Some(c) = d.contest.as_mut() else {
            return Err(PayError::state(
                "settlement_serial",
                format!("the deduction on {settlement} is not contested"),
            ));
        };
        if c.resolution.is_some() {
            return Err(PayError::state(
                "settlement_serial",
                format!("the contest of {settlement} was already answered"),
            ));
        }
        c.resolution = Some(Resolution { accepted: accept, reason: reason.to_string(), at });
        Ok(if accept { d.amount } else { Money::ZERO })
    }

    /// Records payment `reference` of `amount` in money and `offset` from a prepayment:
    /// together positive and at most what is outstanding; at most [`MAX_PAYMENTS`] per month.
    pub fn pay(&mut self, reference: &Serial, amount: Money, offset: Money) -> Result<(), PayError> {
        if self.status != DeclarationStatus::Reviewed {
            return Err(PayError::state("period", format!("{} is not reviewed yet: nothing is approved", self.period)));
        }
        if amount < Money::ZERO {
            return Err(PayError::invalid("amount", "must not be negative"));
        }
        if offset < Money::ZERO {
            return Err(PayError::invalid("offset", "must not be negative"));
        }
        if (amount + offset).is_zero() {
            return Err(PayError::invalid("amount", "amount and offset are both zero"));
        }
        let outstanding = self.outstanding();
        if amount + offset > outstanding {
            return Err(PayError::state(
                "amount",
                format!(
                    "{} is more than the {} outstanding of {} (approved {}, paid {}, offset {})",
                    amount + offset,
                    outstanding.max(Money::ZERO),
                    self.period,
                    self.approved(),
                    self.paid,
                    self.offset
                ),
            ));
        }
        if self.payments.len() >= MAX_PAYMENTS {
            return Err(PayError::state("reference", format!("{} already has {MAX_PAYMENTS} payments", self.period)));
        }
        self.paid += amount;
        self.offset += offset;
        self.payments.push(reference.clone());
        Ok(())
    }
}
