//! Deterministic apply of non-local (cross-province) commands.
//!
//! A non-local settlement is a two-phase transfer between three Raft groups, each step one
//! idempotent command:
//!
//! | step | group | command |
//! |---|---|---|
//! | open | treatment | [`Command::Settle`] on a non-local visit → [`TreatmentTransfer`] |
//! | reserve | insured | [`Command::Reserve`]: settle with the insured policy, hold fund, accumulators, account |
//! | record | treatment | [`Command::TransferReserved`] |
//! | decide | federation | [`Command::FedDecide`]: first writer wins |
//! | post / void | insured | [`Command::ResolveReservation`] |
//! | finish | treatment | [`Command::FinishTransfer`]: the settlement, or the serial spent on abort |
//!
//! A reversal is the same shape without a vote: open at the treatment province
//! ([`Command::Reverse`]), [`Command::FedReverse`], [`Command::UnpostReservation`],
//! [`Command::FinishReversal`].

use medmesh_settlement::{settle, Accumulators, Claim, Patient, Policy};
use medmesh_types::{LogTime, Money, PersonId, ProvinceCode, Serial};

use crate::apply::{check_visit, digest, idempotent, resolve_person, MAX_VISIT_LINES};
use crate::kv::{decode, keys, scan_prefix, KvRead, Tx};
use crate::model::*;
use crate::shared::*;
use crate::DomainError;

fn fund(tx: &Tx<'_>) -> FundLedger {
    tx.load(keys::FUND).unwrap_or_default()
}

fn add_owed(tx: &mut Tx<'_>, treatment: &ProvinceCode, amount: Money) {
    let key = keys::owed(treatment);
    let owed: Money = tx.load(&key).unwrap_or(Money::ZERO);
    tx.store(&key, &(owed + amount));
}

