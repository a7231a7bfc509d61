//! Generated protobuf and gRPC code for `medmesh.v1`.
#![allow(missing_docs, clippy::all, clippy::pedantic)]

tonic::include_proto!("medmesh.v1");
// The proto3 JSON mapping of the HTTP gateway's messages (see build.rs).
include!(concat!(env!("OUT_DIR"), "/medmesh.v1.serde.rs"));

/// Encoded file descriptor set, served by gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("medmesh_descriptor");

/// The internal RaftService messages: each carries one bincode payload.
pub trait Payload: Sized {
    /// Wraps encoded bytes.
    fn wrap(data: Vec<u8>) -> Self;
    /// The encoded bytes.
    fn data(self) -> Vec<u8>;
}

macro_rules! payload {
    ($($t:ident),*) => {
        $(impl Payload for $t {
            fn wrap(data: Vec<u8>) -> Self {
                $t { data }
            }
            fn data(self) -> Vec<u8> {
                self.data
            }
        })*
    };
}

payload!(
    RaftServiceAppendEntriesRequest,
    RaftServiceAppendEntriesResponse,
    RaftServiceVoteRequest,
    RaftServiceVoteResponse,
    RaftServiceInstallSnapshotRequest,
    RaftServiceInstallSnapshotResponse,
    RaftServiceProposeRequest,
    RaftServiceProposeResponse,
    MeshServiceProposeRequest,
    MeshServiceProposeResponse,
    MeshServiceQueryRequest,
    MeshServiceQueryResponse,
    RaftServiceQueryRequest,
    RaftServiceQueryResponse
);
