//! The federation: one durable decision per transfer, first writer wins, and the
//! per-province-pair obligations for clearing.

use std::collections::BTreeMap;

use medmesh_types::{Money, ProvinceCode};
use serde::{Deserialize, Serialize};

use crate::{Decision, Msg, SettlementKey, TransferId};

/// The durable decision on one transfer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionRecord {
    /// Commit or abort; never changes once written.
    pub decision: Decision,
    /// The hospital's key.
    pub key: SettlementKey,
    /// The insured province (the debtor on commit).
    pub insured: ProvinceCode,
    /// The fund share.
    pub amount: Money,
}

/// The federation's state machine (a Raft group in production). It has no volatile state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Federation {
    /// The decision of every transfer that has one.
    pub decisions: BTreeMap<TransferId, DecisionRecord>,
    /// The committed transfer of each hospital key (at most one, enforced here too).
    pub committed_keys: BTreeMap<SettlementKey, TransferId>,
    /// What each insured province owes each treatment province: `(insured, treatment) → amount`.
    pub obligations: BTreeMap<(ProvinceCode, ProvinceCode), Money>,
}

impl Federation {
    /// An empty federation.
    pub fn new() -> Federation {
        Federation::default()
    }

    /// The recorded decision of a transfer, if any.
    pub fn decision(&self, transfer: &TransferId) -> Option<Decision> {
        self.decisions.get(transfer).map(|r| r.decision)
    }

    /// Rebuilds volatile state after a crash (there is none) and returns nothing to send: the
    /// federation only answers.
    pub fn restart(&mut self, _now: u64) -> Vec<Msg> {
        Vec::new()
    }

    /// Applies one message at logical time `now`; returns the messages to send.
    pub fn apply(&mut self, msg: Msg, _now: u64) -> Vec<Msg> {
        match msg {
            Msg::Propose { transfer, key, insured, amount, decision } => {
                if !self.decisions.contains_key(&transfer) {
                    // First writer wins. A second commit for the same hospital key (which a
                    // correct treatment province never proposes) is recorded as abort.
                    let decision = match decision {
                        Decision::Commit if self.committed_keys.contains_key(&key) => Decision::Abort,
                        d => d,
                    };
                    if decision == Decision::Commit {
                        self.committed_keys.insert(key.clone(), transfer.clone());
                        let pair = (insured.clone(), transfer.treatment.clone());
                        *self.obligations.entry(pair).or_insert(Money::ZERO) += amount;
                    }
                    self.decisions.insert(transfer.clone(), DecisionRecord { decision, key, insured, amount });
                }
                self.announce(&transfer)
            }
            Msg::Query { transfer, insured } => match self.decisions.get(&transfer) {
                Some(r) => vec![phase_two(transfer, r.insured.clone(), r.decision)],
                None => vec![Msg::Undecided { transfer, insured }],
            },
            _ => Vec::new(),
        }
    }

    /// The recorded decision, to both sides.
    fn announce(&self, transfer: &TransferId) -> Vec<Msg> {
        match self.decisions.get(transfer) {
            Some(r) => vec![
                Msg::Decided { transfer: transfer.clone(), decision: r.decision },
                phase_two(transfer.clone(), r.insured.clone(), r.decision),
            ],
            None => Vec::new(),
        }
    }
}

fn phase_two(transfer: TransferId, insured: ProvinceCode, decision: Decision) -> Msg {
    match decision {
        Decision::Commit => Msg::Post { transfer, insured },
        Decision::Abort => Msg::Void { transfer, insured },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::{test_key, test_transfer};

    fn propose(seq: u64, key_seq: u64, decision: Decision) -> Msg {
        Msg::Propose {
            transfer: test_transfer("110000", seq),
            key: test_key("H1", key_seq),
            insured: ProvinceCode::new("310000").unwrap(),
            amount: Money::from_fen(500),
            decision,
        }
    }

    #[test]
    fn first_writer_wins() {
        let mut f = Federation::new();
        let out = f.apply(propose(1, 1, Decision::Abort), 0);
        assert!(matches!(&out[..], [Msg::Decided { decision: Decision::Abort, .. }, Msg::Void { .. }]));
        let out = f.apply(propose(1, 1, Decision::Commit), 1);
        assert!(matches!(&out[..], [Msg::Decided { decision: Decision::Abort, .. }, Msg::Void { .. }]));
        assert!(f.obligations.is_empty());
    }

    #[test]
    fn duplicate_commit_counts_the_obligation_once() {
        let mut f = Federation::new();
        f.apply(propose(1, 1, Decision::Commit), 0);
        f.apply(propose(1, 1, Decision::Commit), 1);
        let pair = (ProvinceCode::new("310000").unwrap(), ProvinceCode::new("110000").unwrap());
        assert_eq!(f.obligations.get(&pair), Some(&Money::from_fen(500)));
    }

    #[test]
    fn a_second_transfer_for_a_committed_key_is_aborted() {
        let mut f = Federation::new();
        f.apply(propose(1, 7, Decision::Commit), 0);
        f.apply(propose(2, 7, Decision::Commit), 0);
        assert_eq!(f.decision(&test_transfer("110000", 2)), Some(Decision::Abort));
    }

    #[test]
    fn queries_answer_the_decision_or_undecided() {
        let mut f = Federation::new();
        let q = Msg::Query { transfer: test_transfer("110000", 1), insured: ProvinceCode::new("310000").unwrap() };
        assert!(matches!(&f.apply(q.clone(), 0)[..], [Msg::Undecided { .. }]));
        f.apply(propose(1, 1, Decision::Commit), 0);
        assert!(matches!(&f.apply(q, 0)[..], [Msg::Post { .. }]));
    }
}
