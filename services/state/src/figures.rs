//! The figures a province reports about a period (issue 13.4 disclosure, issue 14.1 national
//! aggregates): plain records with no behaviour beyond comparison, shared by the modules that
//! compute them ([`FundReport`] in `disclosure`, [`Tally`] in `tally`, [`Aggregate`] in
//! `aggregate`), the outbox that carries them and the commands that name a period. It depends
//! on no other module of this crate, so any of them may use it.

use std::collections::BTreeMap;
use std::fmt;

use medmesh_payment::Period;
use medmesh_types::{Date, Money, ProvinceCode};
use serde::{Deserialize, Serialize};

/// A month of the fund: the change of each running total over the month (signed: a month's
/// reversals may exceed its payments) and the balances at its end.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct FundReport {
    /// The month.
    pub period: Period,
    /// True once the month has ended (its figures never change again).
    pub closed: bool,
    /// Contributions to the pooling fund.
    pub contributions: Money,
    /// Funding of the medical-assistance fund.
    pub assistance_funded: Money,
    /// Paid by the pooling fund.
    pub pooling_paid: Money,
    /// Paid by the critical-illness tier.
    pub critical_illness_paid: Money,
    /// Paid by medical assistance.
    pub assistance_paid: Money,
    /// Paid from individual accounts.
    pub accounts_paid: Money,
    /// Settlements in force, change.
    pub settlements: i64,
    /// Settlements reversed.
    pub reversals: i64,
    /// Non-local settlements of this province's insured posted.
    pub nonlocal_out_settlements: i64,
    /// Owed to treatment provinces for them.
    pub nonlocal_out_amount: Money,
    /// Non-local settlements treated here, in force.
    pub nonlocal_in_settlements: i64,
    /// Owed by insured provinces for them.
    pub nonlocal_in_amount: Money,
    /// Recovered by executed cases.
    pub recovered: Money,
    /// Deducted in declaration review.
    pub deducted: Money,
    /// Fines imposed (memo).
    pub fines_imposed: Money,
    /// Paid to institutions.
    pub institution_payments: Money,
    /// Prepaid to institutions.
    pub prepaid_out: Money,
    /// Rewards paid to reporters.
    pub rewards_paid: Money,
    /// The pooling balance at the month's end (now, for the current month).
    pub closing_balance: Money,
    /// The medical-assistance balance at the month's end.
    pub closing_assistance_balance: Money,
    /// Average monthly pooling expenditure over the 12 months ending with this one.
    pub monthly_expenditure: Money,
    /// Months of it the closing balance with the prepaid account for non-local care covers
    /// ([`crate::FundLedger::with_prepaid`]), in tenths, rounded down (`None`: nothing spent).
    pub months_covered_tenths: Option<i64>,
}

/// A count of settlements and what the funds and accounts paid for them (fund share plus
/// individual account part), net of reversals.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Flow {
    /// Settlements, net of reversals.
    pub settlements: i64,
    /// Fund share plus individual-account part, yuan.
    pub amount: Money,
}

impl Flow {
    /// Adds `other` (whose figures may be negative: a reversal).
    pub(crate) fn add(&mut self, other: &Flow) {
        self.settlements += other.settlements;
        self.amount += other.amount;
    }
}

/// A period's tally. Counts are signed: reversals within a period subtract.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tally {
    /// Settlements at this province's institutions (local and visitors') by institution level.
    pub by_level: BTreeMap<u8, Flow>,
    /// Visitors' care (non-local in) by the visitors' insured province.
    pub nonlocal_in_by_province: BTreeMap<ProvinceCode, Flow>,
    /// Paid in cash by patients at this province's institutions (local and visitors').
    pub cash_paid: Money,
    /// Monitoring alerts raised.
    pub alerts: i64,
    /// Cases opened.
    pub cases_opened: i64,
    /// Cases executed.
    pub cases_executed: i64,
    /// Points scored against personnel by this province's decisions.
    pub points: i64,
    /// Joint-discipline entries this province recorded.
    pub discipline_entries: i64,
    /// Reports (whistleblowing) received.
    pub reports_received: i64,
    /// Inspections begun: plans drawn and flight inspections started.
    pub inspections: i64,
}

impl Tally {
    /// Adds `other` (another day's tally) to this one.
    pub(crate) fn merge(&mut self, other: &Tally) {
        for (level, f) in &other.by_level {
            self.by_level.entry(*level).or_default().add(f);
        }
        for (p, f) in &other.nonlocal_in_by_province {
            self.nonlocal_in_by_province.entry(p.clone()).or_default().add(f);
        }
        self.cash_paid += other.cash_paid;
        self.alerts += other.alerts;
        self.cases_opened += other.cases_opened;
        self.cases_executed += other.cases_executed;
        self.points += other.points;
        self.discipline_entries += other.discipline_entries;
        self.reports_received += other.reports_received;
        self.inspections += other.inspections;
    }
}

/// The period of an aggregate: a day or a calendar month.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum AggPeriod {
    /// A day.
    Day(Date),
    /// A calendar month.
    Month(Period),
}

impl AggPeriod {
    /// Parses `YYYY-MM-DD` (a day) or `YYYY-MM` (a month).
    pub fn parse(text: &str) -> Option<AggPeriod> {
        match text.len() {
            10 => Date::parse(text).ok().map(AggPeriod::Day),
            7 => Period::parse(text).map(AggPeriod::Month),
            _ => None,
        }
    }

    /// The first day.
    pub fn first_day(self) -> Date {
        match self {
            AggPeriod::Day(d) => d,
            AggPeriod::Month(m) => m.first_day(),
        }
    }

    /// The last day.
    pub fn last_day(self) -> Date {
        match self {
            AggPeriod::Day(d) => d,
            AggPeriod::Month(m) => m.last_day(),
        }
    }

    /// The month the period falls in.
    pub fn month(self) -> Period {
        Period::of(self.first_day())
    }
}

impl fmt::Display for AggPeriod {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AggPeriod::Day(d) => write!(f, "{d}"),
            AggPeriod::Month(m) => write!(f, "{m}"),
        }
    }
}

/// A province's figures of a period, as published.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Aggregate {
    /// The period.
    pub period: AggPeriod,
    /// The publication's version (1 for the first); 0 for figures not published.
    pub version: u32,
    /// True once the period has ended (its figures never change again).
    pub closed: bool,
    /// The fund over the period; `fund.period` is the month the period falls in.
    pub fund: FundReport,
    /// The period's tally.
    pub tally: Tally,
}

impl Aggregate {
    /// Whether two aggregates carry the same figures, whatever their versions.
    pub fn same_figures(&self, other: &Aggregate) -> bool {
        self.period == other.period
            && self.closed == other.closed
            && self.fund == other.fund
            && self.tally == other.tally
    }
}
