//! Conversions of the hospital service's messages.

use medmesh_settlement::{FeeLine, ItemClass, LineSplit, SelfPayReason, Split};
use medmesh_state::{ProvinceCommand, Settlement, SettlementStatus};
use tonic::Status;

use super::*;
use crate::pb;

/// A visit registration, with the certificate already hashed at the edge (`certificate`).
pub fn register_visit(
    r: pb::RegisterVisitRequest,
    certificate: medmesh_types::KeyedHash,
) -> Result<ProvinceCommand, Status> {
    Ok(ProvinceCommand::RegisterVisit {
        institution: institution("institution_id", &r.institution_id)?,
        serial: serial("serial", &r.serial)?,
        certificate_kind: certificate_kind("certificate_kind", r.certificate_kind)?,
        certificate,
        kind: visit_kind("kind", r.kind)?,
        doctor: personnel_code("doctor_code", &r.doctor_code)?,
        department: r.department,
        diagnosis: r.diagnosis,
        admitted: date("admitted", &r.admitted)?,
    })
}

pub fn upload_fees(r: pb::UploadFeesRequest) -> Result<ProvinceCommand, Status> {
    Ok(ProvinceCommand::UploadFees {
        institution: institution("institution_id", &r.institution_id)?,
        visit: serial("visit_serial", &r.visit_serial)?,
        lines: fee_lines(r.lines)?,
    })
}

/// A request's fee lines (at most [`MAX_UPLOAD_LINES`]), each field checked by name.
fn fee_lines(pb_lines: Vec<pb::FeeLine>) -> Result<Vec<FeeLine>, Status> {
    if pb_lines.len() > MAX_UPLOAD_LINES {
        return Err(Status::resource_exhausted(format!("lines: at most {MAX_UPLOAD_LINES} lines per upload")));
    }
    let mut lines = Vec::with_capacity(pb_lines.len());
    for (i, l) in pb_lines.into_iter().enumerate() {
        let f = |n: &str| format!("lines[{i}].{n}");
        lines.push(FeeLine {
            serial: serial(&f("serial"), &l.serial)?,
            code: item_code(&f("code"), &l.code)?,
            quantity: quantity(&f("quantity"), &l.quantity)?,
            unit_price: money(&f("unit_price"), &l.unit_price)?,
            date: date(&f("date"), &l.date)?,
        });
    }
    Ok(lines)
}

/// `Settle`, or `SettleWithLines` when the request carries lines.
pub fn settle(r: pb::SettleRequest) -> Result<ProvinceCommand, Status> {
    let (institution, settlement, visit) = (
        institution("institution_id", &r.institution_id)?,
        serial("serial", &r.serial)?,
        serial("visit_serial", &r.visit_serial)?,
    );
    let use_individual_account = r.use_individual_account;
    if r.lines.is_empty() {
        return Ok(ProvinceCommand::Settle { institution, serial: settlement, visit, use_individual_account });
    }
    let lines = fee_lines(r.lines)?;
    Ok(ProvinceCommand::SettleWithLines { institution, serial: settlement, visit, use_individual_account, lines })
}

pub fn reverse(r: pb::ReverseRequest) -> Result<ProvinceCommand, Status> {
    Ok(ProvinceCommand::Reverse {
        institution: institution("institution_id", &r.institution_id)?,
        serial: serial("serial", &r.serial)?,
        settlement: serial("settlement_serial", &r.settlement_serial)?,
    })
}

fn class_text(c: ItemClass) -> &'static str {
    match c {
        ItemClass::A => "A",
        ItemClass::B => "B",
        ItemClass::C => "C",
    }
}

fn reason_text(r: Option<SelfPayReason>) -> String {
    match r {
        None => String::new(),
        Some(SelfPayReason::ClassC) => "CLASS_C".into(),
        Some(SelfPayReason::SexRestriction) => "SEX_RESTRICTION".into(),
        Some(SelfPayReason::AgeRestriction) => "AGE_RESTRICTION".into(),
        Some(SelfPayReason::InstitutionLevelRestriction) => "INSTITUTION_LEVEL_RESTRICTION".into(),
        Some(SelfPayReason::QuantityRestriction) => "QUANTITY_RESTRICTION".into(),
        Some(SelfPayReason::MonitoringRule) => "MONITORING_RULE".into(),
    }
}

fn line_split(l: &LineSplit) -> pb::LineSplit {
    pb::LineSplit {
        serial: l.serial.to_string(),
        code: l.code.to_string(),
        class: class_text(l.class).into(),
        amount: l.amount.to_string(),
        fully_self_paid: l.fully_self_paid.to_string(),
        over_ceiling: l.over_ceiling.to_string(),
        pre_self_pay: l.pre_self_pay.to_string(),
        in_policy: l.in_policy.to_string(),
        self_pay_reason: reason_text(l.self_pay_reason),
        rule_id: l.rule.clone().unwrap_or_default(),
    }
}

pub fn split(s: &Split) -> pb::Split {
    pb::Split {
        total: s.total.to_string(),
        fully_self_paid: s.fully_self_paid.to_string(),
        over_ceiling: s.over_ceiling.to_string(),
        pre_self_pay: s.pre_self_pay.to_string(),
        in_policy: s.in_policy.to_string(),
        deductible_applied: s.deductible_applied.to_string(),
        pooling_fund: s.pooling_fund.to_string(),
        critical_illness: s.critical_illness.to_string(),
        medical_assistance: s.medical_assistance.to_string(),
        individual_account: s.individual_account.to_string(),
        cash: s.cash.to_string(),
        ratio: s.ratio.to_string(),
        lines: s.lines.iter().map(line_split).collect(),
    }
}

pub fn status_text(s: &SettlementStatus) -> String {
    match s {
        SettlementStatus::Settled => "SETTLED".into(),
        SettlementStatus::Reversing { .. } => "REVERSING".into(),
        SettlementStatus::Reversed { .. } => "REVERSED".into(),
    }
}

pub fn settle_response(s: &Settlement) -> pb::SettleResponse {
    pb::SettleResponse {
        serial: s.serial.to_string(),
        split: Some(split(&s.split)),
        settled_at_ms: s.settled_at.millis(),
        status: status_text(&s.status),
        insured_province: s.insured.as_ref().map(|p| p.to_string()).unwrap_or_default(),
    }
}

/// The expense document of a settlement; `name` is the person's, opened from its seal.
pub fn expense_document(s: &Settlement, name: String) -> pb::ExpenseDocument {
    pb::ExpenseDocument {
        institution_id: s.institution.to_string(),
        serial: s.serial.to_string(),
        visit_serial: s.visit.to_string(),
        masked_id: s.masked_id.clone(),
        name,
        doctor_code: s.doctor.to_string(),
        diagnosis: s.diagnosis.clone(),
        settled_on: s.settled_on.to_string(),
        status: status_text(&s.status),
        split: Some(split(&s.split)),
        insured_province: s.insured.as_ref().map(|p| p.to_string()).unwrap_or_default(),
    }
}
