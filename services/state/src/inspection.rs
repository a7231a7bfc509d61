//! Inspection plans and their verifiable draws (issue 13.1), over the pure rules of
//! `medmesh-inspection`: a plan is recorded once with its commitment; the draw reveals the
//! nonce, takes the audit-chain head at that moment as its beacon, and is recorded once.

use medmesh_types::{InstitutionId, LogTime};

use crate::audit::{AuditHead, GENESIS};
use crate::kv::{keys, load, KvRead, Tx};
pub use crate::model::{InspectionCommand, InspectionDraw, InspectionFinding, InspectionRecord};
use crate::model::{Institution, Outcome};
use crate::DomainError;

/// What apply checks of an inspection command before anything else.
pub(crate) fn validate(cmd: &InspectionCommand) -> Result<(), DomainError> {
    match cmd {
        InspectionCommand::PutPlan { plan, title } => {
            if title.trim().is_empty() || title.len() > crate::MAX_TEXT {
                return Err(DomainError::invalid("title", format!("must be 1 to {} bytes", crate::MAX_TEXT)));
            }
            plan.check().map_err(draw_error)
        }
        InspectionCommand::Draw { plan, .. } => plan_id(plan),
        InspectionCommand::Finding { plan, target, case, summary } => {
            plan_id(plan)?;
            if target.is_empty() || target.len() > medmesh_inspection::MAX_ID {
                return Err(DomainError::invalid("target", "is not an institution code"));
            }
            if let Some(c) = case {
                medmesh_supervision::cases::check_case_id(c)
                    .map_err(|e| DomainError::invalid("case_id", e.to_string()))?;
            }
            if summary.trim().is_empty() || summary.len() > crate::MAX_TEXT || summary.chars().any(char::is_control) {
                return Err(DomainError::invalid(
                    "summary",
                    format!("must be 1 to {} bytes without control characters", crate::MAX_TEXT),
                ));
            }
            Ok(())
        }
        InspectionCommand::PutCalendar(_)
        | InspectionCommand::StartFlight { .. }
        | InspectionCommand::FileFlightReport { .. }
        | InspectionCommand::CloseFlight { .. } => crate::flights::validate(cmd),
    }
}

fn plan_id(plan: &str) -> Result<(), DomainError> {
    if plan.is_empty() || plan.len() > medmesh_inspection::MAX_ID {
        return Err(DomainError::invalid("plan_id", "is not a plan id"));
    }
    Ok(())
}

/// A plan as published: the record, and for each finding the case it opened as it stands now.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct InspectionView {
    /// The plan, its draw and findings.
    pub record: InspectionRecord,
    /// For each finding (same order), its case now, if it opened one.
    pub cases: Vec<Option<medmesh_supervision::cases::Case>>,
}

fn draw_error(e: medmesh_inspection::DrawError) -> DomainError {
    DomainError::invalid(format!("plan.{}", e.field), e.message)
}

