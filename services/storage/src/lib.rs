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
//!
//! Compression: table blocks with LZ4 by default ([`Compression`]; RocksDB's own LZ4, the
//! `lz4` feature of the `rocksdb` crate), the snapshot stream as one LZ4 frame (`lz4_flex`,
//! pure Rust; why in `snapshot.rs`).
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

pub use log_store::{LogStore, LogVolume};
use medmesh_state::{Batch, CommandResult, Role};
use openraft::{StorageError, StorageIOError};
use rocksdb::{ColumnFamilyDescriptor, Options, DB};
pub use state_machine::{StateMachineStore, StateView, StoreMemory};

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
/// Bump it whenever a stored type changes shape, or what apply writes for the same entries
/// changes (20: recording a rule also records the rules in force's version, a hash of the set,
/// which settlement reads instead of the whole set), so
/// replicas never hold state two builds wrote; a replica refuses a directory of another
/// version instead of misreading it.
pub const FORMAT_VERSION: u32 = 20;
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

/// How much memory RocksDB may hold per replica: the two bounds that grow with the data
/// (everything else RocksDB holds — table readers, iterators — is small next to them, because
/// index and filter blocks live in the block cache too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryBudget {
    /// Bytes of the block cache shared by every column family: data, index and filter blocks.
    pub block_cache: usize,
    /// Bytes of memtables, all column families together (a flush starts beyond it).
    pub write_buffers: usize,
}

impl Default for MemoryBudget {
    /// 64 MiB of cache and 64 MiB of memtables (`block_cache_mib` and `write_buffer_mib` of a
    /// replica's configuration).
    fn default() -> Self {
        MemoryBudget { block_cache: 64 << 20, write_buffers: 64 << 20 }
    }
}

/// How RocksDB compresses the blocks of its table files on disk.
///
/// LZ4 (the default) because a province's records are bincode of repeated shapes — ids,
/// dates, decimal amounts, catalogue codes — that compress well, and LZ4 costs little CPU on
/// a two-core replica; the disk a claim takes bounds how large a province one machine holds
/// (BENCHMARKS.md, "A province at a million claims"). `None` trades disk for that CPU.
/// Changing it needs no migration: each table file records how it was written, and
/// compaction rewrites old files in the new way.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    /// Blocks stored as they are.
    None,
    /// Blocks compressed with LZ4.
    #[default]
    Lz4,
}

impl std::str::FromStr for Compression {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "none" => Ok(Compression::None),
            "lz4" => Ok(Compression::Lz4),
            _ => Err(format!("{s:?} is not a compression (lz4 or none)")),
        }
    }
}

/// How a replica's RocksDB is tuned: its memory bounds and its compression.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StoreOptions {
    /// RocksDB's memory bounds.
    pub memory: MemoryBudget,
    /// How table blocks are compressed.
    pub compression: Compression,
}

/// The snapshot directory of the replica whose store is under `dir`.
fn snapshot_dir(dir: &Path) -> std::path::PathBuf {
    dir.join("snapshot")
}

/// Bytes of the current snapshot of the replica whose store is under `dir` (0 if none).
pub fn snapshot_bytes(dir: &Path) -> u64 {
    std::fs::metadata(snapshot_dir(dir).join(snapshot::CURRENT)).map_or(0, |m| m.len())
}

/// Whether a replica should build a snapshot now: once `entries` applied entries (at least
/// `min_entries`, the `snapshot_logs` of its configuration) *and* `log_bytes` of log have
/// accumulated since its last snapshot of `snapshot_bytes` — at least half as much log as
/// the snapshot holds state.
///
/// Why both: a build reads and writes the whole state, so with a fixed count of entries its
/// cost grows with the province; a province of millions of claims spent more time building
/// snapshots than settling (BENCHMARKS.md, "A province at a million claims"). Tied to the log's volume,
/// each build is paid for by log at least half its size, as a log-structured store pays for
/// compaction: the work per settled claim stays constant however large the state, and the
/// log kept between builds stays under half the state (plus what Raft keeps after a purge).
pub fn snapshot_due(entries: u64, log_bytes: u64, snapshot_bytes: u64, min_entries: u64) -> bool {
    entries >= min_entries && log_bytes.saturating_mul(2) >= snapshot_bytes
}

