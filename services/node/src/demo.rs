//! Demo data for a province: policy, institutions, personnel, catalogue, insured persons and
//! an opening fund contribution. Used by `medmesh dev`, the bench and the tests; loading it
//! twice changes nothing.

use tonic::transport::Channel;

use crate::pb;
use crate::pb::agency_service_client::AgencyServiceClient;

/// Province codes used by the local mesh, in order.
pub const PROVINCES: [&str; 6] = ["110000", "310000", "440000", "510000", "330000", "420000"];

/// The catalogue codes of the demo, with their class.
pub const CATALOGUE: [(&str, &str); 10] = [
    ("XA0001", "A"),
    ("XA0002", "A"),
    ("XA0003", "A"),
    ("XB0001", "B"),
    ("XB0002", "B"),
    ("XB0003", "B"),
    ("XC0001", "C"),
    ("XC0002", "C"),
    ("XF0001", "A"),
    ("XK0001", "A"),
];

/// Institution id `n` (1 or 2) of a province.
pub fn institution(province: &str, n: u32) -> String {
    format!("H{province}-{n:02}")
}

/// Doctor `n` (1–4) of a province; 1–2 work at institution 1, 3–4 at institution 2.
pub fn doctor(province: &str, n: u32) -> String {
    format!("D{province}-{n:02}")
}

/// Identity number of demo person `i` of a province (18 characters).
pub fn person_id(province: &str, i: u32) -> String {
    format!("{province}{:012}", 197_000_000_000u64 + i as u64)
}

/// Social-security card number of demo person `i`.
pub fn ss_card(province: &str, i: u32) -> String {
    format!("SS{province}{i:07}")
}

/// The demo policy (assistance: 70% of the remaining in-policy burden, up to 20,000 a year).
pub fn policy() -> pb::PutPolicyRequest {
    let mut ratios = Vec::new();
    for (level, emp, res) in [(1, "0.9", "0.7"), (2, "0.85", "0.6"), (3, "0.8", "0.5")] {
        ratios.push(pb::RatioEntry {
            insurance_type: pb::InsuranceType::Employee as i32,
            institution_level: level,
            ratio: emp.into(),
        });
        ratios.push(pb::RatioEntry {
            insurance_type: pb::InsuranceType::Resident as i32,
            institution_level: level,
            ratio: res.into(),
        });
    }
    pb::PutPolicyRequest {
        deductible: "800".into(),
        ratios,
        annual_cap: "300000".into(),
        critical_illness_ratio: "0.6".into(),
        critical_illness_cap: "400000".into(),
        temporary_visitor_reduction: "0.1".into(),
        assistance_ratio: "0.7".into(),
        assistance_cap: "20000".into(),
    }
}

fn item(code: &str, class: &str) -> pb::PutCatalogueItemRequest {
    let mut r = pb::PutCatalogueItemRequest {
        code: code.into(),
        name: format!("demo item {code}"),
        class: class.into(),
        self_pay_share: if class == "B" { "0.1".into() } else { "0".into() },
        ..Default::default()
    };
    match code {
        "XA0001" => r.price_ceiling = "50".into(),
        "XA0003" => r.price_ceiling = "200".into(),
        "XB0001" => r.price_ceiling = "100".into(),
        "XB0002" => r.self_pay_share = "0.2".into(),
        "XB0003" => r.max_quantity_per_day = "3".into(),
        "XF0001" => r.restrict_sex = pb::Sex::Female as i32,
        "XK0001" => r.max_age = Some(14),
        _ => {}
    }
    r
}

/// Demo person `i` of a province.
pub fn person(province: &str, i: u32) -> pb::PutPersonRequest {
    pb::PutPersonRequest {
        id: person_id(province, i),
        name: format!("Person {i}"),
        sex: if i.is_multiple_of(2) { pb::Sex::Female as i32 } else { pb::Sex::Male as i32 },
        birth_date: format!("{}-{:02}-15", 1950 + (i % 60), 1 + (i % 12)),
        insurance_type: if i.is_multiple_of(3) {
            pb::InsuranceType::Resident as i32
        } else {
            pb::InsuranceType::Employee as i32
        },
        status: "ACTIVE".into(),
        account_balance: "500".into(),
        social_security_card: ss_card(province, i),
        e_credential: format!("EC{province}{i:07}"),
        medical_assistance: false,
    }
}

