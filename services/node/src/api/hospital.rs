//! The hospital service.

use std::sync::Arc;

use medmesh_state::{Answer, Outcome, Query, SettlementStatus};
use medmesh_types::{LogTime, Money};
use tonic::{Request, Response, Status};

use super::{answer, outcome, unexpected};
use crate::access::Caller;
use crate::convert;
use crate::mesh::Mesh;
use crate::pb::hospital_service_server::HospitalService;
use crate::pb::*;

/// Serves [`HospitalService`] on a replica.
pub struct Hospital {
    pub(crate) mesh: Arc<Mesh>,
}

/// A request that names the institution it acts for.
trait ForInstitution {
    fn institution_id(&self) -> &str;
}

macro_rules! for_institution {
    ($($t:ty),*) => {$(
        impl ForInstitution for $t {
            fn institution_id(&self) -> &str {
                &self.institution_id
            }
        }
    )*};
}

for_institution!(
    LookupIdentityRequest,
    RegisterVisitRequest,
    UploadFeesRequest,
    PreSettleRequest,
    SettleRequest,
    ReverseRequest,
    GetExpenseDocumentRequest,
    ListSettlementsRequest,
    DeclareMonthRequest,
    ContestDeductionRequest,
    GetPaymentStatementRequest,
    ListDeclarationsRequest,
    QuotePrepaymentRequest,
    ListPrepaymentsRequest,
    GetBudgetRequest
);

/// The request's message once its `institution_id` is checked (a well-formed code, and the
/// caller's own: see [`crate::access`]).
fn own<T: ForInstitution>(req: Request<T>) -> Result<T, Status> {
    let caller = Caller::of(&req);
    let r = req.into_inner();
    convert::institution("institution_id", r.institution_id())?;
    caller.acts_for_institution(r.institution_id())?;
    Ok(r)
}

fn now() -> LogTime {
    crate::mesh::now()
}

#[tonic::async_trait]
impl HospitalService for Hospital {
    async fn lookup_identity(
        &self,
        req: Request<LookupIdentityRequest>,
    ) -> Result<Response<LookupIdentityResponse>, Status> {
        let r = own(req)?;
        let institution = convert::institution("institution_id", &r.institution_id)?;
        let kind = convert::certificate_kind("certificate_kind", r.certificate_kind)?;
        let key = self.mesh.cert_key(kind, &r.certificate)?;
        let found = self.mesh.app.query(Query::Identity { institution, kind, key, now: now() }).await?;
        if let Err(e) = &found {
            if e.code == medmesh_state::ErrorCode::NotFound && e.field == "certificate" && self.mesh.federated() {
                return self.mesh.lookup_nonlocal(kind, &r.certificate).await.map(Response::new);
            }
        }
        match answer(found)? {
            Answer::Identity(v) => {
                let p = v.person;
                let a = v.accumulators;
                let name = self.mesh.open_person(&p)?.name;
                Ok(Response::new(LookupIdentityResponse {
                    masked_id: p.masked_id,
                    name,
                    sex: convert::sex_pb(p.sex),
                    birth_date: p.birth_date.to_string(),
                    insurance_type: convert::insurance_pb(p.insurance),
                    insurance_status: format!("{:?}", p.status).to_uppercase(),
                    account_balance: p.account_balance.to_string(),
                    accumulators: Some(Accumulators {
                        year: v.year,
                        deductible_used: a.deductible_used.to_string(),
                        pooling_paid: a.pooling_paid.to_string(),
                        critical_illness_paid: a.critical_illness_paid.to_string(),
                        in_policy_total: a.in_policy_total.to_string(),
                        assistance_paid: a.assistance_paid.to_string(),
                    }),
                    insured_province: String::new(),
                    nonlocal_filing: FilingKind::Unspecified as i32,
                }))
            }
            other => Err(unexpected(other)),
        }
    }

