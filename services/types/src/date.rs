//! Calendar dates and log time, computed without the system clock or a time zone database.
//!
//! Dates are civil dates in China Standard Time (UTC+8, no daylight saving), which is the
//! time every medical-security rule is written in.

use std::fmt;

use serde::{Deserialize, Serialize};

/// Why a date was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DateError {
    /// Not of the form `YYYY-MM-DD`, or not a real calendar day.
    #[error("not a date of the form YYYY-MM-DD: {0:?}")]
    Malformed(String),
    /// Outside the years medmesh accepts (1900..=2199).
    #[error("date out of range (1900-01-01 to 2199-12-31): {0}")]
    OutOfRange(String),
}

/// A civil date (China Standard Time), always within 1900-01-01 ..= 2199-12-31.
///
/// Stored (serde) as days since 1970-01-01; a stored or received value outside the range is
/// refused when decoded, so no date arithmetic can overflow.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "i32", into = "i32")]
pub struct Date {
    /// Days since 1970-01-01.
    days: i32,
}

/// Days since 1970-01-01 of 1900-01-01, the first date medmesh accepts.
const MIN_DAYS: i32 = -25_567;
/// Days since 1970-01-01 of 2199-12-31, the last date medmesh accepts.
const MAX_DAYS: i32 = 84_005;

impl From<Date> for i32 {
    fn from(d: Date) -> i32 {
        d.days
    }
}

impl TryFrom<i32> for Date {
    type Error = DateError;
    fn try_from(days: i32) -> Result<Date, DateError> {
        if (MIN_DAYS..=MAX_DAYS).contains(&days) {
            Ok(Date { days })
        } else {
            Err(DateError::OutOfRange(format!("{days} days since 1970-01-01")))
        }
    }
}

const CST_OFFSET_MS: i64 = 8 * 3_600_000;
const DAY_MS: i64 = 86_400_000;

impl Date {
    /// Parses `YYYY-MM-DD`.
    pub fn parse(text: &str) -> Result<Date, DateError> {
        let bad = || DateError::Malformed(text.to_string());
        let t = text.trim();
        let b = t.as_bytes();
        if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
            return Err(bad());
        }
        let num = |s: &str| s.parse::<u32>().map_err(|_| bad());
        let (y, m, d) = (num(&t[0..4])?, num(&t[5..7])?, num(&t[8..10])?);
        if !(1..=12).contains(&m) || d == 0 || d > days_in_month(y as i32, m) {
            return Err(bad());
        }
        if !(1900..=2199).contains(&y) {
            return Err(DateError::OutOfRange(text.to_string()));
        }
        Ok(Date::from_ymd(y as i32, m, d))
    }

    /// A date from year, month (1–12) and day (1–31); the caller guarantees validity.
    pub fn from_ymd(y: i32, m: u32, d: u32) -> Date {
        Date { days: days_from_civil(y, m, d) }
    }

    /// Days since 1970-01-01.
    pub fn days(self) -> i32 {
        self.days
    }

    /// The first date medmesh accepts (1900-01-01).
    pub const MIN: Date = Date { days: MIN_DAYS };
    /// The last date medmesh accepts (2199-12-31).
    pub const MAX: Date = Date { days: MAX_DAYS };

    /// The date `n` days later (earlier when negative), kept within [`Date::MIN`] ..=
    /// [`Date::MAX`].
    pub fn plus_days(self, n: i32) -> Date {
        Date { days: self.days.saturating_add(n).clamp(MIN_DAYS, MAX_DAYS) }
    }

    /// `(year, month, day)`.
    pub fn ymd(self) -> (i32, u32, u32) {
        civil_from_days(self.days)
    }

    /// The calendar year.
    pub fn year(self) -> i32 {
        self.ymd().0
    }

    /// Whole years from `birth` to `self` (age on this date).
    pub fn years_since(self, birth: Date) -> i32 {
        let (y1, m1, d1) = birth.ymd();
        let (y2, m2, d2) = self.ymd();
        let mut age = y2 - y1;
        if (m2, d2) < (m1, d1) {
            age -= 1;
        }
        age
    }

    /// The date `months` calendar months later, clamped to the month's last day.
    pub fn plus_months(self, months: u32) -> Date {
        let (y, m, d) = self.ymd();
        let total = (y * 12 + (m as i32 - 1)) + months as i32;
        let (ny, nm) = (total.div_euclid(12), total.rem_euclid(12) as u32 + 1);
        Date::from_ymd(ny, nm, d.min(days_in_month(ny, nm)))
    }
}

impl fmt::Display for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (y, m, d) = self.ymd();
        write!(f, "{y:04}-{m:02}-{d:02}")
    }
}

