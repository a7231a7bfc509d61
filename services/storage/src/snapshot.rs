//! Snapshot files: building one from a RocksDB snapshot of the state column family,
//! installing a received one, and the file format both use.
//!
//! A snapshot lives on disk from start to end; neither side holds the column family in memory.
//!
//! **Format** (version [`FORMAT_VERSION`]), the bytes openraft sends to a follower as is:
//!
//! ```text
//! header: magic "MMSNAP\r\n" | format u32 BE | meta length u32 BE | meta (bincode SnapshotMeta)
//! body, one LZ4 frame (https://github.com/lz4/lz4/blob/dev/doc/lz4_Frame_format.md) of:
//!   { 0x01 | key length u32 BE | value length u32 BE | key | value }*   in key order
//!   0x00 | record count u64 BE | SHA-256 of the header and the body's bytes before it (32 bytes)
//! ```
//!
//! The header stays uncompressed, so a snapshot's meta is read without decompressing it; the
//! body is compressed because the state is bincode of repeated shapes and the snapshot is the
//! largest file a replica keeps and sends (BENCHMARKS.md, "A province at a million claims").
//! The digest covers the uncompressed bytes: what is checked is what gets installed. LZ4 by
//! `lz4_flex`: pure Rust (its safe encoder and decoder), streaming, and the frame format any
//! `lz4` tool reads.
//!
//! **Files** in the snapshot directory:
//! - `current.bin`: the newest published snapshot (replaced by `rename`, never written in place);
//! - `build-*.tmp`, `recv-*.tmp`: one uniquely named temporary file per build and per received
//!   snapshot (created with `O_EXCL`, so no two writers ever share one); removed when dropped
//!   and, after a crash, when the store next opens;
//! - `installing.bin`: a received, verified snapshot while it is written into RocksDB.
//!
//! **Install and crashes.** The received file is fsync'd and verified (digest, count, meta)
//! *before* RocksDB is touched, then renamed to `installing.bin`. The state is then replaced in
//! bounded `WriteBatch`es: the first batch (synced) clears the state column family and sets an
//! `installing` marker; the last batch (synced) writes the applied log id and membership and
//! clears the marker. A store that opens with the marker set replays the install from
//! `installing.bin` before openraft reads anything, so a crash never exposes a half-installed
//! state to Raft. (One atomic `WriteBatch` would need the whole snapshot in memory; a staging
//! column family would need a second full copy on disk and a swap RocksDB does not offer.)
//! Readers of the [`StateView`](crate::StateView) on that replica may see the state
//! half-replaced while an install runs; queries are answered by the leader, which never
//! installs.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Mutex, RwLock};
use std::task::{Context, Poll};

use lz4_flex::frame::{FrameDecoder, FrameEncoder};
use openraft::{LogId, StorageError, StorageIOError};
use rocksdb::{IteratorMode, WriteBatch, WriteOptions, DB};
use sha2::{Digest, Sha256};
use tempfile::TempPath;
use tokio::io::{AsyncRead, AsyncSeek, AsyncWrite, ReadBuf};

use crate::state_machine::{Membership, Meta, KEY_APPLIED, KEY_INSTALLING, KEY_MEMBERSHIP};
use crate::{NodeId, CF_SM, FORMAT_VERSION};

/// The published snapshot.
pub(crate) const CURRENT: &str = "current.bin";
/// A verified snapshot being written into RocksDB.
pub(crate) const INSTALLING: &str = "installing.bin";
const TMP_SUFFIX: &str = ".tmp";
const MAGIC: &[u8; 8] = b"MMSNAP\r\n";
const TAG_END: u8 = 0;
const TAG_RECORD: u8 = 1;
/// Largest meta or record field accepted when reading (a corrupt length must not allocate
/// gigabytes).
const MAX_FIELD: usize = 256 << 20;
/// Records are written into RocksDB in batches of about this many bytes while installing.
pub(crate) const INSTALL_BATCH_BYTES: usize = 4 << 20;

/// Locks shared by a state machine and its snapshot builders.
#[derive(Default)]
pub(crate) struct SnapshotLocks {
    /// Held (write) while an install replaces the state, and (read) while a builder takes its
    /// RocksDB snapshot: a snapshot never sees a half-installed state.
    install: RwLock<()>,
    /// Serialises replacing `current.bin`, so an older build never replaces a newer install.
    publish: Mutex<()>,
}

