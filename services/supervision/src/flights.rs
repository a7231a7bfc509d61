//! Flight inspections ("飞行检查", unannounced; issue 13.1) and their deadlines in working days:
//! the inspected locality reports progress within 30 working days of the start, and a final
//! report within 5 working days after the inspection closes.
//!
//! **Working days** are Monday to Friday, except the province's recorded public holidays, plus
//! the weekend days it records as make-up working days ("调休"): [`WorkCalendar`]. A deadline of
//! `n` working days after day `d` is the `n`-th working day after `d` (`d` itself not counted);
//! a report filed on that day is on time. With no calendar recorded, every Monday to Friday is
//! a working day.
//!
//! An inspection moves started → (progress reported) → closed → final report filed. Closing
//! before the progress deadline without a progress report is allowed (the final report covers
//! it). An inspection is **overdue** while a due report is missing after its day; a report filed
//! late is kept and marked late.

use std::collections::BTreeSet;

use medmesh_types::{Date, InstitutionId};
use serde::{Deserialize, Serialize};

use crate::cases::CaseError;
use crate::reports::{check_id, check_text};

/// Working days from the start to the progress report.
pub const PROGRESS_WORKING_DAYS: u32 = 30;
/// Working days from closing to the final report.
pub const FINAL_WORKING_DAYS: u32 = 5;
/// Most dates of each kind in a calendar.
pub const MAX_CALENDAR_DATES: usize = 1000;

fn invalid(field: &str, message: impl Into<String>) -> CaseError {
    CaseError::Invalid { field: field.into(), message: message.into() }
}

fn state(message: impl Into<String>) -> CaseError {
    CaseError::State { field: "flight_id".into(), message: message.into() }
}

/// Day of the week, 0 = Monday … 6 = Sunday (1970-01-01 was a Thursday).
pub fn weekday(d: Date) -> u32 {
    u32::try_from((d.days() + 3).rem_euclid(7)).unwrap_or(0)
}

/// A province's working-day calendar.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct WorkCalendar {
    /// Public holidays falling on a weekday (no work).
    pub holidays: BTreeSet<Date>,
    /// Weekend days worked in exchange ("调休").
    pub workdays: BTreeSet<Date>,
}

impl WorkCalendar {
    /// Checks the calendar: bounded; a holiday is a weekday, a make-up day a weekend day.
    pub fn validate(&self) -> Result<(), CaseError> {
        if self.holidays.len() > MAX_CALENDAR_DATES || self.workdays.len() > MAX_CALENDAR_DATES {
            return Err(invalid("holidays", format!("at most {MAX_CALENDAR_DATES} dates of each kind")));
        }
        if let Some(d) = self.holidays.iter().find(|d| weekday(**d) >= 5) {
            return Err(invalid("holidays", format!("{d} is a weekend day already")));
        }
        if let Some(d) = self.workdays.iter().find(|d| weekday(**d) < 5) {
            return Err(invalid("workdays", format!("{d} is a weekday already")));
        }
        Ok(())
    }

    /// Whether `d` is a working day.
    pub fn is_working(&self, d: Date) -> bool {
        if self.workdays.contains(&d) {
            return true;
        }
        weekday(d) < 5 && !self.holidays.contains(&d)
    }

    /// The `n`-th working day after `from` (`from` not counted).
    pub fn add_working_days(&self, from: Date, n: u32) -> Date {
        let mut d = from;
        let mut left = n;
        // A year of holidays cannot hold more than 366 days off; the bound keeps a corrupt
        // calendar from looping.
        for _ in 0..(n as usize * 7 + 2 * MAX_CALENDAR_DATES + 14) {
            if left == 0 {
                break;
            }
            d = d.plus_days(1);
            if self.is_working(d) {
                left -= 1;
            }
        }
        d
    }
}

/// What triggered a flight inspection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FlightTrigger {
    /// The annual inspection plan (its id).
    Plan(String),
    /// A report (its id).
    Report(String),
    /// A monitoring signal (an alert's sequence number).
    Signal(u64),
    /// A case (its id).
    Case(String),
    /// Media coverage (where).
    Media(String),
}

impl FlightTrigger {
    /// Checks the reference's form, naming the field (`trigger.report_id`, …).
    pub fn check(&self) -> Result<(), CaseError> {
        match self {
            FlightTrigger::Plan(x) | FlightTrigger::Report(x) | FlightTrigger::Case(x) => {
                check_id(&format!("trigger.{}_id", self.name()), x)
            }
            FlightTrigger::Signal(0) => Err(invalid("trigger.alert_seq", "must be above 0")),
            FlightTrigger::Signal(_) => Ok(()),
            FlightTrigger::Media(m) => check_text("trigger.media", m, true),
        }
    }

