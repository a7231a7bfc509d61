//! Cases, decisions, the case policy and shared case outcomes on the wire, both ways.

use medmesh_state::CaseCommand;
use medmesh_supervision::cases::{
    AgreementAction, Case, CaseOutcome, CasePolicy, CaseSource, CaseState, DecisionInput, Department, Handoff, Scored,
    ViolationType,
};
use medmesh_types::{Date, ProvinceCode};
use tonic::Status;

use super::{bad, institution, money, personnel, serial};
use crate::pb;

fn violation_type(field: &str, v: i32) -> Result<ViolationType, Status> {
    match pb::ViolationType::try_from(v) {
        Ok(pb::ViolationType::Irregular) => Ok(ViolationType::Irregular),
        Ok(pb::ViolationType::Fraud) => Ok(ViolationType::Fraud),
        Ok(pb::ViolationType::InsuredFraud) => Ok(ViolationType::InsuredFraud),
        _ => Err(bad(field, "must be IRREGULAR, FRAUD or INSURED_FRAUD")),
    }
}

fn violation_type_pb(t: ViolationType) -> i32 {
    let v = match t {
        ViolationType::Irregular => pb::ViolationType::Irregular,
        ViolationType::Fraud => pb::ViolationType::Fraud,
        ViolationType::InsuredFraud => pb::ViolationType::InsuredFraud,
    };
    v as i32
}

fn department_pb(d: Option<Department>) -> i32 {
    let v = match d {
        None => pb::Department::Unspecified,
        Some(Department::PublicSecurity) => pb::Department::PublicSecurity,
        Some(Department::Health) => pb::Department::Health,
        Some(Department::MarketRegulation) => pb::Department::MarketRegulation,
        Some(Department::Audit) => pb::Department::Audit,
    };
    v as i32
}

fn agreement_pb(a: AgreementAction) -> (i32, u32) {
    match a {
        AgreementAction::Keep => (pb::AgreementAction::Keep as i32, 0),
        AgreementAction::Suspend(m) => (pb::AgreementAction::Suspend as i32, m),
        AgreementAction::End => (pb::AgreementAction::End as i32, 0),
    }
}

/// A multiple with at most one decimal ("1.5"), as tenths.
fn tenths(field: &str, v: &str) -> Result<u32, Status> {
    let v = v.trim();
    let (whole, frac) = v.split_once('.').unwrap_or((v, ""));
    let ok = !whole.is_empty()
        && whole.len() <= 3
        && whole.bytes().all(|b| b.is_ascii_digit())
        && frac.len() <= 1
        && frac.bytes().all(|b| b.is_ascii_digit())
        && !(v.contains('.') && frac.is_empty());
    if !ok {
        return Err(bad(field, format!("{v:?} must be a multiple with at most one decimal, like 1.5")));
    }
    let whole: u32 = whole.parse().map_err(|_| bad(field, "is too large"))?;
    let frac: u32 = if frac.is_empty() { 0 } else { frac.parse().map_err(|_| bad(field, "is not a number"))? };
    Ok(whole * 10 + frac)
}

fn tenths_text(t: u32) -> String {
    format!("{}.{}", t / 10, t % 10)
}

fn day(d: Option<Date>) -> String {
    d.map(|d| d.to_string()).unwrap_or_default()
}

/// An opening from the wire.
pub fn open_case(r: pb::OpenCaseRequest, province: &ProvinceCode) -> Result<CaseCommand, Status> {
    let source = match (r.alert_seq, r.report_id.is_empty(), r.inspection_id.is_empty()) {
        (seq, true, true) if seq > 0 => CaseSource::Alert(seq),
        (0, false, true) => CaseSource::Report(r.report_id),
        (0, true, false) => CaseSource::Inspection(r.inspection_id),
        _ => return Err(bad("source", "give exactly one of alert_seq, report_id, inspection_id")),
    };
    if r.settlement_serials.len() > medmesh_supervision::cases::MAX_CASE_SETTLEMENTS {
        return Err(bad("settlement_serials", "at most 256"));
    }
    let settlements = r
        .settlement_serials
        .iter()
        .enumerate()
        .map(|(i, s)| serial(&format!("settlement_serials[{i}]"), s))
        .collect::<Result<Vec<_>, _>>()?;
    Ok(CaseCommand::Open {
        id: r.case_id,
        province: province.clone(),
        source,
        institution: institution("institution_id", &r.institution_id)?,
        settlements,
    })
}

