//! Flight inspections (issue 13.1) in a province: the store around the pure rules of
//! [`medmesh_supervision::flights`]. Deadlines count the province's working days
//! ([`WorkCalendar`], recorded by the agency); the group's time (the log entry's) says what is
//! overdue, so every replica agrees.

use medmesh_supervision::cases::Case;
use medmesh_supervision::flights::{FlightInspection, FlightTrigger, WorkCalendar};
use medmesh_supervision::reports::{check_id, check_text};
use medmesh_types::{Date, LogTime};

use crate::error::case_error;
use crate::kv::{decode, keys, load, KvRead, Tx};
use crate::model::{InspectionCommand, Institution, Outcome};
use crate::DomainError;

/// The province's working-day calendar (Monday to Friday until one is recorded).
pub fn calendar(kv: &dyn KvRead) -> WorkCalendar {
    load(kv, keys::WORK_CALENDAR).unwrap_or_default()
}

/// What apply checks of a flight command before anything else.
pub(crate) fn validate(cmd: &InspectionCommand) -> Result<(), DomainError> {
    match cmd {
        InspectionCommand::PutCalendar(c) => c.validate().map_err(case_error),
        InspectionCommand::StartFlight { id, trigger, .. } => {
            check_id("flight_id", id).map_err(case_error)?;
            trigger.check().map_err(case_error)
        }
        InspectionCommand::FileFlightReport { id, text, .. } => {
            check_id("flight_id", id).map_err(case_error)?;
            check_text("text", text, true).map_err(case_error)
        }
        InspectionCommand::CloseFlight { id, summary, case } => {
            check_id("flight_id", id).map_err(case_error)?;
            check_text("summary", summary, true).map_err(case_error)?;
            match case {
                Some(c) => check_id("case_id", c).map_err(case_error),
                None => Ok(()),
            }
        }
        _ => Ok(()),
    }
}

fn load_flight(tx: &Tx<'_>, id: &str) -> Result<FlightInspection, DomainError> {
    tx.load(&keys::flight(id)).ok_or_else(|| DomainError::not_found("flight_id", format!("no flight inspection {id}")))
}

/// Checks that what a flight inspection names as its trigger exists here.
fn check_trigger(tx: &Tx<'_>, trigger: &FlightTrigger) -> Result<(), DomainError> {
    let (field, found) = match trigger {
        FlightTrigger::Plan(p) => {
            ("trigger.plan_id", tx.load::<crate::model::InspectionRecord>(&keys::inspection(p)).is_some())
        }
        FlightTrigger::Report(r) => {
            ("trigger.report_id", tx.load::<crate::model::ReportRecord>(&keys::report(r)).is_some())
        }
        FlightTrigger::Signal(seq) => {
            ("trigger.alert_seq", tx.load::<crate::model::Alert>(&keys::alert(*seq)).is_some())
        }
        FlightTrigger::Case(c) => ("trigger.case_id", tx.load::<Case>(&keys::case(c)).is_some()),
        FlightTrigger::Media(_) => ("trigger.media", true),
    };
    if found {
        Ok(())
    } else {
        Err(DomainError::not_found(field, format!("this province has no {} so named", trigger.name())))
    }
}

/// Applies a flight command.
pub(crate) fn execute(tx: &mut Tx<'_>, cmd: &InspectionCommand, now: LogTime) -> Result<Outcome, DomainError> {
    let today = now.date();
    let flight = match cmd {
        InspectionCommand::PutCalendar(c) => {
            tx.store(keys::WORK_CALENDAR, c);
            return Ok(Outcome::Stored);
        }
        InspectionCommand::StartFlight { id, institution, trigger } => {
            if let Some(f) = tx.load::<FlightInspection>(&keys::flight(id)) {
                // The same start again is a retry; another under the same id is refused.
                if &f.institution == institution && &f.trigger == trigger {
                    return Ok(Outcome::Flight(Box::new(f)));
                }
                return Err(DomainError::exists("flight_id", format!("flight inspection {id} was started already")));
            }
            if tx.load::<Institution>(&keys::institution(institution)).is_none() {
                return Err(DomainError::not_found(
                    "institution_id",
                    format!("institution {institution} is not an institution of this province"),
                ));
            }
            check_trigger(tx, trigger)?;
            let f = FlightInspection::start(id, institution.clone(), trigger.clone(), today, &calendar(tx))
                .map_err(case_error)?;
            crate::tally::tally(tx, today, |t| t.inspections += 1);
            f
        }
        InspectionCommand::FileFlightReport { id, final_report, text } => {
            let mut f = load_flight(tx, id)?;
            let filed = if *final_report { &f.final_report } else { &f.progress };
            if filed.as_ref().is_some_and(|r| &r.text == text) {
                return Ok(Outcome::Flight(Box::new(f)));
            }
            if *final_report {
                f.report_final(text, today).map_err(case_error)?;
            } else {
                f.report_progress(text, today).map_err(case_error)?;
            }
            f
        }
        InspectionCommand::CloseFlight { id, summary, case } => {
            let mut f = load_flight(tx, id)?;
            if f.closed_on.is_some() && &f.summary == summary && &f.case_id == case {
                return Ok(Outcome::Flight(Box::new(f)));
            }
            if let Some(c) = case {
                let found: Case =
                    tx.load(&keys::case(c)).ok_or_else(|| DomainError::not_found("case_id", format!("no case {c}")))?;
                if found.institution != f.institution {
                    return Err(DomainError::precondition(
                        "case_id",
                        format!("case {c} is about {}, not {}", found.institution, f.institution),
                    ));
                }
            }
            f.close(summary, case.clone(), today, &calendar(tx)).map_err(case_error)?;
            f
        }
        _ => return Err(DomainError::invalid("command", "not a flight inspection command")),
    };
    tx.store(&keys::flight(&flight.id), &flight);
    Ok(Outcome::Flight(Box::new(flight)))
}

/// Flight inspections by id after `after`, at most `limit`, and the group's day.
pub fn flights(kv: &dyn KvRead, after: &str, limit: usize) -> (Option<Date>, Vec<FlightInspection>) {
    let start =
        if after.is_empty() { keys::FLIGHT_PREFIX.to_string() } else { format!("{}\u{0}", keys::flight(after)) };
    let today = load::<LogTime>(kv, keys::TIME).map(|t| t.date());
    (today, kv.scan(start.as_bytes(), b"flight0", limit).iter().map(|(_, v)| decode(v)).collect())
}
