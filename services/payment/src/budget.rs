//! An institution's total annual budget (collectively negotiated with the agency), its
//! consumption, warnings at thresholds, and the agreed treatment of overspend at year end.
//!
//! - Consumption is what the fund owes the institution for the year's care: the month
//!   accounts' net amounts ([`crate::MonthAccount::net`]), kept as settlements, reversals and
//!   recoveries are counted.
//! - A warning is recorded the first time consumption reaches each threshold (a percent of the
//!   budget), with the day and the amount; falling back below and rising again records nothing
//!   new.
//! - At year end ([`Budget::close_year`], once the year is over, once): the overspend beyond the
//!   budget is shared — the fund bears [`Budget::overspend_fund_percent`] of it (rounded down to
//!   the fen) and the institution the rest, which the store withholds from what the fund owes
//!   it. An underspend is reported.

use medmesh_types::{Date, InstitutionId, Money};
use serde::{Deserialize, Serialize};

use crate::cycle::PayError;

/// Most thresholds of one budget.
pub const MAX_THRESHOLDS: usize = 5;

/// A threshold reached.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetWarning {
    /// Percent of the budget.
    pub threshold: u32,
    /// The day it was reached.
    pub on: Date,
    /// Consumption then.
    pub consumed: Money,
}

/// The year-end settlement of a budget.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct YearEnd {
    /// Consumption beyond the budget.
    pub overspend: Money,
    /// The fund's share of it.
    pub fund_bears: Money,
    /// The institution's share, withheld from what the fund owes it.
    pub institution_bears: Money,
    /// Budget left unused.
    pub underspend: Money,
    /// The day it was closed.
    pub on: Date,
}

/// What the agency and the institution agreed for a year.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BudgetTerms {
    /// The total budget.
    pub amount: Money,
    /// Warning thresholds, percents of the budget, ascending (at most [`MAX_THRESHOLDS`]).
    pub thresholds: Vec<u32>,
    /// Percent of an overspend the fund bears (the rest is the institution's).
    pub overspend_fund_percent: u32,
}

/// An institution's annual budget.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Budget {
    /// The institution.
    pub institution: InstitutionId,
    /// The calendar year.
    pub year: i32,
    /// The total budget.
    pub amount: Money,
    /// Warning thresholds, percents of the budget, ascending.
    pub thresholds: Vec<u32>,
    /// Percent of an overspend the fund bears (the rest is the institution's).
    pub overspend_fund_percent: u32,
    /// Consumed so far.
    pub consumed: Money,
    /// Thresholds reached, in order.
    pub warnings: Vec<BudgetWarning>,
    /// The year-end settlement, once closed.
    pub closed: Option<YearEnd>,
}

impl Budget {
    /// A budget (or a revision of one: `consumed` and the warnings so far carry over). The year
    /// must not be over on `today`.
    pub fn put(
        previous: Option<Budget>,
        institution: InstitutionId,
        year: i32,
        terms: BudgetTerms,
        consumed: Money,
        today: Date,
    ) -> Result<Budget, PayError> {
        let BudgetTerms { amount, thresholds, overspend_fund_percent } = terms;
        if amount <= Money::ZERO {
            return Err(PayError::invalid("amount", "must be positive"));
        }
        if thresholds.len() > MAX_THRESHOLDS {
            return Err(PayError::invalid("thresholds", format!("at most {MAX_THRESHOLDS}")));
        }
        for (i, t) in thresholds.iter().enumerate() {
            if !(1..=200).contains(t) {
                return Err(PayError::invalid(format!("thresholds[{i}]"), "must be a percent from 1 to 200"));
            }
            if i > 0 && thresholds[i - 1] >= *t {
                return Err(PayError::invalid(format!("thresholds[{i}]"), "thresholds must be ascending"));
            }
        }
        if overspend_fund_percent > 100 {
            return Err(PayError::invalid("overspend_fund_percent", "must be 0 to 100"));
        }
        if today.year() > year {
            return Err(PayError::state("year", format!("{year} is over: a budget is set before its year ends")));
        }
        let (consumed, warnings) = match previous {
            Some(p) if p.closed.is_some() => {
                return Err(PayError::state("year", format!("the budget of {year} was closed")));
            }
            Some(p) => (p.consumed, p.warnings),
            None => (consumed, Vec::new()),
        };
        let mut b =
            Budget { institution, year, amount, thresholds, overspend_fund_percent, consumed, warnings, closed: None };
        b.warn(today);
        Ok(b)
    }

    /// Percent of the budget consumed, in tenths (rounded down).
    pub fn used_tenths(&self) -> i128 {
        if self.amount <= Money::ZERO {
            return 0;
        }
        self.consumed.fen() * 1000 / self.amount.fen()
    }

    /// Records the thresholds reached and not recorded before.
    fn warn(&mut self, today: Date) {
        for t in self.thresholds.clone() {
            let reached = self.consumed.fen() * 100 >= self.amount.fen() * i128::from(t);
            if reached && !self.warnings.iter().any(|w| w.threshold == t) {
                self.warnings.push(BudgetWarning { threshold: t, on: today, consumed: self.consumed });
            }
        }
    }

    /// Adds `delta` (negative for a reversal) to the consumption on `today`; answers whether a
    /// new threshold was reached. A closed budget no longer moves.
    pub fn consume(&mut self, delta: Money, today: Date) -> bool {
        if self.closed.is_some() {
            return false;
        }
        let before = self.warnings.len();
        self.consumed += delta;
        self.warn(today);
        self.warnings.len() > before
    }

    /// Closes the year once it is over, sharing an overspend as agreed.
    pub fn close_year(&mut self, today: Date) -> Result<YearEnd, PayError> {
        if let Some(c) = &self.closed {
            return Err(PayError::state("year", format!("the budget of {} was closed on {}", self.year, c.on)));
        }
        if today.year() <= self.year {
            return Err(PayError::state("year", format!("{} is not over on {today}", self.year)));
        }
        let overspend = (self.consumed - self.amount).max(Money::ZERO);
        let fund_bears = Money::from_fen((overspend.fen() * i128::from(self.overspend_fund_percent) / 100) as i64);
        let end = YearEnd {
            overspend,
            fund_bears,
            institution_bears: overspend - fund_bears,
            underspend: (self.amount - self.consumed).max(Money::ZERO),
            on: today,
        };
        self.closed = Some(end.clone());
        Ok(end)
    }
}
