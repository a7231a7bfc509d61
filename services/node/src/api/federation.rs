//! The federation service: positions, transfer decisions and the province directory.

use std::collections::BTreeMap;
use std::sync::Arc;

use medmesh_state::{
    Answer, ClearingView, Decision, FederationCommand, MonthStatus, Outcome, PrepaidView, Query, TransferId,
};
use medmesh_types::Money;
use tonic::{Request, Response, Status};

use super::{answer, unexpected};
use crate::access::Caller;
use crate::convert;
use crate::mesh::Mesh;
use crate::pb;
use crate::pb::federation_service_server::FederationService;
use crate::pb::*;

/// Serves [`FederationService`] on any replica.
pub struct Federation {
    pub(crate) mesh: Arc<Mesh>,
}

impl Federation {
    fn federated(&self) -> Result<(), Status> {
        if self.mesh.federated() {
            Ok(())
        } else {
            Err(Status::failed_precondition("federation: this node is not part of a federation"))
        }
    }

    async fn ask(&self, q: Query) -> Result<Answer, Status> {
        self.federated()?;
        answer(self.mesh.fed_query(q).await?)
    }

    /// Refuses what only the federation's own replicas do, at a province replica.
    fn at_federation(&self, what: &str) -> Result<(), Status> {
        if self.mesh.is_federation() {
            Ok(())
        } else {
            Err(Status::failed_precondition(format!(
                "federation: {what} at the federation's replicas (province 000000); call one of them"
            )))
        }
    }

    async fn act(&self, cmd: FederationCommand) -> Result<Outcome, Status> {
        self.federated()?;
        self.mesh.fed_propose(cmd).await?.map_err(crate::convert::status)
    }
}

/// A transfer named by its fields in a request.
fn transfer_id(treatment: &str, institution: &str, serial: &str) -> Result<TransferId, Status> {
    Ok(TransferId {
        treatment: convert::province("treatment_province", treatment)?,
        institution: convert::institution("institution_id", institution)?,
        serial: convert::serial("serial", serial)?,
    })
}

fn prepaid_pb(v: &PrepaidView) -> PrepaidAccount {
    PrepaidAccount {
        province: v.province.to_string(),
        topped_up: v.topped_up.to_string(),
        consumed: v.consumed.to_string(),
        balance: v.balance.to_string(),
        warning_below: v.warning_below.to_string(),
        warning: v.warning,
        paid: v.paid.to_string(),
        owed: v.owed.to_string(),
        received: v.received.to_string(),
        adjusted: v.adjusted.to_string(),
        settled_months: v.settled_months,
    }
}

fn clearing_pb(v: &ClearingView) -> Option<Clearing> {
    let nets = province_nets(v.statements.iter().map(|s| (&s.insured, &s.treatment, s.total)));
    Some(Clearing {
        month: v.month.clone(),
        status: match v.record.status() {
            MonthStatus::Open => "OPEN",
            MonthStatus::Cleared => "CLEARED",
            MonthStatus::Settled => "SETTLED",
        }
        .into(),
        cleared_at_ms: v.record.cleared_at.map(|t| t.millis()).unwrap_or(0),
        settled_at_ms: v.record.settled_at.map(|t| t.millis()).unwrap_or(0),
        statements: v
            .statements
            .iter()
            .map(|s| pb::ClearingStatement {
                insured_province: s.insured.to_string(),
                treatment_province: s.treatment.to_string(),
                lines: s
                    .lines
                    .iter()
                    .map(|l| ClearingLine {
                        institution_id: l.institution.to_string(),
                        serial: l.serial.to_string(),
                        amount: l.amount.to_string(),
                        confirmed: l.confirmed,
                        kind: l.kind.name().into(),
                        dispute_status: match l.dispute.as_ref().map(|d| d.outcome.as_ref().map(|o| o.upheld)) {
                            None => "",
                            Some(None) => "OPEN",
                            Some(Some(true)) => "UPHELD",
                            Some(Some(false)) => "REJECTED",
                        }
                        .into(),
                        claimed_amount: l.dispute.as_ref().map(|d| d.claimed.to_string()).unwrap_or_default(),
                        dispute_reason: l.dispute.as_ref().map(|d| d.reason.clone()).unwrap_or_default(),
                    })
                    .collect(),
                total: s.total.to_string(),
                confirmed_total: s.confirmed_total.to_string(),
                line_count: s.line_count,
            })
            .collect(),
        provinces: nets,
    })
}

/// Each province's side of `(insured, treatment, amount)` debts: owed, receivable and net.
fn province_nets<'a>(
    debts: impl Iterator<Item = (&'a medmesh_types::ProvinceCode, &'a medmesh_types::ProvinceCode, Money)>,
) -> Vec<ProvinceNet> {
    let mut nets: BTreeMap<String, (Money, Money)> = BTreeMap::new();
    for (insured, treatment, amount) in debts {
        nets.entry(insured.to_string()).or_insert((Money::ZERO, Money::ZERO)).0 += amount;
        nets.entry(treatment.to_string()).or_insert((Money::ZERO, Money::ZERO)).1 += amount;
    }
    nets.into_iter()
        .map(|(province, (owed, receivable))| ProvinceNet {
            province,
            owed: owed.to_string(),
            receivable: receivable.to_string(),
            net: (receivable - owed).to_string(),
        })
        .collect()
}

