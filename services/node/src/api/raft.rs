//! The Raft transport service and leader forwarding, server side.

use std::sync::Arc;

use medmesh_state::{Command, Query};
use medmesh_storage::TypeConfig;
use medmesh_types::ProvinceCode;
use openraft::raft::{AppendEntriesRequest, InstallSnapshotRequest, VoteRequest};
use serde::Serialize;
use tonic::{Request, Response, Status};

use crate::access::Caller;
use crate::app::App;
use crate::pb::raft_service_server::RaftService;
use crate::pb::*;

/// Serves [`RaftService`] on a replica.
pub struct RaftApi {
    pub(crate) app: Arc<App>,
    pub(crate) mesh: Arc<crate::mesh::Mesh>,
}

fn decode<T: serde::de::DeserializeOwned, P: Payload>(req: Request<P>) -> Result<T, Status> {
    bincode::deserialize(&req.into_inner().data())
        .map_err(|e| Status::invalid_argument(format!("data: undecodable: {e}")))
}

fn reply<T: Serialize, P: Payload>(v: &T) -> Result<Response<P>, Status> {
    Ok(Response::new(P::wrap(bincode::serialize(v).map_err(|e| Status::internal(e.to_string()))?)))
}

impl RaftApi {
    /// This replica's group.
    fn group(&self) -> &ProvinceCode {
        &self.mesh.province
    }
}

/// A cross-group proposal or query the sender's group may not make.
fn refused(why: String) -> Status {
    tracing::warn!(target: "medmesh::access", why = %why, "refused");
    Status::permission_denied(why)
}

#[tonic::async_trait]
impl RaftService for RaftApi {
    async fn append_entries(
        &self,
        req: Request<RaftServiceAppendEntriesRequest>,
    ) -> Result<Response<RaftServiceAppendEntriesResponse>, Status> {
        let rpc: AppendEntriesRequest<TypeConfig> = decode(req)?;
        reply(&self.app.raft.append_entries(rpc).await)
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
        reply(&self.app.raft.install_snapshot(rpc).await)
    }

    async fn propose(
        &self,
        req: Request<RaftServiceProposeRequest>,
    ) -> Result<Response<RaftServiceProposeResponse>, Status> {
        let caller = Caller::of(&req);
        let cmd: Command = decode(req)?;
        if let Some(from) = caller.foreign_group(self.group()) {
            medmesh_state::access::foreign_command(&cmd, from).map_err(refused)?;
        }
        let result = match cmd {
            Command::Reserve { .. } => self.mesh.reserve_as_insured(cmd).await,
            cmd => self.app.propose_local(cmd).await,
        };
        reply(&result)
    }

    async fn query(&self, req: Request<RaftServiceQueryRequest>) -> Result<Response<RaftServiceQueryResponse>, Status> {
        let caller = Caller::of(&req);
        let q: Query = decode(req)?;
        if let Some(from) = caller.foreign_group(self.group()) {
            medmesh_state::access::foreign_query(&q, from).map_err(refused)?;
        }
        if let Query::RemotePerson { kind, number } = &q {
            // The one query with a raw number: hashed and answered at this edge.
            return reply(&self.mesh.remote_person(*kind, number).await);
        }
        reply(&self.app.query_local(q).await)
    }

    async fn clock(&self, _req: Request<ClockRequest>) -> Result<Response<ClockResponse>, Status> {
        Ok(Response::new(ClockResponse { now_ms: crate::clock::now_ms() }))
    }
}