/// Loads the demo data of `province` with `persons` insured persons through the agency API.
pub async fn load(ch: Channel, province: &str, persons: u32) -> Result<(), tonic::Status> {
    let mut c = AgencyServiceClient::new(ch);
    c.put_policy(policy()).await?;
    for n in 1..=2u32 {
        c.put_institution(pb::PutInstitutionRequest {
            id: institution(province, n),
            name: format!("Demo hospital {n} of {province}"),
            level: if n == 1 { 3 } else { 2 },
            agreement_start: "2020-01-01".into(),
            agreement_end: "2099-12-31".into(),
            suspended: false,
        })
        .await?;
    }
    for n in 1..=4u32 {
        c.put_personnel(pb::PutPersonnelRequest {
            code: doctor(province, n),
            name: format!("Doctor {n}"),
            institution_id: institution(province, if n <= 2 { 1 } else { 2 }),
            status: "ACTIVE".into(),
            suspended_until: String::new(),
        })
        .await?;
    }
    for (code, class) in CATALOGUE {
        c.put_catalogue_item(item(code, class)).await?;
    }
    let mut pending = futures::stream::FuturesUnordered::new();
    for i in 0..persons {
        let mut c = c.clone();
        pending.push(async move { c.put_person(person(province, i)).await });
        if pending.len() >= 64 {
            use futures::StreamExt;
            if let Some(r) = pending.next().await {
                r?;
            }
        }
    }
    use futures::StreamExt;
    while let Some(r) = pending.next().await {
        r?;
    }
    c.contribute(pb::ContributeRequest {
        serial: "DEMO-OPENING".into(),
        amount: "100000000".into(),
        source: "demo opening balance".into(),
        fund: pb::Fund::Pooling as i32,
    })
    .await?;
    c.contribute(pb::ContributeRequest {
        serial: "DEMO-ASSISTANCE".into(),
        amount: "1000000".into(),
        source: "demo: civil affairs' medical-assistance funding".into(),
        fund: pb::Fund::MedicalAssistance as i32,
    })
    .await?;
    Ok(())
}

/// Records the demo knowledge base and the shipped monitoring rules
/// ([`medmesh_monitor::demo_knowledge_base`], [`medmesh_monitor::shipped_rules`]) through the
/// agency API.
pub async fn load_monitoring(ch: Channel) -> Result<(), tonic::Status> {
    let mut c = AgencyServiceClient::new(ch);
    let kb = medmesh_monitor::demo_knowledge_base();
    let entries = kb
        .diagnoses
        .into_values()
        .map(medmesh_monitor::Knowledge::Diagnosis)
        .chain(kb.items.into_values().map(medmesh_monitor::Knowledge::Item));
    for k in entries {
        c.put_knowledge(crate::convert::knowledge_pb(&k)).await?;
    }
    for r in medmesh_monitor::shipped_rules() {
        c.put_rule(pb::PutRuleRequest { rule: Some(crate::convert::rule_pb(&r)) }).await?;
    }
    Ok(())
}

/// The demo inspection plan's id.
pub const DEMO_PLAN: &str = "DR-DEMO-01";
/// The demo flight inspection's id.
pub const DEMO_FLIGHT: &str = "FL-DEMO-01";

/// The nonce that draws a province's demo plan. A real agency keeps its nonce secret until the
/// draw; the demo's is derived from the province code so that anyone can re-derive the draw.
pub fn demo_nonce(province: &str) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(format!("medmesh demo inspection nonce {province}").as_bytes()).into()
}

/// A double-random inspection plan `id` of a province's demo institutions 1 and 2 (each
/// taking its credit rating's grade) and four inspectors `INSP-{province}-01..04`: one target
/// drawn, two inspectors each, committed to `nonce`.
pub fn inspection_plan(province: &str, id: &str, nonce: &[u8; 32]) -> pb::InspectionPlan {
    pb::InspectionPlan {
        id: id.into(),
        title: "Demo double-random inspection of designated institutions".into(),
        // No grade given: each target takes its credit rating's grade.
        targets: (1..=2).map(|n| pb::InspectionTarget { id: institution(province, n), grade: 0 }).collect(),
        inspectors: (1..=4u32)
            .map(|n| pb::InspectionInspector {
                id: format!("INSP-{province}-{n:02}"),
                home_institution: String::new(),
                region: province.into(),
            })
            .collect(),
        conflicts: vec![],
        draw_targets: 1,
        inspectors_per_target: 2,
        commitment: hex::encode(medmesh_inspection::commitment(nonce)),
    }
}

