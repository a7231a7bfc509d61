//! Province cluster tests with real `medmesh` processes over loopback and RocksDB on disk.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use medmesh_node::demo;
use medmesh_node::pb;
use medmesh_settlement::Accumulators;
use medmesh_state::{keys, FundLedger, MemKv, Payable, Settlement, SettlementStatus};
use medmesh_tests::workload::{settle_claim, with_retry};
use medmesh_tests::{data_dir, free_base_port, read_state, wait_until, Group};
use medmesh_types::Money;
use tokio::sync::Mutex;

const PROVINCE: &str = "110000";

fn decode<T: serde::de::DeserializeOwned>(v: &[u8]) -> T {
    bincode::deserialize(v).expect("stored record decodes")
}

/// Every invariant a replica's state must hold, checked on the raw stored records:
/// accumulators equal the sum of the person's settlements in force, the fund balances
/// (contributions = balance + payouts; payables = fund + account payouts), each settlement is
/// stored once under its serial.
fn check_replica_invariants(kv: &MemKv) -> BTreeMap<String, Settlement> {
    let mut settlements = BTreeMap::new();
    let mut acc: BTreeMap<(medmesh_types::KeyedHash, i32), Accumulators> = BTreeMap::new();
    for (k, v) in kv.0.range(b"stl/".to_vec()..b"stl0".to_vec()) {
        let s: Settlement = decode(v);
        if s.status == SettlementStatus::Settled {
            let a = acc.entry((s.person.clone(), s.year)).or_default();
            *a = a.apply(&s.split);
        }
        assert!(settlements.insert(String::from_utf8_lossy(k).to_string(), s).is_none());
    }
    for ((person, year), expected) in &acc {
        let stored: Accumulators = decode(&kv.0[keys::accumulators(person, *year).as_bytes()]);
        assert_eq!(&stored, expected, "accumulators of a person equal the sum of their settlements");
    }
    let fund: FundLedger = decode(&kv.0[keys::FUND.as_bytes()]);
    let live: Vec<&Settlement> = settlements.values().filter(|s| s.status == SettlementStatus::Settled).collect();
    assert_eq!(fund.settlements as usize, live.len());
    let pooling: Money = live.iter().map(|s| s.split.pooling_fund).sum();
    let ci: Money = live.iter().map(|s| s.split.critical_illness).sum();
    let accounts: Money = live.iter().map(|s| s.split.individual_account).sum();
    assert_eq!(fund.pooling_paid, pooling);
    assert_eq!(fund.critical_illness_paid, ci);
    assert_eq!(fund.balance() + pooling + ci, fund.contributions, "money conserved");
    let payables: Money =
        kv.0.range(b"payable/".to_vec()..b"payable0".to_vec()).map(|(_, v)| decode::<Payable>(v).amount).sum();
    assert_eq!(payables, pooling + ci + accounts, "payables match payouts");
    settlements
}

