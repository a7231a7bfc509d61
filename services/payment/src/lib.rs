//! Paying designated institutions (issue 12): the monthly cycle of declaration (申报), review
//! with deductions (拒付), one contest per deducted line and payment ([`cycle`]), and
//! prepayment to institutions after the 2024 notice ([`prepay`]), and annual budgets with
//! their warnings and year-end treatment of overspend ([`budget`]). Months are [`Period`]s.
//!
//! Pure: no IO, no clock, no randomness. The store (`medmesh-state`) keeps the records, reads
//! what the rules need (the month's settled amounts, the fund's balance, the institution's
//! history) and applies the money these rules decide. Amounts are [`Money`] (fen); averages
//! are integer divisions in fen, rounded down (never more than the history supports); there
//! are no floats.
//!
//! Dependencies: `serde` (records are stored), `thiserror` (one error type naming fields).

pub mod budget;
pub mod cycle;
pub mod period;
pub mod prepay;

pub use budget::{Budget, BudgetTerms, BudgetWarning, YearEnd};
pub use cycle::{Contest, Declaration, Deduction, DeductionInput, MonthAccount, PayError, Resolution};
pub use period::Period;
pub use prepay::{PrepaymentKind, PrepaymentPolicy, Sizing};

#[cfg(test)]
mod tests;
