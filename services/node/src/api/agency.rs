//! The agency service.

use std::sync::Arc;

use medmesh_state::{Answer, Command, Outcome, Query};
use tonic::{Request, Response, Status};

use super::{answer, outcome, unexpected};
use crate::app::App;
use crate::convert;
use crate::pb::agency_service_server::AgencyService;
use crate::pb::*;

/// Serves [`AgencyService`] on a replica.
pub struct Agency {
    pub(crate) app: Arc<App>,
}

impl Agency {
    async fn put(&self, cmd: Command) -> Result<Response<PutResponse>, Status> {
        match outcome(self.app.propose(cmd).await?)? {
            Outcome::Stored => Ok(Response::new(PutResponse {})),
            other => Err(unexpected(other)),
        }
    }
}

#[tonic::async_trait]
impl AgencyService for Agency {
    async fn put_person(&self, req: Request<PutPersonRequest>) -> Result<Response<PutResponse>, Status> {
        self.put(convert::put_person(req.into_inner())?).await
    }

    async fn put_institution(&self, req: Request<PutInstitutionRequest>) -> Result<Response<PutResponse>, Status> {
        self.put(convert::put_institution(req.into_inner())?).await
    }

    async fn put_personnel(&self, req: Request<PutPersonnelRequest>) -> Result<Response<PutResponse>, Status> {
        self.put(convert::put_personnel(req.into_inner())?).await
    }

    async fn put_catalogue_item(&self, req: Request<PutCatalogueItemRequest>) -> Result<Response<PutResponse>, Status> {
        self.put(convert::put_catalogue_item(req.into_inner())?).await
    }

    async fn put_policy(&self, req: Request<PutPolicyRequest>) -> Result<Response<PutResponse>, Status> {
        self.put(convert::put_policy(req.into_inner())?).await
    }

    async fn contribute(&self, req: Request<ContributeRequest>) -> Result<Response<ContributeResponse>, Status> {
        match outcome(self.app.propose(convert::contribute(req.into_inner())?).await?)? {
            Outcome::Contributed { balance } => Ok(Response::new(ContributeResponse { balance: balance.to_string() })),
            other => Err(unexpected(other)),
        }
    }

    async fn record_violation(
        &self,
        req: Request<RecordViolationRequest>,
    ) -> Result<Response<QualificationResponse>, Status> {
        let cmd = convert::record_violation(req.into_inner())?;
        let code = match &cmd {
            Command::RecordViolation(v) => v.personnel.clone(),
            other => return Err(unexpected(other)),
        };
        match outcome(self.app.propose(cmd).await?)? {
            Outcome::Qualification(q) => Ok(Response::new(convert::qualification(&code, &q))),
            other => Err(unexpected(other)),
        }
    }

    async fn get_qualification(
        &self,
        req: Request<GetQualificationRequest>,
    ) -> Result<Response<QualificationResponse>, Status> {
        let code = convert::personnel("personnel_code", &req.into_inner().personnel_code)?;
        let now = medmesh_types::LogTime(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as i64)
                .unwrap_or(0),
        );
        match answer(self.app.query(Query::Qualification { code: code.clone(), now }).await?)? {
            Answer::Qualification(q) => Ok(Response::new(convert::qualification(&code, &q))),
            other => Err(unexpected(other)),
        }
    }

    async fn get_fund(&self, _req: Request<GetFundRequest>) -> Result<Response<GetFundResponse>, Status> {
        match answer(self.app.query(Query::Fund).await?)? {
            Answer::Fund(f) => Ok(Response::new(GetFundResponse {
                contributions: f.ledger.contributions.to_string(),
                balance: f.ledger.balance().to_string(),
                pooling_paid: f.ledger.pooling_paid.to_string(),
                critical_illness_paid: f.ledger.critical_illness_paid.to_string(),
                accounts_paid: f.ledger.accounts_paid.to_string(),
                payables: f.payables.to_string(),
                settlements: f.ledger.settlements,
                reversals: f.ledger.reversals,
            })),
            other => Err(unexpected(other)),
        }
    }
}
