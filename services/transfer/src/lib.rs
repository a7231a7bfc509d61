//! The core of non-local (cross-province) settlement as a two-phase transfer, and a
//! deterministic simulation harness for it.
//!
//! Three kinds of pure, deterministic state machines exchange [`Msg`]s. Each is a plain struct
//! with `apply(&mut self, msg, now) -> Vec<Msg>`: one event in, the messages to send out, where
//! `now` is logical milliseconds taken from the message or the log, never from a clock.
//!
//! - [`InsuredProvince`]: the pooling fund, per-person calendar-year [`Accumulators`]
//!   (`medmesh_settlement`), pending reservations and obligations owed to treatment provinces.
//!   Phase 1 reserves from the fund *and* the person's annual headroom; phase 2 posts the
//!   reservation into an obligation or voids it.
//! - [`Federation`]: the coordinator (a Raft group in production). It records exactly one durable
//!   decision per transfer — commit or abort, first writer wins — answers decision queries and
//!   keeps per-province-pair obligations for clearing.
//! - [`TreatmentProvince`]: the hospital's side. It is keyed on the hospital's
//!   `(institution, serial)` and starts at most one transfer per serial.
//!
//! The protocol, message by message (who sends what to whom):
//!
//! | message | from → to | meaning |
//! |---|---|---|
//! | [`Msg::Begin`] | hospital → treatment | settle this claim (retried freely) |
//! | [`Msg::Reserve`] | treatment → insured | phase 1: reserve fund share and headroom |
//! | [`Msg::Reserved`] / [`Msg::Refused`] | insured → treatment | phase 1 answer |
//! | [`Msg::Propose`] | treatment or insured → federation | record this decision unless one exists |
//! | [`Msg::Query`] | insured → federation | what was decided? |
//! | [`Msg::Undecided`] | federation → insured | nothing recorded yet (insured then proposes abort) |
//! | [`Msg::Decided`] | federation → treatment | the recorded decision |
//! | [`Msg::Post`] / [`Msg::Void`] | federation → insured | phase 2, from the recorded decision |
//! | [`Msg::Outcome`] | treatment → hospital | the first (and only) outcome of the serial |
//! | [`Msg::Tick`] | the node's own timer | logical time advanced; timers may fire |
//!
//! Every message is idempotent on the transfer id, so loss, duplication and reordering are
//! harmless; timers retry, and a reservation with no decision after [`T_VOID`] asks the
//! federation and proposes abort if nothing was recorded, so nothing stays pending.
//! Every machine survives a crash: its struct is its durable state, except the timers, which
//! `restart` rebuilds, re-sending what resolves in-doubt transfers.
//!
//! [`sim`] runs the machines over a seeded, lossy, duplicating, reordering network with crashes
//! and checks the invariants after every step.
//!
//! Reversal of a committed non-local settlement is not modelled here yet.
//!
//! This crate does no IO and must never depend on tokio, tonic, prost, rocksdb or openraft.
#![forbid(unsafe_code)]

use medmesh_types::{InstitutionId, Money, PersonId, ProvinceCode, Serial};
use serde::{Deserialize, Serialize};

mod federation;
mod insured;
pub mod sim;
mod treatment;

pub use federation::{DecisionRecord, Federation};
pub use insured::{InsuredProvince, Reservation, Resolution};
pub use medmesh_settlement::Accumulators;
pub use treatment::{Phase, TransferState, TreatmentProvince};

/// How long (logical ms) the treatment province waits for a phase-1 answer before it proposes
/// abort, and between retries of a proposal.
pub const T_RESERVE: u64 = 1_000;

/// How long (logical ms) a reservation may stay without a decision before the insured province
/// asks the federation (and proposes abort if nothing was recorded); also its retry interval.
pub const T_VOID: u64 = 5_000;

/// Identifies one transfer: the treatment province that started it and its sequence there.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TransferId {
    /// The treatment province that started the transfer.
    pub treatment: ProvinceCode,
    /// Sequence number within that province, never reused.
    pub seq: u64,
}

/// The hospital's idempotency key: exactly one settlement per `(institution, serial)`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct SettlementKey {
    /// The treating institution.
    pub institution: InstitutionId,
    /// The institution's serial number for this settlement.
    pub serial: Serial,
}

/// The federation's decision on a transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Decision {
    /// Post on both sides: the insured province owes the fund share to the treatment province.
    Commit,
    /// Void: the reservation is released and nothing is owed.
    Abort,
}

/// Why a transfer was refused or aborted.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, thiserror::Error)]
pub enum TransferError {
    /// The insured province's pooling fund holds less than the fund share.
    #[error("amount: the pooling fund holds {available}, less than the fund share")]
    InsufficientFund {
        /// What the fund holds.
        available: Money,
    },
    /// The person's remaining annual headroom (cap − paid − reserved) is below the fund share.
    #[error("amount: the person's remaining annual headroom is {headroom}")]
    HeadroomExceeded {
        /// The remaining headroom.
        headroom: Money,
    },
    /// The transfer was already voided (its decision arrived before the reservation).
    #[error("transfer: already voided")]
    AlreadyVoided,
    /// The amount is zero or negative.
    #[error("amount: must be positive")]
    BadAmount,
    /// The serial was already used by this institution for a different claim.
    #[error("serial: already used for a different claim")]
    SerialReused,
    /// The federation decided abort (refusal, timeout or a recovery of an in-doubt transfer).
    #[error("transfer: aborted by the federation")]
    Aborted,
}