/// The demo's supervision records (issue 13) through the agency API: a working-day calendar
/// (New Year's Day 2027), a double-random inspection plan whose targets take their credit grades,
/// drawn with [`demo_nonce`], a flight inspection of institution 2 started from media
/// coverage, an enterprise's credit commitment and institution 1 on the joint incentive list.
/// Loading it again changes nothing (a record already there stays as it is).
pub async fn load_supervision(ch: Channel, province: &str) -> Result<(), tonic::Status> {
    let mut c = AgencyServiceClient::new(ch);
    c.put_work_calendar(pb::PutWorkCalendarRequest { holidays: vec!["2027-01-01".into()], workdays: vec![] }).await?;
    let plan = inspection_plan(province, DEMO_PLAN, &demo_nonce(province));
    let already = |r: Result<(), tonic::Status>| match r {
        Err(s) if s.code() == tonic::Code::AlreadyExists => Ok(()),
        other => other,
    };
    already(c.put_inspection_plan(pb::PutInspectionPlanRequest { plan: Some(plan) }).await.map(|_| ()))?;
    let nonce = hex::encode(demo_nonce(province));
    already(c.draw_inspection(pb::DrawInspectionRequest { plan_id: DEMO_PLAN.into(), nonce }).await.map(|_| ()))?;
    c.start_flight_inspection(pb::StartFlightInspectionRequest {
        flight_id: DEMO_FLIGHT.into(),
        institution_id: institution(province, 2),
        media: "demo: a newspaper report on duplicate billing".into(),
        ..Default::default()
    })
    .await?;
    // Credit (issue 13.3): a pharmaceutical enterprise's credit commitment, and institution 1
    // (graded A) on the joint incentive list for a year.
    let today = today();
    let day = medmesh_types::Date::parse(&today).map_err(|e| tonic::Status::internal(e.to_string()))?;
    already(
        c.record_commitment(pb::RecordCommitmentRequest {
            id: "EC-DEMO".into(),
            enterprise_code: DEMO_ENTERPRISE.into(),
            text: "demo: no kickbacks; prices as declared; supply as agreed".into(),
            verify_by: day.plus_days(180).to_string(),
            ..Default::default()
        })
        .await
        .map(|_| ()),
    )?;
    // Only a party graded A is listed: a demo whose institution 1 has since lost its A
    // (a case decided in a long-running mesh) goes on without the entry.
    let graded_a = |r: Result<(), tonic::Status>| match r {
        Err(s) if s.code() == tonic::Code::FailedPrecondition => Ok(()),
        other => other,
    };
    graded_a(already(
        c.record_incentive(pb::RecordIncentiveRequest {
            id: "JI-DEMO".into(),
            institution_id: institution(province, 1),
            from: today,
            until: day.plus_days(364).to_string(),
            reason: "demo: graded A with no case on record".into(),
            ..Default::default()
        })
        .await
        .map(|_| ()),
    ))?;
    Ok(())
}

/// The demo's pharmaceutical enterprise (a unified social credit code with a valid check
/// character).
pub const DEMO_ENTERPRISE: &str = "91110000710925462X";

/// Publishes the province's aggregates of today and of this month so far to the federation, so
/// that the national view has figures from the start (every day and month publishes itself
/// once it has ended). Around midnight the group's day may not have begun yet: that is skipped.
pub async fn publish_aggregates(ch: Channel) -> Result<(), tonic::Status> {
    let mut d = pb::disclosure_service_client::DisclosureServiceClient::new(ch);
    let day = today();
    for period in [day.clone(), day[..7].to_string()] {
        match d.publish_aggregate(pb::PublishAggregateRequest { period }).await {
            Err(s) if s.code() == tonic::Code::FailedPrecondition => {}
            other => {
                other?;
            }
        }
    }
    Ok(())
}

