//! The state machine in RocksDB: applies batches through the pure [`medmesh_state`] apply and
//! writes each apply call's changes, applied log id and membership in one `WriteBatch`.
//! Snapshots are files, streamed to and from disk (see [`crate::snapshot`]).

use std::path::PathBuf;
use std::sync::Arc;

use medmesh_state::{apply_batch, KvRead, Role, Tx, WriteSet};
use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    Entry, EntryPayload, LogId, OptionalSend, RaftSnapshotBuilder, SnapshotMeta, StorageError, StorageIOError,
    StoredMembership,
};
use rocksdb::{Direction, IteratorMode, WriteBatch, WriteOptions, DB};

use crate::snapshot::{self, SnapshotFile, SnapshotLocks};
use crate::{NodeId, TypeConfig, CF_LOG, CF_META, CF_SM};

pub(crate) const KEY_APPLIED: &[u8] = b"~raft/applied";
pub(crate) const KEY_MEMBERSHIP: &[u8] = b"~raft/membership";
/// Set while a snapshot install replaces the state (see [`crate::snapshot`]).
pub(crate) const KEY_INSTALLING: &[u8] = b"~raft/installing";

pub(crate) type Membership = StoredMembership<NodeId, openraft::BasicNode>;
pub(crate) type Meta = SnapshotMeta<NodeId, openraft::BasicNode>;

/// Read-only view of the committed state, for queries.
#[derive(Clone)]
pub struct StateView {
    pub(crate) db: Arc<DB>,
    pub(crate) locks: Arc<SnapshotLocks>,
}

/// What the replica's RocksDB holds in memory, by part, in bytes (RocksDB's own accounting).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreMemory {
    /// Memtables of every column family, mutable and being flushed.
    pub memtables: u64,
    /// The block cache in use (data, index and filter blocks).
    pub block_cache: u64,
    /// Of the block cache, blocks pinned (in use by a reader, or pinned top-level indexes).
    pub block_cache_pinned: u64,
    /// Table readers held outside the block cache.
    pub table_readers: u64,
}

impl StateView {
    /// What RocksDB holds in memory now.
    pub fn memory(&self) -> StoreMemory {
        let int = |cf: &str, name: &str| {
            self.db.cf_handle(cf).and_then(|h| self.db.property_int_value_cf(&h, name).ok().flatten()).unwrap_or(0)
        };
        let sum = |name: &str| [CF_LOG, CF_META, CF_SM].iter().map(|cf| int(cf, name)).sum();
        StoreMemory {
            memtables: sum("rocksdb.cur-size-all-mem-tables"),
            // One cache shared by every column family: ask one.
            block_cache: int(CF_SM, "rocksdb.block-cache-usage"),
            block_cache_pinned: int(CF_SM, "rocksdb.block-cache-pinned-usage"),
            table_readers: sum("rocksdb.estimate-table-readers-mem"),
        }
    }

    fn cf(&self) -> &rocksdb::ColumnFamily {
        self.db.cf_handle(CF_SM).expect("sm column family exists")
    }

    /// The last applied log index (0 if none).
    pub fn applied_index(&self) -> u64 {
        self.get(KEY_APPLIED)
            .and_then(|b| bincode::deserialize::<Option<LogId<NodeId>>>(&b).ok())
            .flatten()
            .map(|l| l.index)
            .unwrap_or(0)
    }
}

impl KvRead for StateView {
    fn get(&self, key: &[u8]) -> Option<Vec<u8>> {
        self.db.get_cf(self.cf(), key).expect("rocksdb read")
    }

    fn scan(&self, start: &[u8], end: &[u8], limit: usize) -> Vec<(Vec<u8>, Vec<u8>)> {
        let mut out = Vec::new();
        if start >= end || limit == 0 {
            return out;
        }
        // Bounded above, so RocksDB skips tables and blocks past `end` instead of reading the
        // first key beyond the range.
        let mut read = rocksdb::ReadOptions::default();
        read.set_iterate_upper_bound(end.to_vec());
        for item in self.db.iterator_cf_opt(self.cf(), read, IteratorMode::From(start, Direction::Forward)) {
            let (k, v) = item.expect("rocksdb read");
            if k.as_ref() >= end || out.len() >= limit {
                break;
            }
            out.push((k.to_vec(), v.to_vec()));
        }
        out
    }
}

/// The state machine of one replica.
pub struct StateMachineStore {
    view: StateView,
    snapshot_dir: PathBuf,
    applied: Option<LogId<NodeId>>,
    membership: Membership,
    snapshot_seq: u64,
    role: Role,
}

impl StateMachineStore {
    pub(crate) async fn new(
        db: Arc<DB>,
        snapshot_dir: PathBuf,
        role: Role,
    ) -> Result<StateMachineStore, StorageError<NodeId>> {
        std::fs::create_dir_all(&snapshot_dir).map_err(|e| StorageIOError::write(&e))?;
        let view = StateView { db, locks: Arc::default() };
        snapshot::recover(&view.db, &view.locks, &snapshot_dir)?;
        let applied = match view.get(KEY_APPLIED) {
            Some(b) => bincode::deserialize(&b).map_err(|e| StorageIOError::read_state_machine(&e))?,
            None => None,
        };
        let membership = match view.get(KEY_MEMBERSHIP) {
            Some(b) => bincode::deserialize(&b).map_err(|e| StorageIOError::read_state_machine(&e))?,
            None => Membership::default(),
        };
        Ok(StateMachineStore { view, snapshot_dir, applied, membership, snapshot_seq: 0, role })
    }

