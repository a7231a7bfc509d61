//! The insured province's side: pooling fund, accumulators, reservations and obligations.

use std::collections::BTreeMap;

use medmesh_settlement::{Accumulators, Policy};
use medmesh_types::{Money, PersonId, ProvinceCode};
use serde::{Deserialize, Serialize};

use crate::{Decision, Msg, SettlementKey, TransferError, TransferId, T_VOID};

/// A phase-1 reservation held against the fund and the person's headroom.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    /// The hospital's key.
    pub key: SettlementKey,
    /// The insured person.
    pub person: PersonId,
    /// Calendar year whose accumulators it holds headroom in.
    pub year: i32,
    /// The fund share reserved.
    pub amount: Money,
}

/// How a transfer ended at the insured province (kept so late duplicates stay harmless).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Resolution {
    /// Phase 1 was refused; a duplicate `Reserve` gets the same answer.
    Refused(TransferError),
    /// Posted: the amount became an obligation to the treatment province.
    Posted(Reservation),
    /// Voided: the reservation (if any) was released.
    Voided,
}

/// The insured province's state machine. Every field except the timers is durable.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InsuredProvince {
    /// This province.
    pub code: ProvinceCode,
    /// The insured place's policy (its `annual_cap` bounds the pooling fund per person-year).
    pub policy: Policy,
    /// The pooling fund balance, not counting reservations.
    pub fund: Money,
    /// Per (person, calendar year) accumulators; `pooling_paid` includes posted transfers.
    pub accumulators: BTreeMap<(PersonId, i32), Accumulators>,
    /// Reservations waiting for a decision, by transfer.
    pub pending: BTreeMap<TransferId, Reservation>,
    /// Transfers that are over, by transfer.
    pub resolved: BTreeMap<TransferId, Resolution>,
    /// What this province owes each treatment province (posted transfers, not yet cleared).
    pub owed: BTreeMap<ProvinceCode, Money>,
    /// Volatile: when each pending reservation next asks the federation. Rebuilt on restart.
    #[serde(skip)]
    pub timers: BTreeMap<TransferId, u64>,
}

impl InsuredProvince {
    /// A province with a pooling fund and a policy, and no history.
    pub fn new(code: ProvinceCode, policy: Policy, fund: Money) -> InsuredProvince {
        InsuredProvince {
            code,
            policy,
            fund,
            accumulators: BTreeMap::new(),
            pending: BTreeMap::new(),
            resolved: BTreeMap::new(),
            owed: BTreeMap::new(),
            timers: BTreeMap::new(),
        }
    }

    /// Total of all pending reservations.
    pub fn reserved_total(&self) -> Money {
        self.pending.values().map(|r| r.amount).sum()
    }

    /// Total owed to all treatment provinces.
    pub fn owed_total(&self) -> Money {
        self.owed.values().copied().sum()
    }

    /// What is reserved for one person in one year.
    pub fn reserved_for(&self, person: &PersonId, year: i32) -> Money {
        self.pending.values().filter(|r| &r.person == person && r.year == year).map(|r| r.amount).sum()
    }

    /// The person's pooling fund paid so far in the year.
    pub fn paid_for(&self, person: &PersonId, year: i32) -> Money {
        self.accumulators.get(&(person.clone(), year)).map(|a| a.pooling_paid).unwrap_or(Money::ZERO)
    }

    /// Remaining annual headroom: `annual_cap - pooling_paid - reserved`, never below zero.
    pub fn headroom(&self, person: &PersonId, year: i32) -> Money {
        self.policy.annual_cap.saturating_sub(self.paid_for(person, year) + self.reserved_for(person, year))
    }

    /// Rebuilds the volatile state after a crash and returns what resolves in-doubt transfers:
    /// a decision query for every pending reservation.
    pub fn restart(&mut self, now: u64) -> Vec<Msg> {
        self.timers.clear();
        let mut out = Vec::new();
        for t in self.pending.keys() {
            self.timers.insert(t.clone(), now + T_VOID);
            out.push(Msg::Query { transfer: t.clone(), insured: self.code.clone() });
        }
        out
    }

