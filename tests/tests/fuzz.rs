//! Issue 9: bad input at the gRPC level. A few thousand generated and mutated requests against
//! a real 3-replica province group: every answer is OK or a status other than UNKNOWN and
//! INTERNAL, every replica keeps serving, and the replicas end with identical state.

use std::time::{Duration, Instant};

use medmesh_node::demo;
use medmesh_node::pb;
use medmesh_node::pb::agency_service_client::AgencyServiceClient;
use medmesh_node::pb::hospital_service_client::HospitalServiceClient;
use medmesh_state::sim::Rng;
use medmesh_tests::{data_dir, free_base_port, read_state, Group};
use tonic::transport::Channel;
use tonic::Code;

const PROVINCE: &str = "110000";
const REQUESTS: u64 = 3_000;
const BUDGET: Duration = Duration::from_secs(90);

/// Picks one of `xs` (the simulation's seeded generator makes the same requests for a seed).
fn pick<'a>(rng: &mut Rng, xs: &[&'a str]) -> &'a str {
    xs[rng.index(xs.len())]
}

/// Values a field may get instead of its valid one: the awkward cases a client brings.
const NASTY: &[&str] = &[
    "",
    " ",
    "-1",
    "0",
    "1e9",
    "NaN",
    "99999999999999999999999999999999",
    "100000000000.01",
    "0.001",
    "12.345",
    "9999-12-31",
    "2025-02-30",
    "0000-01-01",
    "a/b",
    "../../etc",
    "\u{0}",
    "熊猫",
    "ＡＢＣ",
    "99999",
    "100000",
    "100000.0001",
    "99999999999",
    "2025-03-10",
];

fn nasty(rng: &mut Rng, valid: &str) -> String {
    match rng.below(4) {
        0 => valid.to_string(),
        1 => pick(rng, NASTY).to_string(),
        2 => "x".repeat(rng.below(5_000) as usize),
        _ => format!("{valid}{}", pick(rng, NASTY)),
    }
}

/// One request, by a seeded choice of rpc and of fields to spoil. Returns the status code.
async fn one(
    rng: &mut Rng,
    h: &mut HospitalServiceClient<Channel>,
    a: &mut AgencyServiceClient<Channel>,
    n: u64,
) -> Code {
    let day = demo::today();
    let inst = demo::institution(PROVINCE, 1);
    let serial = format!("F{n}");
    let result: Result<(), tonic::Status> = match rng.below(8) {
        0 => {
            let mut r = demo::visit_request(PROVINCE, &serial, rng.below(20) as u32, 1, &day);
            r.serial = nasty(rng, &r.serial);
            r.certificate = nasty(rng, &r.certificate);
            r.doctor_code = nasty(rng, &r.doctor_code);
            r.admitted = nasty(rng, &r.admitted);
            r.diagnosis = nasty(rng, &r.diagnosis);
            r.certificate_kind = rng.below(6) as i32 - 1;
            r.kind = rng.below(5) as i32 - 1;
            h.register_visit(r).await.map(|_| ())
        }
        1 => {
            let mut lines = demo::fee_lines(rng.below(50), &day);
            for l in &mut lines {
                l.quantity = nasty(rng, &l.quantity);
                l.unit_price = nasty(rng, &l.unit_price);
                l.date = nasty(rng, &l.date);
                l.code = nasty(rng, &l.code);
            }
            let visit = format!("F{}", rng.below(n.max(1)));
            h.upload_fees(pb::UploadFeesRequest { institution_id: inst.clone(), visit_serial: visit, lines })
                .await
                .map(|_| ())
        }
        2 => {
            let visit = format!("F{}", rng.below(n.max(1)));
            h.settle(pb::SettleRequest {
                lines: Vec::new(),
                institution_id: nasty(rng, &inst),
                serial: nasty(rng, &serial),
                visit_serial: visit,
                use_individual_account: rng.below(2) == 0,
            })
            .await
            .map(|_| ())
        }
        3 => {
            let target = format!("F{}", rng.below(n.max(1)));
            h.reverse(pb::ReverseRequest {
                institution_id: inst.clone(),
                serial: nasty(rng, &serial),
                settlement_serial: target,
            })
            .await
            .map(|_| ())
        }
        4 => h
            .list_settlements(pb::ListSettlementsRequest {
                institution_id: nasty(rng, &inst),
                from: nasty(rng, &day),
                to: nasty(rng, &day),
                page_size: rng.next_u64() as u32,
                page_token: nasty(rng, "2025-03-10/S1"),
            })
            .await
            .map(|_| ()),
        5 => {
            let mut p = demo::person(PROVINCE, 1_000 + rng.below(100) as u32);
            p.id = nasty(rng, &p.id);
            p.birth_date = nasty(rng, &p.birth_date);
            p.account_balance = nasty(rng, "10");
            p.status = nasty(rng, &p.status);
            p.social_security_card = nasty(rng, &p.social_security_card);
            p.sex = rng.below(4) as i32 - 1;
            a.put_person(p).await.map(|_| ())
        }
        6 => a
            .contribute(pb::ContributeRequest {
                serial: nasty(rng, &serial),
                amount: nasty(rng, "1000"),
                source: nasty(rng, "payroll"),
                fund: rng.below(4) as i32 - 1,
            })
            .await
            .map(|_| ()),
        _ => h
            .lookup_identity(pb::LookupIdentityRequest {
                institution_id: nasty(rng, &inst),
                certificate_kind: rng.below(5) as i32 - 1,
                certificate: nasty(rng, &demo::ss_card(PROVINCE, 1)),
            })
            .await
            .map(|_| ()),
    };
    clear_code(result, &format!("request {n}"))
}

