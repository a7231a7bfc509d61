//! Exact money in yuan with two decimals, and ratios in `[0, 1]`.

use std::fmt;
use std::ops::{Add, AddAssign, Sub, SubAssign};
use std::str::FromStr;

use rust_decimal::{Decimal, RoundingStrategy};
use serde::{Deserialize, Serialize};

/// Largest amount accepted on the wire: one hundred billion yuan. Keeps every sum far from
/// `Decimal`'s limits, so arithmetic on validated amounts cannot overflow.
pub const MAX_YUAN: i64 = 100_000_000_000;

/// Why a money or ratio value was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MoneyError {
    /// The text is not a decimal number.
    #[error("not a decimal number: {0:?}")]
    NotANumber(String),
    /// More than two decimals (finer than one fen).
    #[error("more than two decimals (finer than one fen): {0}")]
    TooPrecise(String),
    /// Negative where only zero or more is allowed.
    #[error("negative amount: {0}")]
    Negative(String),
    /// Above the largest accepted amount.
    #[error("amount above the limit of {MAX_YUAN} yuan: {0}")]
    TooLarge(String),
    /// A ratio outside `[0, 1]` or with more than four decimals.
    #[error("ratio must be between 0 and 1 with at most 4 decimals: {0}")]
    BadRatio(String),
}

/// An amount of money in yuan, always held with exactly two decimals (fen).
///
/// Construct it from wire text with [`Money::parse_yuan`] (rejects over-precise, negative and
/// oversize values) or from integer fen with [`Money::from_fen`]. Computed values are brought
/// back to the fen only through [`Money::round_fen`], the one rounding rule of the system.
///
/// Stored (serde) as a signed integer number of fen in an `i128`, which holds every value a
/// `Decimal` at two decimals can hold: whatever was written can always be read back. The
/// 100-billion-yuan bound ([`MAX_YUAN`]) is a rule of the wire, not of storage, so running
/// totals may grow past it.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "StoredFen", into = "StoredFen")]
pub struct Money(Decimal);

/// The stored form of [`Money`]: integer fen.
#[derive(Serialize, Deserialize)]
#[serde(transparent)]
struct StoredFen(i128);

impl From<Money> for StoredFen {
    fn from(m: Money) -> StoredFen {
        // A `Money` always has scale 2, so its mantissa is its amount in fen.
        debug_assert_eq!(m.0.scale(), 2, "money is held at two decimals");
        StoredFen(m.0.mantissa())
    }
}

impl TryFrom<StoredFen> for Money {
    type Error = MoneyError;
    fn try_from(f: StoredFen) -> Result<Money, MoneyError> {
        Decimal::try_from_i128_with_scale(f.0, 2).map(Money).map_err(|_| MoneyError::TooLarge(format!("{} fen", f.0)))
    }
}

impl Default for Money {
    fn default() -> Money {
        Money::ZERO
    }
}

impl Money {
    /// Zero yuan (held at two decimals, like every amount).
    pub const ZERO: Money = Money(Decimal::from_parts(0, 0, 0, false, 2));

    /// Parses a non-negative decimal string in yuan with at most two decimals.
    pub fn parse_yuan(text: &str) -> Result<Money, MoneyError> {
        let t = text.trim();
        if t.is_empty() || t.contains(['e', 'E']) {
            return Err(MoneyError::NotANumber(text.to_string()));
        }
        let d = Decimal::from_str(t).map_err(|_| MoneyError::NotANumber(text.to_string()))?;
        if d.is_sign_negative() && !d.is_zero() {
            return Err(MoneyError::Negative(text.to_string()));
        }
        if d.normalize().scale() > 2 {
            return Err(MoneyError::TooPrecise(text.to_string()));
        }
        if d > Decimal::from(MAX_YUAN) {
            return Err(MoneyError::TooLarge(text.to_string()));
        }
        Ok(Money::from_decimal_exact(d.abs()))
    }

    /// Parses a signed amount (used for balances that may be shown negative).
    pub fn parse_signed_yuan(text: &str) -> Result<Money, MoneyError> {
        let t = text.trim();
        if let Some(rest) = t.strip_prefix('-') {
            Ok(Money::ZERO - Money::parse_yuan(rest)?)
        } else {
            Money::parse_yuan(t)
        }
    }