/// Treatment province: registers a visit of a person insured elsewhere.
pub(crate) fn register_nonlocal_visit(
    tx: &mut Tx<'_>,
    request: &Command,
    nonlocal: &NonLocalVisit,
    now: LogTime,
) -> Result<Outcome, DomainError> {
    let Command::RegisterVisit {
        institution,
        serial,
        certificate_kind,
        certificate,
        kind,
        doctor,
        department,
        diagnosis,
        admitted,
    } = request
    else {
        return Err(DomainError::invalid("request", "must be a visit registration"));
    };
    if nonlocal.certificate_kind != *certificate_kind || &nonlocal.certificate != certificate {
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
        let person = PersonId::new(nonlocal.person_key.clone())
            .map_err(|e| DomainError::invalid("person_key", e.to_string()))?;
        let visit = Visit {
            institution: institution.clone(),
            serial: serial.clone(),
            person,
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
    cmd: &Command,
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
    let today = now.date();
    let Some(nl) = visit.nonlocal.clone() else {
        return Err(DomainError::precondition("visit_serial", "is not a non-local visit"));
    };
    crate::apply::active_institution(tx, institution, today)?;
    if let Some(by) = &visit.settled_by {
        return Err(DomainError::precondition(
            "visit_serial",
            format!("visit {} is already settled by {by}", visit.serial),
        ));
    }
    if visit.lines.is_empty() {
        return Err(DomainError::precondition("visit_serial", "no fee lines were uploaded"));
    }
    crate::apply::billing_doctor(tx, &visit.doctor, institution, today)?;
    crate::apply::disciplined(tx, &DisciplineSubject::Person(nl.person_key.clone()), today, "visit_serial")?;
    if nl.filing.is_none() {
        return Err(DomainError::precondition(
            "filing",
            format!(
                "no non-local filing of the insured province {} covers this stay; it must be filed before discharge",
                nl.insured
            ),
        ));
    }
    let x = TreatmentTransfer {
        id: TransferId { treatment: nl.treatment.clone(), institution: institution.clone(), serial: serial.clone() },
        visit: visit.serial.clone(),
        insured: nl.insured.clone(),
        use_individual_account,
        digest: d,
        started_at: now,
        phase: TransferPhase::Reserving,
    };
    visit.settled_by = Some(serial.clone());
    tx.store(&keys::visit(institution, &visit.serial), &visit);
    tx.store(&key, &x);
    tx.store(&keys::open_transfer(institution, serial), &());
    open(tx, x)
}

/// The outcome of an open transfer: with its claim, so the coordinator need not read it.
fn open(tx: &Tx<'_>, transfer: TreatmentTransfer) -> Result<Outcome, DomainError> {
    let (claim, nonlocal) =
        crate::query::remote_claim(tx, &transfer.id.institution, &transfer.visit, transfer.use_individual_account)?;
    Ok(Outcome::TransferOpen(Box::new(OpenTransfer { transfer, claim, nonlocal })))
}

/// Insured province, phase 1: settle with this province's policy and hold the result.
pub(crate) fn reserve(
    tx: &mut Tx<'_>,
    transfer: &TransferId,
    kind: CertificateKind,
    certificate: &str,
    claim: &RemoteClaim,
    now: LogTime,
) -> Result<Outcome, DomainError> {
    let key = keys::reservation(transfer);
    if let Some(r) = tx.load::<Reservation>(&key) {
        return Ok(Outcome::Reservation(r));
    }
    if claim.lines.is_empty() || claim.lines.len() > MAX_VISIT_LINES {
        return Err(DomainError::invalid("claim.lines", format!("1 to {MAX_VISIT_LINES} lines")));
    }
    if claim.items.len() > claim.lines.len() {
        return Err(DomainError::invalid("claim.items", "more catalogue entries than lines"));
    }
    if !(1..=3).contains(&claim.institution_level) {
        return Err(DomainError::invalid("claim.institution_level", "must be 1, 2 or 3"));
    }
    let mut person = resolve_person(tx, kind, certificate)?;
    let policy: Policy =
        tx.load(keys::POLICY).ok_or_else(|| DomainError::precondition("policy", "the province has no policy"))?;
    let year = now.date().year();
    let akey = keys::accumulators(&person.id, year);
    let acc: Accumulators = tx.load(&akey).unwrap_or_default();
    let age = claim.admitted.years_since(person.birth_date).max(0) as u32;
    let c = Claim {
        patient: Patient { sex: person.sex, age, insurance: person.insurance, account_balance: person.account_balance },
        institution_level: claim.institution_level,
        reduced_ratio: claim.filing.reduced_ratio(),
        use_individual_account: claim.use_individual_account,
        lines: claim.lines.clone(),
    };
    let split = settle(&c, |code| claim.items.iter().find(|i| &i.code == code), &policy, &acc)
        .map_err(|e| crate::error::settle_error("claim.", e))?;
    let mut f = fund(tx);
    if f.balance() < split.fund_total() {
        return Err(DomainError::precondition(
            "amount",
            format!("the pooling fund holds {}, less than the fund share {}", f.balance(), split.fund_total()),
        ));
    }
    tx.store(&akey, &acc.apply(&split));
    person.account_balance -= split.individual_account;
    tx.store(&keys::person(&person.id), &person);
    // The account part is held in the reservation (and owed on post), not in `accounts_paid`,
    // which counts what this province's institutions are owed from accounts.
    f.nonlocal_reserved += split.fund_total();
    tx.store(keys::FUND, &f);
    let r = Reservation {
        transfer: transfer.clone(),
        year,
        split: Some(split),
        reserved_at: now,
        status: ReservationStatus::Pending,
    };
    tx.store(&key, &r);
    tx.store(&keys::reservation_person(transfer), &person.id);
    tx.store(&keys::pending_reservation(transfer), &());
    Ok(Outcome::Reservation(r))
}

/// Gives back what a reservation holds of the person: accumulators and account.
fn give_back(tx: &mut Tx<'_>, r: &Reservation) {
    let Some(split) = &r.split else { return };
    if let Some(id) = tx.load::<PersonId>(&keys::reservation_person(&r.transfer)) {
        let akey = keys::accumulators(&id, r.year);
        let acc: Accumulators = tx.load(&akey).unwrap_or_default();
        tx.store(&akey, &acc.reverse(split));
        let pk = keys::person(&id);
        if let Some(mut p) = tx.load::<Person>(&pk) {
            p.account_balance += split.individual_account;
            tx.store(&pk, &p);
        }
    }
}

/// Insured province, phase 2: post or void by the recorded decision.
pub(crate) fn resolve_reservation(
    tx: &mut Tx<'_>,
    transfer: &TransferId,
    decision: Decision,
    now: LogTime,
) -> Result<Outcome, DomainError> {
    let key = keys::reservation(transfer);
    let Some(mut r) = tx.load::<Reservation>(&key) else {
        return match decision {
            // A void that overtook its reserve: remember it, so the late reserve is refused.
            Decision::Abort => {
                let r = Reservation {
                    transfer: transfer.clone(),
                    year: now.date().year(),
                    split: None,
                    reserved_at: now,
                    status: ReservationStatus::Voided,
                };
                tx.store(&key, &r);
                Ok(Outcome::Reservation(r))
            }
            Decision::Commit => Err(DomainError::precondition("transfer", format!("{transfer} has no reservation"))),
        };
    };
    if r.status != ReservationStatus::Pending {
        return Ok(Outcome::Reservation(r));
    }
    let mut f = fund(tx);
    let fund_share = r.split.as_ref().map(|s| s.fund_total()).unwrap_or(Money::ZERO);
    f.nonlocal_reserved -= fund_share;
    match decision {
        Decision::Commit => {
            // The prepaid account pays the treatment province (the federation charged it on
            // commit): the pool's hold comes back, with the account part taken from the person.
            let account = r.split.as_ref().map(|s| s.individual_account).unwrap_or(Money::ZERO);
            f.nonlocal_paid += fund_share;
            f.nonlocal_accounts_in += account;
            f.nonlocal_settlements += 1;
            f.nonlocal_owed += r.amount();
            add_owed(tx, &transfer.treatment, r.amount());
            r.status = ReservationStatus::Posted;
        }
        Decision::Abort => {
            give_back(tx, &r);
            r.status = ReservationStatus::Voided;
        }
    }
    tx.store(keys::FUND, &f);
    tx.store(&key, &r);
    tx.put_delete(&keys::pending_reservation(transfer));
    Ok(Outcome::Reservation(r))
}

/// Insured province: gives back a posted reservation whose settlement was reversed. It is sent
/// only after the federation recorded the reversal of a committed transfer, so a reservation
/// still pending (its post deferred) is posted first.
pub(crate) fn unpost_reservation(tx: &mut Tx<'_>, transfer: &TransferId, now: LogTime) -> Result<Outcome, DomainError> {
    let key = keys::reservation(transfer);
    let status = tx
        .load::<Reservation>(&key)
        .map(|r| r.status)
        .ok_or_else(|| DomainError::not_found("transfer", format!("{transfer} has no reservation here")))?;
    if status == ReservationStatus::Pending {
        resolve_reservation(tx, transfer, Decision::Commit, now)?;
    }
    let mut r: Reservation = tx.load(&key).ok_or_else(|| DomainError::not_found("transfer", "reservation is gone"))?;
    match r.status {
        ReservationStatus::Reversed => return Ok(Outcome::Reservation(r)),
        ReservationStatus::Posted => {}
        _ => return Err(DomainError::precondition("transfer", format!("{transfer} was voided, not committed"))),
    }
    let mut f = fund(tx);
    let fund_share = r.split.as_ref().map(|s| s.fund_total()).unwrap_or(Money::ZERO);
    let account = r.split.as_ref().map(|s| s.individual_account).unwrap_or(Money::ZERO);
    f.nonlocal_paid -= fund_share;
    f.nonlocal_accounts_in -= account;
    f.nonlocal_settlements -= 1;
    f.nonlocal_owed -= r.amount();
    add_owed(tx, &transfer.treatment, Money::ZERO - r.amount());
    give_back(tx, &r);
    tx.store(keys::FUND, &f);
    r.status = ReservationStatus::Reversed;
    tx.store(&key, &r);
    Ok(Outcome::Reservation(r))
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
            .map(|r| r.outcome)
            .ok_or_else(|| DomainError::not_found("transfer", "finished transfer has no outcome"));
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
            let (name, masked_id) =
                visit.nonlocal.as_ref().map(|n| (n.name.clone(), n.masked_id.clone())).unwrap_or_default();
            let amount = split.fund_total() + split.individual_account;
            let s = Settlement {
                institution: inst.clone(),
                serial: serial.clone(),
                visit: x.visit.clone(),
                person: visit.person.clone(),
                person_name: name,
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
    tx.store(&idem, &IdempotencyRecord { digest: x.digest.clone(), outcome: outcome.clone() });
    Ok(outcome)
}

/// Treatment province: opens the reversal of a non-local settlement (the caller checked the
/// idempotency record and that the settlement is in force).
pub(crate) fn open_reversal(tx: &mut Tx<'_>, cmd: &Command, mut s: Settlement, serial: &Serial) -> Outcome {
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
        return Ok(r.outcome);
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
    let vkey = keys::visit(institution, &s.visit);
    if let Some(mut v) = tx.load::<Visit>(&vkey) {
        v.settled_by = None;
        tx.store(&vkey, &v);
    }
    s.status = SettlementStatus::Reversed { by: serial.clone(), at: now };
    tx.store(&skey, &s);
    tx.put_delete(&keys::open_reversal(institution, serial));
    let outcome = Outcome::Settlement(s);
    tx.store(&idem, &IdempotencyRecord { digest: d, outcome: outcome.clone() });
    Ok(outcome)
}

/// Province: copies the federation's shared log.
pub(crate) fn sync_shared(tx: &mut Tx<'_>, items: &[(u64, SharedItem)]) -> Result<Outcome, DomainError> {
    let mut cursor: u64 = tx.load(keys::SHARED_CURSOR).unwrap_or(0);
    for (seq, item) in items {
        if *seq <= cursor {
            continue;
        }
        match item {
            SharedItem::Violation(v) => {
                let key = keys::violation(&v.personnel, &v.id);
                if tx.load::<medmesh_supervision::Violation>(&key).is_none() && v.validate().is_ok() {
                    tx.store(&key, v);
                }
            }
            SharedItem::Discipline(e) => {
                let key = keys::discipline(&e.subject, &e.id);
                if tx.load::<DisciplineEntry>(&key).is_none() && check_discipline(e).is_ok() {
                    put_discipline(tx, e);
                }
            }
        }
        cursor = *seq;
    }
    tx.store(keys::SHARED_CURSOR, &cursor);
    Ok(Outcome::Synced { cursor })
}

/// Checks a joint-discipline entry's fields.
pub(crate) fn check_discipline(e: &DisciplineEntry) -> Result<(), DomainError> {
    if e.id.is_empty() || e.id.len() > 128 || e.id.chars().any(|c| c == '/' || c.is_control()) {
        return Err(DomainError::invalid("id", "must be 1 to 128 characters without '/'"));
    }
    if let DisciplineSubject::Person(k) = &e.subject {
        if !is_directory_key(k) {
            return Err(DomainError::invalid("certificate", "is not a directory key"));
        }
    }
    if e.until < e.from {
        return Err(DomainError::invalid("until", format!("{} is before from {}", e.until, e.from)));
    }
    if e.reason.trim().is_empty() || e.reason.len() > 256 {
        return Err(DomainError::invalid("reason", "must be 1 to 256 bytes"));
    }
    province("province", &e.province)
}

fn store_discipline(tx: &mut Tx<'_>, e: &DisciplineEntry) -> Result<bool, DomainError> {
    check_discipline(e)?;
    let key = keys::discipline(&e.subject, &e.id);
    match tx.load::<DisciplineEntry>(&key) {
        Some(old) if &old == e => Ok(false),
        Some(_) => {
            Err(DomainError::exists("id", format!("entry {} was already recorded with different content", e.id)))
        }
        None => {
            put_discipline(tx, e);
            Ok(true)
        }
    }
}

/// Stores a new joint-discipline entry and its index by last day in force.
fn put_discipline(tx: &mut Tx<'_>, e: &DisciplineEntry) {
    tx.store(&keys::discipline(&e.subject, &e.id), e);
    tx.store(&keys::discipline_until(&e.subject, e.until, &e.id), &e.id);
}

/// Province: records a joint-discipline entry at once.
pub(crate) fn record_discipline(tx: &mut Tx<'_>, e: &DisciplineEntry) -> Result<Outcome, DomainError> {
    store_discipline(tx, e)?;
    Ok(Outcome::Stored)
}

// ---------------------------------------------------------------------------------------------
// The federation group.

fn province(field: &str, p: &ProvinceCode) -> Result<(), DomainError> {
    if p.as_str() == FEDERATION {
        return Err(DomainError::invalid(field, "is the federation's code, not a province"));
    }
    Ok(())
}

/// Federation: registers a province's endpoints.
pub(crate) fn fed_register_province(tx: &mut Tx<'_>, e: &ProvinceEntry) -> Result<Outcome, DomainError> {
    province("province", &e.province)?;
    if e.endpoints.is_empty() || e.endpoints.len() > 16 {
        return Err(DomainError::invalid("endpoints", "1 to 16 endpoints"));
    }
    for (i, a) in e.endpoints.iter().enumerate() {
        if a.is_empty() || a.len() > 128 || !a.contains(':') {
            return Err(DomainError::invalid(format!("endpoints[{i}]"), "must be host:port"));
        }
    }
    tx.store(&keys::fed_province(&e.province), e);
    Ok(Outcome::Stored)
}

/// Federation: directory entries.
pub(crate) fn fed_directory(tx: &mut Tx<'_>, entries: &[(String, ProvinceCode)]) -> Result<Outcome, DomainError> {
    if entries.len() > 1_000 {
        return Err(DomainError::too_large("entries", "at most 1000 entries per command"));
    }
    for (i, (k, p)) in entries.iter().enumerate() {
        if !is_directory_key(k) {
            return Err(DomainError::invalid(format!("entries[{i}].key"), "is not a directory key"));
        }
        province(&format!("entries[{i}].province"), p)?;
    }
    for (k, p) in entries {
        tx.store(&keys::fed_directory(k), p);
    }
    Ok(Outcome::Stored)
}

/// Federation: a filing.
pub(crate) fn fed_file(tx: &mut Tx<'_>, f: &Filing) -> Result<Outcome, DomainError> {
    province("insured", &f.insured)?;
    province("treatment", &f.treatment)?;
    if f.insured == f.treatment {
        return Err(DomainError::invalid("treatment_province", "is the insured province: care there is local"));
    }
    if !is_directory_key(&f.person_key) {
        return Err(DomainError::invalid("person_key", "is not a directory key"));
    }
    if f.end < f.start {
        return Err(DomainError::invalid("end", format!("{} is before start {}", f.end, f.start)));
    }
    let idk = keys::fed_filing_id(&f.insured, &f.id);
    match tx.load::<Filing>(&idk) {
        Some(old) if &old == f => return Ok(Outcome::Stored),
        Some(_) => {
            return Err(DomainError::exists(
                "id",
                format!("filing {} was already recorded with different content", f.id),
            ))
        }
        None => {}
    }
    tx.store(&idk, f);
    tx.store(&keys::fed_filing(&f.person_key, &f.treatment, &f.insured, &f.id), f);
    Ok(Outcome::Stored)
}

/// Federation: records a decision unless one exists.
pub(crate) fn fed_decide(
    tx: &mut Tx<'_>,
    transfer: &TransferId,
    insured: &ProvinceCode,
    amount: Money,
    decision: Decision,
    reason: &str,
    now: LogTime,
) -> Result<Outcome, DomainError> {
    let key = keys::fed_decision(transfer);
    if let Some(r) = tx.load::<DecisionRecord>(&key) {
        return Ok(Outcome::Decided(r));
    }
    province("insured", insured)?;
    if amount.is_negative() {
        return Err(DomainError::invalid("amount", "must not be negative"));
    }
    let rec = DecisionRecord {
        transfer: transfer.clone(),
        insured: insured.clone(),
        amount,
        decision,
        reason: reason.chars().take(256).collect(),
        decided_at: now,
        reversed: None,
    };
    if decision == Decision::Commit {
        let pkey = keys::fed_position(insured, &transfer.treatment);
        let mut p: Position = tx.load(&pkey).unwrap_or_default();
        p.settlements += 1;
        p.amount += amount;
        tx.store(&pkey, &p);
    }
    tx.store(&key, &rec);
    Ok(Outcome::Decided(rec))
}

/// Federation: records the reversal of a committed transfer.
pub(crate) fn fed_reverse(tx: &mut Tx<'_>, transfer: &TransferId, reversal: &Serial) -> Result<Outcome, DomainError> {
    let key = keys::fed_decision(transfer);
    let mut rec: DecisionRecord =
        tx.load(&key).ok_or_else(|| DomainError::not_found("transfer", format!("{transfer} has no decision")))?;
    if rec.decision != Decision::Commit {
        return Err(DomainError::precondition("transfer", format!("{transfer} was aborted")));
    }
    match &rec.reversed {
        Some(by) if by == reversal => return Ok(Outcome::Decided(rec)),
        Some(by) => return Err(DomainError::precondition("settlement", format!("already reversed by {by}"))),
        None => {}
    }
    let pkey = keys::fed_position(&rec.insured, &transfer.treatment);
    let mut p: Position = tx.load(&pkey).unwrap_or_default();
    p.settlements -= 1;
    p.amount -= rec.amount;
    tx.store(&pkey, &p);
    rec.reversed = Some(reversal.clone());
    tx.store(&key, &rec);
    Ok(Outcome::Decided(rec))
}

/// Federation: appends a violation to the shared log (once per person and id).
pub(crate) fn fed_record_violation(
    tx: &mut Tx<'_>,
    v: &medmesh_supervision::Violation,
) -> Result<Outcome, DomainError> {
    crate::apply::check_violation(v, None)?;
    let key = keys::violation(&v.personnel, &v.id);
    match tx.load::<medmesh_supervision::Violation>(&key) {
        Some(old) if &old == v => return Ok(Outcome::Stored),
        Some(_) => {
            return Err(DomainError::exists(
                "id",
                format!("violation {} was already recorded with different content", v.id),
            ))
        }
        None => {}
    }
    append_shared(tx, SharedItem::Violation(v.clone()));
    tx.store(&key, v);
    Ok(Outcome::Stored)
}

fn append_shared(tx: &mut Tx<'_>, item: SharedItem) {
    let seq: u64 = tx.load(keys::FED_SHARED_SEQ).unwrap_or(0) + 1;
    tx.store(keys::FED_SHARED_SEQ, &seq);
    tx.store(&keys::fed_shared(seq), &item);
}

/// Federation: appends a joint-discipline entry to the shared log (once per subject and id).
pub(crate) fn fed_record_discipline(tx: &mut Tx<'_>, e: &DisciplineEntry) -> Result<Outcome, DomainError> {
    if store_discipline(tx, e)? {
        append_shared(tx, SharedItem::Discipline(e.clone()));
    }
    Ok(Outcome::Stored)
}

/// Every `(insured, treatment, position)` the federation holds, in key order.
pub(crate) fn positions(kv: &dyn KvRead) -> Vec<(ProvinceCode, ProvinceCode, Position)> {
    scan_prefix(kv, keys::FED_POSITIONS, usize::MAX)
        .into_iter()
        .filter_map(|(k, v)| {
            let k = String::from_utf8_lossy(&k).to_string();
            let mut parts = k.split('/').skip(1);
            let insured = ProvinceCode::new(parts.next()?).ok()?;
            let treatment = ProvinceCode::new(parts.next()?).ok()?;
            Some((insured, treatment, decode::<Position>(&v)))
        })
        .collect()
}
