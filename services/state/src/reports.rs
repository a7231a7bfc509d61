//! Reports (whistleblowing, issue 13.2) in a province: the store around the pure rules of
//! [`medmesh_supervision::reports`].
//!
//! - **Intake** is idempotent on the channel's serial: the same serial with the same content
//!   (its keyed fingerprint, computed at the edge) answers the report it made; other content is
//!   ALREADY_EXISTS naming `serial`. The province numbers reports `R-00000001`, … in log order.
//! - **The reporter** arrives sealed (AES-256-GCM under the province's key, the fingerprint as
//!   associated data): apply never sees a name or a contact. [`ReportCommand::Unseal`] is the
//!   only way to it: it records who asked and when in the report and in the log (the audit
//!   chain), and hands the sealed bytes back to the edge, which opens them for the report
//!   officer alone.
//! - **The receipt code** the reporter keeps is known here only by its keyed hash, the key of
//!   the status the reporter reads.
//! - **A reward** is paid from the pooling fund once per report, when the case it opened has
//!   been executed with a recovery ([`medmesh_supervision::reports::Report::pay_reward`]).
//! - **A report about another province's institution** ([`ReportRoute`]) is kept here with its
//!   reporter and referred to that province through the federation
//!   ([`ReportMessageBody::Referral`]: the institution, what is reported, whether anonymous;
//!   never the reporter, the fingerprint or the receipt). The institution's province handles it
//!   as its own report — acknowledges it, opens the case, pays the reward from its fund — and
//!   each step goes back as [`ReportMessageBody::Progress`], which updates the report here, so
//!   the reporter follows it by the receipt code where they reported it. Here, only the report
//!   officer's read of the reporter remains; the handling steps are refused naming
//!   `report_id`. A referral about an institution the addressed province does not have comes
//!   back rejected, saying so.

use medmesh_supervision::cases::Case;
use medmesh_supervision::reports::{check_id, Report, ReportPolicy};
use medmesh_types::{InstitutionId, KeyedHash, LogTime, ProvinceCode, Sealed};
use sha2::Digest;

use crate::error::case_error;
use crate::kv::{keys, load, KvRead, Tx};
use crate::model::{FundLedger, Institution, Outcome};
use crate::shared::{ReportMessage, ReportMessageBody};
use crate::DomainError;

pub use crate::model::{Referred, ReportCommand, ReportRecord, ReportRoute, ReporterRead};

/// Most reads of a reporter kept in the report (the audit chain keeps every one).
pub const MAX_READS_KEPT: usize = 32;

/// The province's report policy (the 2022 measures' defaults until one is put).
pub fn policy(kv: &dyn KvRead) -> ReportPolicy {
    load(kv, keys::REPORT_POLICY).unwrap_or_default()
}

/// What apply checks of a report command before anything else.
pub(crate) fn validate(cmd: &ReportCommand) -> Result<(), DomainError> {
    match cmd {
        ReportCommand::PutPolicy(p) => p.validate().map_err(case_error),
        ReportCommand::Submit { serial, summary, route, .. } => {
            check_id("serial", serial).map_err(case_error)?;
            medmesh_supervision::reports::check_text("summary", summary, true).map_err(case_error)?;
            if let Some(r) = route {
                crate::rules::province("province", &r.to)?;
                crate::rules::province("province", &r.here)?;
                if r.to == r.here {
                    return Err(DomainError::invalid("province", "is this province: the report needs no route"));
                }
            }
            Ok(())
        }
        ReportCommand::Acknowledge { id, note, .. } => {
            check_id("report_id", id).map_err(case_error)?;
            medmesh_supervision::reports::check_text("note", note, false).map_err(case_error)
        }
        ReportCommand::Conclude { id, reply } => {
            check_id("report_id", id).map_err(case_error)?;
            medmesh_supervision::reports::check_text("reply", reply, true).map_err(case_error)
        }
        ReportCommand::PayReward { id, reference } => {
            check_id("report_id", id).map_err(case_error)?;
            check_id("reference", reference).map_err(case_error)
        }
        ReportCommand::Unseal { id, officer } => {
            check_id("report_id", id).map_err(case_error)?;
            if officer.is_empty() || officer.len() > crate::MAX_TEXT {
                return Err(DomainError::invalid("officer", "is not an identity"));
            }
            Ok(())
        }
    }
}

