//! Issue 11.6: a flagged claim becomes a case, and its decision is executed once, through the
//! public API of a real mesh (the federation and two 3-replica provinces, as processes).
//!
//! In 110000 a claim is flagged by a monitoring rule; the agency opens a case from the alert,
//! records a finding, decides (recover what the fund paid, a fine of 1.5 times, the agreement
//! suspended for a month, points for the billing doctor, a month on the joint-discipline list,
//! a transfer to public security) and executes. The fund is checked to the fen against the
//! settlement's own split; a second execution changes nothing; the institution can no longer
//! register visits; and 310000 sees the outcome and the doctor's points (and credit grade)
//! through the federation's shared log, with no personal identity in them. Bad input is refused naming the field.

use std::time::Duration;

use medmesh_node::demo;
use medmesh_node::pb;
use medmesh_node::pb::agency_service_client::AgencyServiceClient;
use medmesh_node::pb::disclosure_service_client::DisclosureServiceClient;
use medmesh_node::pb::hospital_service_client::HospitalServiceClient;
use medmesh_tests::{institution, settle_demo_claim, wait_until, yuan, Mesh};
use medmesh_types::Money;
use tonic::Code;

const HOME: &str = "110000";
const OTHER: &str = "310000";

fn fund(f: &pb::GetFundResponse) -> (Money, Money, Money, Money) {
    (yuan(&f.balance), yuan(&f.payables), yuan(&f.recovered), yuan(&f.fines_imposed))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flagged_claim_becomes_a_case_executed_once_and_shared() {
    let mut mesh = Mesh::start(&[HOME, OTHER], 4).await;
    let g = mesh.province(HOME);
    let leader = g.leader().await;
    let mut agency = AgencyServiceClient::new(g.agency(leader));
    agency
        .put_rule(pb::PutRuleRequest {
            rule: Some(pb::MonitoringRule {
                id: "AG-REVIEW".into(),
                version: 1,
                category: pb::RuleCategory::Management as i32,
                target: pb::RuleTarget::Claim as i32,
                action: pb::RuleAction::Flag as i32,
                severity: 2,
                title: "claims above 100 yuan are reviewed".into(),
                condition: "claim.total_fen > 10000".into(),
                enabled: true,
                ..Default::default()
            }),
        })
        .await
        .unwrap();

    // A hospital settles a claim; the rule flags it.
    let day = demo::today();
    let inst = demo::institution(HOME, 1);
    let mut h = HospitalServiceClient::new(g.channel_as(leader, &institution(HOME, 1)));
    // What the fund paid the institution for it: every part but the patient's cash.
    let (split, paid) = settle_demo_claim(&mut h, HOME, &day).await;
    assert!(paid > Money::ZERO, "{split:?}");
    let alert = agency.list_alerts(pb::ListAlertsRequest::default()).await.unwrap().into_inner().alerts.remove(0);
    assert_eq!((alert.rule_id.as_str(), alert.settlement_serial.as_str()), ("AG-REVIEW", "S1"));

    // The case, from the alert.
    let open = pb::OpenCaseRequest {
        case_id: "BJ-2026-0001".into(),
        alert_seq: alert.seq,
        institution_id: inst.clone(),
        ..Default::default()
    };
    let c = agency.open_case(open.clone()).await.unwrap().into_inner().case.unwrap();
    assert_eq!(c.state, pb::CaseState::Opened as i32);
    assert_eq!((c.settlement_serials.clone(), yuan(&c.involved)), (vec!["S1".to_string()], paid));
    assert_eq!(agency.open_case(open.clone()).await.unwrap().into_inner().case.unwrap(), c, "an opening is idempotent");
    let listed = agency.list_alerts(pb::ListAlertsRequest::default()).await.unwrap().into_inner().alerts;
    assert_eq!(listed[0].status, pb::AlertStatus::Accepted as i32);
    let e = agency.open_case(pb::OpenCaseRequest { case_id: "BJ-2".into(), ..open.clone() }).await.unwrap_err();
    assert!(e.code() == Code::AlreadyExists && e.message().starts_with("source.alert_seq:"), "{e:?}");

    let doctor = demo::doctor(HOME, 1);
    let decide = |recover: String, multiple: &str| pb::DecideCaseRequest {
        case_id: "BJ-2026-0001".into(),
        violation_type: pb::ViolationType::Irregular as i32,
        recover,
        fine_multiple: multiple.into(),
        agreement: pb::AgreementAction::Suspend as i32,
        suspend_months: 1,
        points: vec![pb::CasePoints { personnel_code: doctor.clone(), points: 3, severity_months: 1 }],
        discipline_days: 30,
        transfer_department: pb::Department::PublicSecurity as i32,
        transfer_reference: "PS-BJ-77".into(),
        reason: "items billed without indication".into(),
    };
    let e = agency.decide_case(decide(paid.to_string(), "1.5")).await.unwrap_err();
    assert!(e.code() == Code::FailedPrecondition && e.message().starts_with("case_id:"), "no finding yet: {e:?}");
    agency
        .investigate_case(pb::InvestigateCaseRequest {
            case_id: "BJ-2026-0001".into(),
            finding: "the notes show no indication for two items".into(),
        })
        .await
        .unwrap();
    let over = paid + yuan("0.01");
    let e = agency.decide_case(decide(over.to_string(), "1.5")).await.unwrap_err();
    assert!(e.code() == Code::InvalidArgument && e.message().starts_with("recover:"), "{e:?}");
    let e = agency.decide_case(decide(paid.to_string(), "2.5")).await.unwrap_err();
    assert!(e.code() == Code::InvalidArgument && e.message().starts_with("fine_multiple:"), "{e:?}");
    let e = agency.decide_case(decide(paid.to_string(), "1.55")).await.unwrap_err();
    assert!(e.code() == Code::InvalidArgument && e.message().starts_with("fine_multiple:"), "{e:?}");
    let c = agency.decide_case(decide(paid.to_string(), "1.5")).await.unwrap().into_inner().case.unwrap();
    assert_eq!(c.state, pb::CaseState::Decided as i32);

    // Disclosure, read by the hospital: this month's report carries the settlement's split to
    // the fen; no case is disclosed before it is executed.
    let month = day[..7].to_string();
    let mut public = DisclosureServiceClient::new(g.channel_as(leader, &institution(HOME, 1)));
    let report = |public: &mut DisclosureServiceClient<_>| {
        let mut public = public.clone();
        let month = month.clone();
        async move { public.get_fund_report(pb::GetFundReportRequest { month }).await.unwrap().into_inner() }
    };
    let r = report(&mut public).await;
    assert_eq!((r.province.as_str(), r.month.as_str(), r.r#final), (HOME, month.as_str(), false));
    assert_eq!((r.settlements, r.reversals), (1, 0));
    assert_eq!(
        (yuan(&r.pooling_paid), yuan(&r.critical_illness_paid), yuan(&r.accounts_paid)),
        (yuan(&split.pooling_fund), yuan(&split.critical_illness), yuan(&split.individual_account))
    );
    let disclosed = |public: &mut DisclosureServiceClient<_>| {
        let mut public = public.clone();
        async move {
            public.list_disclosed_cases(pb::ListDisclosedCasesRequest::default()).await.unwrap().into_inner().cases
        }
    };
    assert!(disclosed(&mut public).await.is_empty(), "a decided case is not yet public");

    // Executed: the ledger moves by exactly the recovery, once.
    let before = fund(&agency.get_fund(pb::GetFundRequest {}).await.unwrap().into_inner());
    let c = agency
        .execute_case(pb::ExecuteCaseRequest { case_id: "BJ-2026-0001".into() })
        .await
        .unwrap()
        .into_inner()
        .case
        .unwrap();
    assert_eq!(c.state, pb::CaseState::Executed as i32);
    let after = fund(&agency.get_fund(pb::GetFundRequest {}).await.unwrap().into_inner());
    let fine = Money::from_fen((paid.to_fen() * 15 + 5) / 10);
    assert_eq!(after, (before.0 + paid, before.1 - paid, before.2 + paid, before.3 + fine));
    assert_eq!(yuan(&c.decision.unwrap().fine), fine);
    let e = agency.execute_case(pb::ExecuteCaseRequest { case_id: "BJ-2026-0001".into() }).await.unwrap_err();
    assert!(e.code() == Code::FailedPrecondition && e.message().starts_with("case_id:"), "{e:?}");
    assert_eq!(fund(&agency.get_fund(pb::GetFundRequest {}).await.unwrap().into_inner()), after);
    // The month's report shows the recovery and the fine; the case is published, anonymised.
    let r2 = report(&mut public).await;
    assert_eq!(
        (yuan(&r2.recovered), yuan(&r2.fines_imposed)),
        (yuan(&r.recovered) + paid, yuan(&r.fines_imposed) + fine)
    );
    assert_eq!(yuan(&r2.closing_balance), yuan(&r.closing_balance) + paid);
    let cases = disclosed(&mut public).await;
    assert_eq!(cases.len(), 1, "{cases:?}");
    let d = &cases[0];
    assert_eq!(
        (d.case_id.as_str(), d.institution_id.as_str(), d.source.as_str()),
        ("BJ-2026-0001", inst.as_str(), "alert")
    );
    assert_eq!((yuan(&d.recovered), yuan(&d.fine)), (paid, fine));
    assert_eq!(
        (d.agreement, d.violation_type),
        (pb::AgreementAction::Suspend as i32, pb::ViolationType::Irregular as i32)
    );
    assert_eq!((d.executed_on.as_str(), d.reason.as_str()), (day.as_str(), "items billed without indication"));
    let e = public.get_fund_report(pb::GetFundReportRequest { month: "2026-13".into() }).await.unwrap_err();
    assert!(e.code() == Code::InvalidArgument && e.message().starts_with("month:"), "{e:?}");
    let next_year: i32 = day[..4].parse::<i32>().unwrap() + 1;
    let e = public.get_fund_report(pb::GetFundReportRequest { month: format!("{next_year}-01") }).await.unwrap_err();
    assert!(e.code() == Code::FailedPrecondition && e.message().starts_with("month:"), "{e:?}");
    let e = public
        .list_disclosed_cases(pb::ListDisclosedCasesRequest { page_token: "../x".into(), page_size: 0 })
        .await
        .unwrap_err();
    assert!(e.code() == Code::InvalidArgument && e.message().starts_with("page_token:"), "{e:?}");
    // The settlement recovered on stays; the suspended institution registers no visit.
    let e = h
        .reverse(pb::ReverseRequest {
            institution_id: inst.clone(),
            serial: "R1".into(),
            settlement_serial: "S1".into(),
        })
        .await
        .unwrap_err();
    assert!(e.code() == Code::FailedPrecondition && e.message().starts_with("settlement_serial:"), "{e:?}");
    let e = h.register_visit(demo::visit_request(HOME, "V2", 2, 1, &day)).await.unwrap_err();
    assert!(e.code() == Code::FailedPrecondition && e.message().contains("BJ-2026-0001"), "{e:?}");

    // Another province sees the outcome and the doctor's points through the shared log.
    let o = mesh.province(OTHER);
    let mut other = AgencyServiceClient::new(o.agency(o.leader().await));
    let outcomes = wait_until(Duration::from_secs(60), "the outcome to reach 310000", || {
        let mut other = other.clone();
        let inst = inst.clone();
        async move {
            let r = other
                .list_case_outcomes(pb::ListCaseOutcomesRequest { institution_id: inst, page_size: 0 })
                .await
                .ok()?
                .into_inner();
            (!r.outcomes.is_empty()).then_some(r.outcomes)
        }
    })
    .await;
    assert_eq!(outcomes.len(), 1);
    let shared = &outcomes[0];
    assert_eq!((shared.province.as_str(), shared.case_id.as_str()), (HOME, "BJ-2026-0001"));
    assert_eq!((yuan(&shared.recovered), yuan(&shared.fine)), (paid, fine));
    assert_eq!(shared.transfer_department, pb::Department::PublicSecurity as i32);
    assert_eq!(shared.personnel_codes, vec![doctor.clone()]);
    let q = other
        .get_qualification(pb::GetQualificationRequest { personnel_code: doctor.clone() })
        .await
        .unwrap()
        .into_inner()
        .qualification
        .unwrap();
    assert_eq!(q.year_points, 3, "one score in every province");
    // The doctor's credit follows them too: 100 − 4 per point (3) = 88, grade B, in 310000,
    // from the violation 110000's decision scored.
    let doctor_rating = other
        .get_credit_rating(pb::GetCreditRatingRequest { personnel_code: doctor.clone(), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .rating
        .unwrap();
    assert_eq!(
        (doctor_rating.score, doctor_rating.grade, doctor_rating.personnel_code.as_str()),
        (88, pb::CreditGrade::B as i32, doctor.as_str())
    );
    let kinds: Vec<(&str, &str, u32)> =
        doctor_rating.entries.iter().map(|e| (e.kind.as_str(), e.province.as_str(), e.points)).collect();
    assert_eq!(kinds, vec![("violation", HOME, 12)]);

    // The credit rating, computed here by hand from the model in the README: 100 − 10 (irregular
    // use) − 1 per full 10,000 yuan recovered − 10 (agreement suspended); grade D whatever the
    // score while on the joint-discipline list (30 days from today). Every province rates alike.
    let want_score = 100 - 10 - u32::try_from(paid.to_fen() / 1_000_000).unwrap() - 10;
    let rating = |mut c: AgencyServiceClient<tonic::transport::Channel>, inst: String| async move {
        c.get_credit_rating(pb::GetCreditRatingRequest { institution_id: inst, ..Default::default() })
            .await
            .map(|r| r.into_inner().rating.unwrap())
    };
    let home_rating = rating(agency.clone(), inst.clone()).await.unwrap();
    assert_eq!((home_rating.score, home_rating.grade), (want_score, pb::CreditGrade::D as i32), "{home_rating:?}");
    let kinds: Vec<(&str, &str, bool)> =
        home_rating.entries.iter().map(|e| (e.kind.as_str(), e.province.as_str(), e.forces_d)).collect();
    assert!(kinds.contains(&("case", HOME, false)) && kinds.contains(&("discipline", HOME, true)), "{kinds:?}");
    let got = agency.get_institution(pb::GetInstitutionRequest { id: inst.clone() }).await.unwrap().into_inner();
    assert_eq!(got.credit_grade, pb::CreditGrade::D as i32);
    let end = got.institution.unwrap().agreement_end;
    let warned = end.as_str() <= medmesh_types::Date::parse(&day).unwrap().plus_days(90).to_string().as_str();
    assert_eq!(!got.renewal_warning.is_empty(), warned, "agreement ends {end}: {:?}", got.renewal_warning);
    let other_rating = wait_until(Duration::from_secs(60), "310000 to rate the institution alike", || {
        let other = other.clone();
        let inst = inst.clone();
        let want = home_rating.clone();
        async move { rating(other, inst).await.ok().filter(|r| r.entries == want.entries) }
    })
    .await;
    assert_eq!((other_rating.score, other_rating.grade), (want_score, pb::CreditGrade::D as i32));
    // Credit repair: 110000 lifts its case on appeal; every province stops counting it (score
    // 100), while the discipline entry still makes the grade D until its last day.
    let lift = |reason: &str| pb::LiftCreditEntryRequest { case_id: "BJ-2026-0001".into(), reason: reason.into() };
    let e = agency.lift_credit_entry(lift("")).await.unwrap_err();
    assert!(e.code() == Code::InvalidArgument && e.message().starts_with("reason:"), "{e:?}");
    let e = other.lift_credit_entry(lift("not theirs")).await.unwrap_err();
    assert!(
        e.code() == Code::NotFound && e.message().starts_with("case_id:"),
        "another province cannot lift it: {e:?}"
    );
    agency.lift_credit_entry(lift("the decision was annulled on administrative review")).await.unwrap();
    agency.lift_credit_entry(lift("the decision was annulled on administrative review")).await.unwrap();
    let e = agency.lift_credit_entry(lift("another reason")).await.unwrap_err();
    assert!(e.code() == Code::AlreadyExists && e.message().starts_with("case_id:"), "{e:?}");
    let lifted = wait_until(Duration::from_secs(60), "310000 to see the lift", || {
        let other = other.clone();
        let inst = inst.clone();
        async move { rating(other, inst).await.ok().filter(|r| r.score == 100) }
    })
    .await;
    assert_eq!(lifted.grade, pb::CreditGrade::D as i32, "the discipline entry still counts: {lifted:?}");
    let case = lifted.entries.iter().find(|e| e.kind == "case").unwrap();
    assert!(!case.counted && case.points == 0 && case.lifted_on == day, "{case:?}");
    assert_eq!(rating(agency.clone(), inst.clone()).await.unwrap().entries, lifted.entries);
    let e = rating(other.clone(), demo::institution(OTHER, 99)).await.unwrap_err();
    assert!(e.code() == Code::NotFound && e.message().starts_with("institution_id:"), "{e:?}");
    let e = rating(other.clone(), "not an id".into()).await.unwrap_err();
    assert!(e.code() == Code::InvalidArgument && e.message().starts_with("institution_id:"), "{e:?}");

    // A notification-commitment the institution made in 110000 and breached: −15 in every
    // province (the discipline entry still forces D). 310000 may neither record nor resolve it.
    let later = medmesh_types::Date::parse(&day).unwrap().plus_days(30).to_string();
    let record = pb::RecordCommitmentRequest {
        id: "NC-1".into(),
        institution_id: inst.clone(),
        text: "the pharmacy holds every licence it declared".into(),
        verify_by: later.clone(),
        ..Default::default()
    };
    let e = other.record_commitment(record.clone()).await.unwrap_err();
    assert!(e.code() == Code::NotFound && e.message().starts_with("institution_id:"), "{e:?}");
    let bad = pb::RecordCommitmentRequest { verify_by: "2000-01-01".into(), ..record.clone() };
    let e = agency.record_commitment(bad).await.unwrap_err();
    assert!(e.code() == Code::InvalidArgument && e.message().starts_with("verify_by:"), "{e:?}");
    for (bad, field) in [
        (pb::RecordCommitmentRequest { id: "a/b".into(), ..record.clone() }, "id"),
        (pb::RecordCommitmentRequest { text: String::new(), ..record.clone() }, "text"),
        (pb::RecordCommitmentRequest { verify_by: "soon".into(), ..record.clone() }, "verify_by"),
        (pb::RecordCommitmentRequest { institution_id: "not an id".into(), ..record.clone() }, "institution_id"),
    ] {
        let e = agency.record_commitment(bad).await.unwrap_err();
        assert!(e.code() == Code::InvalidArgument && e.message().starts_with(&format!("{field}:")), "{e:?}");
    }
    let e = agency
        .list_commitments(pb::ListCommitmentsRequest { institution_id: "not an id".into(), ..Default::default() })
        .await
        .unwrap_err();
    assert!(e.code() == Code::InvalidArgument && e.message().starts_with("institution_id:"), "{e:?}");
    let c = agency.record_commitment(record.clone()).await.unwrap().into_inner().commitment.unwrap();
    assert_eq!((c.state.as_str(), c.made_on.as_str(), c.verify_by.as_str()), ("open", day.as_str(), later.as_str()));
    let resolve = |kept: bool, finding: &str| pb::ResolveCommitmentRequest {
        id: "NC-1".into(),
        institution_id: inst.clone(),
        kept,
        finding: finding.into(),
        ..Default::default()
    };
    let e = agency.resolve_commitment(resolve(false, "")).await.unwrap_err();
    assert!(e.code() == Code::InvalidArgument && e.message().starts_with("finding:"), "{e:?}");
    let e = other.resolve_commitment(resolve(true, "")).await.unwrap_err();
    assert!(e.code() == Code::NotFound && e.message().starts_with("id:"), "{e:?}");
    agency.resolve_commitment(resolve(false, "no licence on file for the pharmacy")).await.unwrap();
    let e = agency.resolve_commitment(resolve(true, "")).await.unwrap_err();
    assert!(e.code() == Code::FailedPrecondition && e.message().starts_with("id:"), "{e:?}");
    let breached = wait_until(Duration::from_secs(60), "310000 to see the breach", || {
        let other = other.clone();
        let inst = inst.clone();
        async move { rating(other, inst).await.ok().filter(|r| r.score == 85) }
    })
    .await;
    let line = breached.entries.iter().find(|e| e.kind == "commitment").unwrap();
    assert_eq!((line.province.as_str(), line.ref_id.as_str(), line.points), (HOME, "NC-1", 15));
    assert_eq!(rating(agency.clone(), inst.clone()).await.unwrap().entries, breached.entries);
    let listed = other
        .list_commitments(pb::ListCommitmentsRequest { institution_id: inst.clone(), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .commitments;
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].state.as_str(), listed[0].finding.as_str()),
        ("breached", "no licence on file for the pharmacy")
    );

    // A pharmaceutical enterprise signs its credit commitment in 110000 and keeps it; listed
    // as trusted there, it is trusted in 310000 too. The institution, graded D, is not listed.
    const ENTERPRISE: &str = "91110000710925462X";
    let pledge = pb::RecordCommitmentRequest {
        id: "EC-1".into(),
        enterprise_code: ENTERPRISE.into(),
        text: "no kickbacks; prices as declared; supply as agreed".into(),
        verify_by: later.clone(),
        ..Default::default()
    };
    let e = agency
        .record_commitment(pb::RecordCommitmentRequest {
            enterprise_code: "91110000710925462Y".into(),
            ..pledge.clone()
        })
        .await
        .unwrap_err();
    assert!(e.code() == Code::InvalidArgument && e.message().starts_with("enterprise_code:"), "{e:?}");
    let both = pb::RecordCommitmentRequest { institution_id: inst.clone(), ..pledge.clone() };
    let e = agency.record_commitment(both).await.unwrap_err();
    assert!(e.code() == Code::InvalidArgument && e.message().starts_with("institution_id:"), "{e:?}");
    let taken = pb::RecordCommitmentRequest { id: "NC-1".into(), ..pledge.clone() };
    let e = agency.record_commitment(taken).await.unwrap_err();
    assert!(e.code() == Code::AlreadyExists && e.message().starts_with("id:"), "NC-1 is the institution's: {e:?}");
    let c = agency.record_commitment(pledge).await.unwrap().into_inner().commitment.unwrap();
    assert_eq!((c.enterprise_code.as_str(), c.institution_id.as_str()), (ENTERPRISE, ""));
    let kept = pb::ResolveCommitmentRequest {
        id: "EC-1".into(),
        enterprise_code: ENTERPRISE.into(),
        kept: true,
        ..Default::default()
    };
    agency.resolve_commitment(kept).await.unwrap();
    let incentive = |id: &str, institution_id: &str, enterprise_code: &str| pb::RecordIncentiveRequest {
        id: id.into(),
        institution_id: institution_id.into(),
        enterprise_code: enterprise_code.into(),
        from: day.clone(),
        until: later.clone(),
        reason: "kept every commitment; no violation on record".into(),
        ..Default::default()
    };
    let e = agency.record_incentive(incentive("JI-1", &inst, "")).await.unwrap_err();
    assert!(e.code() == Code::FailedPrecondition && e.message().starts_with("institution_id:"), "{e:?}");
    assert!(e.message().contains("graded D"), "{e:?}");
    for (bad, field) in [
        (pb::RecordIncentiveRequest { id: String::new(), ..incentive("x", "", ENTERPRISE) }, "id"),
        (pb::RecordIncentiveRequest { reason: String::new(), ..incentive("JI-2", "", ENTERPRISE) }, "reason"),
        (pb::RecordIncentiveRequest { until: "2000-01-01".into(), ..incentive("JI-2", "", ENTERPRISE) }, "until"),
        (pb::RecordIncentiveRequest { from: "someday".into(), ..incentive("JI-2", "", ENTERPRISE) }, "from"),
        (incentive("JI-2", "", "not a code"), "enterprise_code"),
        (incentive("JI-2", "", ""), "institution_id"),
    ] {
        let e = agency.record_incentive(bad).await.unwrap_err();
        assert!(e.code() == Code::InvalidArgument && e.message().starts_with(&format!("{field}:")), "{e:?}");
    }
    let e = other.record_incentive(incentive("JI-9", &inst, "")).await.unwrap_err();
    assert!(e.code() == Code::NotFound && e.message().starts_with("institution_id:"), "not 310000's: {e:?}");
    let entry = agency.record_incentive(incentive("JI-2", "", ENTERPRISE)).await.unwrap().into_inner().entry.unwrap();
    assert_eq!((entry.province.as_str(), entry.in_force), (HOME, true));
    let listed = |mut c: AgencyServiceClient<tonic::transport::Channel>| async move {
        let r = pb::ListIncentivesRequest { enterprise_code: ENTERPRISE.into(), ..Default::default() };
        c.list_incentives(r).await.map(|r| r.into_inner().entries)
    };
    let there = wait_until(Duration::from_secs(60), "310000 to see the incentive entry", || {
        let other = other.clone();
        async move { listed(other).await.ok().filter(|e| !e.is_empty()) }
    })
    .await;
    assert_eq!(there, vec![entry.clone()]);
    for (bad, field) in [
        (pb::ListIncentivesRequest::default(), "institution_id"),
        (
            pb::ListIncentivesRequest { enterprise_code: "91110000710925462Y".into(), ..Default::default() },
            "enterprise_code",
        ),
        (pb::ListIncentivesRequest { personnel_code: "a/b".into(), ..Default::default() }, "personnel_code"),
    ] {
        let e = other.list_incentives(bad).await.unwrap_err();
        assert!(e.code() == Code::InvalidArgument && e.message().starts_with(&format!("{field}:")), "{e:?}");
    }
    let enterprise = other
        .get_credit_rating(pb::GetCreditRatingRequest { enterprise_code: ENTERPRISE.into(), ..Default::default() })
        .await
        .unwrap()
        .into_inner()
        .rating
        .unwrap();
    assert_eq!((enterprise.score, enterprise.grade, enterprise.trusted), (100, pb::CreditGrade::A as i32, true));
    let kinds: Vec<&str> = enterprise.entries.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, vec!["commitment", "incentive"], "{enterprise:?}");

    // An insured person's rating is their province's agency's alone.
    let nat = g.channel_as(leader, &medmesh_tests::national());
    let e = AgencyServiceClient::new(nat)
        .get_credit_rating(pb::GetCreditRatingRequest {
            certificate_kind: pb::CertificateKind::IdCard as i32,
            certificate: "110101199001011234".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert!(e.code() == Code::PermissionDenied && e.message().starts_with("certificate:"), "{e:?}");

    // Closed; a closed case takes no decision.
    let c = agency
        .close_case(pb::CloseCaseRequest { case_id: "BJ-2026-0001".into(), reason: String::new() })
        .await
        .unwrap()
        .into_inner()
        .case
        .unwrap();
    assert_eq!(c.state, pb::CaseState::Closed as i32);
    let e = agency.decide_case(decide(paid.to_string(), "1.5")).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    let got = agency.get_case(pb::GetCaseRequest { case_id: "BJ-2026-0001".into() }).await.unwrap().into_inner();
    assert_eq!(got.case.unwrap().findings.len(), 1);
    let page = agency.list_cases(pb::ListCasesRequest { page_token: String::new(), page_size: 1 }).await.unwrap();
    assert_eq!(page.into_inner().next_page_token, "BJ-2026-0001");

    // Bad input, each named.
    let named = |e: tonic::Status, code: Code, field: &str| {
        assert!(e.code() == code && e.message().starts_with(&format!("{field}:")), "{field}: {e:?}");
    };
    let e = agency
        .open_case(pb::OpenCaseRequest { case_id: "X1".into(), institution_id: inst.clone(), ..Default::default() })
        .await
        .unwrap_err();
    named(e, Code::InvalidArgument, "source");
    let e = agency.open_case(pb::OpenCaseRequest { case_id: "a/b".into(), ..open.clone() }).await.unwrap_err();
    named(e, Code::InvalidArgument, "case_id");
    let e = agency
        .open_case(pb::OpenCaseRequest {
            case_id: "X2".into(),
            alert_seq: 0,
            inspection_id: "INS-1".into(),
            institution_id: inst.clone(),
            settlement_serials: vec!["S1".into()],
            ..Default::default()
        })
        .await
        .unwrap_err();
    named(e, Code::FailedPrecondition, "settlement_serials[0]");
    let e = agency
        .open_case(pb::OpenCaseRequest {
            case_id: "X3".into(),
            report_id: "REP-1".into(),
            institution_id: inst.clone(),
            settlement_serials: vec!["NOPE".into()],
            ..Default::default()
        })
        .await
        .unwrap_err();
    named(e, Code::NotFound, "settlement_serials[0]");
    named(agency.get_case(pb::GetCaseRequest { case_id: "NONE".into() }).await.unwrap_err(), Code::NotFound, "case_id");
    named(
        agency.get_case(pb::GetCaseRequest { case_id: "a/b".into() }).await.unwrap_err(),
        Code::InvalidArgument,
        "case_id",
    );
    let investigate =
        |case_id: &str, finding: &str| pb::InvestigateCaseRequest { case_id: case_id.into(), finding: finding.into() };
    named(agency.investigate_case(investigate("NONE", "f")).await.unwrap_err(), Code::NotFound, "case_id");
    named(
        agency.investigate_case(investigate("BJ-2026-0001", " ")).await.unwrap_err(),
        Code::InvalidArgument,
        "finding",
    );
    named(
        agency.execute_case(pb::ExecuteCaseRequest { case_id: "NONE".into() }).await.unwrap_err(),
        Code::NotFound,
        "case_id",
    );
    named(
        agency.close_case(pb::CloseCaseRequest { case_id: String::new(), reason: "r".into() }).await.unwrap_err(),
        Code::InvalidArgument,
        "case_id",
    );
    type Edit = Box<dyn Fn(&mut pb::DecideCaseRequest)>;
    let bad_decisions: Vec<(Edit, &str)> = vec![
        (Box::new(|d| d.violation_type = 0), "violation_type"),
        (Box::new(|d| d.points[0].severity_months = 7), "points[0].severity_months"),
        (Box::new(|d| d.points[0].personnel_code = "a b".into()), "points[0].personnel_code"),
        (
            Box::new(|d| {
                d.agreement = pb::AgreementAction::Keep as i32;
                d.suspend_months = 2
            }),
            "suspend_months",
        ),
        (
            Box::new(|d| {
                d.transfer_department = 0;
                d.transfer_reference = "X".into()
            }),
            "transfer_reference",
        ),
        (Box::new(|d| d.recover = "-1".into()), "recover"),
    ];
    for (edit, field) in bad_decisions {
        let mut d = decide(paid.to_string(), "1.5");
        edit(&mut d);
        named(agency.decide_case(d).await.unwrap_err(), Code::InvalidArgument, field);
    }
    named(
        agency.list_cases(pb::ListCasesRequest { page_token: "a/b".into(), page_size: 0 }).await.unwrap_err(),
        Code::InvalidArgument,
        "page_token",
    );
    let outcomes = |institution_id: &str, page_size| pb::ListCaseOutcomesRequest {
        institution_id: institution_id.into(),
        page_size,
    };
    named(agency.list_case_outcomes(outcomes("", 0)).await.unwrap_err(), Code::InvalidArgument, "institution_id");
    named(agency.list_case_outcomes(outcomes(&inst, 10_001)).await.unwrap_err(), Code::InvalidArgument, "page_size");
    let scan = pb::ScanSettlementsRequest {
        rule_id: "AG-REVIEW".into(),
        from: "2025-02-30".into(),
        to: day.clone(),
        ..Default::default()
    };
    named(agency.scan_settlements(scan).await.unwrap_err(), Code::InvalidArgument, "from");
    named(
        agency.list_cases(pb::ListCasesRequest { page_token: String::new(), page_size: 10_001 }).await.unwrap_err(),
        Code::InvalidArgument,
        "page_size",
    );
    named(
        agency.put_case_policy(pb::PutCasePolicyRequest { policy: None }).await.unwrap_err(),
        Code::InvalidArgument,
        "policy",
    );
    let mut policy = agency.get_case_policy(pb::GetCasePolicyRequest {}).await.unwrap().into_inner().policy.unwrap();
    assert_eq!(policy.fine_multiples.len(), 3);
    assert_eq!((policy.fine_multiples[1].min.as_str(), policy.fine_multiples[1].max.as_str()), ("2.0", "5.0"));
    policy.fine_multiples[0].min = "3.0".into();
    let e = agency.put_case_policy(pb::PutCasePolicyRequest { policy: Some(policy.clone()) }).await.unwrap_err();
    named(e, Code::InvalidArgument, "policy.fine_multiples");
    policy.fine_multiples[0].min = "1.0".into();
    policy.investigate_days = 30;
    let p = agency.put_case_policy(pb::PutCasePolicyRequest { policy: Some(policy.clone()) }).await.unwrap();
    assert_eq!(p.into_inner().policy.unwrap(), policy);
    mesh.federation.stop_all().await;
    for g in &mut mesh.provinces {
        g.stop_all().await;
    }
}

/// Issue 11.4 on real processes: a person insured in 310000 is in a 310000 hospital since
/// yesterday (settled today); a 110000 hospital then claims a stay since yesterday for the same
/// person. The insured province, which every fund-paid claim of its insured passes through,
/// refuses the second stay before any money moves (XR-01), and the reverse order is caught the
/// same way when the local stay settles. No identity reaches the federation or 110000. Then
/// 110000's own rules judge visitors' claims there: a self-pay line, a flag that becomes a case
/// (which recovers nothing of 310000's fund share), a block before 310000 is asked.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn overlapping_stays_in_two_provinces_are_refused_before_the_second_payment() {
    let mut mesh = Mesh::start(&[HOME, OTHER], 8).await;
    let ins = mesh.province(OTHER);
    let insured = AgencyServiceClient::new(ins.agency(ins.leader().await));
    // The cross-regional rules are national: recorded at the federation, copied everywhere.
    let fed = mesh.federation.channel_as(mesh.federation.leader().await, &medmesh_tests::national());
    let mut national = pb::federation_service_client::FederationServiceClient::new(fed);
    let xr: Vec<_> = medmesh_monitor::shipped_rules().into_iter().filter(|r| r.id.starts_with("XR-")).collect();
    for r in &xr {
        let rule = Some(medmesh_node::convert::rule_pb(r));
        national.put_national_rule(pb::PutNationalRuleRequest { rule }).await.unwrap();
    }
    let listed = national.list_national_rules(pb::ListNationalRulesRequest {}).await.unwrap().into_inner().rules;
    let mut bad = medmesh_node::convert::rule_pb(&xr[0]);
    bad.id = "NAT-BAD".into();
    bad.condition = "claim.total_fen > 1.5".into();
    let e = national.put_national_rule(pb::PutNationalRuleRequest { rule: Some(bad) }).await.unwrap_err();
    assert!(e.code() == Code::InvalidArgument && e.message().starts_with("rule.condition:"), "{e:?}");
    let e = national.put_national_rule(pb::PutNationalRuleRequest { rule: None }).await.unwrap_err();
    assert!(e.code() == Code::InvalidArgument && e.message().starts_with("rule:"), "{e:?}");
    assert_eq!(listed.len(), xr.len());
    wait_until(Duration::from_secs(60), "the national rules to reach 310000", || {
        let mut a = insured.clone();
        let n = xr.len();
        async move {
            let rules = a.list_rules(pb::ListRulesRequest {}).await.ok()?.into_inner().rules;
            (rules.iter().filter(|r| r.national).count() == n).then_some(())
        }
    })
    .await;
    // Through a province's replica the national rules read the same; a province cannot take
    // a national rule's id.
    let mut via_province = pb::federation_service_client::FederationServiceClient::new(ins.agency(1));
    let listed = via_province.list_national_rules(pb::ListNationalRulesRequest {}).await.unwrap().into_inner().rules;
    assert_eq!(listed.len(), xr.len());
    let mut own = medmesh_node::convert::rule_pb(&xr[0]);
    own.version = 2;
    let e = insured.clone().put_rule(pb::PutRuleRequest { rule: Some(own.clone()) }).await.unwrap_err();
    assert!(e.code() == Code::FailedPrecondition && e.message().starts_with("rule.id:"), "{e:?}");
    let e = via_province.put_national_rule(pb::PutNationalRuleRequest { rule: Some(own) }).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "an agency records no national rule: {e:?}");
    let today = demo::today();
    let yesterday = medmesh_types::Date::parse(&today).unwrap().plus_days(-1).to_string();
    let stay = |treatment: &str, serial: &str, person: u32| {
        let mut r = demo::nonlocal_visit_request(treatment, OTHER, serial, person, 1, &yesterday);
        r.kind = pb::VisitKind::Inpatient as i32;
        r
    };
    let settle = |treatment: &str, serial: &str, visit: &str| pb::SettleRequest {
        lines: Vec::new(),
        institution_id: demo::institution(treatment, 1),
        serial: serial.into(),
        visit_serial: visit.into(),
        use_individual_account: false,
    };
    let claim = |g: &medmesh_tests::Group, treatment: &'static str, visit: &'static str, person: u32| {
        let ch = g.channel_as(1, &institution(treatment, 1));
        let (req, day) = (stay(treatment, visit, person), yesterday.clone());
        async move {
            let mut h = HospitalServiceClient::new(ch);
            h.register_visit(req).await.unwrap();
            h.upload_fees(pb::UploadFeesRequest {
                institution_id: demo::institution(treatment, 1),
                visit_serial: visit.into(),
                lines: demo::fee_lines(2, &day),
            })
            .await
            .unwrap();
            h
        }
    };
    let fund = |mut a: AgencyServiceClient<tonic::transport::Channel>| async move {
        a.get_fund(pb::GetFundRequest {}).await.unwrap().into_inner()
    };

    // Person 1 (a long-term resident filed for 110000): the local stay first.
    let (home, other) = (mesh.province(HOME), mesh.province(OTHER));
    let mut local = claim(other, OTHER, "VL1", 1).await;
    local.settle(settle(OTHER, "SL1", "VL1")).await.unwrap();
    let before = fund(insured.clone()).await;
    let mut remote = claim(home, HOME, "VR1", 1).await;
    let e = remote.settle(settle(HOME, "SR1", "VR1")).await.unwrap_err();
    assert!(e.code() == Code::FailedPrecondition && e.message().contains("XR-01"), "{e:?}");
    let after = fund(insured.clone()).await;
    assert_eq!(
        (after.nonlocal_settlements, after.nonlocal_reserved.clone()),
        (before.nonlocal_settlements, before.nonlocal_reserved)
    );

    // Person 5 (also long-term): the non-local stay first, then the local one is refused.
    let mut remote = claim(home, HOME, "VR5", 5).await;
    remote.settle(settle(HOME, "SR5", "VR5")).await.unwrap();
    let mut local = claim(other, OTHER, "VL5", 5).await;
    let e = local.settle(settle(OTHER, "SL5", "VL5")).await.unwrap_err();
    assert!(e.code() == Code::FailedPrecondition && e.message().contains("XR-01"), "{e:?}");

    // 110000's own rules judge its visitors' claims: a ceiling on a line's amount (self-pay), a
    // flag on every visitor's claim, a block on a doctor under investigation; a rule reading the
    // person (which would refuse every claim) does not run on a visitor.
    let mut treating = AgencyServiceClient::new(home.agency(home.leader().await));
    let own = |id: &str, target: pb::RuleTarget, action: pb::RuleAction, condition: String| pb::PutRuleRequest {
        rule: Some(pb::MonitoringRule {
            id: id.into(),
            version: 1,
            category: pb::RuleCategory::Policy as i32,
            target: target as i32,
            action: action as i32,
            severity: 3,
            title: format!("110000's rule {id}"),
            condition,
            enabled: true,
            ..Default::default()
        }),
    };
    for r in [
        own("BJ-CAP", pb::RuleTarget::Line, pb::RuleAction::SelfPay, "line.amount_fen > 30000".into()),
        own("BJ-FLAG", pb::RuleTarget::Claim, pb::RuleAction::Flag, "claim.nonlocal".into()),
        own(
            "BJ-DOC",
            pb::RuleTarget::Claim,
            pb::RuleAction::Block,
            format!("doctor.code == {:?}", demo::doctor(HOME, 2)),
        ),
        own("BJ-AGE", pb::RuleTarget::Claim, pb::RuleAction::Block, "person.age >= 0".into()),
    ] {
        treating.put_rule(r).await.unwrap();
    }
    let outpatient = |serial: &str, person: u32, doctor: u32| {
        let ch = home.channel_as(1, &institution(HOME, 1));
        let (req, today) = (demo::nonlocal_visit_request(HOME, OTHER, serial, person, doctor, &today), today.clone());
        let visit = serial.to_string();
        async move {
            let mut h = HospitalServiceClient::new(ch);
            h.register_visit(req).await.unwrap();
            let lines = demo::fee_lines(2, &today);
            let upload =
                pb::UploadFeesRequest { institution_id: demo::institution(HOME, 1), visit_serial: visit, lines };
            h.upload_fees(upload).await.unwrap();
            h
        }
    };
    // Which lines are over ¥300.00, worked out here from the lines as sent.
    let over: Vec<String> = demo::fee_lines(2, &today)
        .iter()
        .filter(|l| {
            let quantity: i64 = l.quantity.parse().unwrap();
            (yuan(&l.unit_price).to_fen() * quantity) > 30_000
        })
        .map(|l| l.serial.clone())
        .collect();
    assert!(!over.is_empty() && over.len() < 10, "the lines straddle the ceiling: {over:?}");
    let mut h = outpatient("VC2", 2, 1).await;
    let s = h.settle(settle(HOME, "SC2", "VC2")).await.unwrap().into_inner();
    let capped: Vec<String> =
        s.split.unwrap().lines.iter().filter(|l| l.rule_id == "BJ-CAP").map(|l| l.serial.clone()).collect();
    assert_eq!(capped, over, "the ceiling's lines are the patient's");
    let alerts = treating.list_alerts(pb::ListAlertsRequest::default()).await.unwrap().into_inner().alerts;
    let flagged: Vec<&pb::Alert> = alerts.iter().filter(|a| a.settlement_serial == "SC2").collect();
    assert_eq!(flagged.len(), 1, "{alerts:?}");
    assert_eq!(flagged[0].rule_id, "BJ-FLAG");
    let mut h = outpatient("VC3", 3, 2).await;
    let before = fund(insured.clone()).await;
    let e = h.settle(settle(HOME, "SC3", "VC3")).await.unwrap_err();
    assert!(e.code() == Code::FailedPrecondition && e.message().contains("BJ-DOC"), "{e:?}");
    let after = fund(insured.clone()).await;
    assert_eq!(after.nonlocal_settlements, before.nonlocal_settlements, "nothing asked of 310000");
    // The flag becomes a case in 110000, which recovers nothing of 310000's fund share.
    let open = pb::OpenCaseRequest {
        case_id: "BJ-V-1".into(),
        alert_seq: flagged[0].seq,
        institution_id: demo::institution(HOME, 1),
        ..Default::default()
    };
    let c = treating.open_case(open).await.unwrap().into_inner().case.unwrap();
    assert_eq!((c.settlement_serials, yuan(&c.involved)), (vec!["SC2".to_string()], Money::ZERO));
    let finding = pb::InvestigateCaseRequest { case_id: "BJ-V-1".into(), finding: "priced above the cap".into() };
    treating.investigate_case(finding).await.unwrap();
    let decide = pb::DecideCaseRequest {
        case_id: "BJ-V-1".into(),
        violation_type: pb::ViolationType::Irregular as i32,
        recover: "1.00".into(),
        fine_multiple: "1.0".into(),
        agreement: pb::AgreementAction::Keep as i32,
        reason: "priced above the cap".into(),
        ..Default::default()
    };
    let e = treating.decide_case(decide).await.unwrap_err();
    assert!(e.code() == Code::InvalidArgument && e.message().starts_with("recover:"), "{e:?}");
    assert!(e.message().contains("SC2") && e.message().contains(OTHER), "{e:?}");
    mesh.federation.stop_all().await;
    for g in &mut mesh.provinces {
        g.stop_all().await;
    }
}
