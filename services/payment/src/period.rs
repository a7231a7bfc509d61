//! A calendar month: the period of a declaration, a payment and an aggregate.

use std::fmt;

use medmesh_types::Date;
use serde::{Deserialize, Serialize};

/// A calendar month, `YYYY-MM` in text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Period {
    year: i32,
    month: u32,
}

impl Period {
    /// The month of `year`-`month`, if `month` is 1–12 and the year within the dates medmesh
    /// stores (2000–2199).
    pub fn new(year: i32, month: u32) -> Option<Period> {
        ((2000..=2199).contains(&year) && (1..=12).contains(&month)).then_some(Period { year, month })
    }

    /// Parses `YYYY-MM`.
    pub fn parse(text: &str) -> Option<Period> {
        let (y, m) = text.split_once('-')?;
        if y.len() != 4 || m.len() != 2 || !y.bytes().chain(m.bytes()).all(|b| b.is_ascii_digit()) {
            return None;
        }
        Period::new(y.parse().ok()?, m.parse().ok()?)
    }

    /// The month `day` falls in.
    pub fn of(day: Date) -> Period {
        let (year, month, _) = day.ymd();
        Period { year, month }
    }

    /// The year.
    pub fn year(self) -> i32 {
        self.year
    }

    /// The month, 1–12.
    pub fn month(self) -> u32 {
        self.month
    }

    /// The first day.
    pub fn first_day(self) -> Date {
        Date::from_ymd(self.year, self.month, 1)
    }

    /// The last day.
    pub fn last_day(self) -> Date {
        self.next().first_day().plus_days(-1)
    }

    /// The month after.
    pub fn next(self) -> Period {
        if self.month == 12 {
            Period { year: self.year + 1, month: 1 }
        } else {
            Period { year: self.year, month: self.month + 1 }
        }
    }

    /// The month before.
    pub fn prev(self) -> Period {
        if self.month == 1 {
            Period { year: self.year - 1, month: 12 }
        } else {
            Period { year: self.year, month: self.month - 1 }
        }
    }

    /// The month `n` months before this one.
    pub fn minus_months(self, n: u32) -> Period {
        let index = self.index() - i64::from(n);
        Period { year: index.div_euclid(12) as i32, month: index.rem_euclid(12) as u32 + 1 }
    }

    /// Months since year 0 (for distances between months).
    fn index(self) -> i64 {
        i64::from(self.year) * 12 + i64::from(self.month) - 1
    }

    /// Months from `self` to `later` (0 for the same month; negative when `later` is earlier).
    pub fn months_until(self, later: Period) -> i64 {
        later.index() - self.index()
    }

    /// Whether the month is over on `today`.
    pub fn ended_by(self, today: Date) -> bool {
        today > self.last_day()
    }

    /// Six digits, `YYYYMM`, sorting as the months do (for storage keys).
    pub fn key(self) -> String {
        format!("{:04}{:02}", self.year, self.month)
    }
}

impl fmt::Display for Period {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}
