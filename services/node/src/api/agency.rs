//! The agency service.

use std::sync::Arc;

use medmesh_state::{Answer, FederationCommand, Outcome, ProvinceCommand, Query};
use medmesh_supervision::credit::Party;
use tonic::{Request, Response, Status};

use super::{answer, outcome, unexpected};
use crate::access::Caller;
use crate::convert;
use crate::mesh::Mesh;
use crate::pb;
use crate::pb::agency_service_server::AgencyService;
use crate::pb::*;

/// Serves [`AgencyService`] on a replica.
pub struct Agency {
    pub(crate) mesh: Arc<Mesh>,
}

/// The day flight inspections are overdue as of: the group's day, or the clock's when no entry
/// came since.
fn flight_today(group: Option<medmesh_types::Date>) -> Option<medmesh_types::Date> {
    group.max(Some(crate::mesh::now().date()))
}

impl Agency {
    async fn inspection_step(
        &self,
        cmd: medmesh_state::inspection::InspectionCommand,
    ) -> Result<medmesh_state::inspection::InspectionRecord, Status> {
        match outcome(self.mesh.app.propose(ProvinceCommand::Inspection(cmd)).await?)? {
            Outcome::Inspection(r) => Ok(*r),
            other => Err(unexpected(other)),
        }
    }

    async fn flight_step(
        &self,
        cmd: medmesh_state::inspection::InspectionCommand,
    ) -> Result<Option<pb::FlightInspection>, Status> {
        match outcome(self.mesh.app.propose(ProvinceCommand::Inspection(cmd)).await?)? {
            // Just written: its reports are filed now or due later, so nothing is overdue yet
            // but what the read says; read back for the group's day.
            Outcome::Flight(f) => self.flight(f.id.clone()).await,
            other => Err(unexpected(other)),
        }
    }

    async fn flight(&self, id: String) -> Result<Option<pb::FlightInspection>, Status> {
        medmesh_supervision::reports::check_id("flight_id", &id)
            .map_err(|e| Status::invalid_argument(e.to_string()))?;
        match answer(self.mesh.app.query(Query::Flight { id }).await?)? {
            Answer::Flights { today, flights } => {
                Ok(flights.first().map(|f| convert::flight_pb(f, flight_today(today))))
            }
            other => Err(unexpected(other)),
        }
    }

    /// Fills the grades of a plan's targets given none with their credit grades today, and
    /// leaves out of the pool those of them that are trusted today (a joint-incentive entry in
    /// force: fewer routine inspections), returning their ids.
    async fn grade_targets(
        &self,
        cmd: &mut medmesh_state::inspection::InspectionCommand,
        ungraded: &[usize],
    ) -> Result<Vec<String>, Status> {
        let medmesh_state::inspection::InspectionCommand::PutPlan { plan, .. } = cmd else {
            return Ok(Vec::new());
        };
        if ungraded.is_empty() {
            return Ok(Vec::new());
        }
        let institutions = ungraded
            .iter()
            .map(|&i| convert::institution(&format!("plan.targets[{i}].id"), &plan.targets[i].id))
            .collect::<Result<Vec<_>, Status>>()?;
        let q = Query::CreditGrades { institutions, today: crate::mesh::now().date() };
        let grades = match answer(self.mesh.app.query(q).await?)? {
            Answer::CreditGrades(g) => g,
            other => return Err(unexpected(other)),
        };
        let mut trusted = Vec::new();
        for (&i, g) in ungraded.iter().zip(grades) {
            let (g, t) =
                g.ok_or_else(|| Status::not_found(format!("plan.targets[{i}].id: is not an institution known here")))?;
            plan.targets[i].grade = convert::draw_grade(g);
            if t {
                trusted.push(i);
            }
        }
        // Highest index first, so each removal leaves the indexes still to remove in place.
        let mut exempt: Vec<String> = trusted.iter().rev().map(|&i| plan.targets.remove(i).id).collect();
        exempt.reverse();
        Ok(exempt)
    }

    async fn inspection(&self, id: String) -> Result<medmesh_state::inspection::InspectionView, Status> {
        if id.is_empty() || id.len() > medmesh_inspection::MAX_ID {
            return Err(Status::invalid_argument("plan_id: is not a plan id"));
        }
        match answer(self.mesh.app.query(Query::Inspection { id }).await?)? {
            Answer::Inspection(v) => Ok(*v),
            other => Err(unexpected(other)),
        }
    }

    async fn put<T: Default>(&self, cmd: ProvinceCommand) -> Result<Response<T>, Status> {
        match outcome(self.mesh.app.propose(cmd).await?)? {
            Outcome::Stored => Ok(Response::new(T::default())),
            other => Err(unexpected(other)),
        }
    }
}

#[tonic::async_trait]
impl AgencyService for Agency {
    async fn put_person(&self, req: Request<PutPersonRequest>) -> Result<Response<PutPersonResponse>, Status> {
        let (cmd, secrets) = convert::put_person(req.into_inner(), self.mesh.seal()?)?;
        let entries = if self.mesh.federated() { self.mesh.directory_entries(&secrets) } else { Vec::new() };
        let r = self.put(cmd).await?;
        if !entries.is_empty() {
            // The directory tells treatment provinces where the person is insured; an
            // acknowledged PutPerson has reached it (a retry is idempotent).
            outcome(self.mesh.fed_propose(FederationCommand::Directory { entries }).await?)?;
        }
        Ok(r)
    }

    async fn put_institution(
        &self,
        req: Request<PutInstitutionRequest>,
    ) -> Result<Response<PutInstitutionResponse>, Status> {
        self.put(convert::put_institution(req.into_inner())?).await
    }

    async fn put_personnel(&self, req: Request<PutPersonnelRequest>) -> Result<Response<PutPersonnelResponse>, Status> {
        self.put(convert::put_personnel(req.into_inner())?).await
    }

    async fn put_catalogue_item(
        &self,
        req: Request<PutCatalogueItemRequest>,
    ) -> Result<Response<PutCatalogueItemResponse>, Status> {
        self.put(convert::put_catalogue_item(req.into_inner())?).await
    }

    async fn put_policy(&self, req: Request<PutPolicyRequest>) -> Result<Response<PutPolicyResponse>, Status> {
        self.put(convert::put_policy(req.into_inner())?).await
    }

    async fn contribute(&self, req: Request<ContributeRequest>) -> Result<Response<ContributeResponse>, Status> {
        match outcome(self.mesh.app.propose(convert::contribute(req.into_inner())?).await?)? {
            Outcome::Contributed { balance } => Ok(Response::new(ContributeResponse { balance: balance.to_string() })),
            other => Err(unexpected(other)),
        }
    }

