//! Issue 14.5: every replica serves Prometheus metrics on its ops listener, and the page is
//! valid by Prometheus's own checker (`promtool check metrics`, from Debian's `prometheus`
//! package, which `.ci/run` installs). A real province group: three replica processes, RocksDB,
//! TLS on the gRPC listeners.

use std::time::Duration;

use medmesh_node::dev::ops_of;
use medmesh_node::{demo, pb};
use medmesh_tests::{free_base_port, settle_demo_claim, wait_until, Group};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const PROVINCE: &str = "110000";

/// GETs `path` from `addr` over plain HTTP/1.0: the status line and the body.
async fn get(addr: &str, path: &str) -> (String, String) {
    let mut s = tokio::net::TcpStream::connect(addr).await.expect("ops listener reachable");
    s.write_all(format!("GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").as_bytes()).await.unwrap();
    let mut raw = String::new();
    s.read_to_string(&mut raw).await.unwrap();
    let (head, body) = raw.split_once("\r\n\r\n").expect("an HTTP answer");
    (head.lines().next().unwrap_or_default().to_string(), body.to_string())
}

/// The value of the sample `series` (a name, and labels in any order), if present.
fn sample(page: &str, series: &str) -> Option<f64> {
    let split = |s: &str| -> (String, Vec<String>) {
        match s.split_once('{') {
            Some((name, labels)) => {
                let mut l: Vec<String> =
                    labels.trim_end_matches('}').split(',').map(str::to_string).filter(|x| !x.is_empty()).collect();
                l.sort();
                (name.to_string(), l)
            }
            None => (s.to_string(), Vec::new()),
        }
    };
    let want = split(series);
    page.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (s, value) = l.rsplit_once(' ')?;
        (split(s) == want).then(|| value.parse().ok()).flatten()
    })
}

/// `promtool check metrics` on `page`: its complaints, if any.
fn promtool(page: &str) -> Result<(), String> {
    use std::io::Write;
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool is installed (Debian's prometheus package; scripts/install-deps.sh installs it)");
    child.stdin.take().unwrap().write_all(page.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    if out.status.success() {
        Ok(())
    } else {
        Err(format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_expose_raft_rpc_and_settlement_metrics_that_promtool_accepts() {
    // Logs as JSON, one object per line, when asked.
    let g = Group::start(PROVINCE, 3, free_base_port(), &[("MEDMESH_LOG_FORMAT", "json".into())]);
    let leader = g.leader().await;
    demo::load(g.agency(leader), PROVINCE, 3).await.expect("demo data");
    let mut h = g.hospital(leader);
    settle_demo_claim(&mut h, PROVINCE, &demo::today()).await;
    // A refused settlement: an unknown visit.
    let refused = h
        .settle(pb::SettleRequest {
            lines: Vec::new(),
            institution_id: demo::institution(PROVINCE, 1),
            serial: "S2".into(),
            visit_serial: "V-NONE".into(),
            use_individual_account: false,
        })
        .await;
    assert!(refused.is_err());

    let ops = ops_of(&g.replica(leader).addr).unwrap();
    let (status, health) = get(&ops, "/healthz").await;
    assert!(status.contains("200"), "{status}");
    assert_eq!(health, "ok\n");

    // The leader: it leads, its followers have caught up (lag 0 once replicated), and what a
    // majority holds is at least what it applied.
    let page = wait_until(Duration::from_secs(30), "the followers to catch up", || {
        let ops = ops.clone();
        async move {
            let (_, page) = get(&ops, "/metrics").await;
            let caught_up = ["2", "3", "1"]
                .iter()
                .filter(|p| p.parse::<u64>().ok() != Some(leader))
                .all(|p| sample(&page, &format!("medmesh_raft_replication_lag_entries{{peer=\"{p}\"}}")) == Some(0.0));
            caught_up.then_some(page)
        }
    })
    .await;
    assert_eq!(sample(&page, "medmesh_raft_is_leader"), Some(1.0), "{page}");
    assert_eq!(sample(&page, "medmesh_raft_leader_id"), Some(leader as f64));
    let applied = sample(&page, "medmesh_raft_applied_index").unwrap();
    let committed = sample(&page, "medmesh_raft_committed_index").unwrap();
    assert!(applied > 0.0 && committed >= applied, "applied {applied}, committed {committed}");
    assert!(sample(&page, "medmesh_raft_term").unwrap() >= 1.0);
    // What the store holds in memory: memtables exist, and the block cache stays within the
    // 64 MiB a replica's configuration gives it by default.
    assert!(sample(&page, r#"medmesh_store_memory_bytes{part="memtables"}"#).unwrap() > 0.0, "{page}");
    let cache = sample(&page, r#"medmesh_store_memory_bytes{part="block_cache"}"#).unwrap();
    assert!((0.0..=67_108_864.0).contains(&cache), "block cache {cache}");
    // One settlement settled and one refused, through this replica.
    assert_eq!(sample(&page, r#"medmesh_settlements_total{kind="local",outcome="settled"}"#), Some(1.0), "{page}");
    assert_eq!(sample(&page, r#"medmesh_settlements_total{kind="unknown",outcome="refused"}"#), Some(1.0));
    // The latency histogram counts both settle calls; the counter splits them by status code
    // (5 is NOT_FOUND).
    let settle = r#"method="/medmesh.v1.HospitalService/Settle""#;
    assert_eq!(sample(&page, &format!("medmesh_rpc_duration_seconds_count{{{settle}}}")), Some(2.0), "{page}");
    assert_eq!(sample(&page, &format!("medmesh_rpc_requests_total{{{settle},code=\"0\"}}")), Some(1.0));
    assert_eq!(sample(&page, &format!("medmesh_rpc_requests_total{{{settle},code=\"5\"}}")), Some(1.0));
    promtool(&page).expect("promtool accepts the leader's page");

    // A follower: it knows the leader and does not lead.
    let follower = (1..=3).find(|id| *id != leader).unwrap();
    let (_, page) = get(&ops_of(&g.replica(follower).addr).unwrap(), "/metrics").await;
    assert_eq!(sample(&page, "medmesh_raft_is_leader"), Some(0.0));
    assert_eq!(sample(&page, "medmesh_raft_leader_id"), Some(leader as f64));
    promtool(&page).expect("promtool accepts the follower's page");

    // Nothing else is served there.
    let (status, _) = get(&ops, "/").await;
    assert!(status.contains("404"), "{status}");

    // Every log line of the leader is a JSON object with a level and a message.
    let log = g.log(leader);
    let lines: Vec<serde_json::Value> = log
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: not JSON: {l}")))
        .collect();
    assert!(lines.iter().any(|v| v["fields"]["message"] == "replica serving"), "{log}");
    assert!(lines.iter().all(|v| v["level"].is_string() && v["timestamp"].is_string()), "{log}");
}
