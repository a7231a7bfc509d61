//! Personnel payment-qualification scoring for medmesh, after the 2025 regulation on the
//! medical-insurance payment qualification of personnel in designated medical institutions, and
//! the case state machine with its penalties ([`cases`], after the 2021 regulations).
//!
//! Administrative penalties and agreement handling give a person ([`PersonnelCode`]) points, each
//! recorded as a [`Violation`]. [`status`] turns a person's history and a date into a
//! [`QualificationView`]: the year's points, the state (active, suspended, terminated), whether the
//! institution must be notified, and whether the person may bill the fund or register again.
//! [`Ledger`] records violations idempotently and answers the same question per person.
//!
//! The rules, as encoded here:
//! - a violation counts in the calendar year of the date it was decided
//!   ([`Violation::decided_on`]), whichever province decided it: a person has one score;
//! - a violation counts once however often it is recorded (same person, same id); the same id
//!   recorded again with other content is an error;
//! - while the year's points are above 0 and below 9, the person stays active and the institution
//!   is notified of the score;
//! - on the date the year's points first reach 9 (and not 12), the payment qualification is
//!   suspended for 1–6 months: the most severe [`Severity`] among the year's violations decided
//!   up to that date. The suspension runs from that date to `until` (exclusive), which is
//!   [`Date::plus_months`] of it. Further points below 12 in the same year do not suspend again;
//! - on the date the year's points first reach 12, the qualification is terminated, and
//!   re-registration is barred for one year from that date, or three years when the 12 points came
//!   at once. "At once" is encoded as: the violations decided on the termination date alone carry
//!   12 points or more, a single 12-point violation or several decided on the same date (the items
//!   of one penalty decision), whatever points came earlier in the year;
//! - a new calendar year resets the points, never a running suspension, a termination or a ban;
//! - termination outranks suspension; violations decided after the date asked about are ignored.
//!
//! The history holds violations only: re-registration after a ban is the registry's fact, not
//! this crate's, so a terminated person stays [`QualificationState::Terminated`] here, with
//! [`QualificationView::may_register`] telling when the registry may accept them again.
//!
//! This crate does no IO and must never depend on tokio, tonic, prost, rocksdb or openraft.
//! Points are integers; there are no floats.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;

use medmesh_types::{Date, PersonnelCode, ProvinceCode};
use serde::{Deserialize, Serialize};

pub mod cases;
pub mod credit;
pub mod flights;
pub mod reports;
#[cfg(test)]
mod tests;

/// Year points from which the payment qualification is suspended.
pub const SUSPENSION_POINTS: u32 = 9;
/// Year points at which the payment qualification is terminated.
pub const TERMINATION_POINTS: u32 = 12;
/// Most points one violation carries.
pub const MAX_VIOLATION_POINTS: u8 = 12;
/// Months re-registration is barred after a termination.
pub const BAN_MONTHS: u32 = 12;
/// Months re-registration is barred after a termination whose 12 points came at once.
pub const BAN_MONTHS_AT_ONCE: u32 = 36;
/// Longest violation id, in bytes.
pub const MAX_ID_LEN: usize = 128;

/// Why a violation or a history was rejected.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SupervisionError {
    /// A violation's id is empty, longer than [`MAX_ID_LEN`] bytes, or holds `/` or a control
    /// character.
    #[error("violation.id: {id:?} must be 1 to {MAX_ID_LEN} bytes without '/' or control characters")]
    BadId {
        /// The id.
        id: String,
    },
    /// A violation's points are 0 or above [`MAX_VIOLATION_POINTS`].
    #[error("violation {id}: points must be 1 to {MAX_VIOLATION_POINTS}, got {points}")]
    PointsOutOfRange {
        /// The violation's id.
        id: String,
        /// The points given.
        points: u8,
    },
    /// A severity outside 1 to 6 (months of suspension).
    #[error("severity must be 1 to 6 (months of suspension), got {severity}")]
    SeverityOutOfRange {
        /// The severity given.
        severity: u8,
    },
    /// The same violation id was recorded again for the same person with different content.
    #[error("violation {id}: recorded again for {personnel} with different content")]
    ConflictingDuplicate {
        /// The person.
        personnel: PersonnelCode,
        /// The violation's id.
        id: String,
    },
    /// A history given to [`status`] holds violations of more than one person.
    #[error("violation {id}: personnel {found} in a history of {expected}")]
    MixedPersonnel {
        /// The violation's id.
        id: String,
        /// The person the history is about (the smallest code in it).
        expected: PersonnelCode,
        /// The other person found.
        found: PersonnelCode,
    },
}

