//! Conversions between protobuf messages and domain types: one module per service
//! ([`hospital`], [`agency`]; the federation's few live beside its handlers), the field parsers
//! they share, and the one mapping of a domain error to a gRPC status. Every conversion from
//! the wire validates and names the field it rejects.

use medmesh_settlement::{InsuranceType, Sex};
use medmesh_state::{CertificateKind, DomainError, ErrorCode, VisitKind};
use medmesh_types::{Date, InstitutionId, ItemCode, Money, PersonnelCode, Ratio, Serial};
use rust_decimal::Decimal;
use tonic::Status;

use crate::pb;

mod agency;
mod audit;
mod cases;
mod disclosure;
mod flights;
mod hospital;
mod inspection;
mod monitoring;
mod payment;
mod reports;

pub use agency::*;
pub use audit::*;
pub use cases::*;
pub use disclosure::*;
pub use flights::*;
pub use hospital::*;
pub use inspection::*;
pub use monitoring::*;
pub use payment::*;
pub use reports::*;

/// Most fee lines in one upload.
pub const MAX_UPLOAD_LINES: usize = 2_000;

/// Maps a domain error to a gRPC status whose message names the field.
pub fn status(e: DomainError) -> Status {
    let msg = e.to_string();
    match e.code {
        ErrorCode::InvalidArgument => Status::invalid_argument(msg),
        ErrorCode::NotFound => Status::not_found(msg),
        ErrorCode::FailedPrecondition => Status::failed_precondition(msg),
        ErrorCode::AlreadyExists => Status::already_exists(msg),
        ErrorCode::ResourceExhausted => Status::resource_exhausted(msg),
    }
}

/// A certificate number as a hospital or an agency sends it: 1 to 64 characters, no control
/// characters and no '/'.
pub fn certificate_number(field: &str, number: &str) -> Result<(), Status> {
    if number.is_empty() || number.len() > 64 || number.contains('/') || number.chars().any(char::is_control) {
        return Err(bad(field, "must be 1 to 64 characters without '/'"));
    }
    Ok(())
}

fn bad(field: &str, why: impl std::fmt::Display) -> Status {
    Status::invalid_argument(format!("{field}: {why}"))
}

/// A list rpc's page size (0: [`medmesh_state::DEFAULT_STATEMENT_PAGE`]); the state machine
/// refuses one above [`medmesh_state::MAX_ROWS`] naming `page_size`.
pub fn page_size(n: u32) -> usize {
    match n {
        0 => medmesh_state::DEFAULT_STATEMENT_PAGE,
        n => usize::try_from(n).unwrap_or(usize::MAX),
    }
}

/// Parses an amount in yuan.
pub fn money(field: &str, v: &str) -> Result<Money, Status> {
    Money::parse_yuan(v).map_err(|e| bad(field, e))
}

/// An amount that may be left empty (zero).
pub fn money_or_zero(field: &str, v: &str) -> Result<Money, Status> {
    if v.trim().is_empty() {
        Ok(Money::ZERO)
    } else {
        money(field, v)
    }
}

fn opt_money(field: &str, v: &str) -> Result<Option<Money>, Status> {
    if v.trim().is_empty() {
        Ok(None)
    } else {
        money(field, v).map(Some)
    }
}

fn ratio(field: &str, v: &str) -> Result<Ratio, Status> {
    Ratio::parse(v).map_err(|e| bad(field, e))
}

pub fn date(field: &str, v: &str) -> Result<Date, Status> {
    Date::parse(v).map_err(|e| bad(field, e))
}

pub fn institution(field: &str, v: &str) -> Result<InstitutionId, Status> {
    InstitutionId::new(v).map_err(|e| bad(field, e))
}

pub fn serial(field: &str, v: &str) -> Result<Serial, Status> {
    Serial::new(v).map_err(|e| bad(field, e))
}

fn personnel_code(field: &str, v: &str) -> Result<PersonnelCode, Status> {
    PersonnelCode::new(v).map_err(|e| bad(field, e))
}

/// A catalogue code from the wire.
pub fn item_code(field: &str, v: &str) -> Result<ItemCode, Status> {
    ItemCode::new(v).map_err(|e| bad(field, e))
}

fn quantity(field: &str, v: &str) -> Result<Decimal, Status> {
    let t = v.trim();
    if t.contains(['e', 'E']) {
        return Err(bad(field, "not a decimal number"));
    }
    let d: Decimal = t.parse().map_err(|_| bad(field, "not a decimal number"))?;
    if d <= Decimal::ZERO {
        return Err(bad(field, "must be positive"));
    }
    if d.normalize().scale() > 4 {
        return Err(bad(field, "at most 4 decimals"));
    }
    if d > Decimal::from(100_000) {
        return Err(bad(field, "above 100000"));
    }
    Ok(d.normalize())
}

