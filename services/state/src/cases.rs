//! Cases and penalties in a province (issue 11.6): the store around the pure state machine of
//! [`medmesh_supervision::cases`].
//!
//! A case is about settlements in force of one institution: local ones, and visitors'
//! non-local ones, whose fund share is the insured province's, so nothing is recovered from
//! them. Executing its decision, in the same command:
//! - takes the recovery off what the fund owes the institution (its payable) and back into the
//!   pool; what exceeds the payable is due from the institution and taken off its next
//!   settlements ([`Payable::offset_recovery`]). The settlements recovered on can no longer be
//!   reversed;
//! - records the fine (owed to the treasury, a memo in the ledger);
//! - holds the agreement (suspension or end): settlements at the institution are refused;
//! - records the personnel points and the joint-discipline entry here at once;
//! - puts the points, the entry and the case outcome (no identity) in the outbox, which the
//!   leader publishes to the federation's shared log so every province sees them.

use medmesh_supervision::cases::{Case, CaseOutcome, CasePolicy, CaseSource, CaseState};
use medmesh_supervision::credit::Lift;
use medmesh_types::{Date, InstitutionId, LogTime, Money, ProvinceCode, Serial};

use crate::discipline::store_discipline;
use crate::error::case_error;
use crate::kv::{decode, keys, outbox, KvRead, Tx};
use crate::model::*;
use crate::rules::{check_violation, province};
use crate::shared::{DisciplineEntry, DisciplineSubject, SharedItem};
use crate::DomainError;

/// The province's case policy (the 2021 regulations' defaults until one is put).
pub fn policy(kv: &dyn KvRead) -> CasePolicy {
    crate::kv::load(kv, keys::CASE_POLICY).unwrap_or_default()
}

fn load_case(tx: &Tx<'_>, id: &str) -> Result<Case, DomainError> {
    tx.load(&keys::case(id)).ok_or_else(|| DomainError::not_found("case_id", format!("no case {id}")))
}

/// The fund share this province paid on the case's settlements still in force (what can be
/// recovered). A settlement is recovered on by one case only, so the recoveries of two cases
/// never add up to more than the fund paid. A visitor's non-local settlement counts nothing:
/// its fund share is the insured province's (a case on it can still fine nothing but suspend,
/// score, discipline and transfer).
fn involved(tx: &Tx<'_>, case: &str, inst: &InstitutionId, settlements: &[Serial]) -> Result<Money, DomainError> {
    let mut sum = Money::ZERO;
    for (i, serial) in settlements.iter().enumerate() {
        let field = format!("settlement_serials[{i}]");
        if let Some(other) = tx.load::<String>(&keys::recovered_settlement(inst, serial)).filter(|o| o != case) {
            return Err(DomainError::precondition(
                field,
                format!("case {other} already recovered on settlement {serial}"),
            ));
        }
        let s: Settlement = tx.load(&keys::settlement(inst, serial)).ok_or_else(|| {
            DomainError::not_found(&field, format!("settlement {serial} of institution {inst} does not exist"))
        })?;
        if s.status == SettlementStatus::Settled && s.insured.is_none() {
            sum += s.split.fund_total() + s.split.individual_account;
        }
    }
    Ok(sum)
}

/// Refuses a recovery that reaches into a visitor's non-local settlement, naming it: its fund
/// share was the insured province's, not this province's.
fn nonlocal_share(tx: &Tx<'_>, inst: &InstitutionId, settlements: &[Serial]) -> Result<(), DomainError> {
    for serial in settlements {
        if let Some(s) = tx.load::<Settlement>(&keys::settlement(inst, serial)).filter(|s| s.insured.is_some()) {
            return Err(DomainError::invalid(
                "recover",
                format!(
                    "settlement {serial} is non-local: its fund share belongs to the insured province {}, \
                     so this province recovers only what its own fund paid",
                    s.insured.map(|p| p.to_string()).unwrap_or_default()
                ),
            ));
        }
    }
    Ok(())
}

