//! The federation group: the directory of insured provinces, provinces' endpoints, filings,
//! transfer decisions (first writer wins) and positions, and the shared violation log every
//! province copies. Clearing and prepaid accounts are in [`crate::clearing`].

use medmesh_types::{InstitutionId, LogTime, Money, ProvinceCode, Serial};
use serde::{Deserialize, Serialize};

use crate::discipline::store_discipline;
use crate::kv::{keys, Tx};
use crate::model::*;
use crate::rules::province;
use crate::shared::*;
use crate::DomainError;

/// The federation group's command: one request, applied atomically (all or nothing).
///
/// Stored in the Raft log with bincode (inside [`crate::Command`]): a change to this enum must
/// bump `medmesh_storage::FORMAT_VERSION`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum FederationCommand {
    /// Records the reversal of a committed transfer; idempotent.
    Reverse {
        /// The transfer.
        transfer: crate::shared::TransferId,
        /// The reversal's serial.
        reversal: Serial,
    },
    /// Records a top-up of a province's prepaid account; idempotent on (province,
    /// serial). `warning_below`, when given, replaces the warning threshold.
    TopUp {
        /// The province.
        province: medmesh_types::ProvinceCode,
        /// Its serial for the top-up.
        serial: Serial,
        /// Amount.
        amount: Money,
        /// New warning threshold.
        warning_below: Option<Money>,
    },
    /// Clears a month (`YYYY-MM`) that has ended: its statements (one per province pair, kept
    /// line by line as transfers were decided and reversed) are fixed. Clearing it again
    /// returns them as they are.
    RunClearing {
        /// Month, `YYYY-MM`.
        month: String,
    },
    /// Settles a cleared month: each statement's total is paid from the insured province's
    /// prepaid account to the treatment province, once; positions fall back by it.
    SettleClearing {
        /// Month, `YYYY-MM`.
        month: String,
    },
    /// An institution disputes its settlement line of a cleared month (within the window),
    /// claiming another amount, with a reason; once.
    DisputeClearing {
        /// Month of the line.
        month: String,
        /// The line's transfer (treatment province, institution, serial).
        transfer: crate::shared::TransferId,
        /// What the institution says the line should be.
        claimed: Money,
        /// Why.
        reason: String,
    },
    /// The national administration upholds (an adjustment line follows) or rejects a dispute.
    ResolveDispute {
        /// Month of the line.
        month: String,
        /// The line's transfer.
        transfer: crate::shared::TransferId,
        /// Uphold, or reject.
        uphold: bool,
        /// The decision's note.
        note: String,
    },
    /// an institution confirms (or rolls back its confirmation of) a line.
    ConfirmClearing {
        /// Month.
        month: String,
        /// The treatment province of the line.
        treatment: medmesh_types::ProvinceCode,
        /// The institution confirming (must be the line's).
        institution: InstitutionId,
        /// The line's settlement serial.
        serial: Serial,
        /// Confirm, or roll the confirmation back.
        confirm: bool,
    },
    /// appends a joint-discipline entry to the shared log.
    RecordDiscipline(crate::shared::DisciplineEntry),
    /// registers a province's replica endpoints.
    RegisterProvince(crate::shared::ProvinceEntry),
    /// directory entries, `(directory key, insured province)`.
    Directory {
        /// The entries.
        entries: Vec<(String, medmesh_types::ProvinceCode)>,
    },
    /// Records a non-local filing; idempotent on (insured, id).
    File(crate::shared::Filing),
    /// Records the decision of a transfer unless one exists (first writer wins).
    Decide {
        /// The transfer.
        transfer: crate::shared::TransferId,
        /// The insured province.
        insured: medmesh_types::ProvinceCode,
        /// Fund share plus account part.
        amount: Money,
        /// Proposed decision.
        decision: crate::shared::Decision,
        /// Why, for an abort.
        reason: String,
    },
    /// Records a violation in the shared log every province copies.
    RecordViolation(medmesh_supervision::Violation),
    /// Records a version of a national monitoring rule (the national administration's), copied
    /// into every province through the shared log; versioned like a province's own rules.
    PutRule(medmesh_monitor::Rule),
    /// Records an executed case's outcome (no personal identity) in the shared log, once per
    /// province and case id.
    RecordCaseOutcome(medmesh_supervision::cases::CaseOutcome),
    /// Records a province's audit-chain head (sent by that province's leader now
    /// and then). Recorded once per sequence number; the same head again changes nothing,
    /// another hash for a recorded sequence number is refused.
    Anchor {
        /// The province whose chain it is.
        province: medmesh_types::ProvinceCode,
        /// The chain's head.
        head: crate::audit::AuditHead,
    },
    /// the insured province vouches for what it reserved for a transfer (sent by
    /// the insured province itself once its reservation holds). A commit must carry exactly
    /// this amount, so a treatment province cannot make the insured province owe more than it
    /// reserved. Idempotent; another amount for the same transfer is refused.
    Vouch {
        /// The transfer.
        transfer: crate::shared::TransferId,
        /// The insured province.
        insured: medmesh_types::ProvinceCode,
        /// Fund share plus account part it reserved.
        amount: Money,
    },
    /// Records a case outcome's credit entry lifted on appeal by its deciding province, in the
    /// shared log, once per province and case id (the outcome must have been shared first).
    RecordCreditLift(medmesh_supervision::credit::Lift),
    /// Records a version of a province's aggregate of a day or a month for the national view
    /// (sent by that province's leader from its outbox; [`crate::aggregate`]).
    RecordAggregate {
        /// The publishing province (the sender).
        province: medmesh_types::ProvinceCode,
        /// The figures.
        aggregate: Box<crate::figures::Aggregate>,
    },
    /// Records a joint-discipline entry's lift by its deciding province, in the shared log,
    /// once per entry (the entry must have been shared first, by the same province).
    RecordDisciplineLift(crate::shared::DisciplineLift),
    /// Puts a report message (issue 13.2) in the addressed province's inbox, which only that
    /// province reads. A referral is kept once per report; progress once per content.
    SendReport(crate::shared::ReportMessage),
    /// Records a resolved notification-commitment in the shared log, once per province and id.
    RecordCommitment(medmesh_supervision::credit::Commitment),
    /// Shares a province's joint-incentive entry with every province (issue 13.3), once per
    /// province and id.
    RecordIncentive(medmesh_supervision::credit::Incentive),
    /// Shares a province's reviewed declaration with every province (issue 13.3): a higher
    /// version replaces a lower one; a lower or equal one changes nothing.
    RecordDeclarationReview(medmesh_supervision::credit::ReviewedDeclaration),
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
    // A key another province holds is not taken over (issue 10): otherwise a province could
    // route another province's insured persons, and their raw certificates, to itself.
    for (i, (k, p)) in entries.iter().enumerate() {
        if let Some(holder) = tx.load::<ProvinceCode>(&keys::fed_directory(k)) {
            if &holder != p {
                return Err(DomainError::exists(
                    format!("entries[{i}].key"),
                    format!("the person is registered with province {holder}, which must release them first"),
                ));
            }
        }
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
        // Only what the insured province itself vouched for (issue 10: a treatment province
        // cannot name the amount another province owes).
        match tx.load::<Vouch>(&keys::fed_vouch(transfer)) {
            Some(v) if v.insured == *insured && v.amount == amount => {}
            Some(v) if v.insured != *insured => {
                return Err(DomainError::precondition(
                    "insured",
                    format!("{transfer} was reserved by {}, not {insured}", v.insured),
                ))
            }
            Some(v) => {
                return Err(DomainError::precondition(
                    "amount",
                    format!("{amount} is not the {} the insured province reserved for {transfer}", v.amount),
                ))
            }
            None => {
                return Err(DomainError::precondition(
                    "amount",
                    format!("the insured province has not vouched for a reservation of {transfer}"),
                ))
            }
        }
        crate::clearing::update_position(tx, insured, &transfer.treatment, |p| {
            p.settlements += 1;
            p.amount += amount;
        });
        crate::clearing::on_commit(tx, transfer, insured, amount, now);
    }
    tx.store(&key, &rec);
    Ok(Outcome::Decided(rec))
}
/// What an insured province vouched for.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) struct Vouch {
    pub insured: ProvinceCode,
    pub amount: Money,
}

