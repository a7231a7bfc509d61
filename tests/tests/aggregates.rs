//! Issue 14.1: the national view answers from the provinces' published aggregates only, and
//! matches each province's own figures to the fen — through the public API of a real mesh (the
//! federation and two provinces, three replica processes each, RocksDB, TLS).
//!
//! A hospital of 110000 settles a local claim and treats a patient insured in 310000; a
//! hospital of 310000 settles a local claim. Each agency publishes the day and the month; the
//! nation reads them from the federation. Every figure is checked against the settlement
//! answers' own splits, and the national answer against each province's own.

use std::time::Duration;

use medmesh_node::demo;
use medmesh_node::pb;
use medmesh_node::pb::disclosure_service_client::DisclosureServiceClient;
use medmesh_node::pb::federation_service_client::FederationServiceClient;
use medmesh_tests::{agency, fails, institution, national, settle_demo_claim, wait_until, yuan, Mesh};
use medmesh_types::Money;
use tonic::transport::Channel;
use tonic::Code;

const TREATMENT: &str = "110000";
const INSURED: &str = "310000";

/// What the fund and the account paid of a split (all but the patient's cash).
fn paid(s: &pb::Split) -> Money {
    yuan(&s.pooling_fund) + yuan(&s.critical_illness) + yuan(&s.medical_assistance) + yuan(&s.individual_account)
}

async fn publish(d: &mut DisclosureServiceClient<Channel>, period: &str) -> pb::Aggregate {
    d.publish_aggregate(pb::PublishAggregateRequest { period: period.into() })
        .await
        .expect("publication")
        .into_inner()
        .aggregate
        .expect("an aggregate")
}

async fn own(d: &mut DisclosureServiceClient<Channel>, period: &str) -> pb::Aggregate {
    d.get_aggregate(pb::GetAggregateRequest { period: period.into() })
        .await
        .expect("the province's aggregate")
        .into_inner()
        .aggregate
        .expect("an aggregate")
}