/// Checks a report message's fields (it crossed a boundary: from another province, or from
/// the federation).
pub(crate) fn check_message(m: &ReportMessage) -> Result<(), DomainError> {
    crate::rules::province("from", &m.from)?;
    crate::rules::province("to", &m.to)?;
    check_id("origin_id", &m.origin_id).map_err(case_error)?;
    match &m.body {
        ReportMessageBody::Referral { summary, .. } => {
            medmesh_supervision::reports::check_text("summary", summary, true).map_err(case_error)
        }
        ReportMessageBody::Progress(r) => check_progress(r).map_err(|e| case_error(e).within("report")),
    }
}

/// Checks the handling province's report as progress carries it.
fn check_progress(r: &Report) -> Result<(), medmesh_supervision::cases::CaseError> {
    use medmesh_supervision::reports::{check_text, reward_ceiling, reward_floor};
    check_id("report_id", &r.id)?;
    check_text("summary", &r.summary, true)?;
    check_text("reply", &r.reply, false)?;
    r.case_id.as_deref().map_or(Ok(()), |c| check_id("case_id", c))?;
    if let Some(w) = &r.reward {
        check_id("reward.reference", &w.reference)?;
        if w.amount < reward_floor() || w.amount > reward_ceiling() {
            return Err(medmesh_supervision::cases::CaseError::Invalid {
                field: "reward.amount".into(),
                message: "is outside 200 to 200,000 yuan".into(),
            });
        }
    }
    Ok(())
}

fn load_report(tx: &Tx<'_>, id: &str) -> Result<ReportRecord, DomainError> {
    tx.load(&keys::report(id)).ok_or_else(|| DomainError::not_found("report_id", format!("no report {id}")))
}

/// Loads a report this province handles: one it referred to another province is handled there.
fn load_handled(tx: &Tx<'_>, id: &str) -> Result<ReportRecord, DomainError> {
    let r = load_report(tx, id)?;
    if let Some(p) = &r.handled_by {
        return Err(DomainError::precondition(
            "report_id",
            format!("report {id} is about an institution of province {p}, which handles it"),
        ));
    }
    Ok(r)
}

/// Tells the province that referred a report (if one did) where it stands now.
fn notify(tx: &mut Tx<'_>, r: &ReportRecord) {
    if let Some(from) = &r.referred {
        crate::kv::outbox(
            tx,
            crate::shared::SharedItem::ReportMessage(ReportMessage {
                from: from.here.clone(),
                to: from.by.clone(),
                origin_id: from.origin_id.clone(),
                body: ReportMessageBody::Progress(r.report.clone()),
            }),
        );
    }
}

/// Applies a report command.
pub(crate) fn execute(tx: &mut Tx<'_>, cmd: &ReportCommand, now: LogTime) -> Result<Outcome, DomainError> {
    let today = now.date();
    let record = match cmd {
        ReportCommand::PutPolicy(p) => {
            tx.store(keys::REPORT_POLICY, p);
            return Ok(Outcome::ReportPolicy(p.clone()));
        }
        ReportCommand::Submit { serial, fingerprint, receipt, institution, summary, reporter, route } => {
            return submit(tx, serial, fingerprint, receipt, institution, summary, reporter, route.as_ref(), now)
        }
        ReportCommand::Acknowledge { id, accept, note } => {
            let mut r = load_handled(tx, id)?;
            if r.report.acknowledged_on == Some(today) && r.report.reply == *note && accepted(&r) == Some(*accept) {
                return Ok(Outcome::Report(Box::new(r)));
            }
            r.report.acknowledge(*accept, note, today).map_err(case_error)?;
            r
        }
        ReportCommand::Conclude { id, reply } => {
            let mut r = load_handled(tx, id)?;
            if r.report.concluded_on.is_some() && r.report.reply == *reply {
                return Ok(Outcome::Report(Box::new(r)));
            }
            r.report.conclude(reply, today).map_err(case_error)?;
            r
        }
        ReportCommand::PayReward { id, reference } => {
            let mut r = load_handled(tx, id)?;
            let already = r.report.reward.is_some();
            let recovered = r
                .report
                .case_id
                .as_ref()
                .and_then(|c| tx.load::<Case>(&keys::case(c)))
                .filter(|c| c.executed_on.is_some())
                .and_then(|c| c.outcome())
                .map(|o| o.recovered);
            let reward = r.report.pay_reward(recovered, reference, today, &policy(tx)).map_err(case_error)?;
            if !already {
                let mut fund: FundLedger = tx.load(keys::FUND).unwrap_or_default();
                fund.rewards_paid += reward.amount;
                tx.store(keys::FUND, &fund);
            }
            r
        }
        ReportCommand::Unseal { id, officer } => {
            let mut r = load_report(tx, id)?;
            if let Some(from) = &r.referred {
                return Err(DomainError::precondition(
                    "report_id",
                    format!("report {id} was referred by province {}, which alone keeps its reporter", from.by),
                ));
            }
            if r.reporter.is_none() {
                return Err(DomainError::precondition("report_id", format!("report {id} is anonymous")));
            }
            r.read_count += 1;
            r.reads.push(ReporterRead { at: now, officer: officer.clone() });
            if r.reads.len() > MAX_READS_KEPT {
                r.reads.remove(0);
            }
            r
        }
    };
    tx.store(&keys::report(&record.report.id), &record);
    if !matches!(cmd, ReportCommand::Unseal { .. }) {
        notify(tx, &record);
    }
    Ok(Outcome::Report(Box::new(record)))
}