/// Federation: records the amount the insured province reserved for a transfer.
pub(crate) fn fed_vouch(
    tx: &mut Tx<'_>,
    transfer: &TransferId,
    insured: &ProvinceCode,
    amount: Money,
) -> Result<Outcome, DomainError> {
    province("insured", insured)?;
    if amount.is_negative() {
        return Err(DomainError::invalid("amount", "must not be negative"));
    }
    let key = keys::fed_vouch(transfer);
    let v = Vouch { insured: insured.clone(), amount };
    match tx.load::<Vouch>(&key) {
        Some(old) if old == v => Ok(Outcome::Stored),
        Some(old) => Err(DomainError::exists(
            "amount",
            format!("{transfer} was vouched for as {} by {}", old.amount, old.insured),
        )),
        None => {
            tx.store(&key, &v);
            Ok(Outcome::Stored)
        }
    }
}

/// Federation: records a province's audit-chain head, once per sequence number.
pub(crate) fn fed_anchor(
    tx: &mut Tx<'_>,
    province_code: &ProvinceCode,
    head: &crate::audit::AuditHead,
    now: LogTime,
) -> Result<Outcome, DomainError> {
    province("province", province_code)?;
    let key = keys::fed_anchor(province_code, head.seq);
    match tx.load::<crate::audit::Anchor>(&key) {
        Some(old) if old.head == *head => Ok(Outcome::Stored),
        Some(old) => Err(DomainError::exists(
            "head.hash",
            format!("entry {} of {}'s audit chain was anchored as {}", head.seq, province_code, old.head.hash),
        )),
        None => {
            let anchor = crate::audit::Anchor { province: province_code.clone(), head: head.clone(), recorded_at: now };
            tx.store(&key, &anchor);
            Ok(Outcome::Stored)
        }
    }
}

