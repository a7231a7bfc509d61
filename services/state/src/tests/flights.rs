//! Flight inspections (issue 13.1) through apply: deadlines in the province's working days,
//! overdue by the group's time, reports filed once and marked late.

use medmesh_supervision::flights::{FlightInspection, FlightTrigger, Overdue, WorkCalendar};
use medmesh_types::{Date, LogTime};

use crate::inspection::InspectionCommand;
use crate::*;

use super::{inst, ok, one, seeded, NOW};

fn day(s: &str) -> Date {
    Date::parse(s).unwrap()
}

fn step(c: InspectionCommand) -> ProvinceCommand {
    ProvinceCommand::Inspection(c)
}

fn flight(r: &CommandResult) -> FlightInspection {
    match ok(r) {
        Outcome::Flight(f) => *f,
        o => panic!("{o:?}"),
    }
}

fn start(trigger: FlightTrigger) -> ProvinceCommand {
    step(InspectionCommand::StartFlight { id: "F-1".into(), institution: inst(), trigger })
}

/// Moves the group's time to `to` with empty entries.
fn advance_to(kv: &mut MemKv, to: LogTime) {
    let mut t: LogTime = kv::load(kv, keys::TIME).unwrap();
    while t.0 < to.0 {
        t = LogTime((t.0 + crate::MAX_CLOCK_STEP_MS).min(to.0));
        let (res, writes) = apply_batch(kv, &Batch::of::<Command>(t, Vec::new()), Role::Province);
        assert!(res.is_empty());
        kv.write(writes);
    }
}

fn listed(kv: &MemKv) -> (Option<Date>, Vec<FlightInspection>) {
    match run_query(kv, &Query::Flights { after: String::new(), limit: 10 }).unwrap() {
        Answer::Flights { today, flights } => (today, flights),
        o => panic!("{o:?}"),
    }
}

/// NOW is Monday 2025-03-10. Counted on a printed calendar: the 30th working day after it is
/// Monday 2025-04-21, or Tuesday 04-22 with Qingming (Friday 04-04) off.
#[test]
fn a_flight_inspection_reports_within_its_working_days() {
    let mut kv = seeded();
    assert_eq!(NOW.date(), day("2025-03-10"));
    let bad = WorkCalendar { holidays: [day("2025-04-05")].into(), ..WorkCalendar::default() };
    let e = one(&mut kv, step(InspectionCommand::PutCalendar(bad))).unwrap_err();
    assert_eq!((e.code, e.field.as_str()), (ErrorCode::InvalidArgument, "holidays"), "a Saturday: {e}");
    let cal = WorkCalendar { holidays: [day("2025-04-04")].into(), ..WorkCalendar::default() };
    ok(&one(&mut kv, step(InspectionCommand::PutCalendar(cal))));

    let e = one(&mut kv, start(FlightTrigger::Report("R-00000009".into()))).unwrap_err();
    assert_eq!((e.code, e.field.as_str()), (ErrorCode::NotFound, "trigger.report_id"), "{e}");
    let e = one(&mut kv, start(FlightTrigger::Signal(0))).unwrap_err();
    assert_eq!((e.code, e.field.as_str()), (ErrorCode::InvalidArgument, "trigger.alert_seq"), "{e}");
    let mut elsewhere = start(FlightTrigger::Media("evening news".into()));
    if let ProvinceCommand::Inspection(InspectionCommand::StartFlight { institution, .. }) = &mut elsewhere {
        *institution = medmesh_types::InstitutionId::new("H999").unwrap();
    }
    let e = one(&mut kv, elsewhere).unwrap_err();
    assert_eq!((e.code, e.field.as_str()), (ErrorCode::NotFound, "institution_id"), "{e}");
    let f = flight(&one(&mut kv, start(FlightTrigger::Media("evening news".into()))));
    assert_eq!((f.started_on, f.progress_due), (day("2025-03-10"), day("2025-04-22")));
    assert_eq!(flight(&one(&mut kv, start(FlightTrigger::Media("evening news".into())))), f, "a retry");
    let e = one(&mut kv, start(FlightTrigger::Media("a blog".into()))).unwrap_err();
    assert_eq!((e.code, e.field.as_str()), (ErrorCode::AlreadyExists, "flight_id"), "{e}");

    // On its day it is not late; the day after, the list says the progress report is overdue.
    let at = |d: &str| LogTime(i64::from(day(d).days()) * 86_400_000 + 3_600_000);
    advance_to(&mut kv, at("2025-04-22"));
    assert_eq!(listed(&kv).1[0].overdue(day("2025-04-22")), None);
    advance_to(&mut kv, at("2025-04-23"));
    let (today, flights) = listed(&kv);
    assert_eq!(today, Some(day("2025-04-23")));
    assert_eq!(flights[0].overdue(today.unwrap()), Some(Overdue::Progress));

    let file = |final_report: bool, text: &str| {
        step(InspectionCommand::FileFlightReport { id: "F-1".into(), final_report, text: text.into() })
    };
    let e = one(&mut kv, file(true, "done")).unwrap_err();
    assert_eq!((e.code, e.field.as_str()), (ErrorCode::FailedPrecondition, "flight_id"), "not closed: {e}");
    let f = flight(&one(&mut kv, file(false, "records sealed, interviews under way")));
    assert!(f.progress.as_ref().unwrap().late, "filed a day late, and kept");
    assert_eq!(flight(&one(&mut kv, file(false, "records sealed, interviews under way"))), f, "a retry");
    let close = |case: Option<&str>| {
        step(InspectionCommand::CloseFlight {
            id: "F-1".into(),
            summary: "inpatient days billed twice".into(),
            case: case.map(str::to_string),
        })
    };
    let e = one(&mut kv, close(Some("C-NONE"))).unwrap_err();
    assert_eq!((e.code, e.field.as_str()), (ErrorCode::NotFound, "case_id"), "{e}");
    // Closed on Wednesday 04-23: the final report is due five working days later, 04-30.
    let f = flight(&one(&mut kv, close(None)));
    assert_eq!((f.closed_on, f.final_due), (Some(day("2025-04-23")), Some(day("2025-04-30"))));
    advance_to(&mut kv, at("2025-04-30"));
    let f = flight(&one(&mut kv, file(true, "no case: repaid before closing")));
    assert!(!f.final_report.as_ref().unwrap().late);
    assert_eq!(f.overdue(day("2026-01-01")), None);
    let e = one(&mut kv, file(true, "another")).unwrap_err();
    assert_eq!((e.code, e.field.as_str()), (ErrorCode::FailedPrecondition, "flight_id"), "once: {e}");
}
