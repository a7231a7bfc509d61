//! The state machine in RocksDB: applies batches through the pure [`medmesh_state`] apply and
//! writes each apply call's changes, applied log id and membership in one `WriteBatch`.

use std::io::{Cursor, Write};
use std::path::PathBuf;
use std::sync::Arc;

use medmesh_state::{apply_batch, KvRead, Role, Tx, WriteSet};
use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{
    Entry, EntryPayload, LogId, OptionalSend, RaftSnapshotBuilder, SnapshotMeta, StorageError, StorageIOError,
    StoredMembership,
};
use rocksdb::{Direction, IteratorMode, WriteBatch, WriteOptions, DB};
use serde::{Deserialize, Serialize};

use crate::{NodeId, TypeConfig, CF_SM};

const KEY_APPLIED: &[u8] = b"~raft/applied";
const KEY_MEMBERSHIP: &[u8] = b"~raft/membership";
const SNAPSHOT_FILE: &str = "current.bin";

type Membership = StoredMembership<NodeId, openraft::BasicNode>;
type Meta = SnapshotMeta<NodeId, openraft::BasicNode>;

/// A snapshot as stored on disk.
#[derive(Serialize, Deserialize)]
struct StoredSnapshot {
    meta: Meta,
    data: Vec<u8>,
}

/// Read-only view of the committed state, for queries.
#[derive(Clone)]
pub struct StateView {
    db: Arc<DB>,
}

impl StateView {
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
        for item in self.db.iterator_cf(self.cf(), IteratorMode::From(start, Direction::Forward)) {
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
        let view = StateView { db };
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

    fn snapshot_path(&self) -> PathBuf {
        self.snapshot_dir.join(SNAPSHOT_FILE)
    }

    fn save_snapshot_file(&self, s: &StoredSnapshot) -> Result<(), StorageError<NodeId>> {
        let tmp = self.snapshot_dir.join("current.tmp");
        let bytes = bincode::serialize(s).map_err(|e| StorageIOError::write_snapshot(Some(s.meta.signature()), &e))?;
        let mut f =
            std::fs::File::create(&tmp).map_err(|e| StorageIOError::write_snapshot(Some(s.meta.signature()), &e))?;
        f.write_all(&bytes)
            .and_then(|_| f.sync_all())
            .map_err(|e| StorageIOError::write_snapshot(Some(s.meta.signature()), &e))?;
        std::fs::rename(&tmp, self.snapshot_path())
            .map_err(|e| StorageIOError::write_snapshot(Some(s.meta.signature()), &e))?;
        if let Ok(dir) = std::fs::File::open(&self.snapshot_dir) {
            let _ = dir.sync_all();
        }
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
        let db = self.view.db.clone();
        // State writes share the WAL with the log but are not synced on their own: sync now, so
        // the log this snapshot lets openraft purge is never the only copy of applied state.
        db.flush_wal(true).map_err(|e| StorageIOError::write_state_machine(&e))?;
        let cf = self.view.cf();
        let snap = db.snapshot();
        let mut pairs: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
        for item in snap.iterator_cf(cf, IteratorMode::Start) {
            let (k, v) = item.map_err(|e| StorageIOError::read_state_machine(&e))?;
            pairs.push((k.to_vec(), v.to_vec()));
        }
        let find = |key: &[u8]| pairs.iter().find(|(k, _)| k.as_slice() == key).map(|(_, v)| v.clone());
        let applied: Option<LogId<NodeId>> = match find(KEY_APPLIED) {
            Some(b) => bincode::deserialize(&b).map_err(|e| StorageIOError::read_state_machine(&e))?,
            None => None,
        };
        let membership: Membership = match find(KEY_MEMBERSHIP) {
            Some(b) => bincode::deserialize(&b).map_err(|e| StorageIOError::read_state_machine(&e))?,
            None => Membership::default(),
        };
        let data = bincode::serialize(&pairs).map_err(|e| StorageIOError::write_state_machine(&e))?;
        self.seq += 1;
        let snapshot_id = match applied {
            Some(l) => format!("{}-{}-{}", l.leader_id, l.index, self.seq),
            None => format!("0-0-{}", self.seq),
        };
        let meta = Meta { last_log_id: applied, last_membership: membership, snapshot_id };
        let stored = StoredSnapshot { meta: meta.clone(), data: data.clone() };
        let tmp = StateMachineStore {
            view: self.view.clone(),
            snapshot_dir: self.snapshot_dir.clone(),
            applied,
            membership: meta.last_membership.clone(),
            snapshot_seq: 0,
            role: Role::Province,
        };
        tmp.save_snapshot_file(&stored)?;
        tracing::info!(index = applied.map(|l| l.index).unwrap_or(0), bytes = data.len(), "snapshot built");
        Ok(Snapshot { meta, snapshot: Box::new(Cursor::new(data)) })
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

    async fn begin_receiving_snapshot(&mut self) -> Result<Box<Cursor<Vec<u8>>>, StorageError<NodeId>> {
        Ok(Box::new(Cursor::new(Vec::new())))
    }

    async fn install_snapshot(
        &mut self,
        meta: &Meta,
        snapshot: Box<Cursor<Vec<u8>>>,
    ) -> Result<(), StorageError<NodeId>> {
        if meta.last_log_id <= self.applied {
            tracing::warn!(snapshot = ?meta.last_log_id, applied = ?self.applied, "ignoring a snapshot older than applied state");
            return Ok(());
        }
        let data = snapshot.into_inner();
        let pairs: Vec<(Vec<u8>, Vec<u8>)> =
            bincode::deserialize(&data).map_err(|e| StorageIOError::read_snapshot(Some(meta.signature()), &e))?;
        let cf = self.view.cf();
        let mut b = WriteBatch::default();
        b.delete_range_cf(cf, [0u8].as_slice(), [0xffu8; 8].as_slice());
        for (k, v) in &pairs {
            b.put_cf(cf, k, v);
        }
        self.applied = meta.last_log_id;
        self.membership = meta.last_membership.clone();
        self.put_raft_meta(&mut b)?;
        let mut o = WriteOptions::default();
        o.set_sync(true);
        self.view.db.write_opt(b, &o).map_err(|e| StorageIOError::write_state_machine(&e))?;
        self.save_snapshot_file(&StoredSnapshot { meta: meta.clone(), data })?;
        tracing::info!(index = meta.last_log_id.map(|l| l.index).unwrap_or(0), "snapshot installed");
        Ok(())
    }

    async fn get_current_snapshot(&mut self) -> Result<Option<Snapshot<TypeConfig>>, StorageError<NodeId>> {
        let path = self.snapshot_path();
        let bytes = match std::fs::read(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(StorageIOError::read_snapshot(None, &e).into()),
        };
        let s: StoredSnapshot = bincode::deserialize(&bytes).map_err(|e| StorageIOError::read_snapshot(None, &e))?;
        Ok(Some(Snapshot { meta: s.meta, snapshot: Box::new(Cursor::new(s.data)) }))
    }
}