/// The data of a snapshot: a file. openraft reads it in chunks to send it, and writes received
/// chunks into one from [`begin_receiving_snapshot`](openraft::storage::RaftStateMachine).
/// A temporary file is removed when its `SnapshotFile` is dropped without being installed.
pub struct SnapshotFile {
    file: tokio::fs::File,
    temp: Option<TempPath>,
}

impl SnapshotFile {
    /// A published snapshot, for reading.
    pub(crate) fn published(file: File) -> SnapshotFile {
        SnapshotFile { file: tokio::fs::File::from_std(file), temp: None }
    }

    /// A new temporary file in `dir` for receiving a snapshot.
    pub(crate) fn receive(dir: &Path) -> io::Result<SnapshotFile> {
        let (file, temp) = temp_file(dir, "recv-")?;
        Ok(SnapshotFile { file: tokio::fs::File::from_std(file), temp: Some(temp) })
    }

    /// The file, with every write completed, and its temporary path if it is one.
    pub(crate) async fn into_std(self) -> (File, Option<TempPath>) {
        (self.file.into_std().await, self.temp)
    }
}

impl AsyncRead for SnapshotFile {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().file).poll_read(cx, buf)
    }
}

impl AsyncWrite for SnapshotFile {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().file).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().file).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().file).poll_shutdown(cx)
    }
}

impl AsyncSeek for SnapshotFile {
    fn start_seek(self: Pin<&mut Self>, position: SeekFrom) -> io::Result<()> {
        Pin::new(&mut self.get_mut().file).start_seek(position)
    }

    fn poll_complete(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<u64>> {
        Pin::new(&mut self.get_mut().file).poll_complete(cx)
    }
}

/// A new uniquely named temporary file in `dir` (`O_EXCL`; the name ends in `.tmp`).
fn temp_file(dir: &Path, prefix: &str) -> io::Result<(File, TempPath)> {
    Ok(tempfile::Builder::new().prefix(prefix).suffix(TMP_SUFFIX).tempfile_in(dir)?.into_parts())
}

fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

fn invalid(msg: String) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg)
}

/// Hashes every byte that passes through.
struct Hashing<T> {
    inner: T,
    hash: Sha256,
    bytes: u64,
}

impl<T> Hashing<T> {
    fn new(inner: T) -> Hashing<T> {
        Hashing { inner, hash: Sha256::new(), bytes: 0 }
    }
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

impl<R: Read> Read for Hashing<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hash.update(&buf[..n]);
        self.bytes += n as u64;
        Ok(n)
    }
}

fn write_len(w: &mut impl Write, len: usize) -> io::Result<()> {
    let len = u32::try_from(len).map_err(|_| invalid(format!("snapshot field of {len} bytes is too long")))?;
    w.write_all(&len.to_be_bytes())
}

fn read_u32(r: &mut impl Read) -> io::Result<u32> {
    let mut b = [0u8; 4];
    r.read_exact(&mut b)?;
    Ok(u32::from_be_bytes(b))
}

fn read_field(r: &mut impl Read) -> io::Result<Vec<u8>> {
    let len = read_u32(r)? as usize;
    if len > MAX_FIELD {
        return Err(invalid(format!("snapshot field of {len} bytes: corrupt")));
    }
    let mut v = vec![0u8; len];
    r.read_exact(&mut v)?;
    Ok(v)
}

/// Writes a snapshot file record by record.
pub(crate) struct SnapshotWriter<W: Write> {
    out: Hashing<FrameEncoder<BufWriter<W>>>,
    count: u64,
}

/// The uncompressed header of a snapshot of `meta`.
fn header(meta: &Meta) -> io::Result<Vec<u8>> {
    let m = bincode::serialize(meta).map_err(io::Error::other)?;
    let mut h = Vec::with_capacity(MAGIC.len() + 8 + m.len());
    h.extend_from_slice(MAGIC);
    h.extend_from_slice(&FORMAT_VERSION.to_be_bytes());
    write_len(&mut h, m.len())?;
    h.extend_from_slice(&m);
    Ok(h)
}

impl<W: Write> SnapshotWriter<W> {
    /// Starts a snapshot of `meta`.
    pub(crate) fn new(w: W, meta: &Meta) -> io::Result<SnapshotWriter<W>> {
        let mut file = BufWriter::with_capacity(1 << 16, w);
        let h = header(meta)?;
        file.write_all(&h)?;
        let mut out = Hashing::new(FrameEncoder::new(file));
        out.hash.update(&h);
        Ok(SnapshotWriter { out, count: 0 })
    }

