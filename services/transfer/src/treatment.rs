//! The treatment province's side: one transfer per hospital serial, driven to a decision.

use std::collections::BTreeMap;

use medmesh_types::{InstitutionId, Money, ProvinceCode};
use serde::{Deserialize, Serialize};

use crate::{BeginRequest, Decision, Msg, OutcomeKind, SettlementKey, TransferError, TransferId, T_RESERVE};

/// Where a transfer stands at the treatment province.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Phase {
    /// `Reserve` sent; waiting for `Reserved` or `Refused`.
    Reserving,
    /// This decision was proposed to the federation; waiting for `Decided`.
    Deciding(Decision),
    /// The federation's decision arrived and was applied.
    Done(Decision),
}

/// One transfer started by this province.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferState {
    /// The hospital's request, as first received.
    pub request: BeginRequest,
    /// Where it stands.
    pub phase: Phase,
}

/// The treatment province's state machine. Every field except the timers is durable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreatmentProvince {
    /// This province.
    pub code: ProvinceCode,
    /// The next transfer sequence number.
    pub next_seq: u64,
    /// The one transfer of each hospital key.
    pub by_key: BTreeMap<SettlementKey, TransferId>,
    /// Every transfer started here.
    pub transfers: BTreeMap<TransferId, TransferState>,
    /// Fund shares payable to each institution (committed settlements).
    pub payables: BTreeMap<InstitutionId, Money>,
    /// Volatile: when each open transfer next acts. Rebuilt on restart.
    #[serde(skip)]
    pub timers: BTreeMap<TransferId, u64>,
}

impl TreatmentProvince {
    /// A province with no history.
    pub fn new(code: ProvinceCode) -> TreatmentProvince {
        TreatmentProvince {
            code,
            next_seq: 1,
            by_key: BTreeMap::new(),
            transfers: BTreeMap::new(),
            payables: BTreeMap::new(),
            timers: BTreeMap::new(),
        }
    }

    /// The transfers whose commit was applied here (settled), with their requests.
    pub fn committed(&self) -> impl Iterator<Item = (&TransferId, &TransferState)> {
        self.transfers.iter().filter(|(_, s)| s.phase == Phase::Done(Decision::Commit))
    }

    /// Transfers not yet decided here.
    pub fn open(&self) -> impl Iterator<Item = (&TransferId, &TransferState)> {
        self.transfers.iter().filter(|(_, s)| !matches!(s.phase, Phase::Done(_)))
    }

    /// The outcome the hospital gets for a key now.
    pub fn outcome(&self, key: &SettlementKey) -> Option<OutcomeKind> {
        let t = self.by_key.get(key)?;
        let s = self.transfers.get(t)?;
        Some(match s.phase {
            Phase::Done(Decision::Commit) => OutcomeKind::Committed { fund_share: s.request.fund_share },
            Phase::Done(Decision::Abort) => OutcomeKind::Aborted,
            _ => OutcomeKind::InProgress,
        })
    }

    /// Rebuilds the volatile state after a crash and returns what resolves in-doubt transfers:
    /// the reserve again while phase 1 is open, the proposal again (which reads the recorded
    /// decision) once it was proposed.
    pub fn restart(&mut self, now: u64) -> Vec<Msg> {
        self.timers.clear();
        let open: Vec<TransferId> = self.open().map(|(t, _)| t.clone()).collect();
        let mut out = Vec::new();
        for t in open {
            self.timers.insert(t.clone(), now + T_RESERVE);
            out.push(match self.transfers[&t].phase {
                Phase::Deciding(d) => self.propose(&t, d),
                _ => self.reserve_msg(&t),
            });
        }
        out
    }

