//! Deterministic apply of commands.

use medmesh_settlement::{settle, Accumulators, CatalogueItem, Claim, Patient, Policy};
use medmesh_types::{Date, LogTime, Serial};
use sha2::{Digest, Sha256};

use crate::kv::{encode, keys, load, KvRead, Tx, WriteSet};
use crate::model::*;
use crate::nonlocal::*;
use crate::DomainError;

/// Most fee lines on one visit.
pub const MAX_VISIT_LINES: usize = 2_000;
/// Oldest admission accepted, in days before the entry's date.
pub const MAX_ADMISSION_AGE_DAYS: i32 = 366;

/// Applies a batch in a group of `role`: each command succeeds or fails alone, in order; a
/// failed command writes nothing, and a command of another role is refused. Returns one result
/// per command and the writes of the whole batch.
pub fn apply_batch(base: &dyn KvRead, batch: &Batch, role: Role) -> (Vec<CommandResult>, WriteSet) {
    let mut tx = Tx::new(base);
    let last: Option<LogTime> = tx.load(keys::TIME);
    let now = match group_time(last, batch.time) {
        Ok(now) => now,
        Err(e) => return (batch.commands.iter().map(|_| Err(e.clone())).collect(), WriteSet::new()),
    };
    tx.store(keys::TIME, &now);
    let mut results = Vec::with_capacity(batch.commands.len());
    for cmd in &batch.commands {
        if cmd.role() != role {
            results
                .push(Err(DomainError::invalid("command", format!("a {role} group does not accept {}", cmd.kind()))));
            continue;
        }
        let (result, writes) = apply_command(&tx, cmd, now);
        if result.is_ok() {
            tx.merge(writes);
        }
        results.push(result);
    }
    (results, tx.into_writes())
}

/// Most an entry's time may run ahead of the group's time (the time of the entry before it).
///
/// The leader stamps each entry with its clock (bounded by its peers' clocks) and proposes an
/// empty entry when the group is idle, so in a healthy group consecutive entries are seconds
/// apart. An entry stamped further ahead (a leader whose clock jumped, a forged proposal)
/// moves the group's time by this much only, so one wrong clock cannot move the group's
/// "today" for good.
pub const MAX_CLOCK_STEP_MS: i64 = 10 * 60 * 1000;

/// The group's time after an entry stamped `entry`, given the time of the entry before it:
/// never earlier than before, at most [`MAX_CLOCK_STEP_MS`] later. An entry whose time is not
/// [`LogTime::is_valid`] is refused whole (every command fails; nothing is written).
pub fn group_time(last: Option<LogTime>, entry: LogTime) -> Result<LogTime, DomainError> {
    if !entry.is_valid() {
        return Err(DomainError::invalid(
            "time",
            format!("entry time {} ms is outside 2000-01-01 to 2199-12-31", entry.millis()),
        ));
    }
    Ok(match last {
        None => entry,
        Some(last) if entry <= last => last,
        Some(last) => entry.min(LogTime(last.millis().saturating_add(MAX_CLOCK_STEP_MS))),
    })
}

/// Applies one command at `now`; on error the returned writes are empty.
pub fn apply_command(base: &dyn KvRead, cmd: &Command, now: LogTime) -> (CommandResult, WriteSet) {
    if let Err(e) = crate::validate::validate(cmd) {
        return (Err(e), WriteSet::new());
    }
    let mut tx = Tx::new(base);
    match execute(&mut tx, cmd, now) {
        Ok(outcome) => (Ok(outcome), tx.into_writes()),
        Err(e) => (Err(e), WriteSet::new()),
    }
}

pub(crate) fn digest(cmd: &Command) -> String {
    hex::encode(Sha256::digest(encode(cmd)))
}

