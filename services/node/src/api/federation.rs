//! The federation service: positions, transfer decisions and the province directory.

use std::collections::BTreeMap;
use std::sync::Arc;

use medmesh_state::{Answer, Decision, Query, TransferId};
use medmesh_types::Money;
use tonic::{Request, Response, Status};

use super::{answer, unexpected};
use crate::convert;
use crate::mesh::Mesh;
use crate::pb::federation_service_server::FederationService;
use crate::pb::*;

/// Serves [`FederationService`] on any replica.
pub struct Federation {
    pub(crate) mesh: Arc<Mesh>,
}

impl Federation {
    async fn ask(&self, q: Query) -> Result<Answer, Status> {
        if !self.mesh.federated() {
            return Err(Status::failed_precondition("federation: this node is not part of a federation"));
        }
        answer(self.mesh.fed_query(q).await?)
    }
}

#[tonic::async_trait]
impl FederationService for Federation {
    async fn get_positions(
        &self,
        _req: Request<GetPositionsRequest>,
    ) -> Result<Response<GetPositionsResponse>, Status> {
        let Answer::Positions(list) = self.ask(Query::Positions).await? else {
            return Err(unexpected("positions"));
        };
        let mut nets: BTreeMap<String, (Money, Money)> = BTreeMap::new();
        let mut total = Money::ZERO;
        let mut settlements = 0;
        let mut positions = Vec::with_capacity(list.len());
        for (insured, treatment, p) in list {
            nets.entry(insured.to_string()).or_insert((Money::ZERO, Money::ZERO)).0 += p.amount;
            nets.entry(treatment.to_string()).or_insert((Money::ZERO, Money::ZERO)).1 += p.amount;
            total += p.amount;
            settlements += p.settlements;
            positions.push(Position {
                insured_province: insured.to_string(),
                treatment_province: treatment.to_string(),
                settlements: p.settlements,
                amount: p.amount.to_string(),
            });
        }
        let provinces = nets
            .into_iter()
            .map(|(province, (owed, receivable))| ProvinceNet {
                province,
                owed: owed.to_string(),
                receivable: receivable.to_string(),
                net: (receivable - owed).to_string(),
            })
            .collect();
        Ok(Response::new(GetPositionsResponse { positions, provinces, total: total.to_string(), settlements }))
    }

    async fn get_transfer(&self, req: Request<GetTransferRequest>) -> Result<Response<GetTransferResponse>, Status> {
        let r = req.into_inner();
        let transfer = TransferId {
            treatment: convert::province("treatment_province", &r.treatment_province)?,
            institution: convert::institution("institution_id", &r.institution_id)?,
            serial: convert::serial("serial", &r.serial)?,
        };
        match self.ask(Query::Decision { transfer: transfer.clone() }).await? {
            Answer::Decision(Some(d)) => Ok(Response::new(GetTransferResponse {
                decision: match d.decision {
                    Decision::Commit => "COMMIT",
                    Decision::Abort => "ABORT",
                }
                .into(),
                insured_province: d.insured.to_string(),
                amount: d.amount.to_string(),
                reason: d.reason,
                decided_at_ms: d.decided_at.millis(),
                reversed_by: d.reversed.map(|s| s.to_string()).unwrap_or_default(),
            })),
            Answer::Decision(None) => Err(Status::not_found(format!("serial: no decision recorded for {transfer}"))),
            other => Err(unexpected(other)),
        }
    }

    async fn list_provinces(
        &self,
        _req: Request<ListProvincesRequest>,
    ) -> Result<Response<ListProvincesResponse>, Status> {
        match self.ask(Query::Provinces).await? {
            Answer::Endpoints(list) => Ok(Response::new(ListProvincesResponse {
                provinces: list
                    .into_iter()
                    .map(|e| ProvinceEndpoints { province: e.province.to_string(), endpoints: e.endpoints })
                    .collect(),
            })),
            other => Err(unexpected(other)),
        }
    }
}
