//! Generated protobuf and gRPC code for `medmesh.v1`.
#![allow(missing_docs, clippy::all, clippy::pedantic)]

tonic::include_proto!("medmesh.v1");

/// Encoded file descriptor set, served by gRPC reflection.
pub const FILE_DESCRIPTOR_SET: &[u8] = tonic::include_file_descriptor_set!("medmesh_descriptor");