/// The answer's code, after checking it is OK or a clear status (never UNKNOWN or INTERNAL).
fn clear_code<T>(result: Result<T, tonic::Status>, what: &str) -> Code {
    match result {
        Ok(_) => Code::Ok,
        Err(s) => {
            assert!(!matches!(s.code(), Code::Unknown | Code::Internal), "{what} got {:?}: {}", s.code(), s.message());
            s.code()
        }
    }
}

/// Waits for the group to converge, stops it and checks that every replica holds the same
/// state.
async fn assert_replicas_equal(g: &mut Group) {
    g.wait_converged().await;
    g.stop_all().await;
    let mut states = Vec::new();
    for r in &g.replicas {
        states.push(read_state(&data_dir(r), medmesh_state::Role::Province).await);
    }
    assert!(states.windows(2).all(|w| w[0] == w[1]), "replicas hold identical state");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_bad_requests_get_clear_statuses_and_leave_replicas_equal() {
    let mut g = Group::start(PROVINCE, 3, free_base_port(), &[]);
    let leader = g.leader().await;
    demo::load(g.agency(leader), PROVINCE, 20).await.expect("demo data");
    let started = Instant::now();
    let workers: Vec<_> = (0..8u64)
        .map(|w| {
            let hospital = g.hospital(1 + w % 3);
            let agency = g.agency(1 + w % 3);
            tokio::spawn(async move {
                let mut rng = Rng::new(0x5eed + w);
                let mut h = hospital;
                let mut a = AgencyServiceClient::new(agency);
                let mut codes = std::collections::BTreeMap::<String, u64>::new();
                let mut n = w;
                while n < REQUESTS && started.elapsed() < BUDGET {
                    let code = one(&mut rng, &mut h, &mut a, n).await;
                    *codes.entry(format!("{code:?}")).or_default() += 1;
                    n += 8;
                }
                codes
            })
        })
        .collect();
    let mut codes = std::collections::BTreeMap::<String, u64>::new();
    for w in workers {
        for (c, k) in w.await.expect("worker") {
            *codes.entry(c).or_default() += k;
        }
    }
    let total: u64 = codes.values().sum();
    println!("{total} requests in {:?}: {codes:?}", started.elapsed());
    assert!(total >= 500, "too few requests ran in the time budget: {total}");
    assert!(codes.get("Ok").copied().unwrap_or(0) > 0, "some requests succeed: {codes:?}");
    assert!(codes.get("InvalidArgument").copied().unwrap_or(0) > 0, "{codes:?}");

    // Every replica still serves, and all hold the same state.
    for id in 1..=3 {
        assert!(g.status(id).await.is_some(), "replica {id} still answers");
    }
    assert_replicas_equal(&mut g).await;
}

/// Issue 9: every refusal names the request's field at fault, with the documented code. One
/// row per field a client gets wrong.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_refusal_names_the_request_field() {
    let g = Group::start(PROVINCE, 3, free_base_port(), &[]);
    let leader = g.leader().await;
    demo::load(g.agency(leader), PROVINCE, 5).await.expect("demo data");
    let mut h = g.hospital(leader);
    let mut a = AgencyServiceClient::new(g.agency(leader));
    let day = demo::today();
    let inst = demo::institution(PROVINCE, 1);
    h.register_visit(demo::visit_request(PROVINCE, "V1", 1, 1, &day)).await.expect("a visit");
    let visit = |f: &dyn Fn(&mut pb::RegisterVisitRequest)| {
        let mut r = demo::visit_request(PROVINCE, "V2", 1, 1, &day);
        f(&mut r);
        r
    };
    let line = |qty: &str, price: &str| pb::UploadFeesRequest {
        institution_id: inst.clone(),
        visit_serial: "V1".into(),
        lines: vec![pb::FeeLine {
            serial: "L1".into(),
            code: demo::fee_lines(0, &day)[0].code.clone(),
            quantity: qty.into(),
            unit_price: price.into(),
            date: day.clone(),
        }],
    };
    // Settle carrying its lines: bad lines are refused as UploadFees refuses them, and nothing
    // is uploaded or settled: the same serial settles the visit afterwards.
    let settle_with = |lines: Vec<pb::FeeLine>| pb::SettleRequest {
        lines,
        institution_id: inst.clone(),
        serial: "S-LINES".into(),
        visit_serial: "V1".into(),
        use_individual_account: false,
    };
    // One good line with `f` applied.
    let one_line = |f: &dyn Fn(&mut pb::FeeLine)| {
        let mut lines = line("1", "10").lines;
        f(&mut lines[0]);
        lines
    };
    let mut r = pb::report_service_client::ReportServiceClient::new(g.agency(leader));
    let mut d = pb::disclosure_service_client::DisclosureServiceClient::new(g.agency(leader));
    let report = |f: &dyn Fn(&mut pb::SubmitReportRequest)| {
        let mut x = pb::SubmitReportRequest {
            serial: "CH-1".into(),
            institution_id: inst.clone(),
            summary: "billed twice".into(),
            reporter: None,
            province: String::new(),
        };
        f(&mut x);
        x
    };
    let policy = |f: &dyn Fn(&mut pb::ReportPolicy)| {
        let mut p = pb::ReportPolicy {
            reward_share: "0.05".into(),
            min_reward: "200.00".into(),
            max_reward: "200000.00".into(),
            acknowledge_days: 15,
        };
        f(&mut p);
        pb::PutReportPolicyRequest { policy: Some(p) }
    };
    r.submit_report(report(&|_| {})).await.expect("a report");
    let cases: Vec<(&str, Result<(), tonic::Status>, Code, &str)> = vec![
        (
            "empty institution",
            h.register_visit(visit(&|r| r.institution_id.clear())).await.map(|_| ()),
            Code::InvalidArgument,
            "institution_id:",
        ),
        (
            "unknown institution",
            HospitalServiceClient::new(
                g.channel_as(leader, &medmesh_tests::id("medmesh://province/110000/institution/H-NONE")),
            )
            .register_visit(visit(&|r| r.institution_id = "H-NONE".into()))
            .await
            .map(|_| ()),
            Code::NotFound,
            "institution_id:",
        ),
        (
            "unknown doctor",
            h.register_visit(visit(&|r| r.doctor_code = "D-NONE".into())).await.map(|_| ()),
            Code::NotFound,
            "doctor_code:",
        ),
        (
            "bad admission day",
            h.register_visit(visit(&|r| r.admitted = "2025-13-01".into())).await.map(|_| ()),
            Code::InvalidArgument,
            "admitted:",
        ),
        (
            "unknown certificate",
            h.register_visit(visit(&|r| r.certificate = "NOBODY".into())).await.map(|_| ()),
            Code::NotFound,
            "certificate:",
        ),
        (
            "unknown visit",
            h.upload_fees(pb::UploadFeesRequest { visit_serial: "V-NONE".into(), ..line("1", "10") }).await.map(|_| ()),
            Code::NotFound,
            "visit_serial:",
        ),
        (
            "settle with a zero-quantity line",
            h.settle(settle_with(line("0", "10").lines)).await.map(|_| ()),
            Code::InvalidArgument,
            "lines[0].quantity:",
        ),
        (
            "settle with a line of an unknown item",
            h.settle(settle_with(one_line(&|l| l.code = "NOPE".into()))).await.map(|_| ()),
            Code::NotFound,
            "lines[0].code:",
        ),
        (
            "settle with a line dated before the visit",
            h.settle(settle_with(one_line(&|l| l.date = "2000-01-01".into()))).await.map(|_| ()),
            Code::InvalidArgument,
            "lines[0].date:",
        ),
        (
            "settle with too many lines",
            h.settle(settle_with(vec![line("1", "10").lines[0].clone(); 2_001])).await.map(|_| ()),
            Code::ResourceExhausted,
            "lines:",
        ),
        (
            "zero quantity",
            h.upload_fees(line("0", "10")).await.map(|_| ()),
            Code::InvalidArgument,
            "lines[0].quantity:",
        ),
        (
            "line above the limit",
            h.upload_fees(line("99999", "99999999999")).await.map(|_| ()),
            Code::InvalidArgument,
            "lines[0].unit_price:",
        ),
        (
            "settle an unknown visit",
            h.settle(pb::SettleRequest {
                lines: Vec::new(),
                institution_id: inst.clone(),
                serial: "S1".into(),
                visit_serial: "V-NONE".into(),
                use_individual_account: false,
            })
            .await
            .map(|_| ()),
            Code::NotFound,
            "visit_serial:",
        ),
        (
            "reverse an unknown settlement",
            h.reverse(pb::ReverseRequest {
                institution_id: inst.clone(),
                serial: "R1".into(),
                settlement_serial: "S-NONE".into(),
            })
            .await
            .map(|_| ()),
            Code::NotFound,
            "settlement_serial:",
        ),
        (
            "bad page token",
            h.list_settlements(pb::ListSettlementsRequest {
                institution_id: inst.clone(),
                from: day.clone(),
                to: day.clone(),
                page_token: "garbage".into(),
                ..Default::default()
            })
            .await
            .map(|_| ()),
            Code::InvalidArgument,
            "page_token:",
        ),
        (
            "period backwards",
            h.list_settlements(pb::ListSettlementsRequest {
                institution_id: inst.clone(),
                from: "2025-03-10".into(),
                to: "2025-03-01".into(),
                ..Default::default()
            })
            .await
            .map(|_| ()),
            Code::InvalidArgument,
            "to:",
        ),
        (
            "negative contribution",
            a.contribute(pb::ContributeRequest {
                serial: "C-9".into(),
                amount: "-1".into(),
                source: String::new(),
                fund: 0,
            })
            .await
            .map(|_| ()),
            Code::InvalidArgument,
            "amount:",
        ),
        (
            "a contribution to no fund",
            a.contribute(pb::ContributeRequest {
                serial: "C-10".into(),
                amount: "1".into(),
                source: String::new(),
                fund: 7,
            })
            .await
            .map(|_| ()),
            Code::InvalidArgument,
            "fund:",
        ),
        (
            "an assistance ratio above one",
            a.put_policy(pb::PutPolicyRequest { assistance_ratio: "1.5".into(), ..demo::policy() }).await.map(|_| ()),
            Code::InvalidArgument,
            "assistance_ratio:",
        ),
        (
            "a negative assistance cap",
            a.put_policy(pb::PutPolicyRequest { assistance_cap: "-1".into(), ..demo::policy() }).await.map(|_| ()),
            Code::InvalidArgument,
            "assistance_cap:",
        ),
        (
            "unknown institution read",
            a.get_institution(pb::GetInstitutionRequest { id: "H-NONE".into() }).await.map(|_| ()),
            Code::NotFound,
            "id:",
        ),
        (
            "bad personnel code read",
            a.get_personnel(pb::GetPersonnelRequest { code: "a/b".into() }).await.map(|_| ()),
            Code::InvalidArgument,
            "code:",
        ),
        (
            "unknown personnel read",
            a.get_personnel(pb::GetPersonnelRequest { code: "D-NONE".into() }).await.map(|_| ()),
            Code::NotFound,
            "code:",
        ),
        (
            "bad catalogue code read",
            a.get_catalogue_item(pb::GetCatalogueItemRequest { code: String::new() }).await.map(|_| ()),
            Code::InvalidArgument,
            "code:",
        ),
        (
            "unknown catalogue item read",
            a.get_catalogue_item(pb::GetCatalogueItemRequest { code: "X-NONE".into() }).await.map(|_| ()),
            Code::NotFound,
            "code:",
        ),
        (
            "person read without a certificate kind",
            a.get_person(pb::GetPersonRequest { certificate_kind: 0, certificate: "SS1".into() }).await.map(|_| ()),
            Code::InvalidArgument,
            "certificate_kind:",
        ),
        (
            "person read of an unknown certificate",
            a.get_person(pb::GetPersonRequest {
                certificate_kind: pb::CertificateKind::SocialSecurityCard as i32,
                certificate: "NOBODY".into(),
            })
            .await
            .map(|_| ()),
            Code::NotFound,
            "certificate:",
        ),
        (
            "person read of a malformed certificate",
            a.get_person(pb::GetPersonRequest {
                certificate_kind: pb::CertificateKind::SocialSecurityCard as i32,
                certificate: "a/b".into(),
            })
            .await
            .map(|_| ()),
            Code::InvalidArgument,
            "certificate:",
        ),
        (
            "birth day out of range",
            a.put_person(pb::PutPersonRequest { birth_date: "1800-01-01".into(), ..demo::person(PROVINCE, 99) })
                .await
                .map(|_| ()),
            Code::InvalidArgument,
            "birth_date:",
        ),
        (
            "no personnel code",
            a.get_qualification(pb::GetQualificationRequest { personnel_code: String::new() }).await.map(|_| ()),
            Code::InvalidArgument,
            "personnel_code:",
        ),
        (
            "report without a summary",
            r.submit_report(report(&|x| x.summary.clear())).await.map(|_| ()),
            Code::InvalidArgument,
            "summary:",
        ),
        (
            "report with a control character",
            r.submit_report(report(&|x| x.summary = "a\u{7}b".into())).await.map(|_| ()),
            Code::InvalidArgument,
            "summary:",
        ),
        (
            "report with a bad serial",
            r.submit_report(report(&|x| x.serial = "a b".into())).await.map(|_| ()),
            Code::InvalidArgument,
            "serial:",
        ),
        (
            "report with a long name",
            r.submit_report(report(&|x| {
                x.reporter = Some(pb::Reporter { name: "x".repeat(101), contact: String::new() })
            }))
            .await
            .map(|_| ()),
            Code::InvalidArgument,
            "reporter.name:",
        ),
        (
            "report about nobody",
            r.submit_report(report(&|x| {
                x.institution_id = "H-NONE".into();
                x.serial = "CH-2".into();
            }))
            .await
            .map(|_| ()),
            Code::NotFound,
            "institution_id:",
        ),
        (
            "report policy of no share",
            r.put_report_policy(policy(&|p| p.reward_share = "0".into())).await.map(|_| ()),
            Code::InvalidArgument,
            "policy.reward_share:",
        ),
        (
            "report policy share of a tenth of a per mille",
            r.put_report_policy(policy(&|p| p.reward_share = "0.0505".into())).await.map(|_| ()),
            Code::InvalidArgument,
            "policy.reward_share:",
        ),
        (
            "report policy below the measures' minimum",
            r.put_report_policy(policy(&|p| p.min_reward = "199.99".into())).await.map(|_| ()),
            Code::InvalidArgument,
            "policy.min_reward:",
        ),
        (
            "report policy of no days",
            r.put_report_policy(policy(&|p| p.acknowledge_days = 0)).await.map(|_| ()),
            Code::InvalidArgument,
            "policy.acknowledge_days:",
        ),
        (
            "rejection without a note",
            r.acknowledge_report(pb::AcknowledgeReportRequest {
                report_id: "R-00000001".into(),
                accept: false,
                note: String::new(),
            })
            .await
            .map(|_| ()),
            Code::InvalidArgument,
            "note:",
        ),
        (
            "unknown report",
            r.conclude_report(pb::ConcludeReportRequest { report_id: "R-99".into(), reply: "done".into() })
                .await
                .map(|_| ()),
            Code::NotFound,
            "report_id:",
        ),
        (
            "reward reference with a slash",
            r.pay_report_reward(pb::PayReportRewardRequest { report_id: "R-00000001".into(), reference: "a/b".into() })
                .await
                .map(|_| ()),
            Code::InvalidArgument,
            "reference:",
        ),
        (
            "malformed report page token",
            r.list_reports(pb::ListReportsRequest { page_token: "../x".into(), ..Default::default() })
                .await
                .map(|_| ()),
            Code::InvalidArgument,
            "page_token:",
        ),
        (
            "calendar holiday on a Saturday",
            a.put_work_calendar(pb::PutWorkCalendarRequest { holidays: vec!["2026-12-05".into()], workdays: vec![] })
                .await
                .map(|_| ()),
            Code::InvalidArgument,
            "holidays:",
        ),
        (
            "calendar make-up day on a Friday",
            a.put_work_calendar(pb::PutWorkCalendarRequest { holidays: vec![], workdays: vec!["2026-12-04".into()] })
                .await
                .map(|_| ()),
            Code::InvalidArgument,
            "workdays:",
        ),
        (
            "flight inspection with two triggers",
            a.start_flight_inspection(pb::StartFlightInspectionRequest {
                flight_id: "FL-1".into(),
                institution_id: demo::institution(PROVINCE, 1),
                media: "news".into(),
                alert_seq: 3,
                ..Default::default()
            })
            .await
            .map(|_| ()),
            Code::InvalidArgument,
            "trigger:",
        ),
        (
            "flight inspection of another province's institution",
            a.start_flight_inspection(pb::StartFlightInspectionRequest {
                flight_id: "FL-1".into(),
                institution_id: "H310000-01".into(),
                media: "news".into(),
                ..Default::default()
            })
            .await
            .map(|_| ()),
            Code::NotFound,
            "institution_id:",
        ),
        (
            "flight report on no inspection",
            a.file_flight_report(pb::FileFlightReportRequest {
                flight_id: "FL-NONE".into(),
                kind: pb::FlightReportKind::Progress as i32,
                text: "x".into(),
            })
            .await
            .map(|_| ()),
            Code::NotFound,
            "flight_id:",
        ),
        (
            "flight closed without a summary",
            a.close_flight_inspection(pb::CloseFlightInspectionRequest {
                flight_id: "FL-1".into(),
                summary: " ".into(),
                case_id: String::new(),
            })
            .await
            .map(|_| ()),
            Code::InvalidArgument,
            "summary:",
        ),
        (
            "credit rating of an unknown institution",
            a.get_credit_rating(pb::GetCreditRatingRequest { institution_id: "H-NONE".into(), ..Default::default() })
                .await
                .map(|_| ()),
            Code::NotFound,
            "institution_id:",
        ),
        (
            "credit rating of unknown personnel",
            a.get_credit_rating(pb::GetCreditRatingRequest { personnel_code: "D-NONE".into(), ..Default::default() })
                .await
                .map(|_| ()),
            Code::NotFound,
            "personnel_code:",
        ),
        (
            "credit rating of an institution and a person at once",
            a.get_credit_rating(pb::GetCreditRatingRequest {
                institution_id: "H-NONE".into(),
                personnel_code: "D-NONE".into(),
                ..Default::default()
            })
            .await
            .map(|_| ()),
            Code::InvalidArgument,
            "institution_id:",
        ),
        (
            "credit rating of a malformed personnel code",
            a.get_credit_rating(pb::GetCreditRatingRequest { personnel_code: "D/../1".into(), ..Default::default() })
                .await
                .map(|_| ()),
            Code::InvalidArgument,
            "personnel_code:",
        ),
        (
            "flight inspection id with a space",
            a.get_flight_inspection(pb::GetFlightInspectionRequest { flight_id: "a b".into() }).await.map(|_| ()),
            Code::InvalidArgument,
            "flight_id:",
        ),
        (
            "malformed flight page token",
            a.list_flight_inspections(pb::ListFlightInspectionsRequest {
                page_token: "../x".into(),
                ..Default::default()
            })
            .await
            .map(|_| ()),
            Code::InvalidArgument,
            "page_token:",
        ),
        (
            "flight report of no kind",
            a.file_flight_report(pb::FileFlightReportRequest { flight_id: "FL-1".into(), kind: 0, text: "x".into() })
                .await
                .map(|_| ()),
            Code::InvalidArgument,
            "kind:",
        ),
        (
            "credit lift without a reason",
            a.lift_credit_entry(pb::LiftCreditEntryRequest { case_id: "C-1".into(), reason: String::new() })
                .await
                .map(|_| ()),
            Code::InvalidArgument,
            "reason:",
        ),
        (
            "credit lift of no case",
            a.lift_credit_entry(pb::LiftCreditEntryRequest { case_id: "C-NONE".into(), reason: "appeal".into() })
                .await
                .map(|_| ()),
            Code::NotFound,
            "case_id:",
        ),
        (
            "credit rating without an institution",
            a.get_credit_rating(pb::GetCreditRatingRequest::default()).await.map(|_| ()),
            Code::InvalidArgument,
            "institution_id:",
        ),
        (
            "aggregate of a period that is no day or month",
            d.get_aggregate(pb::GetAggregateRequest { period: "2026-13".into() }).await.map(|_| ()),
            Code::InvalidArgument,
            "period:",
        ),
        (
            "aggregate of a day with no month day",
            d.get_aggregate(pb::GetAggregateRequest { period: "2026-02-30".into() }).await.map(|_| ()),
            Code::InvalidArgument,
            "period:",
        ),
        (
            "publication of a period not begun",
            d.publish_aggregate(pb::PublishAggregateRequest { period: "2199-12".into() }).await.map(|_| ()),
            Code::FailedPrecondition,
            "period:",
        ),
        (
            "publication of an empty period",
            d.publish_aggregate(pb::PublishAggregateRequest { period: String::new() }).await.map(|_| ()),
            Code::InvalidArgument,
            "period:",
        ),
    ];
    let mut wrong = Vec::new();
    for (what, got, code, field) in cases {
        match got {
            Err(s) if s.code() == code && s.message().starts_with(field) => {}
            Err(s) => {
                wrong.push(format!("{what}: got {:?} {:?}, want {code:?} starting {field:?}", s.code(), s.message()))
            }
            Ok(()) => wrong.push(format!("{what}: accepted, want {code:?} starting {field:?}")),
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    let settled =
        h.settle(settle_with(line("2", "10").lines)).await.expect("the refused calls spent nothing").into_inner();
    assert_eq!(settled.split.expect("a split").total, "20.00");
}

/// Mutated protobuf bytes of valid requests, sent raw to each method: whatever a broken or
/// hostile client sends gets OK or a clear status, never UNKNOWN or INTERNAL, and the replicas
/// end identical.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mutated_protobuf_bytes_get_clear_statuses() {
    use prost::Message;
    let mut g = Group::start(PROVINCE, 3, free_base_port(), &[]);
    let leader = g.leader().await;
    demo::load(g.agency(leader), PROVINCE, 10).await.expect("demo data");
    let day = demo::today();
    let inst = demo::institution(PROVINCE, 1);
    let seeds: Vec<(&'static str, Vec<u8>)> = vec![
        ("/medmesh.v1.HospitalService/RegisterVisit", demo::visit_request(PROVINCE, "M1", 1, 1, &day).encode_to_vec()),
        (
            "/medmesh.v1.HospitalService/UploadFees",
            pb::UploadFeesRequest {
                institution_id: inst.clone(),
                visit_serial: "M1".into(),
                lines: demo::fee_lines(3, &day),
            }
            .encode_to_vec(),
        ),
        (
            "/medmesh.v1.HospitalService/Settle",
            pb::SettleRequest {
                lines: Vec::new(),
                institution_id: inst.clone(),
                serial: "MS1".into(),
                visit_serial: "M1".into(),
                use_individual_account: true,
            }
            .encode_to_vec(),
        ),
        ("/medmesh.v1.AgencyService/PutPerson", demo::person(PROVINCE, 500).encode_to_vec()),
        (
            "/medmesh.v1.AgencyService/Contribute",
            pb::ContributeRequest { serial: "MC1".into(), amount: "10".into(), source: "x".into(), fund: 0 }
                .encode_to_vec(),
        ),
        (
            "/medmesh.v1.HospitalService/ListSettlements",
            pb::ListSettlementsRequest {
                institution_id: inst.clone(),
                from: day.clone(),
                to: day.clone(),
                ..Default::default()
            }
            .encode_to_vec(),
        ),
    ];
    let mut rng = Rng::new(0xb17e5);
    let mut codes = std::collections::BTreeMap::<String, u64>::new();
    let started = Instant::now();
    for n in 0..1_200u64 {
        if started.elapsed() > BUDGET {
            break;
        }
        let (path, seed) = &seeds[rng.below(seeds.len() as u64) as usize];
        let mut bytes = seed.clone();
        for _ in 0..1 + rng.below(3) {
            if bytes.is_empty() {
                break;
            }
            let i = rng.below(bytes.len() as u64) as usize;
            match rng.below(6) {
                0..=1 => bytes[i] = rng.next_u64() as u8,
                2..=3 => bytes[i] ^= 1 << rng.below(8),
                4 => bytes.insert(i, rng.next_u64() as u8),
                _ => bytes.truncate(i),
            }
        }
        let code = clear_code(
            medmesh_tests::raw::call(g.channel_as(1 + n % 3, &medmesh_tests::caller_for(path, PROVINCE)), path, bytes)
                .await,
            path,
        );
        *codes.entry(format!("{code:?}")).or_default() += 1;
    }
    println!("mutated protobuf: {codes:?} in {:?}", started.elapsed());
    assert!(codes.len() >= 2, "both accepted and refused requests occur: {codes:?}");
    assert_replicas_equal(&mut g).await;
}