/// A decision from the wire.
pub fn decide_case(r: pb::DecideCaseRequest) -> Result<CaseCommand, Status> {
    let agreement = match pb::AgreementAction::try_from(r.agreement) {
        Ok(pb::AgreementAction::Unspecified | pb::AgreementAction::Keep) => AgreementAction::Keep,
        Ok(pb::AgreementAction::Suspend) => AgreementAction::Suspend(r.suspend_months),
        Ok(pb::AgreementAction::End) => AgreementAction::End,
        Err(_) => return Err(bad("agreement", "must be KEEP, SUSPEND or END")),
    };
    if !matches!(agreement, AgreementAction::Suspend(_)) && r.suspend_months != 0 {
        return Err(bad("suspend_months", "is given only with agreement SUSPEND"));
    }
    if r.points.len() > medmesh_supervision::cases::MAX_SCORED {
        return Err(bad("points", "at most 16 personnel"));
    }
    let scored = r
        .points
        .iter()
        .enumerate()
        .map(|(i, p)| {
            let points = u8::try_from(p.points).map_err(|_| bad(&format!("points[{i}].points"), "must be 1 to 12"))?;
            let severity = u8::try_from(p.severity_months)
                .ok()
                .and_then(|m| medmesh_supervision::Severity::new(m).ok())
                .ok_or_else(|| bad(&format!("points[{i}].severity_months"), "must be 1 to 6"))?;
            Ok(Scored {
                personnel: personnel(&format!("points[{i}].personnel_code"), &p.personnel_code)?,
                points,
                severity,
            })
        })
        .collect::<Result<Vec<_>, Status>>()?;
    let handoff = match pb::Department::try_from(r.transfer_department) {
        Ok(pb::Department::Unspecified) => {
            if !r.transfer_reference.is_empty() {
                return Err(bad("transfer_reference", "is given only with a transfer_department"));
            }
            None
        }
        Ok(d) => Some(Handoff {
            department: match d {
                pb::Department::PublicSecurity => Department::PublicSecurity,
                pb::Department::Health => Department::Health,
                pb::Department::MarketRegulation => Department::MarketRegulation,
                _ => Department::Audit,
            },
            reference: r.transfer_reference,
        }),
        Err(_) => return Err(bad("transfer_department", "is not a department")),
    };
    Ok(CaseCommand::Decide {
        id: r.case_id,
        decision: DecisionInput {
            violation: violation_type("violation_type", r.violation_type)?,
            recover: money("recover", &r.recover)?,
            fine_tenths: tenths("fine_multiple", &r.fine_multiple)?,
            agreement,
            scored,
            discipline_days: r.discipline_days,
            handoff,
            reason: r.reason,
        },
    })
}

/// A case policy from the wire (checked again in apply).
pub fn case_policy(p: Option<pb::CasePolicy>) -> Result<CasePolicy, Status> {
    let p = p.ok_or_else(|| bad("policy", "is required"))?;
    let mut out = CasePolicy { fine_tenths: Default::default(), investigate_days: p.investigate_days };
    for (i, f) in p.fine_multiples.iter().enumerate() {
        let t = violation_type(&format!("policy.fine_multiples[{i}].violation_type"), f.violation_type)?;
        let lo = tenths(&format!("policy.fine_multiples[{i}].min"), &f.min)?;
        let hi = tenths(&format!("policy.fine_multiples[{i}].max"), &f.max)?;
        if out.fine_tenths.insert(t, (lo, hi)).is_some() {
            return Err(bad(&format!("policy.fine_multiples[{i}].violation_type"), "is given twice"));
        }
    }
    out.validate().map_err(|e| bad(&format!("policy.{}", e.field()), &e))?;
    Ok(out)
}

