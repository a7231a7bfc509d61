//! Conversions between protobuf messages and domain types, in one place. Every conversion from
//! the wire validates and names the field it rejects.

use medmesh_settlement::{
    CatalogueItem, CriticalIllnessTier, FeeLine, InsuranceType, ItemClass, LineSplit, Policy, Restrictions,
    SelfPayReason, Sex, Split,
};
use medmesh_state::{
    CertificateKind, Command, DomainError, ErrorCode, Institution, InsuranceStatus, Person, Personnel,
    QualificationStatus, Settlement, SettlementStatus, VisitKind,
};
use medmesh_types::{Date, InstitutionId, ItemCode, Money, PersonId, PersonnelCode, Ratio, Serial};
use rust_decimal::Decimal;
use tonic::Status;

use crate::pb;

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

fn bad(field: &str, why: impl std::fmt::Display) -> Status {
    Status::invalid_argument(format!("{field}: {why}"))
}

pub fn money(field: &str, v: &str) -> Result<Money, Status> {
    Money::parse_yuan(v).map_err(|e| bad(field, e))
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

fn item_code(field: &str, v: &str) -> Result<ItemCode, Status> {
    ItemCode::new(v).map_err(|e| bad(field, e))
}

/// A catalogue code from the wire.
pub fn item(field: &str, v: &str) -> Result<ItemCode, Status> {
    item_code(field, v)
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

pub fn put_person(r: pb::PutPersonRequest) -> Result<Command, Status> {
    Ok(Command::PutPerson(Person {
        id: PersonId::new(r.id).map_err(|e| bad("id", e))?,
        name: r.name,
        sex: sex("sex", r.sex)?,
        birth_date: date("birth_date", &r.birth_date)?,
        insurance: insurance("insurance_type", r.insurance_type)?,
        status: match r.status.as_str() {
            "ACTIVE" | "" => InsuranceStatus::Active,
            "SUSPENDED" => InsuranceStatus::Suspended,
            "TERMINATED" => InsuranceStatus::Terminated,
            _ => return Err(bad("status", "must be ACTIVE, SUSPENDED or TERMINATED")),
        },
        account_balance: if r.account_balance.trim().is_empty() {
            Money::ZERO
        } else {
            money("account_balance", &r.account_balance)?
        },
        social_security_card: opt_text(&r.social_security_card),
        e_credential: opt_text(&r.e_credential),
    }))
}

pub fn put_institution(r: pb::PutInstitutionRequest) -> Result<Command, Status> {
    Ok(Command::PutInstitution(Institution {
        id: institution("id", &r.id)?,
        name: r.name,
        level: level("level", r.level)?,
        agreement_start: date("agreement_start", &r.agreement_start)?,
        agreement_end: date("agreement_end", &r.agreement_end)?,
        suspended: r.suspended,
    }))
}

pub fn put_personnel(r: pb::PutPersonnelRequest) -> Result<Command, Status> {
    Ok(Command::PutPersonnel(Personnel {
        code: personnel_code("code", &r.code)?,
        name: r.name,
        institution: institution("institution_id", &r.institution_id)?,
        status: match r.status.as_str() {
            "ACTIVE" | "" => QualificationStatus::Active,
            "SUSPENDED" => QualificationStatus::SuspendedUntil(date("suspended_until", &r.suspended_until)?),
            "TERMINATED" => QualificationStatus::Terminated,
            _ => return Err(bad("status", "must be ACTIVE, SUSPENDED or TERMINATED")),
        },
    }))
}

pub fn put_catalogue_item(r: pb::PutCatalogueItemRequest) -> Result<Command, Status> {
    let class = match r.class.as_str() {
        "A" => ItemClass::A,
        "B" => ItemClass::B,
        "C" => ItemClass::C,
        _ => return Err(bad("class", "must be A, B or C")),
    };
    let share =
        if r.self_pay_share.trim().is_empty() { Ratio::ZERO } else { ratio("self_pay_share", &r.self_pay_share)? };
    Ok(Command::PutCatalogueItem(CatalogueItem {
        code: item_code("code", &r.code)?,
        name: r.name,
        class,
        price_ceiling: opt_money("price_ceiling", &r.price_ceiling)?,
        self_pay_share: share,
        restrictions: Restrictions {
            sex: opt_sex("restrict_sex", r.restrict_sex)?,
            min_age: r.min_age,
            max_age: r.max_age,
            max_quantity_per_day: if r.max_quantity_per_day.trim().is_empty() {
                None
            } else {
                Some(quantity("max_quantity_per_day", &r.max_quantity_per_day)?)
            },
            min_institution_level: if r.min_institution_level == 0 {
                None
            } else {
                Some(level("min_institution_level", r.min_institution_level)?)
            },
        },
    }))
}

pub fn put_policy(r: pb::PutPolicyRequest) -> Result<Command, Status> {
    let mut ratios = std::collections::BTreeMap::new();
    for (i, e) in r.ratios.iter().enumerate() {
        let key = (
            insurance(&format!("ratios[{i}].insurance_type"), e.insurance_type)?,
            level(&format!("ratios[{i}].institution_level"), e.institution_level)?,
        );
        if ratios.insert(key, ratio(&format!("ratios[{i}].ratio"), &e.ratio)?).is_some() {
            return Err(bad(&format!("ratios[{i}]"), "duplicate insurance type and level"));
        }
    }
    Ok(Command::PutPolicy(Policy {
        deductible: money("deductible", &r.deductible)?,
        ratios,
        annual_cap: money("annual_cap", &r.annual_cap)?,
        critical_illness: CriticalIllnessTier {
            ratio: ratio("critical_illness_ratio", &r.critical_illness_ratio)?,
            annual_cap: money("critical_illness_cap", &r.critical_illness_cap)?,
        },
        temporary_visitor_reduction: if r.temporary_visitor_reduction.trim().is_empty() {
            Ratio::ZERO
        } else {
            ratio("temporary_visitor_reduction", &r.temporary_visitor_reduction)?
        },
    }))
}

pub fn contribute(r: pb::ContributeRequest) -> Result<Command, Status> {
    Ok(Command::Contribute {
        serial: serial("serial", &r.serial)?,
        amount: money("amount", &r.amount)?,
        source: r.source,
    })
}

pub fn register_visit(r: pb::RegisterVisitRequest) -> Result<Command, Status> {
    Ok(Command::RegisterVisit {
        institution: institution("institution_id", &r.institution_id)?,
        serial: serial("serial", &r.serial)?,
        certificate_kind: certificate_kind("certificate_kind", r.certificate_kind)?,
        certificate: r.certificate,
        kind: visit_kind("kind", r.kind)?,
        doctor: personnel_code("doctor_code", &r.doctor_code)?,
        department: r.department,
        diagnosis: r.diagnosis,
        admitted: date("admitted", &r.admitted)?,
    })
}

pub fn upload_fees(r: pb::UploadFeesRequest) -> Result<Command, Status> {
    if r.lines.len() > MAX_UPLOAD_LINES {
        return Err(Status::resource_exhausted(format!("lines: at most {MAX_UPLOAD_LINES} lines per upload")));
    }
    let mut lines = Vec::with_capacity(r.lines.len());
    for (i, l) in r.lines.into_iter().enumerate() {
        let f = |n: &str| format!("lines[{i}].{n}");
        lines.push(FeeLine {
            serial: serial(&f("serial"), &l.serial)?,
            code: item_code(&f("code"), &l.code)?,
            quantity: quantity(&f("quantity"), &l.quantity)?,
            unit_price: money(&f("unit_price"), &l.unit_price)?,
            date: date(&f("date"), &l.date)?,
        });
    }
    Ok(Command::UploadFees {
        institution: institution("institution_id", &r.institution_id)?,
        visit: serial("visit_serial", &r.visit_serial)?,
        lines,
    })
}

pub fn settle(r: pb::SettleRequest) -> Result<Command, Status> {
    Ok(Command::Settle {
        institution: institution("institution_id", &r.institution_id)?,
        serial: serial("serial", &r.serial)?,
        visit: serial("visit_serial", &r.visit_serial)?,
        use_individual_account: r.use_individual_account,
    })
}

pub fn reverse(r: pb::ReverseRequest) -> Result<Command, Status> {
    Ok(Command::Reverse {
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

pub fn expense_document(s: &Settlement) -> pb::ExpenseDocument {
    pb::ExpenseDocument {
        institution_id: s.institution.to_string(),
        serial: s.serial.to_string(),
        visit_serial: s.visit.to_string(),
        masked_id: if s.insured.is_some() { s.masked_id.clone() } else { s.person.masked() },
        name: s.person_name.clone(),
        doctor_code: s.doctor.to_string(),
        diagnosis: s.diagnosis.clone(),
        settled_on: s.settled_on.to_string(),
        status: status_text(&s.status),
        split: Some(split(&s.split)),
        insured_province: s.insured.as_ref().map(|p| p.to_string()).unwrap_or_default(),
    }
}

/// A non-local filing request: `(filing serial, certificate kind, certificate, treatment
/// province, kind, start, end)`.
pub type FilingRequest =
    (Serial, CertificateKind, String, medmesh_types::ProvinceCode, medmesh_state::FilingKind, Date, Date);

pub fn file_nonlocal(r: pb::FileNonLocalRequest) -> Result<FilingRequest, Status> {
    let kind = match pb::FilingKind::try_from(r.kind) {
        Ok(pb::FilingKind::LongTermResident) => medmesh_state::FilingKind::LongTermResident,
        Ok(pb::FilingKind::Referral) => medmesh_state::FilingKind::Referral,
        Ok(pb::FilingKind::Emergency) => medmesh_state::FilingKind::Emergency,
        Ok(pb::FilingKind::OtherTemporary) => medmesh_state::FilingKind::OtherTemporary,
        _ => return Err(bad("kind", "must name a filing kind")),
    };
    if r.certificate.is_empty() || r.certificate.len() > 64 || r.certificate.contains('/') {
        return Err(bad("certificate", "must be 1 to 64 characters without '/'"));
    }
    let start = date("start", &r.start)?;
    let end = date("end", &r.end)?;
    if end < start {
        return Err(bad("end", format!("{end} is before start {start}")));
    }
    Ok((
        serial("id", &r.id)?,
        certificate_kind("certificate_kind", r.certificate_kind)?,
        r.certificate,
        province("treatment_province", &r.treatment_province)?,
        kind,
        start,
        end,
    ))
}

pub fn filing_kind_pb(k: medmesh_state::FilingKind) -> i32 {
    match k {
        medmesh_state::FilingKind::LongTermResident => pb::FilingKind::LongTermResident as i32,
        medmesh_state::FilingKind::Referral => pb::FilingKind::Referral as i32,
        medmesh_state::FilingKind::Emergency => pb::FilingKind::Emergency as i32,
        medmesh_state::FilingKind::OtherTemporary => pb::FilingKind::OtherTemporary as i32,
    }
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

pub fn record_violation(r: pb::RecordViolationRequest) -> Result<Command, Status> {
    let points = u8::try_from(r.points).map_err(|_| bad("points", "must be 1 to 12"))?;
    let severity = u8::try_from(r.severity_months)
        .ok()
        .and_then(|m| medmesh_supervision::Severity::new(m).ok())
        .ok_or_else(|| bad("severity_months", "must be 1 to 6"))?;
    Ok(Command::RecordViolation(medmesh_supervision::Violation {
        personnel: personnel_code("personnel_code", &r.personnel_code)?,
        id: r.id,
        decided_on: date("decided_on", &r.decided_on)?,
        points,
        severity,
        province: province("province", &r.province)?,
    }))
}

pub fn personnel(field: &str, v: &str) -> Result<PersonnelCode, Status> {
    personnel_code(field, v)
}

pub fn qualification(code: &PersonnelCode, q: &medmesh_supervision::QualificationView) -> pb::Qualification {
    use medmesh_supervision::QualificationState as S;
    let (state, since, until) = match q.state {
        S::Active => ("ACTIVE", String::new(), String::new()),
        S::Suspended { since, until } => ("SUSPENDED", since.to_string(), until.to_string()),
        S::Terminated { since, reregister_from, .. } => ("TERMINATED", since.to_string(), reregister_from.to_string()),
    };
    pb::Qualification {
        personnel_code: code.to_string(),
        year: q.year,
        year_points: q.year_points,
        state: state.into(),
        since,
        until,
        notify_institution: q.notify_institution,
        may_bill: q.may_bill(q.on),
    }
}

// ---------------------------------------------------------------------------------------------
// Reading back: each record in the form its Put request takes, so what an agency wrote it can
// read and write again unchanged.

fn class_letter(c: ItemClass) -> &'static str {
    match c {
        ItemClass::A => "A",
        ItemClass::B => "B",
        ItemClass::C => "C",
    }
}

/// The policy as a `PutPolicyRequest`.
pub fn policy_pb(p: &Policy) -> pb::PutPolicyRequest {
    pb::PutPolicyRequest {
        deductible: p.deductible.to_string(),
        ratios: p
            .ratios
            .iter()
            .map(|((insurance, level), r)| pb::RatioEntry {
                insurance_type: insurance_pb(*insurance),
                institution_level: u32::from(*level),
                ratio: r.to_string(),
            })
            .collect(),
        annual_cap: p.annual_cap.to_string(),
        critical_illness_ratio: p.critical_illness.ratio.to_string(),
        critical_illness_cap: p.critical_illness.annual_cap.to_string(),
        temporary_visitor_reduction: p.temporary_visitor_reduction.to_string(),
    }
}

/// An institution as a `PutInstitutionRequest`.
pub fn institution_pb(i: &Institution) -> pb::PutInstitutionRequest {
    pb::PutInstitutionRequest {
        id: i.id.to_string(),
        name: i.name.clone(),
        level: u32::from(i.level),
        agreement_start: i.agreement_start.to_string(),
        agreement_end: i.agreement_end.to_string(),
        suspended: i.suspended,
    }
}

/// Personnel as a `PutPersonnelRequest`.
pub fn personnel_pb(p: &Personnel) -> pb::PutPersonnelRequest {
    let (status, until) = match p.status {
        QualificationStatus::Active => ("ACTIVE", String::new()),
        QualificationStatus::SuspendedUntil(d) => ("SUSPENDED", d.to_string()),
        QualificationStatus::Terminated => ("TERMINATED", String::new()),
    };
    pb::PutPersonnelRequest {
        code: p.code.to_string(),
        name: p.name.clone(),
        institution_id: p.institution.to_string(),
        status: status.into(),
        suspended_until: until,
    }
}

/// A catalogue entry as a `PutCatalogueItemRequest`.
pub fn catalogue_item_pb(i: &CatalogueItem) -> pb::PutCatalogueItemRequest {
    let r = &i.restrictions;
    pb::PutCatalogueItemRequest {
        code: i.code.to_string(),
        name: i.name.clone(),
        class: class_letter(i.class).into(),
        price_ceiling: i.price_ceiling.map(|m| m.to_string()).unwrap_or_default(),
        self_pay_share: i.self_pay_share.to_string(),
        restrict_sex: r.sex.map(sex_pb).unwrap_or(0),
        min_age: r.min_age,
        max_age: r.max_age,
        max_quantity_per_day: r.max_quantity_per_day.map(|q| q.to_string()).unwrap_or_default(),
        min_institution_level: r.min_institution_level.map(u32::from).unwrap_or(0),
    }
}

/// A person's register entry as the agency sees it: masked, without certificate numbers.
pub fn person_pb(p: &Person) -> pb::GetPersonResponse {
    pb::GetPersonResponse {
        masked_id: p.id.masked(),
        name: p.name.clone(),
        sex: sex_pb(p.sex),
        birth_date: p.birth_date.to_string(),
        insurance_type: insurance_pb(p.insurance),
        status: match p.status {
            InsuranceStatus::Active => "ACTIVE",
            InsuranceStatus::Suspended => "SUSPENDED",
            InsuranceStatus::Terminated => "TERMINATED",
        }
        .into(),
        account_balance: p.account_balance.to_string(),
        has_social_security_card: p.social_security_card.is_some(),
        has_e_credential: p.e_credential.is_some(),
    }
}

#[cfg(test)]
mod read_back_tests {
    use super::*;

    fn dec(s: &str) -> Decimal {
        s.parse().unwrap()
    }

    /// Each record read back is a Put request that stores the same record again.
    #[test]
    fn records_read_back_in_the_form_they_were_written() {
        let mut ratios = std::collections::BTreeMap::new();
        ratios.insert((InsuranceType::Employee, 3), Ratio::parse("0.85").unwrap());
        ratios.insert((InsuranceType::Resident, 1), Ratio::parse("0.7").unwrap());
        let policy = Policy {
            deductible: Money::parse_yuan("1200").unwrap(),
            ratios,
            annual_cap: Money::parse_yuan("300000").unwrap(),
            critical_illness: CriticalIllnessTier {
                ratio: Ratio::parse("0.6").unwrap(),
                annual_cap: Money::parse_yuan("400000.5").unwrap(),
            },
            temporary_visitor_reduction: Ratio::parse("0.1").unwrap(),
        };
        assert_eq!(put_policy(policy_pb(&policy)).unwrap(), Command::PutPolicy(policy));
        let item = CatalogueItem {
            code: ItemCode::new("X-1").unwrap(),
            name: "stent".into(),
            class: ItemClass::B,
            price_ceiling: Some(Money::parse_yuan("999.99").unwrap()),
            self_pay_share: Ratio::parse("0.15").unwrap(),
            restrictions: Restrictions {
                sex: Some(Sex::Female),
                min_age: Some(18),
                max_age: None,
                max_quantity_per_day: Some(dec("2.5")),
                min_institution_level: Some(2),
            },
        };
        assert_eq!(put_catalogue_item(catalogue_item_pb(&item)).unwrap(), Command::PutCatalogueItem(item));
        let inst = Institution {
            id: InstitutionId::new("H1").unwrap(),
            name: "City".into(),
            level: 3,
            agreement_start: Date::parse("2025-01-01").unwrap(),
            agreement_end: Date::parse("2027-12-31").unwrap(),
            suspended: true,
        };
        assert_eq!(put_institution(institution_pb(&inst)).unwrap(), Command::PutInstitution(inst));
        let staff = Personnel {
            code: PersonnelCode::new("D1").unwrap(),
            name: "Dr Wang".into(),
            institution: InstitutionId::new("H1").unwrap(),
            status: QualificationStatus::SuspendedUntil(Date::parse("2026-01-01").unwrap()),
        };
        assert_eq!(put_personnel(personnel_pb(&staff)).unwrap(), Command::PutPersonnel(staff));
    }
}
