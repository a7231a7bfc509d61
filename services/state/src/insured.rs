//! The insured province's part of non-local settlement: reserve a claim with this province's
//! policy and the person's accumulators, post or void it by the federation's decision, and give
//! a posted one back when the treatment province reverses it.

use medmesh_settlement::{settle, Accumulators, Claim, Patient, Policy, Split};
use medmesh_types::{KeyedHash, LogTime, Money, ProvinceCode};

use crate::kv::{keys, load, KvRead, Tx};
use crate::model::*;
use crate::rules::{fund, resolve_person, MAX_VISIT_LINES};
use crate::shared::*;
use crate::DomainError;

fn add_owed(tx: &mut Tx<'_>, treatment: &ProvinceCode, amount: Money) {
    let key = keys::owed(treatment);
    let owed: Money = tx.load(&key).unwrap_or(Money::ZERO);
    tx.store(&key, &(owed + amount));
}
/// Insured province, phase 1: settle with this province's policy and hold the result.
pub(crate) fn reserve(
    tx: &mut Tx<'_>,
    transfer: &TransferId,
    handle: &KeyedHash,
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
    let mut person = resolve_person(tx, CertificateKind::IdCard, handle)?;
    let (split, verdict, visit) = quote_remote(tx, &person, transfer, claim, now)?;
    let year = now.date().year();
    let akey = keys::accumulators(&person.key, year);
    let acc: Accumulators = tx.load(&akey).unwrap_or_default();
    let mut f = fund(tx);
    let holds = f.for_holds();
    if holds < split.fund_total() {
        return Err(DomainError::precondition(
            "amount",
            format!(
                "the pooling fund holds {holds} (with what it topped up its prepaid account by), less than the fund share {}",
                split.fund_total()
            ),
        ));
    }
    tx.store(&akey, &acc.apply(&split));
    person.account_balance -= split.individual_account;
    tx.store(&keys::person(&person.key), &person);
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
    tx.store(&keys::reservation_person(transfer), &person.key);
    tx.store(&keys::pending_reservation(transfer), &());
    // The person's care index holds the non-local stay from now on (the cross-regional rules
    // read it at the person's next claim, here or anywhere), and flags join the review queue.
    crate::monitoring::settled(tx, &verdict, &visit, &person.key, &transfer.serial, Some(&transfer.treatment), now);
    tx.store(
        &keys::reservation_care(transfer),
        &keys::care(&person.key, visit.admitted, &visit.institution, &visit.serial),
    );
    Ok(Outcome::Reservation(r))
}

/// The insured province's answer to a non-local claim of its insured: its monitoring rules run
/// over the claim with the person's whole history (a block refuses it, naming the rule), then
/// its policy and the person's accumulators give the split. `now` is the treatment's time.
pub(crate) fn quote_remote(
    kv: &dyn KvRead,
    person: &Person,
    transfer: &TransferId,
    claim: &RemoteClaim,
    now: LogTime,
) -> Result<(Split, medmesh_monitor::Verdict, Visit), DomainError> {
    let policy: Policy =
        load(kv, keys::POLICY).ok_or_else(|| DomainError::precondition("policy", "the province has no policy"))?;
    let today = now.date();
    let acc: Accumulators = load(kv, &keys::accumulators(&person.key, today.year())).unwrap_or_default();
    // The claim as the rules see it: a visit at the treating institution, over there.
    let visit = Visit {
        institution: transfer.institution.clone(),
        serial: transfer.serial.clone(),
        person: person.key.clone(),
        masked_id: person.masked_id.clone(),
        kind: claim.kind,
        doctor: claim.doctor.clone(),
        department: claim.department.clone(),
        diagnosis: claim.diagnosis.clone(),
        admitted: claim.admitted,
        lines: claim.lines.clone(),
        settled_by: None,
        nonlocal: None,
    };
    let institution = Institution {
        id: transfer.institution.clone(),
        name: String::new(),
        level: claim.institution_level,
        agreement_start: claim.admitted,
        agreement_end: today,
        suspended: false,
    };
    let doctor_points = crate::rules::qualification(kv, &claim.doctor, today).map(|q| q.year_points).unwrap_or(0);
    let ctx = crate::monitoring::ClaimContext {
        visit: &visit,
        person: Some(person),
        institution: &institution,
        items: &claim.items,
        doctor_points,
        today,
        place: Some(&transfer.treatment),
    };
    let verdict = crate::monitoring::check(kv, &ctx);
    crate::monitoring::blocked(&verdict)?;
    let age = claim.admitted.years_since(person.birth_date).max(0) as u32;
    // Medical assistance is paid at home: a non-local settlement's funds are the pool's only
    // (the person claims assistance for care elsewhere from this province's agency).
    let c = Claim {
        patient: Patient {
            sex: person.sex,
            age,
            insurance: person.insurance,
            account_balance: person.account_balance,
            medical_assistance: false,
        },
        institution_level: claim.institution_level,
        reduced_ratio: claim.filing.reduced_ratio(),
        use_individual_account: claim.use_individual_account,
        lines: claim.lines.clone(),
        rule_self_pay: {
            // The insured province's own findings first, then the treatment province's.
            let mut lines = crate::monitoring::self_pay(&verdict, &visit);
            for (line, rule) in &claim.rule_self_pay {
                lines.entry(line.clone()).or_insert_with(|| rule.clone());
            }
            lines
        },
        assistance_fund: Money::ZERO,
    };
    let split = settle(&c, |code| claim.items.iter().find(|i| &i.code == code), &policy, &acc)
        .map_err(|e| crate::error::settle_error("claim.", e))?;
    Ok((split, verdict, visit))
}
/// Gives back what a reservation holds of the person: accumulators and account.
fn give_back(tx: &mut Tx<'_>, r: &Reservation) {
    // The stay leaves the person's care index.
    if let Some(care) = tx.load::<String>(&keys::reservation_care(&r.transfer)) {
        tx.put_delete(&care);
        tx.put_delete(&keys::reservation_care(&r.transfer));
    }
    let Some(split) = &r.split else { return };
    if let Some(id) = tx.load::<KeyedHash>(&keys::reservation_person(&r.transfer)) {
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
            crate::payment::add_fund_month(tx, now.date(), pooled(&r));
            f.nonlocal_settlements += 1;
            f.nonlocal_owed += r.amount();
            add_owed(tx, &transfer.treatment, r.amount());
            crate::reconcile::index(tx, transfer, now);
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

/// What the pool spent on a reservation's care (pooling and critical illness, as for local
/// care): its month's expenditure counts it, through the prepaid account that paid.
fn pooled(r: &Reservation) -> Money {
    r.split.as_ref().map(|s| s.pooling_fund + s.critical_illness).unwrap_or(Money::ZERO)
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
    crate::payment::add_fund_month(tx, now.date(), Money::ZERO - pooled(&r));
    f.nonlocal_settlements -= 1;
    f.nonlocal_owed -= r.amount();
    add_owed(tx, &transfer.treatment, Money::ZERO - r.amount());
    give_back(tx, &r);
    tx.store(keys::FUND, &f);
    r.status = ReservationStatus::Reversed;
    tx.store(&key, &r);
    Ok(Outcome::Reservation(r))
}
