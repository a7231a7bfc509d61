//! Drives `medmesh dev` through the public gRPC API only, as a hospital would.

use std::process::Stdio;
use std::time::Duration;

use medmesh_node::demo;
use medmesh_node::pb;
use medmesh_node::pb::agency_service_client::AgencyServiceClient;
use medmesh_node::pb::hospital_service_client::HospitalServiceClient;
use medmesh_tests::workload::{fee_lines, today};
use medmesh_tests::{binary, free_base_port};
use tokio::io::{AsyncBufReadExt, BufReader};
use tonic::Code;

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
    let dir = tempfile::tempdir().unwrap();
    let base = free_base_port();
    let mut child = tokio::process::Command::new(binary())
        .args(["dev", "--provinces", "2", "--persons", "20", "--base-port", &base.to_string(), "--data-dir"])
        .arg(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("medmesh dev starts");
    let stdout = child.stdout.take().unwrap();
    let _dev = Dev(child);
    let mut lines = BufReader::new(stdout).lines();
    let mut endpoints = Vec::new();
    tokio::time::timeout(Duration::from_secs(120), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(addr) = line.split_whitespace().last().filter(|a| a.starts_with("127.0.0.1:")) {
                endpoints.push(addr.to_string());
            }
            if line.starts_with("ready") {
                break;
            }
        }
    })
    .await
    .expect("medmesh dev becomes ready");
    assert_eq!(endpoints.len(), 6, "two provinces x three replicas printed: {endpoints:?}");

    // Talk to a follower-or-leader replica of province 110000; any replica serves.
    let mut h = HospitalServiceClient::connect(format!("http://{}", endpoints[2])).await.unwrap();
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
        .into_inner();
    assert_eq!(doc.split.unwrap().lines.len(), 10);
    let stmt = h
        .list_settlements(pb::ListSettlementsRequest {
            institution_id: inst.clone(),
            from: day.clone(),
            to: day.clone(),
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
    let err = h
        .lookup_identity(pb::LookupIdentityRequest {
            institution_id: "H-NOT-DESIGNATED".into(),
            certificate_kind: pb::CertificateKind::SocialSecurityCard as i32,
            certificate: demo::ss_card("110000", 1),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound, "an unregistered institution sees no identity");
    assert!(err.message().starts_with("institution:"), "{}", err.message());

    // Points decided by two other provinces suspend doctor 2 here: a visit billed to them is
    // refused with FAILED_PRECONDITION naming the doctor.
    let mut agency2 = AgencyServiceClient::connect(format!("http://{}", endpoints[1])).await.unwrap();
    for (id, province, points) in [("P-310000-7", "310000", 5u32), ("P-440000-3", "440000", 4)] {
        agency2
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
    let q = agency2
        .get_qualification(pb::GetQualificationRequest { personnel_code: demo::doctor("110000", 2) })
        .await
        .unwrap()
        .into_inner();
    assert_eq!((q.state.as_str(), q.year_points, q.may_bill), ("SUSPENDED", 9, false));
    let err = h.register_visit(demo::visit_request("110000", "V-D2", 2, 2, &day)).await.unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
    assert!(err.message().starts_with("doctor:"), "{}", err.message());

    // Reverse: the fund gets the money back.
    let mut agency = AgencyServiceClient::connect(format!("http://{}", endpoints[0])).await.unwrap();
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
    let err = h
        .reverse(pb::ReverseRequest { institution_id: inst, serial: "R2".into(), settlement_serial: "S1".into() })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition);
}
