//! Issue 14.4: the operator's CLI against a real province group (three replica processes,
//! mTLS): `medmesh cluster status` as table and JSON, and a membership change through
//! `medmesh cluster remove-replica` that the status then shows; a snapshot on request.

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

    // A snapshot on request, at a follower: it covers what that replica had applied when
    // asked, as its own status then says.
    let follower = (1..=3).find(|id| *id != leader).unwrap();
    let applied = g.status(follower).await.unwrap().last_applied;
    let snap = json(&cluster(&["snapshot", "--addr", &g.replica(follower).internal, "--output", "json"]));
    let index = snap["snapshot_index"].as_u64().unwrap();
    assert!(index >= applied && applied > 0, "{snap} after {applied} applied");
    assert_eq!(g.status(follower).await.unwrap().snapshot_index, index);
    let refused = medmesh_as(&agency(PROVINCE), &["cluster", "snapshot", "--addr", &g.replica(follower).internal])
        .output()
        .unwrap();
    assert!(!refused.status.success() && String::from_utf8_lossy(&refused.stderr).contains("PermissionDenied"));

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

/// Runs `medmesh {args}` as `who`; answers the output (not checked).
fn run_as(who: &medmesh_node::identity::Identity, args: &[&str]) -> std::process::Output {
    medmesh_as(who, args).output().expect("medmesh runs")
}

fn fails_with(out: &std::process::Output, want: &str) {
    assert!(!out.status.success(), "should fail: {}", String::from_utf8_lossy(&out.stdout));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(want), "want {want:?} in: {err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_draws_and_clearing_from_the_command_line() {
    use medmesh_node::pb;
    use medmesh_tests::{institution, national};
    let base = free_base_port();
    let g = Group::start(PROVINCE, 1, base, &[]);
    let fed = Group::start(medmesh_state::FEDERATION, 1, base + 10, &[]);
    let leader = g.leader().await;
    medmesh_node::demo::load(g.agency(leader), PROVINCE, 5).await.expect("demo data");
    let addr = g.replica(leader).addr.clone();
    let dir = tempfile::tempdir().unwrap();

    // rules shipped | rules load: every shipped rule recorded, as a gRPC read shows.
    let shipped = std::process::Command::new(medmesh_tests::binary()).args(["rules", "shipped"]).output().unwrap();
    assert!(shipped.status.success());
    let file = dir.path().join("rules.json");
    std::fs::write(&file, &shipped.stdout).unwrap();
    let out = run_as(
        &agency(PROVINCE),
        &["rules", "load", "--addr", &addr, "--file", file.to_str().unwrap(), "--output", "json"],
    );
    let loaded = json(&out);
    let want: Vec<String> = medmesh_monitor::shipped_rules().into_iter().map(|r| r.id).collect();
    let got: Vec<String> =
        loaded["rules"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap().to_string()).collect();
    assert_eq!(got, want);
    let mut c = pb::agency_service_client::AgencyServiceClient::new(g.agency(leader));
    let held = c.list_rules(pb::ListRulesRequest {}).await.unwrap().into_inner().rules;
    assert!(want.iter().all(|id| held.iter().any(|r| &r.id == id)), "every loaded rule is held");
    let table = run_as(&agency(PROVINCE), &["rules", "load", "--addr", &addr, "--file", file.to_str().unwrap()]);
    assert!(String::from_utf8_lossy(&table.stdout).starts_with(&format!("{} rules loaded", want.len())));
    // A bad file names the rule and the field; a hospital may not record rules.
    let bad = dir.path().join("bad.json");
    std::fs::write(&bad, r#"[{"id": "R1", "severity": "high"}]"#).unwrap();
    fails_with(
        &run_as(&agency(PROVINCE), &["rules", "load", "--addr", &addr, "--file", bad.to_str().unwrap()]),
        "[0].severity",
    );
    fails_with(
        &run_as(&institution(PROVINCE, 1), &["rules", "load", "--addr", &addr, "--file", file.to_str().unwrap()]),
        "PERMISSION_DENIED",
    );

    // inspection draw: the draw the CLI prints is the one the province recorded, once.
    let nonce = [7u8; 32];
    let plan = medmesh_node::demo::inspection_plan(PROVINCE, "DR-CLI-1", &nonce);
    c.put_inspection_plan(pb::PutInspectionPlanRequest { plan: Some(plan) }).await.expect("plan recorded");
    let draw_args = ["inspection", "draw", "--addr", &addr, "--plan-id", "DR-CLI-1", "--nonce", &hex::encode(nonce)];
    let mut args = draw_args.to_vec();
    args.extend(["--output", "json"]);
    let drawn = json(&run_as(&agency(PROVINCE), &args));
    let recorded = c
        .get_inspection_plan(pb::GetInspectionPlanRequest { plan_id: "DR-CLI-1".into() })
        .await
        .unwrap()
        .into_inner()
        .draw
        .expect("a recorded draw");
    let assignments: Vec<(String, Vec<String>)> =
        recorded.assignments.iter().map(|a| (a.target.clone(), a.inspectors.clone())).collect();
    let printed: Vec<(String, Vec<String>)> = drawn["assignments"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| {
            let i = a["inspectors"].as_array().unwrap().iter().map(|x| x.as_str().unwrap().to_string()).collect();
            (a["target"].as_str().unwrap().to_string(), i)
        })
        .collect();
    assert_eq!(printed, assignments);
    assert_eq!(printed.len(), 1);
    assert_eq!(printed[0].1.len(), 2);
    fails_with(&run_as(&agency(PROVINCE), &draw_args), "DR-CLI-1");

    // clearing run and show at the federation, as the nation: last month has ended (and holds
    // no line on this fresh federation), this month has not.
    let fed_addr = fed.replica(fed.leader().await).addr.clone();
    let today = medmesh_node::demo::today();
    let (y, m): (i32, u32) = (today[..4].parse().unwrap(), today[5..7].parse().unwrap());
    let last = if m == 1 { format!("{}-12", y - 1) } else { format!("{y}-{:02}", m - 1) };
    let cleared =
        json(&run_as(&national(), &["clearing", "run", "--addr", &fed_addr, "--month", &last, "--output", "json"]));
    assert_eq!(cleared["month"], last.as_str());
    assert!(cleared["statements"].as_array().unwrap().is_empty(), "{cleared}");
    let shown = json(&run_as(
        &national(),
        &["clearing", "show", "--addr", &fed_addr, "--month", &last, "--lines", "--output", "json"],
    ));
    assert_eq!(shown["status"], cleared["status"]);
    assert_eq!(shown["lines"], serde_json::json!([]));
    fails_with(&run_as(&national(), &["clearing", "run", "--addr", &fed_addr, "--month", &today[..7]]), "month");
    fails_with(
        &run_as(&agency(PROVINCE), &["clearing", "run", "--addr", &fed_addr, "--month", &last]),
        "PERMISSION_DENIED",
    );
}
