//! The Raft transport service and leader forwarding, server side.

use std::sync::Arc;

use medmesh_storage::TypeConfig;
use openraft::raft::{AppendEntriesRequest, InstallSnapshotRequest, VoteRequest};
use serde::Serialize;
use tonic::{Request, Response, Status};

use crate::app::App;
use crate::pb::raft_service_server::RaftService;
use crate::pb::*;

/// Serves [`RaftService`] on a replica's internal listener, to the replicas of its group
/// only (see [`crate::access`]).
pub struct RaftApi {
    pub(crate) app: Arc<App>,
}

pub(crate) fn decode<T: serde::de::DeserializeOwned, P: Payload>(req: Request<P>) -> Result<T, Status> {
    bincode::deserialize(&req.into_inner().data())
        .map_err(|e| Status::invalid_argument(format!("data: undecodable: {e}")))
}

pub(crate) fn reply<T: Serialize, P: Payload>(v: &T) -> Result<Response<P>, Status> {
    Ok(Response::new(P::wrap(bincode::serialize(v).map_err(|e| Status::internal(e.to_string()))?)))
}

#[tonic::async_trait]
impl RaftService for RaftApi {
    async fn append_entries(
        &self,
        req: Request<RaftServiceAppendEntriesRequest>,
    ) -> Result<Response<RaftServiceAppendEntriesResponse>, Status> {
        let rpc: AppendEntriesRequest<TypeConfig> = decode(req)?;
        let answer = self.app.raft.append_entries(rpc).await;
        if matches!(&answer, Ok(r) if !matches!(r, openraft::raft::AppendEntriesResponse::HigherVote(_))) {
            // From the leader this replica follows: the pre-vote's "heard from a leader".
            self.app.heard_from_leader();
        }
        reply(&answer)
    }

    async fn vote(&self, req: Request<RaftServiceVoteRequest>) -> Result<Response<RaftServiceVoteResponse>, Status> {
        let rpc: VoteRequest<u64> = decode(req)?;
        reply(&self.app.raft.vote(rpc).await)
    }

    async fn install_snapshot(
        &self,
        req: Request<RaftServiceInstallSnapshotRequest>,
    ) -> Result<Response<RaftServiceInstallSnapshotResponse>, Status> {
        let rpc: InstallSnapshotRequest<TypeConfig> = decode(req)?;
        let answer = self.app.raft.install_snapshot(rpc).await;
        if answer.is_ok() {
            // A leader streaming a snapshot sends no heartbeats to this replica meanwhile.
            self.app.heard_from_leader();
        }
        reply(&answer)
    }

    async fn propose(
        &self,
        req: Request<RaftServiceProposeRequest>,
    ) -> Result<Response<RaftServiceProposeResponse>, Status> {
        // A follower forwards its client's command with the client's origin.
        reply(&self.app.propose_stamped(decode(req)?).await)
    }

    async fn query(&self, req: Request<RaftServiceQueryRequest>) -> Result<Response<RaftServiceQueryResponse>, Status> {
        reply(&self.app.query_local(decode(req)?).await)
    }

    async fn clock(&self, _req: Request<ClockRequest>) -> Result<Response<ClockResponse>, Status> {
        Ok(Response::new(ClockResponse {
            now_ms: crate::clock::now_ms(),
            leader_silent_ms: self.app.leader_silent().as_millis() as u64,
        }))
    }
}