/// The nation's aggregates of `period` once the federation has `want` (publication is
/// asynchronous: the province's leader sends its outbox).
async fn national_view(
    fed: &FederationServiceClient<Channel>,
    period: &str,
    want: &[&pb::Aggregate],
) -> Vec<pb::Aggregate> {
    let want: Vec<pb::Aggregate> = want.iter().map(|a| (*a).clone()).collect();
    wait_until(Duration::from_secs(60), "the federation to have the publications", || {
        let (mut fed, want, period) = (fed.clone(), want.clone(), period.to_string());
        async move {
            let got = fed
                .get_national_aggregates(pb::GetNationalAggregatesRequest { period, province: String::new() })
                .await
                .ok()?
                .into_inner()
                .aggregates;
            (got == want).then_some(got)
        }
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_national_view_is_the_provinces_own_figures_to_the_fen() {
    let mesh = Mesh::start(&[TREATMENT, INSURED], 5).await;
    let (bj, sh) = (mesh.province(TREATMENT), mesh.province(INSURED));
    let (bj_leader, sh_leader) = (bj.leader().await, sh.leader().await);
    let day = demo::today();
    let month = day[..7].to_string();

    // 110000: a local claim, and a visitor insured in 310000.
    let mut h = bj.hospital(bj_leader);
    let (local_bj, local_bj_paid) = settle_demo_claim(&mut h, TREATMENT, &day).await;
    let visit = demo::nonlocal_visit_request(TREATMENT, INSURED, "NV1", 2, 1, &day);
    h.register_visit(visit).await.expect("non-local visit");
    h.upload_fees(pb::UploadFeesRequest {
        institution_id: demo::institution(TREATMENT, 1),
        visit_serial: "NV1".into(),
        lines: demo::fee_lines(2, &day),
    })
    .await
    .expect("fees");
    let nonlocal = h
        .settle(pb::SettleRequest {
            lines: Vec::new(),
            institution_id: demo::institution(TREATMENT, 1),
            serial: "NS1".into(),
            visit_serial: "NV1".into(),
            use_individual_account: false,
        })
        .await
        .expect("non-local settlement")
        .into_inner()
        .split
        .expect("a split");
    let nonlocal_paid = paid(&nonlocal);
    // 310000: a local claim.
    let mut h2 = sh.hospital(sh_leader);
    let (local_sh, local_sh_paid) = settle_demo_claim(&mut h2, INSURED, &day).await;

    // Each agency publishes the day and the month so far.
    let mut d_bj = DisclosureServiceClient::new(bj.agency(bj_leader));
    let mut d_sh = DisclosureServiceClient::new(sh.agency(sh_leader));
    let bj_day = publish(&mut d_bj, &day).await;
    let sh_day = publish(&mut d_sh, &day).await;
    let bj_month = publish(&mut d_bj, &month).await;
    let sh_month = publish(&mut d_sh, &month).await;
    assert_eq!((bj_day.version, bj_day.r#final, bj_day.period.as_str()), (1, false, day.as_str()));

    // The figures, from the settlement answers.
    let fund = bj_day.fund.clone().unwrap();
    assert_eq!((fund.settlements, fund.nonlocal_in_settlements), (1, 1));
    assert_eq!(yuan(&fund.pooling_paid), yuan(&local_bj.pooling_fund));
    assert_eq!(yuan(&fund.nonlocal_in_amount), nonlocal_paid);
    assert_eq!(yuan(&bj_day.cash_paid), yuan(&local_bj.cash) + yuan(&nonlocal.cash));
    let levels: Money = bj_day.by_level.iter().map(|l| yuan(&l.amount)).fold(Money::ZERO, |a, b| a + b);
    assert_eq!(levels, local_bj_paid + nonlocal_paid, "every settlement here, by level");
    assert_eq!(bj_day.by_level.iter().map(|l| l.settlements).sum::<i64>(), 2);
    let flow = &bj_day.nonlocal_in_by_province;
    assert_eq!(flow.len(), 1);
    assert_eq!((flow[0].insured_province.as_str(), flow[0].settlements), (INSURED, 1));
    assert_eq!(yuan(&flow[0].amount), nonlocal_paid);
    let sh_fund = sh_day.fund.clone().unwrap();
    assert_eq!((sh_fund.settlements, sh_fund.nonlocal_out_settlements), (1, 1));
    assert_eq!(yuan(&sh_fund.nonlocal_out_amount), nonlocal_paid);
    assert_eq!(yuan(&sh_fund.pooling_paid), yuan(&local_sh.pooling_fund));
    assert_eq!(sh_day.by_level.iter().map(|l| yuan(&l.amount)).fold(Money::ZERO, |a, b| a + b), local_sh_paid);

    // The nation reads exactly what each province shows as its own.
    let fed_ch = mesh.federation.channel_as(mesh.federation.leader().await, &national());
    let fed = FederationServiceClient::new(fed_ch);
    let days = national_view(&fed, &day, &[&bj_day, &sh_day]).await;
    assert_eq!(days, vec![own(&mut d_bj, &day).await, own(&mut d_sh, &day).await]);
    let months = national_view(&fed, &month, &[&bj_month, &sh_month]).await;
    assert_eq!(months[0], own(&mut d_bj, &month).await);
    // The month's fund figures are the province's own fund report of the month.
    let report = d_bj.get_fund_report(pb::GetFundReportRequest { month: month.clone() }).await.unwrap().into_inner();
    assert_eq!(months[0].fund.as_ref(), Some(&report));

    // The flow matrix: 310000's insured treated in 110000.
    let flows = fed
        .clone()
        .get_non_local_flows(pb::GetNonLocalFlowsRequest { period: day.clone() })
        .await
        .unwrap()
        .into_inner()
        .flows;
    assert_eq!(flows.len(), 1);
    assert_eq!((flows[0].insured_province.as_str(), flows[0].treatment_province.as_str()), (INSURED, TREATMENT));
    assert_eq!((flows[0].settlements, yuan(&flows[0].amount)), (1, nonlocal_paid));

    // Publishing unchanged figures again is the same publication; nothing new at the nation.
    assert_eq!(publish(&mut d_bj, &day).await, bj_day);

    // A province's agency sees its own province at the federation, and no other.
    let fed_leader = mesh.federation.leader().await;
    let fed_as = |who| FederationServiceClient::new(mesh.federation.channel_as(fed_leader, &who));
    let one = |p: &str| pb::GetNationalAggregatesRequest { period: day.clone(), province: p.into() };
    let mine = fed_as(agency(INSURED)).get_national_aggregates(one(INSURED)).await.unwrap().into_inner();
    assert_eq!(mine.aggregates, vec![sh_day.clone()]);
    let e = fed_as(agency(INSURED)).get_national_aggregates(one(TREATMENT)).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    let e = fed_as(agency(INSURED)).get_national_aggregates(one("")).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    let e = fed_as(agency(INSURED))
        .get_non_local_flows(pb::GetNonLocalFlowsRequest { period: day.clone() })
        .await
        .unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    // A hospital publishes nothing.
    let mut as_hospital = DisclosureServiceClient::new(bj.channel_as(bj_leader, &institution(TREATMENT, 1)));
    let e = as_hospital.publish_aggregate(pb::PublishAggregateRequest { period: day.clone() }).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");

    // Bad periods: not a period, a period no province published, a province that did not.
    let mut fed = fed.clone();
    let q = |period: &str, province: &str| pb::GetNationalAggregatesRequest {
        period: period.into(),
        province: province.into(),
    };
    fails(fed.get_national_aggregates(q("2026-13", "")).await, Code::InvalidArgument, "period");
    fails(fed.get_national_aggregates(q("yesterday", "")).await, Code::InvalidArgument, "period");
    fails(fed.get_national_aggregates(q("2001-01", "")).await, Code::NotFound, "period");
    fails(fed.get_national_aggregates(q(&day, "440000")).await, Code::NotFound, "province");
    fails(fed.get_national_aggregates(q(&day, "44")).await, Code::InvalidArgument, "province");
    fails(
        fed.get_non_local_flows(pb::GetNonLocalFlowsRequest { period: "2001-01-01".into() }).await,
        Code::NotFound,
        "period",
    );
    fails(
        fed.get_non_local_flows(pb::GetNonLocalFlowsRequest { period: "2026-12-32".into() }).await,
        Code::InvalidArgument,
        "period",
    );
}