    /// Lower-case name.
    pub fn name(&self) -> &'static str {
        match self {
            FlightTrigger::Plan(_) => "plan",
            FlightTrigger::Report(_) => "report",
            FlightTrigger::Signal(_) => "signal",
            FlightTrigger::Case(_) => "case",
            FlightTrigger::Media(_) => "media",
        }
    }
}

/// A report filed by the inspected locality.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FiledReport {
    /// Filed on.
    pub on: Date,
    /// What it says.
    pub text: String,
    /// Filed after its day.
    pub late: bool,
}

/// Which deadline a flight inspection has missed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Overdue {
    /// The progress report (30 working days from the start).
    Progress,
    /// The final report (5 working days after closing).
    Final,
}

/// A flight inspection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FlightInspection {
    /// The agency's id.
    pub id: String,
    /// The institution inspected.
    pub institution: InstitutionId,
    /// What triggered it.
    pub trigger: FlightTrigger,
    /// Started on (unannounced: the institution learns it that day).
    pub started_on: Date,
    /// The progress report is due by this day.
    pub progress_due: Date,
    /// The progress report.
    pub progress: Option<FiledReport>,
    /// Closed on.
    pub closed_on: Option<Date>,
    /// What was found, at closing.
    pub summary: String,
    /// The case it opened, if any.
    pub case_id: Option<String>,
    /// The final report is due by this day (once closed).
    pub final_due: Option<Date>,
    /// The final report.
    pub final_report: Option<FiledReport>,
}

impl FlightInspection {
    /// Starts one `today`.
    pub fn start(
        id: &str,
        institution: InstitutionId,
        trigger: FlightTrigger,
        today: Date,
        calendar: &WorkCalendar,
    ) -> Result<FlightInspection, CaseError> {
        check_id("flight_id", id)?;
        trigger.check()?;
        Ok(FlightInspection {
            id: id.to_string(),
            institution,
            trigger,
            started_on: today,
            progress_due: calendar.add_working_days(today, PROGRESS_WORKING_DAYS),
            progress: None,
            closed_on: None,
            summary: String::new(),
            case_id: None,
            final_due: None,
            final_report: None,
        })
    }

    /// Files the progress report.
    pub fn report_progress(&mut self, text: &str, today: Date) -> Result<(), CaseError> {
        check_text("text", text, true)?;
        if self.closed_on.is_some() {
            return Err(state(format!("flight inspection {} is closed: file its final report", self.id)));
        }
        if self.progress.is_some() {
            return Err(state(format!("flight inspection {} already has its progress report", self.id)));
        }
        self.progress = Some(FiledReport { on: today, text: text.to_string(), late: today > self.progress_due });
        Ok(())
    }

    /// Closes it with what was found and the case it opened, if any.
    pub fn close(
        &mut self,
        summary: &str,
        case_id: Option<String>,
        today: Date,
        calendar: &WorkCalendar,
    ) -> Result<(), CaseError> {
        check_text("summary", summary, true)?;
        if let Some(c) = &case_id {
            check_id("case_id", c)?;
        }
        if self.closed_on.is_some() {
            return Err(state(format!("flight inspection {} is already closed", self.id)));
        }
        self.closed_on = Some(today);
        self.summary = summary.to_string();
        self.case_id = case_id;
        self.final_due = Some(calendar.add_working_days(today, FINAL_WORKING_DAYS));
        Ok(())
    }

    /// Files the final report (after closing).
    pub fn report_final(&mut self, text: &str, today: Date) -> Result<(), CaseError> {
        check_text("text", text, true)?;
        let Some(due) = self.final_due else {
            return Err(state(format!("flight inspection {} is not closed: file a progress report", self.id)));
        };
        if self.final_report.is_some() {
            return Err(state(format!("flight inspection {} already has its final report", self.id)));
        }
        self.final_report = Some(FiledReport { on: today, text: text.to_string(), late: today > due });
        Ok(())
    }

