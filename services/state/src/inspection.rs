//! Inspection plans and their verifiable draws (issue 13.1), over the pure rules of
//! `medmesh-inspection`: a plan is recorded once with its commitment; the draw reveals the
//! nonce, takes the audit-chain head at that moment as its beacon, and is recorded once.

use medmesh_types::{InstitutionId, LogTime};

use crate::audit::{AuditHead, GENESIS};
use crate::kv::{keys, load, KvRead, Tx};
pub use crate::model::{InspectionCommand, InspectionDraw, InspectionRecord};
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
        InspectionCommand::Draw { plan, .. } => {
            if plan.is_empty() || plan.len() > medmesh_inspection::MAX_ID {
                return Err(DomainError::invalid("plan_id", "is not a plan id"));
            }
            Ok(())
        }
    }
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
            let r = InspectionRecord { plan, title: title.clone(), recorded: now, draw: None };
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
            Ok(Outcome::Inspection(Box::new(r)))
        }
    }
}

/// A recorded plan.
pub(crate) fn plan(kv: &dyn KvRead, id: &str) -> Result<InspectionRecord, DomainError> {
    load(kv, &keys::inspection(id)).ok_or_else(|| DomainError::not_found("plan_id", format!("no plan {id}")))
}
