//! Issue 13.2: a report (whistleblowing) through the public API of a real province (3 replica
//! processes over mTLS).
//!
//! Someone with no certificate at all reports an institution, named; the agency accepts the
//! report, a claim of that institution is recovered by a case the report opened, and the
//! reporter is rewarded: the reward is checked to the fen against the settlement's own split,
//! and the pool falls by exactly it, once. The reporter follows it all by the receipt code.
//! Only the report officer reads who reported, and the read is recorded. Then every replica
//! stops, and no byte any of them left on disk holds the reporter's name or contact.
//!
//! Then issue 13.2's routing: a report received in 310000 about an institution of 110000 is
//! handled in 110000 (accepted, a case, a recovery, the reward from 110000's pool, to the fen)
//! and followed in 310000 by its receipt code; no byte of 110000 or of the federation holds the
//! reporter, clear or sealed.
//!
//! The replicas store without compression (`MEDMESH_COMPRESSION=none`) so that the byte scans
//! see every record as written.

use medmesh_node::demo;
use medmesh_node::network::channel;
use medmesh_node::pb;
use medmesh_node::pb::agency_service_client::AgencyServiceClient;
use medmesh_node::pb::disclosure_service_client::DisclosureServiceClient;
use medmesh_node::pb::hospital_service_client::HospitalServiceClient;
use medmesh_node::pb::report_service_client::ReportServiceClient;
use medmesh_tests::{
    agency, data_dir, fails, institution, read_state, report_officer, settle_demo_claim, wait_until, yuan, Mesh,
};
use medmesh_types::Money;
use std::time::Duration;
use tonic::transport::Channel;
use tonic::Code;

const HOME: &str = "110000";
const NAME: &str = "Reporter Wang Wu-7c1e";
const CONTACT: &str = "wangwu-7c1e@example.org +86 139 1234 5678";

fn uncompressed() -> Vec<(&'static str, String)> {
    vec![("MEDMESH_COMPRESSION", "none".to_string())]
}

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
    let mut mesh = Mesh::start_with_env(&[HOME], 4, &uncompressed()).await;
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
        province: String::new(),
    };
    let got = public.submit_report(submit.clone()).await.unwrap().into_inner();
    assert_eq!(got.report_id, "R-00000001");
    assert!(got.receipt_code.starts_with("RC-") && got.receipt_code.len() == 27, "{got:?}");
    assert_eq!(public.submit_report(submit.clone()).await.unwrap().into_inner(), got, "a retry is the same report");
    let changed = pb::SubmitReportRequest { summary: "something else".into(), ..submit.clone() };
    fails(public.submit_report(changed).await, Code::AlreadyExists, "serial");
    let bad = pb::SubmitReportRequest { institution_id: "H-NOPE".into(), serial: "CH-x".into(), ..submit.clone() };
    fails(public.submit_report(bad.clone()).await, Code::NotFound, "institution_id");
    let bad = pb::SubmitReportRequest { province: HOME.into(), ..bad };
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