    /// A read-only view of the committed state.
    pub fn view(&self) -> StateView {
        self.view.clone()
    }

    fn write_state(&self, writes: WriteSet, sync: bool) -> Result<(), StorageError<NodeId>> {
        let cf = self.view.cf();
        let mut b = WriteBatch::default();
        for (k, v) in writes {
            match v {
                Some(v) => b.put_cf(cf, k, v),
                None => b.delete_cf(cf, k),
            }
        }
        self.put_raft_meta(&mut b)?;
        let mut o = WriteOptions::default();
        o.set_sync(sync);
        self.view.db.write_opt(b, &o).map_err(|e| StorageIOError::write_state_machine(&e).into())
    }

    /// Adds the applied log id and membership to `b`, so they are written with the state.
    fn put_raft_meta(&self, b: &mut WriteBatch) -> Result<(), StorageError<NodeId>> {
        let cf = self.view.cf();
        b.put_cf(
            cf,
            KEY_APPLIED,
            bincode::serialize(&self.applied).map_err(|e| StorageIOError::write_state_machine(&e))?,
        );
        b.put_cf(
            cf,
            KEY_MEMBERSHIP,
            bincode::serialize(&self.membership).map_err(|e| StorageIOError::write_state_machine(&e))?,
        );
        Ok(())
    }
}

/// Builds snapshots from a consistent RocksDB snapshot of the state column family.
pub struct SnapshotBuilder {
    view: StateView,
    snapshot_dir: PathBuf,
    seq: u64,
}

impl RaftSnapshotBuilder<TypeConfig> for SnapshotBuilder {
    async fn build_snapshot(&mut self) -> Result<Snapshot<TypeConfig>, StorageError<NodeId>> {
        let (view, dir, seq) = (self.view.clone(), self.snapshot_dir.clone(), self.seq);
        let (meta, file, len) =
            tokio::task::spawn_blocking(move || snapshot::build(&view.db, &view.locks, &dir, seq, &|_, _| {}))
                .await
                .map_err(|e| StorageIOError::write_snapshot(None, &e))??;
        tracing::info!(index = meta.last_log_id.map(|l| l.index).unwrap_or(0), bytes = len, "snapshot built");
        Ok(Snapshot { meta, snapshot: Box::new(SnapshotFile::published(file)) })
    }
}

impl RaftStateMachine<TypeConfig> for StateMachineStore {
    type SnapshotBuilder = SnapshotBuilder;

    async fn applied_state(&mut self) -> Result<(Option<LogId<NodeId>>, Membership), StorageError<NodeId>> {
        Ok((self.applied, self.membership.clone()))
    }

    async fn apply<I>(&mut self, entries: I) -> Result<Vec<Vec<medmesh_state::CommandResult>>, StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let view = self.view.clone();
        let mut tx = Tx::new(&view);
        let mut replies = Vec::new();
        for entry in entries {
            self.applied = Some(entry.log_id);
            match entry.payload {
                EntryPayload::Blank => replies.push(Vec::new()),
                EntryPayload::Membership(m) => {
                    self.membership = StoredMembership::new(Some(entry.log_id), m);
                    replies.push(Vec::new());
                }
                EntryPayload::Normal(batch) => {
                    let (results, writes) = apply_batch(&tx, &batch, self.role);
                    tx.merge(writes);
                    replies.push(results);
                }
            }
        }
        let writes = tx.into_writes();
        self.write_state(writes, false)?;
        Ok(replies)
    }

    async fn get_snapshot_builder(&mut self) -> Self::SnapshotBuilder {
        self.snapshot_seq += 1;
        SnapshotBuilder { view: self.view.clone(), snapshot_dir: self.snapshot_dir.clone(), seq: self.snapshot_seq }
    }

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<SnapshotFile>, StorageError<NodeId>> {
        let f = SnapshotFile::receive(&self.snapshot_dir).map_err(|e| StorageIOError::write_snapshot(None, &e))?;
        Ok(Box::new(f))
    }

    async fn install_snapshot(&mut self, meta: &Meta, snapshot: Box<SnapshotFile>) -> Result<(), StorageError<NodeId>> {
        if meta.last_log_id <= self.applied {
            tracing::warn!(snapshot = ?meta.last_log_id, applied = ?self.applied, "ignoring a snapshot older than applied state");
            return Ok(());
        }
        let (file, temp) = snapshot.into_std().await;
        let (view, dir, m) = (self.view.clone(), self.snapshot_dir.clone(), meta.clone());
        tokio::task::spawn_blocking(move || {
            snapshot::install(&view.db, &view.locks, &dir, &m, file, temp, &|_| Ok(()))
        })
        .await
        .map_err(|e| StorageIOError::write_snapshot(Some(meta.signature()), &e))??;
        self.applied = meta.last_log_id;
        self.membership = meta.last_membership.clone();
        tracing::info!(index = meta.last_log_id.map(|l| l.index).unwrap_or(0), "snapshot installed");
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError<NodeId>> {
        let dir = self.snapshot_dir.clone();
        let current = tokio::task::spawn_blocking(move || snapshot::current(&dir))
            .await
            .map_err(|e| StorageIOError::read_snapshot(None, &e))?
            .map_err(|e| StorageIOError::read_snapshot(None, &e))?;
        Ok(current.map(|(meta, file)| Snapshot { meta, snapshot: Box::new(SnapshotFile::published(file)) }))
    }
}