    /// An amount from integer fen (1 yuan = 100 fen).
    pub fn from_fen(fen: i64) -> Money {
        Money::from_decimal_exact(Decimal::new(fen, 2))
    }

    /// The amount in integer fen, exactly.
    pub fn fen(self) -> i128 {
        debug_assert_eq!(self.0.scale(), 2, "money is held at two decimals");
        self.0.mantissa()
    }

    /// The amount in integer fen (saturating at the bounds of `i64`, far beyond any amount
    /// the wire admits).
    pub fn to_fen(self) -> i64 {
        let v = self.0 * Decimal::ONE_HUNDRED;
        i64::try_from(v).unwrap_or(if v.is_sign_negative() { i64::MIN } else { i64::MAX })
    }

    /// The one rounding rule of medmesh: half away from zero, to the fen.
    pub fn round_fen(value: Decimal) -> Money {
        Money::from_decimal_exact(value.round_dp_with_strategy(2, RoundingStrategy::MidpointAwayFromZero))
    }

    fn from_decimal_exact(d: Decimal) -> Money {
        let mut d = d;
        d.rescale(2);
        Money(d)
    }

    /// The amount as a decimal in yuan.
    pub fn as_decimal(self) -> Decimal {
        self.0
    }

    /// True when the amount is zero.
    pub fn is_zero(self) -> bool {
        self.0.is_zero()
    }

    /// True when the amount is below zero.
    pub fn is_negative(self) -> bool {
        self.0.is_sign_negative() && !self.0.is_zero()
    }

    /// `self - other`, but never below zero.
    pub fn saturating_sub(self, other: Money) -> Money {
        if other >= self {
            Money::ZERO
        } else {
            self - other
        }
    }

    /// `self * ratio`, rounded to the fen.
    pub fn times(self, ratio: Ratio) -> Money {
        Money::round_fen(self.0 * ratio.0)
    }

    /// `self * factor`, rounded to the fen.
    pub fn times_decimal(self, factor: Decimal) -> Money {
        Money::round_fen(self.0 * factor)
    }
}

impl fmt::Display for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Always two decimals, so equal amounts have equal text whatever path made them.
        write!(f, "{:.2}", self.0)
    }
}

impl fmt::Debug for Money {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "¥{}", self.0)
    }
}

impl From<Money> for String {
    fn from(m: Money) -> String {
        m.to_string()
    }
}

impl TryFrom<String> for Money {
    type Error = MoneyError;
    fn try_from(s: String) -> Result<Money, MoneyError> {
        Money::parse_signed_yuan(&s)
    }
}

impl Add for Money {
    type Output = Money;
    fn add(self, rhs: Money) -> Money {
        Money::from_decimal_exact(self.0 + rhs.0)
    }
}

impl AddAssign for Money {
    fn add_assign(&mut self, rhs: Money) {
        *self = *self + rhs;
    }
}

impl Sub for Money {
    type Output = Money;
    fn sub(self, rhs: Money) -> Money {
        Money::from_decimal_exact(self.0 - rhs.0)
    }
}

impl SubAssign for Money {
    fn sub_assign(&mut self, rhs: Money) {
        *self = *self - rhs;
    }
}

impl std::iter::Sum for Money {
    fn sum<I: Iterator<Item = Money>>(iter: I) -> Money {
        iter.fold(Money::ZERO, |a, b| a + b)
    }
}

/// A ratio in `[0, 1]` with at most four decimals (for example a reimbursement ratio `0.85`).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Ratio(Decimal);

impl Ratio {
    /// 0.
    pub const ZERO: Ratio = Ratio(Decimal::ZERO);
    /// 1.
    pub const ONE: Ratio = Ratio(Decimal::ONE);

    /// Parses a ratio such as `"0.85"`.
    pub fn parse(text: &str) -> Result<Ratio, MoneyError> {
        let d = Decimal::from_str(text.trim()).map_err(|_| MoneyError::BadRatio(text.to_string()))?;
        Ratio::new(d).ok_or_else(|| MoneyError::BadRatio(text.to_string()))
    }

    /// A ratio from a decimal, if it lies in `[0, 1]` with at most four decimals.
    pub fn new(d: Decimal) -> Option<Ratio> {
        if d < Decimal::ZERO || d > Decimal::ONE || d.normalize().scale() > 4 {
            None
        } else {
            Some(Ratio(d.normalize()))
        }
    }