    async fn register_visit(
        &self,
        req: Request<RegisterVisitRequest>,
    ) -> Result<Response<RegisterVisitResponse>, Status> {
        let r = own(req)?;
        let emergency = r.emergency;
        let kind = convert::certificate_kind("certificate_kind", r.certificate_kind)?;
        let number = r.certificate.clone();
        let key = self.mesh.cert_key(kind, &number)?;
        let cmd = convert::register_visit(r, key)?;
        match self.mesh.register_visit(cmd, &number, emergency).await? {
            Outcome::VisitRegistered(v) => Ok(Response::new(RegisterVisitResponse {
                serial: v.serial.to_string(),
                masked_id: v.masked_id,
                insured_province: v.nonlocal.map(|n| n.insured.to_string()).unwrap_or_default(),
            })),
            other => Err(unexpected(other)),
        }
    }

    async fn upload_fees(&self, req: Request<UploadFeesRequest>) -> Result<Response<UploadFeesResponse>, Status> {
        let cmd = convert::upload_fees(own(req)?)?;
        match outcome(self.mesh.app.propose(cmd).await?)? {
            Outcome::FeesUploaded { line_count, total } => {
                Ok(Response::new(UploadFeesResponse { line_count, total: total.to_string() }))
            }
            other => Err(unexpected(other)),
        }
    }

    async fn pre_settle(&self, req: Request<PreSettleRequest>) -> Result<Response<PreSettleResponse>, Status> {
        let r = own(req)?;
        let institution = convert::institution("institution_id", &r.institution_id)?;
        let visit = convert::serial("visit_serial", &r.visit_serial)?;
        let q = Query::PreSettle {
            institution: institution.clone(),
            visit: visit.clone(),
            use_individual_account: r.use_individual_account,
            now: now(),
        };
        match answer(self.mesh.app.query(q).await?)? {
            Answer::Quote(s) => Ok(Response::new(PreSettleResponse { split: Some(convert::split(&s)) })),
            Answer::VisitClaim { claim, nonlocal } => {
                let s = self.mesh.remote_quote(claim, nonlocal, institution, visit).await?;
                Ok(Response::new(PreSettleResponse { split: Some(convert::split(&s)) }))
            }
            other => Err(unexpected(other)),
        }
    }

    async fn settle(&self, req: Request<SettleRequest>) -> Result<Response<SettleResponse>, Status> {
        let cmd = convert::settle(own(req)?)?;
        let s = self.mesh.settle(cmd).await.inspect_err(|e| {
            crate::metrics::get().settlement(None, "refused");
            crate::metrics::get().rule_hits(Some(e), None);
        })?;
        crate::metrics::get().settlement(Some(s.insured.is_some()), "settled");
        let response = convert::settle_response(&s);
        crate::metrics::get().rule_hits(None, response.split.as_ref());
        Ok(Response::new(response))
    }

    async fn reverse(&self, req: Request<ReverseRequest>) -> Result<Response<ReverseResponse>, Status> {
        let cmd = convert::reverse(own(req)?)?;
        let s = self.mesh.reverse(cmd).await?;
        Ok(Response::new(ReverseResponse {
            settlement_serial: s.serial.to_string(),
            status: convert::status_text(&s.status),
            split: Some(convert::split(&s.split)),
        }))
    }

    async fn get_expense_document(
        &self,
        req: Request<GetExpenseDocumentRequest>,
    ) -> Result<Response<GetExpenseDocumentResponse>, Status> {
        let r = own(req)?;
        let q = Query::Settlement {
            institution: convert::institution("institution_id", &r.institution_id)?,
            serial: convert::serial("serial", &r.serial)?,
        };
        match answer(self.mesh.app.query(q).await?)? {
            Answer::Settlement(s) => Ok(Response::new(GetExpenseDocumentResponse {
                document: Some(convert::expense_document(&s, self.mesh.open_sealed(&s.person, &s.person_sealed)?.name)),
            })),
            other => Err(unexpected(other)),
        }
    }