fn accepted(r: &ReportRecord) -> Option<bool> {
    match r.report.state {
        medmesh_supervision::reports::ReportState::Received => None,
        medmesh_supervision::reports::ReportState::Rejected => Some(false),
        _ => Some(true),
    }
}

#[allow(clippy::too_many_arguments)] // the fields of the submission
fn submit(
    tx: &mut Tx<'_>,
    serial: &str,
    fingerprint: &KeyedHash,
    receipt: &KeyedHash,
    institution: &InstitutionId,
    summary: &str,
    reporter: &Option<Sealed>,
    route: Option<&ReportRoute>,
    now: LogTime,
) -> Result<Outcome, DomainError> {
    if let Some(id) = tx.load::<String>(&keys::report_serial(serial)) {
        let r = load_report(tx, &id)?;
        if &r.fingerprint == fingerprint {
            return Ok(Outcome::Report(Box::new(r)));
        }
        return Err(DomainError::exists("serial", format!("serial {serial} submitted another report")));
    }
    let local = tx.load::<Institution>(&keys::institution(institution)).is_some();
    match route {
        None if !local => {
            return Err(DomainError::not_found(
                "institution_id",
                format!("institution {institution} is not an institution of this province"),
            ))
        }
        Some(r) if local => {
            return Err(DomainError::invalid(
                "province",
                format!("institution {institution} is an institution of this province, not of {}", r.to),
            ))
        }
        _ => {}
    }
    let seq = tx.load::<u64>(keys::REPORT_SEQ).unwrap_or(0) + 1;
    let id = format!("R-{seq:08}");
    let report = Report::receive(&id, institution.clone(), summary, reporter.is_none(), now.date(), &policy(tx))
        .map_err(case_error)?;
    let record = ReportRecord {
        report,
        fingerprint: fingerprint.clone(),
        reporter: reporter.clone(),
        read_count: 0,
        reads: Vec::new(),
        handled_by: route.map(|r| r.to.clone()),
        referred: None,
    };
    tx.store(keys::REPORT_SEQ, &seq);
    tx.store(&keys::report_serial(serial), &id);
    tx.store(&keys::report_receipt(receipt), &id);
    tx.store(&keys::report(&id), &record);
    if let Some(r) = route {
        crate::kv::outbox(
            tx,
            crate::shared::SharedItem::ReportMessage(ReportMessage {
                from: r.here.clone(),
                to: r.to.clone(),
                origin_id: id.clone(),
                body: ReportMessageBody::Referral {
                    institution: institution.clone(),
                    summary: summary.to_string(),
                    anonymous: reporter.is_none(),
                    received_on: now.date(),
                },
            }),
        );
    }
    crate::tally::tally(tx, now.date(), |t| t.reports_received += 1);
    Ok(Outcome::Report(Box::new(record)))
}

/// Takes report messages from this province's inbox at the federation, in order: a batch that
/// would skip a sequence is refused whole, as is one with a message for another province.
pub(crate) fn receive(
    tx: &mut Tx<'_>,
    here: &ProvinceCode,
    items: &[(u64, ReportMessage)],
    now: LogTime,
) -> Result<Outcome, DomainError> {
    let mut cursor: u64 = tx.load(keys::REPORT_INBOX_CURSOR).unwrap_or(0);
    crate::discipline::check_contiguous("inbox message", cursor, items.iter().map(|(seq, _)| *seq))?;
    for (i, (_, m)) in items.iter().enumerate() {
        if &m.to != here {
            return Err(DomainError::precondition(
                format!("items[{i}].to"),
                format!("the message is for province {}, not {here}", m.to),
            ));
        }
    }
    for (seq, m) in items {
        if *seq <= cursor {
            continue;
        }
        match &m.body {
            ReportMessageBody::Referral { institution, summary, anonymous, .. } => {
                referral(tx, m, institution, summary, *anonymous, now)?
            }
            ReportMessageBody::Progress(r) => progress(tx, m, r),
        }
        cursor = *seq;
    }
    tx.store(keys::REPORT_INBOX_CURSOR, &cursor);
    Ok(Outcome::Synced { cursor })
}