    /// Applies one message at logical time `now`; returns the messages to send.
    pub fn apply(&mut self, msg: Msg, now: u64) -> Vec<Msg> {
        match msg {
            Msg::Begin { request, .. } => self.begin(request, now),
            Msg::Reserved { transfer } => self.phase_one_answer(transfer, Decision::Commit, now),
            Msg::Refused { transfer, .. } => self.phase_one_answer(transfer, Decision::Abort, now),
            Msg::Decided { transfer, decision } => self.decided(transfer, decision),
            Msg::Tick { .. } => {
                let due: Vec<TransferId> =
                    self.timers.iter().filter(|(_, at)| **at <= now).map(|(t, _)| t.clone()).collect();
                let mut out = Vec::new();
                for t in due {
                    self.timers.insert(t.clone(), now + T_RESERVE);
                    let decision = match self.transfers[&t].phase {
                        Phase::Deciding(d) => d,
                        // No phase-1 answer in time: abort (the insured side voids any late
                        // reservation once it reads the decision).
                        _ => Decision::Abort,
                    };
                    self.set_phase(&t, Phase::Deciding(decision));
                    out.push(self.propose(&t, decision));
                }
                out
            }
            _ => Vec::new(),
        }
    }

    fn begin(&mut self, request: BeginRequest, now: u64) -> Vec<Msg> {
        let key = request.key.clone();
        if let Some(t) = self.by_key.get(&key) {
            let kind = if self.transfers[t].request == request {
                self.outcome(&key).unwrap_or(OutcomeKind::InProgress)
            } else {
                OutcomeKind::Rejected(TransferError::SerialReused)
            };
            return vec![Msg::Outcome { treatment: self.code.clone(), key, transfer: Some(t.clone()), kind }];
        }
        let t = TransferId { treatment: self.code.clone(), seq: self.next_seq };
        self.next_seq += 1;
        self.by_key.insert(key.clone(), t.clone());
        self.transfers.insert(t.clone(), TransferState { request, phase: Phase::Reserving });
        self.timers.insert(t.clone(), now + T_RESERVE);
        vec![
            self.reserve_msg(&t),
            Msg::Outcome { treatment: self.code.clone(), key, transfer: Some(t), kind: OutcomeKind::InProgress },
        ]
    }

    fn phase_one_answer(&mut self, t: TransferId, decision: Decision, now: u64) -> Vec<Msg> {
        match self.transfers.get(&t) {
            Some(s) if s.phase == Phase::Reserving => {
                self.set_phase(&t, Phase::Deciding(decision));
                self.timers.insert(t.clone(), now + T_RESERVE);
                vec![self.propose(&t, decision)]
            }
            // Late or duplicate answers change nothing: the proposal already made stands.
            _ => Vec::new(),
        }
    }

    fn decided(&mut self, t: TransferId, decision: Decision) -> Vec<Msg> {
        let Some(s) = self.transfers.get(&t) else { return Vec::new() };
        if matches!(s.phase, Phase::Done(_)) {
            return Vec::new();
        }
        let request = s.request.clone();
        self.set_phase(&t, Phase::Done(decision));
        self.timers.remove(&t);
        if decision == Decision::Commit {
            *self.payables.entry(request.key.institution.clone()).or_insert(Money::ZERO) += request.fund_share;
        }
        let kind = self.outcome(&request.key).unwrap_or(OutcomeKind::Aborted);
        vec![Msg::Outcome { treatment: self.code.clone(), key: request.key, transfer: Some(t), kind }]
    }

    fn set_phase(&mut self, t: &TransferId, phase: Phase) {
        if let Some(s) = self.transfers.get_mut(t) {
            s.phase = phase;
        }
    }

    fn reserve_msg(&self, t: &TransferId) -> Msg {
        let r = &self.transfers[t].request;
        Msg::Reserve {
            transfer: t.clone(),
            key: r.key.clone(),
            insured: r.insured.clone(),
            person: r.person.clone(),
            year: r.year,
            amount: r.fund_share,
        }
    }

