//! Conversions of reports (whistleblowing, issue 13.2), and the sealing of the reporter at the
//! edge: the name and contact are sealed here, before the command enters the log, and opened
//! here for the report officer alone.

use medmesh_seal::SealKey;
use medmesh_state::reports::{ReportCommand, ReportRecord, ReportRoute};
use medmesh_supervision::reports::{Report, ReportPolicy, ReportState};
use medmesh_types::{KeyedHash, Money, ProvinceCode};
use rust_decimal::prelude::ToPrimitive;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use tonic::Status;

use super::{bad, institution, money, province};
use crate::pb;

/// Longest reporter name, in bytes.
pub const MAX_REPORTER_NAME: usize = 100;
/// Longest reporter contact, in bytes.
pub const MAX_REPORTER_CONTACT: usize = 200;

/// The reporter as sealed.
#[derive(Serialize, Deserialize)]
struct ReporterSecrets {
    name: String,
    contact: String,
}

fn day(d: Option<medmesh_types::Date>) -> String {
    d.map(|d| d.to_string()).unwrap_or_default()
}

fn field_text(field: &str, v: &str, max: usize) -> Result<(), Status> {
    if v.len() > max || v.chars().any(char::is_control) {
        return Err(bad(field, format!("must be at most {max} bytes without control characters")));
    }
    Ok(())
}

/// `field: value` pairs, length-prefixed, so no two submissions share a text.
fn canonical(parts: &[&str]) -> String {
    parts.iter().map(|p| format!("{}:{p}", p.len())).collect::<Vec<_>>().join(",")
}

/// The receipt code of a submission's fingerprint: `RC-` and 24 hex digits (96 bits).
fn receipt_code(seal: &SealKey, fingerprint: &KeyedHash) -> String {
    format!("RC-{}", &seal.hash("report-receipt", fingerprint.as_str()).as_str()[..24])
}

/// The keyed hash a receipt code is stored under.
fn receipt_key(seal: &SealKey, code: &str) -> KeyedHash {
    seal.hash("report-receipt-code", code)
}

/// A submission from the wire to province `here`: the command (reporter sealed; routed when
/// the institution's province is another) and the receipt code to give back.
pub fn submit_report(
    r: pb::SubmitReportRequest,
    here: &ProvinceCode,
    seal: &SealKey,
) -> Result<(ReportCommand, String), Status> {
    medmesh_supervision::reports::check_id("serial", &r.serial).map_err(|e| bad("serial", field_message(&e)))?;
    let inst = institution("institution_id", &r.institution_id)?;
    let route = match r.province.trim() {
        "" => None,
        p => {
            let to = province("province", p)?;
            (&to != here).then(|| ReportRoute { here: here.clone(), to })
        }
    };
    medmesh_supervision::reports::check_text("summary", &r.summary, true)
        .map_err(|e| bad("summary", field_message(&e)))?;
    let reporter = r.reporter.unwrap_or_default();
    field_text("reporter.name", &reporter.name, MAX_REPORTER_NAME)?;
    field_text("reporter.contact", &reporter.contact, MAX_REPORTER_CONTACT)?;
    let to = route.as_ref().map(|x| x.to.as_str()).unwrap_or_default();
    let fingerprint =
        seal.hash("report", &canonical(&[&r.serial, inst.as_str(), &r.summary, &reporter.name, &reporter.contact, to]));
    let named = !reporter.name.trim().is_empty() || !reporter.contact.trim().is_empty();
    let sealed = if named {
        let plain = serde_json::to_vec(&ReporterSecrets { name: reporter.name, contact: reporter.contact })
            .map_err(|_| Status::internal("reporter: could not be encoded"))?;
        Some(seal.seal(&fingerprint, &plain).map_err(|_| Status::unavailable("no randomness to seal the reporter"))?)
    } else {
        None
    };
    let code = receipt_code(seal, &fingerprint);
    Ok((
        ReportCommand::Submit {
            serial: r.serial,
            receipt: receipt_key(seal, &code),
            fingerprint,
            institution: inst,
            summary: r.summary,
            reporter: sealed,
            route,
        },
        code,
    ))
}

fn field_message(e: &medmesh_supervision::cases::CaseError) -> String {
    let text = e.to_string();
    text.split_once(": ").map(|(_, m)| m.to_string()).unwrap_or(text)
}

/// The receipt code of a stored report (a retry of its submission gets it again).
pub fn receipt_of(record: &ReportRecord, seal: &SealKey) -> String {
    receipt_code(seal, &record.fingerprint)
}

/// The keyed hash of a receipt code as the reporter sends it.
pub fn receipt_lookup(code: &str, seal: &SealKey) -> Result<KeyedHash, Status> {
    let ok = code.len() == 27
        && code.starts_with("RC-")
        && code[3..].bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
    if !ok {
        return Err(bad("receipt_code", "must be RC- and 24 lower-case hex digits, as SubmitReport gave it"));
    }
    Ok(receipt_key(seal, code))
}

