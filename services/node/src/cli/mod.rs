//! The operator's commands (issue 14.4): thin clients printing a table for people or JSON for
//! scripts. `medmesh cluster …` asks `AdminService` on a group's internal listeners; `rules`,
//! `clearing` and `inspection` ([`ops`]) call the public APIs with the role's certificate.
//!
//! Why `indicatif`: the maintained progress-bar crate (console-aware, hidden when the output
//! is not a terminal), for long work such as loading rules or reading a month's clearing.

pub mod ops;

use std::time::Duration;

use serde::Serialize;

use crate::network;
use crate::pb;
use crate::pb::admin_service_client::AdminServiceClient;
use crate::pki::Transport;

/// How a command prints its answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Output {
    /// Aligned columns, for people.
    Table,
    /// One JSON document, for scripts.
    Json,
}

/// One replica's row of `cluster status`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct ReplicaRow {
    /// The address asked.
    pub addr: String,
    /// Its id (0 if it did not answer).
    pub id: u64,
    /// Leader, Follower, Candidate, Learner, or "unreachable".
    pub state: String,
    /// Its term.
    pub term: u64,
    /// The leader it knows (0: none).
    pub leader: u64,
    /// Last index of its log.
    pub last_log_index: u64,
    /// Last index it applied.
    pub applied: u64,
    /// What a majority holds, as the leader sees it (the leader's row only).
    pub committed: Option<u64>,
    /// Entries it lacks, as the leader sees it (absent for the leader, or with no leader
    /// answering).
    pub lag: Option<u64>,
    /// Why it did not answer.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The status of a group.
#[derive(Debug, Clone, Serialize)]
pub struct GroupStatus {
    /// The province the replicas serve (from the first that answered).
    pub province: String,
    /// Voter ids, as the leader (or else the first answering replica) knows them.
    pub voters: Vec<u64>,
    /// Learner ids.
    pub learners: Vec<u64>,
    /// One row per address asked, in the order asked.
    pub replicas: Vec<ReplicaRow>,
}

/// Asks each internal address for its status (3 s each) and joins the answers: the leader's
/// view of every replica's lag.
pub async fn status(addrs: &[String], transport: &Transport) -> GroupStatus {
    let mut answers = Vec::new();
    for addr in addrs {
        let got = async {
            let ch = network::channel(addr, transport).map_err(|e| e.to_string())?;
            let mut c = AdminServiceClient::new(ch);
            match tokio::time::timeout(Duration::from_secs(3), c.status(pb::StatusRequest {})).await {
                Ok(Ok(r)) => Ok(r.into_inner()),
                Ok(Err(s)) => Err(format!("{:?}: {}", s.code(), s.message())),
                Err(_) => Err("no answer within 3s".to_string()),
            }
        }
        .await;
        answers.push((addr.clone(), got));
    }
    join(answers)
}

/// Joins the answers of each address (pure: the table's logic, tested without a group).
pub fn join(answers: Vec<(String, Result<pb::StatusResponse, String>)>) -> GroupStatus {
    let leader = answers.iter().filter_map(|(_, r)| r.as_ref().ok()).find(|s| s.state == "Leader").cloned();
    let first = answers.iter().find_map(|(_, r)| r.as_ref().ok()).cloned();
    let view = leader.clone().or(first);
    let replicas = answers
        .into_iter()
        .map(|(addr, r)| match r {
            Ok(s) => {
                let is_leader = leader.as_ref().is_some_and(|l| l.id == s.id);
                let lag = leader
                    .as_ref()
                    .filter(|_| !is_leader)
                    .and_then(|l| l.replication.iter().find(|p| p.id == s.id))
                    .map(|p| p.lag);
                ReplicaRow {
                    addr,
                    id: s.id,
                    state: s.state,
                    term: s.term,
                    leader: s.leader_id,
                    last_log_index: s.last_log_index,
                    applied: s.last_applied,
                    committed: is_leader.then_some(s.committed_index),
                    lag,
                    error: None,
                }
            }
            Err(e) => ReplicaRow { addr, state: "unreachable".into(), error: Some(e), ..Default::default() },
        })
        .collect();
    GroupStatus {
        province: view.as_ref().map(|v| v.province.clone()).unwrap_or_default(),
        voters: view.as_ref().map(|v| v.voters.clone()).unwrap_or_default(),
        learners: view.map(|v| v.learners).unwrap_or_default(),
        replicas,
    }
}

fn opt(v: Option<u64>) -> String {
    v.map_or_else(|| "-".to_string(), |v| v.to_string())
}

