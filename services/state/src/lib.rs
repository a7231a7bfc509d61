//! The province state machine of medmesh: records, commands, queries and a deterministic
//! `apply` over a key-value view.
//!
//! This crate does no IO and must never depend on tokio, tonic, prost, rocksdb or openraft.
//! The storage crate gives it a [`KvRead`] over RocksDB and writes the [`WriteSet`] it returns
//! in one `WriteBatch` together with the Raft applied index. Apply reads time only from the
//! log entry ([`Batch::time`]), iterates only ordered maps and never uses floats or randomness,
//! so every replica reaches the same bytes.
//!
//! One home per role (files import only downwards; `import_graph_has_no_cycles` checks it):
//!
//! | module | role |
//! |---|---|
//! | `apply` | the entry point: the group's time, the role check, validation, dispatch, and the province's own commands (registers, visits, local settlement and reversal) |
//! | `validate` | what every command must satisfy before any state is read |
//! | `treatment` | a treatment province's part of non-local settlement |
//! | `insured` | an insured province's part of non-local settlement |
//! | `federation`, `clearing` | the federation group: directory, filings, decisions, positions, shared log; prepaid accounts and clearing |
//! | `discipline` | joint-discipline entries and a province's copy of the shared log |
//! | `monitoring` | monitoring rules, the knowledge base and the review queue (issue 11) |
//! | `cases` | cases and their penalties around `medmesh_supervision::cases`, and the outbox to the shared log |
//! | `audit` | the audit chain every applied command extends, its anchors and its verification |
//! | `rules` | rules that read state, shared by commands and queries (idempotency, billing, insurance, quotes) |
//! | `query` | read-only questions |
//! | `model`, `shared`, `kv`, `error` | records of a province, records that cross between groups, the key layout, errors |
#![forbid(unsafe_code)]

pub mod access;
pub mod accounts;
pub mod aggregate;
mod apply;
pub mod audit;
pub mod cases;
mod clearing;
mod command;
pub mod coordinator;
pub mod credit;
mod discipline;
pub mod disclosure;
mod error;
mod federation;
mod figures;
pub mod flights;
pub mod inspection;
mod insured;
mod kv;
mod model;
pub mod monitoring;
pub mod payment;
mod query;
pub mod reconcile;
pub mod reports;
mod rules;
mod shared;
pub mod sim;
mod tally;
mod treatment;
mod validate;

pub use apply::{apply_batch, apply_command, group_time, MAX_CLOCK_STEP_MS};
pub use command::{Batch, Command};
pub use error::{DomainError, ErrorCode};
pub use federation::FederationCommand;
pub use kv::{keys, load, KvRead, MemKv, Tx, WriteSet};
pub use model::*;
pub use query::{run_query, Answer, FundView, IdentityView, Query, DEFAULT_STATEMENT_PAGE, MAX_ROWS, MAX_STATEMENT};
pub use rules::{disciplined, find_person, require_active};
pub use shared::*;
pub use validate::{validate, MAX_LIST, MAX_TEXT};

#[cfg(test)]
mod tests;
