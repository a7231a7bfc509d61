//! The treatment province's part of non-local settlement: the visit of a person insured
//! elsewhere, opening the transfer, recording the insured province's reservation, finishing it,
//! and the reversal.
//!
//! A non-local settlement is a two-phase transfer between three Raft groups, each step one
//! idempotent command:
//!
//! | step | group | command |
//! |---|---|---|
//! | open | treatment | [`ProvinceCommand::Settle`] on a non-local visit → [`TreatmentTransfer`] |
//! | reserve | insured | [`ProvinceCommand::Reserve`]: settle with the insured policy, hold fund, accumulators, account |
//! | record | treatment | [`ProvinceCommand::TransferReserved`] |
//! | decide | federation | [`FederationCommand::Decide`]: first writer wins |
//! | post / void | insured | [`ProvinceCommand::ResolveReservation`] |
//! | finish | treatment | [`ProvinceCommand::FinishTransfer`]: the settlement, or the serial spent on abort |
//!
//! A reversal is the same shape without a vote: open at the treatment province
//! ([`ProvinceCommand::Reverse`]), [`FederationCommand::Reverse`], [`ProvinceCommand::UnpostReservation`],
//! [`ProvinceCommand::FinishReversal`].

use medmesh_types::{InstitutionId, LogTime, Money, Serial};

use crate::kv::{keys, load, KvRead, Tx};
use crate::model::*;
use crate::rules::{check_visit, digest, fund, idempotent};
use crate::shared::*;
use crate::DomainError;

