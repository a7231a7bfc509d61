//! The medmesh node: configuration, the Raft network over tonic, the hospital, agency, Raft and
//! admin gRPC services, the local development mesh and a typed client.
//!
//! Domain rules live in the pure crates (`medmesh-settlement`, `medmesh-state`); this crate is
//! the edge that wires them to Raft, RocksDB and gRPC.
#![forbid(unsafe_code)]
// tonic::Status is the error type of every gRPC edge function.
#![allow(clippy::result_large_err)]

pub mod access;
pub mod api;
pub mod app;
pub mod audit;
pub mod cli;
pub mod clock;
pub mod config;
pub mod convert;
pub mod dashboard;
pub mod demo;
pub mod dev;
pub mod gateway;
pub mod health;
pub mod identity;
pub mod map_response;
pub mod mesh;
pub mod metrics;
pub mod network;
pub mod pb;
pub mod pki;
pub mod reconcile;
pub mod remote;
pub mod server;
pub mod telemetry;
pub mod wire_status;