    /// Applies one message at logical time `now`; returns the messages to send.
    pub fn apply(&mut self, msg: Msg, now: u64) -> Vec<Msg> {
        match msg {
            Msg::Reserve { transfer, key, insured: _, person, year, amount } => {
                self.reserve(transfer, Reservation { key, person, year, amount }, now)
            }
            Msg::Post { transfer, .. } => {
                self.decide(&transfer, Decision::Commit);
                Vec::new()
            }
            Msg::Void { transfer, .. } => {
                self.decide(&transfer, Decision::Abort);
                Vec::new()
            }
            Msg::Undecided { transfer, .. } => match self.pending.get(&transfer) {
                // Asked, and nothing was recorded: propose abort (first writer wins at the
                // federation, so a commit recorded meanwhile still wins and is posted).
                Some(r) => vec![Msg::Propose {
                    transfer,
                    key: r.key.clone(),
                    insured: self.code.clone(),
                    amount: r.amount,
                    decision: Decision::Abort,
                }],
                None => Vec::new(),
            },
            Msg::Tick { .. } => {
                let mut out = Vec::new();
                for (t, due) in self.timers.iter_mut() {
                    if *due <= now {
                        *due = now + T_VOID;
                        out.push(Msg::Query { transfer: t.clone(), insured: self.code.clone() });
                    }
                }
                out
            }
            _ => Vec::new(),
        }
    }

    fn reserve(&mut self, transfer: TransferId, r: Reservation, now: u64) -> Vec<Msg> {
        if self.pending.contains_key(&transfer) {
            return vec![Msg::Reserved { transfer }];
        }
        match self.resolved.get(&transfer) {
            Some(Resolution::Refused(reason)) => return vec![Msg::Refused { transfer, reason: reason.clone() }],
            Some(Resolution::Posted(_)) => return vec![Msg::Reserved { transfer }],
            Some(Resolution::Voided) => return vec![Msg::Refused { transfer, reason: TransferError::AlreadyVoided }],
            None => {}
        }
        let refusal = if r.amount <= Money::ZERO {
            Some(TransferError::BadAmount)
        } else if self.fund < r.amount {
            Some(TransferError::InsufficientFund { available: self.fund })
        } else {
            let headroom = self.headroom(&r.person, r.year);
            (headroom < r.amount).then_some(TransferError::HeadroomExceeded { headroom })
        };
        if let Some(reason) = refusal {
            self.resolved.insert(transfer.clone(), Resolution::Refused(reason.clone()));
            return vec![Msg::Refused { transfer, reason }];
        }
        self.fund -= r.amount;
        self.pending.insert(transfer.clone(), r);
        self.timers.insert(transfer.clone(), now + T_VOID);
        vec![Msg::Reserved { transfer }]
    }