/// Idempotent commands: returns the stored outcome for a retry, rejects a reused serial.
pub(crate) fn idempotent(
    tx: &mut Tx<'_>,
    scope: &str,
    serial: &Serial,
    cmd: &Command,
    run: impl FnOnce(&mut Tx<'_>) -> Result<Outcome, DomainError>,
) -> Result<Outcome, DomainError> {
    let key = keys::idempotency(scope, serial);
    let d = digest(cmd);
    if let Some(rec) = tx.load::<IdempotencyRecord>(&key) {
        if rec.digest == d {
            return Ok(rec.outcome);
        }
        return Err(DomainError::exists(
            "serial",
            format!("serial {serial} was already used by a different request of institution {scope}"),
        ));
    }
    let outcome = run(tx)?;
    tx.store(&key, &IdempotencyRecord { digest: d, outcome: outcome.clone() });
    Ok(outcome)
}

fn execute(tx: &mut Tx<'_>, cmd: &Command, now: LogTime) -> Result<Outcome, DomainError> {
    let today = now.date();
    match cmd {
        Command::PutPerson(p) => {
            if p.birth_date > today {
                return Err(DomainError::invalid("birth_date", "is in the future"));
            }
            let key = keys::person(&p.id);
            let mut rec = p.clone();
            if let Some(old) = tx.load::<Person>(&key) {
                rec.account_balance = old.account_balance;
                for (kind, old_no) in [
                    (CertificateKind::SocialSecurityCard, old.social_security_card),
                    (CertificateKind::ECredential, old.e_credential),
                ] {
                    if let Some(n) = old_no {
                        tx.put_delete(&keys::cert(kind.key(), &n));
                    }
                }
            }
            for (kind, no) in [
                (CertificateKind::SocialSecurityCard, &p.social_security_card),
                (CertificateKind::ECredential, &p.e_credential),
            ] {
                if let Some(n) = no {
                    let ck = keys::cert(kind.key(), n);
                    if let Some(owner) = tx.load::<String>(&ck) {
                        if owner != p.id.expose() {
                            return Err(DomainError::exists(
                                format!("{kind:?}").to_lowercase(),
                                "certificate number belongs to another person",
                            ));
                        }
                    }
                    tx.store(&ck, &p.id.expose().to_string());
                }
            }
            tx.store(&key, &rec);
            Ok(Outcome::Stored)
        }
        Command::PutInstitution(i) => {
            tx.store(&keys::institution(&i.id), i);
            Ok(Outcome::Stored)
        }
        Command::PutPersonnel(p) => {
            if tx.load::<Institution>(&keys::institution(&p.institution)).is_none() {
                return Err(DomainError::not_found(
                    "institution_id",
                    format!("institution {} is not registered", p.institution),
                ));
            }
            if tx.load::<Personnel>(&keys::personnel(&p.code)).is_none() {
                let q = qualification(tx, &p.code, today)?;
                if let medmesh_supervision::QualificationState::Terminated { reregister_from, .. } = q.state {
                    if !q.may_register(today) {
                        return Err(DomainError::precondition(
                            "code",
                            format!("personnel {} may not register again before {reregister_from}", p.code),
                        ));
                    }
                }
            }
            tx.store(&keys::personnel(&p.code), p);
            Ok(Outcome::Stored)
        }
        Command::PutCatalogueItem(item) => {
            tx.store(&keys::item(&item.code), item);
            Ok(Outcome::Stored)
        }
        Command::PutPolicy(p) => {
            tx.store(keys::POLICY, p);
            Ok(Outcome::Stored)
        }
        Command::Contribute { serial, amount, .. } => idempotent(tx, "~agency", serial, cmd, |tx| {
            let mut fund: FundLedger = tx.load(keys::FUND).unwrap_or_default();
            fund.contributions += *amount;
            tx.store(keys::FUND, &fund);
            Ok(Outcome::Contributed { balance: fund.balance() })
        }),
        Command::RecordViolation(v) => {
            check_violation(v, Some(today))?;
            let key = keys::violation(&v.personnel, &v.id);
            match tx.load::<medmesh_supervision::Violation>(&key) {
                Some(old) if &old == v => {}
                Some(_) => {
                    return Err(DomainError::exists(
                        "id",
                        format!("violation {} was already recorded with different content", v.id),
                    ))
                }
                None => tx.store(&key, v),
            }
            Ok(Outcome::Qualification(qualification(tx, &v.personnel, today)?))
        }
        Command::RegisterVisit {
            institution,
            serial,
            certificate_kind,
            certificate,
            kind,
            doctor,
            department,
            diagnosis,
            admitted,
        } => idempotent(tx, institution.as_str(), serial, cmd, |tx| {
            check_visit(tx, institution, doctor, *admitted, today)?;
            let person = resolve_person(tx, *certificate_kind, certificate)?;
            let vkey = keys::visit(institution, serial);
            let visit = Visit {
                institution: institution.clone(),
                serial: serial.clone(),
                person: person.id.clone(),
                kind: *kind,
                doctor: doctor.clone(),
                department: department.clone(),
                diagnosis: diagnosis.clone(),
                admitted: *admitted,
                lines: Vec::new(),
                settled_by: None,
                nonlocal: None,
            };
            tx.store(&vkey, &visit);
            Ok(Outcome::VisitRegistered(visit))
        }),
        Command::UploadFees { institution, visit, lines } => {
            let vkey = keys::visit(institution, visit);
            let mut v: Visit = tx.load(&vkey).ok_or_else(|| {
                DomainError::not_found(
                    "visit_serial",
                    format!("visit {visit} of institution {institution} is not registered"),
                )
            })?;
            if v.settled_by.is_some() {
                return Err(DomainError::precondition(
                    "visit_serial",
                    "visit is settled; reverse the settlement to add lines",
                ));
            }
            let mut seen = std::collections::BTreeSet::new();
            for (i, l) in lines.iter().enumerate() {
                if !seen.insert(&l.serial) {
                    return Err(DomainError::exists(
                        format!("lines[{i}].serial"),
                        format!("line serial {} appears twice in the request", l.serial),
                    ));
                }
                if l.date < v.admitted || l.date > today {
                    return Err(DomainError::invalid(
                        format!("lines[{i}].date"),
                        format!("{} is outside the visit ({} to {today})", l.date, v.admitted),
                    ));
                }
                if tx.load::<CatalogueItem>(&keys::item(&l.code)).is_none() {
                    return Err(DomainError::not_found(
                        format!("lines[{i}].code"),
                        format!("{} is not in the catalogue", l.code),
                    ));
                }
            }
            let mut added = 0usize;
            for (i, l) in lines.iter().enumerate() {
                match v.lines.iter().find(|x| x.serial == l.serial) {
                    Some(existing) if existing == l => {}
                    Some(_) => {
                        return Err(DomainError::exists(
                            format!("lines[{i}].serial"),
                            format!("line serial {} was already uploaded with different content", l.serial),
                        ))
                    }
                    None => {
                        v.lines.push(l.clone());
                        added += 1;
                    }
                }
            }
            if v.lines.len() > MAX_VISIT_LINES {
                return Err(DomainError::too_large("lines", format!("a visit holds at most {MAX_VISIT_LINES} lines")));
            }
            let _ = added;
            let total = medmesh_settlement::check_amounts(&v.lines).map_err(|_| {
                DomainError::invalid(
                    "lines",
                    format!(
                        "the visit's lines would add up to more than {} yuan",
                        medmesh_settlement::max_claim_total()
                    ),
                )
            })?;
            let line_count = v.lines.len() as u32;
            tx.store(&vkey, &v);
            Ok(Outcome::FeesUploaded { line_count, total })
        }
        Command::Settle { institution, serial, visit, use_individual_account } => {
            if tx.load::<IdempotencyRecord>(&keys::idempotency(institution.as_str(), serial)).is_none() {
                if let Some(v) = tx.load::<Visit>(&keys::visit(institution, visit)) {
                    if v.nonlocal.is_some() {
                        return settle_nonlocal(tx, cmd, institution, serial, v, *use_individual_account, now);
                    }
                }
                if tx.load::<crate::shared::TreatmentTransfer>(&keys::transfer(institution, serial)).is_some() {
                    return Err(DomainError::exists(
                        "serial",
                        format!("serial {serial} was already used by a different request of institution {institution}"),
                    ));
                }
            }
            idempotent(tx, institution.as_str(), serial, cmd, |tx| {
                let (mut v, person, split) = quote(tx, institution, visit, *use_individual_account, now)?;
                let year = today.year();
                let akey = keys::accumulators(&person.id, year);
                let acc: Accumulators = tx.load(&akey).unwrap_or_default();
                tx.store(&akey, &acc.apply(&split));
                let mut p = person.clone();
                p.account_balance -= split.individual_account;
                tx.store(&keys::person(&p.id), &p);
                let mut fund: FundLedger = tx.load(keys::FUND).unwrap_or_default();
                fund.pooling_paid += split.pooling_fund;
                fund.critical_illness_paid += split.critical_illness;
                fund.accounts_paid += split.individual_account;
                fund.settlements += 1;
                tx.store(keys::FUND, &fund);
                let pkey = keys::payable(institution);
                let mut pay: Payable = tx.load(&pkey).unwrap_or_default();
                pay.amount += split.fund_total() + split.individual_account;
                tx.store(&pkey, &pay);
                v.settled_by = Some(serial.clone());
                tx.store(&keys::visit(institution, visit), &v);
                let s = Settlement {
                    institution: institution.clone(),
                    serial: serial.clone(),
                    visit: visit.clone(),
                    person: person.id.clone(),
                    person_name: person.name.clone(),
                    kind: v.kind,
                    doctor: v.doctor.clone(),
                    diagnosis: v.diagnosis.clone(),
                    settled_at: now,
                    settled_on: today,
                    year,
                    split,
                    status: SettlementStatus::Settled,
                    insured: None,
                    masked_id: String::new(),
                };
                tx.store(&keys::settlement(institution, serial), &s);
                tx.store(&keys::statement(institution, today, serial), &());
                Ok(Outcome::Settlement(s))
            })
        }
        Command::Reverse { institution, serial, settlement } => {
            if tx.load::<IdempotencyRecord>(&keys::idempotency(institution.as_str(), serial)).is_none() {
                // A non-local reversal is open until the federation and the insured province
                // recorded it; its idempotency record is written when it finishes.
                if let Some((target, d)) = tx.load::<(Serial, String)>(&keys::reversal(institution, serial)) {
                    if d != digest(cmd) || &target != settlement {
                        return Err(DomainError::exists(
                            "serial",
                            format!(
                                "serial {serial} was already used by a different request of institution {institution}"
                            ),
                        ));
                    }
                    let s: Settlement = tx
                        .load(&keys::settlement(institution, &target))
                        .ok_or_else(|| DomainError::not_found("settlement_serial", "is gone"))?;
                    return Ok(Outcome::ReversalOpen(s));
                }
                if let Some(s) = tx.load::<Settlement>(&keys::settlement(institution, settlement)) {
                    if s.insured.is_some() && s.status == SettlementStatus::Settled {
                        return Ok(open_reversal(tx, cmd, s, serial));
                    }
                }
            }
            idempotent(tx, institution.as_str(), serial, cmd, |tx| {
                let skey = keys::settlement(institution, settlement);
                let mut s: Settlement = tx.load(&skey).ok_or_else(|| {
                    DomainError::not_found(
                        "settlement_serial",
                        format!("settlement {settlement} of institution {institution} does not exist"),
                    )
                })?;
                match &s.status {
                    SettlementStatus::Reversed { by, .. } | SettlementStatus::Reversing { by } => {
                        return Err(DomainError::precondition(
                            "settlement_serial",
                            format!("settlement {settlement} was already reversed by {by}"),
                        ));
                    }
                    SettlementStatus::Settled => {}
                }

                let split = s.split.clone();
                let akey = keys::accumulators(&s.person, s.year);
                let acc: Accumulators = tx.load(&akey).unwrap_or_default();
                tx.store(&akey, &acc.reverse(&split));
                let pk = keys::person(&s.person);
                if let Some(mut p) = tx.load::<Person>(&pk) {
                    p.account_balance += split.individual_account;
                    tx.store(&pk, &p);
                }
                let mut fund: FundLedger = tx.load(keys::FUND).unwrap_or_default();
                fund.pooling_paid -= split.pooling_fund;
                fund.critical_illness_paid -= split.critical_illness;
                fund.accounts_paid -= split.individual_account;
                fund.settlements -= 1;
                fund.reversals += 1;
                tx.store(keys::FUND, &fund);
                let pkey = keys::payable(institution);
                let mut pay: Payable = tx.load(&pkey).unwrap_or_default();
                pay.amount -= split.fund_total() + split.individual_account;
                tx.store(&pkey, &pay);
                let vkey = keys::visit(institution, &s.visit);
                if let Some(mut v) = tx.load::<Visit>(&vkey) {
                    v.settled_by = None;
                    tx.store(&vkey, &v);
                }
                s.status = SettlementStatus::Reversed { by: serial.clone(), at: now };
                tx.store(&skey, &s);
                Ok(Outcome::Settlement(s))
            })
        }
        Command::RegisterNonLocalVisit { request, nonlocal } => register_nonlocal_visit(tx, request, nonlocal, now),
        Command::AttachFiling { institution, visit, filing } => attach_filing(tx, institution, visit, *filing),
        Command::Reserve { transfer, certificate_kind, certificate, claim } => {
            reserve(tx, transfer, *certificate_kind, certificate, claim, now)
        }
        Command::ResolveReservation { transfer, decision } => resolve_reservation(tx, transfer, *decision, now),
        Command::UnpostReservation { transfer } => unpost_reservation(tx, transfer, now),
        Command::TransferReserved { transfer, split } => transfer_reserved(tx, transfer, split),
        Command::FinishTransfer { transfer, decision, reason, split } => {
            finish_transfer(tx, transfer, *decision, reason, split.as_ref(), now)
        }
        Command::FinishReversal { institution, serial } => finish_reversal(tx, institution, serial, now),
        Command::SyncShared { items } => sync_shared(tx, items),
        Command::RecordDiscipline(e) => record_discipline(tx, e),
        Command::FedRecordDiscipline(e) => fed_record_discipline(tx, e),
        Command::FedTopUp { province, serial, amount, warning_below } => {
            crate::clearing::top_up(tx, province, serial, *amount, *warning_below)
        }
        Command::FedRunClearing { month } => crate::clearing::run_clearing(tx, month, now),
        Command::FedConfirmClearing { month, treatment, institution, serial, confirm } => {
            crate::clearing::confirm(tx, month, treatment, institution, serial, *confirm)
        }
        Command::FedRegisterProvince(e) => fed_register_province(tx, e),
        Command::FedDirectory { entries } => fed_directory(tx, entries),
        Command::FedFile(f) => fed_file(tx, f),
        Command::FedDecide { transfer, insured, amount, decision, reason } => {
            fed_decide(tx, transfer, insured, *amount, *decision, reason, now)
        }
        Command::FedReverse { transfer, reversal } => fed_reverse(tx, transfer, reversal),
        Command::FedRecordViolation(v) => fed_record_violation(tx, v),
    }
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
        if e.in_force(today) {
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

pub(crate) fn billing_doctor(
    kv: &dyn KvRead,
    code: &medmesh_types::PersonnelCode,
    institution: &medmesh_types::InstitutionId,
    today: Date,
) -> Result<Personnel, DomainError> {
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
    Ok(p)
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

pub(crate) fn resolve_person(kv: &dyn KvRead, kind: CertificateKind, number: &str) -> Result<Person, DomainError> {
    let p = find_person(kv, kind, number)?;
    if p.status != InsuranceStatus::Active {
        return Err(DomainError::precondition(
            "certificate",
            format!("insurance of {} is not active ({:?})", p.id, p.status),
        ));
    }
    Ok(p)
}

/// The register entry of the holder of a certificate, whatever its insurance status.
pub(crate) fn find_person(kv: &dyn KvRead, kind: CertificateKind, number: &str) -> Result<Person, DomainError> {
    let not_found = || DomainError::not_found("certificate", "no insured person holds this certificate");
    if number.is_empty() || number.len() > 64 || number.contains('/') {
        return Err(DomainError::invalid("certificate", "must be 1 to 64 characters without '/'"));
    }
    let id = match kind {
        CertificateKind::IdCard => number.to_string(),
        _ => load::<String>(kv, &keys::cert(kind.key(), number)).ok_or_else(not_found)?,
    };
    let id = medmesh_types::PersonId::new(id).map_err(|e| DomainError::invalid("certificate", e.to_string()))?;
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
) -> Result<(Visit, Person, medmesh_settlement::Split), DomainError> {
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
    billing_doctor(kv, &v.doctor, institution, today)?;
    let person: Person = load(kv, &keys::person(&v.person))
        .ok_or_else(|| DomainError::not_found("visit_serial", "the visit's person is no longer registered"))?;
    if person.status != InsuranceStatus::Active {
        return Err(DomainError::precondition("visit_serial", format!("insurance of {} is not active", person.id)));
    }
    let policy: Policy =
        load(kv, keys::POLICY).ok_or_else(|| DomainError::precondition("policy", "the province has no policy"))?;
    let acc: Accumulators = load(kv, &keys::accumulators(&person.id, today.year())).unwrap_or_default();
    let age = v.admitted.years_since(person.birth_date).max(0) as u32;
    let claim = Claim {
        patient: Patient { sex: person.sex, age, insurance: person.insurance, account_balance: person.account_balance },
        institution_level: inst.level,
        reduced_ratio: false,
        use_individual_account,
        lines: v.lines.clone(),
    };
    let items: Vec<CatalogueItem> = {
        let mut codes: Vec<_> = v.lines.iter().map(|l| l.code.clone()).collect();
        codes.sort();
        codes.dedup();
        codes.iter().filter_map(|c| load::<CatalogueItem>(kv, &keys::item(c))).collect()
    };
    let split = settle(&claim, |c| items.iter().find(|i| &i.code == c), &policy, &acc)
        .map_err(|e| crate::error::settle_error("", e))?;
    Ok((v, person, split))
}
