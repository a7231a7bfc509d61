//! Conversions of the agency service's messages, both ways: what an agency writes and reads
//! back.

use medmesh_seal::PersonSecrets;
use medmesh_settlement::{AssistancePolicy, CatalogueItem, CriticalIllnessTier, ItemClass, Policy, Restrictions};
use medmesh_state::{
    CertificateKind, Fund, Institution, InsuranceStatus, Person, Personnel, ProvinceCommand, QualificationStatus,
};
use medmesh_types::{Date, Money, PersonId, PersonnelCode, Ratio, Serial};
use tonic::Status;

use super::*;
use crate::pb;

/// A register entry, sealed here under the province's key: the command that enters the log
/// holds keyed hashes and sealed fields only. Also returns the opened fields (for the
/// federation's directory).
pub fn put_person(
    r: pb::PutPersonRequest,
    key: &medmesh_seal::SealKey,
) -> Result<(ProvinceCommand, PersonSecrets), Status> {
    let id = PersonId::new(r.id).map_err(|e| bad("id", e))?;
    if r.name.chars().count() > medmesh_state::MAX_TEXT
        || r.name.trim().is_empty()
        || r.name.chars().any(char::is_control)
    {
        return Err(bad(
            "name",
            format!("must be 1 to {} characters without control characters", medmesh_state::MAX_TEXT),
        ));
    }
    let ss = opt_text(&r.social_security_card);
    let ec = opt_text(&r.e_credential);
    for (field, v) in [("social_security_card", &ss), ("e_credential", &ec)] {
        if let Some(v) = v {
            certificate_number(field, v)?;
        }
    }
    let secrets = PersonSecrets {
        id: id.expose().to_string(),
        name: r.name,
        social_security_card: ss.clone(),
        e_credential: ec.clone(),
    };
    let person_key = key.hash(CertificateKind::IdCard.key(), id.expose());
    let sealed = key.seal_person(&person_key, &secrets).map_err(|e| Status::unavailable(format!("sealing: {e}")))?;
    let cmd = ProvinceCommand::PutPerson(Person {
        key: person_key,
        masked_id: id.masked(),
        sealed,
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
        social_security_card: ss.map(|n| key.hash(CertificateKind::SocialSecurityCard.key(), &n)),
        e_credential: ec.map(|n| key.hash(CertificateKind::ECredential.key(), &n)),
        medical_assistance: r.medical_assistance,
    });
    Ok((cmd, secrets))
}

pub fn put_institution(r: pb::PutInstitutionRequest) -> Result<ProvinceCommand, Status> {
    Ok(ProvinceCommand::PutInstitution(Institution {
        id: institution("id", &r.id)?,
        name: r.name,
        level: level("level", r.level)?,
        agreement_start: date("agreement_start", &r.agreement_start)?,
        agreement_end: date("agreement_end", &r.agreement_end)?,
        suspended: r.suspended,
    }))
}

pub fn put_personnel(r: pb::PutPersonnelRequest) -> Result<ProvinceCommand, Status> {
    Ok(ProvinceCommand::PutPersonnel(Personnel {
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

pub fn put_catalogue_item(r: pb::PutCatalogueItemRequest) -> Result<ProvinceCommand, Status> {
    let class = match r.class.as_str() {
        "A" => ItemClass::A,
        "B" => ItemClass::B,
        "C" => ItemClass::C,
        _ => return Err(bad("class", "must be A, B or C")),
    };
    let share =
        if r.self_pay_share.trim().is_empty() { Ratio::ZERO } else { ratio("self_pay_share", &r.self_pay_share)? };
    Ok(ProvinceCommand::PutCatalogueItem(CatalogueItem {
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

pub fn put_policy(r: pb::PutPolicyRequest) -> Result<ProvinceCommand, Status> {
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
    Ok(ProvinceCommand::PutPolicy(Policy {
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
        assistance: AssistancePolicy {
            ratio: if r.assistance_ratio.trim().is_empty() {
                Ratio::ZERO
            } else {
                ratio("assistance_ratio", &r.assistance_ratio)?
            },
            annual_cap: money_or_zero("assistance_cap", &r.assistance_cap)?,
        },
    }))
}

pub fn contribute(r: pb::ContributeRequest) -> Result<ProvinceCommand, Status> {
    Ok(ProvinceCommand::Contribute {
        serial: serial("serial", &r.serial)?,
        amount: money("amount", &r.amount)?,
        source: r.source,
        fund: match pb::Fund::try_from(r.fund) {
            Ok(pb::Fund::Unspecified | pb::Fund::Pooling) => Fund::Pooling,
            Ok(pb::Fund::MedicalAssistance) => Fund::MedicalAssistance,
            Err(_) => return Err(bad("fund", format!("{} is not a fund", r.fund))),
        },
    })
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
    certificate_number("certificate", &r.certificate)?;
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

pub fn record_violation(r: pb::RecordViolationRequest) -> Result<ProvinceCommand, Status> {
    let points = u8::try_from(r.points).map_err(|_| bad("points", "must be 1 to 12"))?;
    let severity = u8::try_from(r.severity_months)
        .ok()
        .and_then(|m| medmesh_supervision::Severity::new(m).ok())
        .ok_or_else(|| bad("severity_months", "must be 1 to 6"))?;
    Ok(ProvinceCommand::RecordViolation(medmesh_supervision::Violation {
        personnel: personnel_code("personnel_code", &r.personnel_code)?,
        id: r.id,
        decided_on: date("decided_on", &r.decided_on)?,
        points,
        severity,
        province: province("province", &r.province)?,
    }))
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
        assistance_ratio: p.assistance.ratio.to_string(),
        assistance_cap: p.assistance.annual_cap.to_string(),
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

/// A person's register entry as the agency sees it: masked, without certificate numbers
/// (`name` opened from the seal).
pub fn person_pb(p: &Person, name: String) -> pb::GetPersonResponse {
    pb::GetPersonResponse {
        masked_id: p.masked_id.clone(),
        name,
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
        medical_assistance: p.medical_assistance,
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
            assistance: AssistancePolicy {
                ratio: Ratio::parse("0.7").unwrap(),
                annual_cap: Money::parse_yuan("20000").unwrap(),
            },
        };
        assert_eq!(put_policy(policy_pb(&policy)).unwrap(), ProvinceCommand::PutPolicy(policy));
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
        assert_eq!(put_catalogue_item(catalogue_item_pb(&item)).unwrap(), ProvinceCommand::PutCatalogueItem(item));
        let inst = Institution {
            id: InstitutionId::new("H1").unwrap(),
            name: "City".into(),
            level: 3,
            agreement_start: Date::parse("2025-01-01").unwrap(),
            agreement_end: Date::parse("2027-12-31").unwrap(),
            suspended: true,
        };
        assert_eq!(put_institution(institution_pb(&inst)).unwrap(), ProvinceCommand::PutInstitution(inst));
        let staff = Personnel {
            code: PersonnelCode::new("D1").unwrap(),
            name: "Dr Wang".into(),
            institution: InstitutionId::new("H1").unwrap(),
            status: QualificationStatus::SuspendedUntil(Date::parse("2026-01-01").unwrap()),
        };
        assert_eq!(put_personnel(personnel_pb(&staff)).unwrap(), ProvinceCommand::PutPersonnel(staff));
    }
}