    /// Appends one record; records come in key order.
    pub(crate) fn record(&mut self, key: &[u8], value: &[u8]) -> io::Result<()> {
        self.out.write_all(&[TAG_RECORD])?;
        write_len(&mut self.out, key.len())?;
        write_len(&mut self.out, value.len())?;
        self.out.write_all(key)?;
        self.out.write_all(value)?;
        self.count += 1;
        Ok(())
    }

    /// Ends the snapshot; returns the writer.
    pub(crate) fn finish(mut self) -> io::Result<W> {
        self.out.write_all(&[TAG_END])?;
        self.out.write_all(&self.count.to_be_bytes())?;
        let digest = self.out.hash.finalize();
        self.out.inner.write_all(&digest)?;
        let file = self.out.inner.finish().map_err(io::Error::other)?;
        file.into_inner().map_err(|e| e.into_error())
    }
}

/// Reads a snapshot file record by record; the digest is checked when the end is reached, so a
/// caller must read to the end (see [`verify`]) before trusting any record.
pub(crate) struct SnapshotReader<R: Read> {
    inp: Hashing<FrameDecoder<BufReader<R>>>,
    /// The snapshot's meta, from the header.
    pub(crate) meta: Meta,
    count: u64,
    done: bool,
}

impl<R: Read> SnapshotReader<R> {
    /// Reads the header.
    pub(crate) fn new(r: R) -> io::Result<SnapshotReader<R>> {
        let mut file = Hashing::new(BufReader::with_capacity(1 << 16, r));
        let mut magic = [0u8; 8];
        file.read_exact(&mut magic)?;
        if &magic != MAGIC {
            return Err(invalid("not a medmesh snapshot".into()));
        }
        let version = read_u32(&mut file)?;
        if version != FORMAT_VERSION {
            return Err(invalid(format!("snapshot has format {version}, this build reads format {FORMAT_VERSION}")));
        }
        let m = read_field(&mut file)?;
        let meta = bincode::deserialize(&m).map_err(|e| invalid(format!("snapshot meta: {e}")))?;
        let Hashing { inner, hash, bytes } = file;
        let inp = Hashing { inner: FrameDecoder::new(inner), hash, bytes };
        Ok(SnapshotReader { inp, meta, count: 0, done: false })
    }

    /// The next record, or `None` at the verified end. Every error names the snapshot corrupt
    /// or truncated, whether the digest, a length or the LZ4 frame was found wrong.
    pub(crate) fn next_record(&mut self) -> io::Result<Option<(Vec<u8>, Vec<u8>)>> {
        self.read_record().map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => invalid("snapshot truncated: corrupt".into()),
            io::ErrorKind::InvalidData if e.to_string().contains("corrupt") => e,
            _ => invalid(format!("snapshot body corrupt: {e}")),
        })
    }

    fn read_record(&mut self) -> io::Result<Option<(Vec<u8>, Vec<u8>)>> {
        if self.done {
            return Ok(None);
        }
        let mut tag = [0u8; 1];
        self.inp.read_exact(&mut tag)?;
        match tag[0] {
            TAG_RECORD => {
                let klen = read_u32(&mut self.inp)? as usize;
                let vlen = read_u32(&mut self.inp)? as usize;
                if klen > MAX_FIELD || vlen > MAX_FIELD {
                    return Err(invalid("snapshot record length: corrupt".into()));
                }
                let mut k = vec![0u8; klen];
                self.inp.read_exact(&mut k)?;
                let mut v = vec![0u8; vlen];
                self.inp.read_exact(&mut v)?;
                self.count += 1;
                Ok(Some((k, v)))
            }
            TAG_END => {
                let mut c = [0u8; 8];
                self.inp.read_exact(&mut c)?;
                let expected = std::mem::take(&mut self.inp.hash).finalize();
                let mut digest = [0u8; 32];
                self.inp.inner.read_exact(&mut digest)?;
                if digest.as_slice() != expected.as_slice() {
                    return Err(invalid("snapshot digest mismatch: corrupt or truncated".into()));
                }
                if u64::from_be_bytes(c) != self.count {
                    return Err(invalid("snapshot record count mismatch".into()));
                }
                let mut extra = [0u8; 1];
                if self.inp.inner.read(&mut extra)? != 0 {
                    return Err(invalid("bytes after the end of the snapshot".into()));
                }
                self.done = true;
                Ok(None)
            }
            t => Err(invalid(format!("snapshot record tag {t}: corrupt"))),
        }
    }
}

