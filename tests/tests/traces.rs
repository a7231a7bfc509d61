//! Issue 14.5: one non-local settlement is one trace across three groups. Every replica of a
//! real mesh (the federation and two provinces, three processes each) exports its spans over
//! OTLP/gRPC to a small collector in this test; the W3C trace context travels in the gRPC
//! metadata of each call between groups, so the settle rpc at the treatment province, the
//! federation's part and the insured province's part arrive as spans of one trace.

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use medmesh_node::demo;
use medmesh_tests::{settle_nonlocal_demo_claim, wait_until, Mesh};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{TraceService, TraceServiceServer};
use opentelemetry_proto::tonic::collector::trace::v1::{ExportTraceServiceRequest, ExportTraceServiceResponse};
use opentelemetry_proto::tonic::common::v1::any_value::Value;

const TREATMENT: &str = "110000";
const INSURED: &str = "310000";

/// A span as the collector received it.
#[derive(Debug, Clone)]
struct Seen {
    service: String,
    name: String,
    trace: Vec<u8>,
    id: Vec<u8>,
    parent: Vec<u8>,
}

/// An OTLP trace receiver that keeps every span.
#[derive(Clone, Default)]
struct Collector(Arc<Mutex<Vec<Seen>>>);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut seen = self.0.lock().unwrap();
        for rs in request.into_inner().resource_spans {
            let service = rs
                .resource
                .iter()
                .flat_map(|r| r.attributes.iter())
                .find(|a| a.key == "service.name")
                .and_then(|a| match a.value.as_ref().and_then(|v| v.value.as_ref()) {
                    Some(Value::StringValue(s)) => Some(s.clone()),
                    _ => None,
                })
                .unwrap_or_default();
            for span in rs.scope_spans.into_iter().flat_map(|s| s.spans) {
                seen.push(Seen {
                    service: service.clone(),
                    name: span.name,
                    trace: span.trace_id,
                    id: span.span_id,
                    parent: span.parent_span_id,
                });
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse { partial_success: None }))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_non_local_settlement_is_one_trace_across_three_groups() {
    let collector = Collector::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let endpoint = format!("http://{}", listener.local_addr().unwrap());
    let server = tonic::transport::Server::builder()
        .add_service(TraceServiceServer::new(collector.clone()))
        .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener));
    tokio::spawn(server);

    let mesh = Mesh::start_with_env(&[TREATMENT, INSURED], 5, &[("MEDMESH_OTLP_ENDPOINT", endpoint)]).await;
    let bj = mesh.province(TREATMENT);
    let mut h = bj.hospital(bj.leader().await);
    let day = demo::today();
    settle_nonlocal_demo_claim(&mut h, TREATMENT, INSURED, ("TV1", "TS1"), &day).await;

    // The settle span at the treatment province, and spans of the same trace from a replica of
    // the federation and of the insured province, each a child of the settle span (the calls
    // between groups are made inside it). Spans are exported in batches every few seconds.
    let (settle, others) = wait_until(Duration::from_secs(60), "the trace from all three groups", || {
        let seen = collector.0.lock().unwrap().clone();
        async move {
            let settle = seen.iter().find(|s| {
                s.name == "/medmesh.v1.HospitalService/Settle"
                    && s.service.starts_with(&format!("medmesh-{TREATMENT}-"))
            })?;
            let others: Vec<Seen> =
                seen.iter().filter(|s| s.trace == settle.trace && s.id != settle.id).cloned().collect();
            let groups: BTreeSet<String> = others
                .iter()
                .filter(|s| s.parent == settle.id)
                .filter_map(|s| s.service.split('-').nth(1).map(str::to_string))
                .collect();
            let want: BTreeSet<String> = [medmesh_state::FEDERATION, INSURED].iter().map(|g| g.to_string()).collect();
            want.is_subset(&groups).then(|| (settle.clone(), others))
        }
    })
    .await;
    assert_eq!(settle.trace.len(), 16, "a W3C trace id");
    let treatment = format!("medmesh-{TREATMENT}-");
    assert!(
        others
            .iter()
            .filter(|s| !s.service.starts_with(&treatment))
            .all(|s| s.name.starts_with("/medmesh.v1.MeshService/")),
        "the other groups' parts are calls between groups: {others:?}"
    );
    // No replication or probe spans: only requests' stories are traced.
    let seen = collector.0.lock().unwrap().clone();
    assert!(!seen.iter().any(|s| s.name.starts_with("/medmesh.v1.RaftService/") || s.name.starts_with("/grpc.health")));
}
