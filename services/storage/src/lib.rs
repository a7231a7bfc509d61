//! RocksDB storage for a medmesh Raft group: the openraft log store and the state machine.
//!
//! One RocksDB instance per replica, with three column families:
//! - `log`: Raft entries keyed by big-endian index;
//! - `meta`: vote, committed log id, last purged log id;
//! - `sm`: the state machine's records (the [`medmesh_state`] key layout), plus the applied log
//!   id and membership.
//!
//! Durability rules:
//! - a log append is written with `sync = true` (the WAL is fsync'd) *before* openraft is told
//!   the entries are flushed, so an acknowledged write is on disk on a majority;
//! - the state change, the applied log id and the idempotency records of one `apply` call go in
//!   one `WriteBatch`, so a crash never separates them;
//! - state machine writes share the WAL with the log and are synced by the next log append or
//!   explicitly, right after the RocksDB snapshot a snapshot file is built from is taken, so
//!   everything a snapshot (which lets the log be purged) holds is on disk;
//! - a snapshot older than what is applied is never installed; a received one is fsync'd and
//!   verified before the state is touched, and an install cut short by a crash is finished
//!   when the store opens (see `snapshot.rs`).
#![forbid(unsafe_code)]
// openraft's StorageError is the error type its storage traits require.
#![allow(clippy::result_large_err)]

mod log_store;
mod snapshot;
mod state_machine;
#[cfg(test)]
mod tests;

pub use snapshot::SnapshotFile;
use std::path::Path;
use std::sync::Arc;

pub use log_store::LogStore;
use medmesh_state::{Batch, CommandResult, Role};
use openraft::{StorageError, StorageIOError};
use rocksdb::{ColumnFamilyDescriptor, Options, DB};
pub use state_machine::{StateMachineStore, StateView};

openraft::declare_raft_types!(
    /// The openraft type configuration of every medmesh group.
    pub TypeConfig:
        D = Batch,
        R = Vec<CommandResult>,
        NodeId = u64,
        Node = openraft::BasicNode,
        Entry = openraft::Entry<TypeConfig>,
        SnapshotData = SnapshotFile,
        AsyncRuntime = openraft::TokioRuntime,
);

/// Node id of a replica.
pub type NodeId = u64;

pub(crate) const CF_LOG: &str = "log";
pub(crate) const CF_META: &str = "meta";
pub(crate) const CF_SM: &str = "sm";

/// Version of the on-disk encoding (bincode of openraft entries and `medmesh_state` records).
/// Bump it whenever a stored type changes shape; a replica refuses a directory of another
/// version instead of misreading it.
pub const FORMAT_VERSION: u32 = 11;
const KEY_FORMAT: &[u8] = b"format";

fn check_format(db: &DB) -> Result<(), StorageError<NodeId>> {
    let meta = db.cf_handle(CF_META).expect("meta column family exists");
    let log = db.cf_handle(CF_LOG).expect("log column family exists");
    let bad = |msg: String| -> StorageError<NodeId> { StorageIOError::read(&std::io::Error::other(msg)).into() };
    match db.get_cf(meta, KEY_FORMAT).map_err(|e| StorageIOError::read(&e))? {
        Some(v) if v.as_slice() == FORMAT_VERSION.to_be_bytes() => Ok(()),
        Some(v) => Err(bad(format!(
            "data directory has storage format {:?}, this build reads format {FORMAT_VERSION}; use a fresh directory",
            v
        ))),
        None => {
            let empty = db.iterator_cf(log, rocksdb::IteratorMode::Start).next().is_none()
                && db.get_cf(meta, b"vote").map_err(|e| StorageIOError::read(&e))?.is_none();
            if !empty {
                return Err(bad(format!(
                    "data directory has no storage format marker (written by an older build); this build reads format {FORMAT_VERSION}; use a fresh directory"
                )));
            }
            db.put_cf(meta, KEY_FORMAT, FORMAT_VERSION.to_be_bytes()).map_err(|e| StorageIOError::write(&e))?;
            Ok(())
        }
    }
}

/// Bytes of RocksDB's block cache per replica (data, index and filter blocks of all column
/// families).
pub const BLOCK_CACHE: usize = 64 << 20;
/// Bytes of memtables per replica, all column families together.
pub const WRITE_BUFFERS: usize = 64 << 20;

/// Options of a column family: table blocks in the replica's bounded cache, and bloom filters
/// on whole keys in the tables and in the memtable. Apply looks up many keys that are not there
/// (the idempotency record of a new serial, discipline entries, accumulators of a new year);
/// without filters each such lookup searched the memtable and every level's index, and
/// lookups were most of apply's time (BENCHMARKS.md, "Where the time goes").
fn cf_options(cache: &rocksdb::Cache) -> Options {
    let mut table = rocksdb::BlockBasedOptions::default();
    table.set_block_cache(cache);
    table.set_bloom_filter(10.0, false);
    table.set_whole_key_filtering(true);
    table.set_cache_index_and_filter_blocks(true);
    table.set_pin_l0_filter_and_index_blocks_in_cache(true);
    let mut o = Options::default();
    o.set_block_based_table_factory(&table);
    o.set_memtable_whole_key_filtering(true);
    o.set_memtable_prefix_bloom_ratio(0.1);
    o
}

/// Opens (or creates) the RocksDB of a replica under `dir` and returns its log store and state
/// machine, which applies only the commands of `role`.
pub async fn open(dir: &Path, role: Role) -> Result<(LogStore, StateMachineStore), StorageError<NodeId>> {
    std::fs::create_dir_all(dir).map_err(|e| StorageIOError::write(&e))?;
    let mut opts = Options::default();
    opts.create_if_missing(true);
    opts.create_missing_column_families(true);
    opts.set_max_background_jobs(2);
    // Keep the WAL across column families; every synced log append also syncs prior state
    // writes.
    opts.set_manual_wal_flush(false);
    // Memtables of all column families together are bounded (flushed beyond it).
    opts.set_db_write_buffer_size(WRITE_BUFFERS);
    let cache = rocksdb::Cache::new_lru_cache(BLOCK_CACHE);
    let cfs = [CF_LOG, CF_META, CF_SM].map(|n| ColumnFamilyDescriptor::new(n, cf_options(&cache)));
    let db = DB::open_cf_descriptors(&opts, dir.join("db"), cfs).map_err(|e| StorageIOError::write(&e))?;
    check_format(&db)?;
    let db = Arc::new(db);
    let log = LogStore::new(db.clone());
    let sm = StateMachineStore::new(db, dir.join("snapshot"), role).await?;
    Ok((log, sm))
}