/// Federation: records the reversal of a committed transfer.
pub(crate) fn fed_reverse(
    tx: &mut Tx<'_>,
    transfer: &TransferId,
    reversal: &Serial,
    now: LogTime,
) -> Result<Outcome, DomainError> {
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
    crate::clearing::update_position(tx, &rec.insured, &transfer.treatment, |p| {
        p.settlements -= 1;
        p.amount -= rec.amount;
    });
    crate::clearing::on_reverse(tx, transfer, &rec.insured, rec.amount, now);
    rec.reversed = Some(reversal.clone());
    tx.store(&key, &rec);
    Ok(Outcome::Decided(rec))
}
/// Federation: appends a violation to the shared log (once per person and id).
pub(crate) fn fed_record_violation(
    tx: &mut Tx<'_>,
    v: &medmesh_supervision::Violation,
) -> Result<Outcome, DomainError> {
    crate::rules::check_violation(v, None)?;
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
/// Federation: records a national rule version and appends it to the shared log (a version
/// recorded again with the same content changes nothing).
fn fed_put_rule(tx: &mut Tx<'_>, r: &medmesh_monitor::Rule, now: LogTime) -> Result<Outcome, DomainError> {
    if crate::monitoring::put_rule(tx, r, true, now)? {
        append_shared(tx, SharedItem::Rule(r.clone()));
    }
    Ok(Outcome::Stored)
}
/// Federation: appends a case outcome to the shared log (once per province and case id).
pub(crate) fn fed_record_case_outcome(
    tx: &mut Tx<'_>,
    o: &medmesh_supervision::cases::CaseOutcome,
) -> Result<Outcome, DomainError> {
    share_once(tx, &keys::fed_case_outcome(&o.province, &o.case_id), o, SharedItem::CaseOutcome(o.clone()), || {
        DomainError::exists(
            "case_id",
            format!("case {} of {} was already shared with different content", o.case_id, o.province),
        )
    })
}
/// Federation: appends a lifted credit entry to the shared log, once per province and case id,
/// only for an outcome the federation shared, about the same institution.
pub(crate) fn fed_record_credit_lift(
    tx: &mut Tx<'_>,
    l: &medmesh_supervision::credit::Lift,
) -> Result<Outcome, DomainError> {
    let outcome: medmesh_supervision::cases::CaseOutcome =
        tx.load(&keys::fed_case_outcome(&l.province, &l.case_id)).ok_or_else(|| {
            DomainError::not_found("case_id", format!("no outcome of case {} of {}", l.case_id, l.province))
        })?;
    if outcome.institution != l.institution {
        return Err(DomainError::invalid(
            "institution",
            format!("case {} is about {}, not {}", l.case_id, outcome.institution, l.institution),
        ));
    }
    share_once(tx, &keys::fed_credit_lift(&l.province, &l.case_id), l, SharedItem::CreditLift(l.clone()), || {
        DomainError::exists(
            "case_id",
            format!("case {} of {} was already lifted with different content", l.case_id, l.province),
        )
    })
}
/// Federation: appends `item` to the shared log and keeps `value` under `key`, once: the same
/// value again changes nothing; another value under the key is `conflict`.
fn share_once<T>(
    tx: &mut Tx<'_>,
    key: &str,
    value: &T,
    item: SharedItem,
    conflict: impl FnOnce() -> DomainError,
) -> Result<Outcome, DomainError>
where
    T: Serialize + serde::de::DeserializeOwned + PartialEq,
{
    match tx.load::<T>(key) {
        Some(old) if &old == value => Ok(Outcome::Stored),
        Some(_) => Err(conflict()),
        None => {
            append_shared(tx, item);
            tx.store(key, value);
            Ok(Outcome::Stored)
        }
    }
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
/// Applies a federation command (validated by the caller, [`crate::validate`]).
pub(crate) fn execute(tx: &mut Tx<'_>, cmd: &FederationCommand, now: LogTime) -> Result<Outcome, DomainError> {
    match cmd {
        FederationCommand::RecordDiscipline(e) => fed_record_discipline(tx, e),
        FederationCommand::TopUp { province, serial, amount, warning_below } => {
            crate::clearing::top_up(tx, province, serial, *amount, *warning_below)
        }
        FederationCommand::RunClearing { month } => crate::clearing::run_clearing(tx, month, now),
        FederationCommand::SettleClearing { month } => crate::clearing::settle(tx, month, now),
        FederationCommand::DisputeClearing { month, transfer, claimed, reason } => {
            crate::clearing::dispute(tx, month, transfer, *claimed, reason, now)
        }
        FederationCommand::ResolveDispute { month, transfer, uphold, note } => {
            crate::clearing::resolve(tx, month, transfer, *uphold, note, now)
        }
        FederationCommand::ConfirmClearing { month, treatment, institution, serial, confirm } => {
            crate::clearing::confirm(tx, month, treatment, institution, serial, *confirm)
        }
        FederationCommand::RegisterProvince(e) => fed_register_province(tx, e),
        FederationCommand::Directory { entries } => fed_directory(tx, entries),
        FederationCommand::File(f) => fed_file(tx, f),
        FederationCommand::Decide { transfer, insured, amount, decision, reason } => {
            fed_decide(tx, transfer, insured, *amount, *decision, reason, now)
        }
        FederationCommand::Reverse { transfer, reversal } => fed_reverse(tx, transfer, reversal, now),
        FederationCommand::Vouch { transfer, insured, amount } => fed_vouch(tx, transfer, insured, *amount),
        FederationCommand::Anchor { province, head } => fed_anchor(tx, province, head, now),
        FederationCommand::RecordViolation(v) => fed_record_violation(tx, v),
        FederationCommand::RecordCaseOutcome(o) => fed_record_case_outcome(tx, o),
        FederationCommand::PutRule(r) => fed_put_rule(tx, r, now),
        FederationCommand::RecordCreditLift(l) => fed_record_credit_lift(tx, l),
        FederationCommand::RecordAggregate { province, aggregate } => {
            crate::aggregate::record(tx, province, aggregate).map(|()| Outcome::Stored)
        }
        FederationCommand::RecordDisciplineLift(l) => fed_record_discipline_lift(tx, l),
        FederationCommand::SendReport(m) => fed_send_report(tx, m),
        FederationCommand::RecordCommitment(c) => fed_record_commitment(tx, c),
        FederationCommand::RecordDeclarationReview(r) => {
            let key = keys::fed_declaration_review(&r.province, &r.institution, &r.period);
            if crate::credit::newer_review(tx, &key, r)? {
                append_shared(tx, SharedItem::DeclarationReview(r.clone()));
            }
            Ok(Outcome::Stored)
        }
        FederationCommand::RecordIncentive(i) => {
            share_once(tx, &keys::fed_incentive(&i.province, &i.id), i, SharedItem::Incentive(i.clone()), || {
                DomainError::exists(
                    "id",
                    format!("incentive entry {} of {} was already shared with different content", i.id, i.province),
                )
            })
        }
    }
}
/// Federation: appends a resolved commitment to the shared log, once per province and id (its
/// fields were checked by [`crate::validate`]).
fn fed_record_commitment(tx: &mut Tx<'_>, c: &medmesh_supervision::credit::Commitment) -> Result<Outcome, DomainError> {
    share_once(tx, &keys::fed_commitment(&c.province, &c.id), c, SharedItem::Commitment(c.clone()), || {
        DomainError::exists(
            "id",
            format!("commitment {} of {} was already shared with different content", c.id, c.province),
        )
    })
}
/// Federation: puts a report message in its province's inbox. A message already sent is not
/// sent again: the first referral of a report stands, and progress equal to the last is
/// dropped. Nothing a well-formed message says is refused here (an unknown or the same
/// province, an unknown institution): a refusal would stop the sender's outbox, and the
/// addressed province answers such a referral by rejecting it.
fn fed_send_report(tx: &mut Tx<'_>, m: &crate::shared::ReportMessage) -> Result<Outcome, DomainError> {
    let last = keys::fed_report_message(m);
    match tx.load::<crate::shared::ReportMessage>(&last) {
        Some(_) if matches!(m.body, crate::shared::ReportMessageBody::Referral { .. }) => return Ok(Outcome::Stored),
        Some(old) if &old == m => return Ok(Outcome::Stored),
        _ => {}
    }
    let seq_key = keys::fed_inbox_seq(&m.to);
    let seq: u64 = tx.load(&seq_key).unwrap_or(0) + 1;
    tx.store(&seq_key, &seq);
    tx.store(&keys::fed_inbox(&m.to, seq), m);
    tx.store(&last, m);
    Ok(Outcome::Stored)
}
/// Federation: province `to`'s report messages after sequence `after`, at most `limit`.
pub fn report_inbox(
    kv: &dyn crate::kv::KvRead,
    to: &ProvinceCode,
    after: u64,
    limit: usize,
) -> Vec<(u64, crate::shared::ReportMessage)> {
    let start = keys::fed_inbox(to, after.saturating_add(1));
    let end = keys::fed_inbox(to, u64::MAX);
    kv.scan(start.as_bytes(), end.as_bytes(), limit)
        .iter()
        .filter_map(|(k, v)| {
            let seq = std::str::from_utf8(k).ok()?.rsplit('/').next()?.parse().ok()?;
            Some((seq, crate::kv::decode(v)))
        })
        .collect()
}
/// Federation: appends a joint-discipline entry's lift to the shared log, once per entry, only
/// for an entry the federation shared and only from the province that recorded it (its fields
/// were checked by [`crate::validate`]).
fn fed_record_discipline_lift(tx: &mut Tx<'_>, l: &crate::shared::DisciplineLift) -> Result<Outcome, DomainError> {
    let e: DisciplineEntry = tx
        .load(&keys::discipline(&l.subject, &l.id))
        .ok_or_else(|| DomainError::not_found("id", format!("no joint-discipline entry {} was shared", l.id)))?;
    if e.province != l.province {
        return Err(DomainError::precondition(
            "id",
            format!("entry {} was recorded by {}; only that province lifts it", l.id, e.province),
        ));
    }
    if crate::discipline::store_lift(tx, l)? {
        append_shared(tx, SharedItem::DisciplineLift(l.clone()));
    }
    Ok(Outcome::Stored)
}