/// A report another province received about an institution of this one: handled here as a
/// report of its own, without a reporter (the referring province keeps it), once.
fn referral(
    tx: &mut Tx<'_>,
    m: &ReportMessage,
    institution: &InstitutionId,
    summary: &str,
    anonymous: bool,
    now: LogTime,
) -> Result<(), DomainError> {
    let key = keys::report_referral(&m.from, &m.origin_id);
    if tx.load::<String>(&key).is_some() {
        return Ok(());
    }
    let today = now.date();
    let seq = tx.load::<u64>(keys::REPORT_SEQ).unwrap_or(0) + 1;
    let id = format!("R-{seq:08}");
    let mut report =
        Report::receive(&id, institution.clone(), summary, anonymous, today, &policy(tx)).map_err(case_error)?;
    let unknown = tx.load::<Institution>(&keys::institution(institution)).is_none();
    if unknown {
        let note = format!("institution {institution} is not an institution of province {}", m.to);
        report.acknowledge(false, &note, today).map_err(case_error)?;
    }
    // No submission here to fingerprint: a stand-in no receipt code or seal ever uses.
    let stand_in = format!("{:x}", sha2::Sha256::digest(format!("referral/{}/{}", m.from, m.origin_id)));
    let record = ReportRecord {
        report,
        fingerprint: KeyedHash::new(stand_in).map_err(|_| DomainError::invalid("origin_id", "does not hash"))?,
        reporter: None,
        read_count: 0,
        reads: Vec::new(),
        handled_by: None,
        referred: Some(Referred { by: m.from.clone(), origin_id: m.origin_id.clone(), here: m.to.clone() }),
    };
    tx.store(keys::REPORT_SEQ, &seq);
    tx.store(&key, &id);
    tx.store(&keys::report(&id), &record);
    if unknown {
        notify(tx, &record);
    }
    Ok(())
}

/// The handling province's progress on a report referred from here: the reporter reads it
/// here. Only the province the report was referred to reports on it.
fn progress(tx: &mut Tx<'_>, m: &ReportMessage, there: &Report) {
    let Some(mut r) = tx.load::<ReportRecord>(&keys::report(&m.origin_id)) else { return };
    if r.handled_by.as_ref() != Some(&m.from) {
        return;
    }
    let p = &mut r.report;
    p.state = there.state;
    p.acknowledged_on = there.acknowledged_on;
    p.reply = there.reply.clone();
    p.case_id = there.case_id.clone();
    p.concluded_on = there.concluded_on;
    p.reward = there.reward.clone();
    tx.store(&keys::report(&m.origin_id), &r);
}

/// Records, when a case is opened from report `id`, the case in the report (see
/// [`Report::open_case`]).
pub(crate) fn open_case(
    tx: &mut Tx<'_>,
    id: &str,
    case_id: &str,
    institution: &InstitutionId,
) -> Result<(), DomainError> {
    let mut r: ReportRecord = tx
        .load(&keys::report(id))
        .ok_or_else(|| DomainError::not_found("source.report_id", format!("no report {id}")))?;
    if let Some(p) = &r.handled_by {
        return Err(DomainError::precondition(
            "source.report_id",
            format!("report {id} is about an institution of province {p}, which handles it"),
        ));
    }
    let before = r.report.case_id.clone();
    r.report.open_case(case_id, institution).map_err(case_error)?;
    tx.store(&keys::report(id), &r);
    if before.is_none() {
        notify(tx, &r);
    }
    Ok(())
}

/// The report a receipt code's keyed hash names.
pub fn by_receipt(kv: &dyn KvRead, receipt: &KeyedHash) -> Result<ReportRecord, DomainError> {
    load::<String>(kv, &keys::report_receipt(receipt))
        .and_then(|id| load::<ReportRecord>(kv, &keys::report(&id)))
        .ok_or_else(|| DomainError::not_found("receipt_code", "no report has this receipt code"))
}

/// Reports by id after `after`, at most `limit`.
pub fn reports(kv: &dyn KvRead, after: &str, limit: usize) -> Vec<ReportRecord> {
    let start =
        if after.is_empty() { keys::REPORT_PREFIX.to_string() } else { format!("{}\u{0}", keys::report(after)) };
    kv.scan(start.as_bytes(), b"report0", limit).iter().map(|(_, v)| crate::kv::decode(v)).collect()
}