impl fmt::Debug for Date {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// Time as written into a Raft log entry by the leader: milliseconds since the Unix epoch.
///
/// State machines read time only from here, never from the clock.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
pub struct LogTime(pub i64);

impl LogTime {
    /// The first instant a log entry may carry: 2000-01-01 00:00 China Standard Time.
    pub const MIN_VALID: LogTime = LogTime(946_656_000_000);
    /// The last instant a log entry may carry: the end of 2199-12-31 China Standard Time.
    pub const MAX_VALID: LogTime = LogTime(7_258_089_599_999);

    /// Whether an entry may carry this time ([`LogTime::MIN_VALID`] ..= [`LogTime::MAX_VALID`]).
    pub fn is_valid(self) -> bool {
        (LogTime::MIN_VALID..=LogTime::MAX_VALID).contains(&self)
    }

    /// The civil date (China Standard Time) of this instant, clamped to [`Date::MIN`] ..=
    /// [`Date::MAX`] (apply refuses entries whose time is not [`LogTime::is_valid`]).
    pub fn date(self) -> Date {
        let days = self.0.saturating_add(CST_OFFSET_MS).div_euclid(DAY_MS);
        Date { days: days.clamp(MIN_DAYS as i64, MAX_DAYS as i64) as i32 }
    }

    /// Milliseconds since the epoch.
    pub fn millis(self) -> i64 {
        self.0
    }
}

impl fmt::Debug for LogTime {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "LogTime({})", self.0)
    }
}

fn is_leap(y: i32) -> bool {
    (y % 4 == 0 && y % 100 != 0) || y % 400 == 0
}

fn days_in_month(y: i32, m: u32) -> u32 {
    match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        _ if is_leap(y) => 29,
        _ => 28,
    }
}

// Howard Hinnant's days_from_civil / civil_from_days.
fn days_from_civil(y: i32, m: u32, d: u32) -> i32 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m as i32 + 9) % 12;
    let doy = (153 * mp + 2) / 5 + d as i32 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

fn civil_from_days(z: i32) -> (i32, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_and_prints() {
        assert_eq!(Date::parse("2024-02-29").unwrap().to_string(), "2024-02-29");
        assert!(Date::parse("2023-02-29").is_err());
        assert!(Date::parse("2023-13-01").is_err());
        assert!(Date::parse("1800-01-01").is_err());
        assert!(Date::parse("20230101").is_err());
    }

    #[test]
    fn log_time_uses_china_standard_time() {
        // 2024-12-31T16:00:00Z is 2025-01-01 00:00 in Beijing.
        assert_eq!(LogTime(1_735_660_800_000).date().to_string(), "2025-01-01");
        assert_eq!(LogTime(1_735_660_799_999).date().to_string(), "2024-12-31");
    }

    #[test]
    fn age_and_months() {
        let b = Date::parse("2000-06-15").unwrap();
        assert_eq!(Date::parse("2024-06-14").unwrap().years_since(b), 23);
        assert_eq!(Date::parse("2024-06-15").unwrap().years_since(b), 24);
        assert_eq!(Date::parse("2024-01-31").unwrap().plus_months(1).to_string(), "2024-02-29");
        assert_eq!(Date::parse("2024-11-30").unwrap().plus_months(3).to_string(), "2025-02-28");
    }

    #[test]
    fn range_constants_match_the_calendar() {
        assert_eq!(Date::MIN, Date::parse("1900-01-01").unwrap());
        assert_eq!(Date::MAX, Date::parse("2199-12-31").unwrap());
        assert_eq!(LogTime::MIN_VALID.date().to_string(), "2000-01-01");
        assert_eq!(LogTime(LogTime::MIN_VALID.0 - 1).date().to_string(), "1999-12-31");
        assert_eq!(LogTime::MAX_VALID.date().to_string(), "2199-12-31");
        assert_eq!(LogTime(i64::MAX).date(), Date::MAX);
        assert_eq!(LogTime(i64::MIN).date(), Date::MIN);
    }

    /// Regression (issue 9): a date decoded from storage or a forwarded command is checked.
    #[test]
    fn decoding_refuses_dates_out_of_range() {
        let ok = Date::parse("2024-02-29").unwrap();
        assert_eq!(bincode::deserialize::<Date>(&bincode::serialize(&ok).unwrap()).unwrap(), ok);
        for days in [i32::MAX, i32::MIN, MAX_DAYS + 1, MIN_DAYS - 1] {
            assert!(bincode::deserialize::<Date>(&bincode::serialize(&days).unwrap()).is_err(), "{days}");
        }
    }

    proptest! {
        #[test]
        fn civil_round_trip(days in -25_000i32..85_000) {
            let (y, m, d) = civil_from_days(days);
            prop_assert_eq!(days_from_civil(y, m, d), days);
        }
    }
}