    fn propose(&self, t: &TransferId, decision: Decision) -> Msg {
        let r = &self.transfers[t].request;
        Msg::Propose {
            transfer: t.clone(),
            key: r.key.clone(),
            insured: r.insured.clone(),
            amount: r.fund_share,
            decision,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::test_key;
    use crate::Address;
    use medmesh_types::PersonId;

    fn request(serial: u64, fen: i64) -> BeginRequest {
        BeginRequest {
            key: test_key("H1", serial),
            person: PersonId::new("P000001").unwrap(),
            insured: ProvinceCode::new("310000").unwrap(),
            year: 2025,
            fund_share: Money::from_fen(fen),
        }
    }

    fn begin(p: &TreatmentProvince, serial: u64, fen: i64) -> Msg {
        Msg::Begin { treatment: p.code.clone(), request: request(serial, fen) }
    }

    fn province() -> TreatmentProvince {
        TreatmentProvince::new(ProvinceCode::new("110000").unwrap())
    }

    fn kinds(out: &[Msg]) -> Vec<OutcomeKind> {
        out.iter()
            .filter_map(|m| match m {
                Msg::Outcome { kind, .. } => Some(kind.clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn retried_begin_starts_one_transfer_and_returns_the_first_outcome() {
        let mut p = province();
        let out = p.apply(begin(&p, 1, 500), 0);
        assert!(matches!(&out[0], Msg::Reserve { .. }));
        let t = TransferId { treatment: p.code.clone(), seq: 1 };
        assert_eq!(kinds(&p.apply(begin(&p, 1, 500), 1)), vec![OutcomeKind::InProgress]);
        p.apply(Msg::Reserved { transfer: t.clone() }, 2);
        let out = p.apply(Msg::Decided { transfer: t.clone(), decision: Decision::Commit }, 3);
        assert_eq!(kinds(&out), vec![OutcomeKind::Committed { fund_share: Money::from_fen(500) }]);
        assert_eq!(
            kinds(&p.apply(begin(&p, 1, 500), 4)),
            vec![OutcomeKind::Committed { fund_share: Money::from_fen(500) }]
        );
        assert_eq!(p.transfers.len(), 1);
        assert_eq!(p.payables.values().copied().sum::<Money>(), Money::from_fen(500));
    }

    #[test]
    fn serial_reused_with_other_content_is_rejected() {
        let mut p = province();
        p.apply(begin(&p, 1, 500), 0);
        let out = p.apply(begin(&p, 1, 600), 1);
        assert_eq!(kinds(&out), vec![OutcomeKind::Rejected(TransferError::SerialReused)]);
        assert_eq!(p.transfers.len(), 1);
    }

    #[test]
    fn refused_or_timed_out_proposes_abort_and_late_reserved_is_ignored() {
        let mut p = province();
        p.apply(begin(&p, 1, 500), 0);
        let out = p.apply(Msg::Tick { to: Address::Treatment(p.code.clone()) }, T_RESERVE);
        assert!(matches!(&out[..], [Msg::Propose { decision: Decision::Abort, .. }]));
        let t = TransferId { treatment: p.code.clone(), seq: 1 };
        assert!(p.apply(Msg::Reserved { transfer: t.clone() }, T_RESERVE + 1).is_empty());
        let out = p.apply(Msg::Decided { transfer: t.clone(), decision: Decision::Abort }, T_RESERVE + 2);
        assert_eq!(kinds(&out), vec![OutcomeKind::Aborted]);
        // A duplicate decision is harmless.
        assert!(p.apply(Msg::Decided { transfer: t, decision: Decision::Abort }, T_RESERVE + 3).is_empty());
        assert!(p.payables.is_empty());
    }

    #[test]
    fn restart_resends_what_resolves_in_doubt_transfers() {
        let mut p = province();
        p.apply(begin(&p, 1, 500), 0);
        p.apply(begin(&p, 2, 500), 0);
        p.apply(
            Msg::Refused {
                transfer: TransferId { treatment: p.code.clone(), seq: 2 },
                reason: TransferError::BadAmount,
            },
            1,
        );
        let mut restarted = p.clone();
        restarted.timers.clear();
        let out = restarted.restart(10);
        assert!(matches!(&out[..], [Msg::Reserve { .. }, Msg::Propose { decision: Decision::Abort, .. }]));
        assert_eq!(restarted.timers.len(), 2);
    }
}
