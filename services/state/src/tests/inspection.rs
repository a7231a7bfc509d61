//! Inspection plans and draws (issue 13.1) in apply: recorded once, drawn once, with the
//! audit-chain head as the beacon; the draw re-derived here from the pure rules and the
//! published beacon.

use medmesh_inspection::{commitment, Conflict, Grade, Inspector, Plan, Target};
use medmesh_types::{Date, InstitutionId};

use crate::audit::AuditHead;
use crate::inspection::{InspectionCommand, InspectionRecord};
use crate::*;

use super::{ok, one, prov, seeded};

fn nonce() -> [u8; 32] {
    std::array::from_fn(|i| 7 * i as u8)
}

/// Institutions H001 (the fixture's) to H004, 6 inspectors, one of them at H002.
fn plan() -> Plan {
    Plan {
        id: "P1".into(),
        targets: ["H001", "H002", "H003", "H004"]
            .iter()
            .zip([Grade::A, Grade::D, Grade::B, Grade::C])
            .map(|(id, grade)| Target { id: (*id).into(), grade })
            .collect(),
        inspectors: (1..=6)
            .map(|i| Inspector { id: format!("I{i}"), home: (i == 1).then(|| "H002".into()), region: "110000".into() })
            .collect(),
        conflicts: vec![Conflict { inspector: "I2".into(), institution: "H003".into() }],
        draw_targets: 2,
        per_target: 2,
        commitment: commitment(&nonce()),
    }
}

fn with_institutions() -> MemKv {
    let mut kv = seeded();
    for id in ["H002", "H003", "H004"] {
        let i = Institution {
            id: InstitutionId::new(id).unwrap(),
            name: id.into(),
            level: 2,
            agreement_start: Date::parse("2024-01-01").unwrap(),
            agreement_end: Date::parse("2026-12-31").unwrap(),
            suspended: false,
        };
        ok(&one(&mut kv, ProvinceCommand::PutInstitution(i)));
    }
    kv
}

fn put(plan: Plan) -> ProvinceCommand {
    ProvinceCommand::Inspection(InspectionCommand::PutPlan { plan, title: "2025 Q1 double-random".into() })
}

fn draw(nonce: [u8; 32]) -> ProvinceCommand {
    ProvinceCommand::Inspection(InspectionCommand::Draw { plan: "P1".into(), nonce })
}

fn record(r: &CommandResult) -> InspectionRecord {
    match ok(r) {
        Outcome::Inspection(r) => *r,
        o => panic!("{o:?}"),
    }
}

#[test]
fn a_plan_is_drawn_once_with_the_audit_head_as_beacon() {
    let mut kv = with_institutions();
    let recorded = record(&one(&mut kv, put(plan())));
    assert!(recorded.draw.is_none());
    // The same plan again is a retry; another under the same id is refused.
    assert_eq!(record(&one(&mut kv, put(plan()))), recorded);
    let mut other = plan();
    other.draw_targets = 1;
    let e = one(&mut kv, put(other)).unwrap_err();
    assert_eq!((e.code, e.field.as_str()), (ErrorCode::AlreadyExists, "plan.id"), "{e}");

    // A nonce that is not the committed one draws nothing.
    let mut wrong = nonce();
    wrong[31] ^= 1;
    let e = one(&mut kv, draw(wrong)).unwrap_err();
    assert_eq!((e.code, e.field.as_str()), (ErrorCode::InvalidArgument, "nonce"), "{e}");

    let head: AuditHead = kv::load(&kv, keys::AUDIT_HEAD).unwrap();
    let drawn = record(&one(&mut kv, draw(nonce())));
    let d = drawn.draw.clone().unwrap();
    assert_eq!((d.beacon_seq, hex::encode(d.beacon)), (head.seq, head.hash.clone()));
    // Anyone holding the published plan, nonce and beacon gets the same draw.
    assert_eq!(d.assignments, medmesh_inspection::draw(&plan(), &nonce(), &d.beacon).unwrap());
    assert_eq!(d.assignments.len(), 2);
    // Recorded once: a second draw is refused and changes nothing.
    let e = one(&mut kv, draw(nonce())).unwrap_err();
    assert_eq!((e.code, e.field.as_str()), (ErrorCode::AlreadyExists, "plan_id"), "{e}");
    match run_query(&kv, &Query::Inspection { id: "P1".into() }).unwrap() {
        Answer::Inspection(v) => assert_eq!(v.record, drawn),
        o => panic!("{o:?}"),
    }
}

