//! Deterministic apply of commands.

use medmesh_settlement::{Accumulators, CatalogueItem};
use medmesh_types::{Date, KeyedHash, LogTime, Money, PersonnelCode, Serial};

use crate::command::{Batch, Command};
use crate::discipline::*;
use crate::insured::*;
use crate::kv::{decode, keys, KvRead, Tx, WriteSet};
use crate::model::*;
use crate::rules::*;
use crate::treatment::*;
use crate::DomainError;

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
    if let (Role::Province, Some(last)) = (role, last) {
        crate::disclosure::close_months(&mut tx, last, now);
        crate::aggregate::close_days(&mut tx, last, now);
    }
    let mut results = Vec::with_capacity(batch.commands.len());
    let nobody = crate::audit::Origin::default();
    for (i, cmd) in batch.commands.iter().enumerate() {
        let result = if cmd.role() != role {
            Err(DomainError::invalid("command", format!("a {role} group does not accept {}", cmd.kind())))
        } else {
            let (result, writes) = apply_command(&tx, cmd, now);
            if result.is_ok() {
                tx.merge(writes);
                if let Some((key, record)) = cmd.put_record() {
                    // Who changed a register record, and to what, under its audit entry.
                    crate::audit::keep_change(&mut tx, &key, batch.origins.get(i).unwrap_or(&nobody), record, now);
                }
            }
            result
        };
        // Accepted or refused, every command leaves its entry in the audit chain.
        let origin = batch.origins.get(i).unwrap_or(&nobody);
        crate::audit::append(&mut tx, origin, (cmd.kind(), cmd), (result.is_ok(), &result), now);
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
    let executed = match cmd {
        Command::Province(c) => execute(&mut tx, c, now),
        Command::Federation(c) => crate::federation::execute(&mut tx, c, now),
    };
    match executed {
        Ok(outcome) => {
            let writes = tx.into_writes();
            debug_assert!(payables_follow_the_ledger(base, &writes), "{} moved payables and ledger apart", cmd.kind());
            (Ok(outcome), writes)
        }
        Err(e) => (Err(e), WriteSet::new()),
    }
}

