//! Closing a month through the public API while faults go on: each call retried across
//! replicas with its serial or reference until it answers definitively, so a test can then
//! check it was applied exactly once. Shared by the bank test and the container suite.

use std::time::{Duration, Instant};

use medmesh_node::demo;
use medmesh_node::identity::Identity;
use medmesh_node::pb;
use medmesh_node::pb::agency_service_client::AgencyServiceClient;
use medmesh_node::pb::federation_service_client::FederationServiceClient;
use medmesh_node::pb::hospital_service_client::HospitalServiceClient;
use medmesh_types::{Date, LogTime, Money};
use tonic::transport::Channel;
use tonic::Code;

use crate::checker::Acked;
use crate::workload::retryable;
use crate::{agency, channel_as, institution, national, yuan};

const DAY_MS: i64 = 86_400_000;

/// A clock offset (`MEDMESH_CLOCK_OFFSET_MS`) that puts the mesh two days before the end of
/// last month — time for a workload of a few minutes — with that day and its month
/// ("YYYY-MM").
pub fn past_month_offset() -> (i64, Date, String) {
    let real = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).expect("clock").as_millis() as i64;
    let offset = -(i64::from(LogTime(real).date().ymd().2) + 2) * DAY_MS;
    let day = LogTime(real + offset).date();
    let (y, m, _) = day.ymd();
    (offset, day, format!("{y:04}-{m:02}"))
}

/// Calls `f` with a channel to each of `addrs` in turn, as `who`, until the call answers
/// definitively (or 120 s pass): a call whose outcome is unknown is made again as it was, with
/// the same serial or reference.
pub async fn retry_at<T, F, Fut>(addrs: &[String], who: &Identity, mut f: F) -> Result<T, tonic::Status>
where
    F: FnMut(Channel) -> Fut,
    Fut: std::future::Future<Output = Result<T, tonic::Status>>,
{
    let deadline = Instant::now() + Duration::from_secs(120);
    let mut attempt = 0usize;
    loop {
        let ch = channel_as(&addrs[attempt % addrs.len()], who);
        match tokio::time::timeout(Duration::from_secs(5), f(ch)).await {
            Ok(Ok(v)) => return Ok(v),
            Ok(Err(s)) if !retryable(&s) || Instant::now() > deadline => return Err(s),
            Err(_) if Instant::now() > deadline => return Err(tonic::Status::deadline_exceeded("gave up")),
            _ => tokio::time::sleep(Duration::from_millis(200)).await,
        }
        attempt += 1;
    }
}

/// Repeats `call` while it answers FAILED_PRECONDITION with a message containing `early` (the
/// group's time, catching up after the restart, has not passed the month's end yet).
pub async fn once_over<T, F, Fut>(what: &str, early: &str, mut call: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, tonic::Status>>,
{
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        match call().await {
            Ok(v) => return v,
            Err(s) if s.code() == Code::FailedPrecondition && s.message().contains(early) => {
                assert!(Instant::now() < deadline, "{what}: the month is still not over after 180 s: {s:?}");
                tokio::time::sleep(Duration::from_millis(250)).await;
            }
            Err(s) => panic!("{what}: {s:?}"),
        }
    }
}

/// What a province's month end did, as its callers were told.
#[derive(Debug, Default)]
pub struct MonthEnd {
    /// Deducted in review.
    pub deducted: Money,
    /// Paid against the declaration.
    pub paid: Money,
    /// Prepaid to the hospital.
    pub prepaid: Money,
}

/// A line a review may deduct from: the first of `acked` that is a local settlement in force
/// with a fund share, and a yuan of that share (all of it if less).
pub fn deductible_line<'a>(acked: impl IntoIterator<Item = &'a Acked>) -> Option<(String, Money)> {
    acked.into_iter().filter(|a| a.settlement.insured_province.is_empty() && !a.reversed).find_map(|a| {
        let split = a.settlement.split.as_ref()?;
        let fund = yuan(&split.pooling_fund) + yuan(&split.critical_illness);
        (fund > Money::ZERO).then(|| (a.settlement.serial.clone(), fund.min(yuan("1.00"))))
    })
}

