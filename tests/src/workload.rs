//! A hospital workload: register, upload about ten fee lines of mixed classes, settle; each
//! step retried with the same serial on an unknown outcome, across replicas.

use std::time::Duration;

use medmesh_node::demo;
pub use medmesh_node::demo::{fee_lines, today};
use medmesh_node::pb;
use medmesh_node::pb::hospital_service_client::HospitalServiceClient;
use tonic::transport::Channel;
use tonic::Code;

/// Whether a status means "outcome unknown, retry with the same serial".
pub fn retryable(s: &tonic::Status) -> bool {
    matches!(s.code(), Code::Unavailable | Code::Unknown | Code::DeadlineExceeded | Code::Cancelled | Code::Internal)
}

/// Calls `f` on replicas in turn until it gives a definitive answer (or 60 s pass).
pub async fn with_retry<T, F, Fut>(
    clients: &[HospitalServiceClient<Channel>],
    start: usize,
    mut f: F,
) -> Result<T, tonic::Status>
where
    F: FnMut(HospitalServiceClient<Channel>) -> Fut,
    Fut: std::future::Future<Output = Result<T, tonic::Status>>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let mut i = start;
    loop {
        let c = clients[i % clients.len()].clone();
        match tokio::time::timeout(Duration::from_secs(5), f(c)).await {
            Ok(Ok(v)) => return Ok(v),
            Ok(Err(s)) if !retryable(&s) => return Err(s),
            Ok(Err(s)) if std::time::Instant::now() > deadline => return Err(s),
            Err(_) if std::time::Instant::now() > deadline => return Err(tonic::Status::deadline_exceeded("gave up")),
            _ => {}
        }
        i += 1;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Registers, uploads and settles one claim. Returns the settlement.
pub async fn settle_claim(
    clients: &[HospitalServiceClient<Channel>],
    province: &str,
    worker: usize,
    n: u64,
    person: u32,
) -> Result<pb::SettleResponse, tonic::Status> {
    settle_claim_of(clients, province, province, worker, n, person).await
}

/// Registers, uploads and settles one claim at institution 1 of `treatment` for demo person
/// `person` of `insured` (non-local when they differ). Returns the settlement.
pub async fn settle_claim_of(
    clients: &[HospitalServiceClient<Channel>],
    treatment: &str,
    insured: &str,
    worker: usize,
    n: u64,
    person: u32,
) -> Result<pb::SettleResponse, tonic::Status> {
    settle_claim_on(clients, treatment, insured, worker, n, person, &today()).await
}

/// [`settle_claim_of`] with care on `day` (the mesh's "today" when its clocks are offset).
pub async fn settle_claim_on(
    clients: &[HospitalServiceClient<Channel>],
    treatment: &str,
    insured: &str,
    worker: usize,
    n: u64,
    person: u32,
    day: &str,
) -> Result<pb::SettleResponse, tonic::Status> {
    let province = treatment;
    let inst = demo::institution(province, 1);
    let day = day.to_string();
    let visit = format!("V-{worker}-{n}");
    with_retry(clients, worker + n as usize, |mut c| {
        let req = demo::nonlocal_visit_request(province, insured, &visit, person, 1, &day);
        async move { c.register_visit(req).await.map(|r| r.into_inner()) }
    })
    .await?;
    with_retry(clients, worker + n as usize, |mut c| {
        let req = pb::UploadFeesRequest {
            institution_id: inst.clone(),
            visit_serial: visit.clone(),
            lines: fee_lines(n, &day),
        };
        async move { c.upload_fees(req).await.map(|r| r.into_inner()) }
    })
    .await?;
    with_retry(clients, worker + n as usize, |mut c| {
        let req = pb::SettleRequest {
            lines: Vec::new(),
            institution_id: inst.clone(),
            serial: format!("S-{worker}-{n}"),
            visit_serial: visit.clone(),
            use_individual_account: n.is_multiple_of(2),
        };
        async move { c.settle(req).await.map(|r| r.into_inner()) }
    })
    .await
}
