//! Conversions of flight inspections (issue 13.1) and the working-day calendar.

use medmesh_state::inspection::InspectionCommand;
use medmesh_supervision::flights::{FiledReport, FlightInspection, FlightTrigger, Overdue, WorkCalendar};
use medmesh_types::Date;
use tonic::Status;

use super::{bad, date, institution};
use crate::pb;

/// A calendar from the wire.
pub fn work_calendar(r: pb::PutWorkCalendarRequest) -> Result<InspectionCommand, Status> {
    let dates = |field: &str, v: &[String]| -> Result<std::collections::BTreeSet<Date>, Status> {
        if v.len() > medmesh_supervision::flights::MAX_CALENDAR_DATES {
            return Err(bad(field, format!("at most {} dates", medmesh_supervision::flights::MAX_CALENDAR_DATES)));
        }
        v.iter().enumerate().map(|(i, d)| date(&format!("{field}[{i}]"), d)).collect()
    };
    Ok(InspectionCommand::PutCalendar(WorkCalendar {
        holidays: dates("holidays", &r.holidays)?,
        workdays: dates("workdays", &r.workdays)?,
    }))
}

/// A start from the wire: exactly one trigger.
pub fn start_flight(r: pb::StartFlightInspectionRequest) -> Result<InspectionCommand, Status> {
    let mut given = Vec::new();
    if !r.plan_id.is_empty() {
        given.push(FlightTrigger::Plan(r.plan_id));
    }
    if !r.report_id.is_empty() {
        given.push(FlightTrigger::Report(r.report_id));
    }
    if r.alert_seq != 0 {
        given.push(FlightTrigger::Signal(r.alert_seq));
    }
    if !r.case_id.is_empty() {
        given.push(FlightTrigger::Case(r.case_id));
    }
    if !r.media.is_empty() {
        given.push(FlightTrigger::Media(r.media));
    }
    if given.len() != 1 {
        return Err(bad("trigger", "give exactly one of plan_id, report_id, alert_seq, case_id, media"));
    }
    let trigger = given.remove(0);
    let inst = institution("institution_id", &r.institution_id)?;
    medmesh_supervision::reports::check_id("flight_id", &r.flight_id)
        .and_then(|()| trigger.check())
        .map_err(|e| Status::invalid_argument(e.to_string()))?;
    Ok(InspectionCommand::StartFlight { id: r.flight_id, institution: inst, trigger })
}

/// A filed report from the wire.
pub fn file_flight_report(r: pb::FileFlightReportRequest) -> Result<InspectionCommand, Status> {
    let final_report = match pb::FlightReportKind::try_from(r.kind) {
        Ok(pb::FlightReportKind::Progress) => false,
        Ok(pb::FlightReportKind::Final) => true,
        _ => return Err(bad("kind", "must be FLIGHT_REPORT_KIND_PROGRESS or FLIGHT_REPORT_KIND_FINAL")),
    };
    Ok(InspectionCommand::FileFlightReport { id: r.flight_id, final_report, text: r.text })
}

/// A closing from the wire.
pub fn close_flight(r: pb::CloseFlightInspectionRequest) -> InspectionCommand {
    let case = (!r.case_id.is_empty()).then_some(r.case_id);
    InspectionCommand::CloseFlight { id: r.flight_id, summary: r.summary, case }
}

fn filed(r: &Option<FiledReport>) -> (String, String, bool) {
    match r {
        Some(r) => (r.on.to_string(), r.text.clone(), r.late),
        None => (String::new(), String::new(), false),
    }
}

/// A flight inspection on the wire (`today`: the group's day, for `overdue`).
pub fn flight_pb(f: &FlightInspection, today: Option<Date>) -> pb::FlightInspection {
    let trigger_ref = match &f.trigger {
        FlightTrigger::Plan(x) | FlightTrigger::Report(x) | FlightTrigger::Case(x) | FlightTrigger::Media(x) => {
            x.clone()
        }
        FlightTrigger::Signal(seq) => seq.to_string(),
    };
    let (progress_filed_on, progress, progress_late) = filed(&f.progress);
    let (final_filed_on, final_report, final_late) = filed(&f.final_report);
    let overdue = match today.and_then(|t| f.overdue(t)) {
        Some(Overdue::Progress) => "progress",
        Some(Overdue::Final) => "final",
        None => "",
    };
    pb::FlightInspection {
        flight_id: f.id.clone(),
        institution_id: f.institution.to_string(),
        trigger: f.trigger.name().into(),
        trigger_ref,
        started_on: f.started_on.to_string(),
        progress_due: f.progress_due.to_string(),
        progress_filed_on,
        progress,
        progress_late,
        closed_on: f.closed_on.map(|d| d.to_string()).unwrap_or_default(),
        summary: f.summary.clone(),
        case_id: f.case_id.clone().unwrap_or_default(),
        final_due: f.final_due.map(|d| d.to_string()).unwrap_or_default(),
        final_filed_on,
        final_report,
        final_late,
        overdue: overdue.into(),
    }
}
