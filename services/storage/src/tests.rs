//! Snapshot tests on real RocksDB: a state many chunks large streamed through openraft-sized
//! chunks into a fresh store, a corrupt transfer refused, the RocksDB snapshot taken before the
//! WAL sync, and an install cut short by a crash finished on reopening.

use std::collections::{BTreeMap, BTreeSet};
use std::io::SeekFrom;
use std::path::Path;
use std::sync::Mutex;

use medmesh_state::KvRead;
use openraft::storage::{RaftStateMachine, Snapshot};
use openraft::{BasicNode, CommittedLeaderId, Entry, EntryPayload, LogId, RaftSnapshotBuilder};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};

use crate::snapshot::{self, BuildStep, InstallStep, SnapshotFile, SnapshotReader};
use crate::{LogStore, StateMachineStore, TypeConfig, CF_SM};

/// Size of a chunk in these tests; the state is hundreds of chunks.
const CHUNK: usize = 64 * 1024;
const RECORDS: u32 = 30_000;

async fn store(dir: &Path) -> (LogStore, StateMachineStore) {
    crate::open(dir, medmesh_state::Role::Province).await.expect("open store")
}

fn log_id(index: u64) -> LogId<u64> {
    LogId::new(CommittedLeaderId::new(2, 1), index)
}

fn all(sm: &StateMachineStore) -> BTreeMap<Vec<u8>, Vec<u8>> {
    sm.view().scan(b"", &[0xff; 8], usize::MAX).into_iter().collect()
}

/// A value of about 200 bytes that LZ4 cannot shrink much (hex of three chained digests), so
/// a snapshot stays many chunks long however it is compressed.
fn incompressible(i: u32) -> String {
    let mut d = Sha256::digest(i.to_be_bytes());
    let mut v = format!("{i}:");
    for _ in 0..3 {
        v.extend(d.iter().map(|b| format!("{b:02x}")));
        d = Sha256::digest(d);
    }
    v
}

/// Fills a store with `RECORDS` records of about 200 bytes (~6 MB, over the install batch
/// size) and applies a membership and a blank entry, so it has an applied log id.
async fn filled(dir: &Path) -> (LogStore, StateMachineStore) {
    let (log, mut sm) = store(dir).await;
    let view = sm.view();
    let cf = view.db.cf_handle(CF_SM).unwrap();
    for i in 0..RECORDS {
        view.db.put_cf(cf, format!("rec/{i:08}"), incompressible(i)).unwrap();
    }
    let nodes: BTreeMap<u64, BasicNode> = (1..=3).map(|i| (i, BasicNode { addr: format!("127.0.0.1:{i}") })).collect();
    let members = openraft::Membership::new(vec![BTreeSet::from([1u64, 2, 3])], nodes);
    let entries: Vec<Entry<TypeConfig>> = vec![
        Entry { log_id: log_id(1), payload: EntryPayload::Membership(members) },
        Entry { log_id: log_id(2), payload: EntryPayload::Blank },
    ];
    sm.apply(entries).await.unwrap();
    (log, sm)
}

/// Sends `snap` to `receiver` the way openraft's chunked transport does: read a chunk at an
/// offset, write it at that offset, shut the receiving file down after the last one.
async fn transfer(snap: &mut Snapshot<TypeConfig>, receiver: &mut SnapshotFile) -> u64 {
    let end = snap.snapshot.seek(SeekFrom::End(0)).await.unwrap();
    let mut offset = 0u64;
    let mut chunks = 0;
    while offset < end {
        snap.snapshot.seek(SeekFrom::Start(offset)).await.unwrap();
        let mut buf = Vec::with_capacity(CHUNK);
        while buf.len() < CHUNK {
            if snap.snapshot.read_buf(&mut buf).await.unwrap() == 0 {
                break;
            }
        }
        receiver.seek(SeekFrom::Start(offset)).await.unwrap();
        receiver.write_all(&buf).await.unwrap();
        offset += buf.len() as u64;
        chunks += 1;
    }
    receiver.shutdown().await.unwrap();
    chunks
}

fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir.join("snapshot"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .filter(|n| n != snapshot::CURRENT)
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_large_snapshot_streams_in_chunks_into_a_fresh_store() {
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (_la, mut a) = filled(a_dir.path()).await;
    let mut snap = a.get_snapshot_builder().await.build_snapshot().await.unwrap();
    assert_eq!(snap.meta.last_log_id, Some(log_id(2)));
    let current = a.get_current_snapshot().await.unwrap().expect("published");
    assert_eq!(current.meta, snap.meta);

    let (_lb, mut b) = store(b_dir.path()).await;
    let mut recv = b.begin_receiving_snapshot().await.unwrap();
    let chunks = transfer(&mut snap, &mut recv).await;
    assert!(chunks > 50, "the state is many chunks large ({chunks})");
    b.install_snapshot(&snap.meta, recv).await.unwrap();

    let (want, got) = (all(&a), all(&b));
    assert_eq!(got.len(), RECORDS as usize + 2, "every record and the applied id and membership");
    assert!(want == got, "the installed state equals the snapshotted one");
    assert_eq!(b.applied_state().await.unwrap(), a.applied_state().await.unwrap());
    let b_current = b.get_current_snapshot().await.unwrap().expect("published on the follower");
    assert_eq!(b_current.meta, snap.meta);
    assert!(leftovers(b_dir.path()).is_empty(), "no temporary file left: {:?}", leftovers(b_dir.path()));
    assert!(leftovers(a_dir.path()).is_empty(), "no temporary file left: {:?}", leftovers(a_dir.path()));

    // A second install of the same snapshot is ignored (not newer than applied).
    let mut again = b.begin_receiving_snapshot().await.unwrap();
    transfer(&mut snap, &mut again).await;
    b.install_snapshot(&snap.meta, again).await.unwrap();
    assert!(all(&b) == want);
    assert!(leftovers(b_dir.path()).is_empty(), "an ignored snapshot's file is removed");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_corrupt_snapshot_is_refused_before_the_state_is_touched() {
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (_la, mut a) = filled(a_dir.path()).await;
    let mut snap = a.get_snapshot_builder().await.build_snapshot().await.unwrap();

    let (_lb, mut b) = store(b_dir.path()).await;
    let before = all(&b);
    let mut recv = b.begin_receiving_snapshot().await.unwrap();
    transfer(&mut snap, &mut recv).await;
    // Flip one byte in the middle of the records.
    let len = recv.seek(SeekFrom::End(0)).await.unwrap();
    recv.seek(SeekFrom::Start(len / 2)).await.unwrap();
    let mut byte = [0u8; 1];
    recv.read_exact(&mut byte).await.unwrap();
    recv.seek(SeekFrom::Start(len / 2)).await.unwrap();
    recv.write_all(&[byte[0] ^ 0x20]).await.unwrap();
    recv.shutdown().await.unwrap();

    let err = b.install_snapshot(&snap.meta, recv).await.expect_err("a corrupt snapshot is refused");
    assert!(err.to_string().contains("corrupt"), "{err}");
    assert!(all(&b) == before, "the state is untouched");
    assert_eq!(b.applied_state().await.unwrap().0, None);
    assert!(b.get_current_snapshot().await.unwrap().is_none());
    assert!(leftovers(b_dir.path()).is_empty(), "{:?}", leftovers(b_dir.path()));

    // A snapshot whose data belongs to another meta is refused too.
    let mut recv = b.begin_receiving_snapshot().await.unwrap();
    transfer(&mut snap, &mut recv).await;
    let mut other = snap.meta.clone();
    other.snapshot_id.push_str("-other");
    assert!(b.install_snapshot(&other, recv).await.is_err());
    assert!(all(&b) == before);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_snapshot_is_taken_before_the_wal_is_synced() {
    let dir = tempfile::tempdir().unwrap();
    let (_l, sm) = filled(dir.path()).await;
    let view = sm.view();
    let steps = Mutex::new(Vec::new());
    // A write that lands right after the RocksDB snapshot was taken: it must not be in the
    // snapshot (the snapshot holds only writes that precede the WAL sync).
    let observe = |step: BuildStep, db: &rocksdb::DB| {
        steps.lock().unwrap().push(step);
        if step == BuildStep::Snapshot {
            db.put_cf(db.cf_handle(CF_SM).unwrap(), b"rec/late", b"after the snapshot").unwrap();
        }
    };
    let (meta, file, _) = snapshot::build(&view.db, &view.locks, &dir.path().join("snapshot"), 7, &observe).unwrap();
    assert_eq!(*steps.lock().unwrap(), vec![BuildStep::Snapshot, BuildStep::WalSynced]);
    assert_eq!(meta.last_log_id, Some(log_id(2)));
    let mut r = SnapshotReader::new(file).unwrap();
    let mut count = 0u32;
    while let Some((k, _)) = r.next_record().unwrap() {
        assert_ne!(k.as_slice(), b"rec/late");
        count += 1;
    }
    assert_eq!(count, RECORDS + 2);
    assert!(view.get(b"rec/late").is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_install_cut_short_is_finished_when_the_store_opens() {
    let (a_dir, b_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let (_la, mut a) = filled(a_dir.path()).await;
    let mut snap = a.get_snapshot_builder().await.build_snapshot().await.unwrap();
    let want = all(&a);

    for cut in [InstallStep::Cleared, InstallStep::Batch] {
        let b_dir = b_dir.path().join(format!("{cut:?}"));
        {
            let (_lb, mut b) = store(&b_dir).await;
            let mut recv = b.begin_receiving_snapshot().await.unwrap();
            transfer(&mut snap, &mut recv).await;
            let (file, temp) = recv.into_std().await;
            let view = b.view();
            let crash = |step: InstallStep| {
                if step == cut {
                    Err(std::io::Error::other("simulated crash"))
                } else {
                    Ok(())
                }
            };
            let dir = b_dir.join("snapshot");
            let r = snapshot::install(&view.db, &view.locks, &dir, &snap.meta, file, temp, &crash);
            assert!(r.is_err());
            assert!(view.get(crate::state_machine::KEY_INSTALLING).is_some(), "the marker is set");
            assert!(all(&b).len() < want.len(), "the state is half-installed");
        }
        let (_lb, mut b) = store(&b_dir).await;
        assert!(all(&b) == want, "reopening finished the install");
        assert_eq!(b.applied_state().await.unwrap().0, Some(log_id(2)));
        assert_eq!(b.get_current_snapshot().await.unwrap().expect("published").meta, snap.meta);
        assert!(leftovers(&b_dir).is_empty(), "{:?}", leftovers(&b_dir));
    }
}

#[test]
fn snapshots_are_paced_by_the_log_not_only_by_entries() {
    use crate::snapshot_due;
    // A young group: no snapshot yet, so the entry count alone decides.
    assert!(!snapshot_due(4_999, 1 << 20, 0, 5_000));
    assert!(snapshot_due(5_000, 1, 0, 5_000));
    // A large state (a 1.4 GB snapshot): 5,000 entries of 1 MiB of log do not pay for a
    // rebuild; 700 MB of log (half the state) does, and more entries are not needed.
    let state = 1_400_000_000;
    assert!(!snapshot_due(5_000, 1 << 20, state, 5_000));
    assert!(!snapshot_due(1_000_000, 699_999_999, state, 5_000));
    assert!(snapshot_due(5_000, 700_000_000, state, 5_000));
    // The entry count still holds back a build however much log there is.
    assert!(!snapshot_due(10, u64::MAX, state, 5_000));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_of_repetitive_records_is_compressed_and_reads_back_whole() {
    let dir = tempfile::tempdir().unwrap();
    let (_l, sm) = store(dir.path()).await;
    let view = sm.view();
    let cf = view.db.cf_handle(CF_SM).unwrap();
    // Records shaped like a province's: the same fields and codes again and again.
    let mut want = BTreeMap::new();
    for i in 0..RECORDS {
        let key = format!("stl/H11010200001/{i:010}").into_bytes();
        let value = format!(
            "institution H11010200001 doctor D110102000017 item 250101001 quantity 2 price 12.50 day 2026-12-{:02} serial {i:010}",
            1 + i % 28
        )
        .into_bytes();
        view.db.put_cf(cf, &key, &value).unwrap();
        want.insert(key, value);
    }
    // Uncompressed, the body alone is a tag and two lengths (9 bytes) plus key and value per record.
    let plain: usize = want.iter().map(|(k, v)| 9 + k.len() + v.len()).sum();
    let (_, file, len) = snapshot::build(&view.db, &view.locks, &dir.path().join("snapshot"), 1, &|_, _| {}).unwrap();
    assert!(len * 3 < plain as u64, "{len} bytes on disk for {plain} bytes of records");
    let mut r = SnapshotReader::new(file).unwrap();
    let mut got = BTreeMap::new();
    while let Some((k, v)) = r.next_record().unwrap() {
        if k.starts_with(b"stl/") {
            got.insert(k, v);
        }
    }
    assert!(got == want, "every record reads back as written");
}