/// How serious a violation is, as the months of suspension (1–6) it calls for when the year's
/// points reach 9.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "u8", into = "u8")]
pub struct Severity(u8);

impl Severity {
    /// The least severe: one month of suspension.
    pub const LEAST: Severity = Severity(1);
    /// The most severe: six months of suspension.
    pub const MOST: Severity = Severity(6);

    /// A severity from the months of suspension it calls for (1 to 6).
    pub fn new(months: u8) -> Result<Severity, SupervisionError> {
        if (Severity::LEAST.0..=Severity::MOST.0).contains(&months) {
            Ok(Severity(months))
        } else {
            Err(SupervisionError::SeverityOutOfRange { severity: months })
        }
    }

    /// Months of suspension (1 to 6).
    pub fn months(self) -> u8 {
        self.0
    }
}

impl From<Severity> for u8 {
    fn from(s: Severity) -> u8 {
        s.0
    }
}

impl TryFrom<u8> for Severity {
    type Error = SupervisionError;
    fn try_from(months: u8) -> Result<Severity, SupervisionError> {
        Severity::new(months)
    }
}

/// One scoring of a person: an administrative penalty or an agreement handling that gave points.
///
/// Fields are public; [`Violation::validate`] checks them, and [`status`] and [`Ledger::record`]
/// validate every violation they are given.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Violation {
    /// The person scored.
    pub personnel: PersonnelCode,
    /// Stable id of the scoring, unique per person (one penalty decision may score several
    /// people under the same id). Recording it again counts once.
    pub id: String,
    /// Date the penalty or handling was decided; the points count in this date's calendar year.
    pub decided_on: Date,
    /// Points given, 1 to 12.
    pub points: u8,
    /// Severity, which sets the length of a suspension this violation takes part in.
    pub severity: Severity,
    /// The province whose agency decided it.
    pub province: ProvinceCode,
}

impl Violation {
    /// Checks the id and the points.
    pub fn validate(&self) -> Result<(), SupervisionError> {
        let id = &self.id;
        if id.is_empty() || id.len() > MAX_ID_LEN || id.chars().any(|c| c == '/' || c.is_control()) {
            return Err(SupervisionError::BadId { id: id.clone() });
        }
        if self.points == 0 || self.points > MAX_VIOLATION_POINTS {
            return Err(SupervisionError::PointsOutOfRange { id: id.clone(), points: self.points });
        }
        Ok(())
    }
}

/// A person's payment qualification on a date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum QualificationState {
    /// May bill the fund.
    Active,
    /// May not bill the fund from `since` until (exclusive) `until`.
    Suspended {
        /// First day of the suspension: the day the year's points reached 9. When suspensions
        /// touch or overlap, the first day of the earliest.
        since: Date,
        /// First day the person may bill again.
        until: Date,
    },
    /// Terminated: may not bill the fund, and may not register again before `reregister_from`.
    Terminated {
        /// Day of termination: the day the year's points reached 12.
        since: Date,
        /// First day the person may register again (one year after `since`, three when the 12
        /// points came at once).
        reregister_from: Date,
        /// The 12 points came at once (decided on the termination date alone).
        at_once: bool,
    },
}

