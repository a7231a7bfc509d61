//! Membership and status.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use openraft::{BasicNode, ChangeMembers, ServerState};
use tonic::{Request, Response, Status};

use crate::app::App;
use crate::pb::admin_service_server::AdminService;
use crate::pb::*;

/// Serves [`AdminService`] on a replica.
pub struct Admin {
    pub(crate) app: Arc<App>,
}

fn replica(r: Option<Replica>) -> Result<(u64, BasicNode), Status> {
    let r = r.ok_or_else(|| Status::invalid_argument("replica: required"))?;
    if r.id == 0 {
        return Err(Status::invalid_argument("replica.id: must be positive"));
    }
    if r.addr.is_empty() {
        return Err(Status::invalid_argument("replica.addr: required"));
    }
    Ok((r.id, BasicNode { addr: r.addr }))
}

#[tonic::async_trait]
impl AdminService for Admin {
    async fn init(&self, req: Request<InitRequest>) -> Result<Response<InitResponse>, Status> {
        let mut members = BTreeMap::new();
        for r in req.into_inner().replicas {
            let (id, node) = replica(Some(r))?;
            members.insert(id, node);
        }
        if members.is_empty() {
            return Err(Status::invalid_argument("replicas: at least one replica"));
        }
        match self.app.raft.initialize(members).await {
            Ok(()) => Ok(Response::new(InitResponse { message: "initialized".into() })),
            Err(e) => Err(Status::failed_precondition(format!("replicas: {e}"))),
        }
    }

    async fn add_replica(&self, req: Request<AddReplicaRequest>) -> Result<Response<AddReplicaResponse>, Status> {
        let r = req.into_inner();
        let (id, node) = replica(r.replica)?;
        self.app.raft.add_learner(id, node, true).await.map_err(|e| Status::failed_precondition(e.to_string()))?;
        if r.voter {
            self.app
                .raft
                .change_membership(ChangeMembers::AddVoterIds([id].into()), false)
                .await
                .map_err(|e| Status::failed_precondition(e.to_string()))?;
        }
        Ok(Response::new(AddReplicaResponse { message: format!("replica {id} added") }))
    }

    async fn remove_replica(
        &self,
        req: Request<RemoveReplicaRequest>,
    ) -> Result<Response<RemoveReplicaResponse>, Status> {
        let id = req.into_inner().id;
        let m = self.app.raft.metrics().borrow().clone();
        let is_voter = m.membership_config.membership().voter_ids().any(|v| v == id);
        let change =
            if is_voter { ChangeMembers::RemoveVoters([id].into()) } else { ChangeMembers::RemoveNodes([id].into()) };
        self.app.raft.change_membership(change, false).await.map_err(|e| Status::failed_precondition(e.to_string()))?;
        Ok(Response::new(RemoveReplicaResponse { message: format!("replica {id} removed") }))
    }

    async fn snapshot(&self, _req: Request<SnapshotRequest>) -> Result<Response<SnapshotResponse>, Status> {
        let applied = self.app.raft.metrics().borrow().last_applied.map(|l| l.index).unwrap_or(0);
        if applied == 0 {
            return Err(Status::failed_precondition("snapshot: nothing applied yet"));
        }
        // A trigger while a build runs is ignored, and that build may cover less: trigger
        // again until a snapshot covers what was applied when asked.
        let deadline = std::time::Instant::now() + Duration::from_secs(120);
        let m = loop {
            self.app.raft.trigger().snapshot().await.map_err(|e| Status::unavailable(format!("snapshot: {e}")))?;
            let written = self
                .app
                .raft
                .wait(Some(Duration::from_secs(2)))
                .metrics(|m| m.snapshot.is_some_and(|s| s.index >= applied), "the snapshot to be written")
                .await;
            match written {
                Ok(m) => break m,
                Err(e) if std::time::Instant::now() >= deadline => {
                    return Err(Status::deadline_exceeded(format!("snapshot: not written in time ({e})")))
                }
                Err(_) => continue,
            }
        };
        let index = m.snapshot.map(|s| s.index).unwrap_or(0);
        tracing::info!(index, "snapshot built on request");
        Ok(Response::new(SnapshotResponse { snapshot_index: index, message: format!("snapshot at index {index}") }))
    }

    async fn status(&self, _req: Request<StatusRequest>) -> Result<Response<StatusResponse>, Status> {
        let m = self.app.raft.metrics().borrow().clone();
        let leader = self.app.leader();
        let membership = m.membership_config.membership();
        Ok(Response::new(StatusResponse {
            id: self.app.id,
            leader_id: leader.as_ref().map(|l| l.0).unwrap_or(0),
            leader_addr: leader.map(|l| l.1).unwrap_or_default(),
            term: m.current_term,
            last_log_index: m.last_log_index.unwrap_or(0),
            last_applied: m.last_applied.map(|l| l.index).unwrap_or(0),
            voters: membership.voter_ids().collect(),
            learners: membership.learner_ids().collect(),
            state: match m.state {
                ServerState::Leader => "Leader",
                ServerState::Follower => "Follower",
                ServerState::Candidate => "Candidate",
                ServerState::Learner => "Learner",
                ServerState::Shutdown => "Shutdown",
            }
            .into(),
            snapshot_index: m.snapshot.map(|l| l.index).unwrap_or(0),
            province: self.app.province.clone(),
            committed_index: crate::metrics::committed_index(&m).unwrap_or(0),
            replication: crate::metrics::progress(&m)
                .into_iter()
                .map(|(id, matched_index, lag)| ReplicaProgress { id, matched_index, lag })
                .collect(),
        }))
    }
}