/// The invariant between the fund ledger and the payables, checked on what one command
/// changed (cheap enough for every command): the payables it wrote moved by exactly what the
/// ledger says the fund owes institutions ([`FundLedger::owed_to_institutions`]).
pub(crate) fn payables_follow_the_ledger(base: &dyn KvRead, writes: &WriteSet) -> bool {
    let payables = b"payable/".to_vec()..b"payable0".to_vec();
    if !writes.contains_key(keys::FUND.as_bytes()) && writes.range(payables.clone()).next().is_none() {
        // Neither side moved: nothing to read (this runs for every command).
        return true;
    }
    let ledger = |bytes: Option<&Vec<u8>>| bytes.map(|b| decode::<FundLedger>(b)).unwrap_or_default();
    let before = ledger(base.get(keys::FUND.as_bytes()).as_ref());
    let after = match writes.get(keys::FUND.as_bytes()) {
        Some(v) => ledger(v.as_ref()),
        None => before.clone(),
    };
    let payable = |bytes: Option<&Vec<u8>>| bytes.map(|b| decode::<Payable>(b).amount).unwrap_or(Money::ZERO);
    let mut moved = Money::ZERO;
    for (k, v) in writes.range(payables) {
        moved += payable(v.as_ref()) - payable(base.get(k).as_ref());
    }
    moved == after.owed_to_institutions() - before.owed_to_institutions()
}
/// Applies a province command (validated by the caller, [`crate::validate`]).
fn execute(tx: &mut Tx<'_>, cmd: &ProvinceCommand, now: LogTime) -> Result<Outcome, DomainError> {
    let today = now.date();
    match cmd {
        ProvinceCommand::PutPerson(p) => {
            if p.birth_date > today {
                return Err(DomainError::invalid("birth_date", "is in the future"));
            }
            let key = keys::person(&p.key);
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
                    if let Some(owner) = tx.load::<KeyedHash>(&ck) {
                        if owner != p.key {
                            return Err(DomainError::exists(
                                format!("{kind:?}").to_lowercase(),
                                "certificate number belongs to another person",
                            ));
                        }
                    }
                    tx.store(&ck, &p.key);
                }
            }
            tx.store(&key, &rec);
            Ok(Outcome::Stored)
        }
        ProvinceCommand::PutInstitution(i) => {
            tx.store(&keys::institution(&i.id), i);
            Ok(Outcome::Stored)
        }
        ProvinceCommand::PutPersonnel(p) => {
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
        ProvinceCommand::PutCatalogueItem(item) => {
            tx.store(&keys::item(&item.code), item);
            Ok(Outcome::Stored)
        }
        ProvinceCommand::PutPolicy(p) => {
            tx.store(keys::POLICY, p);
            Ok(Outcome::Stored)
        }
        ProvinceCommand::Contribute { serial, amount, fund: to, .. } => idempotent(tx, "~agency", serial, cmd, |tx| {
            let mut fund: FundLedger = tx.load(keys::FUND).unwrap_or_default();
            let balance = match to {
                Fund::Pooling => {
                    fund.contributions += *amount;
                    fund.balance()
                }
                Fund::MedicalAssistance => {
                    fund.assistance_funded += *amount;
                    fund.assistance_balance()
                }
            };
            tx.store(keys::FUND, &fund);
            Ok(Outcome::Contributed { balance })
        }),
        ProvinceCommand::RecordViolation(v) => {
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
                None => {
                    tx.store(&key, v);
                    crate::tally::tally(tx, today, |t| t.points += i64::from(v.points));
                }
            }
            Ok(Outcome::Qualification(qualification(tx, &v.personnel, today)?))
        }
        ProvinceCommand::RegisterVisit {
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
                person: person.key.clone(),
                masked_id: person.masked_id.clone(),
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
        ProvinceCommand::UploadFees { institution, visit, lines } => {
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
        ProvinceCommand::Settle { institution, serial, visit, use_individual_account } => {
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
                let (mut v, person, split, verdict) = quote(tx, institution, visit, *use_individual_account, now)?;
                let year = today.year();
                let akey = keys::accumulators(&person.key, year);
                let acc: Accumulators = tx.load(&akey).unwrap_or_default();
                tx.store(&akey, &acc.apply(&split));
                let mut p = person.clone();
                p.account_balance -= split.individual_account;
                tx.store(&keys::person(&p.key), &p);
                let mut fund: FundLedger = tx.load(keys::FUND).unwrap_or_default();
                fund.pooling_paid += split.pooling_fund;
                fund.critical_illness_paid += split.critical_illness;
                fund.assistance_paid += split.medical_assistance;
                fund.accounts_paid += split.individual_account;
                fund.settlements += 1;
                let pkey = keys::payable(institution);
                let mut pay: Payable = tx.load(&pkey).unwrap_or_default();
                pay.amount += split.fund_total() + split.individual_account;
                // A recovery a case decided beyond what the fund owed is taken off here.
                let taken = pay.offset_recovery();
                fund.recovered += taken;
                fund.recovery_due -= taken;
                tx.store(keys::FUND, &fund);
                tx.store(&pkey, &pay);
                v.settled_by = Some(serial.clone());
                tx.store(&keys::visit(institution, visit), &v);
                let s = Settlement {
                    institution: institution.clone(),
                    serial: serial.clone(),
                    visit: visit.clone(),
                    person: person.key.clone(),
                    person_sealed: person.sealed.clone(),
                    kind: v.kind,
                    doctor: v.doctor.clone(),
                    diagnosis: v.diagnosis.clone(),
                    settled_at: now,
                    settled_on: today,
                    year,
                    split,
                    status: SettlementStatus::Settled,
                    insured: None,
                    masked_id: person.masked_id.clone(),
                };
                tx.store(&keys::settlement(institution, serial), &s);
                tx.store(&keys::statement(institution, today, serial), &());
                crate::tally::settlement(
                    tx,
                    today,
                    1,
                    institution,
                    None,
                    s.split.fund_total() + s.split.individual_account,
                    s.split.cash,
                );
                crate::payment::count_settled(
                    tx,
                    institution,
                    today,
                    s.split.fund_total() + s.split.individual_account,
                    s.split.pooling_fund + s.split.critical_illness,
                );
                crate::monitoring::settled(tx, &verdict, &v, &person.key, serial, None, now);
                Ok(Outcome::Settlement(s))
            })
        }
        ProvinceCommand::Reverse { institution, serial, settlement } => {
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
                        crate::rules::serial_free(tx, institution.as_str(), serial)?;
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
                if let Some(case) = tx.load::<String>(&keys::recovered_settlement(institution, settlement)) {
                    return Err(DomainError::precondition(
                        "settlement_serial",
                        format!(
                            "case {case} recovered the fund's share of settlement {settlement}: it cannot be reversed"
                        ),
                    ));
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
                fund.assistance_paid -= split.medical_assistance;
                fund.accounts_paid -= split.individual_account;
                fund.settlements -= 1;
                fund.reversals += 1;
                tx.store(keys::FUND, &fund);
                let pkey = keys::payable(institution);
                let mut pay: Payable = tx.load(&pkey).unwrap_or_default();
                pay.amount -= split.fund_total() + split.individual_account;
                tx.store(&pkey, &pay);
                crate::tally::settlement(
                    tx,
                    today,
                    -1,
                    institution,
                    None,
                    split.fund_total() + split.individual_account,
                    split.cash,
                );
                crate::payment::count_reversed(
                    tx,
                    institution,
                    s.settled_on,
                    today,
                    split.fund_total() + split.individual_account,
                    split.pooling_fund + split.critical_illness,
                );
                let vkey = keys::visit(institution, &s.visit);
                if let Some(mut v) = tx.load::<Visit>(&vkey) {
                    crate::monitoring::reversed(tx, &v, &s.person);
                    v.settled_by = None;
                    tx.store(&vkey, &v);
                }
                s.status = SettlementStatus::Reversed { by: serial.clone(), at: now };
                tx.store(&skey, &s);
                Ok(Outcome::Settlement(s))
            })
        }
        ProvinceCommand::PutRule(r) => crate::monitoring::put_rule(tx, r, false, now).map(|_| Outcome::Stored),
        ProvinceCommand::PutKnowledge(k) => crate::monitoring::put_knowledge(tx, k),
        ProvinceCommand::ReviewAlert { seq, accept, reason } => crate::monitoring::review(tx, *seq, *accept, reason),
        ProvinceCommand::RegisterNonLocalVisit { request, nonlocal } => {
            register_nonlocal_visit(tx, request, nonlocal, now)
        }
        ProvinceCommand::AttachFiling { institution, visit, filing } => attach_filing(tx, institution, visit, *filing),
        ProvinceCommand::Reserve { transfer, handle, person_key: _, claim } => {
            reserve(tx, transfer, handle, claim, now)
        }
        ProvinceCommand::ResolveReservation { transfer, decision } => resolve_reservation(tx, transfer, *decision, now),
        ProvinceCommand::UnpostReservation { transfer } => unpost_reservation(tx, transfer, now),
        ProvinceCommand::TransferReserved { transfer, split } => transfer_reserved(tx, transfer, split),
        ProvinceCommand::FinishTransfer { transfer, decision, reason, split } => {
            finish_transfer(tx, transfer, *decision, reason, split.as_ref(), now)
        }
        ProvinceCommand::FinishReversal { institution, serial } => finish_reversal(tx, institution, serial, now),
        ProvinceCommand::SyncShared { items } => sync_shared(tx, items, now),
        ProvinceCommand::RecordDiscipline(e) => record_discipline(tx, e, today),
        ProvinceCommand::LiftDiscipline { province, subject, id, reason } => {
            crate::discipline::lift_discipline(tx, province, subject, id, reason, today)
        }
        ProvinceCommand::ReceiveReports { province, items } => crate::reports::receive(tx, province, items, now),
        ProvinceCommand::RecordCommitment { province, party, id, text, verify_by } => {
            crate::credit::record_commitment(tx, province, party, id, text, *verify_by, today)
        }
        ProvinceCommand::ResolveCommitment { province, party, id, kept, finding } => {
            crate::credit::resolve_commitment(tx, province, party, id, *kept, finding, today)
        }
        ProvinceCommand::RecordIncentive(i) => crate::credit::record_incentive(tx, i, today),
        ProvinceCommand::Case(c) => crate::cases::execute(tx, c, now),
        ProvinceCommand::Published { through } => crate::cases::published(tx, *through),
        ProvinceCommand::Payment(step) => crate::payment::execute(tx, step, cmd, now),
        ProvinceCommand::Inspection(c) => crate::inspection::execute(tx, c, now),
        ProvinceCommand::Report(c) => crate::reports::execute(tx, c, now),
        ProvinceCommand::PublishAggregate { period } => {
            crate::aggregate::publish(tx, *period).map(|a| Outcome::Aggregate(Box::new(a)))
        }
        ProvinceCommand::CreditAccounts { serial, period, credits } => {
            crate::accounts::credit(tx, cmd, serial, *period, credits, now)
        }
        ProvinceCommand::PrepaidSeen { topped_up, settled_months, received, paid } => {
            Ok(crate::accounts::prepaid_seen(tx, *topped_up, *settled_months, *received, *paid))
        }
        ProvinceCommand::SettleWithLines { institution, serial, visit, use_individual_account, lines } => {
            let answered = tx.load::<IdempotencyRecord>(&keys::idempotency(institution.as_str(), serial)).is_some()
                || tx.load::<crate::shared::TreatmentTransfer>(&keys::transfer(institution, serial)).is_some();
            if !answered {
                let upload = ProvinceCommand::UploadFees {
                    institution: institution.clone(),
                    visit: visit.clone(),
                    lines: lines.clone(),
                };
                execute(tx, &upload, now)?;
            }
            let settle = ProvinceCommand::Settle {
                institution: institution.clone(),
                serial: serial.clone(),
                visit: visit.clone(),
                use_individual_account: *use_individual_account,
            };
            execute(tx, &settle, now)
        }
        ProvinceCommand::ScanRule { rule_id, from, to, after, limit } => {
            let points = |kv: &dyn KvRead, code: &PersonnelCode, day: Date| {
                qualification(kv, code, day).map(|q| q.year_points).unwrap_or(0)
            };
            crate::monitoring::scan(tx, rule_id, *from, *to, after, *limit as usize, now, points)
        }
    }
}
