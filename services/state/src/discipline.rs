//! Joint-discipline entries and the province's copy of the federation's shared log. Entries
//! are indexed by their last day in force, so the entries in force on a day are found without
//! reading expired ones.

use medmesh_types::Date;

use crate::kv::{keys, Tx};
use crate::model::*;
use crate::rules::province;
use crate::shared::*;
use crate::DomainError;

/// Province: copies the federation's shared log.
/// The federation numbers a log (the shared log, a province's report inbox) 1, 2, 3, …: a
/// batch that would move a cursor past an entry it does not carry is refused whole (issue 10:
/// cursors never skip), naming the first entry after the gap.
pub(crate) fn check_contiguous(what: &str, cursor: u64, seqs: impl Iterator<Item = u64>) -> Result<(), DomainError> {
    let mut next = cursor;
    for (i, seq) in seqs.enumerate() {
        if seq > next + 1 {
            return Err(DomainError::precondition(
                format!("items[{i}]"),
                format!("{what} {seq} follows {next}: {}s {} to {} are missing", what, next + 1, seq - 1),
            ));
        }
        next = next.max(seq);
    }
    Ok(())
}

pub(crate) fn sync_shared(
    tx: &mut Tx<'_>,
    items: &[(u64, SharedItem)],
    now: medmesh_types::LogTime,
) -> Result<Outcome, DomainError> {
    let mut cursor: u64 = tx.load(keys::SHARED_CURSOR).unwrap_or(0);
    // A dropped or withheld violation cannot be stepped over.
    check_contiguous("shared-log item", cursor, items.iter().map(|(seq, _)| *seq))?;
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
            SharedItem::CaseOutcome(o) => copy_outcome(tx, o),
            // A lifted entry: checked, stored once, only for an entry of the same province.
            SharedItem::DisciplineLift(l) => {
                let entry = tx.load::<DisciplineEntry>(&keys::discipline(&l.subject, &l.id));
                if check_lift(l).is_ok() && entry.is_some_and(|e| e.province == l.province) {
                    let _ = store_lift(tx, l);
                }
            }
            // A lifted credit entry: checked, stored once (it came from another group).
            SharedItem::CreditLift(l) => {
                let key = keys::credit_lift(&l.institution, &l.province, &l.case_id);
                if tx.load::<medmesh_supervision::credit::Lift>(&key).is_none()
                    && l.validate().is_ok()
                    && province("province", &l.province).is_ok()
                {
                    tx.store(&key, l);
                }
            }
            // A national rule: compiled again here (it came from another group); one that
            // cannot be recorded (a version out of order, an id this province uses for its own
            // rule) is skipped, never half-stored.
            SharedItem::Rule(r) => {
                if medmesh_monitor::compile(r).is_ok() {
                    let _ = crate::monitoring::put_rule(tx, r, true, now);
                }
            }
            // Aggregates go to the federation only; one in the shared log is not for provinces.
            SharedItem::Aggregate(_) => {}
            // Report messages go to one province's inbox, never into the shared log.
            SharedItem::ReportMessage(_) => {}
            // A resolved commitment of another province: checked, stored once.
            SharedItem::Commitment(c) => {
                let key = keys::commitment(&c.party, &c.province, &c.id);
                if crate::credit::check_shared(c).is_ok()
                    && tx.load::<medmesh_supervision::credit::Commitment>(&key).is_none_or(|old| old.outcome.is_none())
                {
                    tx.store(&key, c);
                }
            }
            // A reviewed declaration of another province: checked, kept when newer.
            SharedItem::DeclarationReview(r) => {
                let key = keys::declaration_review(&r.institution, &r.province, &r.period);
                if crate::credit::check_review(r).is_ok() {
                    let _ = crate::credit::newer_review(tx, &key, r);
                }
            }
            // An incentive entry of another province: checked, stored once.
            SharedItem::Incentive(i) => {
                let key = keys::incentive(&i.party, &i.province, &i.id);
                if crate::credit::check_incentive(i).is_ok()
                    && tx.load::<medmesh_supervision::credit::Incentive>(&key).is_none()
                {
                    tx.store(&key, i);
                }
            }
        }
        cursor = *seq;
    }
    tx.store(keys::SHARED_CURSOR, &cursor);
    Ok(Outcome::Synced { cursor })
}
/// Records a case outcome copied from the shared log (checked: it came from another group).
fn copy_outcome(tx: &mut Tx<'_>, o: &medmesh_supervision::cases::CaseOutcome) {
    let key = keys::case_outcome(&o.institution, &o.province, &o.case_id);
    if tx.load::<medmesh_supervision::cases::CaseOutcome>(&key).is_none()
        && o.validate().is_ok()
        && province("province", &o.province).is_ok()
    {
        tx.store(&key, o);
    }
}
/// Checks a joint-discipline entry's id.
pub(crate) fn check_id(id: &str) -> Result<(), DomainError> {
    if id.is_empty() || id.len() > 128 || id.chars().any(|c| c == '/' || c.is_control()) {
        return Err(DomainError::invalid("id", "must be 1 to 128 characters without '/'"));
    }
    Ok(())
}
/// Checks the reason of an entry or a lift.
pub(crate) fn check_reason(reason: &str) -> Result<(), DomainError> {
    if reason.trim().is_empty() || reason.len() > 256 || reason.chars().any(char::is_control) {
        return Err(DomainError::invalid("reason", "must be 1 to 256 bytes without control characters"));
    }
    Ok(())
}
/// Checks the subject of an entry or a lift: a person only by a directory key.
pub(crate) fn check_subject(subject: &DisciplineSubject) -> Result<(), DomainError> {
    match subject {
        DisciplineSubject::Person(k) if !is_directory_key(k) => {
            Err(DomainError::invalid("certificate", "is not a directory key"))
        }
        _ => Ok(()),
    }
}
/// Checks a lift's fields.
pub(crate) fn check_lift(l: &DisciplineLift) -> Result<(), DomainError> {
    check_id(&l.id)?;
    check_subject(&l.subject)?;
    check_reason(&l.reason)?;
    province("province", &l.province)
}
/// Checks a joint-discipline entry's fields.
pub(crate) fn check_discipline(e: &DisciplineEntry) -> Result<(), DomainError> {
    check_id(&e.id)?;
    check_subject(&e.subject)?;
    if e.until < e.from {
        return Err(DomainError::invalid("until", format!("{} is before from {}", e.until, e.from)));
    }
    if e.reason.trim().is_empty() || e.reason.len() > 256 {
        return Err(DomainError::invalid("reason", "must be 1 to 256 bytes"));
    }
    province("province", &e.province)
}
pub(crate) fn store_discipline(tx: &mut Tx<'_>, e: &DisciplineEntry) -> Result<bool, DomainError> {
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
/// Stores a lift once: the same lift again is no change (false), another for the same entry
/// is ALREADY_EXISTS naming `id`.
pub(crate) fn store_lift(tx: &mut Tx<'_>, l: &DisciplineLift) -> Result<bool, DomainError> {
    let key = keys::discipline_lift(&l.subject, &l.id);
    match tx.load::<DisciplineLift>(&key) {
        Some(old) if &old == l => Ok(false),
        Some(old) => Err(DomainError::exists("id", format!("entry {} was lifted on {} already", l.id, old.lifted_on))),
        None => {
            tx.store(&key, l);
            Ok(true)
        }
    }
}
/// Province: lifts one of its own joint-discipline entries from `today`, here at once and in
/// every province once the federation shares it (through the outbox). Asked again with the
/// same reason, it answers the lift recorded then. Its fields were checked by
/// [`crate::validate`].
pub(crate) fn lift_discipline(
    tx: &mut Tx<'_>,
    province: &medmesh_types::ProvinceCode,
    subject: &DisciplineSubject,
    id: &str,
    reason: &str,
    today: Date,
) -> Result<Outcome, DomainError> {
    let e: DisciplineEntry = tx
        .load(&keys::discipline(subject, id))
        .ok_or_else(|| DomainError::not_found("id", format!("no joint-discipline entry {id} of this subject")))?;
    if &e.province != province {
        return Err(DomainError::precondition(
            "id",
            format!("entry {id} was recorded by {}; only that province lifts it", e.province),
        ));
    }
    if let Some(old) = tx.load::<DisciplineLift>(&keys::discipline_lift(subject, id)) {
        if old.reason == reason {
            return Ok(Outcome::DisciplineLifted(Box::new((e, old))));
        }
        return Err(DomainError::exists("id", format!("entry {id} was lifted on {} already", old.lifted_on)));
    }
    if e.until < today {
        return Err(DomainError::precondition(
            "id",
            format!("entry {id} ended on {}: there is nothing to lift", e.until),
        ));
    }
    let lift = DisciplineLift {
        subject: subject.clone(),
        id: id.to_string(),
        province: province.clone(),
        lifted_on: today,
        reason: reason.to_string(),
    };
    store_lift(tx, &lift)?;
    crate::kv::outbox(tx, SharedItem::DisciplineLift(lift.clone()));
    Ok(Outcome::DisciplineLifted(Box::new((e, lift))))
}
/// Province: records a joint-discipline entry at once.
pub(crate) fn record_discipline(tx: &mut Tx<'_>, e: &DisciplineEntry, today: Date) -> Result<Outcome, DomainError> {
    if store_discipline(tx, e)? {
        crate::tally::tally(tx, today, |t| t.discipline_entries += 1);
    }
    Ok(Outcome::Stored)
}
