//! Conversions of inspection plans and draws (issue 13.1), both ways.

use medmesh_inspection::{Conflict, Grade, Inspector, Plan, Target};
use medmesh_state::inspection::{InspectionCommand, InspectionDraw, InspectionRecord, InspectionView};
use medmesh_types::Money;
use tonic::Status;

use super::bad;
use crate::pb;

fn grade(field: &str, v: i32) -> Result<Grade, Status> {
    match pb::CreditGrade::try_from(v) {
        Ok(pb::CreditGrade::A) => Ok(Grade::A),
        Ok(pb::CreditGrade::B) => Ok(Grade::B),
        Ok(pb::CreditGrade::C) => Ok(Grade::C),
        Ok(pb::CreditGrade::D) => Ok(Grade::D),
        _ => Err(bad(field, "must be a credit grade, A to D")),
    }
}

pub fn grade_pb(g: Grade) -> i32 {
    (match g {
        Grade::A => pb::CreditGrade::A,
        Grade::B => pb::CreditGrade::B,
        Grade::C => pb::CreditGrade::C,
        Grade::D => pb::CreditGrade::D,
    }) as i32
}

fn hex32(field: &str, v: &str) -> Result<[u8; 32], Status> {
    medmesh_inspection::parse_hex32(field, v).map_err(|e| bad(field, e.message))
}

/// A `PutInspectionPlan` request as a command (the plan's own rules are checked in apply), and
/// the targets given no grade (placeholder A here: the caller fills in their credit grades).
pub fn put_inspection_plan(r: pb::PutInspectionPlanRequest) -> Result<(InspectionCommand, Vec<usize>), Status> {
    let p = r.plan.ok_or_else(|| bad("plan", "is required"))?;
    let mut ungraded = Vec::new();
    let targets = p
        .targets
        .into_iter()
        .enumerate()
        .map(|(i, t)| {
            if t.grade == pb::CreditGrade::Unspecified as i32 {
                ungraded.push(i);
                return Ok(Target { grade: Grade::A, id: t.id });
            }
            Ok(Target { grade: grade(&format!("plan.targets[{i}].grade"), t.grade)?, id: t.id })
        })
        .collect::<Result<Vec<_>, Status>>()?;
    let inspectors = p
        .inspectors
        .into_iter()
        .map(|x| Inspector {
            id: x.id,
            home: (!x.home_institution.is_empty()).then_some(x.home_institution),
            region: x.region,
        })
        .collect();
    let conflicts =
        p.conflicts.into_iter().map(|c| Conflict { inspector: c.inspector, institution: c.institution }).collect();
    let cmd = InspectionCommand::PutPlan {
        plan: Plan {
            id: p.id,
            targets,
            inspectors,
            conflicts,
            draw_targets: p.draw_targets,
            per_target: p.inspectors_per_target,
            commitment: hex32("plan.commitment", &p.commitment)?,
        },
        title: p.title,
    };
    Ok((cmd, ungraded))
}

/// A credit grade as the draw weighs it.
pub fn draw_grade(g: medmesh_supervision::credit::Grade) -> Grade {
    match g {
        medmesh_supervision::credit::Grade::A => Grade::A,
        medmesh_supervision::credit::Grade::B => Grade::B,
        medmesh_supervision::credit::Grade::C => Grade::C,
        medmesh_supervision::credit::Grade::D => Grade::D,
    }
}

/// A credit rating on the wire.
pub fn credit_rating_pb(subject: RatedSubject<'_>, r: &medmesh_supervision::credit::Rating) -> pb::CreditRating {
    use medmesh_supervision::credit::Source;
    let ((institution_id, personnel_code, enterprise_code), insured_person) = match subject {
        RatedSubject::Party(p) => (super::party_codes(p), false),
        RatedSubject::InsuredPerson => ((String::new(), String::new(), String::new()), true),
    };
    pb::CreditRating {
        institution_id,
        personnel_code,
        enterprise_code,
        insured_person,
        trusted: r.trusted,
        as_of: r.as_of.to_string(),
        score: r.score,
        grade: grade_pb(draw_grade(r.grade)),
        model_version: medmesh_supervision::credit::MODEL_VERSION,
        entries: r
            .entries
            .iter()
            .map(|e| {
                let (kind, province, ref_id) = match &e.source {
                    Source::Case { province, case_id } => ("case", province.clone(), case_id.clone()),
                    Source::Discipline { province, id } => ("discipline", province.clone(), id.clone()),
                    Source::Violation { province, id } => ("violation", province.clone(), id.clone()),
                    Source::Qualification => ("qualification", String::new(), String::new()),
                    Source::Commitment { province, id } => ("commitment", province.clone(), id.clone()),
                    Source::Incentive { province, id } => ("incentive", province.clone(), id.clone()),
                    Source::Declaration { province, period } => ("declaration", province.clone(), period.clone()),
                };
                pb::CreditRatingEntry {
                    kind: kind.into(),
                    province,
                    ref_id,
                    on: e.on.to_string(),
                    points: e.points,
                    counted: e.counted,
                    forces_d: e.forces_d,
                    why: e.why.clone(),
                    lifted_on: e.lifted_on.map(|d| d.to_string()).unwrap_or_default(),
                }
            })
            .collect(),
    }
}