/// Applies an inspection command.
pub(crate) fn execute(tx: &mut Tx<'_>, cmd: &InspectionCommand, now: LogTime) -> Result<Outcome, DomainError> {
    match cmd {
        InspectionCommand::PutPlan { plan, title } => {
            for (i, t) in plan.targets.iter().enumerate() {
                let known = InstitutionId::new(t.id.clone())
                    .ok()
                    .and_then(|id| tx.load::<Institution>(&keys::institution(&id)))
                    .is_some();
                if !known {
                    return Err(DomainError::not_found(
                        format!("plan.targets[{i}].id"),
                        format!("{} is not an institution of this province", t.id),
                    ));
                }
            }
            let key = keys::inspection(&plan.id);
            let plan = plan.clone().normalized();
            if let Some(r) = tx.load::<InspectionRecord>(&key) {
                // The same plan again is a retry; another plan under the same id is refused,
                // so a published plan never changes.
                if r.plan == plan && &r.title == title {
                    return Ok(Outcome::Inspection(Box::new(r)));
                }
                return Err(DomainError::exists("plan.id", format!("plan {} is recorded already", plan.id)));
            }
            let r = InspectionRecord { plan, title: title.clone(), recorded: now, draw: None, findings: Vec::new() };
            tx.store(&key, &r);
            Ok(Outcome::Inspection(Box::new(r)))
        }
        InspectionCommand::Draw { plan, nonce } => {
            let key = keys::inspection(plan);
            let mut r: InspectionRecord =
                tx.load(&key).ok_or_else(|| DomainError::not_found("plan_id", format!("no plan {plan}")))?;
            if r.draw.is_some() {
                return Err(DomainError::exists(
                    "plan_id",
                    format!("plan {plan} is drawn already (GetInspectionPlan shows the draw)"),
                ));
            }
            let head: Option<AuditHead> = tx.load(keys::AUDIT_HEAD);
            let (beacon_seq, beacon_hex) = head.map_or((0, GENESIS.to_string()), |h| (h.seq, h.hash));
            let beacon = medmesh_inspection::parse_hex32("beacon", &beacon_hex)
                .map_err(|e| DomainError::invalid("beacon", e.message))?;
            let assignments = medmesh_inspection::draw(&r.plan, nonce, &beacon).map_err(|e| {
                if e.field == "nonce" {
                    DomainError::invalid("nonce", e.message)
                } else {
                    draw_error(e)
                }
            })?;
            r.draw = Some(InspectionDraw {
                nonce: *nonce,
                beacon,
                beacon_seq,
                drawn: now,
                version: medmesh_inspection::DRAW_VERSION,
                assignments,
            });
            tx.store(&key, &r);
            crate::tally::tally(tx, now.date(), |t| t.inspections += 1);
            Ok(Outcome::Inspection(Box::new(r)))
        }
        InspectionCommand::Finding { plan, target, case, summary } => {
            let key = keys::inspection(plan);
            let mut r: InspectionRecord =
                tx.load(&key).ok_or_else(|| DomainError::not_found("plan_id", format!("no plan {plan}")))?;
            let Some(d) = &r.draw else {
                return Err(DomainError::precondition("plan_id", format!("plan {plan} is not drawn yet")));
            };
            if !d.assignments.iter().any(|a| &a.target == target) {
                return Err(DomainError::not_found("target", format!("{target} was not drawn in plan {plan}")));
            }
            if let Some(f) = r.findings.iter().find(|f| &f.target == target) {
                // The same finding again is a retry; another is refused: a finding is final.
                if &f.case == case && &f.summary == summary {
                    return Ok(Outcome::Inspection(Box::new(r)));
                }
                return Err(DomainError::exists("target", format!("the finding of {target} is recorded already")));
            }
            if let Some(id) = case {
                let c: medmesh_supervision::cases::Case = tx
                    .load(&keys::case(id))
                    .ok_or_else(|| DomainError::not_found("case_id", format!("no case {id}")))?;
                if c.source != medmesh_supervision::cases::CaseSource::Inspection(plan.clone()) {
                    return Err(DomainError::precondition(
                        "case_id",
                        format!("case {id} was not opened from inspection {plan}"),
                    ));
                }
                if c.institution.as_str() != target {
                    return Err(DomainError::precondition(
                        "case_id",
                        format!("case {id} is about {}, not {target}", c.institution),
                    ));
                }
            }
            r.findings.push(InspectionFinding {
                target: target.clone(),
                case: case.clone(),
                summary: summary.clone(),
                recorded: now,
            });
            tx.store(&key, &r);
            Ok(Outcome::Inspection(Box::new(r)))
        }
        InspectionCommand::PutCalendar(_)
        | InspectionCommand::StartFlight { .. }
        | InspectionCommand::FileFlightReport { .. }
        | InspectionCommand::CloseFlight { .. } => crate::flights::execute(tx, cmd, now),
    }
}

/// A recorded plan as published, with the cases its findings opened.
pub(crate) fn view(kv: &dyn KvRead, id: &str) -> Result<InspectionView, DomainError> {
    let record: InspectionRecord =
        load(kv, &keys::inspection(id)).ok_or_else(|| DomainError::not_found("plan_id", format!("no plan {id}")))?;
    let cases = record.findings.iter().map(|f| f.case.as_ref().and_then(|c| load(kv, &keys::case(c)))).collect();
    Ok(InspectionView { record, cases })
}