/// Applies a case command.
pub(crate) fn execute(tx: &mut Tx<'_>, cmd: &CaseCommand, now: LogTime) -> Result<Outcome, DomainError> {
    let today = now.date();
    let case = match cmd {
        CaseCommand::PutPolicy(p) => {
            p.validate().map_err(case_error)?;
            tx.store(keys::CASE_POLICY, p);
            return Ok(Outcome::CasePolicy(p.clone()));
        }
        CaseCommand::Open { id, province, source, institution, settlements } => {
            return open(tx, id, source, institution, settlements, province, today, &policy(tx))
        }
        CaseCommand::Investigate { id, finding } => {
            let mut c = load_case(tx, id)?;
            // The same finding again on the same day is a retry: recorded once.
            if c.findings.last().is_some_and(|f| f.on == today && &f.text == finding) {
                return Ok(Outcome::Case(Box::new(c)));
            }
            c.investigate(finding, today).map_err(case_error)?;
            c
        }
        CaseCommand::Decide { id, decision } => {
            let mut c = load_case(tx, id)?;
            if c.state == CaseState::Investigating {
                // What can be recovered is what the fund paid on settlements still in force.
                c.involved = involved(tx, &c.id, &c.institution, &c.settlements)?;
                if decision.recover > c.involved {
                    nonlocal_share(tx, &c.institution, &c.settlements)?;
                }
            }
            c.decide(decision.clone(), today, &policy(tx)).map_err(case_error)?;
            c
        }
        CaseCommand::Execute { id } => {
            let mut c = load_case(tx, id)?;
            let effects = c.execute(today).map_err(case_error)?;
            carry_out(tx, &c, effects, today)?;
            crate::tally::tally(tx, today, |t| t.cases_executed += 1);
            c
        }
        CaseCommand::Close { id, reason } => {
            let mut c = load_case(tx, id)?;
            c.close(reason, today).map_err(case_error)?;
            c
        }
        CaseCommand::LiftCredit { id, reason } => return lift_credit(tx, id, reason, today),
    };
    tx.store(&keys::case(&case.id), &case);
    Ok(Outcome::Case(Box::new(case)))
}

#[allow(clippy::too_many_arguments)] // the fields of the opening
fn open(
    tx: &mut Tx<'_>,
    id: &str,
    source: &CaseSource,
    institution: &InstitutionId,
    settlements: &[Serial],
    province_code: &ProvinceCode,
    today: Date,
    policy: &CasePolicy,
) -> Result<Outcome, DomainError> {
    let mut settlements = settlements.to_vec();
    let alert = match source {
        CaseSource::Alert(seq) => {
            let a: Alert = tx
                .load(&keys::alert(*seq))
                .ok_or_else(|| DomainError::not_found("source.alert_seq", format!("no alert {seq}")))?;
            if &a.institution != institution {
                return Err(DomainError::invalid(
                    "institution_id",
                    format!("alert {seq} is about institution {}, not {institution}", a.institution),
                ));
            }
            if settlements.is_empty() {
                settlements.push(a.settlement.clone());
            }
            Some(a)
        }
        CaseSource::Report(_) | CaseSource::Inspection(_) => None,
    };
    if let Some(old) = tx.load::<Case>(&keys::case(id)) {
        let mut sorted = settlements.clone();
        sorted.sort();
        if &old.source == source && &old.institution == institution && old.settlements == sorted {
            return Ok(Outcome::Case(Box::new(old)));
        }
        return Err(DomainError::exists("case_id", format!("case {id} was already opened with other content")));
    }
    if tx.load::<Institution>(&keys::institution(institution)).is_none() {
        return Err(DomainError::not_found("institution_id", format!("institution {institution} is not registered")));
    }
    let paid = involved(tx, id, institution, &settlements)?;
    let case =
        Case::open(id, province_code.clone(), source.clone(), institution.clone(), settlements, paid, today, policy)
            .map_err(case_error)?;
    if let CaseSource::Report(r) = source {
        crate::reports::open_case(tx, r, id, institution)?;
    }
    if let Some(mut a) = alert {
        let seq = a.seq;
        if let AlertStatus::Dismissed(_) = a.status {
            return Err(DomainError::precondition("source.alert_seq", format!("alert {seq} was dismissed")));
        }
        if let Some(other) = tx.load::<String>(&keys::alert_case(seq)) {
            return Err(DomainError::exists("source.alert_seq", format!("alert {seq} already opened case {other}")));
        }
        if a.status == AlertStatus::Open {
            a.status = AlertStatus::Accepted(format!("case {id}"));
            tx.store(&keys::alert(seq), &a);
        }
        tx.store(&keys::alert_case(seq), &id.to_string());
    }
    tx.store(&keys::case(id), &case);
    crate::tally::tally(tx, today, |t| t.cases_opened += 1);
    Ok(Outcome::Case(Box::new(case)))
}

