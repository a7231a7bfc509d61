//! Prepayment to designated institutions, after the 2024 notice of the National Healthcare
//! Security Administration and the Ministry of Finance.
//!
//! - Prepayment is working capital for the procurement of drugs and medical consumables only;
//!   the purpose is recorded and nothing else may be named.
//! - Conditions ([`check_conditions`]): the pooling fund's cumulative balance covers at least
//!   [`PrepaymentPolicy::min_months_covered`] months of its average monthly expenditure (the
//!   fund's risk level); the institution's agreement is in force; no case was decided against
//!   it within [`PrepaymentPolicy::clean_months`] months; no prepayment of the same kind is
//!   outstanding; and its payments have not been stopped.
//! - Size of a general prepayment ([`size_general`]): one month of the institution's average
//!   monthly fund expenditure over the previous [`PrepaymentPolicy::history_years`] (1–3) years —
//!   the full calendar months before the month of the grant, from the first full month of its
//!   agreement if that is later. Months without spending count as zero. The average is the
//!   total in fen divided by the number of months, rounded down.
//! - A special prepayment for centrally procured drugs and consumables ([`size_special`]) is
//!   [`PrepaymentPolicy::procurement_percent`] of the agreed annual procurement amount, rounded
//!   down to the fen (the national rule for volume-based procurement: at least 30%).

use medmesh_types::{Date, Money};
use serde::{Deserialize, Serialize};

use crate::cycle::PayError;
use crate::Period;

/// The kind of a prepayment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum PrepaymentKind {
    /// Working capital for drugs and consumables, about one month of fund expenditure.
    General,
    /// Special prepayment for centrally procured drugs and consumables.
    CentralProcurement,
}

/// A province's prepayment policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrepaymentPolicy {
    /// The pooling fund's balance (with its prepaid account for non-local care) must cover at
    /// least this many months of its average monthly expenditure.
    pub min_months_covered: u32,
    /// Years of history the size is based on: 1 to 3.
    pub history_years: u32,
    /// No case decided against the institution within this many months.
    pub clean_months: u32,
    /// Special prepayment: percent of the agreed annual procurement amount (1–100).
    pub procurement_percent: u32,
}

impl Default for PrepaymentPolicy {
    fn default() -> Self {
        PrepaymentPolicy { min_months_covered: 6, history_years: 1, clean_months: 12, procurement_percent: 30 }
    }
}

impl PrepaymentPolicy {
    /// Checks the policy's ranges.
    pub fn validate(&self) -> Result<(), PayError> {
        if self.min_months_covered > 120 {
            return Err(PayError::invalid("policy.min_months_covered", "must be at most 120"));
        }
        if !(1..=3).contains(&self.history_years) {
            return Err(PayError::invalid("policy.history_years", "must be 1, 2 or 3"));
        }
        if self.clean_months > 120 {
            return Err(PayError::invalid("policy.clean_months", "must be at most 120"));
        }
        if !(1..=100).contains(&self.procurement_percent) {
            return Err(PayError::invalid("policy.procurement_percent", "must be 1 to 100"));
        }
        Ok(())
    }
}

/// How a prepayment was sized: shown in the answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sizing {
    /// First month counted (general prepayment).
    pub from: Option<Period>,
    /// Last month counted.
    pub to: Option<Period>,
    /// Months counted.
    pub months: u32,
    /// What the average (or the share) was taken of.
    pub base: Money,
    /// The prepayment.
    pub amount: Money,
    /// The rule, in words, with the figures.
    pub rule: String,
}

/// The months a general prepayment granted in `this_month` is based on: the `years` × 12
/// months before it, from the first full month of an agreement that began on `agreement_start`
/// if that is later. `None` when no full month lies in between.
pub fn window(this_month: Period, agreement_start: Date, years: u32) -> Option<(Period, Period)> {
    let to = this_month.prev();
    let first_full =
        if agreement_start.ymd().2 == 1 { Period::of(agreement_start) } else { Period::of(agreement_start).next() };
    let from = this_month.minus_months(12 * years).max(first_full);
    (from <= to).then_some((from, to))
}

/// Σ of `monthly` over `from..=to` and the number of months (missing months count as zero).
pub fn total_over(monthly: &[(Period, Money)], from: Period, to: Period) -> (Money, u32) {
    let total = monthly.iter().filter(|(p, _)| from <= *p && *p <= to).fold(Money::ZERO, |s, (_, m)| s + *m);
    (total, (from.months_until(to) + 1) as u32)
}

/// `total / months`, in fen, rounded down.
pub fn average(total: Money, months: u32) -> Money {
    if months == 0 {
        return Money::ZERO;
    }
    Money::from_fen((total.fen().div_euclid(i128::from(months))) as i64)
}