async fn loaded_group(env: &[(&'static str, String)]) -> Group {
    let g = Group::start(PROVINCE, 3, free_base_port(), env);
    let leader = g.leader().await;
    demo::load(g.agency(leader), PROVINCE, 60).await.expect("demo data");
    g
}

/// Settles many claims while the leader is SIGKILLed and restarted; every acknowledged
/// settlement must then be present exactly once on every replica with the same split, each
/// person's accumulators must equal the sum of their settlements, and a retried serial must
/// return the original result.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn leader_killed_under_load_loses_no_acknowledged_settlement() {
    let g = Arc::new(Mutex::new(loaded_group(&[]).await));
    let clients: Vec<_> = {
        let g = g.lock().await;
        (1..=3).map(|id| g.hospital(id)).collect()
    };
    let acked: Arc<Mutex<BTreeMap<String, pb::SettleResponse>>> = Arc::default();
    let mut workers = Vec::new();
    for w in 0..8usize {
        let clients = clients.clone();
        let acked = acked.clone();
        workers.push(tokio::spawn(async move {
            for n in 0..25u64 {
                let person = ((w as u64 * 25 + n) % 60) as u32;
                let r = settle_claim(&clients, PROVINCE, w, n, person).await.expect("claim settles despite failover");
                acked.lock().await.insert(r.serial.clone(), r);
            }
        }));
    }
    // Nemesis: twice, once some settlements are acknowledged, kill the leader and restart it.
    for round in 1..=2usize {
        wait_until(Duration::from_secs(120), "acknowledged settlements", || {
            let acked = acked.clone();
            async move { (acked.lock().await.len() >= round * 40).then_some(()) }
        })
        .await;
        let mut g = g.lock().await;
        let leader = g.leader().await;
        g.kill(leader).await;
        let new_leader = g.leader().await;
        assert_ne!(new_leader, leader);
        g.restart(leader);
    }
    for w in workers {
        w.await.expect("worker");
    }
    let acked = acked.lock().await.clone();
    assert_eq!(acked.len(), 200);

    // A retried serial returns the original result.
    for (serial, first) in acked.iter().take(5) {
        let parts: Vec<&str> = serial.split('-').collect();
        let again = with_retry(&clients, 0, |mut c| {
            let req = pb::SettleRequest {
                lines: Vec::new(),
                institution_id: demo::institution(PROVINCE, 1),
                serial: serial.clone(),
                visit_serial: format!("V-{}-{}", parts[1], parts[2]),
                use_individual_account: parts[2].parse::<u64>().unwrap().is_multiple_of(2),
            };
            async move { c.settle(req).await.map(|r| r.into_inner()) }
        })
        .await
        .unwrap();
        assert_eq!(&again, first, "retry returns the first outcome");
    }

    let mut g = g.lock().await;
    g.wait_converged().await;
    g.stop_all().await;
    let mut states = Vec::new();
    for r in &g.replicas {
        states.push(read_state(&data_dir(r), medmesh_state::Role::Province).await);
    }
    for kv in &states {
        let settlements = check_replica_invariants(kv);
        assert_eq!(settlements.len(), acked.len(), "nothing settled twice or lost");
        for (serial, r) in &acked {
            let key = format!("stl/{}/{serial}", demo::institution(PROVINCE, 1));
            let s = &settlements[&key];
            assert_eq!(s.split.total.to_string(), r.split.as_ref().unwrap().total);
            assert_eq!(s.split.pooling_fund.to_string(), r.split.as_ref().unwrap().pooling_fund);
        }
    }
    assert!(states.windows(2).all(|w| w[0] == w[1]), "replicas hold identical state");
}

/// A follower stopped while writes continue restarts from its disk and catches up; a replica
/// added after the log was purged is brought up by a snapshot.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restarted_follower_catches_up_and_new_replica_installs_snapshot() {
    let base = free_base_port();
    let mut g = Group::start(PROVINCE, 3, base, &[("MEDMESH_SNAPSHOT_LOGS", "20".into())]);
    let leader = g.leader().await;
    demo::load(g.agency(leader), PROVINCE, 30).await.expect("demo data");
    let follower = (1..=3).find(|id| *id != leader).unwrap();
    g.kill(follower).await;
    let clients: Vec<_> = (1..=3).filter(|id| *id != follower).map(|id| g.hospital(id)).collect();
    for n in 0..30u64 {
        settle_claim(&clients, PROVINCE, 0, n, n as u32).await.expect("settles with one replica down");
    }
    g.restart(follower);
    let applied = g.wait_converged().await;
    assert!(applied > 60);

    // Add replica 4 as a voter; the leader has purged its log, so it needs a snapshot.
    g.spawn_joiner(4, format!("127.0.0.1:{}", base + 4));
    let leader = g.leader().await;
    let mut admin = medmesh_node::pb::admin_service_client::AdminServiceClient::new(
        g.internal_as(leader, &medmesh_tests::operator(PROVINCE)),
    );
    admin
        .add_replica(pb::AddReplicaRequest {
            // The membership names the internal (Raft) address.
            replica: Some(pb::Replica { id: 4, addr: g.replica(4).internal.clone() }),
            voter: true,
        })
        .await
        .expect("add replica");
    let st = wait_until(Duration::from_secs(60), "replica 4 to catch up", || async {
        let s = g.status(4).await?;
        (s.last_applied >= applied && s.voters.contains(&4)).then_some(s)
    })
    .await;
    assert!(st.snapshot_index > 0, "replica 4 was brought up by a snapshot");
    // It serves reads and writes like any other replica.
    let r = settle_claim(&[g.hospital(4)], PROVINCE, 1, 0, 1).await.expect("settle via the new replica");
    assert_eq!(r.status, "SETTLED");

    // Remove replica 4 again; the group keeps serving.
    admin.remove_replica(pb::RemoveReplicaRequest { id: 4 }).await.expect("remove replica");
    g.kill(4).await;
    settle_claim(&[g.hospital(1), g.hospital(2), g.hospital(3)], PROVINCE, 1, 1, 2)
        .await
        .expect("settle after removal");

    g.wait_converged().await;
    g.stop_all().await;
    let mut states = Vec::new();
    for r in g.replicas.iter().filter(|r| r.id <= 3) {
        let kv = read_state(&data_dir(r), medmesh_state::Role::Province).await;
        check_replica_invariants(&kv);
        states.push(kv);
    }
    assert!(states.windows(2).all(|w| w[0] == w[1]), "replicas hold identical state");
}
