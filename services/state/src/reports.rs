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

use medmesh_supervision::cases::Case;
use medmesh_supervision::reports::{check_id, Report, ReportPolicy};
use medmesh_types::{InstitutionId, KeyedHash, LogTime, Sealed};

use crate::error::case_error;
use crate::kv::{keys, load, KvRead, Tx};
use crate::model::{FundLedger, Institution, Outcome};
use crate::DomainError;

pub use crate::model::{ReportCommand, ReportRecord, ReporterRead};

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
        ReportCommand::Submit { serial, summary, .. } => {
            check_id("serial", serial).map_err(case_error)?;
            medmesh_supervision::reports::check_text("summary", summary, true).map_err(case_error)
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

fn load_report(tx: &Tx<'_>, id: &str) -> Result<ReportRecord, DomainError> {
    tx.load(&keys::report(id)).ok_or_else(|| DomainError::not_found("report_id", format!("no report {id}")))
}

/// Applies a report command.
pub(crate) fn execute(tx: &mut Tx<'_>, cmd: &ReportCommand, now: LogTime) -> Result<Outcome, DomainError> {
    let today = now.date();
    let record = match cmd {
        ReportCommand::PutPolicy(p) => {
            tx.store(keys::REPORT_POLICY, p);
            return Ok(Outcome::ReportPolicy(p.clone()));
        }
        ReportCommand::Submit { serial, fingerprint, receipt, institution, summary, reporter } => {
            return submit(tx, serial, fingerprint, receipt, institution, summary, reporter, now)
        }
        ReportCommand::Acknowledge { id, accept, note } => {
            let mut r = load_report(tx, id)?;
            if r.report.acknowledged_on == Some(today) && r.report.reply == *note && accepted(&r) == Some(*accept) {
                return Ok(Outcome::Report(Box::new(r)));
            }
            r.report.acknowledge(*accept, note, today).map_err(case_error)?;
            r
        }
        ReportCommand::Conclude { id, reply } => {
            let mut r = load_report(tx, id)?;
            if r.report.concluded_on.is_some() && r.report.reply == *reply {
                return Ok(Outcome::Report(Box::new(r)));
            }
            r.report.conclude(reply, today).map_err(case_error)?;
            r
        }
        ReportCommand::PayReward { id, reference } => {
            let mut r = load_report(tx, id)?;
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
    now: LogTime,
) -> Result<Outcome, DomainError> {
    if let Some(id) = tx.load::<String>(&keys::report_serial(serial)) {
        let r = load_report(tx, &id)?;
        if &r.fingerprint == fingerprint {
            return Ok(Outcome::Report(Box::new(r)));
        }
        return Err(DomainError::exists("serial", format!("serial {serial} submitted another report")));
    }
    if tx.load::<Institution>(&keys::institution(institution)).is_none() {
        return Err(DomainError::not_found(
            "institution_id",
            format!("institution {institution} is not an institution of this province"),
        ));
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
    };
    tx.store(keys::REPORT_SEQ, &seq);
    tx.store(&keys::report_serial(serial), &id);
    tx.store(&keys::report_receipt(receipt), &id);
    tx.store(&keys::report(&id), &record);
    crate::tally::tally(tx, now.date(), |t| t.reports_received += 1);
    Ok(Outcome::Report(Box::new(record)))
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
    r.report.open_case(case_id, institution).map_err(case_error)?;
    tx.store(&keys::report(id), &r);
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
