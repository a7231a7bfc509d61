//! Issue 13.2: a report (whistleblowing) through the public API of a real province (3 replica
//! processes over mTLS).
//!
//! Someone with no certificate at all reports an institution, named; the agency accepts the
//! report, a claim of that institution is recovered by a case the report opened, and the
//! reporter is rewarded: the reward is checked to the fen against the settlement's own split,
//! and the pool falls by exactly it, once. The reporter follows it all by the receipt code.
//! Only the report officer reads who reported, and the read is recorded. Then every replica
//! stops, and no byte any of them left on disk holds the reporter's name or contact.

use medmesh_node::demo;
use medmesh_node::network::channel;
use medmesh_node::pb;
use medmesh_node::pb::agency_service_client::AgencyServiceClient;
use medmesh_node::pb::disclosure_service_client::DisclosureServiceClient;
use medmesh_node::pb::hospital_service_client::HospitalServiceClient;
use medmesh_node::pb::report_service_client::ReportServiceClient;
use medmesh_tests::{agency, fails, institution, report_officer, settle_demo_claim, yuan, Mesh};
use medmesh_types::Money;
use tonic::Code;

const HOME: &str = "110000";
const NAME: &str = "Reporter Wang Wu-7c1e";
const CONTACT: &str = "wangwu-7c1e@example.org +86 139 1234 5678";

