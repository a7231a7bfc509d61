//! The transfer coordinator's rules, as pure functions: what to do next for a transfer from
//! what the treatment province and the federation hold. The node's coordinator (`mesh.rs`)
//! and the deterministic simulation ([`crate::sim`]) both drive transfers with these.

use medmesh_types::Money;

use crate::shared::{Decision, DecisionRecord, Reservation, ReservationStatus, TransferPhase, TreatmentTransfer};
use crate::DomainError;

/// A transfer the insured province has not reserved within this many ms is aborted.
pub const RESERVE_TIMEOUT_MS: u64 = 5_000;
/// A reservation without a decision for this many ms is resolved through the federation.
pub const VOID_AFTER_MS: u64 = 10_000;

/// The next step of a transfer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Done here: the finish is idempotent and returns the stored outcome.
    Finished(Decision),
    /// A decision is recorded: post or void at the insured province and finish here.
    Apply(DecisionRecord),
    /// Propose this decision to the federation (first writer wins).
    Decide {
        /// The proposed decision.
        decision: Decision,
        /// Fund share plus account part (zero on abort).
        amount: Money,
        /// Why, on abort.
        reason: String,
    },
    /// Ask the insured province to reserve (idempotent).
    Reserve,
}

/// What to do next for `x`, given the federation's recorded decision and the transfer's age.
pub fn next_action(x: &TreatmentTransfer, recorded: Option<&DecisionRecord>, age_ms: u64) -> Action {
    if let TransferPhase::Done(d) = x.phase {
        return Action::Finished(d);
    }
    if let Some(rec) = recorded {
        return Action::Apply(rec.clone());
    }
    match &x.phase {
        TransferPhase::Reserved(split) => Action::Decide {
            decision: Decision::Commit,
            amount: split.fund_total() + split.individual_account,
            reason: String::new(),
        },
        _ if age_ms > RESERVE_TIMEOUT_MS => Action::Decide {
            decision: Decision::Abort,
            amount: Money::ZERO,
            reason: "the insured province did not answer in time".into(),
        },
        _ => Action::Reserve,
    }
}

/// What the insured province's answer to a reserve means.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReserveAnswer {
    /// Reserved: record the split, then commit.
    Reserved(medmesh_settlement::Split),
    /// Refused or already voided: abort for this reason.
    Abort(String),
}

/// Reads the insured province's answer to a reserve.
pub fn reserve_answer(answer: Result<&Reservation, &DomainError>) -> ReserveAnswer {
    match answer {
        Ok(Reservation { status: ReservationStatus::Pending | ReservationStatus::Posted, split: Some(s), .. }) => {
            ReserveAnswer::Reserved(s.clone())
        }
        Ok(_) => ReserveAnswer::Abort("the reservation was voided".into()),
        Err(e) => ReserveAnswer::Abort(e.to_string()),
    }
}

/// Whether the insured province should resolve a reservation through the federation now, the
/// reservation being `age_ms` old.
pub fn void_due(r: &Reservation, age_ms: u64) -> bool {
    r.status == ReservationStatus::Pending && age_ms > VOID_AFTER_MS
}
