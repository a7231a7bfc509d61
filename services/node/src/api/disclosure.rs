//! The disclosure service (issue 13.4): a province's public reports, read-only and free of
//! personal data.

use std::sync::Arc;

use medmesh_state::{Answer, Outcome, ProvinceCommand, Query};
use tonic::{Request, Response, Status};

use super::{answer, outcome, unexpected};
use crate::convert;
use crate::mesh::Mesh;
use crate::pb::disclosure_service_server::DisclosureService;
use crate::pb::*;

/// Serves [`DisclosureService`] on a replica.
pub struct Disclosure {
    pub(crate) mesh: Arc<Mesh>,
}

impl Disclosure {
    fn province_only(&self) -> Result<(), Status> {
        if self.mesh.is_federation() {
            return Err(Status::failed_precondition(
                "province: the federation keeps no fund; ask a replica of the province",
            ));
        }
        Ok(())
    }
}

#[tonic::async_trait]
impl DisclosureService for Disclosure {
    async fn get_fund_report(
        &self,
        req: Request<GetFundReportRequest>,
    ) -> Result<Response<GetFundReportResponse>, Status> {
        self.province_only()?;
        let period = convert::month("month", &req.into_inner().month)?;
        match answer(self.mesh.app.query(Query::FundReport { period }).await?)? {
            Answer::FundReport(r) => Ok(Response::new(convert::fund_report_pb(self.mesh.province.as_str(), &r))),
            other => Err(unexpected(other)),
        }
    }

    async fn get_aggregate(&self, req: Request<GetAggregateRequest>) -> Result<Response<GetAggregateResponse>, Status> {
        self.province_only()?;
        let period = convert::agg_period("period", &req.into_inner().period)?;
        match answer(self.mesh.app.query(Query::Aggregate { period }).await?)? {
            Answer::Aggregate(a) => Ok(Response::new(GetAggregateResponse {
                aggregate: Some(convert::aggregate_pb(self.mesh.province.as_str(), &a)),
            })),
            other => Err(unexpected(other)),
        }
    }

    async fn publish_aggregate(
        &self,
        req: Request<PublishAggregateRequest>,
    ) -> Result<Response<PublishAggregateResponse>, Status> {
        self.province_only()?;
        let period = convert::agg_period("period", &req.into_inner().period)?;
        let a = match outcome(self.mesh.app.propose(ProvinceCommand::PublishAggregate { period }).await?)? {
            Outcome::Aggregate(a) => a,
            other => return Err(unexpected(other)),
        };
        crate::metrics::get().aggregate_published(matches!(period, medmesh_state::aggregate::AggPeriod::Day(_)));
        // The publication waits in the outbox; send it now (the recovery pass sends whatever
        // this misses).
        if let Err(s) = self.mesh.publish_outbox().await {
            tracing::info!(error = %s.message(), "aggregate not yet at the federation; the recovery pass retries");
        }
        Ok(Response::new(PublishAggregateResponse {
            aggregate: Some(convert::aggregate_pb(self.mesh.province.as_str(), &a)),
        }))
    }

    async fn list_disclosed_cases(
        &self,
        req: Request<ListDisclosedCasesRequest>,
    ) -> Result<Response<ListDisclosedCasesResponse>, Status> {
        self.province_only()?;
        let r = req.into_inner();
        let limit = convert::page_size(r.page_size);
        if !r.page_token.is_empty() {
            medmesh_supervision::cases::check_case_id(&r.page_token)
                .map_err(|_| Status::invalid_argument("page_token: is not a token ListDisclosedCases gave"))?;
        }
        match answer(self.mesh.app.query(Query::Cases { after: r.page_token, limit }).await?)? {
            Answer::Cases(cases) => {
                // A full page of cases may hold few executed ones: the token moves past every
                // case read, so the next page goes on from there.
                let next_page_token = if cases.len() == limit {
                    cases.last().map(|c| c.id.clone()).unwrap_or_default()
                } else {
                    String::new()
                };
                Ok(Response::new(ListDisclosedCasesResponse {
                    cases: cases.iter().filter_map(convert::disclosed_case_pb).collect(),
                    next_page_token,
                }))
            }
            other => Err(unexpected(other)),
        }
    }
}