/// Treatment province: registers a visit of a person insured elsewhere.
pub(crate) fn register_nonlocal_visit(
    tx: &mut Tx<'_>,
    request: &ProvinceCommand,
    nonlocal: &NonLocalVisit,
    now: LogTime,
) -> Result<Outcome, DomainError> {
    let ProvinceCommand::RegisterVisit {
        institution,
        serial,
        certificate_kind,
        certificate: _,
        kind,
        doctor,
        department,
        diagnosis,
        admitted,
    } = request
    else {
        return Err(DomainError::invalid("request", "must be a visit registration"));
    };
    if nonlocal.certificate_kind != *certificate_kind {
        return Err(DomainError::invalid("certificate", "does not match the visit registration"));
    }
    idempotent(tx, institution.as_str(), serial, request, |tx| {
        check_visit(tx, institution, doctor, *admitted, now.date())?;
        if nonlocal.filing.is_none() && *kind == VisitKind::Outpatient {
            return Err(DomainError::precondition(
                "certificate",
                format!(
                    "the person insured in {} has no non-local filing for {} covering {admitted}; file with the insured province first (emergencies: set emergency)",
                    nonlocal.insured, nonlocal.treatment
                ),
            ));
        }
        let person = nonlocal.handle.clone();
        let visit = Visit {
            institution: institution.clone(),
            serial: serial.clone(),
            person,
            masked_id: nonlocal.masked_id.clone(),
            kind: *kind,
            doctor: doctor.clone(),
            department: department.clone(),
            diagnosis: diagnosis.clone(),
            admitted: *admitted,
            lines: Vec::new(),
            settled_by: None,
            nonlocal: Some(nonlocal.clone()),
        };
        tx.store(&keys::visit(institution, serial), &visit);
        Ok(Outcome::VisitRegistered(visit))
    })
}
/// Treatment province: records a late filing on a non-local visit.
pub(crate) fn attach_filing(
    tx: &mut Tx<'_>,
    institution: &medmesh_types::InstitutionId,
    visit: &Serial,
    filing: FilingKind,
) -> Result<Outcome, DomainError> {
    let vkey = keys::visit(institution, visit);
    let mut v: Visit = tx.load(&vkey).ok_or_else(|| {
        DomainError::not_found("visit_serial", format!("visit {visit} of institution {institution} is not registered"))
    })?;
    let Some(nl) = v.nonlocal.as_mut() else {
        return Err(DomainError::precondition("visit_serial", "is not a non-local visit"));
    };
    if nl.filing.is_none() {
        nl.filing = Some(filing);
        tx.store(&vkey, &v);
    }
    Ok(Outcome::Stored)
}
/// Treatment province: opens (or finds) the transfer of a non-local settlement.
pub(crate) fn settle_nonlocal(
    tx: &mut Tx<'_>,
    cmd: &ProvinceCommand,
    institution: &medmesh_types::InstitutionId,
    serial: &Serial,
    mut visit: Visit,
    use_individual_account: bool,
    now: LogTime,
) -> Result<Outcome, DomainError> {
    let key = keys::transfer(institution, serial);
    let d = digest(cmd);
    if let Some(x) = tx.load::<TreatmentTransfer>(&key) {
        if x.digest != d {
            return Err(DomainError::exists(
                "serial",
                format!("serial {serial} was already used by a different request of institution {institution}"),
            ));
        }
        return open(tx, x);
    }
    crate::rules::serial_free(tx, institution.as_str(), serial)?;
    let today = now.date();
    let Some(nl) = visit.nonlocal.clone() else {
        return Err(DomainError::precondition("visit_serial", "is not a non-local visit"));
    };
    let inst = crate::rules::active_institution(tx, institution, today)?;
    if let Some(by) = &visit.settled_by {
        return Err(DomainError::precondition(
            "visit_serial",
            format!("visit {} is already settled by {by}", visit.serial),
        ));
    }
    if visit.lines.is_empty() {
        return Err(DomainError::precondition("visit_serial", "no fee lines were uploaded"));
    }
    let doctor_points = crate::rules::billing_doctor(tx, &visit.doctor, institution, today)?;
    crate::rules::disciplined(tx, &DisciplineSubject::Person(nl.person_key.clone()), today, "visit_serial")?;
    if nl.filing.is_none() {
        return Err(DomainError::precondition(
            "filing",
            format!(
                "no non-local filing of the insured province {} covers this stay; it must be filed before discharge",
                nl.insured
            ),
        ));
    }
    // This province's own rules on the visitor's claim, before anything is asked of the insured
    // province: a block refuses here, naming the rule; self-pay lines travel with the claim;
    // flags wait for the settlement.
    let checks = crate::monitoring::check_visitor(tx, &visit, &inst, doctor_points, today);
    crate::monitoring::blocked(&checks)?;
    let x = TreatmentTransfer {
        id: TransferId { treatment: nl.treatment.clone(), institution: institution.clone(), serial: serial.clone() },
        visit: visit.serial.clone(),
        insured: nl.insured.clone(),
        use_individual_account,
        digest: d,
        started_at: now,
        phase: TransferPhase::Reserving,
        checks,
    };
    visit.settled_by = Some(serial.clone());
    tx.store(&keys::visit(institution, &visit.serial), &visit);
    tx.store(&key, &x);
    tx.store(&keys::open_transfer(institution, serial), &());
    open(tx, x)
}
/// The outcome of an open transfer: with its claim, so the coordinator need not read it.
fn open(tx: &Tx<'_>, transfer: TreatmentTransfer) -> Result<Outcome, DomainError> {
    let (claim, nonlocal) = crate::treatment::remote_claim(
        tx,
        &transfer.id.institution,
        &transfer.visit,
        transfer.use_individual_account,
        &transfer.checks,
    )?;
    Ok(Outcome::TransferOpen(Box::new(OpenTransfer { transfer, claim, nonlocal })))
}
fn load_transfer(tx: &Tx<'_>, t: &TransferId) -> Result<TreatmentTransfer, DomainError> {
    tx.load(&keys::transfer(&t.institution, &t.serial))
        .ok_or_else(|| DomainError::not_found("transfer", format!("{t} is not a transfer of this province")))
}
/// Treatment province: records the insured province's reservation.
pub(crate) fn transfer_reserved(
    tx: &mut Tx<'_>,
    transfer: &TransferId,
    split: &medmesh_settlement::Split,
) -> Result<Outcome, DomainError> {
    let mut x = load_transfer(tx, transfer)?;
    if x.phase == TransferPhase::Reserving {
        x.phase = TransferPhase::Reserved(split.clone());
        tx.store(&keys::transfer(&transfer.institution, &transfer.serial), &x);
    }
    open(tx, x)
}
/// Treatment province: applies the federation's decision.
pub(crate) fn finish_transfer(
    tx: &mut Tx<'_>,
    transfer: &TransferId,
    decision: Decision,
    reason: &str,
    split: Option<&medmesh_settlement::Split>,
    now: LogTime,
) -> Result<Outcome, DomainError> {
    let mut x = load_transfer(tx, transfer)?;
    let (inst, serial) = (&transfer.institution, &transfer.serial);
    let idem = keys::idempotency(inst.as_str(), serial);
    if matches!(x.phase, TransferPhase::Done(_)) {
        return tx
            .load::<IdempotencyRecord>(&idem)
            .ok_or_else(|| DomainError::not_found("transfer", "finished transfer has no outcome"))?
            .answer(tx);
    }
    let vkey = keys::visit(inst, &x.visit);
    let mut visit: Visit = tx.load(&vkey).ok_or_else(|| DomainError::not_found("visit_serial", "the visit is gone"))?;
    let today = now.date();
    let outcome = match decision {
        Decision::Commit => {
            let split = match (&x.phase, split) {
                (TransferPhase::Reserved(s), _) | (_, Some(s)) => s.clone(),
                _ => return Err(DomainError::precondition("split", "commit without the insured province's split")),
            };
            let nl = visit
                .nonlocal
                .as_ref()
                .ok_or_else(|| DomainError::precondition("visit_serial", "not a non-local visit"))?;
            let (sealed, masked_id) = (nl.sealed_name.clone(), nl.masked_id.clone());
            let amount = split.fund_total() + split.individual_account;
            let s = Settlement {
                institution: inst.clone(),
                serial: serial.clone(),
                visit: x.visit.clone(),
                person: visit.person.clone(),
                person_sealed: sealed,
                kind: visit.kind,
                doctor: visit.doctor.clone(),
                diagnosis: visit.diagnosis.clone(),
                settled_at: now,
                settled_on: today,
                year: today.year(),
                split,
                status: SettlementStatus::Settled,
                insured: Some(x.insured.clone()),
                masked_id,
            };
            let pkey = keys::payable(inst);
            let mut pay: Payable = tx.load(&pkey).unwrap_or_default();
            pay.amount += amount;
            tx.store(&pkey, &pay);
            let mut f = fund(tx);
            f.nonlocal_receivable += amount;
            f.nonlocal_treated += 1;
            tx.store(keys::FUND, &f);
            tx.store(&keys::settlement(inst, serial), &s);
            tx.store(&keys::statement(inst, today, serial), &());
            crate::payment::count_settled(tx, inst, today, amount, Money::ZERO);
            crate::tally::settlement(tx, today, 1, inst, Some(&x.insured), amount, s.split.cash);
            crate::reconcile::index(tx, transfer, now);
            crate::monitoring::visitor_settled(tx, &x.checks, &visit, serial, now);
            Outcome::Settlement(s)
        }
        Decision::Abort => {
            if visit.settled_by.as_ref() == Some(serial) {
                visit.settled_by = None;
                tx.store(&vkey, &visit);
            }
            Outcome::NonLocalAborted { transfer: transfer.clone(), reason: reason.to_string() }
        }
    };
    x.phase = TransferPhase::Done(decision);
    tx.store(&keys::transfer(inst, serial), &x);
    tx.put_delete(&keys::open_transfer(inst, serial));
    tx.store(&idem, &IdempotencyRecord::new(x.digest.clone(), &outcome));
    Ok(outcome)
}
/// Treatment province: opens the reversal of a non-local settlement (the caller checked the
/// idempotency record and that the settlement is in force).
pub(crate) fn open_reversal(tx: &mut Tx<'_>, cmd: &ProvinceCommand, mut s: Settlement, serial: &Serial) -> Outcome {
    s.status = SettlementStatus::Reversing { by: serial.clone() };
    tx.store(&keys::settlement(&s.institution, &s.serial), &s);
    tx.store(&keys::reversal(&s.institution, serial), &(s.serial.clone(), digest(cmd)));
    tx.store(&keys::open_reversal(&s.institution, serial), &());
    Outcome::ReversalOpen(s)
}
/// Treatment province: completes a reversal.
pub(crate) fn finish_reversal(
    tx: &mut Tx<'_>,
    institution: &medmesh_types::InstitutionId,
    serial: &Serial,
    now: LogTime,
) -> Result<Outcome, DomainError> {
    let idem = keys::idempotency(institution.as_str(), serial);
    if let Some(r) = tx.load::<IdempotencyRecord>(&idem) {
        return r.answer(tx);
    }
    let (settlement, d): (Serial, String) = tx.load(&keys::reversal(institution, serial)).ok_or_else(|| {
        DomainError::not_found("serial", format!("no reversal {serial} of institution {institution}"))
    })?;
    let skey = keys::settlement(institution, &settlement);
    let mut s: Settlement = tx.load(&skey).ok_or_else(|| DomainError::not_found("settlement", "is gone"))?;
    let amount = s.split.fund_total() + s.split.individual_account;
    let pkey = keys::payable(institution);
    let mut pay: Payable = tx.load(&pkey).unwrap_or_default();
    pay.amount -= amount;
    tx.store(&pkey, &pay);
    let mut f = fund(tx);
    f.nonlocal_receivable -= amount;
    f.nonlocal_treated -= 1;
    tx.store(keys::FUND, &f);
    crate::payment::count_reversed(tx, institution, s.settled_on, now.date(), amount, Money::ZERO);
    crate::tally::settlement(tx, now.date(), -1, institution, s.insured.as_ref(), amount, s.split.cash);
    let vkey = keys::visit(institution, &s.visit);
    if let Some(mut v) = tx.load::<Visit>(&vkey) {
        v.settled_by = None;
        tx.store(&vkey, &v);
    }
    s.status = SettlementStatus::Reversed { by: serial.clone(), at: now };
    tx.store(&skey, &s);
    tx.put_delete(&keys::open_reversal(institution, serial));
    let outcome = Outcome::Settlement(s);
    tx.store(&idem, &IdempotencyRecord::new(d, &outcome));
    Ok(outcome)
}

