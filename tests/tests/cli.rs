//! Issue 14.4: the operator's CLI against a real province group (three replica processes,
//! mTLS): `medmesh cluster status` as table and JSON, and a membership change through
//! `medmesh cluster remove-replica` that the status then shows.

use std::time::Duration;

use medmesh_tests::{agency, free_base_port, medmesh_as, operator, wait_until, Group};

const PROVINCE: &str = "110000";

/// Runs `medmesh cluster {args}` as the group's operator.
fn cluster(args: &[&str]) -> std::process::Output {
    let args: Vec<&str> = ["cluster"].into_iter().chain(args.iter().copied()).collect();
    medmesh_as(&operator(PROVINCE), &args).output().expect("medmesh runs")
}

fn json(out: &std::process::Output) -> serde_json::Value {
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("JSON on stdout")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cluster_status_shows_every_replica_and_follows_a_removal() {
    let g = Group::start(PROVINCE, 3, free_base_port(), &[]);
    let leader = g.leader().await;
    let internal: Vec<String> = (1..=3).map(|id| g.replica(id).internal.clone()).collect();
    let all = internal.join(",");

    // JSON: three rows in the order asked, one leader, one term, every follower caught up.
    let s = wait_until(Duration::from_secs(30), "every follower to catch up", || {
        let all = all.clone();
        async move {
            let s = json(&cluster(&["status", "--addr", &all, "--output", "json"]));
            let rows = s["replicas"].as_array()?.clone();
            rows.iter().filter(|r| r["state"] != "Leader").all(|r| r["lag"] == 0).then_some(s)
        }
    })
    .await;
    assert_eq!(s["province"], PROVINCE);
    assert_eq!(s["voters"], serde_json::json!([1, 2, 3]));
    let rows = s["replicas"].as_array().unwrap();
    assert_eq!(rows.iter().map(|r| r["id"].as_u64().unwrap()).collect::<Vec<_>>(), vec![1, 2, 3]);
    let leaders: Vec<&serde_json::Value> = rows.iter().filter(|r| r["state"] == "Leader").collect();
    assert_eq!(leaders.len(), 1);
    assert_eq!(leaders[0]["id"], leader);
    assert!(rows.iter().all(|r| r["term"] == rows[0]["term"] && r["leader"] == leader), "{s}");
    let committed = leaders[0]["committed"].as_u64().unwrap();
    assert!(committed >= 1 && committed <= leaders[0]["last_log_index"].as_u64().unwrap(), "{s}");

    // A table for people: a header and a row per replica.
    let out = cluster(&["status", "--addr", &all]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.lines().nth(1).unwrap().starts_with("ADDR"), "{text}");
    assert_eq!(text.lines().filter(|l| l.contains("Leader") || l.contains("Follower")).count(), 3, "{text}");

    // Remove a follower; the leader's voters no longer list it.
    let gone = (1..=3).find(|id| *id != leader).unwrap();
    let via = g.replica(leader).internal.clone();
    let out = cluster(&["remove-replica", "--addr", &via, "--id", &gone.to_string(), "--output", "json"]);
    json(&out);
    let s = json(&cluster(&["status", "--addr", &via, "--output", "json"]));
    let voters: Vec<u64> = s["voters"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
    assert!(!voters.contains(&gone) && voters.len() == 2, "{s}");

    // A caller who is not the operator is refused, and says so.
    let out =
        medmesh_as(&agency(PROVINCE), &["cluster", "status", "--addr", &via, "--output", "json"]).output().unwrap();
    assert!(!out.status.success(), "no replica leads for a refused caller");
    let s: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert!(s["replicas"][0]["error"].as_str().unwrap().contains("PermissionDenied"), "{s}");
}