#[tonic::async_trait]
impl FederationService for Federation {
    async fn list_anchors(&self, req: Request<ListAnchorsRequest>) -> Result<Response<ListAnchorsResponse>, Status> {
        let r = req.into_inner();
        let province = convert::province("province", &r.province)?;
        let limit = convert::audit_page(r.page_size)?;
        let Answer::Anchors(list) = self.ask(Query::Anchors { province, from: r.from_seq, limit }).await? else {
            return Err(unexpected("anchors"));
        };
        let next_seq = if list.len() == limit { list.last().map(|a| a.head.seq + 1).unwrap_or(0) } else { 0 };
        Ok(Response::new(ListAnchorsResponse { anchors: list.iter().map(convert::anchor_pb).collect(), next_seq }))
    }

    async fn get_positions(
        &self,
        _req: Request<GetPositionsRequest>,
    ) -> Result<Response<GetPositionsResponse>, Status> {
        let Answer::Positions(list) = self.ask(Query::Positions).await? else {
            return Err(unexpected("positions"));
        };
        let provinces = province_nets(list.iter().map(|(i, t, p)| (i, t, p.owed())));
        let mut total = Money::ZERO;
        let mut settlements = 0;
        let mut positions = Vec::with_capacity(list.len());
        for (insured, treatment, p) in list {
            total += p.owed();
            settlements += p.settlements;
            positions.push(Position {
                insured_province: insured.to_string(),
                treatment_province: treatment.to_string(),
                settlements: p.settlements,
                amount: p.owed().to_string(),
                in_force: p.amount.to_string(),
                settled: p.settled.to_string(),
                adjusted: p.adjusted.to_string(),
            });
        }
        Ok(Response::new(GetPositionsResponse { positions, provinces, total: total.to_string(), settlements }))
    }

