//! The Raft log in RocksDB, with synced appends.

use std::fmt::Debug;
use std::ops::{Bound, RangeBounds};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use openraft::storage::{LogFlushed, LogState, RaftLogStorage};
use openraft::{Entry, LogId, OptionalSend, RaftLogId, RaftLogReader, StorageError, StorageIOError, Vote};
use rocksdb::{Direction, IteratorMode, WriteBatch, WriteOptions, DB};
use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::{NodeId, TypeConfig, CF_LOG, CF_META};

const KEY_VOTE: &[u8] = b"vote";
const KEY_COMMITTED: &[u8] = b"committed";
const KEY_PURGED: &[u8] = b"last_purged";

/// The log store of one replica. Cloning shares the database.
#[derive(Clone)]
pub struct LogStore {
    db: Arc<DB>,
    appended: LogVolume,
}

/// Bytes of log entries a replica's [`LogStore`] has appended since it opened (a shared
/// counter: cloning shares it). What paces snapshots ([`crate::snapshot_due`]).
#[derive(Clone, Default, Debug)]
pub struct LogVolume(Arc<AtomicU64>);

impl LogVolume {
    /// Bytes appended so far.
    pub fn bytes(&self) -> u64 {
        self.0.load(Ordering::Relaxed)
    }
}

fn idx_key(index: u64) -> [u8; 8] {
    index.to_be_bytes()
}

fn enc<T: Serialize>(v: &T) -> Result<Vec<u8>, StorageError<NodeId>> {
    bincode::serialize(v).map_err(|e| StorageIOError::write(&e).into())
}

fn dec<T: DeserializeOwned>(b: &[u8]) -> Result<T, StorageError<NodeId>> {
    bincode::deserialize(b).map_err(|e| StorageIOError::read(&e).into())
}

fn synced() -> WriteOptions {
    let mut w = WriteOptions::default();
    w.set_sync(true);
    w
}

impl LogStore {
    pub(crate) fn new(db: Arc<DB>) -> LogStore {
        LogStore { db, appended: LogVolume::default() }
    }

    /// The counter of bytes this store appends (shared: it keeps counting once the store is
    /// handed to Raft).
    pub fn volume(&self) -> LogVolume {
        self.appended.clone()
    }

    fn cf_log(&self) -> &rocksdb::ColumnFamily {
        self.db.cf_handle(CF_LOG).expect("log column family exists")
    }

    fn cf_meta(&self) -> &rocksdb::ColumnFamily {
        self.db.cf_handle(CF_META).expect("meta column family exists")
    }

    fn get_meta<T: DeserializeOwned>(&self, key: &[u8]) -> Result<Option<T>, StorageError<NodeId>> {
        match self.db.get_cf(self.cf_meta(), key).map_err(|e| StorageIOError::read(&e))? {
            Some(b) => Ok(Some(dec(&b)?)),
            None => Ok(None),
        }
    }

    /// Writes a batch with fsync, off the async threads.
    async fn write_synced(&self, batch: WriteBatch) -> Result<(), StorageError<NodeId>> {
        let db = self.db.clone();
        tokio::task::spawn_blocking(move || db.write_opt(batch, &synced()))
            .await
            .map_err(|e| StorageIOError::write(&e))?
            .map_err(|e| StorageIOError::write(&e).into())
    }

    fn last_entry(&self) -> Result<Option<Entry<TypeConfig>>, StorageError<NodeId>> {
        let mut it = self.db.iterator_cf(self.cf_log(), IteratorMode::End);
        match it.next() {
            Some(Ok((_, v))) => Ok(Some(dec(&v)?)),
            Some(Err(e)) => Err(StorageIOError::read(&e).into()),
            None => Ok(None),
        }
    }
}