/// Reads `file` from its start to its end, checking format, digest and record count; returns
/// its meta and record count.
pub(crate) fn verify(file: &mut File) -> io::Result<(Meta, u64)> {
    file.seek(SeekFrom::Start(0))?;
    let mut r = SnapshotReader::new(&mut *file)?;
    while r.next_record()?.is_some() {}
    let out = (r.meta.clone(), r.count);
    drop(r);
    file.seek(SeekFrom::Start(0))?;
    Ok(out)
}

/// The meta in the header of the snapshot at `path`, `None` if there is no file.
pub(crate) fn read_meta(path: &Path) -> io::Result<Option<Meta>> {
    match File::open(path) {
        Ok(f) => Ok(Some(SnapshotReader::new(f)?.meta)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Makes the snapshot `meta` (renamed into place by `rename`) the current one of `dir`, unless
/// the current one is newer; returns whether it did.
fn publish(
    locks: &SnapshotLocks,
    dir: &Path,
    meta: &Meta,
    rename: impl FnOnce(&Path) -> io::Result<()>,
) -> io::Result<bool> {
    let _g = locks.publish.lock().unwrap_or_else(|p| p.into_inner());
    let current = dir.join(CURRENT);
    match read_meta(&current) {
        Ok(Some(cur)) if cur.last_log_id > meta.last_log_id => return Ok(false),
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "replacing an unreadable current snapshot"),
    }
    rename(&current)?;
    sync_dir(dir)?;
    Ok(true)
}

/// The current snapshot of `dir`, opened for reading at its start.
pub(crate) fn current(dir: &Path) -> io::Result<Option<(Meta, File)>> {
    let mut f = match File::open(dir.join(CURRENT)) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let meta = SnapshotReader::new(&mut f)?.meta;
    f.seek(SeekFrom::Start(0))?;
    Ok(Some((meta, f)))
}

/// A point in building a snapshot, reported to the observer of [`build`] (a test seam).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BuildStep {
    /// The RocksDB snapshot was taken.
    Snapshot,
    /// The WAL was fsync'd.
    WalSynced,
}

fn sm_err(e: &(impl std::error::Error + 'static)) -> StorageError<NodeId> {
    StorageIOError::read_state_machine(e).into()
}

/// Builds a snapshot of the state into a new file of `dir`, publishes it as current (unless a
/// newer one is) and returns its meta, the open file (at its start) and its length on disk.
pub(crate) fn build(
    db: &DB,
    locks: &SnapshotLocks,
    dir: &Path,
    seq: u64,
    observe: &dyn Fn(BuildStep, &DB),
) -> Result<(Meta, File, u64), StorageError<NodeId>> {
    let cf = db.cf_handle(CF_SM).expect("sm column family exists");
    let snap = {
        let _no_install = locks.install.read().unwrap_or_else(|p| p.into_inner());
        db.snapshot()
    };
    observe(BuildStep::Snapshot, db);
    // Sync the WAL *after* taking the snapshot: every write the snapshot holds was in the WAL
    // before it was taken, so once this returns all of it is on disk, and the log this snapshot
    // lets openraft purge is never the only durable copy of the applied state. (Syncing first
    // would leave writes applied between the sync and the snapshot unsynced.) State writes
    // share the WAL with the log but are not synced on their own.
    db.flush_wal(true).map_err(|e| sm_err(&e))?;
    observe(BuildStep::WalSynced, db);

    if snap.get_cf(cf, KEY_INSTALLING).map_err(|e| sm_err(&e))?.is_some() {
        return Err(sm_err(&io::Error::other("state is half-installed; no snapshot of it")));
    }
    let applied: Option<LogId<NodeId>> = match snap.get_cf(cf, KEY_APPLIED).map_err(|e| sm_err(&e))? {
        Some(b) => bincode::deserialize(&b).map_err(|e| sm_err(&e))?,
        None => None,
    };
    let membership: Membership = match snap.get_cf(cf, KEY_MEMBERSHIP).map_err(|e| sm_err(&e))? {
        Some(b) => bincode::deserialize(&b).map_err(|e| sm_err(&e))?,
        None => Membership::default(),
    };
    let snapshot_id = match applied {
        Some(l) => format!("{}-{}-{}", l.leader_id, l.index, seq),
        None => format!("0-0-{seq}"),
    };
    let meta = Meta { last_log_id: applied, last_membership: membership, snapshot_id };
    let werr =
        |e: &io::Error| -> StorageError<NodeId> { StorageIOError::write_snapshot(Some(meta.signature()), e).into() };

    let index = applied.map(|l| l.index).unwrap_or(0);
    let (file, temp) = temp_file(dir, &format!("build-{index}-{seq}-")).map_err(|e| werr(&e))?;
    let mut w = SnapshotWriter::new(&file, &meta).map_err(|e| werr(&e))?;
    for item in snap.iterator_cf(cf, IteratorMode::Start) {
        let (k, v) = item.map_err(|e| sm_err(&e))?;
        w.record(&k, &v).map_err(|e| werr(&e))?;
    }
    w.finish().map_err(|e| werr(&e))?;
    drop(snap);
    file.sync_all().map_err(|e| werr(&e))?;
    let len = file.metadata().map_err(|e| werr(&e))?.len();
    let mut file = file;
    file.seek(SeekFrom::Start(0)).map_err(|e| werr(&e))?;
    // The open file stays readable whether or not it is published (or later replaced).
    publish(locks, dir, &meta, |to| temp.persist(to).map_err(|e| e.error)).map_err(|e| werr(&e))?;
    Ok((meta, file, len))
}

/// A point in installing a snapshot, reported to the observer of [`load`] (a test seam); an
/// error returned by the observer stops the install there, as a crash would.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum InstallStep {
    /// The state column family was cleared and the marker set.
    Cleared,
    /// A batch of records was written.
    Batch,
}

/// Installs the received snapshot `meta` whose data is `file` (a temporary file when `temp` is
/// set): fsyncs and verifies it, replaces the state with it and publishes it as current.
pub(crate) fn install(
    db: &DB,
    locks: &SnapshotLocks,
    dir: &Path,
    meta: &Meta,
    mut file: File,
    temp: Option<TempPath>,
    observe: &dyn Fn(InstallStep) -> io::Result<()>,
) -> Result<(), StorageError<NodeId>> {
    let werr =
        |e: &io::Error| -> StorageError<NodeId> { StorageIOError::write_snapshot(Some(meta.signature()), e).into() };
    let rerr =
        |e: &io::Error| -> StorageError<NodeId> { StorageIOError::read_snapshot(Some(meta.signature()), e).into() };
    // A snapshot that is not a received temporary file (a published one handed over directly)
    // is copied first: what gets renamed into place must be a file this install owns.
    let (mut file, temp) = match temp {
        Some(t) => (file, t),
        None => {
            let (mut copy, t) = temp_file(dir, "recv-").map_err(|e| werr(&e))?;
            file.seek(SeekFrom::Start(0)).map_err(|e| rerr(&e))?;
            io::copy(&mut file, &mut copy).map_err(|e| werr(&e))?;
            (copy, t)
        }
    };
    file.sync_all().map_err(|e| werr(&e))?;
    let (got, count) = verify(&mut file).map_err(|e| rerr(&e))?;
    if got != *meta {
        return Err(rerr(&invalid(format!(
            "snapshot data is of snapshot {} (last log {:?}), not {} (last log {:?})",
            got.snapshot_id, got.last_log_id, meta.snapshot_id, meta.last_log_id
        ))));
    }
    let installing = dir.join(INSTALLING);
    temp.persist(&installing).map_err(|e| werr(&e.error))?;
    sync_dir(dir).map_err(|e| werr(&e))?;
    load(db, locks, &installing, observe)?;
    publish(locks, dir, meta, |to| std::fs::rename(&installing, to)).map_err(|e| werr(&e))?;
    tracing::debug!(records = count, "snapshot records installed");
    Ok(())
}

fn synced(sync: bool) -> WriteOptions {
    let mut o = WriteOptions::default();
    o.set_sync(sync);
    o
}

/// Replaces the state column family with the verified snapshot at `path`, in bounded batches
/// between a synced first batch that sets the `installing` marker and a synced last batch that
/// writes the applied log id and membership and clears it.
pub(crate) fn load(
    db: &DB,
    locks: &SnapshotLocks,
    path: &Path,
    observe: &dyn Fn(InstallStep) -> io::Result<()>,
) -> Result<(), StorageError<NodeId>> {
    let _installing = locks.install.write().unwrap_or_else(|p| p.into_inner());
    let cf = db.cf_handle(CF_SM).expect("sm column family exists");
    let file = File::open(path).map_err(|e| StorageIOError::read_snapshot(None, &e))?;
    let mut r = SnapshotReader::new(file).map_err(|e| StorageIOError::read_snapshot(None, &e))?;
    let meta = r.meta.clone();
    let werr = |e: &dyn std::error::Error| -> StorageError<NodeId> {
        StorageIOError::write_state_machine(&io::Error::other(e.to_string())).into()
    };
    let rerr =
        |e: &io::Error| -> StorageError<NodeId> { StorageIOError::read_snapshot(Some(meta.signature()), e).into() };
    let enc = |v: Result<Vec<u8>, bincode::Error>| v.map_err(|e| werr(&e));

    let mut b = WriteBatch::default();
    b.delete_range_cf(cf, [0u8].as_slice(), [0xffu8; 8].as_slice());
    b.put_cf(cf, KEY_INSTALLING, enc(bincode::serialize(&meta.snapshot_id))?);
    db.write_opt(b, &synced(true)).map_err(|e| werr(&e))?;
    observe(InstallStep::Cleared).map_err(|e| werr(&e))?;

    let mut b = WriteBatch::default();
    while let Some((k, v)) = r.next_record().map_err(|e| rerr(&e))? {
        b.put_cf(cf, k, v);
        if b.size_in_bytes() >= INSTALL_BATCH_BYTES {
            db.write_opt(std::mem::take(&mut b), &synced(false)).map_err(|e| werr(&e))?;
            observe(InstallStep::Batch).map_err(|e| werr(&e))?;
        }
    }
    b.put_cf(cf, KEY_APPLIED, enc(bincode::serialize(&meta.last_log_id))?);
    b.put_cf(cf, KEY_MEMBERSHIP, enc(bincode::serialize(&meta.last_membership))?);
    b.delete_cf(cf, KEY_INSTALLING);
    db.write_opt(b, &synced(true)).map_err(|e| werr(&e))?;
    Ok(())
}

/// Brings the snapshot directory and the state back to a consistent point after a crash:
/// removes temporary files, finishes an interrupted install (the marker is set) from
/// `installing.bin`, and publishes or drops an `installing.bin` left after its install ended.
/// Called when the store opens, before openraft reads anything.
pub(crate) fn recover(db: &DB, locks: &SnapshotLocks, dir: &Path) -> Result<(), StorageError<NodeId>> {
    let ioerr = |e: &io::Error| -> StorageError<NodeId> { StorageIOError::write_snapshot(None, e).into() };
    for entry in std::fs::read_dir(dir).map_err(|e| ioerr(&e))? {
        let path: PathBuf = entry.map_err(|e| ioerr(&e))?.path();
        if path.extension().is_some_and(|x| x == &TMP_SUFFIX[1..]) {
            std::fs::remove_file(&path).map_err(|e| ioerr(&e))?;
        }
    }
    let cf = db.cf_handle(CF_SM).expect("sm column family exists");
    let installing = dir.join(INSTALLING);
    let marker = db.get_cf(cf, KEY_INSTALLING).map_err(|e| sm_err(&e))?;
    let pending = read_meta(&installing);
    match (marker, pending) {
        (Some(_), Ok(Some(meta))) => {
            tracing::warn!(snapshot = %meta.snapshot_id, "finishing a snapshot install interrupted by a crash");
            load(db, locks, &installing, &|_| Ok(()))?;
            publish(locks, dir, &meta, |to| std::fs::rename(&installing, to)).map_err(|e| ioerr(&e))?;
        }
        (Some(_), Ok(None)) => {
            return Err(sm_err(&io::Error::other(format!(
                "a snapshot install was interrupted and {} is missing; the state is incomplete",
                installing.display()
            ))))
        }
        (Some(_), Err(e)) => return Err(StorageIOError::read_snapshot(None, &e).into()),
        (None, Ok(Some(meta))) => {
            let applied: Option<LogId<NodeId>> = match db.get_cf(cf, KEY_APPLIED).map_err(|e| sm_err(&e))? {
                Some(b) => bincode::deserialize(&b).map_err(|e| sm_err(&e))?,
                None => None,
            };
            if applied == meta.last_log_id {
                publish(locks, dir, &meta, |to| std::fs::rename(&installing, to)).map_err(|e| ioerr(&e))?;
            } else {
                std::fs::remove_file(&installing).map_err(|e| ioerr(&e))?;
            }
        }
        (None, Ok(None)) => {}
        (None, Err(_)) => std::fs::remove_file(&installing).map_err(|e| ioerr(&e))?,
    }
    Ok(())
}