/// Options of a column family: table blocks in the replica's bounded cache, and bloom filters
/// on whole keys in the tables and in the memtable. Apply looks up many keys that are not there
/// (the idempotency record of a new serial, discipline entries, accumulators of a new year);
/// without filters each such lookup searched the memtable and every level's index, and
/// lookups were most of apply's time (BENCHMARKS.md, "Where the time goes").
///
/// Index and filter blocks are partitioned (4 KiB partitions under a pinned top level): a
/// table's whole index grows with the table (1.2 MB for a 68 MB table at 200,000 claims),
/// larger than a shard of the block cache, so it was never kept, and every lookup read and
/// checksummed it again from the file: a province's settlement rate halved by 200,000 claims
/// (BENCHMARKS.md, "A province at a million claims"). Partitions fit the cache whatever the table's size.
fn cf_options(cache: &rocksdb::Cache, compression: Compression) -> Options {
    let mut table = rocksdb::BlockBasedOptions::default();
    table.set_block_cache(cache);
    table.set_bloom_filter(10.0, false);
    table.set_whole_key_filtering(true);
    table.set_cache_index_and_filter_blocks(true);
    table.set_index_type(rocksdb::BlockBasedIndexType::TwoLevelIndexSearch);
    table.set_partition_filters(true);
    table.set_metadata_block_size(4096);
    table.set_pin_top_level_index_and_filter(true);
    table.set_pin_l0_filter_and_index_blocks_in_cache(true);
    let mut o = Options::default();
    o.set_block_based_table_factory(&table);
    let kind = match compression {
        Compression::None => rocksdb::DBCompressionType::None,
        Compression::Lz4 => rocksdb::DBCompressionType::Lz4,
    };
    o.set_compression_type(kind);
    o.set_bottommost_compression_type(kind);
    o.set_memtable_whole_key_filtering(true);
    o.set_memtable_prefix_bloom_ratio(0.1);
    o
}

/// Opens (or creates) the RocksDB of a replica under `dir` with the default [`StoreOptions`]
/// and returns its log store and state machine, which applies only the commands of `role`.
pub async fn open(dir: &Path, role: Role) -> Result<(LogStore, StateMachineStore), StorageError<NodeId>> {
    open_with(dir, role, StoreOptions::default()).await
}

/// [`open`] with RocksDB's memory bounded and its blocks compressed as `options` say.
pub async fn open_with(
    dir: &Path,
    role: Role,
    options: StoreOptions,
) -> Result<(LogStore, StateMachineStore), StorageError<NodeId>> {
    std::fs::create_dir_all(dir).map_err(|e| StorageIOError::write(&e))?;
    let mut opts = Options::default();
    opts.create_if_missing(true);
    opts.create_missing_column_families(true);
    opts.set_max_background_jobs(2);
    // Keep the WAL across column families; every synced log append also syncs prior state
    // writes.
    opts.set_manual_wal_flush(false);
    // Memtables of all column families together are bounded (flushed beyond it).
    opts.set_db_write_buffer_size(options.memory.write_buffers);
    let cache = rocksdb::Cache::new_lru_cache(options.memory.block_cache);
    let cfs = [CF_LOG, CF_META, CF_SM].map(|n| ColumnFamilyDescriptor::new(n, cf_options(&cache, options.compression)));
    let db = DB::open_cf_descriptors(&opts, dir.join("db"), cfs).map_err(|e| StorageIOError::write(&e))?;
    check_format(&db)?;
    let db = Arc::new(db);
    let log = LogStore::new(db.clone());
    let sm = StateMachineStore::new(db, snapshot_dir(dir), role).await?;
    Ok((log, sm))
}
