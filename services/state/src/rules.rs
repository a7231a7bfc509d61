//! The province's rules that read state, shared by the commands of every role and by queries:
//! idempotency, who may bill, who is insured, what a visit would settle to, and the checks of
//! records that cross between groups. Nothing here writes except [`idempotent`]'s record.

use sha2::{Digest, Sha256};

use medmesh_settlement::{settle, Accumulators, Claim, Patient, Policy};
use medmesh_types::{Date, KeyedHash, LogTime, ProvinceCode, Serial};

use crate::kv::encode;
use crate::kv::{keys, load, KvRead, Tx};
use crate::model::*;
use crate::shared::*;
use crate::DomainError;

/// Most fee lines on one visit.
pub const MAX_VISIT_LINES: usize = 2_000;
/// Oldest admission accepted, in days before the entry's date.
pub const MAX_ADMISSION_AGE_DAYS: i32 = 366;

pub(crate) fn digest(cmd: &ProvinceCommand) -> String {
    hex::encode(Sha256::digest(encode(cmd)))
}
/// Idempotent commands: returns the stored outcome for a retry, rejects a reused serial.
pub(crate) fn idempotent(
    tx: &mut Tx<'_>,
    scope: &str,
    serial: &Serial,
    cmd: &ProvinceCommand,
    run: impl FnOnce(&mut Tx<'_>) -> Result<Outcome, DomainError>,
) -> Result<Outcome, DomainError> {
    let key = keys::idempotency(scope, serial);
    let d = digest(cmd);
    if let Some(rec) = tx.load::<IdempotencyRecord>(&key) {
        if rec.digest == d {
            return rec.answer(tx);
        }
        return Err(DomainError::exists(
            "serial",
            format!("serial {serial} was already used by a different request of institution {scope}"),
        ));
    }
    serial_free(tx, scope, serial)?;
    let outcome = run(tx)?;
    tx.store(&key, &IdempotencyRecord::new(d, &outcome));
    Ok(outcome)
}

/// Refuses a serial of an institution that names a non-local settlement or reversal under way:
/// its idempotency record is written only when it finishes, so no other request may take the
/// serial meanwhile (ALREADY_EXISTS naming serial).
pub(crate) fn serial_free(kv: &dyn KvRead, scope: &str, serial: &Serial) -> Result<(), DomainError> {
    let Ok(inst) = medmesh_types::InstitutionId::new(scope.to_string()) else { return Ok(()) };
    if kv.get(keys::transfer(&inst, serial).as_bytes()).is_some()
        || kv.get(keys::reversal(&inst, serial).as_bytes()).is_some()
    {
        return Err(DomainError::exists(
            "serial",
            format!("serial {serial} is taken by a non-local settlement or reversal of institution {scope} under way"),
        ));
    }
    Ok(())
}

pub(crate) fn fund(tx: &Tx<'_>) -> FundLedger {
    tx.load(keys::FUND).unwrap_or_default()
}
pub(crate) fn province(field: &str, p: &ProvinceCode) -> Result<(), DomainError> {
    if p.as_str() == FEDERATION {
        return Err(DomainError::invalid(field, "is the federation's code, not a province"));
    }
    Ok(())
}

/// Checks a violation's fields; `today` (when given) bounds the decision date.
pub(crate) fn check_violation(v: &medmesh_supervision::Violation, today: Option<Date>) -> Result<(), DomainError> {
    v.validate().map_err(|e| {
        let field = if matches!(e, medmesh_supervision::SupervisionError::BadId { .. }) { "id" } else { "points" };
        DomainError::invalid(field, e.to_string())
    })?;
    if let Some(today) = today {
        if v.decided_on > today {
            return Err(DomainError::invalid("decided_on", format!("{} is after today ({today})", v.decided_on)));
        }
    }
    Ok(())
}
/// Checks what a visit registration needs of the institution, the doctor and the text fields.
pub(crate) fn check_visit(
    kv: &dyn KvRead,
    institution: &medmesh_types::InstitutionId,
    doctor: &medmesh_types::PersonnelCode,
    admitted: Date,
    today: Date,
) -> Result<(), DomainError> {
    if admitted > today {
        return Err(DomainError::invalid("admitted", format!("{admitted} is after today ({today})")));
    }
    if admitted < today.plus_days(-MAX_ADMISSION_AGE_DAYS) {
        return Err(DomainError::invalid("admitted", format!("{admitted} is more than a year ago")));
    }
    active_institution(kv, institution, today)?;
    billing_doctor(kv, doctor, institution, today)?;
    Ok(())
}
pub(crate) fn active_institution(
    kv: &dyn KvRead,
    id: &medmesh_types::InstitutionId,
    today: Date,
) -> Result<Institution, DomainError> {
    let inst: Institution = load(kv, &keys::institution(id))
        .ok_or_else(|| DomainError::not_found("institution_id", format!("institution {id} is not registered")))?;
    if !inst.agreement_covers(today) {
        return Err(DomainError::precondition(
            "institution_id",
            format!("institution {id} has no designated-service agreement in force on {today}"),
        ));
    }
    if let Some(h) = load::<AgreementHold>(kv, &keys::agreement_hold(id)).filter(|h| h.holds(today)) {
        let how = h.until.map_or_else(|| "ended".to_string(), |u| format!("suspended through {u}"));
        return Err(DomainError::precondition(
            "institution_id",
            format!("institution {id}'s agreement was {how} by case {}", h.case_id),
        ));
    }
    disciplined(kv, &crate::shared::DisciplineSubject::Institution(id.clone()), today, "institution_id")?;
    Ok(inst)
}
/// Refuses a subject with a joint-discipline entry in force on `today`, naming `field`.
pub fn disciplined(
    kv: &dyn KvRead,
    subject: &crate::shared::DisciplineSubject,
    today: Date,
    field: &str,
) -> Result<(), DomainError> {
    // Only entries whose last day is today or later can be in force: start the index there.
    let prefix = keys::disciplines_until(subject);
    let mut end = prefix.clone().into_bytes();
    if let Some(last) = end.last_mut() {
        *last += 1;
    }
    let start = format!("{prefix}{today}");
    for (_, id) in kv.scan(start.as_bytes(), &end, usize::MAX) {
        let id: String = crate::kv::decode(&id);
        let Some(e) = load::<crate::shared::DisciplineEntry>(kv, &keys::discipline(subject, &id)) else {
            continue;
        };
        // An entry in force is refused unless lifted: the lift is read only then (settlement
        // checks every institution here, and few have an entry at all).
        if e.in_force(today) && e.in_force_unless(load(kv, &keys::discipline_lift(subject, &id)).as_ref(), today) {
            return Err(DomainError::precondition(
                field,
                format!(
                    "on the joint-discipline list until {} (entry {} of {}: {})",
                    e.until, e.id, e.province, e.reason
                ),
            ));
        }
    }
    Ok(())
}
/// Checks that personnel may bill for the institution today; answers their points this year
/// (which the monitoring rules read).
pub(crate) fn billing_doctor(
    kv: &dyn KvRead,
    code: &medmesh_types::PersonnelCode,
    institution: &medmesh_types::InstitutionId,
    today: Date,
) -> Result<u32, DomainError> {
    let p: Personnel = load(kv, &keys::personnel(code))
        .ok_or_else(|| DomainError::not_found("doctor_code", format!("personnel {code} is not registered")))?;
    if &p.institution != institution {
        return Err(DomainError::precondition(
            "doctor_code",
            format!("personnel {code} is not registered with institution {institution}"),
        ));
    }
    if !p.may_bill(today) {
        return Err(DomainError::precondition(
            "doctor_code",
            format!("personnel {code} has no payment qualification ({:?})", p.status),
        ));
    }
    let q = qualification(kv, code, today)?;
    if !q.may_bill(today) {
        let why = match q.state {
            medmesh_supervision::QualificationState::Suspended { until, .. } => format!("suspended until {until}"),
            medmesh_supervision::QualificationState::Terminated { since, .. } => format!("terminated on {since}"),
            medmesh_supervision::QualificationState::Active => "inactive".to_string(),
        };
        return Err(DomainError::precondition(
            "doctor_code",
            format!("payment qualification of personnel {code} is {why} ({} points in {})", q.year_points, q.year),
        ));
    }
    Ok(q.year_points)
}
/// The payment qualification of personnel from the violations recorded for them.
pub(crate) fn qualification(
    kv: &dyn KvRead,
    code: &medmesh_types::PersonnelCode,
    today: Date,
) -> Result<medmesh_supervision::QualificationView, DomainError> {
    let prefix = keys::violations(code);
    let mut end = prefix.clone().into_bytes();
    if let Some(last) = end.last_mut() {
        *last += 1;
    }
    let history: Vec<medmesh_supervision::Violation> =
        kv.scan(prefix.as_bytes(), &end, usize::MAX).iter().map(|(_, v)| crate::kv::decode(v)).collect();
    medmesh_supervision::status(&history, today).map_err(|e| DomainError::invalid("violations", e.to_string()))
}
pub(crate) fn resolve_person(kv: &dyn KvRead, kind: CertificateKind, key: &KeyedHash) -> Result<Person, DomainError> {
    let p = find_person(kv, kind, key)?;
    require_active(&p)?;
    Ok(p)
}
/// Refuses a person whose insurance is not in force (FAILED_PRECONDITION on `certificate`).
pub fn require_active(p: &Person) -> Result<(), DomainError> {
    if p.status != InsuranceStatus::Active {
        return Err(DomainError::precondition(
            "certificate",
            format!("insurance of {} is not active ({:?})", p.masked_id, p.status),
        ));
    }
    Ok(())
}
/// The register entry of the holder of a certificate (by the keyed hash of its number),
/// whatever its insurance status. An identity card's hash is the record's own key; the other
/// certificates go through the certificate index.
pub fn find_person(kv: &dyn KvRead, kind: CertificateKind, key: &KeyedHash) -> Result<Person, DomainError> {
    let not_found = || DomainError::not_found("certificate", "no insured person holds this certificate");
    let id = match kind {
        CertificateKind::IdCard => key.clone(),
        _ => load::<KeyedHash>(kv, &keys::cert(kind.key(), key)).ok_or_else(not_found)?,
    };
    load(kv, &keys::person(&id)).ok_or_else(not_found)
}
/// Computes the split of an open visit without changing anything (pre-settlement, and the
/// first half of settlement).
pub(crate) fn quote(
    kv: &dyn KvRead,
    institution: &medmesh_types::InstitutionId,
    visit: &Serial,
    use_individual_account: bool,
    now: LogTime,
) -> Result<(Visit, Person, medmesh_settlement::Split, medmesh_monitor::Verdict), DomainError> {
    let today = now.date();
    let inst = active_institution(kv, institution, today)?;
    let v: Visit = load(kv, &keys::visit(institution, visit)).ok_or_else(|| {
        DomainError::not_found("visit_serial", format!("visit {visit} of institution {institution} is not registered"))
    })?;
    if let Some(by) = &v.settled_by {
        return Err(DomainError::precondition("visit_serial", format!("visit {visit} is already settled by {by}")));
    }
    if v.lines.is_empty() {
        return Err(DomainError::precondition("visit_serial", "no fee lines were uploaded"));
    }
    let doctor_points = billing_doctor(kv, &v.doctor, institution, today)?;
    let person: Person = load(kv, &keys::person(&v.person))
        .ok_or_else(|| DomainError::not_found("visit_serial", "the visit's person is no longer registered"))?;
    if person.status != InsuranceStatus::Active {
        return Err(DomainError::precondition(
            "visit_serial",
            format!("insurance of {} is not active", person.masked_id),
        ));
    }
    let policy: Policy =
        load(kv, keys::POLICY).ok_or_else(|| DomainError::precondition("policy", "the province has no policy"))?;
    let acc: Accumulators = load(kv, &keys::accumulators(&person.key, today.year())).unwrap_or_default();
    let age = v.admitted.years_since(person.birth_date).max(0) as u32;
    let items = crate::monitoring::items_of(kv, &v);
    // Monitoring before payment: a blocking rule refuses, a self-pay rule moves lines to the
    // patient's share; flags are raised when the settlement is recorded.
    let ctx = crate::monitoring::ClaimContext {
        visit: &v,
        person: Some(&person),
        institution: &inst,
        items: &items,
        doctor_points,
        today,
        place: None,
    };
    let verdict = crate::monitoring::check(kv, &ctx);
    crate::monitoring::blocked(&verdict)?;
    let fund: crate::FundLedger = load(kv, keys::FUND).unwrap_or_default();
    let claim = Claim {
        patient: Patient {
            sex: person.sex,
            age,
            insurance: person.insurance,
            account_balance: person.account_balance,
            medical_assistance: person.medical_assistance,
        },
        institution_level: inst.level,
        reduced_ratio: false,
        use_individual_account,
        lines: v.lines.clone(),
        rule_self_pay: crate::monitoring::self_pay(&verdict, &v),
        assistance_fund: fund.assistance_balance(),
    };
    let split = settle(&claim, |c| items.iter().find(|i| &i.code == c), &policy, &acc)
        .map_err(|e| crate::error::settle_error("", e))?;
    Ok((v, person, split, verdict))
}