/// Sizes a general prepayment from the institution's monthly fund expenditure.
pub fn size_general(
    monthly: &[(Period, Money)],
    this_month: Period,
    agreement_start: Date,
    years: u32,
) -> Result<Sizing, PayError> {
    let Some((from, to)) = window(this_month, agreement_start, years) else {
        return Err(PayError::state(
            "institution_id",
            format!("the agreement began on {agreement_start}: no full month of fund expenditure before {this_month}"),
        ));
    };
    let (total, months) = total_over(monthly, from, to);
    let amount = average(total, months);
    if amount <= Money::ZERO {
        return Err(PayError::state(
            "institution_id",
            format!("the institution had no fund expenditure from {from} to {to}: nothing to base a prepayment on"),
        ));
    }
    Ok(Sizing {
        from: Some(from),
        to: Some(to),
        months,
        base: total,
        amount,
        rule: format!(
            "one month of the average monthly fund expenditure from {from} to {to}: {total} / {months} months = {amount} (rounded down to the fen)"
        ),
    })
}

/// Sizes a special prepayment for centrally procured drugs and consumables.
pub fn size_special(procurement: Money, percent: u32) -> Result<Sizing, PayError> {
    if procurement <= Money::ZERO {
        return Err(PayError::invalid("procurement_amount", "must be positive for a central procurement prepayment"));
    }
    let amount = Money::from_fen((procurement.fen() * i128::from(percent) / 100) as i64);
    if amount <= Money::ZERO {
        return Err(PayError::invalid("procurement_amount", "is too small to prepay a fen of"));
    }
    Ok(Sizing {
        from: None,
        to: None,
        months: 0,
        base: procurement,
        amount,
        rule: format!(
            "{percent}% of the agreed annual procurement amount {procurement} = {amount} (rounded down to the fen)"
        ),
    })
}

/// Months of `monthly` expenditure that `balance` covers, in tenths rounded down; `None` when
/// nothing is spent (no risk to measure).
pub fn months_covered_tenths(balance: Money, monthly: Money) -> Option<i64> {
    (monthly > Money::ZERO).then(|| (balance.fen().max(0) * 10 / monthly.fen()) as i64)
}

/// What the store knows when an institution applies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conditions {
    /// The pooling fund's balance with its prepaid account for non-local care (the province's
    /// money either way).
    pub fund_balance: Money,
    /// The pooling fund's average monthly expenditure over the policy's window.
    pub fund_monthly_expenditure: Money,
    /// Why the agreement is not in force, if it is not.
    pub agreement: Result<(), String>,
    /// The day the last case against the institution was decided, if any.
    pub last_case: Option<Date>,
    /// A prepayment of the same kind still outstanding (its reference).
    pub outstanding: Option<String>,
    /// Payments stopped (an unrecoverable prepayment), with why.
    pub stopped: Option<String>,
    /// The institution's credit grade is D (issue 13.3), with its rating in words.
    pub poor_credit: Option<String>,
    /// The day of the application.
    pub today: Date,
}

/// Checks the conditions of the 2024 notice; the refusal names the condition.
pub fn check_conditions(policy: &PrepaymentPolicy, c: &Conditions) -> Result<(), PayError> {
    if let Some(why) = &c.stopped {
        return Err(PayError::state("institution_id", format!("payments to the institution are stopped: {why}")));
    }
    if let Err(why) = &c.agreement {
        return Err(PayError::state("institution_id", format!("the agreement is not in force: {why}")));
    }
    if let Some(r) = &c.outstanding {
        return Err(PayError::state("institution_id", format!("prepayment {r} of the same kind is still outstanding")));
    }
    if let Some(day) = c.last_case {
        if day.plus_months(policy.clean_months) > c.today {
            return Err(PayError::state(
                "institution_id",
                format!(
                    "a case was decided against the institution on {day}, within the last {} months",
                    policy.clean_months
                ),
            ));
        }
    }
    if let Some(why) = &c.poor_credit {
        return Err(PayError::state("institution_id", format!("the institution's credit grade is D: {why}")));
    }
    let need = Money::from_fen((c.fund_monthly_expenditure.fen() * i128::from(policy.min_months_covered)) as i64);
    if c.fund_balance < need {
        let tenths = months_covered_tenths(c.fund_balance, c.fund_monthly_expenditure).unwrap_or(0);
        return Err(PayError::state(
            "fund",
            format!(
                "the pooling fund's balance with its prepaid account, {}, covers {}.{} months of its average monthly expenditure {}; the policy asks at least {} months",
                c.fund_balance,
                tenths / 10,
                tenths % 10,
                c.fund_monthly_expenditure,
                policy.min_months_covered
            ),
        ));
    }
    Ok(())
}