fn sex(field: &str, v: i32) -> Result<Sex, Status> {
    match pb::Sex::try_from(v) {
        Ok(pb::Sex::Female) => Ok(Sex::Female),
        Ok(pb::Sex::Male) => Ok(Sex::Male),
        _ => Err(bad(field, "must be SEX_FEMALE or SEX_MALE")),
    }
}

fn opt_sex(field: &str, v: i32) -> Result<Option<Sex>, Status> {
    if v == 0 {
        Ok(None)
    } else {
        sex(field, v).map(Some)
    }
}

fn insurance(field: &str, v: i32) -> Result<InsuranceType, Status> {
    match pb::InsuranceType::try_from(v) {
        Ok(pb::InsuranceType::Employee) => Ok(InsuranceType::Employee),
        Ok(pb::InsuranceType::Resident) => Ok(InsuranceType::Resident),
        _ => Err(bad(field, "must be INSURANCE_TYPE_EMPLOYEE or INSURANCE_TYPE_RESIDENT")),
    }
}

pub fn certificate_kind(field: &str, v: i32) -> Result<CertificateKind, Status> {
    match pb::CertificateKind::try_from(v) {
        Ok(pb::CertificateKind::ECredential) => Ok(CertificateKind::ECredential),
        Ok(pb::CertificateKind::IdCard) => Ok(CertificateKind::IdCard),
        Ok(pb::CertificateKind::SocialSecurityCard) => Ok(CertificateKind::SocialSecurityCard),
        _ => Err(bad(field, "must name a certificate kind")),
    }
}

fn visit_kind(field: &str, v: i32) -> Result<VisitKind, Status> {
    match pb::VisitKind::try_from(v) {
        Ok(pb::VisitKind::Outpatient) => Ok(VisitKind::Outpatient),
        Ok(pb::VisitKind::Inpatient) => Ok(VisitKind::Inpatient),
        _ => Err(bad(field, "must be VISIT_KIND_OUTPATIENT or VISIT_KIND_INPATIENT")),
    }
}

fn level(field: &str, v: u32) -> Result<u8, Status> {
    if (1..=3).contains(&v) {
        Ok(v as u8)
    } else {
        Err(bad(field, "must be 1, 2 or 3"))
    }
}

fn opt_text(v: &str) -> Option<String> {
    let t = v.trim();
    (!t.is_empty()).then(|| t.to_string())
}

pub fn province(field: &str, v: &str) -> Result<medmesh_types::ProvinceCode, Status> {
    let p = medmesh_types::ProvinceCode::new(v).map_err(|e| bad(field, e))?;
    if p.as_str() == medmesh_state::FEDERATION {
        return Err(bad(field, "is the federation's code, not a province"));
    }
    Ok(p)
}

pub fn sex_pb(s: Sex) -> i32 {
    match s {
        Sex::Female => pb::Sex::Female as i32,
        Sex::Male => pb::Sex::Male as i32,
    }
}

pub fn insurance_pb(i: InsuranceType) -> i32 {
    match i {
        InsuranceType::Employee => pb::InsuranceType::Employee as i32,
        InsuranceType::Resident => pb::InsuranceType::Resident as i32,
    }
}

pub fn personnel(field: &str, v: &str) -> Result<PersonnelCode, Status> {
    personnel_code(field, v)
}

/// A pharmaceutical enterprise's unified social credit code (with its check character).
pub fn enterprise(field: &str, v: &str) -> Result<medmesh_types::EnterpriseCode, Status> {
    medmesh_types::EnterpriseCode::new(v.trim()).map_err(|e| bad(field, e))
}

/// The one party a request names by `institution_id`, `personnel_code` or `enterprise_code`;
/// none or more than one is INVALID_ARGUMENT naming `institution_id`.
pub fn party(
    institution: &str,
    personnel: &str,
    enterprise: &str,
) -> Result<medmesh_supervision::credit::Party, Status> {
    use medmesh_supervision::credit::Party;
    match (institution.trim(), personnel.trim(), enterprise.trim()) {
        (i, "", "") if !i.is_empty() => Ok(Party::Institution(self::institution("institution_id", i)?)),
        ("", p, "") if !p.is_empty() => Ok(Party::Personnel(self::personnel("personnel_code", p)?)),
        ("", "", e) if !e.is_empty() => Ok(Party::Enterprise(self::enterprise("enterprise_code", e)?)),
        _ => Err(bad("institution_id", "name exactly one of institution_id, personnel_code and enterprise_code")),
    }
}

/// The codes of a party, as `(institution_id, personnel_code, enterprise_code)`.
pub fn party_codes(p: &medmesh_supervision::credit::Party) -> (String, String, String) {
    use medmesh_supervision::credit::Party;
    match p {
        Party::Institution(i) => (i.to_string(), String::new(), String::new()),
        Party::Personnel(c) => (String::new(), c.to_string(), String::new()),
        Party::Enterprise(e) => (String::new(), String::new(), e.to_string()),
    }
}