    async fn list_settlements(
        &self,
        req: Request<ListSettlementsRequest>,
    ) -> Result<Response<ListSettlementsResponse>, Status> {
        let r = own(req)?;
        let q = Query::Statement {
            institution: convert::institution("institution_id", &r.institution_id)?,
            from: convert::date("from", &r.from)?,
            to: convert::date("to", &r.to)?,
            page_token: r.page_token,
            page_size: convert::page_size(r.page_size),
        };
        match answer(self.mesh.app.query(q).await?)? {
            Answer::Statement { settlements, next_page_token } => {
                let live = settlements.iter().filter(|s| s.status == SettlementStatus::Settled);
                let total: Money = live.clone().map(|s| s.split.total).sum();
                let fund_total: Money = live.map(|s| s.split.fund_total()).sum();
                Ok(Response::new(ListSettlementsResponse {
                    settlements: settlements.iter().map(convert::settle_response).collect(),
                    fund_total: fund_total.to_string(),
                    total: total.to_string(),
                    next_page_token,
                }))
            }
            other => Err(unexpected(other)),
        }
    }

    async fn declare_month(&self, req: Request<DeclareMonthRequest>) -> Result<Response<DeclareMonthResponse>, Status> {
        let r = own(req)?;
        let cmd = medmesh_state::PaymentCommand::Declare {
            institution: convert::institution("institution_id", &r.institution_id)?,
            serial: convert::serial("serial", &r.serial)?,
            period: convert::period("period", &r.period)?,
        };
        Ok(Response::new(DeclareMonthResponse {
            declaration: Some(super::payment::declaration(&self.mesh, cmd).await?),
        }))
    }

    async fn contest_deduction(
        &self,
        req: Request<ContestDeductionRequest>,
    ) -> Result<Response<ContestDeductionResponse>, Status> {
        let r = own(req)?;
        let cmd = medmesh_state::PaymentCommand::Contest {
            institution: convert::institution("institution_id", &r.institution_id)?,
            period: convert::period("period", &r.period)?,
            settlement: convert::serial("settlement_serial", &r.settlement_serial)?,
            reason: r.reason,
        };
        Ok(Response::new(ContestDeductionResponse {
            declaration: Some(super::payment::declaration(&self.mesh, cmd).await?),
        }))
    }

    async fn get_payment_statement(
        &self,
        req: Request<GetPaymentStatementRequest>,
    ) -> Result<Response<GetPaymentStatementResponse>, Status> {
        let r = own(req)?;
        let statement = super::payment::statement(&self.mesh, &r.institution_id, &r.period).await?;
        Ok(Response::new(GetPaymentStatementResponse { statement: Some(statement) }))
    }

    async fn list_declarations(
        &self,
        req: Request<ListDeclarationsRequest>,
    ) -> Result<Response<ListDeclarationsResponse>, Status> {
        let r = own(req)?;
        let (declarations, next_page_token) =
            super::payment::declarations(&self.mesh, &r.institution_id, &r.page_token, r.page_size).await?;
        Ok(Response::new(ListDeclarationsResponse { declarations, next_page_token }))
    }

    async fn quote_prepayment(
        &self,
        req: Request<QuotePrepaymentRequest>,
    ) -> Result<Response<QuotePrepaymentResponse>, Status> {
        let r = own(req)?;
        let institution = convert::institution("institution_id", &r.institution_id)?;
        let kind = convert::prepayment_kind("kind", r.kind)?;
        let procurement = convert::money_or_zero("procurement_amount", &r.procurement_amount)?;
        match answer(self.mesh.app.query(Query::PrepaymentQuote { institution, kind, procurement, now: now() }).await?)?
        {
            Answer::PrepaymentQuote(s) => {
                Ok(Response::new(QuotePrepaymentResponse { sizing: Some(convert::sizing_pb(&s)) }))
            }
            other => Err(unexpected(other)),
        }
    }

    async fn list_prepayments(
        &self,
        req: Request<ListPrepaymentsRequest>,
    ) -> Result<Response<ListPrepaymentsResponse>, Status> {
        let r = own(req)?;
        let (prepayments, outstanding, payments_stopped) =
            super::payment::prepayments(&self.mesh, &r.institution_id).await?;
        Ok(Response::new(ListPrepaymentsResponse { prepayments, outstanding, payments_stopped }))
    }

    async fn get_budget(&self, req: Request<GetBudgetRequest>) -> Result<Response<GetBudgetResponse>, Status> {
        let r = own(req)?;
        let budget = super::payment::budget(&self.mesh, &r.institution_id, r.year).await?;
        Ok(Response::new(GetBudgetResponse { budget: Some(budget) }))
    }
}