/// What [`status`] says about a person on a date.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct QualificationView {
    /// The date asked about.
    pub on: Date,
    /// The calendar year of `on`.
    pub year: i32,
    /// Points decided in that year up to and including `on`, over every province.
    pub year_points: u32,
    /// The qualification on `on`.
    pub state: QualificationState,
    /// The year's points are above 0 and below 9: the agency reports the score to the
    /// institution where the person practises.
    pub notify_institution: bool,
}

impl QualificationView {
    /// Whether the person may bill the fund on `day`, for `day` on or after [`Self::on`], as long as
    /// no further violation is decided.
    pub fn may_bill(&self, day: Date) -> bool {
        match self.state {
            QualificationState::Active => true,
            QualificationState::Suspended { since, until } => day < since || day >= until,
            QualificationState::Terminated { since, .. } => day < since,
        }
    }

    /// Whether the person may register (登记备案) on `day`, for `day` on or after [`Self::on`], as
    /// long as no further violation is decided. Only a termination's ban prevents it.
    pub fn may_register(&self, day: Date) -> bool {
        match self.state {
            QualificationState::Active | QualificationState::Suspended { .. } => true,
            QualificationState::Terminated { since, reregister_from, .. } => day < since || day >= reregister_from,
        }
    }
}

/// The qualification of the person whose violations `history` holds, on `on`.
///
/// Pure: the result depends only on the set of violations, not on their order or on repeats of
/// the same violation. Violations decided after `on` are ignored. Every violation is validated;
/// a history of several people, or an id repeated with different content, is an error.
pub fn status(history: &[Violation], on: Date) -> Result<QualificationView, SupervisionError> {
    // Validate in a canonical order, so that the error reported does not depend on the order given.
    let mut sorted: Vec<&Violation> = history.iter().collect();
    sorted.sort();
    let mut unique: BTreeMap<&str, &Violation> = BTreeMap::new();
    let expected = sorted.first().map(|v| &v.personnel);
    for v in sorted.iter().copied() {
        v.validate()?;
        if let Some(expected) = expected.filter(|&p| *p != v.personnel) {
            return Err(SupervisionError::MixedPersonnel {
                id: v.id.clone(),
                expected: expected.clone(),
                found: v.personnel.clone(),
            });
        }
        match unique.get(v.id.as_str()) {
            Some(seen) if *seen != v => {
                return Err(SupervisionError::ConflictingDuplicate { personnel: v.personnel.clone(), id: v.id.clone() })
            }
            Some(_) => {}
            None => {
                unique.insert(&v.id, v);
            }
        }
    }
    Ok(evaluate(unique.into_values(), on))
}

/// The qualification of valid, distinct violations of one person on `on`.
fn evaluate<'a>(violations: impl IntoIterator<Item = &'a Violation>, on: Date) -> QualificationView {
    // Points and the most severe violation per decision date, up to `on`.
    let mut days: BTreeMap<Date, (u32, Severity)> = BTreeMap::new();
    for v in violations.into_iter().filter(|v| v.decided_on <= on) {
        let day = days.entry(v.decided_on).or_insert((0, Severity::LEAST));
        day.0 = day.0.saturating_add(u32::from(v.points));
        day.1 = day.1.max(v.severity);
    }

    // Walk the dates in order, resetting the count at each new year, and note each crossing.
    let mut suspensions: Vec<(Date, Date)> = Vec::new();
    // The termination that governs the ban: (reregister_from, since, at_once), the greatest.
    let mut termination: Option<(Date, Date, bool)> = None;
    let mut year = None;
    let mut points = 0u32;
    let mut severity = Severity::LEAST;
    for (&day, &(day_points, day_severity)) in &days {
        if year != Some(day.year()) {
            year = Some(day.year());
            points = 0;
            severity = Severity::LEAST;
        }
        let before = points;
        points = points.saturating_add(day_points);
        severity = severity.max(day_severity);
        if before < TERMINATION_POINTS && points >= TERMINATION_POINTS {
            let at_once = day_points >= TERMINATION_POINTS;
            let ban = if at_once { BAN_MONTHS_AT_ONCE } else { BAN_MONTHS };
            let candidate = (day.plus_months(ban), day, at_once);
            if termination.is_none_or(|t| candidate > t) {
                termination = Some(candidate);
            }
        } else if before < SUSPENSION_POINTS && points >= SUSPENSION_POINTS {
            suspensions.push((day, day.plus_months(u32::from(severity.months()))));
        }
    }

    let year_points = days
        .iter()
        .filter(|(day, _)| day.year() == on.year())
        .fold(0u32, |sum, (_, &(day_points, _))| sum.saturating_add(day_points));

    let state = if let Some((reregister_from, since, at_once)) = termination {
        QualificationState::Terminated { since, reregister_from, at_once }
    } else if let Some((since, until)) = suspension_on(&suspensions, on) {
        QualificationState::Suspended { since, until }
    } else {
        QualificationState::Active
    };

    QualificationView {
        on,
        year: on.year(),
        year_points,
        state,
        notify_institution: year_points > 0 && year_points < SUSPENSION_POINTS,
    }
}