/// A case policy on the wire.
pub fn case_policy_pb(p: &CasePolicy) -> pb::CasePolicy {
    pb::CasePolicy {
        fine_multiples: p
            .fine_tenths
            .iter()
            .map(|(t, (lo, hi))| pb::FineRange {
                violation_type: violation_type_pb(*t),
                min: tenths_text(*lo),
                max: tenths_text(*hi),
            })
            .collect(),
        investigate_days: p.investigate_days,
    }
}

/// A case on the wire, with `overdue` as of `today`.
pub fn case_pb(c: &Case, today: Date) -> pb::Case {
    let (alert_seq, report_id, inspection_id) = match &c.source {
        CaseSource::Alert(s) => (*s, String::new(), String::new()),
        CaseSource::Report(r) => (0, r.clone(), String::new()),
        CaseSource::Inspection(i) => (0, String::new(), i.clone()),
    };
    pb::Case {
        case_id: c.id.clone(),
        province: c.province.to_string(),
        alert_seq,
        report_id,
        inspection_id,
        institution_id: c.institution.to_string(),
        settlement_serials: c.settlements.iter().map(ToString::to_string).collect(),
        involved: c.involved.to_string(),
        state: match c.state {
            CaseState::Opened => pb::CaseState::Opened,
            CaseState::Investigating => pb::CaseState::Investigating,
            CaseState::Decided => pb::CaseState::Decided,
            CaseState::Executed => pb::CaseState::Executed,
            CaseState::Closed => pb::CaseState::Closed,
        } as i32,
        opened_on: c.opened_on.to_string(),
        deadline: c.deadline.to_string(),
        overdue: c.overdue(today),
        findings: c.findings.iter().map(|f| pb::CaseFinding { on: f.on.to_string(), text: f.text.clone() }).collect(),
        decision: c.decision.as_ref().map(|d| {
            let (agreement, suspend_months) = agreement_pb(d.input.agreement);
            pb::CaseDecision {
                violation_type: violation_type_pb(d.input.violation),
                recover: d.input.recover.to_string(),
                fine_multiple: tenths_text(d.input.fine_tenths),
                fine: d.fine.to_string(),
                agreement,
                suspend_months,
                points: d
                    .input
                    .scored
                    .iter()
                    .map(|s| pb::CasePoints {
                        personnel_code: s.personnel.to_string(),
                        points: u32::from(s.points),
                        severity_months: u32::from(s.severity.months()),
                    })
                    .collect(),
                discipline_days: d.input.discipline_days,
                transfer_department: department_pb(d.input.handoff.as_ref().map(|h| h.department)),
                transfer_reference: d.input.handoff.as_ref().map(|h| h.reference.clone()).unwrap_or_default(),
                reason: d.input.reason.clone(),
                decided_on: d.decided_on.to_string(),
            }
        }),
        executed_on: day(c.executed_on),
        closed_on: day(c.closed_on),
        close_reason: c.close_reason.clone(),
    }
}

/// A shared case outcome on the wire.
pub fn case_outcome_pb(o: &CaseOutcome) -> pb::CaseOutcome {
    let (agreement, suspend_months) = agreement_pb(o.agreement);
    pb::CaseOutcome {
        province: o.province.to_string(),
        case_id: o.case_id.clone(),
        institution_id: o.institution.to_string(),
        personnel_codes: o.personnel.iter().map(ToString::to_string).collect(),
        violation_type: violation_type_pb(o.violation),
        recovered: o.recovered.to_string(),
        fine: o.fine.to_string(),
        agreement,
        suspend_months,
        transfer_department: department_pb(o.department),
        decided_on: o.decided_on.to_string(),
        executed_on: o.executed_on.to_string(),
        reason: o.reason.clone(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn multiples_have_at_most_one_decimal() {
        assert_eq!(tenths("f", "1.5").unwrap(), 15);
        assert_eq!(tenths("f", "2").unwrap(), 20);
        assert_eq!(tenths("f", "0").unwrap(), 0);
        for bad in ["", "1.", ".5", "1.55", "-1", "1e1", "abc", "1000"] {
            assert!(tenths("f", bad).is_err(), "{bad}");
        }
        assert_eq!(tenths_text(15), "1.5");
    }
}