/// Every file under `dir`, recursively.
fn files(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    for e in std::fs::read_dir(dir).expect("read_dir").flatten() {
        let p = e.path();
        if p.is_dir() {
            files(&p, out);
        } else {
            out.push(p);
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_is_rewarded_once_and_its_reporter_stays_sealed() {
    let mut mesh = Mesh::start(&[HOME], 4).await;
    let g = mesh.province(HOME);
    let leader = g.leader().await;
    let addr = g.replica(leader).addr.clone();
    let inst = demo::institution(HOME, 1);
    let day = demo::today();

    // Anyone: no certificate at all.
    let anonymous = channel(&addr, &medmesh_tests::pki().anonymous().unwrap()).unwrap();
    let mut public = ReportServiceClient::new(anonymous);
    let submit = pb::SubmitReportRequest {
        serial: "CH-2f9a".into(),
        institution_id: inst.clone(),
        summary: "inpatient days billed for patients who had gone home".into(),
        reporter: Some(pb::Reporter { name: NAME.into(), contact: CONTACT.into() }),
    };
    let got = public.submit_report(submit.clone()).await.unwrap().into_inner();
    assert_eq!(got.report_id, "R-00000001");
    assert!(got.receipt_code.starts_with("RC-") && got.receipt_code.len() == 27, "{got:?}");
    assert_eq!(public.submit_report(submit.clone()).await.unwrap().into_inner(), got, "a retry is the same report");
    let changed = pb::SubmitReportRequest { summary: "something else".into(), ..submit.clone() };
    fails(public.submit_report(changed).await, Code::AlreadyExists, "serial");
    let bad = pb::SubmitReportRequest { institution_id: "H-NOPE".into(), serial: "CH-x".into(), ..submit.clone() };
    fails(public.submit_report(bad).await, Code::NotFound, "institution_id");
    let status = |public: &mut ReportServiceClient<_>| {
        let mut public = public.clone();
        let receipt_code = got.receipt_code.clone();
        async move { public.get_report_status(pb::GetReportStatusRequest { receipt_code }).await.unwrap().into_inner() }
    };
    assert_eq!(status(&mut public).await.state, pb::ReportState::Received as i32);
    fails(
        public
            .get_report_status(pb::GetReportStatusRequest { receipt_code: "RC-000000000000000000000000".into() })
            .await,
        Code::NotFound,
        "receipt_code",
    );
    fails(
        public.get_report_status(pb::GetReportStatusRequest { receipt_code: "guess".into() }).await,
        Code::InvalidArgument,
        "receipt_code",
    );

    // The agency sees the report, never the reporter, and accepts it.
    let mut reports = ReportServiceClient::new(g.channel_as(leader, &agency(HOME)));
    let listed = reports.list_reports(pb::ListReportsRequest::default()).await.unwrap().into_inner().reports;
    assert_eq!(listed.len(), 1);
    assert_eq!((listed[0].anonymous, listed[0].overdue, listed[0].reporter_reads), (false, false, 0));
    assert!(!format!("{listed:?}").contains(NAME) && !format!("{listed:?}").contains("139 1234"));
    let ack = |accept: bool, note: &str| pb::AcknowledgeReportRequest {
        report_id: got.report_id.clone(),
        accept,
        note: note.into(),
    };
    reports.acknowledge_report(ack(true, "accepted; we will inspect")).await.unwrap();
    fails(reports.acknowledge_report(ack(false, "no")).await, Code::FailedPrecondition, "report_id");
    let s = status(&mut public).await;
    assert_eq!((s.state, s.reply.as_str()), (pb::ReportState::Accepted as i32, "accepted; we will inspect"));

    // A claim of the institution, recovered by a case the report opened.
    let mut h = HospitalServiceClient::new(g.channel_as(leader, &institution(HOME, 1)));
    let (_, paid) = settle_demo_claim(&mut h, HOME, &day).await;
    let mut a = AgencyServiceClient::new(g.channel_as(leader, &agency(HOME)));
    let pay =
        |reference: &str| pb::PayReportRewardRequest { report_id: got.report_id.clone(), reference: reference.into() };
    fails(reports.pay_report_reward(pay("BANK-1")).await, Code::FailedPrecondition, "report_id");
    a.open_case(pb::OpenCaseRequest {
        case_id: "BJ-R-1".into(),
        report_id: got.report_id.clone(),
        institution_id: inst.clone(),
        settlement_serials: vec!["S1".into()],
        ..Default::default()
    })
    .await
    .unwrap();
    a.investigate_case(pb::InvestigateCaseRequest { case_id: "BJ-R-1".into(), finding: "no such stay".into() })
        .await
        .unwrap();
    a.decide_case(pb::DecideCaseRequest {
        case_id: "BJ-R-1".into(),
        violation_type: pb::ViolationType::Fraud as i32,
        recover: paid.to_string(),
        fine_multiple: "2".into(),
        agreement: pb::AgreementAction::Keep as i32,
        reason: "stays billed that never happened".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    fails(reports.pay_report_reward(pay("BANK-1")).await, Code::FailedPrecondition, "report_id");
    a.execute_case(pb::ExecuteCaseRequest { case_id: "BJ-R-1".into() }).await.unwrap();

    // The reward: 5 % of the recovery, rounded half up, no less than 200 yuan, paid once.
    let fund = |a: &mut AgencyServiceClient<_>| {
        let mut a = a.clone();
        async move {
            let f = a.get_fund(pb::GetFundRequest {}).await.unwrap().into_inner();
            (yuan(&f.balance), yuan(&f.rewards_paid))
        }
    };
    let before = fund(&mut a).await;
    let five = Money::from_fen((paid.to_fen() * 50 + 500) / 1000);
    let want = five.max(yuan("200.00")).min(yuan("200000.00"));
    let r = reports.pay_report_reward(pay("BANK-1")).await.unwrap().into_inner();
    assert_eq!((yuan(&r.amount), yuan(&r.recovered), r.case_id.as_str()), (want, paid, "BJ-R-1"));
    let after = fund(&mut a).await;
    assert_eq!(after, (before.0 - want, before.1 + want));
    assert_eq!(reports.pay_report_reward(pay("BANK-1")).await.unwrap().into_inner(), r, "a retry");
    fails(reports.pay_report_reward(pay("BANK-2")).await, Code::FailedPrecondition, "report_id");
    assert_eq!(fund(&mut a).await, after, "paid once");
    let month = day[..7].to_string();
    let mut disclosure = DisclosureServiceClient::new(g.channel_as(leader, &institution(HOME, 1)));
    let fr = disclosure.get_fund_report(pb::GetFundReportRequest { month }).await.unwrap().into_inner();
    assert_eq!(yuan(&fr.rewards_paid), want, "the month's report shows the reward");
    reports
        .conclude_report(pb::ConcludeReportRequest {
            report_id: got.report_id.clone(),
            reply: "the institution repaid the fund and was fined".into(),
        })
        .await
        .unwrap();
    let s = status(&mut public).await;
    assert_eq!(
        (s.state, yuan(&s.reward), s.reward_reference.as_str()),
        (pb::ReportState::Concluded as i32, want, "BANK-1")
    );

    // Only the report officer reads who reported; the read is recorded.
    let open = pb::OpenReporterRequest { report_id: got.report_id.clone() };
    let e = reports.open_reporter(open.clone()).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "the agency does not read who reported: {e:?}");
    let mut officer = ReportServiceClient::new(g.channel_as(leader, &report_officer(HOME)));
    let o = officer.open_reporter(open.clone()).await.unwrap().into_inner();
    assert_eq!(o.reporter.unwrap(), pb::Reporter { name: NAME.into(), contact: CONTACT.into() });
    assert_eq!(o.reporter_reads, 1);
    let listed = reports.list_reports(pb::ListReportsRequest::default()).await.unwrap().into_inner().reports;
    assert_eq!((listed[0].reporter_reads, listed[0].last_read_by.as_str()), (1, report_officer(HOME).uri().as_str()));
    assert!(listed[0].last_read_at_ms > 0);

    // Nothing at rest holds the reporter.
    let mut groups = vec![&mut mesh.federation];
    groups.extend(mesh.provinces.iter_mut());
    let mut searched = 0usize;
    for g in groups {
        g.stop_all().await;
        for r in &g.replicas {
            let mut all = Vec::new();
            files(&r.dir, &mut all);
            for f in all {
                let bytes = std::fs::read(&f).expect("read a replica file");
                searched += bytes.len();
                for secret in [NAME, CONTACT, "wangwu-7c1e", "Wang Wu-7c1e"] {
                    assert!(
                        !bytes.windows(secret.len()).any(|w| w == secret.as_bytes()),
                        "{} holds the reporter in clear",
                        f.display()
                    );
                }
            }
        }
    }
    assert!(searched > 100_000, "the replicas left data to search ({searched} bytes)");
}