/// Whose credit rating it is.
#[derive(Debug, Clone, Copy)]
pub enum RatedSubject<'a> {
    /// An institution, personnel or enterprise (shown by its code).
    Party(&'a medmesh_supervision::credit::Party),
    /// An insured person (not shown).
    InsuredPerson,
}

/// A joint-incentive entry as the API shows it.
pub fn incentive_pb(i: &medmesh_supervision::credit::Incentive, in_force: bool) -> pb::IncentiveEntry {
    let (institution_id, personnel_code, enterprise_code) = super::party_codes(&i.party);
    pb::IncentiveEntry {
        province: i.province.to_string(),
        id: i.id.clone(),
        institution_id,
        personnel_code,
        enterprise_code,
        from: i.from.to_string(),
        until: i.until.to_string(),
        reason: i.reason.clone(),
        in_force,
    }
}

/// A `DrawInspection` request as a command.
pub fn draw_inspection(r: pb::DrawInspectionRequest) -> Result<InspectionCommand, Status> {
    Ok(InspectionCommand::Draw { plan: r.plan_id, nonce: hex32("nonce", &r.nonce)? })
}

/// A recorded plan as the API shows it.
pub fn inspection_plan_pb(r: &InspectionRecord) -> pb::InspectionPlan {
    let p = &r.plan;
    pb::InspectionPlan {
        id: p.id.clone(),
        title: r.title.clone(),
        targets: p
            .targets
            .iter()
            .map(|t| pb::InspectionTarget { id: t.id.clone(), grade: grade_pb(t.grade) })
            .collect(),
        inspectors: p
            .inspectors
            .iter()
            .map(|x| pb::InspectionInspector {
                id: x.id.clone(),
                home_institution: x.home.clone().unwrap_or_default(),
                region: x.region.clone(),
            })
            .collect(),
        conflicts: p
            .conflicts
            .iter()
            .map(|c| pb::InspectionConflict { inspector: c.inspector.clone(), institution: c.institution.clone() })
            .collect(),
        draw_targets: p.draw_targets,
        inspectors_per_target: p.per_target,
        commitment: hex::encode(p.commitment),
    }
}

/// A draw as the API shows it.
pub fn inspection_draw_pb(d: &InspectionDraw) -> pb::InspectionDraw {
    pb::InspectionDraw {
        nonce: hex::encode(d.nonce),
        beacon: hex::encode(d.beacon),
        beacon_seq: d.beacon_seq,
        drawn_time_ms: d.drawn.millis(),
        version: d.version,
        assignments: d
            .assignments
            .iter()
            .map(|a| pb::InspectionAssignment { target: a.target.clone(), inspectors: a.inspectors.clone() })
            .collect(),
    }
}

/// The published result of each drawn target, in draw order.
pub fn inspection_results_pb(v: &InspectionView) -> Vec<pb::InspectionResult> {
    let Some(d) = &v.record.draw else { return Vec::new() };
    d.assignments
        .iter()
        .map(|a| {
            let at = v.record.findings.iter().position(|f| f.target == a.target);
            let mut r = pb::InspectionResult {
                target: a.target.clone(),
                outcome: "PENDING".into(),
                recovered: Money::ZERO.to_string(),
                fine: Money::ZERO.to_string(),
                ..Default::default()
            };
            let Some(i) = at else { return r };
            let f = &v.record.findings[i];
            r.summary = f.summary.clone();
            r.outcome = if f.case.is_some() { "CASE" } else { "CLEAN" }.into();
            r.case_id = f.case.clone().unwrap_or_default();
            if let Some(Some(c)) = v.cases.get(i) {
                r.case_state = c.state.name().into();
                if let (Some(_), Some(dec)) = (c.executed_on, &c.decision) {
                    r.recovered = dec.input.recover.to_string();
                    r.fine = dec.fine.to_string();
                }
            }
            r
        })
        .collect()
}

/// A `RecordInspectionFinding` request as a command.
pub fn record_inspection_finding(r: pb::RecordInspectionFindingRequest) -> InspectionCommand {
    InspectionCommand::Finding {
        plan: r.plan_id,
        target: r.target,
        case: (!r.case_id.is_empty()).then_some(r.case_id),
        summary: r.summary,
    }
}

/// A notification-commitment as the API shows it (`today`: the group's day, for `overdue`).
pub fn commitment_pb(
    c: &medmesh_supervision::credit::Commitment,
    today: Option<medmesh_types::Date>,
) -> pb::Commitment {
    let state = match &c.outcome {
        None => "open",
        Some(o) if o.kept => "kept",
        Some(_) => "breached",
    };
    let (institution_id, personnel_code, enterprise_code) = super::party_codes(&c.party);
    pb::Commitment {
        province: c.province.to_string(),
        id: c.id.clone(),
        institution_id,
        personnel_code,
        enterprise_code,
        made_on: c.made_on.to_string(),
        verify_by: c.verify_by.to_string(),
        text: c.text.clone(),
        state: state.into(),
        resolved_on: c.outcome.as_ref().map(|o| o.on.to_string()).unwrap_or_default(),
        finding: c.outcome.as_ref().map(|o| o.finding.clone()).unwrap_or_default(),
        overdue: today.is_some_and(|t| c.overdue(t)),
    }
}