    fn decide(&mut self, transfer: &TransferId, decision: Decision) {
        if let Some(r) = self.pending.remove(transfer) {
            self.timers.remove(transfer);
            match decision {
                Decision::Commit => {
                    let acc = self.accumulators.entry((r.person.clone(), r.year)).or_default();
                    acc.pooling_paid += r.amount;
                    *self.owed.entry(transfer.treatment.clone()).or_insert(Money::ZERO) += r.amount;
                    self.resolved.insert(transfer.clone(), Resolution::Posted(r));
                }
                Decision::Abort => {
                    self.fund += r.amount;
                    self.resolved.insert(transfer.clone(), Resolution::Voided);
                }
            }
        } else if decision == Decision::Abort && !self.resolved.contains_key(transfer) {
            // A void that overtook its reserve: remember it, so the late reserve is refused.
            self.resolved.insert(transfer.clone(), Resolution::Voided);
        }
        // A post with no reservation cannot come from a correct federation (commit needs our
        // `Reserved`, which we only send once the reservation is durable); it is ignored. A
        // post or void for a resolved transfer is a harmless duplicate.
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::{sample_policy, test_key, test_transfer};
    use medmesh_types::Money;

    fn province() -> InsuredProvince {
        InsuredProvince::new(
            ProvinceCode::new("310000").unwrap(),
            sample_policy(Money::from_fen(100_000)),
            Money::from_fen(1_000_000),
        )
    }

    fn reserve(seq: u64, person: &str, fen: i64) -> Msg {
        Msg::Reserve {
            transfer: test_transfer("110000", seq),
            key: test_key("H1", seq),
            insured: ProvinceCode::new("310000").unwrap(),
            person: PersonId::new(person).unwrap(),
            year: 2025,
            amount: Money::from_fen(fen),
        }
    }

    fn post(seq: u64) -> Msg {
        Msg::Post { transfer: test_transfer("110000", seq), insured: ProvinceCode::new("310000").unwrap() }
    }

    fn void(seq: u64) -> Msg {
        Msg::Void { transfer: test_transfer("110000", seq), insured: ProvinceCode::new("310000").unwrap() }
    }

    #[test]
    fn duplicate_reserve_reserves_once() {
        let mut p = province();
        assert_eq!(
            p.apply(reserve(1, "P000001", 30_000), 0),
            vec![Msg::Reserved { transfer: test_transfer("110000", 1) }]
        );
        assert_eq!(
            p.apply(reserve(1, "P000001", 30_000), 5),
            vec![Msg::Reserved { transfer: test_transfer("110000", 1) }]
        );
        assert_eq!(p.reserved_total(), Money::from_fen(30_000));
        assert_eq!(p.fund, Money::from_fen(970_000));
    }

    #[test]
    fn reservations_share_the_persons_headroom() {
        let mut p = province();
        p.apply(reserve(1, "P000001", 60_000), 0);
        let out = p.apply(reserve(2, "P000001", 60_000), 0);
        assert!(matches!(&out[..], [Msg::Refused { reason: TransferError::HeadroomExceeded { .. }, .. }]));
        // The refusal sticks even after headroom frees up.
        p.apply(void(1), 1);
        let again = p.apply(reserve(2, "P000001", 60_000), 2);
        assert!(matches!(&again[..], [Msg::Refused { reason: TransferError::HeadroomExceeded { .. }, .. }]));
        assert_eq!(p.fund, Money::from_fen(1_000_000));
    }

    #[test]
    fn post_moves_reservation_into_obligation_and_accumulators() {
        let mut p = province();
        p.apply(reserve(1, "P000001", 30_000), 0);
        p.apply(post(1), 1);
        p.apply(post(1), 2);
        let person = PersonId::new("P000001").unwrap();
        assert_eq!(p.paid_for(&person, 2025), Money::from_fen(30_000));
        assert_eq!(p.owed_total(), Money::from_fen(30_000));
        assert!(p.pending.is_empty());
        assert_eq!(p.headroom(&person, 2025), Money::from_fen(70_000));
    }

    #[test]
    fn post_before_reserved_is_ignored_and_resolved_later() {
        let mut p = province();
        p.apply(post(1), 0);
        assert_eq!(p.owed_total(), Money::ZERO);
        assert!(p.resolved.is_empty());
        p.apply(reserve(1, "P000001", 30_000), 1);
        assert_eq!(p.reserved_total(), Money::from_fen(30_000));
        // No decision within T_VOID: it asks the federation.
        let out = p.apply(Msg::Tick { to: crate::Address::Insured(p.code.clone()) }, 1 + T_VOID);
        assert!(matches!(&out[..], [Msg::Query { .. }]));
    }

    #[test]
    fn void_after_post_is_ignored() {
        let mut p = province();
        p.apply(reserve(1, "P000001", 30_000), 0);
        p.apply(post(1), 1);
        p.apply(void(1), 2);
        assert_eq!(p.owed_total(), Money::from_fen(30_000));
        assert_eq!(p.fund, Money::from_fen(970_000));
    }

    #[test]
    fn void_before_reserve_refuses_the_late_reserve() {
        let mut p = province();
        p.apply(void(1), 0);
        let out = p.apply(reserve(1, "P000001", 30_000), 1);
        assert!(matches!(&out[..], [Msg::Refused { reason: TransferError::AlreadyVoided, .. }]));
        assert_eq!(p.fund, Money::from_fen(1_000_000));
    }

    #[test]
    fn undecided_proposes_abort_and_restart_queries_pending() {
        let mut p = province();
        p.apply(reserve(1, "P000001", 30_000), 0);
        let out = p.apply(Msg::Undecided { transfer: test_transfer("110000", 1), insured: p.code.clone() }, T_VOID);
        assert!(matches!(&out[..], [Msg::Propose { decision: Decision::Abort, .. }]));
        let mut restarted = p.clone();
        restarted.timers.clear();
        let out = restarted.restart(5);
        assert!(matches!(&out[..], [Msg::Query { .. }]));
        assert_eq!(restarted.timers.len(), 1);
    }

    #[test]
    fn insufficient_fund_is_refused() {
        let mut p = province();
        p.fund = Money::from_fen(100);
        let out = p.apply(reserve(1, "P000001", 30_000), 0);
        assert!(matches!(&out[..], [Msg::Refused { reason: TransferError::InsufficientFund { .. }, .. }]));
    }
}