/// The hospital's request to settle a non-local claim. The fund share was computed with the
/// treatment place's catalogue and the insured place's policy (`medmesh_settlement::settle`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BeginRequest {
    /// The hospital's idempotency key.
    pub key: SettlementKey,
    /// The insured person.
    pub person: PersonId,
    /// Where the person is insured.
    pub insured: ProvinceCode,
    /// Calendar year of the care, whose accumulators apply.
    pub year: i32,
    /// The pooling-fund share to move.
    pub fund_share: Money,
}

/// What the hospital is told about its serial.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum OutcomeKind {
    /// Still in progress; the final outcome follows (and a retry returns it).
    InProgress,
    /// Settled: the fund share is payable to the institution.
    Committed {
        /// The fund share payable to the institution.
        fund_share: Money,
    },
    /// Not settled; nothing moved.
    Aborted,
    /// The serial was reused with different content; nothing was started.
    Rejected(TransferError),
}

impl OutcomeKind {
    /// True for outcomes that never change again (committed or aborted).
    pub fn is_final(&self) -> bool {
        matches!(self, OutcomeKind::Committed { .. } | OutcomeKind::Aborted)
    }
}

/// Which node a message is for.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Address {
    /// The federation group.
    Federation,
    /// An insured province's node.
    Insured(ProvinceCode),
    /// A treatment province's node.
    Treatment(ProvinceCode),
    /// The hospitals of a treatment province (the API clients).
    Hospital(ProvinceCode),
}

/// A message of the protocol. Its destination follows from its content ([`Msg::to`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Msg {
    /// Hospital → treatment: settle this claim (a retry carries the same content).
    Begin {
        /// The treatment province addressed.
        treatment: ProvinceCode,
        /// The request.
        request: BeginRequest,
    },
    /// Treatment → hospital: the outcome of a serial.
    Outcome {
        /// The treatment province answering.
        treatment: ProvinceCode,
        /// The serial's key.
        key: SettlementKey,
        /// The transfer started for it, if any.
        transfer: Option<TransferId>,
        /// The outcome.
        kind: OutcomeKind,
    },
    /// Treatment → insured, phase 1: reserve `amount` from the fund and the person's headroom.
    Reserve {
        /// The transfer.
        transfer: TransferId,
        /// The hospital's key (carried for the federation's exactly-once check).
        key: SettlementKey,
        /// The insured province addressed.
        insured: ProvinceCode,
        /// The insured person.
        person: PersonId,
        /// Calendar year whose accumulators apply.
        year: i32,
        /// The fund share.
        amount: Money,
    },
    /// Insured → treatment: the reservation is held.
    Reserved {
        /// The transfer.
        transfer: TransferId,
    },
    /// Insured → treatment: the reservation was refused.
    Refused {
        /// The transfer.
        transfer: TransferId,
        /// Why.
        reason: TransferError,
    },
    /// Treatment or insured → federation: record `decision` unless a decision exists.
    Propose {
        /// The transfer.
        transfer: TransferId,
        /// The hospital's key.
        key: SettlementKey,
        /// The insured province.
        insured: ProvinceCode,
        /// The fund share.
        amount: Money,
        /// The proposed decision.
        decision: Decision,
    },
    /// Insured → federation: what was decided for this transfer?
    Query {
        /// The transfer.
        transfer: TransferId,
        /// The asking insured province.
        insured: ProvinceCode,
    },
    /// Federation → insured: no decision is recorded for this transfer.
    Undecided {
        /// The transfer.
        transfer: TransferId,
        /// The insured province addressed.
        insured: ProvinceCode,
    },
    /// Federation → treatment: the recorded decision.
    Decided {
        /// The transfer.
        transfer: TransferId,
        /// The decision.
        decision: Decision,
    },
    /// Federation → insured, phase 2 after commit: turn the reservation into an obligation.
    Post {
        /// The transfer.
        transfer: TransferId,
        /// The insured province addressed.
        insured: ProvinceCode,
    },
    /// Federation → insured, phase 2 after abort: release the reservation.
    Void {
        /// The transfer.
        transfer: TransferId,
        /// The insured province addressed.
        insured: ProvinceCode,
    },
    /// A node's own timer: logical time has advanced to `now`.
    Tick {
        /// The node whose timers may fire.
        to: Address,
    },
}

impl Msg {
    /// The node this message is for.
    pub fn to(&self) -> Address {
        match self {
            Msg::Begin { treatment, .. } => Address::Treatment(treatment.clone()),
            Msg::Outcome { treatment, .. } => Address::Hospital(treatment.clone()),
            Msg::Reserve { insured, .. }
            | Msg::Undecided { insured, .. }
            | Msg::Post { insured, .. }
            | Msg::Void { insured, .. } => Address::Insured(insured.clone()),
            Msg::Reserved { transfer } | Msg::Refused { transfer, .. } | Msg::Decided { transfer, .. } => {
                Address::Treatment(transfer.treatment.clone())
            }
            Msg::Propose { .. } | Msg::Query { .. } => Address::Federation,
            Msg::Tick { to } => to.clone(),
        }
    }
}