/// The bytes of every file under the replicas' directories of `groups`, with their paths.
fn every_file(dirs: &[std::path::PathBuf]) -> Vec<(std::path::PathBuf, Vec<u8>)> {
    let mut all = Vec::new();
    for d in dirs {
        files(d, &mut all);
    }
    all.into_iter().map(|f| (f.clone(), std::fs::read(&f).expect("read a replica file"))).collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_report_about_another_province_is_handled_there_and_followed_here() {
    const RECEIVING: &str = "310000";
    const NAME2: &str = "Reporter Zhao Liu-51ad";
    const CONTACT2: &str = "zhaoliu-51ad@example.org +86 137 8765 4321";
    let mut mesh = Mesh::start_with_env(&[RECEIVING, HOME], 4, &uncompressed()).await;
    let (r, h) = (mesh.province(RECEIVING), mesh.province(HOME));
    let (rl, hl) = (r.leader().await, h.leader().await);
    let inst = demo::institution(HOME, 1);
    let day = demo::today();

    // Anyone reports to 310000 an institution of 110000.
    let anonymous = channel(&r.replica(rl).addr, &medmesh_tests::pki().anonymous().unwrap()).unwrap();
    let mut public = ReportServiceClient::new(anonymous);
    let submit = pb::SubmitReportRequest {
        serial: "CH-51ad".into(),
        institution_id: inst.clone(),
        summary: "a pharmacy counter of the hospital sells insured drugs for cash".into(),
        reporter: Some(pb::Reporter { name: NAME2.into(), contact: CONTACT2.into() }),
        province: HOME.into(),
    };
    for (province, institution_id) in
        [("11000", inst.clone()), ("000000", inst.clone()), (HOME, demo::institution(RECEIVING, 1))]
    {
        let bad = pb::SubmitReportRequest { province: province.into(), institution_id, ..submit.clone() };
        fails(public.submit_report(bad).await, Code::InvalidArgument, "province");
    }
    let got = public.submit_report(submit.clone()).await.unwrap().into_inner();
    assert_eq!(got.handled_by, HOME);
    assert_eq!(public.submit_report(submit.clone()).await.unwrap().into_inner(), got, "a retry is the same report");
    let status = || {
        let mut public = public.clone();
        let receipt_code = got.receipt_code.clone();
        async move { public.get_report_status(pb::GetReportStatusRequest { receipt_code }).await.unwrap().into_inner() }
    };
    assert_eq!((status().await.state, status().await.handled_by), (pb::ReportState::Received as i32, HOME.into()));

    // 310000 keeps it, and its reporter, but does not handle it.
    let mut receiving = ReportServiceClient::new(r.channel_as(rl, &agency(RECEIVING)));
    let ack = |id: &str| pb::AcknowledgeReportRequest { report_id: id.into(), accept: true, note: "we inspect".into() };
    fails(receiving.acknowledge_report(ack(&got.report_id)).await, Code::FailedPrecondition, "report_id");
    let listed = receiving.list_reports(pb::ListReportsRequest::default()).await.unwrap().into_inner().reports;
    assert_eq!((listed.len(), listed[0].handled_by.as_str()), (1, HOME));

    // 110000 receives it from the federation, without the reporter, and handles it.
    let mut handling = ReportServiceClient::new(h.channel_as(hl, &agency(HOME)));
    let theirs = wait_until(Duration::from_secs(30), "the referral to reach 110000", || {
        let mut c = handling.clone();
        async move {
            let all = c.list_reports(pb::ListReportsRequest::default()).await.ok()?.into_inner().reports;
            all.into_iter().find(|x| x.referred_by == RECEIVING)
        }
    })
    .await;
    assert_eq!((theirs.referred_report_id.as_str(), theirs.institution_id.as_str()), (got.report_id.as_str(), &*inst));
    assert_eq!((theirs.summary.as_str(), theirs.anonymous), (submit.summary.as_str(), false));
    let open = pb::OpenReporterRequest { report_id: theirs.report_id.clone() };
    let mut officer = ReportServiceClient::new(h.channel_as(hl, &report_officer(HOME)));
    fails(officer.open_reporter(open).await, Code::FailedPrecondition, "report_id");
    handling.acknowledge_report(ack(&theirs.report_id)).await.unwrap();

    let mut hosp = HospitalServiceClient::new(h.channel_as(hl, &institution(HOME, 1)));
    let (_, paid) = settle_demo_claim(&mut hosp, HOME, &day).await;
    let mut a = AgencyServiceClient::new(h.channel_as(hl, &agency(HOME)));
    a.open_case(pb::OpenCaseRequest {
        case_id: "BJ-R-9".into(),
        report_id: theirs.report_id.clone(),
        institution_id: inst.clone(),
        settlement_serials: vec!["S1".into()],
        ..Default::default()
    })
    .await
    .unwrap();
    a.investigate_case(pb::InvestigateCaseRequest { case_id: "BJ-R-9".into(), finding: "cash sales".into() })
        .await
        .unwrap();
    a.decide_case(pb::DecideCaseRequest {
        case_id: "BJ-R-9".into(),
        violation_type: pb::ViolationType::Fraud as i32,
        recover: paid.to_string(),
        fine_multiple: "2".into(),
        agreement: pb::AgreementAction::Keep as i32,
        reason: "insured drugs sold for cash".into(),
        ..Default::default()
    })
    .await
    .unwrap();
    a.execute_case(pb::ExecuteCaseRequest { case_id: "BJ-R-9".into() }).await.unwrap();
    let funds = |c: Channel| async move {
        let f = AgencyServiceClient::new(c).get_fund(pb::GetFundRequest {}).await.unwrap().into_inner();
        (yuan(&f.balance), yuan(&f.rewards_paid))
    };
    let (here_before, there_before) =
        (funds(h.channel_as(hl, &agency(HOME))).await, funds(r.channel_as(rl, &agency(RECEIVING))).await);
    let pay = pb::PayReportRewardRequest { report_id: theirs.report_id.clone(), reference: "BANK-9".into() };
    fails(
        receiving
            .pay_report_reward(pb::PayReportRewardRequest { report_id: got.report_id.clone(), ..pay.clone() })
            .await,
        Code::FailedPrecondition,
        "report_id",
    );
    let reward = handling.pay_report_reward(pay).await.unwrap().into_inner();
    // Independently: 5 % of the recovery, half up to the fen, within 200 and 200,000 yuan.
    let five = Money::from_fen((paid.to_fen() * 50 + 500) / 1000);
    let want = five.max(yuan("200.00")).min(yuan("200000.00"));
    assert_eq!((yuan(&reward.amount), yuan(&reward.recovered)), (want, paid));
    assert_eq!(
        funds(h.channel_as(hl, &agency(HOME))).await,
        (here_before.0 - want, here_before.1 + want),
        "110000's pool pays the reward"
    );

    // The reporter follows it all in 310000, whose pool pays nothing.
    let s = wait_until(Duration::from_secs(30), "the reward to reach 310000", || async {
        let s = status().await;
        (!s.reward.is_empty()).then_some(s)
    })
    .await;
    assert_eq!(
        (s.state, s.reply.as_str(), yuan(&s.reward), s.reward_reference.as_str(), s.handled_by.as_str()),
        (pb::ReportState::Accepted as i32, "we inspect", want, "BANK-9", HOME)
    );
    assert_eq!(funds(r.channel_as(rl, &agency(RECEIVING))).await, there_before, "310000's pool pays nothing");
    let mut officer = ReportServiceClient::new(r.channel_as(rl, &report_officer(RECEIVING)));
    let o = officer.open_reporter(pb::OpenReporterRequest { report_id: got.report_id.clone() }).await.unwrap();
    assert_eq!(o.into_inner().reporter.unwrap(), pb::Reporter { name: NAME2.into(), contact: CONTACT2.into() });

    // At rest: the reporter is sealed in 310000 and nowhere in 110000 or the federation.
    mesh.federation.stop_all().await;
    for g in mesh.provinces.iter_mut() {
        g.stop_all().await;
    }
    let receiving = &mesh.provinces[0];
    let kv = read_state(&data_dir(&receiving.replicas[0]), medmesh_state::Role::Province).await;
    let record: medmesh_state::reports::ReportRecord =
        medmesh_state::load(&kv, &medmesh_state::keys::report(&got.report_id)).expect("the report in 310000");
    let sealed = record.reporter.expect("a sealed reporter").as_bytes().to_vec();
    let mut dirs: Vec<_> = mesh.provinces[1].replicas.iter().map(|r| r.dir.clone()).collect();
    dirs.extend(mesh.federation.replicas.iter().map(|r| r.dir.clone()));
    let mut searched = 0usize;
    for (path, bytes) in every_file(&dirs) {
        searched += bytes.len();
        for secret in
            [NAME2.as_bytes(), CONTACT2.as_bytes(), b"Zhao Liu-51ad", &sealed[..24], &sealed[sealed.len() - 24..]]
        {
            assert!(!bytes.windows(secret.len()).any(|w| w == secret), "{} holds the reporter", path.display());
        }
    }
    assert!(searched > 100_000, "the replicas left data to search ({searched} bytes)");
    let summary = submit.summary.as_bytes();
    let handled = every_file(&mesh.provinces[1].replicas.iter().map(|r| r.dir.clone()).collect::<Vec<_>>());
    assert!(
        handled.iter().any(|(_, b)| b.windows(summary.len()).any(|w| w == summary)),
        "the scan reads records as written: 110000 holds the report's summary"
    );
}