impl RaftLogReader<TypeConfig> for LogStore {
    async fn try_get_log_entries<RB: RangeBounds<u64> + Clone + Debug + OptionalSend>(
        &mut self,
        range: RB,
    ) -> Result<Vec<Entry<TypeConfig>>, StorageError<NodeId>> {
        let start = match range.start_bound() {
            Bound::Included(i) => *i,
            Bound::Excluded(i) => *i + 1,
            Bound::Unbounded => 0,
        };
        let mut out = Vec::new();
        let it = self.db.iterator_cf(self.cf_log(), IteratorMode::From(&idx_key(start), Direction::Forward));
        for item in it {
            let (k, v) = item.map_err(|e| StorageIOError::read(&e))?;
            let idx = u64::from_be_bytes(
                k.as_ref().try_into().map_err(|_| StorageIOError::read(&std::io::Error::other("bad log key")))?,
            );
            if !range.contains(&idx) {
                break;
            }
            out.push(dec(&v)?);
        }
        Ok(out)
    }
}

impl RaftLogStorage<TypeConfig> for LogStore {
    type LogReader = LogStore;

    async fn get_log_state(&mut self) -> Result<LogState<TypeConfig>, StorageError<NodeId>> {
        let last_purged: Option<LogId<NodeId>> = self.get_meta(KEY_PURGED)?;
        let last = self.last_entry()?.map(|e| *e.get_log_id()).or(last_purged);
        Ok(LogState { last_purged_log_id: last_purged, last_log_id: last })
    }

    async fn get_log_reader(&mut self) -> Self::LogReader {
        self.clone()
    }

    async fn save_vote(&mut self, vote: &Vote<NodeId>) -> Result<(), StorageError<NodeId>> {
        let mut b = WriteBatch::default();
        b.put_cf(self.cf_meta(), KEY_VOTE, enc(vote)?);
        self.write_synced(b).await
    }

    async fn read_vote(&mut self) -> Result<Option<Vote<NodeId>>, StorageError<NodeId>> {
        self.get_meta(KEY_VOTE)
    }

    async fn save_committed(&mut self, committed: Option<LogId<NodeId>>) -> Result<(), StorageError<NodeId>> {
        // Not synced: committed is an optimisation for restart; it is re-learned from the leader.
        self.db.put_cf(self.cf_meta(), KEY_COMMITTED, enc(&committed)?).map_err(|e| StorageIOError::write(&e).into())
    }

    async fn read_committed(&mut self) -> Result<Option<LogId<NodeId>>, StorageError<NodeId>> {
        Ok(self.get_meta::<Option<LogId<NodeId>>>(KEY_COMMITTED)?.flatten())
    }

    async fn append<I>(&mut self, entries: I, callback: LogFlushed<TypeConfig>) -> Result<(), StorageError<NodeId>>
    where
        I: IntoIterator<Item = Entry<TypeConfig>> + OptionalSend,
        I::IntoIter: OptionalSend,
    {
        let mut b = WriteBatch::default();
        let mut bytes = 0;
        for e in entries {
            let v = enc(&e)?;
            bytes += v.len() as u64;
            b.put_cf(self.cf_log(), idx_key(e.get_log_id().index), v);
        }
        self.appended.0.fetch_add(bytes, Ordering::Relaxed);
        // Only after the WAL is fsync'd are the entries reported flushed.
        let res = self.write_synced(b).await;
        match &res {
            Ok(()) => callback.log_io_completed(Ok(())),
            Err(e) => callback.log_io_completed(Err(std::io::Error::other(e.to_string()))),
        }
        res
    }

    async fn truncate(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        let mut b = WriteBatch::default();
        b.delete_range_cf(self.cf_log(), idx_key(log_id.index), idx_key(u64::MAX));
        b.delete_cf(self.cf_log(), idx_key(u64::MAX));
        self.write_synced(b).await
    }

    async fn purge(&mut self, log_id: LogId<NodeId>) -> Result<(), StorageError<NodeId>> {
        let mut b = WriteBatch::default();
        b.put_cf(self.cf_meta(), KEY_PURGED, enc(&log_id)?);
        b.delete_range_cf(self.cf_log(), idx_key(0), idx_key(log_id.index + 1));
        self.write_synced(b).await
    }
}