/// One province's month end: its hospital declares `month`; the agency reviews it, deducting
/// `deduct` (a local settlement's serial and an amount), and pays what it approved;
/// the hospital is quoted a prepayment and the agency grants it. Each call is retried across
/// the province's replicas with its serial or reference while leaders die.
pub async fn month_end(addrs: Vec<String>, province: &str, month: &str, deduct: (String, Money)) -> MonthEnd {
    let inst = demo::institution(province, 1);
    let hospital = institution(province, 1);
    let agency = agency(province);
    let declared = once_over(&format!("{province}: declaring {month}"), "is not over", || {
        let req = pb::DeclareMonthRequest { institution_id: inst.clone(), serial: "BD-1".into(), period: month.into() };
        retry_at(&addrs, &hospital, move |ch| {
            let req = req.clone();
            async move { HospitalServiceClient::new(ch).declare_month(req).await }
        })
    })
    .await
    .into_inner()
    .declaration
    .expect("declaration");
    assert_eq!(declared.status, pb::DeclarationStatus::Declared as i32, "{province}: {declared:?}");
    let (serial, deducted) = deduct;
    let review = pb::ReviewDeclarationRequest {
        institution_id: inst.clone(),
        period: month.into(),
        deductions: vec![pb::DeductionInput {
            settlement_serial: serial,
            amount: deducted.to_string(),
            reason: "bank: the same item billed twice on one day".into(),
            alert_seq: 0,
        }],
        note: "bank: month-end review".into(),
    };
    match retry_at(&addrs, &agency, |ch| {
        let req = review.clone();
        async move { AgencyServiceClient::new(ch).review_declaration(req).await }
    })
    .await
    {
        Ok(_) => {}
        // A retry of a review whose first try was applied (its answer lost): reviewed once.
        Err(s) if s.code() == Code::FailedPrecondition && s.message().contains("was already reviewed") => {}
        Err(s) => panic!("{province}: reviewing {month}: {s:?}"),
    }
    let statement = pb::GetPaymentStatementRequest { institution_id: inst.clone(), period: month.into() };
    let reviewed = retry_at(&addrs, &hospital, |ch| {
        let req = statement.clone();
        async move { HospitalServiceClient::new(ch).get_payment_statement(req).await }
    })
    .await
    .expect("payment statement")
    .into_inner()
    .statement
    .and_then(|s| s.declaration)
    .expect("a declaration");
    assert_eq!(reviewed.note, "bank: month-end review", "{province}: {reviewed:?}");
    assert_eq!(yuan(&reviewed.deducted), deducted, "{province}: deducted once: {reviewed:?}");
    assert_eq!(yuan(&reviewed.approved), yuan(&reviewed.declared) - deducted, "{province}: {reviewed:?}");
    let approved = yuan(&reviewed.approved);
    let pay = pb::PayInstitutionRequest {
        institution_id: inst.clone(),
        period: month.into(),
        reference: "BP-1".into(),
        amount: approved.to_string(),
        offset: String::new(),
    };
    let paid = retry_at(&addrs, &agency, |ch| {
        let req = pay.clone();
        async move { AgencyServiceClient::new(ch).pay_institution(req).await }
    })
    .await
    .unwrap_or_else(|s| panic!("{province}: paying {month}: {s:?}"))
    .into_inner();
    assert_eq!(yuan(&paid.declaration.expect("declaration").outstanding), Money::ZERO, "{province}");
    let quote = pb::QuotePrepaymentRequest {
        institution_id: inst.clone(),
        kind: pb::PrepaymentKind::General as i32,
        procurement_amount: String::new(),
    };
    let quoted = retry_at(&addrs, &hospital, |ch| {
        let req = quote.clone();
        async move { HospitalServiceClient::new(ch).quote_prepayment(req).await }
    })
    .await
    .unwrap_or_else(|s| panic!("{province}: quoting a prepayment: {s:?}"))
    .into_inner()
    .sizing
    .expect("sizing");
    let grant = pb::GrantPrepaymentRequest {
        institution_id: inst.clone(),
        reference: "BPP-1".into(),
        kind: pb::PrepaymentKind::General as i32,
        procurement_amount: String::new(),
    };
    let granted = retry_at(&addrs, &agency, |ch| {
        let req = grant.clone();
        async move { AgencyServiceClient::new(ch).grant_prepayment(req).await }
    })
    .await
    .unwrap_or_else(|s| panic!("{province}: granting a prepayment: {s:?}"))
    .into_inner()
    .prepayment
    .expect("prepayment");
    assert_eq!(granted.amount, quoted.amount, "{province}: granted as quoted ({})", quoted.rule);
    MonthEnd { deducted, paid: approved, prepaid: yuan(&granted.amount) }
}

/// The nation clears `month` once it is over and settles it; the settled month as answered.
pub async fn clear_and_settle(federation: Vec<String>, month: &str) -> pb::Clearing {
    let nation = national();
    once_over(&format!("clearing {month}"), "has not ended", || {
        let req = pb::RunClearingRequest { month: month.into() };
        retry_at(&federation, &nation, move |ch| {
            let req = req.clone();
            async move { FederationServiceClient::new(ch).run_clearing(req).await }
        })
    })
    .await;
    let req = pb::SettleClearingRequest { month: month.into() };
    let settled = retry_at(&federation, &nation, |ch| {
        let req = req.clone();
        async move { FederationServiceClient::new(ch).settle_clearing(req).await }
    })
    .await
    .unwrap_or_else(|s| panic!("settling {month}: {s:?}"))
    .into_inner()
    .clearing
    .expect("clearing");
    assert_eq!(settled.status, "SETTLED", "{settled:?}");
    settled
}
