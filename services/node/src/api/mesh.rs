//! The service between groups (public listener): commands and queries another group's
//! replica sends this one — a province to the federation, the federation or a treatment
//! province to an insured province. Each is checked against what the calling group may send
//! ([`medmesh_state::access`]) before anything runs.

use std::sync::Arc;

use medmesh_state::{Command, ProvinceCommand, Query};
use tonic::{Request, Response, Status};

use super::raft::{decode, reply};
use crate::access::Caller;
use crate::pb::mesh_service_server::MeshService;
use crate::pb::*;

/// Serves [`MeshService`] on a replica's public listener, to replicas of other groups only.
pub struct MeshApi {
    pub(crate) mesh: Arc<crate::mesh::Mesh>,
}

/// A cross-group proposal or query the sender's group may not make.
fn refused(why: String) -> Status {
    tracing::warn!(target: "medmesh::access", why = %why, "refused");
    Status::permission_denied(why)
}

impl MeshApi {
    /// The calling group. The access table admits only replicas of other groups here, so it is
    /// known — except on an `--insecure` replica, which checks no identity at all.
    fn from<T>(&self, req: &Request<T>) -> Option<medmesh_types::ProvinceCode> {
        Caller::of(req).foreign_group(&self.mesh.province).cloned()
    }
}

#[tonic::async_trait]
impl MeshService for MeshApi {
    async fn propose(
        &self,
        req: Request<MeshServiceProposeRequest>,
    ) -> Result<Response<MeshServiceProposeResponse>, Status> {
        let from = self.from(&req);
        let cmd: Command = decode(req)?;
        if let Some(from) = from {
            medmesh_state::access::foreign_command(&cmd, &from).map_err(refused)?;
        }
        let result = match cmd {
            Command::Province(ProvinceCommand::Reserve { .. }) => self.mesh.reserve_as_insured(cmd).await,
            cmd => self.mesh.app.propose_local(cmd).await,
        };
        reply(&result)
    }

    async fn query(&self, req: Request<MeshServiceQueryRequest>) -> Result<Response<MeshServiceQueryResponse>, Status> {
        let from = self.from(&req);
        let q: Query = decode(req)?;
        if let Some(from) = from {
            medmesh_state::access::foreign_query(&q, &from).map_err(refused)?;
        }
        if let Query::RemotePerson { kind, number } = &q {
            // The one query with a raw number: hashed and answered at this edge.
            return reply(&self.mesh.remote_person(*kind, number).await);
        }
        reply(&self.mesh.app.query_local(q).await)
    }
}
