//! The report service (whistleblowing, issue 13.2): intake and status for anyone, handling for
//! the agency, the sealed reporter for the report officer alone.

use std::sync::Arc;

use medmesh_state::reports::ReportCommand;
use medmesh_state::{Answer, Outcome, ProvinceCommand, Query};
use tonic::{Request, Response, Status};

use super::{answer, outcome, unexpected};
use crate::access::Caller;
use crate::convert;
use crate::mesh::Mesh;
use crate::pb::report_service_server::ReportService;
use crate::pb::*;

/// Serves [`ReportService`] on a replica.
pub struct Reports {
    pub(crate) mesh: Arc<Mesh>,
}

impl Reports {
    fn province_only(&self) -> Result<(), Status> {
        if self.mesh.is_federation() {
            return Err(Status::failed_precondition(
                "province: the federation receives no reports; report to the institution's province",
            ));
        }
        Ok(())
    }

    async fn run(&self, cmd: ReportCommand) -> Result<medmesh_state::reports::ReportRecord, Status> {
        self.province_only()?;
        match outcome(self.mesh.app.propose(ProvinceCommand::Report(cmd)).await?)? {
            Outcome::Report(r) => Ok(*r),
            other => Err(unexpected(other)),
        }
    }
}

fn id(field: &str, v: &str) -> Result<(), Status> {
    medmesh_supervision::reports::check_id(field, v).map_err(|e| Status::invalid_argument(e.to_string()))
}

#[tonic::async_trait]
impl ReportService for Reports {
    async fn submit_report(&self, req: Request<SubmitReportRequest>) -> Result<Response<SubmitReportResponse>, Status> {
        self.province_only()?;
        let (cmd, code) = convert::submit_report(req.into_inner(), &self.mesh.province, self.mesh.seal()?)?;
        let r = self.run(cmd).await?;
        Ok(Response::new(SubmitReportResponse {
            report_id: r.report.id.clone(),
            receipt_code: code,
            acknowledge_by: r.report.acknowledge_by.to_string(),
            handled_by: r.handled_by.as_ref().map(|p| p.to_string()).unwrap_or_default(),
        }))
    }

    async fn get_report_status(
        &self,
        req: Request<GetReportStatusRequest>,
    ) -> Result<Response<GetReportStatusResponse>, Status> {
        self.province_only()?;
        let receipt = convert::receipt_lookup(&req.into_inner().receipt_code, self.mesh.seal()?)?;
        match answer(self.mesh.app.query(Query::ReportByReceipt { receipt }).await?)? {
            Answer::Report(r) => Ok(Response::new(convert::report_status_pb(&r))),
            other => Err(unexpected(other)),
        }
    }

    async fn put_report_policy(
        &self,
        req: Request<PutReportPolicyRequest>,
    ) -> Result<Response<PutReportPolicyResponse>, Status> {
        self.province_only()?;
        let policy = convert::report_policy(req.into_inner().policy)?;
        match outcome(self.mesh.app.propose(ProvinceCommand::Report(ReportCommand::PutPolicy(policy))).await?)? {
            Outcome::ReportPolicy(p) => {
                Ok(Response::new(PutReportPolicyResponse { policy: Some(convert::report_policy_pb(&p)) }))
            }
            other => Err(unexpected(other)),
        }
    }

    async fn get_report_policy(
        &self,
        _req: Request<GetReportPolicyRequest>,
    ) -> Result<Response<GetReportPolicyResponse>, Status> {
        self.province_only()?;
        match answer(self.mesh.app.query(Query::ReportPolicy).await?)? {
            Answer::ReportPolicy(p) => {
                Ok(Response::new(GetReportPolicyResponse { policy: Some(convert::report_policy_pb(&p)) }))
            }
            other => Err(unexpected(other)),
        }
    }

    async fn list_reports(&self, req: Request<ListReportsRequest>) -> Result<Response<ListReportsResponse>, Status> {
        self.province_only()?;
        let r = req.into_inner();
        let limit = convert::page_size(r.page_size);
        if !r.page_token.is_empty() {
            id("page_token", &r.page_token)?;
        }
        match answer(self.mesh.app.query(Query::Reports { after: r.page_token, limit }).await?)? {
            Answer::Reports { today, reports } => {
                // The token moves past every report read, listed or not.
                let next_page_token = if reports.len() == limit {
                    reports.last().map(|r| r.report.id.clone()).unwrap_or_default()
                } else {
                    String::new()
                };
                let reports = reports
                    .iter()
                    .map(|x| convert::report_pb(x, today))
                    .filter(|x| !r.overdue_only || x.overdue)
                    .collect();
                Ok(Response::new(ListReportsResponse { reports, next_page_token }))
            }
            other => Err(unexpected(other)),
        }
    }

    async fn acknowledge_report(
        &self,
        req: Request<AcknowledgeReportRequest>,
    ) -> Result<Response<AcknowledgeReportResponse>, Status> {
        let r = req.into_inner();
        id("report_id", &r.report_id)?;
        let rec = self.run(ReportCommand::Acknowledge { id: r.report_id, accept: r.accept, note: r.note }).await?;
        Ok(Response::new(AcknowledgeReportResponse { report: Some(convert::report_pb(&rec, None)) }))
    }

    async fn conclude_report(
        &self,
        req: Request<ConcludeReportRequest>,
    ) -> Result<Response<ConcludeReportResponse>, Status> {
        let r = req.into_inner();
        id("report_id", &r.report_id)?;
        let rec = self.run(ReportCommand::Conclude { id: r.report_id, reply: r.reply }).await?;
        Ok(Response::new(ConcludeReportResponse { report: Some(convert::report_pb(&rec, None)) }))
    }

    async fn pay_report_reward(
        &self,
        req: Request<PayReportRewardRequest>,
    ) -> Result<Response<PayReportRewardResponse>, Status> {
        let r = req.into_inner();
        id("report_id", &r.report_id)?;
        id("reference", &r.reference)?;
        let rec = self.run(ReportCommand::PayReward { id: r.report_id, reference: r.reference }).await?;
        let (amount, recovered, case_id) = convert::reward_pb(&rec);
        Ok(Response::new(PayReportRewardResponse {
            report: Some(convert::report_pb(&rec, None)),
            amount,
            recovered,
            case_id,
        }))
    }

    async fn open_reporter(&self, req: Request<OpenReporterRequest>) -> Result<Response<OpenReporterResponse>, Status> {
        let officer = match Caller::of(&req) {
            Caller::Verified(who) => who.uri(),
            Caller::Insecure => "insecure".to_string(),
            Caller::Anonymous => return Err(Status::unauthenticated("a report officer's certificate is required")),
        };
        let r = req.into_inner();
        id("report_id", &r.report_id)?;
        // Recorded first: a read that is not in the log does not happen.
        let rec = self.run(ReportCommand::Unseal { id: r.report_id, officer }).await?;
        let reporter = convert::open_reporter(&rec, self.mesh.seal()?)?;
        Ok(Response::new(OpenReporterResponse {
            report_id: rec.report.id.clone(),
            reporter: Some(reporter),
            reporter_reads: rec.read_count,
        }))
    }
}