    async fn get_transfer(&self, req: Request<GetTransferRequest>) -> Result<Response<GetTransferResponse>, Status> {
        let r = req.into_inner();
        let transfer = transfer_id(&r.treatment_province, &r.institution_id, &r.serial)?;
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

    async fn top_up(&self, req: Request<TopUpRequest>) -> Result<Response<TopUpResponse>, Status> {
        let caller = Caller::of(&req);
        let r = req.into_inner();
        convert::province("province", &r.province)?;
        caller.is_agency_of(&r.province)?;
        let warning_below = if r.warning_below.trim().is_empty() {
            None
        } else {
            Some(convert::money("warning_below", &r.warning_below)?)
        };
        let cmd = FederationCommand::TopUp {
            province: convert::province("province", &r.province)?,
            serial: convert::serial("serial", &r.serial)?,
            amount: convert::money("amount", &r.amount)?,
            warning_below,
        };
        match self.act(cmd).await? {
            Outcome::Prepaid(v) => Ok(Response::new(TopUpResponse { account: Some(prepaid_pb(&v)) })),
            other => Err(unexpected(other)),
        }
    }

    async fn get_national_aggregates(
        &self,
        req: Request<GetNationalAggregatesRequest>,
    ) -> Result<Response<GetNationalAggregatesResponse>, Status> {
        let caller = Caller::of(&req);
        let r = req.into_inner();
        let period = convert::agg_period("period", &r.period)?;
        let province = if r.province.is_empty() { None } else { Some(convert::province("province", &r.province)?) };
        // The nation sees every province; an agency only its own.
        if !matches!(caller.identity(), Some(crate::identity::Identity::National)) {
            caller.is_agency_of(&r.province)?;
        }
        match self.ask(Query::NationalAggregates { period, province }).await? {
            Answer::NationalAggregates(list) => Ok(Response::new(GetNationalAggregatesResponse {
                aggregates: list.iter().map(|(p, a)| convert::aggregate_pb(p.as_str(), a)).collect(),
            })),
            other => Err(unexpected(other)),
        }
    }

    async fn get_non_local_flows(
        &self,
        req: Request<GetNonLocalFlowsRequest>,
    ) -> Result<Response<GetNonLocalFlowsResponse>, Status> {
        let period = convert::agg_period("period", &req.into_inner().period)?;
        match self.ask(Query::NationalAggregates { period, province: None }).await? {
            Answer::NationalAggregates(list) => Ok(Response::new(GetNonLocalFlowsResponse {
                flows: convert::flows_pb(&medmesh_state::aggregate::flows(&list)),
            })),
            other => Err(unexpected(other)),
        }
    }

    async fn get_prepaid(&self, _req: Request<GetPrepaidRequest>) -> Result<Response<GetPrepaidResponse>, Status> {
        match self.ask(Query::Prepaid).await? {
            Answer::Prepaid(list) => {
                for v in list.iter().filter(|v| v.warning) {
                    tracing::warn!(province = %v.province, balance = %v.balance, threshold = %v.warning_below, "prepaid balance for non-local care is low");
                }
                Ok(Response::new(GetPrepaidResponse { accounts: list.iter().map(prepaid_pb).collect() }))
            }
            other => Err(unexpected(other)),
        }
    }

    async fn run_clearing(&self, req: Request<RunClearingRequest>) -> Result<Response<RunClearingResponse>, Status> {
        self.at_federation("clearing runs")?;
        let month = req.into_inner().month;
        match self.act(FederationCommand::RunClearing { month }).await? {
            Outcome::Clearing(v) => {
                crate::metrics::get().clearing("cleared", v.statements.iter().map(|s| s.lines.len()).sum());
                Ok(Response::new(RunClearingResponse { clearing: clearing_pb(&v) }))
            }
            other => Err(unexpected(other)),
        }
    }

    async fn settle_clearing(
        &self,
        req: Request<SettleClearingRequest>,
    ) -> Result<Response<SettleClearingResponse>, Status> {
        self.at_federation("clearing is settled")?;
        let month = req.into_inner().month;
        match self.act(FederationCommand::SettleClearing { month }).await? {
            Outcome::Clearing(v) => {
                crate::metrics::get().clearing("settled", 0);
                Ok(Response::new(SettleClearingResponse { clearing: clearing_pb(&v) }))
            }
            other => Err(unexpected(other)),
        }
    }

    async fn put_national_rule(
        &self,
        req: Request<PutNationalRuleRequest>,
    ) -> Result<Response<PutNationalRuleResponse>, Status> {
        self.at_federation("national rules are recorded")?;
        let rule = convert::rule(req.into_inner().rule)?;
        match self.act(FederationCommand::PutRule(rule)).await? {
            Outcome::Stored => Ok(Response::new(PutNationalRuleResponse {})),
            other => Err(unexpected(other)),
        }
    }

    async fn list_national_rules(
        &self,
        _req: Request<ListNationalRulesRequest>,
    ) -> Result<Response<ListNationalRulesResponse>, Status> {
        match self.ask(Query::Rules).await? {
            Answer::Rules(rules) => Ok(Response::new(ListNationalRulesResponse {
                rules: rules.iter().map(convert::rule_record_pb).collect(),
            })),
            other => Err(unexpected(other)),
        }
    }

    async fn get_clearing(&self, req: Request<GetClearingRequest>) -> Result<Response<GetClearingResponse>, Status> {
        let r = req.into_inner();
        let q = Query::Clearing {
            month: r.month.clone(),
            page_token: r.page_token,
            page_size: convert::page_size(r.page_size),
        };
        match self.ask(q).await? {
            Answer::Clearing { view, next_page_token } => {
                Ok(Response::new(GetClearingResponse { clearing: clearing_pb(&view), next_page_token }))
            }
            other => Err(unexpected(other)),
        }
    }

    async fn dispute_clearing_line(
        &self,
        req: Request<DisputeClearingLineRequest>,
    ) -> Result<Response<DisputeClearingLineResponse>, Status> {
        let caller = Caller::of(&req);
        let r = req.into_inner();
        let transfer = transfer_id(&r.treatment_province, &r.institution_id, &r.serial)?;
        caller.is_institution_of(&r.treatment_province, &r.institution_id)?;
        let cmd = FederationCommand::DisputeClearing {
            month: r.month,
            transfer,
            claimed: convert::money("claimed_amount", &r.claimed_amount)?,
            reason: r.reason,
        };
        match self.act(cmd).await? {
            Outcome::Clearing(v) => Ok(Response::new(DisputeClearingLineResponse { clearing: clearing_pb(&v) })),
            other => Err(unexpected(other)),
        }
    }

    async fn resolve_clearing_dispute(
        &self,
        req: Request<ResolveClearingDisputeRequest>,
    ) -> Result<Response<ResolveClearingDisputeResponse>, Status> {
        self.at_federation("disputes are decided")?;
        let r = req.into_inner();
        let transfer = transfer_id(&r.treatment_province, &r.institution_id, &r.serial)?;
        let cmd = FederationCommand::ResolveDispute { month: r.month, transfer, uphold: r.uphold, note: r.note };
        match self.act(cmd).await? {
            Outcome::Clearing(v) => Ok(Response::new(ResolveClearingDisputeResponse { clearing: clearing_pb(&v) })),
            other => Err(unexpected(other)),
        }
    }

    async fn confirm_clearing_line(
        &self,
        req: Request<ConfirmClearingLineRequest>,
    ) -> Result<Response<ConfirmClearingLineResponse>, Status> {
        let caller = Caller::of(&req);
        let r = req.into_inner();
        let treatment = convert::province("treatment_province", &r.treatment_province)?;
        let institution = convert::institution("institution_id", &r.institution_id)?;
        caller.is_institution_of(&r.treatment_province, &r.institution_id)?;
        let cmd = FederationCommand::ConfirmClearing {
            month: r.month.clone(),
            treatment,
            institution,
            serial: convert::serial("serial", &r.serial)?,
            confirm: r.confirm,
        };
        match self.act(cmd).await? {
            Outcome::Clearing(v) => Ok(Response::new(ConfirmClearingLineResponse { clearing: clearing_pb(&v) })),
            other => Err(unexpected(other)),
        }
    }
}
