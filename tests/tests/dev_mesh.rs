//! Drives `medmesh dev` through the public gRPC API only, as a hospital would.

use std::process::Stdio;
use std::time::Duration;

use medmesh_node::demo;
use medmesh_node::identity::Identity;
use medmesh_node::pb;
use medmesh_node::pb::agency_service_client::AgencyServiceClient;
use medmesh_node::pb::federation_service_client::FederationServiceClient;
use medmesh_node::pb::hospital_service_client::HospitalServiceClient;
use medmesh_tests::workload::{fee_lines, today};
use medmesh_tests::{agency, binary, dev_endpoints, free_base_port, institution, national, wait_until, yuan};
use tonic::Code;

/// A channel to a replica of the dev mesh whose data directory is `dir`, as `identity`, with
/// the certificate `medmesh dev` issued (and printed) under `{dir}/pki`.
fn dev_ch(dir: &tempfile::TempDir, addr: &str, identity: &Identity) -> tonic::transport::Channel {
    let transport = medmesh_node::dev::dev_pki(dir.path()).unwrap().transport(identity).unwrap();
    medmesh_node::network::channel(addr, &transport).unwrap()
}

struct Dev(tokio::process::Child);

impl Drop for Dev {
    fn drop(&mut self) {
        // SIGINT lets `medmesh dev` stop its replicas.
        if let Some(pid) = self.0.id() {
            let _ = std::process::Command::new("kill").arg("-INT").arg(pid.to_string()).status();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hospital_settles_and_reverses_against_medmesh_dev() {
    let data = tempfile::tempdir().unwrap();
    let dir = &data;
    let base = free_base_port();
    let mut child = tokio::process::Command::new(binary())
        .args(["dev", "--provinces", "3", "--persons", "20", "--base-port", &base.to_string(), "--data-dir"])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("medmesh dev starts");
    let stdout = child.stdout.take().unwrap();
    let _dev = Dev(child);
    let endpoints = dev_endpoints(stdout).await;
    assert_eq!(endpoints.len(), 12, "the federation and three provinces x three replicas printed: {endpoints:?}");
    // Printed in order: federation, 110000, 310000, 440000.
    let (p110, p310, p440) = (&endpoints[3..6], &endpoints[6..9], &endpoints[9..12]);

    // Talk to a follower-or-leader replica of province 110000; any replica serves.
    let mut h = HospitalServiceClient::new(dev_ch(dir, &p110[2], &institution("110000", 1)));
    let inst = demo::institution("110000", 1);
    let id = h
        .lookup_identity(pb::LookupIdentityRequest {
            institution_id: inst.clone(),
            certificate_kind: pb::CertificateKind::SocialSecurityCard as i32,
            certificate: demo::ss_card("110000", 1),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(id.insurance_status, "ACTIVE");
    assert!(id.masked_id.contains("****"), "identity numbers are masked: {}", id.masked_id);

    let day = today();
    h.register_visit(demo::visit_request("110000", "V1", 1, 1, &day)).await.unwrap();
    let up = h
        .upload_fees(pb::UploadFeesRequest {
            institution_id: inst.clone(),
            visit_serial: "V1".into(),
            lines: fee_lines(1, &day),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(up.line_count, 10);
    let quote = h
        .pre_settle(pb::PreSettleRequest {
            institution_id: inst.clone(),
            visit_serial: "V1".into(),
            use_individual_account: true,
        })
        .await
        .unwrap()
        .into_inner()
        .split
        .unwrap();
    assert_eq!(quote.total, up.total);
    let settle = pb::SettleRequest {
        lines: Vec::new(),
        institution_id: inst.clone(),
        serial: "S1".into(),
        visit_serial: "V1".into(),
        use_individual_account: true,
    };
    let s = h.settle(settle.clone()).await.unwrap().into_inner();
    assert_eq!(s.split.as_ref(), Some(&quote), "the settlement matches the quote");
    let again = h.settle(settle).await.unwrap().into_inner();
    assert_eq!(again, s, "a retry returns the first outcome");

    let doc = h
        .get_expense_document(pb::GetExpenseDocumentRequest { institution_id: inst.clone(), serial: "S1".into() })
        .await
        .unwrap()
        .into_inner()
        .document
        .unwrap();
    assert_eq!(doc.split.unwrap().lines.len(), 10);
    let stmt = h
        .list_settlements(pb::ListSettlementsRequest {
            institution_id: inst.clone(),
            from: day.clone(),
            to: day.clone(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(stmt.settlements.len(), 1);

    // Bad input gets a clear status naming the field.
    let err = h
        .upload_fees(pb::UploadFeesRequest {
            institution_id: inst.clone(),
            visit_serial: "V1".into(),
            lines: vec![pb::FeeLine {
                serial: "X".into(),
                code: "XA0001".into(),
                quantity: "1".into(),
                unit_price: "1.001".into(),
                date: day.clone(),
            }],
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    assert!(err.message().starts_with("lines[0].unit_price"), "{}", err.message());
    let err = h
        .settle(pb::SettleRequest {
            lines: Vec::new(),
            institution_id: inst.clone(),
            serial: "S1".into(),
            visit_serial: "V2".into(),
            use_individual_account: false,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::AlreadyExists, "{}", err.message());
    let err = h
        .lookup_identity(pb::LookupIdentityRequest {
            institution_id: inst.clone(),
            certificate_kind: pb::CertificateKind::SocialSecurityCard as i32,
            certificate: "NOBODY".into(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let lookup = |institution_id: &str| pb::LookupIdentityRequest {
        institution_id: institution_id.into(),
        certificate_kind: pb::CertificateKind::SocialSecurityCard as i32,
        certificate: demo::ss_card("110000", 1),
    };
    // A hospital naming another institution is refused, naming itself and the other.
    let err = h.lookup_identity(lookup("H-NOT-DESIGNATED")).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    assert!(err.message().contains("H110000-01") && err.message().contains("H-NOT-DESIGNATED"), "{}", err.message());
    // An institution with a certificate that the province never designated sees no identity.
    let stranger = medmesh_tests::id("medmesh://province/110000/institution/H-NOT-DESIGNATED");
    let mut undesignated = HospitalServiceClient::new(dev_ch(dir, &p110[0], &stranger));
    let err = undesignated.lookup_identity(lookup("H-NOT-DESIGNATED")).await.unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "an unregistered institution sees no identity");
    assert!(err.message().starts_with("institution_id:"), "{}", err.message());

    // Points decided in two other provinces (5 in 310000, 4 in 440000) suspend doctor 2 of
    // 110000 in a third: shared through the federation, a visit billed to them is refused
    // with FAILED_PRECONDITION naming the doctor.
    for (id, addr, province, points) in
        [("P-310000-7", &p310[0], "310000", 5u32), ("P-440000-3", &p440[1], "440000", 4)]
    {
        let mut agency = AgencyServiceClient::new(dev_ch(dir, addr, &agency(province)));
        agency
            .record_violation(pb::RecordViolationRequest {
                personnel_code: demo::doctor("110000", 2),
                id: id.into(),
                decided_on: day.clone(),
                points,
                severity_months: 3,
                province: province.into(),
            })
            .await
            .unwrap();
    }
    let mut agency2 = AgencyServiceClient::new(dev_ch(dir, &p110[1], &agency("110000")));
    let q = wait_until(Duration::from_secs(30), "shared points to reach 110000", || {
        let mut a = agency2.clone();
        async move {
            let q = a
                .get_qualification(pb::GetQualificationRequest { personnel_code: demo::doctor("110000", 2) })
                .await
                .ok()?
                .into_inner()
                .qualification
                .unwrap();
            (q.year_points == 9).then_some(q)
        }
    })
    .await;
    assert_eq!((q.state.as_str(), q.year_points, q.may_bill), ("SUSPENDED", 9, false));
    let err = h.register_visit(demo::visit_request("110000", "V-D2", 2, 2, &day)).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(err.message().starts_with("doctor_code:"), "{}", err.message());
    let _ = agency2.get_fund(pb::GetFundRequest {}).await.unwrap();

    // What the agency wrote it reads back, from any replica: the demo policy, as loaded.
    let policy = agency2.get_policy(pb::GetPolicyRequest {}).await.unwrap().into_inner().policy.unwrap();
    assert_eq!((policy.deductible.as_str(), policy.annual_cap.as_str()), ("800.00", "300000.00"));
    assert_eq!(policy.ratios.len(), 6);
    assert!(policy.ratios.iter().any(|r| r.institution_level == 3
        && r.ratio == "0.8"
        && r.insurance_type == pb::InsuranceType::Employee as i32));
    let got = agency2
        .get_institution(pb::GetInstitutionRequest { id: inst.clone() })
        .await
        .unwrap()
        .into_inner()
        .institution
        .unwrap();
    assert_eq!(got.id, inst);
    let missing = agency2.get_institution(pb::GetInstitutionRequest { id: "H-NONE".into() }).await.unwrap_err();
    assert_eq!((missing.code(), missing.message().starts_with("id:")), (Code::NotFound, true), "{}", missing.message());

    nonlocal_settlement_through_the_hospital_api(dir, &mut h, &endpoints[0..3], p110, p310, &day).await;
    joint_discipline_counts_in_every_province(dir, p110, p310, p440, &day).await;

    // Reverse: the fund gets the money back.
    let mut agency = AgencyServiceClient::new(dev_ch(dir, &p110[0], &agency("110000")));
    // The dev mesh's provinces hold the shipped monitoring rules from the start.
    let rules = agency.list_rules(pb::ListRulesRequest {}).await.unwrap().into_inner().rules;
    assert_eq!(rules.len(), medmesh_monitor::shipped_rules().len());
    // And the demo's supervision records: a plan graded by credit (A: nothing against either
    // institution when it was recorded), drawn with the demo nonce; a flight inspection.
    let plan = agency
        .get_inspection_plan(pb::GetInspectionPlanRequest { plan_id: demo::DEMO_PLAN.into() })
        .await
        .unwrap()
        .into_inner();
    let targets = plan.plan.unwrap().targets;
    assert!(targets.len() == 2 && targets.iter().all(|t| t.grade == pb::CreditGrade::A as i32), "{targets:?}");
    let draw = plan.draw.expect("the demo plan is drawn");
    assert_eq!((draw.nonce, draw.assignments.len()), (hex::encode(demo::demo_nonce("110000")), 1));
    let flight = agency
        .get_flight_inspection(pb::GetFlightInspectionRequest { flight_id: demo::DEMO_FLIGHT.into() })
        .await
        .unwrap()
        .into_inner()
        .flight
        .unwrap();
    assert_eq!((flight.trigger.as_str(), flight.started_on.as_str()), ("media", day.as_str()));
    let before = agency.get_fund(pb::GetFundRequest {}).await.unwrap().into_inner();
    let r = h
        .reverse(pb::ReverseRequest {
            institution_id: inst.clone(),
            serial: "R1".into(),
            settlement_serial: "S1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(r.status, "REVERSED");
    let after = agency.get_fund(pb::GetFundRequest {}).await.unwrap().into_inner();
    assert_eq!(after.settlements + 1, before.settlements);
    assert_eq!(after.pooling_paid, "0.00");
    assert_eq!(after.balance, after.contributions);
    assert_eq!(after.payables, after.nonlocal_receivable, "only the non-local settlement is still payable");
    let err = h
        .reverse(pb::ReverseRequest { institution_id: inst, serial: "R2".into(), settlement_serial: "S1".into() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
}

/// A patient insured in 310000 settles at a hospital of 110000 through the same calls: the
/// mesh routes, the federation records the decision, both ledgers and the positions agree.
async fn nonlocal_settlement_through_the_hospital_api(
    dir: &tempfile::TempDir,
    h: &mut HospitalServiceClient<tonic::transport::Channel>,
    fedp: &[String],
    p110: &[String],
    p310: &[String],
    day: &str,
) {
    let inst = demo::institution("110000", 1);
    // Before admitting, the hospital checks the visitor's entitlement: through the federation
    // and the insured province, masked and minimal (issue 12.6).
    let who = h
        .lookup_identity(pb::LookupIdentityRequest {
            institution_id: inst.clone(),
            certificate_kind: pb::CertificateKind::SocialSecurityCard as i32,
            certificate: demo::ss_card("310000", 1),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((who.insured_province.as_str(), who.insurance_status.as_str()), ("310000", "ACTIVE"));
    assert_eq!(who.nonlocal_filing, demo::filing_kind(1).unwrap() as i32, "person 1 is filed as a long-term resident");
    assert!(who.masked_id.starts_with("310") && who.masked_id.contains("****"), "{}", who.masked_id);
    assert!(!who.name.is_empty());
    assert!(who.accumulators.is_none() && who.account_balance.is_empty() && who.birth_date.is_empty(), "{who:?}");
    let v = h
        .register_visit(demo::nonlocal_visit_request("110000", "310000", "NV1", 1, 1, day))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(v.insured_province, "310000");
    assert!(v.masked_id.starts_with("310") && v.masked_id.contains("****"), "{}", v.masked_id);
    h.upload_fees(pb::UploadFeesRequest {
        institution_id: inst.clone(),
        visit_serial: "NV1".into(),
        lines: fee_lines(3, day),
    })
    .await
    .unwrap();
    let quote = h
        .pre_settle(pb::PreSettleRequest {
            institution_id: inst.clone(),
            visit_serial: "NV1".into(),
            use_individual_account: false,
        })
        .await
        .unwrap()
        .into_inner()
        .split
        .unwrap();
    let settle = pb::SettleRequest {
        lines: Vec::new(),
        institution_id: inst.clone(),
        serial: "NS1".into(),
        visit_serial: "NV1".into(),
        use_individual_account: false,
    };
    let s = h.settle(settle.clone()).await.unwrap().into_inner();
    assert_eq!(s.insured_province, "310000");
    assert_eq!(s.split.as_ref(), Some(&quote), "the non-local settlement matches its quote");
    assert_eq!(h.settle(settle).await.unwrap().into_inner(), s, "a retry returns the first outcome");
    let split = s.split.unwrap();
    let fund_share = medmesh_types::Money::parse_yuan(&split.pooling_fund).unwrap()
        + medmesh_types::Money::parse_yuan(&split.critical_illness).unwrap();

    let mut fed = FederationServiceClient::new(dev_ch(dir, &p310[2], &national()));
    let positions = fed.get_positions(pb::GetPositionsRequest {}).await.unwrap().into_inner();
    assert_eq!(positions.settlements, 1);
    assert_eq!(medmesh_types::Money::parse_yuan(&positions.total).unwrap(), fund_share);
    let mut insured = AgencyServiceClient::new(dev_ch(dir, &p310[0], &agency("310000")));
    let f = insured.get_fund(pb::GetFundRequest {}).await.unwrap().into_inner();
    assert_eq!(f.nonlocal_owed, positions.total, "the insured province owes what the federation says");
    assert_eq!(f.nonlocal_reserved, "0.00");
    let t = fed
        .get_transfer(pb::GetTransferRequest {
            treatment_province: "110000".into(),
            institution_id: inst.clone(),
            serial: "NS1".into(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((t.decision.as_str(), t.insured_province.as_str()), ("COMMIT", "310000"));

    // Prepaid first: 310000 tops up; the settlement consumed its share; a low balance warns.
    let mut fed310 = FederationServiceClient::new(dev_ch(dir, &p310[2], &agency("310000")));
    let acct = fed310
        .top_up(pb::TopUpRequest {
            province: "310000".into(),
            serial: "TU-1".into(),
            amount: "100".into(),
            warning_below: "1000000".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .account
        .unwrap();
    assert_eq!(acct.consumed, positions.total);
    assert!(acct.warning, "a balance below the threshold warns (and care goes on)");
    // The pool pays for the prepaid account: 310000's balance falls by the top-up, once.
    let after = wait_until(Duration::from_secs(30), "310000's pool to follow its top-up", || {
        let mut insured = insured.clone();
        async move {
            let f = insured.get_fund(pb::GetFundRequest {}).await.ok()?.into_inner();
            (f.prepaid_topped_up == "100.00").then_some(f)
        }
    })
    .await;
    assert_eq!(yuan(&after.balance), yuan(&f.balance) - yuan("100"), "{f:?} then {after:?}");
    // Then clearing: this month is open, so its statement stands as the settlements came; it
    // reconciles with its lines and the positions, the institution confirms its line and may
    // roll the confirmation back, another cannot. The month is cleared and settled only after
    // it ends (the payment test walks a whole month through).
    let month = day[..7].to_string();
    // The national administration clears at the federation's own replicas; a province replica
    // does not forward it.
    let err = fed.run_clearing(pb::RunClearingRequest { month: month.clone() }).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    let mut national_fed = FederationServiceClient::new(dev_ch(dir, &fedp[0], &national()));
    // `medmesh dev` published every province's month so far: the national view has them all.
    let req = pb::GetNationalAggregatesRequest { period: month.clone(), province: String::new() };
    let view = national_fed.get_national_aggregates(req).await.expect("the month's aggregates").into_inner();
    let published: Vec<&str> = view.aggregates.iter().map(|a| a.province.as_str()).collect();
    assert_eq!(published, vec!["110000", "310000", "440000"]);
    let err = national_fed.run_clearing(pb::RunClearingRequest { month: month.clone() }).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert!(err.message().starts_with("month:"), "a month is cleared after it ends: {}", err.message());
    let err = national_fed.settle_clearing(pb::SettleClearingRequest { month: month.clone() }).await.unwrap_err();
    assert!(err.message().starts_with("month:"), "nor settled before it is cleared: {}", err.message());
    let run = fed
        .get_clearing(pb::GetClearingRequest { month: month.clone(), page_size: 1, page_token: String::new() })
        .await
        .unwrap()
        .into_inner()
        .clearing
        .unwrap();
    assert_eq!(run.status, "OPEN");
    let st = run.statements.iter().find(|s| s.insured_province == "310000").expect("a 310000 statement");
    // The lines, read one per page, reconcile with the total to the fen.
    let (mut lines, mut token) = (medmesh_types::Money::ZERO, String::new());
    loop {
        let page = fed
            .get_clearing(pb::GetClearingRequest { month: month.clone(), page_size: 1, page_token: token })
            .await
            .unwrap()
            .into_inner();
        let c = page.clearing.unwrap();
        let s = c.statements.iter().find(|s| s.insured_province == "310000").expect("every page has the totals");
        assert!(s.lines.len() <= 1);
        lines +=
            s.lines.iter().map(|l| medmesh_types::Money::parse_yuan(&l.amount).unwrap()).sum::<medmesh_types::Money>();
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    assert_eq!(lines.to_string(), st.total, "the total reconciles with the lines to the fen");
    assert_eq!(st.total, positions.total);
    let confirm = |inst: &str, yes| pb::ConfirmClearingLineRequest {
        month: month.clone(),
        treatment_province: "110000".into(),
        institution_id: inst.into(),
        serial: "NS1".into(),
        confirm: yes,
    };
    // The institution confirms through its own province's replica (forwarded) or the federation.
    let mut own = FederationServiceClient::new(dev_ch(dir, &p110[0], &institution("110000", 1)));
    let c = own.confirm_clearing_line(confirm(&inst, true)).await.unwrap().into_inner().clearing.unwrap();
    assert_eq!(c.statements[0].confirmed_total, st.total);
    let mut other = FederationServiceClient::new(dev_ch(dir, &fedp[1], &institution("110000", 2)));
    let err = other.confirm_clearing_line(confirm(&demo::institution("110000", 2), true)).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(err.message().starts_with("institution_id:"), "{}", err.message());
    // Nor may it name the line's institution.
    let err = other.confirm_clearing_line(confirm(&inst, true)).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    let c = own.confirm_clearing_line(confirm(&inst, false)).await.unwrap().into_inner().clearing.unwrap();
    assert_eq!(c.statements[0].confirmed_total, "0.00", "a confirmation can be rolled back");
}

/// The deciding province lifts its entry (credit repair): refused from another province, for
/// an unknown id or without a reason; then the institution settles again in 440000, where the
/// entry stays listed with the lift.
async fn lift_discipline_reaches_every_province(
    dir: &tempfile::TempDir,
    p110: &[String],
    p440: &[String],
    day: &str,
    h440: &HospitalServiceClient<tonic::transport::Channel>,
    next: &impl Fn() -> u32,
) {
    let lift = |id: &str, reason: &str| pb::LiftDisciplineRequest {
        id: id.into(),
        institution_id: demo::institution("440000", 1),
        reason: reason.into(),
        ..Default::default()
    };
    let mut a440 = AgencyServiceClient::new(dev_ch(dir, &p440[0], &agency("440000")));
    let err = a440.lift_discipline(lift("JD-110000-1", "appeal upheld")).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert!(err.message().starts_with("id:") && err.message().contains("110000"), "{}", err.message());

    let mut a110 = AgencyServiceClient::new(dev_ch(dir, &p110[1], &agency("110000")));
    let err = a110.lift_discipline(lift("JD-110000-404", "appeal upheld")).await.unwrap_err();
    assert_eq!((err.code(), err.message().starts_with("id:")), (Code::NotFound, true), "{err:?}");
    let err = a110.lift_discipline(lift("JD-110000-1", " ")).await.unwrap_err();
    assert_eq!((err.code(), err.message().starts_with("reason:")), (Code::InvalidArgument, true), "{err:?}");
    let err = a110
        .lift_discipline(pb::LiftDisciplineRequest {
            id: "JD-110000-1".into(),
            reason: "r".into(),
            ..Default::default()
        })
        .await
        .unwrap_err();
    assert_eq!((err.code(), err.message().starts_with("institution_id:")), (Code::InvalidArgument, true), "{err:?}");

    let e = a110.lift_discipline(lift("JD-110000-1", "appeal upheld")).await.unwrap().into_inner().entry.unwrap();
    assert_eq!((e.in_force, e.lifted_on.as_str(), e.lift_reason.as_str()), (false, day, "appeal upheld"));
    let again = a110.lift_discipline(lift("JD-110000-1", "appeal upheld")).await.unwrap().into_inner().entry.unwrap();
    assert_eq!(again, e, "the same lift again answers it");
    let err = a110.lift_discipline(lift("JD-110000-1", "another reason")).await.unwrap_err();
    assert_eq!((err.code(), err.message().starts_with("id:")), (Code::AlreadyExists, true), "{err:?}");

    // 440000 copies the lift from the federation's shared log: its hospital registers again.
    wait_until(Duration::from_secs(30), "the lift to reach 440000", || {
        let mut h = h440.clone();
        let req = demo::visit_request("440000", &format!("V-JD-{}", next()), 1, 1, day);
        async move { h.register_visit(req).await.ok() }
    })
    .await;
    let listed = a440
        .list_discipline(pb::ListDisciplineRequest {
            institution_id: demo::institution("440000", 1),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .entries;
    let listed: Vec<_> = listed.into_iter().filter(|l| l.id == "JD-110000-1").collect();
    assert_eq!(listed, vec![e], "listed in 440000 with the lift, as 110000 answered");
}

/// A joint-discipline entry recorded by one province stops direct settlement in another: an
/// institution of 440000 listed by 110000, a person of 310000 listed by 310000 and refused at
/// a hospital of 110000.
async fn joint_discipline_counts_in_every_province(
    dir: &tempfile::TempDir,
    p110: &[String],
    p310: &[String],
    p440: &[String],
    day: &str,
) {
    let mut a110 = AgencyServiceClient::new(dev_ch(dir, &p110[0], &agency("110000")));
    a110.record_discipline(pb::RecordDisciplineRequest {
        id: "JD-110000-1".into(),
        institution_id: demo::institution("440000", 1),
        from: day.into(),
        until: "2099-12-31".into(),
        reason: "fraudulent claims".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    let h440 = HospitalServiceClient::new(dev_ch(dir, &p440[1], &institution("440000", 1)));
    // A fresh serial each attempt: a retry of one serial would return its first outcome.
    let attempt = std::sync::atomic::AtomicU32::new(0);
    let next = || attempt.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    let err = wait_until(Duration::from_secs(30), "the entry to reach 440000", || {
        let mut h = h440.clone();
        let req = demo::visit_request("440000", &format!("V-JD-{}", next()), 1, 1, day);
        async move { h.register_visit(req).await.err().filter(|e| e.code() == Code::FailedPrecondition) }
    })
    .await;
    assert!(
        err.message().starts_with("institution_id:") && err.message().contains("joint-discipline"),
        "{}",
        err.message()
    );
    lift_discipline_reaches_every_province(dir, p110, p440, day, &h440, &next).await;

    let mut a310 = AgencyServiceClient::new(dev_ch(dir, &p310[0], &agency("310000")));
    let e = a310
        .record_discipline(pb::RecordDisciplineRequest {
            id: "JD-310000-1".into(),
            certificate_kind: pb::CertificateKind::SocialSecurityCard as i32,
            certificate: demo::ss_card("310000", 5),
            from: day.into(),
            until: "2099-12-31".into(),
            reason: "resold prescribed drugs".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .entry
        .unwrap();
    assert!(e.person && e.in_force && e.institution_id.is_empty());
    let h110 = HospitalServiceClient::new(dev_ch(dir, &p110[2], &institution("110000", 1)));
    let err = wait_until(Duration::from_secs(30), "the person's entry to reach 110000", || {
        let mut h = h110.clone();
        let req = demo::nonlocal_visit_request("110000", "310000", &format!("V-JDP-{}", next()), 5, 1, day);
        async move { h.register_visit(req).await.err().filter(|e| e.code() == Code::FailedPrecondition) }
    })
    .await;
    assert!(
        err.message().starts_with("certificate:") && err.message().contains("joint-discipline"),
        "{}",
        err.message()
    );
    let err = a310
        .record_discipline(pb::RecordDisciplineRequest { id: "JD-X".into(), reason: "x".into(), ..Default::default() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
}