    async fn record_violation(
        &self,
        req: Request<RecordViolationRequest>,
    ) -> Result<Response<RecordViolationResponse>, Status> {
        let cmd = convert::record_violation(req.into_inner())?;
        let code = match &cmd {
            ProvinceCommand::RecordViolation(v) => {
                if self.mesh.federated() && !self.mesh.is_federation() {
                    // Shared first, so the points count in every province; then here, so the
                    // answer reflects them at once.
                    outcome(self.mesh.fed_propose(FederationCommand::RecordViolation(v.clone())).await?)?;
                }
                v.personnel.clone()
            }
            other => return Err(unexpected(other)),
        };
        match outcome(self.mesh.app.propose(cmd).await?)? {
            Outcome::Qualification(q) => {
                Ok(Response::new(RecordViolationResponse { qualification: Some(convert::qualification(&code, &q)) }))
            }
            other => Err(unexpected(other)),
        }
    }

    async fn get_qualification(
        &self,
        req: Request<GetQualificationRequest>,
    ) -> Result<Response<GetQualificationResponse>, Status> {
        let code = convert::personnel("personnel_code", &req.into_inner().personnel_code)?;
        let now = medmesh_types::LogTime(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as i64)
                .unwrap_or(0),
        );
        match answer(self.mesh.app.query(Query::Qualification { code: code.clone(), now }).await?)? {
            Answer::Qualification(q) => {
                Ok(Response::new(GetQualificationResponse { qualification: Some(convert::qualification(&code, &q)) }))
            }
            other => Err(unexpected(other)),
        }
    }

    async fn get_policy(&self, _req: Request<GetPolicyRequest>) -> Result<Response<GetPolicyResponse>, Status> {
        match answer(self.mesh.app.query(Query::Policy).await?)? {
            Answer::Policy(p) => Ok(Response::new(GetPolicyResponse { policy: Some(convert::policy_pb(&p)) })),
            other => Err(unexpected(other)),
        }
    }

    async fn get_institution(
        &self,
        req: Request<GetInstitutionRequest>,
    ) -> Result<Response<GetInstitutionResponse>, Status> {
        let id = convert::institution("id", &req.into_inner().id)?;
        let i = match answer(self.mesh.app.query(Query::Institution { id: id.clone() }).await?)? {
            Answer::Institution(i) => i,
            other => return Err(unexpected(other)),
        };
        let today = crate::mesh::now().date();
        let rating = match answer(self.mesh.app.query(Query::CreditRating { institution: id, today }).await?)? {
            Answer::CreditRating(r) => r,
            other => return Err(unexpected(other)),
        };
        Ok(Response::new(GetInstitutionResponse {
            institution: Some(convert::institution_pb(&i)),
            credit_grade: convert::grade_pb(convert::draw_grade(rating.grade)),
            renewal_warning: medmesh_supervision::credit::renewal_warning(
                rating.grade,
                rating.score,
                i.agreement_end,
                today,
            )
            .unwrap_or_default(),
        }))
    }

    async fn get_personnel(&self, req: Request<GetPersonnelRequest>) -> Result<Response<GetPersonnelResponse>, Status> {
        let code = convert::personnel("code", &req.into_inner().code)?;
        match answer(self.mesh.app.query(Query::Personnel { code }).await?)? {
            Answer::Personnel(p) => {
                Ok(Response::new(GetPersonnelResponse { personnel: Some(convert::personnel_pb(&p)) }))
            }
            other => Err(unexpected(other)),
        }
    }

    async fn get_catalogue_item(
        &self,
        req: Request<GetCatalogueItemRequest>,
    ) -> Result<Response<GetCatalogueItemResponse>, Status> {
        let code = convert::item_code("code", &req.into_inner().code)?;
        match answer(self.mesh.app.query(Query::CatalogueItem { code }).await?)? {
            Answer::CatalogueItem(i) => {
                Ok(Response::new(GetCatalogueItemResponse { item: Some(convert::catalogue_item_pb(&i)) }))
            }
            other => Err(unexpected(other)),
        }
    }

    async fn get_person(&self, req: Request<GetPersonRequest>) -> Result<Response<GetPersonResponse>, Status> {
        let r = req.into_inner();
        let kind = convert::certificate_kind("certificate_kind", r.certificate_kind)?;
        let key = self.mesh.cert_key(kind, &r.certificate)?;
        match answer(self.mesh.app.query(Query::Person { kind, key }).await?)? {
            Answer::Person(p) => {
                let name = self.mesh.open_person(&p)?.name;
                Ok(Response::new(convert::person_pb(&p, name)))
            }
            other => Err(unexpected(other)),
        }
    }

    async fn put_rule(&self, req: Request<PutRuleRequest>) -> Result<Response<PutRuleResponse>, Status> {
        let rule = convert::rule(req.into_inner().rule)?;
        self.put(ProvinceCommand::PutRule(rule)).await
    }

    async fn list_rules(&self, _req: Request<ListRulesRequest>) -> Result<Response<ListRulesResponse>, Status> {
        match answer(self.mesh.app.query(Query::Rules).await?)? {
            Answer::Rules(rules) => {
                Ok(Response::new(ListRulesResponse { rules: rules.iter().map(convert::rule_record_pb).collect() }))
            }
            other => Err(unexpected(other)),
        }
    }

    async fn test_rule(&self, req: Request<TestRuleRequest>) -> Result<Response<TestRuleResponse>, Status> {
        let r = req.into_inner();
        let q = Query::TestRule {
            rule: convert::rule(r.rule)?,
            institution: convert::institution("institution_id", &r.institution_id)?,
            visit: convert::serial("visit_serial", &r.visit_serial)?,
            now: crate::mesh::now(),
        };
        match answer(self.mesh.app.query(q).await?)? {
            Answer::Verdict(v) => Ok(Response::new(TestRuleResponse {
                hits: v.hits.iter().map(convert::hit_pb).collect(),
                faults: v.faults.iter().map(convert::fault_pb).collect(),
            })),
            other => Err(unexpected(other)),
        }
    }

    async fn put_knowledge(&self, req: Request<PutKnowledgeRequest>) -> Result<Response<PutKnowledgeResponse>, Status> {
        let k = convert::knowledge(req.into_inner())?;
        self.put(ProvinceCommand::PutKnowledge(k)).await
    }

    async fn list_alerts(&self, req: Request<ListAlertsRequest>) -> Result<Response<ListAlertsResponse>, Status> {
        let r = req.into_inner();
        let limit = convert::audit_page(r.page_size)?;
        let from = r.from_seq.max(1);
        match answer(self.mesh.app.query(Query::Alerts { from, limit: limit + 1 }).await?)? {
            Answer::Alerts(mut alerts) => {
                let next_from_seq = if alerts.len() > limit { alerts.pop().map(|a| a.seq).unwrap_or(0) } else { 0 };
                Ok(Response::new(ListAlertsResponse {
                    alerts: alerts.iter().map(convert::alert_pb).collect(),
                    next_from_seq,
                }))
            }
            other => Err(unexpected(other)),
        }
    }

    async fn review_alert(&self, req: Request<ReviewAlertRequest>) -> Result<Response<ReviewAlertResponse>, Status> {
        let r = req.into_inner();
        let cmd = ProvinceCommand::ReviewAlert { seq: r.seq, accept: r.accept, reason: r.reason };
        match outcome(self.mesh.app.propose(cmd).await?)? {
            Outcome::Alert(a) => Ok(Response::new(ReviewAlertResponse { alert: Some(convert::alert_pb(&a)) })),
            other => Err(unexpected(other)),
        }
    }

    async fn scan_settlements(
        &self,
        req: Request<ScanSettlementsRequest>,
    ) -> Result<Response<ScanSettlementsResponse>, Status> {
        let r = req.into_inner();
        let cmd = ProvinceCommand::ScanRule {
            rule_id: r.rule_id,
            from: convert::date("from", &r.from)?,
            to: convert::date("to", &r.to)?,
            after: r.page_token,
            limit: if r.page_size == 0 { 500 } else { r.page_size },
        };
        match outcome(self.mesh.app.propose(cmd).await?)? {
            Outcome::Scanned(s) => Ok(Response::new(ScanSettlementsResponse {
                scanned: s.scanned,
                checked: s.checked,
                alerts_raised: s.raised,
                next_page_token: s.next,
            })),
            other => Err(unexpected(other)),
        }
    }

    async fn open_case(&self, req: Request<OpenCaseRequest>) -> Result<Response<OpenCaseResponse>, Status> {
        let cmd = convert::open_case(req.into_inner(), &self.mesh.province)?;
        Ok(Response::new(OpenCaseResponse { case: Some(self.case_step(cmd).await?) }))
    }

    async fn investigate_case(
        &self,
        req: Request<InvestigateCaseRequest>,
    ) -> Result<Response<InvestigateCaseResponse>, Status> {
        let r = req.into_inner();
        let cmd = medmesh_state::CaseCommand::Investigate { id: r.case_id, finding: r.finding };
        Ok(Response::new(InvestigateCaseResponse { case: Some(self.case_step(cmd).await?) }))
    }

    async fn decide_case(&self, req: Request<DecideCaseRequest>) -> Result<Response<DecideCaseResponse>, Status> {
        let cmd = convert::decide_case(req.into_inner())?;
        Ok(Response::new(DecideCaseResponse { case: Some(self.case_step(cmd).await?) }))
    }

    async fn execute_case(&self, req: Request<ExecuteCaseRequest>) -> Result<Response<ExecuteCaseResponse>, Status> {
        let cmd = medmesh_state::CaseCommand::Execute { id: req.into_inner().case_id };
        let case = self.case_step(cmd).await?;
        // The points, the discipline entry and the outcome wait in the outbox; publish them now
        // (the recovery pass publishes whatever this misses).
        if let Err(s) = self.mesh.publish_outbox().await {
            tracing::info!(error = %s.message(), "case outcome not yet shared; the recovery pass retries");
        }
        Ok(Response::new(ExecuteCaseResponse { case: Some(case) }))
    }

    async fn lift_credit_entry(
        &self,
        req: Request<LiftCreditEntryRequest>,
    ) -> Result<Response<LiftCreditEntryResponse>, Status> {
        let r = req.into_inner();
        let case = self.case_step(medmesh_state::CaseCommand::LiftCredit { id: r.case_id, reason: r.reason }).await?;
        // The lift waits in the outbox; publish it now (the recovery pass retries what this misses).
        if let Err(s) = self.mesh.publish_outbox().await {
            tracing::info!(error = %s.message(), "credit lift not yet shared; the recovery pass retries");
        }
        Ok(Response::new(LiftCreditEntryResponse { case: Some(case) }))
    }

    async fn close_case(&self, req: Request<CloseCaseRequest>) -> Result<Response<CloseCaseResponse>, Status> {
        let r = req.into_inner();
        let cmd = medmesh_state::CaseCommand::Close { id: r.case_id, reason: r.reason };
        Ok(Response::new(CloseCaseResponse { case: Some(self.case_step(cmd).await?) }))
    }

    async fn get_case(&self, req: Request<GetCaseRequest>) -> Result<Response<GetCaseResponse>, Status> {
        let id = req.into_inner().case_id;
        medmesh_supervision::cases::check_case_id(&id).map_err(|e| Status::invalid_argument(e.to_string()))?;
        match answer(self.mesh.app.query(Query::Case { id }).await?)? {
            Answer::Case(c) => {
                Ok(Response::new(GetCaseResponse { case: Some(convert::case_pb(&c, crate::mesh::now().date())) }))
            }
            other => Err(unexpected(other)),
        }
    }

    async fn list_cases(&self, req: Request<ListCasesRequest>) -> Result<Response<ListCasesResponse>, Status> {
        let r = req.into_inner();
        let limit = convert::page_size(r.page_size);
        if !r.page_token.is_empty() {
            medmesh_supervision::cases::check_case_id(&r.page_token)
                .map_err(|_| Status::invalid_argument("page_token: is not a token ListCases gave"))?;
        }
        match answer(self.mesh.app.query(Query::Cases { after: r.page_token, limit }).await?)? {
            Answer::Cases(cases) => {
                let today = crate::mesh::now().date();
                let next_page_token = if cases.len() == limit {
                    cases.last().map(|c| c.id.clone()).unwrap_or_default()
                } else {
                    String::new()
                };
                Ok(Response::new(ListCasesResponse {
                    cases: cases.iter().map(|c| convert::case_pb(c, today)).collect(),
                    next_page_token,
                }))
            }
            other => Err(unexpected(other)),
        }
    }

    async fn put_case_policy(
        &self,
        req: Request<PutCasePolicyRequest>,
    ) -> Result<Response<PutCasePolicyResponse>, Status> {
        let p = convert::case_policy(req.into_inner().policy)?;
        let cmd = ProvinceCommand::Case(medmesh_state::CaseCommand::PutPolicy(p));
        match outcome(self.mesh.app.propose(cmd).await?)? {
            Outcome::CasePolicy(p) => {
                Ok(Response::new(PutCasePolicyResponse { policy: Some(convert::case_policy_pb(&p)) }))
            }
            other => Err(unexpected(other)),
        }
    }

    async fn get_case_policy(
        &self,
        _req: Request<GetCasePolicyRequest>,
    ) -> Result<Response<GetCasePolicyResponse>, Status> {
        match answer(self.mesh.app.query(Query::CasePolicy).await?)? {
            Answer::CasePolicy(p) => {
                Ok(Response::new(GetCasePolicyResponse { policy: Some(convert::case_policy_pb(&p)) }))
            }
            other => Err(unexpected(other)),
        }
    }

    async fn list_case_outcomes(
        &self,
        req: Request<ListCaseOutcomesRequest>,
    ) -> Result<Response<ListCaseOutcomesResponse>, Status> {
        let r = req.into_inner();
        let institution = convert::institution("institution_id", &r.institution_id)?;
        let limit = convert::page_size(r.page_size);
        match answer(self.mesh.app.query(Query::CaseOutcomes { institution, limit }).await?)? {
            Answer::CaseOutcomes(o) => Ok(Response::new(ListCaseOutcomesResponse {
                outcomes: o.iter().map(convert::case_outcome_pb).collect(),
            })),
            other => Err(unexpected(other)),
        }
    }

    async fn list_audit(&self, req: Request<ListAuditRequest>) -> Result<Response<ListAuditResponse>, Status> {
        let r = req.into_inner();
        let limit = convert::audit_page(r.page_size)?;
        let from = r.from_seq.max(1);
        let head_seq = match answer(self.mesh.app.query(Query::AuditHead).await?)? {
            Answer::AuditHead(h) => h.map(|h| h.seq).unwrap_or(0),
            other => return Err(unexpected(other)),
        };
        let entries = match answer(self.mesh.app.query(Query::Audit { from, limit }).await?)? {
            Answer::Audit(e) => e,
            other => return Err(unexpected(other)),
        };
        let next_seq = match entries.last() {
            Some(e) if e.seq < head_seq && entries.len() == limit => e.seq + 1,
            _ => 0,
        };
        Ok(Response::new(ListAuditResponse {
            entries: entries.iter().map(convert::audit_entry_pb).collect(),
            next_seq,
            head_seq,
        }))
    }

    async fn get_history(&self, req: Request<GetHistoryRequest>) -> Result<Response<GetHistoryResponse>, Status> {
        use medmesh_state::keys;
        let r = req.into_inner();
        let limit = convert::audit_page(r.page_size)?;
        let register = pb::RegisterKind::try_from(r.register).unwrap_or(pb::RegisterKind::Unspecified);
        let record = match register {
            pb::RegisterKind::Policy => keys::POLICY.to_string(),
            pb::RegisterKind::Institution => keys::institution(&convert::institution("id", &r.id)?),
            pb::RegisterKind::Personnel => keys::personnel(&convert::personnel("id", &r.id)?),
            pb::RegisterKind::CatalogueItem => keys::item(&convert::item_code("id", &r.id)?),
            pb::RegisterKind::Person => {
                let kind = convert::certificate_kind("certificate_kind", r.certificate_kind)?;
                let key = self.mesh.cert_key(kind, &r.certificate)?;
                match answer(self.mesh.app.query(Query::Person { kind, key }).await?)? {
                    Answer::Person(p) => keys::person(&p.key),
                    other => return Err(unexpected(other)),
                }
            }
            pb::RegisterKind::Unspecified => return Err(Status::invalid_argument("register: must name a register")),
        };
        let changes = match answer(self.mesh.app.query(Query::History { record, from: r.from_seq, limit }).await?)? {
            Answer::History(c) => c,
            other => return Err(unexpected(other)),
        };
        let next_seq = if changes.len() == limit { changes.last().map(|c| c.seq + 1).unwrap_or(0) } else { 0 };
        let mut out = Vec::with_capacity(changes.len());
        for c in &changes {
            fn stored<T: serde::de::DeserializeOwned>(b: &[u8]) -> Result<T, Status> {
                bincode::deserialize(b).map_err(|e| Status::internal(format!("a stored change does not decode: {e}")))
            }
            use pb::record_change::Record;
            let record = match register {
                pb::RegisterKind::Policy => Record::Policy(convert::policy_pb(&stored(&c.record)?)),
                pb::RegisterKind::Institution => Record::Institution(convert::institution_pb(&stored(&c.record)?)),
                pb::RegisterKind::Personnel => Record::Personnel(convert::personnel_pb(&stored(&c.record)?)),
                pb::RegisterKind::CatalogueItem => {
                    Record::CatalogueItem(convert::catalogue_item_pb(&stored(&c.record)?))
                }
                _ => {
                    let p: medmesh_state::Person = stored(&c.record)?;
                    let name = self.mesh.open_person(&p)?.name;
                    Record::Person(convert::person_pb(&p, name))
                }
            };
            out.push(RecordChange {
                seq: c.seq,
                time_ms: c.time.millis(),
                actor: c.actor.clone(),
                request_id: c.request.clone(),
                record: Some(record),
            });
        }
        Ok(Response::new(GetHistoryResponse { changes: out, next_seq }))
    }

    async fn get_fund(&self, _req: Request<GetFundRequest>) -> Result<Response<GetFundResponse>, Status> {
        match answer(self.mesh.app.query(Query::Fund).await?)? {
            Answer::Fund(f) => Ok(Response::new(GetFundResponse {
                contributions: f.ledger.contributions.to_string(),
                balance: f.ledger.balance().to_string(),
                pooling_paid: f.ledger.pooling_paid.to_string(),
                critical_illness_paid: f.ledger.critical_illness_paid.to_string(),
                accounts_paid: f.ledger.accounts_paid.to_string(),
                payables: f.payables.to_string(),
                settlements: f.ledger.settlements,
                reversals: f.ledger.reversals,
                nonlocal_reserved: f.ledger.nonlocal_reserved.to_string(),
                nonlocal_paid: f.ledger.nonlocal_paid.to_string(),
                nonlocal_settlements: f.ledger.nonlocal_settlements,
                nonlocal_owed: f.ledger.nonlocal_owed.to_string(),
                nonlocal_receivable: f.ledger.nonlocal_receivable.to_string(),
                nonlocal_treated: f.ledger.nonlocal_treated,
                nonlocal_accounts_in: f.ledger.nonlocal_accounts_in.to_string(),
                recovered: f.ledger.recovered.to_string(),
                recovery_due: f.ledger.recovery_due.to_string(),
                fines_imposed: f.ledger.fines_imposed.to_string(),
                deducted: f.ledger.deducted.to_string(),
                institution_payments: f.ledger.institution_payments.to_string(),
                prepaid_out: f.ledger.prepaid_out.to_string(),
                prepaid_offset: f.ledger.prepaid_offset.to_string(),
                prepaid_repaid: f.ledger.prepaid_repaid.to_string(),
                prepayments_outstanding: f.ledger.prepayments_outstanding().to_string(),
                budget_withheld: f.ledger.budget_withheld.to_string(),
                monthly_expenditure: f.risk.monthly_expenditure.to_string(),
                months_covered: f
                    .risk
                    .months_covered_tenths
                    .map(|t| format!("{}.{}", t / 10, t % 10))
                    .unwrap_or_default(),
                risk_threshold_months: f.risk.threshold_months,
                risk_warning: f.risk.warning.clone().unwrap_or_default(),
                accounts_credited: f.ledger.accounts_credited.to_string(),
                prepaid_topped_up: f.ledger.prepaid_topped_up.to_string(),
                clearing_received: f.ledger.clearing_received.to_string(),
                clearing_paid: f.ledger.clearing_paid.to_string(),
                assistance_funded: f.ledger.assistance_funded.to_string(),
                assistance_paid: f.ledger.assistance_paid.to_string(),
                assistance_balance: f.ledger.assistance_balance().to_string(),
                rewards_paid: f.ledger.rewards_paid.to_string(),
                prepaid_balance: f.ledger.prepaid_balance().to_string(),
            })),
            other => Err(unexpected(other)),
        }
    }

    async fn file_non_local(
        &self,
        req: Request<FileNonLocalRequest>,
    ) -> Result<Response<FileNonLocalResponse>, Status> {
        let (id, kind, certificate, treatment, filing, start, end) = convert::file_nonlocal(req.into_inner())?;
        if !self.mesh.federated() || self.mesh.is_federation() {
            return Err(Status::failed_precondition("treatment_province: this node is not part of a federation"));
        }
        if treatment == self.mesh.province {
            return Err(Status::invalid_argument("treatment_province: is this province: care here is local"));
        }
        let key = self.mesh.cert_key(kind, &certificate)?;
        let person = match answer(self.mesh.app.query(Query::Person { kind, key }).await?)? {
            Answer::Person(p) => p,
            other => return Err(unexpected(other)),
        };
        medmesh_state::require_active(&person).map_err(convert::status)?;
        let f = medmesh_state::Filing {
            id: id.clone(),
            person_key: self.mesh.directory_key(kind, &certificate),
            insured: self.mesh.province.clone(),
            treatment: treatment.clone(),
            kind: filing,
            start,
            end,
        };
        outcome(self.mesh.fed_propose(FederationCommand::File(f)).await?)?;
        Ok(Response::new(FileNonLocalResponse {
            id: id.to_string(),
            masked_id: person.masked_id,
            treatment_province: treatment.to_string(),
            kind: convert::filing_kind_pb(filing),
            start: start.to_string(),
            end: end.to_string(),
        }))
    }

    async fn record_discipline(
        &self,
        req: Request<RecordDisciplineRequest>,
    ) -> Result<Response<RecordDisciplineResponse>, Status> {
        let r = req.into_inner();
        let subject = self.subject(&r.institution_id, r.certificate_kind, &r.certificate, &r.enterprise_code)?;
        let e = medmesh_state::DisciplineEntry {
            id: r.id,
            subject,
            province: self.mesh.province.clone(),
            from: convert::date("from", &r.from)?,
            until: convert::date("until", &r.until)?,
            reason: r.reason,
        };
        if self.mesh.federated() && !self.mesh.is_federation() {
            outcome(self.mesh.fed_propose(FederationCommand::RecordDiscipline(e.clone())).await?)?;
        }
        outcome(self.mesh.app.propose(ProvinceCommand::RecordDiscipline(e.clone())).await?)?;
        Ok(Response::new(RecordDisciplineResponse { entry: Some(discipline_pb(&e, None)) }))
    }

    async fn lift_discipline(
        &self,
        req: Request<LiftDisciplineRequest>,
    ) -> Result<Response<LiftDisciplineResponse>, Status> {
        let r = req.into_inner();
        let subject = self.subject(&r.institution_id, r.certificate_kind, &r.certificate, &r.enterprise_code)?;
        let cmd = ProvinceCommand::LiftDiscipline {
            province: self.mesh.province.clone(),
            subject,
            id: r.id,
            reason: r.reason,
        };
        let (entry, lift) = match outcome(self.mesh.app.propose(cmd).await?)? {
            Outcome::DisciplineLifted(b) => *b,
            other => return Err(unexpected(other)),
        };
        // The lift waits in the outbox; publish it now (the recovery pass retries what this misses).
        if let Err(s) = self.mesh.publish_outbox().await {
            tracing::info!(error = %s.message(), "discipline lift not yet shared; the recovery pass retries");
        }
        Ok(Response::new(LiftDisciplineResponse { entry: Some(discipline_pb(&entry, Some(&lift))) }))
    }

    async fn record_commitment(
        &self,
        req: Request<RecordCommitmentRequest>,
    ) -> Result<Response<RecordCommitmentResponse>, Status> {
        let r = req.into_inner();
        let cmd = ProvinceCommand::RecordCommitment {
            province: self.mesh.province.clone(),
            party: convert::party(&r.institution_id, &r.personnel_code, &r.enterprise_code)?,
            id: r.id,
            text: r.text,
            verify_by: convert::date("verify_by", &r.verify_by)?,
        };
        match outcome(self.mesh.app.propose(cmd).await?)? {
            Outcome::Commitment(c) => {
                Ok(Response::new(RecordCommitmentResponse { commitment: Some(convert::commitment_pb(&c, None)) }))
            }
            other => Err(unexpected(other)),
        }
    }

    async fn resolve_commitment(
        &self,
        req: Request<ResolveCommitmentRequest>,
    ) -> Result<Response<ResolveCommitmentResponse>, Status> {
        let r = req.into_inner();
        let cmd = ProvinceCommand::ResolveCommitment {
            province: self.mesh.province.clone(),
            party: convert::party(&r.institution_id, &r.personnel_code, &r.enterprise_code)?,
            id: r.id,
            kept: r.kept,
            finding: r.finding,
        };
        let c = match outcome(self.mesh.app.propose(cmd).await?)? {
            Outcome::Commitment(c) => c,
            other => return Err(unexpected(other)),
        };
        // The resolution waits in the outbox; publish it now (the recovery pass retries).
        if let Err(s) = self.mesh.publish_outbox().await {
            tracing::info!(error = %s.message(), "commitment not yet shared; the recovery pass retries");
        }
        Ok(Response::new(ResolveCommitmentResponse { commitment: Some(convert::commitment_pb(&c, None)) }))
    }

    async fn list_commitments(
        &self,
        req: Request<ListCommitmentsRequest>,
    ) -> Result<Response<ListCommitmentsResponse>, Status> {
        let r = req.into_inner();
        let party = convert::party(&r.institution_id, &r.personnel_code, &r.enterprise_code)?;
        match answer(self.mesh.app.query(Query::Commitments { party }).await?)? {
            Answer::Commitments { today, commitments } => Ok(Response::new(ListCommitmentsResponse {
                commitments: commitments.iter().map(|c| convert::commitment_pb(c, today)).collect(),
            })),
            other => Err(unexpected(other)),
        }
    }

    async fn record_incentive(
        &self,
        req: Request<RecordIncentiveRequest>,
    ) -> Result<Response<RecordIncentiveResponse>, Status> {
        let r = req.into_inner();
        let i = medmesh_supervision::credit::Incentive {
            province: self.mesh.province.clone(),
            id: r.id,
            party: convert::party(&r.institution_id, &r.personnel_code, &r.enterprise_code)?,
            from: convert::date("from", &r.from)?,
            until: convert::date("until", &r.until)?,
            reason: r.reason,
        };
        let i = match outcome(self.mesh.app.propose(ProvinceCommand::RecordIncentive(i)).await?)? {
            Outcome::Incentive(i) => i,
            other => return Err(unexpected(other)),
        };
        // The entry waits in the outbox; publish it now (the recovery pass retries).
        if let Err(s) = self.mesh.publish_outbox().await {
            tracing::info!(error = %s.message(), "incentive entry not yet shared; the recovery pass retries");
        }
        let in_force = i.in_period(crate::mesh::now().date());
        Ok(Response::new(RecordIncentiveResponse { entry: Some(convert::incentive_pb(&i, in_force)) }))
    }

    async fn list_incentives(
        &self,
        req: Request<ListIncentivesRequest>,
    ) -> Result<Response<ListIncentivesResponse>, Status> {
        let r = req.into_inner();
        let party = convert::party(&r.institution_id, &r.personnel_code, &r.enterprise_code)?;
        let today = crate::mesh::now().date();
        match answer(self.mesh.app.query(Query::Incentives { party, today }).await?)? {
            Answer::Incentives(entries) => Ok(Response::new(ListIncentivesResponse {
                entries: entries.iter().map(|(i, f)| convert::incentive_pb(i, *f)).collect(),
            })),
            other => Err(unexpected(other)),
        }
    }

    async fn list_discipline(
        &self,
        req: Request<ListDisciplineRequest>,
    ) -> Result<Response<ListDisciplineResponse>, Status> {
        let r = req.into_inner();
        let subject = self.subject(&r.institution_id, r.certificate_kind, &r.certificate, &r.enterprise_code)?;
        let page_size = convert::page_size(r.page_size);
        match answer(self.mesh.app.query(Query::Disciplines { subject, page_token: r.page_token, page_size }).await?)? {
            Answer::Disciplines { entries, next_page_token } => Ok(Response::new(ListDisciplineResponse {
                entries: entries.iter().map(|(e, l)| discipline_pb(e, l.as_ref())).collect(),
                next_page_token,
            })),
            other => Err(unexpected(other)),
        }
    }

    async fn review_declaration(
        &self,
        req: Request<ReviewDeclarationRequest>,
    ) -> Result<Response<ReviewDeclarationResponse>, Status> {
        let cmd = convert::review_declaration(req.into_inner(), &self.mesh.province)?;
        Ok(Response::new(ReviewDeclarationResponse {
            declaration: Some(super::payment::declaration(&self.mesh, cmd).await?),
        }))
    }

    async fn resolve_contest(
        &self,
        req: Request<ResolveContestRequest>,
    ) -> Result<Response<ResolveContestResponse>, Status> {
        let r = req.into_inner();
        let cmd = medmesh_state::PaymentCommand::Resolve {
            institution: convert::institution("institution_id", &r.institution_id)?,
            period: convert::period("period", &r.period)?,
            settlement: convert::serial("settlement_serial", &r.settlement_serial)?,
            accept: r.accept,
            reason: r.reason,
            province: self.mesh.province.clone(),
        };
        Ok(Response::new(ResolveContestResponse {
            declaration: Some(super::payment::declaration(&self.mesh, cmd).await?),
        }))
    }

    async fn pay_institution(
        &self,
        req: Request<PayInstitutionRequest>,
    ) -> Result<Response<PayInstitutionResponse>, Status> {
        let cmd = convert::pay_institution(req.into_inner())?;
        match outcome(self.mesh.app.propose(ProvinceCommand::Payment(cmd)).await?)? {
            Outcome::Paid(p) => Ok(Response::new(PayInstitutionResponse {
                payment: Some(convert::payment_pb(&p.0)),
                declaration: Some(convert::declaration_pb(&p.1)),
            })),
            other => Err(unexpected(other)),
        }
    }

    async fn get_institution_statement(
        &self,
        req: Request<GetInstitutionStatementRequest>,
    ) -> Result<Response<GetInstitutionStatementResponse>, Status> {
        let r = req.into_inner();
        let statement = super::payment::statement(&self.mesh, &r.institution_id, &r.period).await?;
        Ok(Response::new(GetInstitutionStatementResponse { statement: Some(statement) }))
    }

    async fn list_institution_declarations(
        &self,
        req: Request<ListInstitutionDeclarationsRequest>,
    ) -> Result<Response<ListInstitutionDeclarationsResponse>, Status> {
        let r = req.into_inner();
        let (declarations, next_page_token) =
            super::payment::declarations(&self.mesh, &r.institution_id, &r.page_token, r.page_size).await?;
        Ok(Response::new(ListInstitutionDeclarationsResponse { declarations, next_page_token }))
    }

    async fn put_prepayment_policy(
        &self,
        req: Request<PutPrepaymentPolicyRequest>,
    ) -> Result<Response<PutPrepaymentPolicyResponse>, Status> {
        let p = convert::prepayment_policy(req.into_inner().policy)?;
        let cmd = ProvinceCommand::Payment(medmesh_state::PaymentCommand::PutPolicy(p));
        match outcome(self.mesh.app.propose(cmd).await?)? {
            Outcome::PrepaymentPolicy(p) => {
                Ok(Response::new(PutPrepaymentPolicyResponse { policy: Some(convert::prepayment_policy_pb(&p)) }))
            }
            other => Err(unexpected(other)),
        }
    }

    async fn get_prepayment_policy(
        &self,
        _req: Request<GetPrepaymentPolicyRequest>,
    ) -> Result<Response<GetPrepaymentPolicyResponse>, Status> {
        match answer(self.mesh.app.query(Query::PrepaymentPolicy).await?)? {
            Answer::PrepaymentPolicy(p) => {
                Ok(Response::new(GetPrepaymentPolicyResponse { policy: Some(convert::prepayment_policy_pb(&p)) }))
            }
            other => Err(unexpected(other)),
        }
    }

    async fn grant_prepayment(
        &self,
        req: Request<GrantPrepaymentRequest>,
    ) -> Result<Response<GrantPrepaymentResponse>, Status> {
        let cmd = convert::grant_prepayment(req.into_inner())?;
        Ok(Response::new(GrantPrepaymentResponse {
            prepayment: Some(super::payment::prepayment(&self.mesh, cmd).await?),
        }))
    }

    async fn repay_prepayment(
        &self,
        req: Request<RepayPrepaymentRequest>,
    ) -> Result<Response<RepayPrepaymentResponse>, Status> {
        let cmd = convert::repay_prepayment(req.into_inner())?;
        Ok(Response::new(RepayPrepaymentResponse {
            prepayment: Some(super::payment::prepayment(&self.mesh, cmd).await?),
        }))
    }

    async fn write_off_prepayment(
        &self,
        req: Request<WriteOffPrepaymentRequest>,
    ) -> Result<Response<WriteOffPrepaymentResponse>, Status> {
        let cmd = convert::write_off_prepayment(req.into_inner())?;
        Ok(Response::new(WriteOffPrepaymentResponse {
            prepayment: Some(super::payment::prepayment(&self.mesh, cmd).await?),
        }))
    }

    async fn list_institution_prepayments(
        &self,
        req: Request<ListInstitutionPrepaymentsRequest>,
    ) -> Result<Response<ListInstitutionPrepaymentsResponse>, Status> {
        let r = req.into_inner();
        let (prepayments, outstanding, payments_stopped) =
            super::payment::prepayments(&self.mesh, &r.institution_id).await?;
        Ok(Response::new(ListInstitutionPrepaymentsResponse { prepayments, outstanding, payments_stopped }))
    }

    async fn put_budget(&self, req: Request<PutBudgetRequest>) -> Result<Response<PutBudgetResponse>, Status> {
        let cmd = convert::put_budget(req.into_inner())?;
        Ok(Response::new(PutBudgetResponse { budget: Some(super::payment::budget_step(&self.mesh, cmd).await?) }))
    }

    async fn get_institution_budget(
        &self,
        req: Request<GetInstitutionBudgetRequest>,
    ) -> Result<Response<GetInstitutionBudgetResponse>, Status> {
        let r = req.into_inner();
        let budget = super::payment::budget(&self.mesh, &r.institution_id, r.year).await?;
        Ok(Response::new(GetInstitutionBudgetResponse { budget: Some(budget) }))
    }

    async fn credit_accounts(
        &self,
        req: Request<CreditAccountsRequest>,
    ) -> Result<Response<CreditAccountsResponse>, Status> {
        let r = req.into_inner();
        if r.credits.len() > medmesh_state::MAX_CREDITS {
            return Err(Status::resource_exhausted(format!(
                "credits: at most {} persons per call",
                medmesh_state::MAX_CREDITS
            )));
        }
        let mut credits = Vec::with_capacity(r.credits.len());
        for (i, c) in r.credits.iter().enumerate() {
            let kind = convert::certificate_kind(&format!("credits[{i}].certificate_kind"), c.certificate_kind)?;
            convert::certificate_number(&format!("credits[{i}].certificate"), &c.certificate)?;
            credits.push(medmesh_state::AccountCredit {
                certificate_kind: kind,
                certificate: self.mesh.cert_key(kind, &c.certificate)?,
                amount: convert::money(&format!("credits[{i}].amount"), &c.amount)?,
            });
        }
        let cmd = ProvinceCommand::CreditAccounts {
            serial: convert::serial("serial", &r.serial)?,
            period: convert::period("period", &r.period)?,
            credits,
        };
        match outcome(self.mesh.app.propose(cmd).await?)? {
            Outcome::Credited { persons, total } => {
                Ok(Response::new(CreditAccountsResponse { persons, total: total.to_string() }))
            }
            other => Err(unexpected(other)),
        }
    }

    async fn put_inspection_plan(
        &self,
        req: Request<PutInspectionPlanRequest>,
    ) -> Result<Response<PutInspectionPlanResponse>, Status> {
        let (mut cmd, ungraded) = convert::put_inspection_plan(req.into_inner())?;
        let exempt = self.grade_targets(&mut cmd, &ungraded).await?;
        let r = self.inspection_step(cmd).await?;
        Ok(Response::new(PutInspectionPlanResponse { plan: Some(convert::inspection_plan_pb(&r)), exempt }))
    }

    async fn draw_inspection(
        &self,
        req: Request<DrawInspectionRequest>,
    ) -> Result<Response<DrawInspectionResponse>, Status> {
        let cmd = convert::draw_inspection(req.into_inner())?;
        let r = self.inspection_step(cmd).await?;
        let draw = r.draw.as_ref().map(convert::inspection_draw_pb);
        Ok(Response::new(DrawInspectionResponse { draw }))
    }

    async fn get_inspection_plan(
        &self,
        req: Request<GetInspectionPlanRequest>,
    ) -> Result<Response<GetInspectionPlanResponse>, Status> {
        let v = self.inspection(req.into_inner().plan_id).await?;
        let r = &v.record;
        Ok(Response::new(GetInspectionPlanResponse {
            plan: Some(convert::inspection_plan_pb(r)),
            draw: r.draw.as_ref().map(convert::inspection_draw_pb),
            recorded_time_ms: r.recorded.millis(),
            results: convert::inspection_results_pb(&v),
        }))
    }

    async fn record_inspection_finding(
        &self,
        req: Request<RecordInspectionFindingRequest>,
    ) -> Result<Response<RecordInspectionFindingResponse>, Status> {
        let r = req.into_inner();
        let (plan, target) = (r.plan_id.clone(), r.target.clone());
        self.inspection_step(convert::record_inspection_finding(r)).await?;
        // Read back as published: the result shows the case as it stands.
        let v = self.inspection(plan).await?;
        let result = convert::inspection_results_pb(&v).into_iter().find(|x| x.target == target);
        Ok(Response::new(RecordInspectionFindingResponse { result }))
    }

    async fn put_work_calendar(
        &self,
        req: Request<PutWorkCalendarRequest>,
    ) -> Result<Response<PutWorkCalendarResponse>, Status> {
        let cmd = convert::work_calendar(req.into_inner())?;
        self.put(ProvinceCommand::Inspection(cmd)).await
    }

    async fn start_flight_inspection(
        &self,
        req: Request<StartFlightInspectionRequest>,
    ) -> Result<Response<StartFlightInspectionResponse>, Status> {
        let flight = self.flight_step(convert::start_flight(req.into_inner())?).await?;
        Ok(Response::new(StartFlightInspectionResponse { flight }))
    }

    async fn file_flight_report(
        &self,
        req: Request<FileFlightReportRequest>,
    ) -> Result<Response<FileFlightReportResponse>, Status> {
        let flight = self.flight_step(convert::file_flight_report(req.into_inner())?).await?;
        Ok(Response::new(FileFlightReportResponse { flight }))
    }

    async fn close_flight_inspection(
        &self,
        req: Request<CloseFlightInspectionRequest>,
    ) -> Result<Response<CloseFlightInspectionResponse>, Status> {
        let flight = self.flight_step(convert::close_flight(req.into_inner())).await?;
        Ok(Response::new(CloseFlightInspectionResponse { flight }))
    }

    async fn get_flight_inspection(
        &self,
        req: Request<GetFlightInspectionRequest>,
    ) -> Result<Response<GetFlightInspectionResponse>, Status> {
        let flight = self.flight(req.into_inner().flight_id).await?;
        Ok(Response::new(GetFlightInspectionResponse { flight }))
    }

    async fn list_flight_inspections(
        &self,
        req: Request<ListFlightInspectionsRequest>,
    ) -> Result<Response<ListFlightInspectionsResponse>, Status> {
        let r = req.into_inner();
        let limit = convert::page_size(r.page_size);
        if !r.page_token.is_empty() {
            medmesh_supervision::reports::check_id("page_token", &r.page_token)
                .map_err(|e| Status::invalid_argument(e.to_string()))?;
        }
        match answer(self.mesh.app.query(Query::Flights { after: r.page_token, limit }).await?)? {
            Answer::Flights { today, flights } => {
                let today = flight_today(today);
                let next_page_token = if flights.len() == limit {
                    flights.last().map(|f| f.id.clone()).unwrap_or_default()
                } else {
                    String::new()
                };
                let flights = flights
                    .iter()
                    .map(|f| convert::flight_pb(f, today))
                    .filter(|f| !r.overdue_only || !f.overdue.is_empty())
                    .collect();
                Ok(Response::new(ListFlightInspectionsResponse { flights, next_page_token }))
            }
            other => Err(unexpected(other)),
        }
    }

    async fn get_credit_rating(
        &self,
        req: Request<GetCreditRatingRequest>,
    ) -> Result<Response<GetCreditRatingResponse>, Status> {
        let national = matches!(Caller::of(&req).identity(), Some(crate::identity::Identity::National));
        let r = req.into_inner();
        let today = crate::mesh::now().date();
        let party;
        let (q, subject) = if r.certificate.trim().is_empty() {
            party = convert::party(&r.institution_id, &r.personnel_code, &r.enterprise_code)?;
            let q = match &party {
                Party::Institution(i) => Query::CreditRating { institution: i.clone(), today },
                Party::Personnel(p) => Query::PersonnelCreditRating { code: p.clone(), today },
                Party::Enterprise(e) => Query::EnterpriseCreditRating { code: e.clone(), today },
            };
            (q, convert::RatedSubject::Party(&party))
        } else {
            if [&r.institution_id, &r.personnel_code, &r.enterprise_code].iter().any(|f| !f.trim().is_empty()) {
                return Err(Status::invalid_argument(
                    "institution_id: name exactly one of institution_id, personnel_code, enterprise_code and certificate",
                ));
            }
            // An insured person's credit is personal data: their own province's agency only.
            if national {
                return Err(Status::permission_denied(
                    "certificate: an insured person's rating is for their province's agency only",
                ));
            }
            let kind = convert::certificate_kind("certificate_kind", r.certificate_kind)?;
            convert::certificate_number("certificate", &r.certificate)?;
            let key = self.mesh.cert_key(kind, &r.certificate)?;
            let directory_key = self.mesh.directory_key(kind, &r.certificate);
            (Query::PersonCreditRating { kind, key, directory_key, today }, convert::RatedSubject::InsuredPerson)
        };
        match answer(self.mesh.app.query(q).await?)? {
            Answer::CreditRating(r) => {
                Ok(Response::new(GetCreditRatingResponse { rating: Some(convert::credit_rating_pb(subject, &r)) }))
            }
            other => Err(unexpected(other)),
        }
    }

    async fn reconcile_clearing(
        &self,
        req: Request<ReconcileClearingRequest>,
    ) -> Result<Response<ReconcileClearingResponse>, Status> {
        let r = req.into_inner();
        let page = self.mesh.reconcile(&r.month, &r.page_token, convert::page_size(r.page_size)).await?;
        let count = |n: usize| u32::try_from(n).unwrap_or(u32::MAX);
        Ok(Response::new(ReconcileClearingResponse {
            differences: page
                .differences
                .iter()
                .map(|d| ClearingDifference {
                    kind: d.kind.name().into(),
                    treatment_province: d.transfer.treatment.to_string(),
                    institution_id: d.transfer.institution.to_string(),
                    serial: d.transfer.serial.to_string(),
                    line_kind: d.line.map(|k| k.name().to_string()).unwrap_or_default(),
                    federation_amount: d.federation_amount.to_string(),
                    local_amount: d.local_amount.to_string(),
                })
                .collect(),
            lines_checked: count(page.lines_checked),
            records_checked: count(page.records_checked),
            next_page_token: page.next_page_token,
        }))
    }

    async fn close_budget_year(
        &self,
        req: Request<CloseBudgetYearRequest>,
    ) -> Result<Response<CloseBudgetYearResponse>, Status> {
        let r = req.into_inner();
        let cmd = medmesh_state::PaymentCommand::CloseBudgetYear {
            institution: convert::institution("institution_id", &r.institution_id)?,
            year: r.year,
        };
        Ok(Response::new(CloseBudgetYearResponse { budget: Some(super::payment::budget_step(&self.mesh, cmd).await?) }))
    }
}