    /// The deadline missed as of `today`, if any.
    pub fn overdue(&self, today: Date) -> Option<Overdue> {
        match self.final_due {
            Some(due) if self.final_report.is_none() && today > due => Some(Overdue::Final),
            Some(_) => None,
            None if self.progress.is_none() && today > self.progress_due => Some(Overdue::Progress),
            None => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(s: &str) -> Date {
        Date::parse(s).unwrap()
    }

    fn inst() -> InstitutionId {
        InstitutionId::new("H110000-01".to_string()).unwrap()
    }

    /// Weekdays known from a printed calendar.
    #[test]
    fn weekdays_match_the_calendar() {
        assert_eq!(weekday(day("1970-01-01")), 3, "a Thursday");
        assert_eq!(weekday(day("2026-12-03")), 3, "a Thursday");
        assert_eq!(weekday(day("2026-12-05")), 5, "a Saturday");
        assert_eq!(weekday(day("2027-02-06")), 5, "a Saturday");
        assert_eq!(weekday(day("1969-12-29")), 0, "a Monday, before the epoch");
    }

    /// 30 working days from Thursday 2026-12-03, counted by hand on a printed calendar (the
    /// running count after each week in the comments).
    #[test]
    fn deadlines_count_working_days_with_holidays_and_make_up_days() {
        let plain = WorkCalendar::default();
        // Dec 4 (1), 7–11 (6), 14–18 (11), 21–25 (16), 28–31 (20), Jan 1 (21), 4–8 (26), 11–14 (30).
        assert_eq!(plain.add_working_days(day("2026-12-03"), 30), day("2027-01-14"));
        assert_eq!(plain.add_working_days(day("2026-12-04"), 5), day("2026-12-11"), "Friday + 5 is next Friday");
        assert_eq!(plain.add_working_days(day("2026-12-05"), 1), day("2026-12-07"), "from a Saturday");
        let cal = WorkCalendar {
            holidays: [day("2027-01-01"), day("2026-12-25")].into(),
            workdays: [day("2027-01-09")].into(),
        };
        // Two holidays cost two days, the Saturday make-up day gives one back.
        assert_eq!(cal.add_working_days(day("2026-12-03"), 30), day("2027-01-15"));
        assert!(!cal.is_working(day("2026-12-25")) && cal.is_working(day("2027-01-09")));
        assert_eq!(cal.validate(), Ok(()));
        let bad = WorkCalendar { holidays: [day("2026-12-05")].into(), ..WorkCalendar::default() };
        assert_eq!(bad.validate().unwrap_err().field(), "holidays");
        let bad = WorkCalendar { workdays: [day("2026-12-04")].into(), ..WorkCalendar::default() };
        assert_eq!(bad.validate().unwrap_err().field(), "workdays");
    }

    #[test]
    fn reports_are_due_and_marked_late() {
        let cal = WorkCalendar::default();
        let trigger = FlightTrigger::Media("a newspaper report".into());
        let mut f = FlightInspection::start("F-1", inst(), trigger, day("2026-12-03"), &cal).unwrap();
        assert_eq!(f.progress_due, day("2027-01-14"));
        assert_eq!(f.overdue(day("2027-01-14")), None, "due that day, not yet late");
        assert_eq!(f.overdue(day("2027-01-15")), Some(Overdue::Progress));
        assert!(f.report_final("x", day("2027-01-15")).is_err(), "not closed");
        f.report_progress("records seized", day("2027-01-15")).unwrap();
        assert!(f.progress.as_ref().unwrap().late);
        assert_eq!(f.overdue(day("2027-06-01")), None);
        assert!(f.report_progress("again", day("2027-01-16")).is_err());
        f.close("upcoding found", Some("C-9".into()), day("2027-01-20"), &cal).unwrap();
        assert_eq!(f.final_due, Some(day("2027-01-27")), "Wednesday + 5 working days");
        assert_eq!(f.overdue(day("2027-01-28")), Some(Overdue::Final));
        assert!(f.close("again", None, day("2027-01-21"), &cal).is_err());
        f.report_final("case C-9 opened", day("2027-01-27")).unwrap();
        assert!(!f.final_report.as_ref().unwrap().late);
        assert_eq!(f.overdue(day("2027-12-31")), None);
    }

    #[test]
    fn bad_starts_name_the_field() {
        let cal = WorkCalendar::default();
        let start = |id: &str, t: FlightTrigger| FlightInspection::start(id, inst(), t, day("2026-12-03"), &cal);
        assert_eq!(start("a b", FlightTrigger::Signal(1)).unwrap_err().field(), "flight_id");
        assert_eq!(start("F", FlightTrigger::Signal(0)).unwrap_err().field(), "trigger.alert_seq");
        assert_eq!(start("F", FlightTrigger::Report("a/b".into())).unwrap_err().field(), "trigger.report_id");
        assert_eq!(start("F", FlightTrigger::Media(" ".into())).unwrap_err().field(), "trigger.media");
    }
}