/// The status as aligned columns.
pub fn table(s: &GroupStatus) -> String {
    let mut rows = vec![["ADDR", "ID", "STATE", "TERM", "LEADER", "LAST LOG", "APPLIED", "COMMITTED", "LAG"]
        .map(str::to_string)
        .to_vec()];
    for r in &s.replicas {
        rows.push(vec![
            r.addr.clone(),
            r.id.to_string(),
            r.state.clone(),
            r.term.to_string(),
            r.leader.to_string(),
            r.last_log_index.to_string(),
            r.applied.to_string(),
            opt(r.committed),
            opt(r.lag),
        ]);
    }
    let widths: Vec<usize> = (0..rows[0].len()).map(|i| rows.iter().map(|r| r[i].len()).max().unwrap_or(0)).collect();
    let mut out = format!("province {}  voters {:?}  learners {:?}\n", s.province, s.voters, s.learners);
    for r in &rows {
        let line: Vec<String> = r.iter().zip(&widths).map(|(c, w)| format!("{c:<w$}")).collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    for r in s.replicas.iter().filter(|r| r.error.is_some()) {
        out.push_str(&format!("{}: {}\n", r.addr, r.error.as_deref().unwrap_or_default()));
    }
    out
}

/// Renders `value` as `output` asks (`table` gives the text from `as_table`).
pub fn render<T: Serialize>(value: &T, output: Output, as_table: impl FnOnce(&T) -> String) -> String {
    match output {
        Output::Table => as_table(value),
        Output::Json => serde_json::to_string_pretty(value).unwrap_or_default() + "\n",
    }
}

/// A membership change's answer.
#[derive(Debug, Clone, Serialize)]
pub struct Changed {
    /// What the replica did.
    pub message: String,
}

/// Adds replica `id` at internal address `replica_addr` through the group's replica at `addr`
/// (as a learner; promoted to voter with `voter` once caught up).
pub async fn add_replica(
    addr: &str,
    transport: &Transport,
    id: u64,
    replica_addr: &str,
    voter: bool,
) -> anyhow::Result<Changed> {
    let channel = network::channel(addr, transport)?;
    let mut c = AdminServiceClient::new(channel.clone());
    let req = pb::AddReplicaRequest { replica: Some(pb::Replica { id, addr: replica_addr.to_string() }), voter };
    // The rpc answers once the new replica has caught up; meanwhile a bar follows how much of
    // the leader's log it holds (from the leader's status: shown when `addr` leads).
    let bar = ops::bar(0, &format!("replica {id} catching up"));
    let shown = bar.clone();
    let follow = tokio::spawn(async move {
        let mut status = AdminServiceClient::new(channel);
        loop {
            if let Ok(s) = status.status(pb::StatusRequest {}).await {
                let s = s.into_inner();
                if let Some(p) = s.replication.iter().find(|p| p.id == id) {
                    shown.set_length(s.last_log_index);
                    shown.set_position(p.matched_index);
                }
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    });
    let r = c.add_replica(req).await;
    follow.abort();
    bar.finish_and_clear();
    let r = r.map_err(|s| anyhow::anyhow!("{addr}: {:?}: {}", s.code(), s.message()))?;
    Ok(Changed { message: r.into_inner().message })
}

/// A snapshot's answer.
#[derive(Debug, Clone, Serialize)]
pub struct Snapshot {
    /// The last log index it covers.
    pub snapshot_index: u64,
    /// What the replica did.
    pub message: String,
}

/// Has the replica at `addr` build a snapshot now.
pub async fn snapshot(addr: &str, transport: &Transport) -> anyhow::Result<Snapshot> {
    let mut c = AdminServiceClient::new(network::channel(addr, transport)?);
    let r = c
        .snapshot(pb::SnapshotRequest {})
        .await
        .map_err(|s| anyhow::anyhow!("{addr}: {:?}: {}", s.code(), s.message()))?
        .into_inner();
    Ok(Snapshot { snapshot_index: r.snapshot_index, message: r.message })
}

/// Removes replica `id` through the group's replica at `addr`.
pub async fn remove_replica(addr: &str, transport: &Transport, id: u64) -> anyhow::Result<Changed> {
    let mut c = AdminServiceClient::new(network::channel(addr, transport)?);
    let r = c
        .remove_replica(pb::RemoveReplicaRequest { id })
        .await
        .map_err(|s| anyhow::anyhow!("{addr}: {:?}: {}", s.code(), s.message()))?;
    Ok(Changed { message: r.into_inner().message })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(id: u64, state: &str, leader: u64, last: u64) -> pb::StatusResponse {
        pb::StatusResponse {
            id,
            leader_id: leader,
            term: 4,
            last_log_index: last,
            last_applied: last,
            voters: vec![1, 2, 3],
            state: state.into(),
            province: "110000".into(),
            ..Default::default()
        }
    }

    #[test]
    fn the_leader_s_view_gives_each_follower_s_lag() {
        let mut leader = answer(2, "Leader", 2, 40);
        leader.committed_index = 38;
        leader.replication = vec![
            pb::ReplicaProgress { id: 1, matched_index: 38, lag: 2 },
            pb::ReplicaProgress { id: 3, matched_index: 10, lag: 30 },
        ];
        let s = join(vec![
            ("a:1".into(), Ok(answer(1, "Follower", 2, 38))),
            ("a:2".into(), Ok(leader)),
            ("a:3".into(), Err("no answer within 3s".into())),
        ]);
        assert_eq!(s.voters, vec![1, 2, 3]);
        let got: Vec<(u64, &str, Option<u64>, Option<u64>)> =
            s.replicas.iter().map(|r| (r.id, r.state.as_str(), r.committed, r.lag)).collect();
        assert_eq!(
            got,
            vec![(1, "Follower", None, Some(2)), (2, "Leader", Some(38), None), (0, "unreachable", None, None)]
        );
        let t = table(&s);
        assert!(t.lines().nth(1).unwrap().starts_with("ADDR"), "{t}");
        assert!(t.contains("a:3: no answer within 3s"), "{t}");
        let json: serde_json::Value = serde_json::from_str(&render(&s, Output::Json, table)).unwrap();
        assert_eq!(json["replicas"][0]["lag"], 2);
        assert_eq!(json["replicas"][1]["committed"], 38);
    }
}
