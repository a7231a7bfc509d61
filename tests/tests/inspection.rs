//! Issue 13.1: a double-random inspection plan is recorded with its commitment, drawn once by
//! revealing the nonce, and re-derived by an independent script (`scripts/verify_draw.py`,
//! Python) from what `GetInspectionPlan` publishes, through the public API of a real
//! 3-replica province (processes, RocksDB, TLS); each drawn target's finding (a case opened by
//! the inspection, or clean) is published with the plan. Bad plans, draws and findings are
//! refused naming the field.

use std::path::PathBuf;

use medmesh_node::demo;
use medmesh_node::pb;
use medmesh_node::pb::agency_service_client::AgencyServiceClient;
use medmesh_tests::{fails, free_base_port, institution, Group};
use tonic::Code;

const HOME: &str = "110000";

fn nonce() -> [u8; 32] {
    std::array::from_fn(|i| (i as u8).wrapping_mul(37).wrapping_add(11))
}

/// Five institutions of 110000 graded A to C, eight inspectors (two working at institutions
/// of the pool), one recorded conflict; two targets with two inspectors each.
fn plan() -> pb::InspectionPlan {
    let grades = [pb::CreditGrade::A, pb::CreditGrade::C, pb::CreditGrade::B, pb::CreditGrade::C, pb::CreditGrade::A];
    pb::InspectionPlan {
        id: "DR-2026-Q4".into(),
        title: "Q4 double-random inspection of designated institutions".into(),
        targets: (1..=5u32)
            .map(|n| pb::InspectionTarget { id: demo::institution(HOME, n), grade: grades[n as usize - 1] as i32 })
            .collect(),
        inspectors: (1..=8u32)
            .map(|n| pb::InspectionInspector {
                id: format!("INSP-{n:02}"),
                home_institution: if n <= 2 { demo::institution(HOME, n) } else { String::new() },
                region: if n % 2 == 0 { "110000".into() } else { "110100".into() },
            })
            .collect(),
        conflicts: vec![pb::InspectionConflict {
            inspector: "INSP-03".into(),
            institution: demo::institution(HOME, 4),
        }],
        draw_targets: 2,
        inspectors_per_target: 2,
        commitment: hex::encode(medmesh_inspection::commitment(&nonce())),
    }
}

fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).parent().expect("the tests crate is in the workspace").to_path_buf()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_plan_is_drawn_once_and_anyone_re_derives_the_draw() {
    let mut g = Group::start(HOME, 3, free_base_port(), &[]);
    let leader = g.leader().await;
    demo::load(g.agency(leader), HOME, 1).await.unwrap();
    let mut a = AgencyServiceClient::new(g.agency(leader));
    for n in 3..=5u32 {
        a.put_institution(pb::PutInstitutionRequest {
            id: demo::institution(HOME, n),
            name: format!("Hospital {n}"),
            level: 2,
            agreement_start: "2020-01-01".into(),
            agreement_end: "2099-12-31".into(),
            suspended: false,
        })
        .await
        .unwrap();
    }
    let put = |plan: pb::InspectionPlan| pb::PutInspectionPlanRequest { plan: Some(plan) };
    let draw = |nonce: String| pb::DrawInspectionRequest { plan_id: plan().id, nonce };

    // Bad plans name the field; nothing is recorded.
    fails(a.draw_inspection(draw(hex::encode(nonce()))).await, Code::NotFound, "plan_id");
    let mut p = plan();
    p.targets[3].id = "H310000-01".into();
    fails(a.put_inspection_plan(put(p)).await, Code::NotFound, "plan.targets[3].id");
    let mut p = plan();
    p.targets[0].grade = 9;
    fails(a.put_inspection_plan(put(p)).await, Code::InvalidArgument, "plan.targets[0].grade");
    let mut p = plan();
    p.commitment = "abc".into();
    fails(a.put_inspection_plan(put(p)).await, Code::InvalidArgument, "plan.commitment");
    let mut p = plan();
    p.inspectors_per_target = 4; // 2 x 4 + 1 in conflict with one target > 8
    fails(a.put_inspection_plan(put(p)).await, Code::InvalidArgument, "plan.inspectors");
    let mut p = plan();
    p.draw_targets = 6;
    fails(a.put_inspection_plan(put(p)).await, Code::InvalidArgument, "plan.draw_targets");
    fails(a.put_inspection_plan(pb::PutInspectionPlanRequest { plan: None }).await, Code::InvalidArgument, "plan");
    // A hospital neither plans nor draws.
    let mut h = AgencyServiceClient::new(g.channel_as(leader, &institution(HOME, 1)));
    let denied = h.put_inspection_plan(put(plan())).await.unwrap_err();
    assert_eq!(denied.code(), Code::PermissionDenied, "{denied:?}");

    // Recorded once, pools sorted; the same plan again answers it; another is refused.
    let recorded = a.put_inspection_plan(put(plan())).await.unwrap().into_inner().plan.unwrap();
    let ids: Vec<&str> = recorded.inspectors.iter().map(|i| i.id.as_str()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "{ids:?}");
    assert_eq!(a.put_inspection_plan(put(plan())).await.unwrap().into_inner().plan.unwrap(), recorded);
    let mut changed = plan();
    changed.draw_targets = 1;
    fails(a.put_inspection_plan(put(changed)).await, Code::AlreadyExists, "plan.id");
    // Targets given no grade take their credit grade that day: A for these institutions with
    // no case and no discipline entry; an unknown target is still named.
    let mut ungraded = plan();
    ungraded.id = "DR-2026-Q4-CREDIT".into();
    ungraded.targets.iter_mut().for_each(|t| t.grade = pb::CreditGrade::Unspecified as i32);
    let mut unknown = ungraded.clone();
    unknown.targets[2].id = demo::institution(HOME, 77);
    fails(a.put_inspection_plan(put(unknown)).await, Code::NotFound, "plan.targets[2].id");
    let graded = a.put_inspection_plan(put(ungraded.clone())).await.unwrap().into_inner().plan.unwrap();
    assert!(graded.targets.iter().all(|t| t.grade == pb::CreditGrade::A as i32), "{graded:?}");
    // Institution 5, graded A, goes on the joint incentive list: a later plan leaves it out of
    // the pool when it is given no grade (fewer routine inspections), and keeps it when graded.
    let today = demo::today();
    let until = medmesh_types::Date::parse(&today).unwrap().plus_days(365).to_string();
    let entry = a
        .record_incentive(pb::RecordIncentiveRequest {
            id: "JI-2026-01".into(),
            institution_id: demo::institution(HOME, 5),
            from: today,
            until,
            reason: "graded A with no case for three years".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .entry
        .unwrap();
    assert!(entry.in_force, "{entry:?}");
    let mut trusted = ungraded.clone();
    trusted.id = "DR-2026-Q4-TRUSTED".into();
    let answer = a.put_inspection_plan(put(trusted.clone())).await.unwrap().into_inner();
    assert_eq!(answer.exempt, vec![demo::institution(HOME, 5)]);
    let ids: Vec<String> = answer.plan.unwrap().targets.into_iter().map(|t| t.id).collect();
    assert_eq!(ids, (1..=4u32).map(|n| demo::institution(HOME, n)).collect::<Vec<_>>());
    trusted.id = "DR-2026-Q4-TRUSTED-GRADED".into();
    trusted.targets[4].grade = pb::CreditGrade::A as i32;
    let answer = a.put_inspection_plan(put(trusted)).await.unwrap().into_inner();
    assert!(answer.exempt.is_empty() && answer.plan.unwrap().targets.len() == 5);

    // The draw: a nonce that is not the committed one is refused; the right one draws once.
    let mut wrong = nonce();
    wrong[0] ^= 0x80;
    fails(a.draw_inspection(draw(hex::encode(wrong))).await, Code::InvalidArgument, "nonce");
    fails(a.draw_inspection(draw("not hex".into())).await, Code::InvalidArgument, "nonce");
    let d = a.draw_inspection(draw(hex::encode(nonce()))).await.unwrap().into_inner().draw.unwrap();
    assert_eq!((d.nonce.as_str(), d.version, d.assignments.len()), (hex::encode(nonce()).as_str(), 1, 2));
    fails(a.draw_inspection(draw(hex::encode(nonce()))).await, Code::AlreadyExists, "plan_id");

    // Findings: the first target's inspection opens a case, the second is clean; each once.
    let (t0, t1) = (d.assignments[0].target.clone(), d.assignments[1].target.clone());
    let finding = |target: &str, case_id: &str, summary: &str| pb::RecordInspectionFindingRequest {
        plan_id: plan().id,
        target: target.into(),
        case_id: case_id.into(),
        summary: summary.into(),
    };
    let undrawn = recorded.targets.iter().find(|t| t.id != t0 && t.id != t1).unwrap().id.clone();
    fails(a.record_inspection_finding(finding(&undrawn, "", "clean")).await, Code::NotFound, "target");
    fails(a.record_inspection_finding(finding(&t1, "", "")).await, Code::InvalidArgument, "summary");
    a.open_case(pb::OpenCaseRequest {
        case_id: "C-DR-1".into(),
        inspection_id: plan().id,
        institution_id: t0.clone(),
        ..Default::default()
    })
    .await
    .unwrap();
    let r = a.record_inspection_finding(finding(&t0, "C-DR-1", "inpatient days billed twice")).await.unwrap();
    let r = r.into_inner().result.unwrap();
    assert_eq!((r.outcome.as_str(), r.case_state.as_str(), r.recovered.as_str()), ("CASE", "opened", "0.00"));
    a.record_inspection_finding(finding(&t1, "", "no irregularity found")).await.unwrap();
    fails(a.record_inspection_finding(finding(&t1, "", "another")).await, Code::AlreadyExists, "target");

    // Published: any identity reads the plan, its draw and the results.
    let got = h.get_inspection_plan(pb::GetInspectionPlanRequest { plan_id: plan().id }).await.unwrap().into_inner();
    assert_eq!((got.plan.as_ref(), got.draw.as_ref()), (Some(&recorded), Some(&d)));
    let results: Vec<(&str, &str, &str)> =
        got.results.iter().map(|r| (r.target.as_str(), r.outcome.as_str(), r.case_id.as_str())).collect();
    assert_eq!(results, vec![(t0.as_str(), "CASE", "C-DR-1"), (t1.as_str(), "CLEAN", "")]);
    fails(
        h.get_inspection_plan(pb::GetInspectionPlanRequest { plan_id: "NOPE".into() }).await,
        Code::NotFound,
        "plan_id",
    );

    // The beacon is the audit entry before the draw's own.
    let audit = a
        .list_audit(pb::ListAuditRequest { from_seq: d.beacon_seq, page_size: 1 })
        .await
        .unwrap()
        .into_inner()
        .entries
        .remove(0);
    assert_eq!((audit.seq, audit.hash.as_str()), (d.beacon_seq, d.beacon.as_str()));

    // Anyone re-derives the draw with the published script, from the published answer alone.
    let targets: Vec<serde_json::Value> = recorded
        .targets
        .iter()
        .map(|t| {
            let grade = pb::CreditGrade::try_from(t.grade).unwrap().as_str_name();
            serde_json::json!({"id": t.id, "grade": grade})
        })
        .collect();
    let inspectors: Vec<serde_json::Value> = recorded
        .inspectors
        .iter()
        .map(|i| serde_json::json!({"id": i.id, "homeInstitution": i.home_institution, "region": i.region}))
        .collect();
    let conflicts: Vec<serde_json::Value> = recorded
        .conflicts
        .iter()
        .map(|c| serde_json::json!({"inspector": c.inspector, "institution": c.institution}))
        .collect();
    let doc = serde_json::json!({
        "plan": {
            "id": recorded.id, "targets": targets, "inspectors": inspectors, "conflicts": conflicts,
            "drawTargets": recorded.draw_targets, "inspectorsPerTarget": recorded.inspectors_per_target,
            "commitment": recorded.commitment,
        },
        "draw": {"nonce": d.nonce, "beacon": d.beacon},
    });
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plan.json");
    std::fs::write(&file, doc.to_string()).unwrap();
    let out = std::process::Command::new("python3")
        .arg(repo_root().join("scripts/verify_draw.py"))
        .arg(&file)
        .output()
        .expect("python3 runs (CI installs it): the draw must be re-derived by an independent script");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let want: String = d.assignments.iter().map(|x| format!("{}: {}\n", x.target, x.inspectors.join(" "))).collect();
    assert_eq!(String::from_utf8(out.stdout).unwrap(), want);
    g.stop_all().await;
}

/// The `n`-th working day after `from` (Monday to Friday but `holiday`), counted here one day
/// at a time, apart from the mesh's own calendar code.
fn working_days_after(from: medmesh_types::Date, n: u32, holiday: medmesh_types::Date) -> medmesh_types::Date {
    let mut d = from;
    let mut left = n;
    while left > 0 {
        d = d.plus_days(1);
        let weekday = (d.days() + 3).rem_euclid(7); // 1970-01-01 was a Thursday (3)
        if weekday < 5 && d != holiday {
            left -= 1;
        }
    }
    d
}

/// A flight inspection on a real province: its deadlines in working days (with the province's
/// holiday), its reports filed once, read by the nation; bad requests name the field.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flight_inspection_is_held_to_its_working_day_deadlines() {
    let g = Group::start(HOME, 3, free_base_port(), &[]);
    let leader = g.leader().await;
    demo::load(g.agency(leader), HOME, 1).await.unwrap();
    let mut a = AgencyServiceClient::new(g.agency(leader));
    let today = medmesh_types::Date::parse(&demo::today()).unwrap();
    // The first weekday after today is a holiday.
    let holiday = working_days_after(today, 1, medmesh_types::Date::MIN);
    a.put_work_calendar(pb::PutWorkCalendarRequest { holidays: vec![holiday.to_string()], workdays: vec![] })
        .await
        .unwrap();
    fails(
        a.put_work_calendar(pb::PutWorkCalendarRequest { holidays: vec!["2026-02-30".into()], workdays: vec![] }).await,
        Code::InvalidArgument,
        "holidays[0]",
    );
    let start = pb::StartFlightInspectionRequest {
        flight_id: "FL-2026-01".into(),
        institution_id: demo::institution(HOME, 1),
        media: "a television report on empty wards billed as full".into(),
        ..Default::default()
    };
    fails(
        a.start_flight_inspection(pb::StartFlightInspectionRequest { media: String::new(), ..start.clone() }).await,
        Code::InvalidArgument,
        "trigger",
    );
    fails(
        a.start_flight_inspection(pb::StartFlightInspectionRequest { case_id: "C-1".into(), ..start.clone() }).await,
        Code::InvalidArgument,
        "trigger",
    );
    fails(
        a.start_flight_inspection(pb::StartFlightInspectionRequest {
            media: String::new(),
            report_id: "R-00000042".into(),
            ..start.clone()
        })
        .await,
        Code::NotFound,
        "trigger.report_id",
    );
    let f = a.start_flight_inspection(start.clone()).await.unwrap().into_inner().flight.unwrap();
    assert_eq!((f.trigger.as_str(), f.started_on.clone()), ("media", today.to_string()));
    assert_eq!(f.progress_due, working_days_after(today, 30, holiday).to_string());
    assert_eq!((f.overdue.as_str(), f.closed_on.as_str()), ("", ""));
    let file = |kind: pb::FlightReportKind, text: &str| pb::FileFlightReportRequest {
        flight_id: "FL-2026-01".into(),
        kind: kind as i32,
        text: text.into(),
    };
    fails(a.file_flight_report(file(pb::FlightReportKind::Unspecified, "x")).await, Code::InvalidArgument, "kind");
    fails(a.file_flight_report(file(pb::FlightReportKind::Final, "x")).await, Code::FailedPrecondition, "flight_id");
    let f = a.file_flight_report(file(pb::FlightReportKind::Progress, "ward rosters seized")).await.unwrap();
    let f = f.into_inner().flight.unwrap();
    assert_eq!((f.progress_filed_on.clone(), f.progress_late), (today.to_string(), false));
    let close = pb::CloseFlightInspectionRequest {
        flight_id: "FL-2026-01".into(),
        summary: "inpatient days billed for empty beds".into(),
        case_id: String::new(),
    };
    let f = a.close_flight_inspection(close).await.unwrap().into_inner().flight.unwrap();
    assert_eq!(f.final_due, working_days_after(today, 5, holiday).to_string());
    a.file_flight_report(file(pb::FlightReportKind::Final, "recovered in full")).await.unwrap();
    fails(
        a.file_flight_report(file(pb::FlightReportKind::Final, "again")).await,
        Code::FailedPrecondition,
        "flight_id",
    );
    let mut nation = AgencyServiceClient::new(g.channel_as(leader, &medmesh_tests::national()));
    let got = nation
        .get_flight_inspection(pb::GetFlightInspectionRequest { flight_id: "FL-2026-01".into() })
        .await
        .unwrap()
        .into_inner()
        .flight
        .unwrap();
    assert_eq!((got.final_report.as_str(), got.final_late), ("recovered in full", false));
    let overdue = nation
        .list_flight_inspections(pb::ListFlightInspectionsRequest { overdue_only: true, ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .flights;
    assert!(overdue.is_empty(), "{overdue:?}");
    fails(
        nation.get_flight_inspection(pb::GetFlightInspectionRequest { flight_id: "FL-NONE".into() }).await,
        Code::NotFound,
        "flight_id",
    );
}