#[test]
fn bad_plans_and_draws_name_the_field() {
    let mut kv = with_institutions();
    let mut p = plan();
    p.targets[2].id = "H999".into();
    let e = one(&mut kv, put(p)).unwrap_err();
    assert_eq!((e.code, e.field.as_str()), (ErrorCode::NotFound, "plan.targets[2].id"), "{e}");
    let mut p = plan();
    p.per_target = 3; // 2 x 3 + 1 in conflict with H002 or H003 = 7 > 6
    let e = one(&mut kv, put(p)).unwrap_err();
    assert_eq!((e.code, e.field.as_str()), (ErrorCode::InvalidArgument, "plan.inspectors"), "{e}");
    let e = one(&mut kv, ProvinceCommand::Inspection(InspectionCommand::PutPlan { plan: plan(), title: " ".into() }))
        .unwrap_err();
    assert_eq!(e.field, "title");
    let e = one(&mut kv, draw(nonce())).unwrap_err();
    assert_eq!((e.code, e.field.as_str()), (ErrorCode::NotFound, "plan_id"), "{e}");
    assert!(matches!(run_query(&kv, &Query::Inspection { id: "P1".into() }), Err(e) if e.field == "plan_id"));
}

fn finding(target: &str, case: Option<&str>, summary: &str) -> ProvinceCommand {
    ProvinceCommand::Inspection(InspectionCommand::Finding {
        plan: "P1".into(),
        target: target.into(),
        case: case.map(Into::into),
        summary: summary.into(),
    })
}

fn open_case(id: &str, source: medmesh_supervision::cases::CaseSource, institution: &str) -> ProvinceCommand {
    ProvinceCommand::Case(CaseCommand::Open {
        id: id.into(),
        province: prov("110000"),
        source,
        institution: InstitutionId::new(institution).unwrap(),
        settlements: Vec::new(),
    })
}

/// Each drawn target gets one finding: clean, or the case this inspection opened about it.
#[test]
fn findings_are_final_and_name_their_case() {
    use medmesh_supervision::cases::CaseSource;
    let mut kv = with_institutions();
    record(&one(&mut kv, put(plan())));
    let e = one(&mut kv, finding("H001", None, "clean")).unwrap_err();
    assert_eq!((e.code, e.field.as_str()), (ErrorCode::FailedPrecondition, "plan_id"), "{e}");
    let drawn = record(&one(&mut kv, draw(nonce())));
    let targets: Vec<String> = drawn.draw.unwrap().assignments.into_iter().map(|a| a.target).collect();
    let undrawn = ["H001", "H002", "H003", "H004"].into_iter().find(|t| !targets.iter().any(|d| d == t)).unwrap();
    let e = one(&mut kv, finding(undrawn, None, "clean")).unwrap_err();
    assert_eq!((e.code, e.field.as_str()), (ErrorCode::NotFound, "target"), "{e}");
    assert_eq!(one(&mut kv, finding(&targets[0], None, " ")).unwrap_err().field, "summary");

    // Clean, once; the same again is a retry; another finding is refused.
    let first = record(&one(&mut kv, finding(&targets[0], None, "records in order")));
    assert_eq!(record(&one(&mut kv, finding(&targets[0], None, "records in order"))), first);
    let e = one(&mut kv, finding(&targets[0], None, "changed my mind")).unwrap_err();
    assert_eq!((e.code, e.field.as_str()), (ErrorCode::AlreadyExists, "target"), "{e}");

    // A case must come from this inspection and be about the target.
    let report = super::reports::accepted_report(&mut kv, "CH-1", &targets[1]);
    ok(&one(&mut kv, open_case("C-REP", CaseSource::Report(report), &targets[1])));
    ok(&one(&mut kv, open_case("C-OTHER", CaseSource::Inspection("P1".into()), &targets[0])));
    ok(&one(&mut kv, open_case("C-P1", CaseSource::Inspection("P1".into()), &targets[1])));
    for (case, field) in [("C-NONE", ErrorCode::NotFound), ("C-REP", ErrorCode::FailedPrecondition)] {
        let e = one(&mut kv, finding(&targets[1], Some(case), "upcoding")).unwrap_err();
        assert_eq!((e.code, e.field.as_str()), (field, "case_id"), "{e}");
    }
    let e = one(&mut kv, finding(&targets[1], Some("C-OTHER"), "upcoding")).unwrap_err();
    assert_eq!((e.code, e.field.as_str()), (ErrorCode::FailedPrecondition, "case_id"), "{e}");
    ok(&one(&mut kv, finding(&targets[1], Some("C-P1"), "upcoding")));
    match run_query(&kv, &Query::Inspection { id: "P1".into() }).unwrap() {
        Answer::Inspection(v) => {
            let found: Vec<_> = v.record.findings.iter().map(|f| (f.target.as_str(), f.case.as_deref())).collect();
            assert_eq!(found, vec![(targets[0].as_str(), None), (targets[1].as_str(), Some("C-P1"))]);
            assert_eq!(v.cases.len(), 2);
            assert!(v.cases[0].is_none());
            assert_eq!(v.cases[1].as_ref().map(|c| c.id.as_str()), Some("C-P1"));
        }
        o => panic!("{o:?}"),
    }
}
