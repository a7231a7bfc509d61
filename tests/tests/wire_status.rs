//! A request that is not a protobuf message of its method's type gets INVALID_ARGUMENT and
//! one above the 4 MiB limit RESOURCE_EXHAUSTED, as `common.proto` promises — from a real
//! replica, for each public service. Raw bytes go out through `tonic::client::Grpc` with a
//! codec that sends them as they are.

use medmesh_tests::{free_base_port, Group};
use tonic::{Code, Status};

/// Calls `path` on replica `id` with `body` as the request message.
async fn call(g: &Group, id: u64, path: &'static str, body: Vec<u8>) -> Result<Vec<u8>, Status> {
    medmesh_tests::raw::call(g.channel_as(id, &medmesh_tests::caller_for(path, &g.province)), path, body).await
}

/// One method of each public service.
const METHODS: [&str; 3] = [
    "/medmesh.v1.HospitalService/RegisterVisit",
    "/medmesh.v1.AgencyService/PutPolicy",
    "/medmesh.v1.FederationService/TopUp",
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_and_oversize_requests_get_the_promised_statuses() {
    let mut g = Group::start("110000", 1, free_base_port(), &[]);
    g.leader().await;
    for path in METHODS {
        // Field 1, length-delimited, says 5 bytes and carries 1: not a protobuf message.
        let err = call(&g, 1, path, vec![0x0a, 0x05, 0x61]).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{path}: {err:?}");
        assert!(err.message().starts_with("request: malformed protobuf message ("), "{path}: {}", err.message());
        // A string field that is not UTF-8.
        let err = call(&g, 1, path, vec![0x0a, 0x01, 0xff]).await.unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{path}: {err:?}");
        assert!(err.message().starts_with("request: malformed protobuf message ("), "{path}: {}", err.message());

        // 4 MiB + 1 byte: refused on its length, whatever it holds.
        let size = 4 * 1024 * 1024 + 1;
        let err = call(&g, 1, path, vec![0; size]).await.unwrap_err();
        assert_eq!(err.code(), Code::ResourceExhausted, "{path}: {err:?}");
        assert_eq!(
            err.message(),
            format!("request: message of {size} bytes is larger than the limit of 4194304 bytes"),
            "{path}"
        );
    }
    // A well-formed but empty request still reaches its handler, which names the field.
    let err = call(&g, 1, METHODS[0], Vec::new()).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument, "{err:?}");
    assert!(!err.message().starts_with("request:"), "the handler answers: {}", err.message());
    // The replica still serves afterwards.
    let mut h = g.hospital(1);
    let err = h.register_visit(medmesh_node::pb::RegisterVisitRequest::default()).await.unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
    g.stop_all().await;
}
