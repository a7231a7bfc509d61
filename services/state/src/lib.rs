//! The province state machine of medmesh: records, commands, queries and a deterministic
//! `apply` over a key-value view.
//!
//! This crate does no IO and must never depend on tokio, tonic, prost, rocksdb or openraft.
//! The storage crate gives it a [`KvRead`] over RocksDB and writes the [`WriteSet`] it returns
//! in one `WriteBatch` together with the Raft applied index. Apply reads time only from the
//! log entry ([`Batch::time`]), iterates only ordered maps and never uses floats or randomness,
//! so every replica reaches the same bytes.
#![forbid(unsafe_code)]

mod apply;
mod clearing;
pub mod coordinator;
mod error;
mod kv;
mod model;
mod nonlocal;
mod query;
mod shared;
pub mod sim;
mod validate;

pub use apply::{apply_batch, apply_command, disciplined, group_time, MAX_CLOCK_STEP_MS};
pub use error::{DomainError, ErrorCode};
pub use kv::{keys, load, KvRead, MemKv, Tx, WriteSet};
pub use model::*;
pub use query::{run_query, Answer, FundView, IdentityView, Query, DEFAULT_STATEMENT_PAGE, MAX_STATEMENT};
pub use shared::*;
pub use validate::{validate, MAX_LIST, MAX_TEXT};

#[cfg(test)]
mod tests;
