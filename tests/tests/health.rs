//! gRPC health follows the Raft state of real replica processes: SERVING in a healthy group,
//! NOT_SERVING on a replica left without a majority (leader or follower), SERVING again once
//! the others are back.

use std::time::Duration;

use medmesh_tests::{binary, free_base_port, wait_until, Group};
use tonic_health::pb::{health_check_response::ServingStatus, health_client::HealthClient, HealthCheckRequest};

/// Every health entry a client may ask about.
const SERVICES: [&str; 4] =
    ["", "medmesh.v1.HospitalService", "medmesh.v1.AgencyService", "medmesh.v1.FederationService"];

/// The status of `service` at replica `id`, if it answers.
async fn status(g: &Group, id: u64, service: &str) -> Option<ServingStatus> {
    let mut c = HealthClient::new(g.channel_as(id, &medmesh_tests::operator(&g.province)));
    let r = tokio::time::timeout(Duration::from_millis(500), c.check(HealthCheckRequest { service: service.into() }))
        .await
        .ok()?
        .ok()?;
    ServingStatus::try_from(r.into_inner().status).ok()
}

/// Waits until every entry of every replica in `ids` reports `want`.
async fn wait_for(g: &Group, ids: &[u64], want: ServingStatus, timeout: Duration) {
    wait_until(timeout, &format!("replicas {ids:?} to report {want:?}"), || async {
        for id in ids {
            for s in SERVICES {
                if status(g, *id, s).await? != want {
                    return None;
                }
            }
        }
        Some(())
    })
    .await
}

/// `medmesh health --addr` of replica `id`: (exit success, stdout + stderr).
async fn health_cli(g: &Group, id: u64, service: &str) -> (bool, String) {
    let out = tokio::process::Command::new(binary())
        .args(["health", "--addr", &g.replica(id).addr, "--service", service])
        // Health needs no client certificate: only the CA to trust the replica.
        .arg("--ca")
        .arg(medmesh_tests::pki().ca_path())
        .output()
        .await
        .expect("medmesh health runs");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_follows_the_raft_state() {
    let mut g = Group::start("110000", 3, free_base_port(), &[]);
    let leader = g.leader().await;
    wait_for(&g, &[1, 2, 3], ServingStatus::Serving, Duration::from_secs(30)).await;
    let (ok, text) = health_cli(&g, leader, "").await;
    assert!(ok && text.contains("SERVING"), "{text}");

    // The leader alone: it keeps believing it leads, but no majority answers it.
    let followers: Vec<u64> = [1, 2, 3].into_iter().filter(|id| *id != leader).collect();
    for id in &followers {
        g.kill(*id).await;
    }
    wait_for(&g, &[leader], ServingStatus::NotServing, Duration::from_secs(30)).await;
    let (ok, text) = health_cli(&g, leader, "").await;
    assert!(!ok, "medmesh health fails on a replica that cannot serve: {text}");
    assert!(text.contains("NOT_SERVING") && text.contains("leader without a quorum"), "{text}");
    // A lost quorum is not a reason to restart the process.
    let (ok, text) = health_cli(&g, leader, medmesh_node::health::LIVENESS).await;
    assert!(ok, "liveness holds while the core runs: {text}");

    for id in &followers {
        g.restart(*id);
    }
    g.leader().await;
    wait_for(&g, &[1, 2, 3], ServingStatus::Serving, Duration::from_secs(60)).await;

    // A follower alone: its leader is gone and no election can succeed.
    let leader = g.leader().await;
    let survivor = [1, 2, 3].into_iter().find(|id| *id != leader).expect("a follower");
    for id in [1, 2, 3].into_iter().filter(|id| *id != survivor) {
        g.kill(id).await;
    }
    wait_for(&g, &[survivor], ServingStatus::NotServing, Duration::from_secs(30)).await;
    let (ok, text) = health_cli(&g, survivor, "").await;
    assert!(!ok && text.contains("NOT_SERVING") && text.contains("no leader known"), "{text}");

    for id in [1, 2, 3].into_iter().filter(|id| *id != survivor) {
        g.restart(id);
    }
    g.leader().await;
    wait_for(&g, &[1, 2, 3], ServingStatus::Serving, Duration::from_secs(60)).await;
    let (ok, text) = health_cli(&g, survivor, "").await;
    assert!(ok && text.contains("SERVING"), "{text}");
    g.stop_all().await;
}