/// Carries out an executed decision's effects (see the module docs).
fn carry_out(
    tx: &mut Tx<'_>,
    case: &Case,
    effects: medmesh_supervision::cases::Effects,
    today: Date,
) -> Result<(), DomainError> {
    let inst = &case.institution;
    // Recovery: never more than what the fund still paid on the case's settlements.
    let paid = involved(tx, &case.id, inst, &case.settlements)?;
    if effects.recover > paid {
        return Err(DomainError::precondition(
            "recover",
            format!(
                "{} is more than the fund share still in force on the case's settlements ({paid})",
                effects.recover
            ),
        ));
    }
    let mut fund: FundLedger = tx.load(keys::FUND).unwrap_or_default();
    if !effects.recover.is_zero() {
        let pkey = keys::payable(inst);
        let mut pay: Payable = tx.load(&pkey).unwrap_or_default();
        let from_payable = pay.withhold(effects.recover);
        fund.recovered += from_payable;
        fund.recovery_due += effects.recover - from_payable;
        tx.store(&pkey, &pay);
        crate::payment::count_recovered(tx, inst, today, effects.recover);
        for s in &case.settlements {
            // Only this province's fund share was recovered: a visitor's settlement is not.
            if tx.load::<Settlement>(&keys::settlement(inst, s)).is_some_and(|st| st.insured.is_none()) {
                tx.store(&keys::recovered_settlement(inst, s), &case.id);
            }
        }
    }
    fund.fines_imposed += effects.fine;
    tx.store(keys::FUND, &fund);
    if let Some((from, until)) = effects.hold {
        // One hold per institution: an ended agreement stays ended, and of two suspensions the
        // one that lasts longer stands (a later, shorter one never lifts an earlier one).
        let new = AgreementHold { case_id: case.id.clone(), from, until };
        let stands = match tx.load::<AgreementHold>(&keys::agreement_hold(inst)) {
            Some(old) => match (old.until, until) {
                (None, _) => old,
                (Some(_), None) => new,
                (Some(o), Some(n)) if o >= n => old,
                _ => new,
            },
            None => new,
        };
        tx.store(&keys::agreement_hold(inst), &stands);
    }
    for v in &effects.violations {
        check_violation(v, Some(today))?;
        let key = keys::violation(&v.personnel, &v.id);
        if tx.load::<medmesh_supervision::Violation>(&key).is_none() {
            tx.store(&key, v);
            crate::tally::tally(tx, today, |t| t.points += i64::from(v.points));
        }
        outbox(tx, SharedItem::Violation(v.clone()));
    }
    if let Some((from, until)) = effects.discipline {
        let reason = case.decision.as_ref().map(|d| d.input.reason.clone()).unwrap_or_default();
        let e = DisciplineEntry {
            id: format!("case-{}-{}", case.province, case.id),
            subject: DisciplineSubject::Institution(inst.clone()),
            province: case.province.clone(),
            from,
            until,
            reason: reason.chars().take(256).collect(),
        };
        if store_discipline(tx, &e)? {
            crate::tally::tally(tx, today, |t| t.discipline_entries += 1);
        }
        outbox(tx, SharedItem::Discipline(e));
    }
    if let Some(o) = case.outcome() {
        tx.store(&keys::case_outcome(inst, &o.province, &o.case_id), &o);
        outbox(tx, SharedItem::CaseOutcome(o));
    }
    Ok(())
}