/// Opens a report's sealed reporter (for the report officer).
pub fn open_reporter(record: &ReportRecord, seal: &SealKey) -> Result<pb::Reporter, Status> {
    let sealed = record
        .reporter
        .as_ref()
        .ok_or_else(|| Status::failed_precondition(format!("report_id: report {} is anonymous", record.report.id)))?;
    let plain = seal.open(&record.fingerprint, sealed).map_err(|_| {
        Status::failed_precondition(format!(
            "report_id: report {}'s reporter does not open under this province's seal key",
            record.report.id
        ))
    })?;
    let s: ReporterSecrets = serde_json::from_slice(&plain).map_err(|_| {
        Status::failed_precondition(format!("report_id: report {}'s reporter does not decode", record.report.id))
    })?;
    Ok(pb::Reporter { name: s.name, contact: s.contact })
}

fn state_pb(s: ReportState) -> i32 {
    (match s {
        ReportState::Received => pb::ReportState::Received,
        ReportState::Accepted => pb::ReportState::Accepted,
        ReportState::Rejected => pb::ReportState::Rejected,
        ReportState::Concluded => pb::ReportState::Concluded,
    }) as i32
}

/// A report as the agency sees it (`today`: the group's day, for `overdue`).
pub fn report_pb(r: &ReportRecord, today: Option<medmesh_types::Date>) -> pb::Report {
    let p: &Report = &r.report;
    let last = r.reads.last();
    pb::Report {
        report_id: p.id.clone(),
        institution_id: p.institution.to_string(),
        summary: p.summary.clone(),
        anonymous: p.anonymous,
        state: state_pb(p.state),
        received_on: p.received_on.to_string(),
        acknowledge_by: p.acknowledge_by.to_string(),
        overdue: today.is_some_and(|t| p.overdue(t)),
        acknowledged_on: day(p.acknowledged_on),
        reply: p.reply.clone(),
        case_id: p.case_id.clone().unwrap_or_default(),
        concluded_on: day(p.concluded_on),
        reward: p.reward.as_ref().map(|w| w.amount.to_string()).unwrap_or_default(),
        reward_reference: p.reward.as_ref().map(|w| w.reference.clone()).unwrap_or_default(),
        reporter_reads: r.read_count,
        last_read_by: last.map(|l| l.officer.clone()).unwrap_or_default(),
        last_read_at_ms: last.map(|l| l.at.millis()).unwrap_or_default(),
        handled_by: r.handled_by.as_ref().map(|p| p.to_string()).unwrap_or_default(),
        referred_by: r.referred.as_ref().map(|x| x.by.to_string()).unwrap_or_default(),
        referred_report_id: r.referred.as_ref().map(|x| x.origin_id.clone()).unwrap_or_default(),
    }
}

/// A report as its reporter sees it.
pub fn report_status_pb(r: &ReportRecord) -> pb::GetReportStatusResponse {
    let p = &r.report;
    pb::GetReportStatusResponse {
        report_id: p.id.clone(),
        state: state_pb(p.state),
        received_on: p.received_on.to_string(),
        acknowledge_by: p.acknowledge_by.to_string(),
        acknowledged_on: day(p.acknowledged_on),
        reply: p.reply.clone(),
        concluded_on: day(p.concluded_on),
        reward: p.reward.as_ref().map(|w| w.amount.to_string()).unwrap_or_default(),
        reward_reference: p.reward.as_ref().map(|w| w.reference.clone()).unwrap_or_default(),
        handled_by: r.handled_by.as_ref().map(|p| p.to_string()).unwrap_or_default(),
    }
}

/// A report policy from the wire.
pub fn report_policy(p: Option<pb::ReportPolicy>) -> Result<ReportPolicy, Status> {
    let p = p.ok_or_else(|| bad("policy", "is required"))?;
    let share: Decimal =
        p.reward_share.trim().parse().map_err(|_| bad("policy.reward_share", "must be a decimal such as 0.05"))?;
    let permille = share * Decimal::from(1000);
    if share <= Decimal::ZERO || share > Decimal::ONE || permille.fract() != Decimal::ZERO {
        return Err(bad("policy.reward_share", "must be above 0 and at most 1, with at most 3 decimals"));
    }
    let permille = permille.to_u32().ok_or_else(|| bad("policy.reward_share", "is too large"))?;
    let policy = ReportPolicy {
        reward_permille: permille,
        min_reward: money("policy.min_reward", &p.min_reward)?,
        max_reward: money("policy.max_reward", &p.max_reward)?,
        acknowledge_days: p.acknowledge_days,
    };
    policy.validate().map_err(|e| bad(&format!("policy.{}", e.field()), field_message(&e)))?;
    Ok(policy)
}

/// A report policy on the wire.
pub fn report_policy_pb(p: &ReportPolicy) -> pb::ReportPolicy {
    let share = Decimal::new(i64::from(p.reward_permille), 3).normalize();
    pb::ReportPolicy {
        reward_share: share.to_string(),
        min_reward: p.min_reward.to_string(),
        max_reward: p.max_reward.to_string(),
        acknowledge_days: p.acknowledge_days,
    }
}

/// A reward's amount, recovery and case on the wire.
pub fn reward_pb(r: &ReportRecord) -> (String, String, String) {
    match &r.report.reward {
        Some(w) => (w.amount.to_string(), w.recovered.to_string(), w.case_id.clone()),
        None => (Money::ZERO.to_string(), Money::ZERO.to_string(), String::new()),
    }
}