    /// The ratio as a decimal.
    pub fn as_decimal(self) -> Decimal {
        self.0
    }

    /// `1 - self`.
    pub fn complement(self) -> Ratio {
        Ratio((Decimal::ONE - self.0).normalize())
    }

    /// `self - by`, floored at zero.
    pub fn reduced_by(self, by: Ratio) -> Ratio {
        if by.0 >= self.0 {
            Ratio::ZERO
        } else {
            Ratio((self.0 - by.0).normalize())
        }
    }
}

impl fmt::Display for Ratio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl fmt::Debug for Ratio {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl From<Ratio> for String {
    fn from(r: Ratio) -> String {
        r.to_string()
    }
}

impl TryFrom<String> for Ratio {
    type Error = MoneyError;
    fn try_from(s: String) -> Result<Ratio, MoneyError> {
        Ratio::parse(&s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parse_rejects_bad_wire_amounts() {
        assert!(matches!(Money::parse_yuan("-1"), Err(MoneyError::Negative(_))));
        assert!(matches!(Money::parse_yuan("1.001"), Err(MoneyError::TooPrecise(_))));
        assert!(matches!(Money::parse_yuan("abc"), Err(MoneyError::NotANumber(_))));
        assert!(matches!(Money::parse_yuan("1e3"), Err(MoneyError::NotANumber(_))));
        assert!(matches!(Money::parse_yuan(""), Err(MoneyError::NotANumber(_))));
        assert!(matches!(Money::parse_yuan("100000000001"), Err(MoneyError::TooLarge(_))));
        assert_eq!(Money::parse_yuan("12.5").unwrap().to_string(), "12.50");
        assert_eq!(Money::parse_yuan("1.100").unwrap().to_fen(), 110);
    }

    #[test]
    fn rounding_is_half_away_from_zero() {
        assert_eq!(Money::round_fen(Decimal::new(1005, 3)).to_fen(), 101);
        assert_eq!(Money::round_fen(Decimal::new(1004, 3)).to_fen(), 100);
    }

    #[test]
    fn zero_and_computed_amounts_print_two_decimals() {
        assert_eq!(Money::ZERO.to_string(), "0.00");
        assert_eq!(Money::default().to_string(), "0.00");
        assert_eq!((Money::from_fen(5) - Money::from_fen(5)).to_string(), "0.00");
    }

    #[test]
    fn equal_amounts_have_equal_text() {
        let a = Money::parse_yuan("10.5").unwrap();
        let b = Money::parse_yuan("10.50").unwrap();
        assert_eq!(a, b);
        assert_eq!(a.to_string(), b.to_string());
    }

    /// Regression (issue 9): an amount above the wire limit, reached by a running total, must
    /// still read back from storage.
    #[test]
    fn stored_amounts_above_the_wire_limit_read_back() {
        let big = Money::from_fen(i64::MAX) + Money::from_fen(i64::MAX) + Money::from_fen(7);
        assert!(big.as_decimal() > Decimal::from(MAX_YUAN));
        let bytes = bincode::serialize(&big).unwrap();
        let back: Money = bincode::deserialize(&bytes).unwrap();
        assert_eq!(back, big);
        assert_eq!(back.fen(), 2 * i64::MAX as i128 + 7);
        let neg = Money::ZERO - big;
        assert_eq!(bincode::deserialize::<Money>(&bincode::serialize(&neg).unwrap()).unwrap(), neg);
        // Fen beyond what a Decimal holds are refused, not misread.
        assert!(bincode::deserialize::<Money>(&bincode::serialize(&i128::MAX).unwrap()).is_err());
    }

    proptest! {
        #[test]
        fn stored_form_round_trips(fen in any::<i64>(), more in any::<i64>()) {
            let m = Money::from_fen(fen) + Money::from_fen(more);
            let back: Money = bincode::deserialize(&bincode::serialize(&m).unwrap()).unwrap();
            prop_assert_eq!(back, m);
            prop_assert_eq!(back.fen(), fen as i128 + more as i128);
        }

        #[test]
        fn fen_round_trip(fen in 0i64..10_000_000_000_000) {
            let m = Money::from_fen(fen);
            prop_assert_eq!(m.to_fen(), fen);
            prop_assert_eq!(Money::parse_yuan(&m.to_string()).unwrap(), m);
        }
    }
}