/// The claim a non-local visit makes on the insured province, with the lines this province's
/// own rules (`checks`) moved to the patient's share.
pub(crate) fn remote_claim(
    kv: &dyn KvRead,
    institution: &InstitutionId,
    visit: &Serial,
    use_individual_account: bool,
    checks: &medmesh_monitor::Verdict,
) -> Result<(RemoteClaim, NonLocalVisit), DomainError> {
    let v: Visit = load(kv, &keys::visit(institution, visit)).ok_or_else(|| {
        DomainError::not_found("visit_serial", format!("visit {visit} of institution {institution} is not registered"))
    })?;
    let nl = v.nonlocal.clone().ok_or_else(|| DomainError::precondition("visit_serial", "is not a non-local visit"))?;
    let filing = nl.filing.ok_or_else(|| {
        DomainError::precondition(
            "filing",
            format!(
                "no non-local filing of the insured province {} covers this stay; it must be filed before discharge",
                nl.insured
            ),
        )
    })?;
    if v.lines.is_empty() {
        return Err(DomainError::precondition("visit_serial", "no fee lines were uploaded"));
    }
    let inst: Institution = load(kv, &keys::institution(institution)).ok_or_else(|| {
        DomainError::not_found("institution_id", format!("institution {institution} is not registered"))
    })?;
    let items = crate::monitoring::items_of(kv, &v);
    let rule_self_pay = crate::monitoring::self_pay(checks, &v);
    let claim = RemoteClaim {
        institution_level: inst.level,
        filing,
        use_individual_account,
        admitted: v.admitted,
        lines: v.lines,
        items,
        kind: v.kind,
        doctor: v.doctor,
        department: v.department,
        diagnosis: v.diagnosis,
        rule_self_pay,
    };
    Ok((claim, nl))
}
