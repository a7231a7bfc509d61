//! The audit chain and its anchors on the wire, both ways (`medmesh audit verify` reads
//! them back into the state crate's types to recompute every hash).

use medmesh_state::audit::{entry_hash, Anchor, AuditEntry, AuditHead};
use medmesh_types::LogTime;
use tonic::Status;

use crate::pb;

/// Most entries or anchors in one page.
pub const MAX_AUDIT_PAGE: u32 = 10_000;
/// Entries or anchors in a page when the caller does not say.
pub const DEFAULT_AUDIT_PAGE: u32 = 1_000;

/// The page size a request asks for (0: the default).
pub fn audit_page(page_size: u32) -> Result<usize, Status> {
    match page_size {
        0 => Ok(DEFAULT_AUDIT_PAGE as usize),
        n if n <= MAX_AUDIT_PAGE => Ok(n as usize),
        _ => Err(Status::invalid_argument(format!("page_size: at most {MAX_AUDIT_PAGE}"))),
    }
}

/// An entry as the wire carries it.
pub fn audit_entry_pb(e: &AuditEntry) -> pb::AuditEntry {
    pb::AuditEntry {
        seq: e.seq,
        time_ms: e.time.millis(),
        actor: e.actor.clone(),
        request_id: e.request.clone(),
        command: e.command.clone(),
        command_digest: e.command_digest.clone(),
        outcome_digest: e.outcome_digest.clone(),
        accepted: e.accepted,
        prev: e.prev.clone(),
        hash: entry_hash(e),
    }
}

/// An entry read back from the wire (its `hash` is ignored: a verifier recomputes it).
pub fn audit_entry(e: &pb::AuditEntry) -> AuditEntry {
    AuditEntry {
        seq: e.seq,
        time: LogTime(e.time_ms),
        actor: e.actor.clone(),
        request: e.request_id.clone(),
        command: e.command.clone(),
        command_digest: e.command_digest.clone(),
        outcome_digest: e.outcome_digest.clone(),
        accepted: e.accepted,
        prev: e.prev.clone(),
    }
}

/// An anchor as the wire carries it.
pub fn anchor_pb(a: &Anchor) -> pb::AuditAnchor {
    pb::AuditAnchor {
        province: a.province.to_string(),
        seq: a.head.seq,
        hash: a.head.hash.clone(),
        recorded_at_ms: a.recorded_at.millis(),
    }
}

/// The head an anchor names.
pub fn anchor_head(a: &pb::AuditAnchor) -> AuditHead {
    AuditHead { seq: a.seq, hash: a.hash.clone() }
}