impl Agency {
    /// Proposes a step of a case and answers the case after it.
    async fn case_step(&self, cmd: medmesh_state::CaseCommand) -> Result<pb::Case, Status> {
        match outcome(self.mesh.app.propose(ProvinceCommand::Case(cmd)).await?)? {
            Outcome::Case(c) => Ok(convert::case_pb(&c, crate::mesh::now().date())),
            other => Err(unexpected(other)),
        }
    }

    /// The subject named by a request: an institution, a person by certificate, or an
    /// enterprise.
    fn subject(
        &self,
        institution: &str,
        kind: i32,
        certificate: &str,
        enterprise: &str,
    ) -> Result<medmesh_state::DisciplineSubject, Status> {
        match (institution.is_empty(), certificate.is_empty(), enterprise.trim().is_empty()) {
            (false, true, true) => {
                Ok(medmesh_state::DisciplineSubject::Institution(convert::institution("institution_id", institution)?))
            }
            (true, false, true) => {
                let kind = convert::certificate_kind("certificate_kind", kind)?;
                convert::certificate_number("certificate", certificate)?;
                Ok(medmesh_state::DisciplineSubject::Person(self.mesh.directory_key(kind, certificate)))
            }
            (true, true, false) => {
                Ok(medmesh_state::DisciplineSubject::Enterprise(convert::enterprise("enterprise_code", enterprise)?))
            }
            _ => Err(Status::invalid_argument(
                "institution_id: name exactly one of an institution, a certificate and an enterprise",
            )),
        }
    }
}

fn discipline_pb(
    e: &medmesh_state::DisciplineEntry,
    lift: Option<&medmesh_state::DisciplineLift>,
) -> pb::DisciplineEntry {
    let (institution_id, person, enterprise_code) = match &e.subject {
        medmesh_state::DisciplineSubject::Institution(i) => (i.to_string(), false, String::new()),
        medmesh_state::DisciplineSubject::Person(_) => (String::new(), true, String::new()),
        medmesh_state::DisciplineSubject::Enterprise(c) => (String::new(), false, c.to_string()),
    };
    pb::DisciplineEntry {
        id: e.id.clone(),
        institution_id,
        person,
        province: e.province.to_string(),
        from: e.from.to_string(),
        until: e.until.to_string(),
        reason: e.reason.clone(),
        in_force: e.in_force_unless(lift, crate::mesh::now().date()),
        lifted_on: lift.map(|l| l.lifted_on.to_string()).unwrap_or_default(),
        lift_reason: lift.map(|l| l.reason.clone()).unwrap_or_default(),
        enterprise_code,
    }
}