/// The filing kind of demo person `i` for care in other provinces: persons `4k+1` are
/// long-term residents, `4k+2` referred, `4k+3` other temporary visitors, `4k` not filed.
pub fn filing_kind(i: u32) -> Option<pb::FilingKind> {
    match i % 4 {
        1 => Some(pb::FilingKind::LongTermResident),
        2 => Some(pb::FilingKind::Referral),
        3 => Some(pb::FilingKind::OtherTemporary),
        _ => None,
    }
}

/// Files the demo persons of `province` for care in each of `provinces` (other than itself),
/// through the agency API; filing twice changes nothing.
pub async fn file(ch: Channel, province: &str, persons: u32, provinces: &[String]) -> Result<(), tonic::Status> {
    use futures::StreamExt;
    let c = AgencyServiceClient::new(ch);
    let mut pending = futures::stream::FuturesUnordered::new();
    for treatment in provinces.iter().filter(|p| p.as_str() != province) {
        for i in 0..persons {
            let Some(kind) = filing_kind(i) else { continue };
            let mut c = c.clone();
            let req = pb::FileNonLocalRequest {
                id: format!("DEMO-F{i}-{treatment}"),
                certificate_kind: pb::CertificateKind::SocialSecurityCard as i32,
                certificate: ss_card(province, i),
                treatment_province: treatment.clone(),
                kind: kind as i32,
                start: "2020-01-01".into(),
                end: "2099-12-31".into(),
            };
            pending.push(async move { c.file_non_local(req).await });
            if pending.len() >= 64 {
                if let Some(r) = pending.next().await {
                    r?;
                }
            }
        }
    }
    while let Some(r) = pending.next().await {
        r?;
    }
    Ok(())
}

/// Ten fee lines of mixed classes for claim `n`, dated `day`.
pub fn fee_lines(n: u64, day: &str) -> Vec<pb::FeeLine> {
    (0..10)
        .map(|j| {
            let (code, _) = CATALOGUE[((n + j) % 8) as usize];
            pb::FeeLine {
                serial: format!("L{j}"),
                code: code.into(),
                quantity: format!("{}", 1 + (n + j) % 3),
                unit_price: format!("{}.{:02}", 10 + (n * 7 + j * 13) % 190, (n + j) % 100),
                date: day.into(),
            }
        })
        .collect()
}

/// Settlement `serial` of visit `visit` at institution 1 of `province` for demo claim `n`,
/// carrying `lines` (empty when they were uploaded before); even claims pay the person's share
/// from the individual account.
pub fn settle_request(
    province: &str,
    serial: String,
    visit: &str,
    n: u64,
    lines: Vec<pb::FeeLine>,
) -> pb::SettleRequest {
    pb::SettleRequest {
        lines,
        institution_id: institution(province, 1),
        serial,
        visit_serial: visit.into(),
        use_individual_account: n.is_multiple_of(2),
    }
}

/// Today's date in China Standard Time, as the node sees it.
pub fn today() -> String {
    let ms = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    medmesh_types::LogTime(ms).date().to_string()
}

/// An outpatient visit at institution 1 of `province` for demo person `person`, billed to demo
/// doctor `doctor`, admitted on `day`.
pub fn visit_request(province: &str, serial: &str, person: u32, doctor: u32, day: &str) -> pb::RegisterVisitRequest {
    nonlocal_visit_request(province, province, serial, person, doctor, day)
}

/// An outpatient visit at institution 1 of `treatment` for demo person `person` of `insured`,
/// billed to demo doctor `doctor` of `treatment`, admitted on `day`.
pub fn nonlocal_visit_request(
    treatment: &str,
    insured: &str,
    serial: &str,
    person: u32,
    doctor: u32,
    day: &str,
) -> pb::RegisterVisitRequest {
    let province = treatment;
    pb::RegisterVisitRequest {
        institution_id: institution(province, 1),
        serial: serial.into(),
        certificate_kind: pb::CertificateKind::SocialSecurityCard as i32,
        certificate: ss_card(insured, person),
        kind: pb::VisitKind::Outpatient as i32,
        doctor_code: self::doctor(province, doctor),
        department: "internal medicine".into(),
        diagnosis: "J06.900".into(),
        admitted: day.into(),
        emergency: false,
    }
}