/// Lifts an executed case's credit entry on appeal: recorded here at once and shared through
/// the federation, so every province's rating stops counting it. The same lift again answers
/// it; another reason is ALREADY_EXISTS.
fn lift_credit(tx: &mut Tx<'_>, id: &str, reason: &str, today: Date) -> Result<Outcome, DomainError> {
    let c = load_case(tx, id)?;
    let Some(o) = c.outcome().filter(|_| c.executed_on.is_some()) else {
        return Err(DomainError::precondition(
            "case_id",
            format!("case {id} was not executed: it has no credit entry"),
        ));
    };
    let key = keys::credit_lift(&o.institution, &o.province, &o.case_id);
    if let Some(old) = tx.load::<Lift>(&key) {
        if old.reason == reason {
            return Ok(Outcome::Case(Box::new(c)));
        }
        return Err(DomainError::exists(
            "case_id",
            format!("case {id}'s credit entry was lifted on {} already", old.lifted_on),
        ));
    }
    let lift = Lift {
        province: o.province,
        case_id: o.case_id,
        institution: o.institution,
        lifted_on: today,
        reason: reason.to_string(),
    };
    lift.validate().map_err(case_error)?;
    tx.store(&key, &lift);
    outbox(tx, SharedItem::CreditLift(lift));
    Ok(Outcome::Case(Box::new(c)))
}

/// Province: drops the outbox items through `through` (they reached the shared log).
pub(crate) fn published(tx: &mut Tx<'_>, through: u64) -> Result<Outcome, DomainError> {
    let last: u64 = tx.load(keys::OUTBOX_SEQ).unwrap_or(0);
    if through > last {
        return Err(DomainError::invalid("through", format!("{through} is past the last outbox item {last}")));
    }
    let start = keys::outbox(0);
    let end = keys::outbox(through.saturating_add(1));
    let gone: Vec<Vec<u8>> =
        tx.scan(start.as_bytes(), end.as_bytes(), usize::MAX).into_iter().map(|(k, _)| k).collect();
    for k in gone {
        tx.put_delete(&String::from_utf8_lossy(&k));
    }
    Ok(Outcome::Stored)
}

/// Outbox items waiting for the federation, in order.
pub fn outbox_items(kv: &dyn KvRead, limit: usize) -> Vec<(u64, SharedItem)> {
    let start = keys::outbox(0);
    let end = keys::outbox(u64::MAX);
    kv.scan(start.as_bytes(), end.as_bytes(), limit)
        .into_iter()
        .filter_map(|(k, v)| {
            let seq = std::str::from_utf8(&k).ok()?.strip_prefix("outbox/")?.parse().ok()?;
            Some((seq, decode(&v)))
        })
        .collect()
}

/// Cases by id from `after` (exclusive), at most `limit`.
pub fn cases(kv: &dyn KvRead, after: &str, limit: usize) -> Vec<Case> {
    let start = if after.is_empty() { keys::CASES.to_string() } else { format!("{}\u{0}", keys::case(after)) };
    kv.scan(start.as_bytes(), b"case0", limit).iter().map(|(_, v)| decode(v)).collect()
}

/// An institution's case outcomes from every province.
pub fn outcomes(kv: &dyn KvRead, inst: &InstitutionId, limit: usize) -> Vec<CaseOutcome> {
    let prefix = keys::case_outcomes(inst);
    let mut end = prefix.clone().into_bytes();
    if let Some(b) = end.last_mut() {
        *b += 1;
    }
    kv.scan(prefix.as_bytes(), &end, limit).iter().map(|(_, v)| decode(v)).collect()
}

/// Checks a case command's fields before any state is read.
pub(crate) fn validate(cmd: &CaseCommand) -> Result<(), DomainError> {
    if let Some(id) = cmd.id() {
        medmesh_supervision::cases::check_case_id(id).map_err(case_error)?;
    }
    match cmd {
        CaseCommand::PutPolicy(p) => p.validate().map_err(case_error),
        CaseCommand::Open { province: p, .. } => province("province", p),
        CaseCommand::Investigate { finding, .. } if finding.trim().is_empty() => {
            Err(DomainError::invalid("finding", "is required"))
        }
        CaseCommand::LiftCredit { reason, .. } => {
            medmesh_supervision::reports::check_text("reason", reason, true).map_err(case_error)
        }
        _ => Ok(()),
    }
}