/// The suspension in force on `on`, joining suspensions that touch or overlap; `periods` are
/// `(since, until)` sorted by `since`.
fn suspension_on(periods: &[(Date, Date)], on: Date) -> Option<(Date, Date)> {
    let mut runs: Vec<(Date, Date)> = Vec::new();
    for &(since, until) in periods {
        match runs.last_mut() {
            Some(run) if since <= run.1 => run.1 = run.1.max(until),
            _ => runs.push((since, until)),
        }
    }
    runs.into_iter().find(|&(since, until)| since <= on && on < until)
}

/// Whether [`Ledger::record`] added the violation or already had it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Recorded {
    /// The violation was new and now counts.
    New,
    /// The same violation was already recorded; nothing changed.
    AlreadyRecorded,
}

/// Violations of every person, each recorded once, keyed by person and id.
///
/// Serialised as the list of its violations; deserialising records each again, so a ledger read
/// back is validated like one built by [`Ledger::record`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "Vec<Violation>", into = "Vec<Violation>")]
pub struct Ledger {
    by_personnel: BTreeMap<PersonnelCode, BTreeMap<String, Violation>>,
}

impl Ledger {
    /// An empty ledger.
    pub fn new() -> Ledger {
        Ledger::default()
    }

    /// Records a violation. Idempotent: the same violation again is [`Recorded::AlreadyRecorded`];
    /// the same person and id with other content is [`SupervisionError::ConflictingDuplicate`] and
    /// leaves the ledger unchanged.
    pub fn record(&mut self, violation: Violation) -> Result<Recorded, SupervisionError> {
        violation.validate()?;
        let person = self.by_personnel.entry(violation.personnel.clone()).or_default();
        match person.get(&violation.id) {
            Some(seen) if *seen == violation => Ok(Recorded::AlreadyRecorded),
            Some(_) => Err(SupervisionError::ConflictingDuplicate { personnel: violation.personnel, id: violation.id }),
            None => {
                person.insert(violation.id.clone(), violation);
                Ok(Recorded::New)
            }
        }
    }

    /// A person's violations, by id.
    pub fn history<'a>(&'a self, personnel: &PersonnelCode) -> impl Iterator<Item = &'a Violation> + 'a {
        self.by_personnel.get(personnel).into_iter().flat_map(|person| person.values())
    }

    /// A person's qualification on `on` (the same answer as [`status`] on their history).
    pub fn status(&self, personnel: &PersonnelCode, on: Date) -> QualificationView {
        evaluate(self.history(personnel), on)
    }
}

impl TryFrom<Vec<Violation>> for Ledger {
    type Error = SupervisionError;
    fn try_from(violations: Vec<Violation>) -> Result<Ledger, SupervisionError> {
        let mut ledger = Ledger::new();
        for v in violations {
            ledger.record(v)?;
        }
        Ok(ledger)
    }
}

impl From<Ledger> for Vec<Violation> {
    fn from(ledger: Ledger) -> Vec<Violation> {
        ledger.by_personnel.into_values().flat_map(BTreeMap::into_values).collect()
    }
}
