//! Read-only queries over committed state.

use medmesh_settlement::{Accumulators, CatalogueItem, Split};
use medmesh_types::{Date, InstitutionId, LogTime, Money, ProvinceCode, Serial};
use serde::{Deserialize, Serialize};

use crate::kv::{decode, keys, load, scan_prefix, KvRead};
use crate::model::*;
use crate::rules::{quote, resolve_person};
use crate::shared::*;
use crate::treatment::remote_claim;
use crate::DomainError;

/// Most settlements one statement page holds.
pub const MAX_STATEMENT: usize = 10_000;
/// Settlements in a statement page when the caller does not say.
pub const DEFAULT_STATEMENT_PAGE: usize = 1_000;
/// Longest statement period in days.
pub const MAX_STATEMENT_DAYS: i32 = 366;

/// A read-only question to the province.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Query {
    /// Identity and entitlement of the holder of a certificate.
    Identity {
        /// The asking institution: only an institution with an agreement in force may look up
        /// a person.
        institution: InstitutionId,
        /// Certificate kind.
        kind: CertificateKind,
        /// Keyed hash of the certificate number (computed at the edge).
        key: medmesh_types::KeyedHash,
        /// Evaluated at this time (accumulator year).
        now: LogTime,
    },
    /// A quote for an open visit: nothing moves, nothing accumulates.
    PreSettle {
        /// Institution.
        institution: InstitutionId,
        /// Visit serial.
        visit: Serial,
        /// Pay the person's share from the individual account.
        use_individual_account: bool,
        /// Quote at this time.
        now: LogTime,
    },
    /// One settlement (the expense document).
    Settlement {
        /// Institution.
        institution: InstitutionId,
        /// Settlement serial.
        serial: Serial,
    },
    /// One page of an institution's settlements settled in `[from, to]`, by day then serial.
    Statement {
        /// Institution.
        institution: InstitutionId,
        /// First day.
        from: Date,
        /// Last day.
        to: Date,
        /// The page token of the previous page (empty for the first page).
        page_token: String,
        /// Most settlements in the page (1 to [`MAX_STATEMENT`]).
        page_size: usize,
    },
    /// The fund ledger and what the fund owes institutions.
    Fund,
    /// The policy in force.
    Policy,
    /// An institution as registered.
    Institution {
        /// Institution code.
        id: InstitutionId,
    },
    /// Personnel as registered.
    Personnel {
        /// National personnel code.
        code: medmesh_types::PersonnelCode,
    },
    /// A catalogue entry.
    CatalogueItem {
        /// National code.
        code: medmesh_types::ItemCode,
    },
    /// An insured person's register entry, found by certificate (whatever the insurance status).
    Person {
        /// Certificate kind.
        kind: CertificateKind,
        /// Keyed hash of the certificate number (computed at the edge).
        key: medmesh_types::KeyedHash,
    },
    /// Payment qualification of personnel from their recorded violations.
    Qualification {
        /// National personnel code.
        code: medmesh_types::PersonnelCode,
        /// Evaluated at this time.
        now: LogTime,
    },
    /// A registered visit.
    Visit {
        /// Institution.
        institution: InstitutionId,
        /// Visit serial.
        visit: Serial,
    },
    /// Treatment province: a transfer and the claim to send to the insured province.
    TransferClaim {
        /// Institution.
        institution: InstitutionId,
        /// Settlement serial.
        serial: Serial,
    },
    /// Treatment province: the claim of an open non-local visit (for a quote).
    VisitClaim {
        /// Institution.
        institution: InstitutionId,
        /// Visit serial.
        visit: Serial,
        /// Pay the person's share from the individual account first.
        use_individual_account: bool,
        /// Checked at this time.
        now: LogTime,
    },
    /// Treatment province: transfers not yet done, oldest key first.
    OpenTransfers {
        /// Most returned.
        limit: usize,
    },
    /// Treatment province: non-local reversals not yet done.
    OpenReversals {
        /// Most returned.
        limit: usize,
    },
    /// Insured province: reservations waiting for a decision.
    PendingReservations {
        /// Most returned.
        limit: usize,
    },
    /// Insured province: who holds a certificate, without the identity number. This is the
    /// one query that carries a raw certificate number, over mTLS from a treatment province;
    /// the insured province's edge turns it into [`Query::Person`] with its own key and opens
    /// the name (see `medmesh_node`). The state machine refuses to run it raw.
    RemotePerson {
        /// Certificate kind.
        kind: CertificateKind,
        /// Certificate number.
        number: String,
    },
    /// Insured province: a quote of a non-local claim with this province's policy.
    RemoteQuote {
        /// The person: this province's handle from [`Answer::RemotePerson`].
        handle: medmesh_types::KeyedHash,
        /// The claim.
        claim: RemoteClaim,
        /// Quote at this time.
        now: LogTime,
        /// The treatment province, institution and the visit's serial (the monitoring rules see
        /// the claim as a visit there).
        transfer: TransferId,
    },
    /// Province: the sequence of the last shared-log entry copied from the federation.
    SharedCursor,
    /// Joint-discipline entries of a subject (a province's copy, or the federation's).
    Disciplines {
        /// The subject.
        subject: DisciplineSubject,
        /// The id of the last entry of the previous page (empty for the first page).
        page_token: String,
        /// Most entries in the page (1 to [`MAX_ROWS`]).
        page_size: usize,
    },
    /// Federation: the insured province of a directory key.
    Directory {
        /// The directory key.
        key: String,
    },
    /// Federation: a province's endpoints.
    ProvinceEndpoints {
        /// The province.
        province: ProvinceCode,
    },
    /// Federation: every registered province.
    Provinces,
    /// Federation: a person's filings for a treatment province.
    Filings {
        /// Directory key of the person.
        person_key: String,
        /// Treatment province.
        treatment: ProvinceCode,
    },
    /// Federation: the decision of a transfer.
    Decision {
        /// The transfer.
        transfer: TransferId,
    },
    /// Federation: what each insured province owes each treatment province now.
    Positions,
    /// Federation: every province's prepaid account.
    Prepaid,
    /// Federation: a month's clearing (an open month's statements as they stand): its status,
    /// every statement's totals, and one page of lines across statements in (insured,
    /// treatment, institution, serial, kind) order.
    Clearing {
        /// Month, `YYYY-MM`.
        month: String,
        /// `insured/treatment/institution/serial/kind` of the last line of the previous page
        /// (empty for the first page).
        page_token: String,
        /// Most lines in the page (1 to [`MAX_ROWS`]).
        page_size: usize,
    },
    /// Province: the monitoring rules it holds (latest versions).
    Rules,
    /// Province: the review queue from alert `from` on.
    Alerts {
        /// First sequence number (1 for the start).
        from: u64,
        /// Most alerts.
        limit: usize,
    },
    /// Province: one case.
    Case {
        /// Its id.
        id: String,
    },
    /// Province: cases by id after `after` (empty for the start).
    Cases {
        /// Last id of the page before.
        after: String,
        /// Most cases.
        limit: usize,
    },
    /// Province: the case policy in force.
    CasePolicy,
    /// Province: outbox items waiting for the federation's shared log.
    Outbox {
        /// Most items.
        limit: usize,
    },
    /// Province: an institution's case outcomes from every province.
    CaseOutcomes {
        /// The institution.
        institution: medmesh_types::InstitutionId,
        /// Most outcomes.
        limit: usize,
    },
    /// Province: runs one rule over a registered visit's claim, as settlement would today.
    TestRule {
        /// The rule (recorded or not).
        rule: medmesh_monitor::Rule,
        /// The visit's institution.
        institution: medmesh_types::InstitutionId,
        /// The visit.
        visit: Serial,
        /// Evaluate as of this time.
        now: LogTime,
    },
    /// This group's audit chain from entry `from` on.
    Audit {
        /// First sequence number (1 for the start).
        from: u64,
        /// Most returned.
        limit: usize,
    },
    /// This group's audit-chain head (none before the first command).
    AuditHead,
    /// The changes of a register record (its storage key, e.g. `inst/H110000-01` or `policy`)
    /// from audit entry `from` on.
    History {
        /// The record's storage key.
        record: String,
        /// First audit sequence number.
        from: u64,
        /// Most returned.
        limit: usize,
    },
    /// Federation: the anchors of a province's audit chain from sequence number `from` on.
    Anchors {
        /// The province.
        province: ProvinceCode,
        /// First sequence number.
        from: u64,
        /// Most returned.
        limit: usize,
    },
    /// Province: an institution's payment statement of a month (issue 12).
    PaymentStatement {
        /// The institution.
        institution: medmesh_types::InstitutionId,
        /// The month.
        period: medmesh_payment::Period,
    },
    /// Province: an institution's declarations after `after`, oldest first.
    Declarations {
        /// The institution.
        institution: medmesh_types::InstitutionId,
        /// The last month of the page before (`None` for the start).
        after: Option<medmesh_payment::Period>,
        /// Most returned.
        limit: usize,
    },
    /// Province: an institution's prepayments and whether payments to it are stopped.
    Prepayments {
        /// The institution.
        institution: medmesh_types::InstitutionId,
        /// Most returned.
        limit: usize,
    },
    /// Province: what a prepayment would be now, or which condition fails.
    PrepaymentQuote {
        /// The institution.
        institution: medmesh_types::InstitutionId,
        /// The kind.
        kind: medmesh_payment::PrepaymentKind,
        /// The agreed annual procurement amount (central procurement).
        procurement: Money,
        /// As of this time.
        now: LogTime,
    },
    /// Province: the prepayment policy in force.
    PrepaymentPolicy,
    /// Province: an institution's budget of a year.
    Budget {
        /// The institution.
        institution: medmesh_types::InstitutionId,
        /// The year.
        year: i32,
    },
    /// Federation: the shared log after a sequence.
    SharedLog {
        /// Entries with a sequence above this.
        after: u64,
        /// Most returned.
        limit: usize,
    },
    /// Federation: its records of these transfers (decision, month of the settlement line),
    /// for a province's reconciliation; at most [`MAX_ROWS`].
    FedRecords {
        /// The transfers.
        transfers: Vec<crate::shared::TransferId>,
    },
    /// Province: the non-local transfers committed here in a month (by its log time), in key
    /// order, for reconciliation.
    NonLocalMonth {
        /// Month, `YYYY-MM`.
        month: String,
        /// `treatment/institution/serial` of the last transfer of the previous page (empty for
        /// the first page).
        after: String,
        /// Most returned (1 to [`MAX_ROWS`]).
        limit: usize,
    },
    /// Province `own`: its own committed records of these non-local transfers; at most
    /// [`MAX_ROWS`].
    LocalRecords {
        /// This province.
        own: ProvinceCode,
        /// The transfers.
        transfers: Vec<crate::shared::TransferId>,
    },
    /// Province: an inspection plan.
    Inspection {
        /// Its id.
        id: String,
    },
    /// The fund's report of a month (disclosure).
    FundReport {
        /// The month.
        period: medmesh_payment::Period,
    },
    /// Province: a report, by id (with its sealed reporter, which only the edge opens).
    Report {
        /// Its id.
        id: String,
    },
    /// Province: reports by id.
    Reports {
        /// Last id of the page before.
        after: String,
        /// Most reports.
        limit: usize,
    },
    /// Province: the report a receipt code's keyed hash names.
    ReportByReceipt {
        /// The keyed hash of the code.
        receipt: medmesh_types::KeyedHash,
    },
    /// Province: the report policy in force.
    ReportPolicy,
    /// Province: a flight inspection, by id.
    Flight {
        /// Its id.
        id: String,
    },
    /// Province: flight inspections by id.
    Flights {
        /// Last id of the page before.
        after: String,
        /// Most flight inspections.
        limit: usize,
    },
    /// An institution's credit rating on a day (any province's institution this one knows).
    CreditRating {
        /// The institution.
        institution: InstitutionId,
        /// The day rated (the caller's clock: a read, not apply).
        today: medmesh_types::Date,
    },
    /// Credit grades of institutions on a day, in order (`None`: unknown here).
    CreditGrades {
        /// The institutions, at most [`MAX_ROWS`].
        institutions: Vec<InstitutionId>,
        /// The day rated.
        today: medmesh_types::Date,
    },
    /// Province: the aggregate of a period as it stands, with the version it was published
    /// under (0: not published as it stands).
    Aggregate {
        /// The period.
        period: crate::aggregate::AggPeriod,
    },
    /// Federation: the latest published aggregates of a period, of every province or one.
    NationalAggregates {
        /// The period.
        period: crate::aggregate::AggPeriod,
        /// Only this province.
        province: Option<ProvinceCode>,
    },
    /// A person's credit rating on a day (issue 13.3).
    PersonnelCreditRating {
        /// The person.
        code: medmesh_types::PersonnelCode,
        /// The day rated.
        today: Date,
    },
    /// A party's notification-commitments known here (issue 13.3).
    Commitments {
        /// The institution, personnel or enterprise.
        party: medmesh_supervision::credit::Party,
    },
    /// Federation: a province's report inbox (issue 13.2) after a sequence.
    ReportInbox {
        /// The province whose inbox it is.
        province: ProvinceCode,
        /// Messages with a sequence above this.
        after: u64,
        /// Most returned.
        limit: usize,
    },
    /// An enterprise's credit rating on a day (issue 13.3).
    EnterpriseCreditRating {
        /// The enterprise.
        code: medmesh_types::EnterpriseCode,
        /// The day rated.
        today: Date,
    },
    /// An insured person's credit rating on a day (issue 13.3), by their certificate's keys.
    PersonCreditRating {
        /// Certificate kind.
        kind: CertificateKind,
        /// The province's lookup key of the certificate (is the person insured here?).
        key: medmesh_types::KeyedHash,
        /// The national directory key (the joint-discipline entries' subject).
        directory_key: String,
        /// The day rated.
        today: Date,
    },
    /// A party's joint-incentive entries known here (every province's), on a day.
    Incentives {
        /// The institution, personnel or enterprise.
        party: medmesh_supervision::credit::Party,
        /// The day (in force needs grade A that day).
        today: Date,
    },
}

impl Query {
    /// The query's name, for logs and traces.
    pub fn kind(&self) -> &'static str {
        match self {
            Query::Identity { .. } => "identity",
            Query::PreSettle { .. } => "pre_settle",
            Query::Settlement { .. } => "settlement",
            Query::Statement { .. } => "statement",
            Query::Fund => "fund",
            Query::Policy => "policy",
            Query::Institution { .. } => "institution",
            Query::Personnel { .. } => "personnel",
            Query::CatalogueItem { .. } => "catalogue_item",
            Query::Person { .. } => "person",
            Query::Qualification { .. } => "qualification",
            Query::Visit { .. } => "visit",
            Query::TransferClaim { .. } => "transfer_claim",
            Query::VisitClaim { .. } => "visit_claim",
            Query::OpenTransfers { .. } => "open_transfers",
            Query::OpenReversals { .. } => "open_reversals",
            Query::PendingReservations { .. } => "pending_reservations",
            Query::RemotePerson { .. } => "remote_person",
            Query::RemoteQuote { .. } => "remote_quote",
            Query::SharedCursor => "shared_cursor",
            Query::Disciplines { .. } => "disciplines",
            Query::Directory { .. } => "directory",
            Query::ProvinceEndpoints { .. } => "province_endpoints",
            Query::Provinces => "provinces",
            Query::Filings { .. } => "filings",
            Query::Decision { .. } => "decision",
            Query::Positions => "positions",
            Query::Rules => "rules",
            Query::Alerts { .. } => "alerts",
            Query::TestRule { .. } => "test_rule",
            Query::Case { .. } => "case",
            Query::Inspection { .. } => "inspection",
            Query::FundReport { .. } => "fund_report",
            Query::Report { .. } => "report",
            Query::Reports { .. } => "reports",
            Query::ReportByReceipt { .. } => "report_by_receipt",
            Query::ReportPolicy => "report_policy",
            Query::Flight { .. } => "flight",
            Query::Flights { .. } => "flights",
            Query::CreditRating { .. } => "credit_rating",
            Query::CreditGrades { .. } => "credit_grades",
            Query::PaymentStatement { .. } => "payment_statement",
            Query::Declarations { .. } => "declarations",
            Query::Prepayments { .. } => "prepayments",
            Query::PrepaymentQuote { .. } => "prepayment_quote",
            Query::PrepaymentPolicy => "prepayment_policy",
            Query::Budget { .. } => "budget",
            Query::Cases { .. } => "cases",
            Query::CasePolicy => "case_policy",
            Query::Outbox { .. } => "outbox",
            Query::CaseOutcomes { .. } => "case_outcomes",
            Query::SharedLog { .. } => "shared_log",
            Query::Prepaid => "prepaid",
            Query::Clearing { .. } => "clearing",
            Query::Audit { .. } => "audit",
            Query::AuditHead => "audit_head",
            Query::History { .. } => "history",
            Query::Anchors { .. } => "anchors",
            Query::FedRecords { .. } => "fed_records",
            Query::NonLocalMonth { .. } => "nonlocal_month",
            Query::LocalRecords { .. } => "local_records",
            Query::Aggregate { .. } => "aggregate",
            Query::NationalAggregates { .. } => "national_aggregates",
            Query::ReportInbox { .. } => "report_inbox",
            Query::PersonnelCreditRating { .. } => "personnel_credit_rating",
            Query::Commitments { .. } => "commitments",
            Query::EnterpriseCreditRating { .. } => "enterprise_credit_rating",
            Query::PersonCreditRating { .. } => "person_credit_rating",
            Query::Incentives { .. } => "incentives",
        }
    }
}

/// The entitlement view of a person (no raw identity number).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdentityView {
    /// The person; `Display` masks the number.
    pub person: Person,
    /// This year's accumulators.
    pub accumulators: Accumulators,
    /// The accumulator year.
    pub year: i32,
}

/// The fund view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FundView {
    /// The ledger.
    pub ledger: FundLedger,
    /// Sum of what the fund owes institutions.
    pub payables: Money,
    /// The fund's risk level.
    pub risk: crate::payment::FundRisk,
}

/// An answer to a [`Query`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(clippy::large_enum_variant)] // one per query
pub enum Answer {
    /// Identity and entitlement.
    Identity(IdentityView),
    /// A quote.
    Quote(Split),
    /// A settlement.
    Settlement(Settlement),
    /// A page of a statement.
    Statement {
        /// The settlements of the page.
        settlements: Vec<Settlement>,
        /// The token of the next page; empty when this page is the last.
        next_page_token: String,
    },
    /// The fund.
    Fund(FundView),
    /// The policy in force.
    Policy(medmesh_settlement::Policy),
    /// An institution.
    Institution(Institution),
    /// Personnel.
    Personnel(Personnel),
    /// A catalogue entry.
    CatalogueItem(CatalogueItem),
    /// A person's register entry (the identity number is masked at the edge).
    Person(Person),
    /// A qualification.
    Qualification(medmesh_supervision::QualificationView),
    /// A visit.
    Visit(Visit),
    /// A transfer and its claim.
    TransferClaim {
        /// The transfer.
        transfer: TreatmentTransfer,
        /// The claim for the insured province.
        claim: RemoteClaim,
        /// The visit's link to the insured province.
        nonlocal: NonLocalVisit,
    },
    /// A non-local visit's claim.
    VisitClaim {
        /// The claim for the insured province.
        claim: RemoteClaim,
        /// The visit's link to the insured province.
        nonlocal: NonLocalVisit,
    },
    /// Transfers.
    Transfers(Vec<TreatmentTransfer>),
    /// Open reversals: `(reversal serial, settlement)`.
    Reversals(Vec<(Serial, Settlement)>),
    /// Reservations.
    Reservations(Vec<Reservation>),
    /// A person as another province sees them.
    RemotePerson(RemotePerson),
    /// A sequence number.
    Cursor(u64),
    /// A province.
    Province(ProvinceCode),
    /// Provinces' endpoints.
    Endpoints(Vec<ProvinceEntry>),
    /// Filings.
    Filings(Vec<Filing>),
    /// A decision, if recorded.
    Decision(Option<DecisionRecord>),
    /// Positions `(insured, treatment, position)`.
    Positions(Vec<(ProvinceCode, ProvinceCode, Position)>),
    /// Shared-log entries `(sequence, item)`.
    SharedLog(Vec<(u64, SharedItem)>),
    /// A page of joint-discipline entries, by id, each with its lift if lifted.
    Disciplines {
        /// The entries.
        entries: Vec<(DisciplineEntry, Option<DisciplineLift>)>,
        /// The token of the next page; empty when this page is the last.
        next_page_token: String,
    },
    /// Prepaid accounts.
    Prepaid(Vec<PrepaidView>),
    /// A month's clearing with one page of lines.
    Clearing {
        /// The month's status and every statement, with the lines of this page.
        view: crate::shared::ClearingView,
        /// Token of the next page; empty on the last.
        next_page_token: String,
    },
    /// Monitoring rules.
    Rules(Vec<crate::monitoring::RuleRecord>),
    /// Alerts of the review queue, in order.
    Alerts(Vec<crate::monitoring::Alert>),
    /// What rules found on a claim.
    Verdict(medmesh_monitor::Verdict),
    /// A case.
    Case(Box<medmesh_supervision::cases::Case>),
    /// Cases by id.
    Cases(Vec<medmesh_supervision::cases::Case>),
    /// The case policy.
    CasePolicy(medmesh_supervision::cases::CasePolicy),
    /// Case outcomes.
    CaseOutcomes(Vec<medmesh_supervision::cases::CaseOutcome>),
    /// Audit entries, in order.
    Audit(Vec<crate::audit::AuditEntry>),
    /// An audit-chain head.
    AuditHead(Option<crate::audit::AuditHead>),
    /// Changes of a register record, in order.
    History(Vec<crate::audit::Change>),
    /// Anchors, by sequence number.
    Anchors(Vec<crate::audit::Anchor>),
    /// An institution's month.
    PaymentStatement(Box<crate::payment::PaymentStatement>),
    /// Declarations, oldest first.
    Declarations(Vec<medmesh_payment::Declaration>),
    /// An institution's prepayment account and prepayments.
    Prepayments(PrepaymentAccount, Vec<Prepayment>),
    /// What a prepayment would be.
    PrepaymentQuote(medmesh_payment::Sizing),
    /// The prepayment policy.
    PrepaymentPolicy(medmesh_payment::PrepaymentPolicy),
    /// A budget.
    Budget(Box<medmesh_payment::Budget>),
    /// The federation's records of the transfers asked, in the order asked.
    FedRecords(Vec<crate::reconcile::FedRecord>),
    /// Transfers committed in a month, and the cursor after the last (empty on the last page).
    MonthTransfers {
        /// The transfers.
        transfers: Vec<crate::shared::TransferId>,
        /// `after` for the next page; empty on the last.
        next: String,
    },
    /// A province's committed records of the transfers asked, in the order asked.
    LocalRecords(Vec<Option<crate::reconcile::LocalRecord>>),
    /// An inspection plan, with its draw once drawn.
    Inspection(Box<crate::inspection::InspectionView>),
    /// The fund's report of a month.
    FundReport(Box<crate::disclosure::FundReport>),
    /// A report.
    Report(Box<crate::reports::ReportRecord>),
    /// Reports, and the group's day (for what is overdue).
    Reports {
        /// The group's day (`None` before the first entry).
        today: Option<medmesh_types::Date>,
        /// The reports.
        reports: Vec<crate::reports::ReportRecord>,
    },
    /// The report policy.
    ReportPolicy(medmesh_supervision::reports::ReportPolicy),
    /// Flight inspections, and the group's day (for what is overdue).
    Flights {
        /// The group's day (`None` before the first entry).
        today: Option<medmesh_types::Date>,
        /// The flight inspections.
        flights: Vec<medmesh_supervision::flights::FlightInspection>,
    },
    /// A credit rating.
    CreditRating(Box<medmesh_supervision::credit::Rating>),
    /// Credit grades and whether each is trusted (a joint-incentive entry in force), in the
    /// order asked (`None`: unknown here).
    CreditGrades(Vec<Option<(medmesh_supervision::credit::Grade, bool)>>),
    /// An aggregate.
    Aggregate(Box<crate::aggregate::Aggregate>),
    /// Aggregates by province.
    NationalAggregates(Vec<(ProvinceCode, crate::aggregate::Aggregate)>),
    /// A province's report messages `(sequence, message)`.
    ReportInbox(Vec<(u64, crate::shared::ReportMessage)>),
    /// Joint-incentive entries, each with whether it is in force (within its period, the
    /// party graded A).
    Incentives(Vec<(medmesh_supervision::credit::Incentive, bool)>),
    /// Notification-commitments, with the day they were read (for `overdue`).
    Commitments {
        /// The group's day.
        today: Option<Date>,
        /// The commitments.
        commitments: Vec<medmesh_supervision::credit::Commitment>,
    },
}

/// Most rows any list query returns.
pub const MAX_ROWS: usize = 10_000;

fn rows<T: serde::de::DeserializeOwned>(kv: &dyn KvRead, prefix: &str, limit: usize) -> Vec<T> {
    scan_prefix(kv, prefix, limit.min(MAX_ROWS)).iter().map(|(_, v)| decode(v)).collect()
}

fn key_tail(k: &[u8], skip: usize) -> Vec<String> {
    String::from_utf8_lossy(k).split('/').skip(skip).map(str::to_string).collect()
}

/// Refuses a page size outside 1 to [`MAX_ROWS`], naming `page_size`.
fn page(size: usize) -> Result<(), DomainError> {
    if (1..=MAX_ROWS).contains(&size) {
        Ok(())
    } else {
        Err(DomainError::invalid("page_size", format!("must be 1 to {MAX_ROWS}")))
    }
}

/// Answers a query.
pub fn run_query(kv: &dyn KvRead, q: &Query) -> Result<Answer, DomainError> {
    match q {
        Query::Identity { institution, kind, key, now } => {
            crate::rules::active_institution(kv, institution, now.date())?;
            // Entitlement lookups show an inactive person too, with the status.
            let person = crate::rules::find_person(kv, *kind, key)?;
            let year = now.date().year();
            let accumulators = load(kv, &keys::accumulators(&person.key, year)).unwrap_or_default();
            Ok(Answer::Identity(IdentityView { person, accumulators, year }))
        }
        Query::PreSettle { institution, visit, use_individual_account, now } => {
            if load::<Visit>(kv, &keys::visit(institution, visit)).is_some_and(|v| v.nonlocal.is_some()) {
                // The insured province quotes a non-local visit: hand back its claim.
                return run_query(
                    kv,
                    &Query::VisitClaim {
                        institution: institution.clone(),
                        visit: visit.clone(),
                        use_individual_account: *use_individual_account,
                        now: *now,
                    },
                );
            }
            let (_, _, split, _) = quote(kv, institution, visit, *use_individual_account, *now)?;
            Ok(Answer::Quote(split))
        }
        Query::Settlement { institution, serial } => {
            load(kv, &keys::settlement(institution, serial)).map(Answer::Settlement).ok_or_else(|| {
                DomainError::not_found(
                    "serial",
                    format!("settlement {serial} of institution {institution} does not exist"),
                )
            })
        }
        Query::Statement { institution, from, to, page_token, page_size } => {
            if to < from {
                return Err(DomainError::invalid("to", "is before from"));
            }
            if to.days() - from.days() > MAX_STATEMENT_DAYS {
                return Err(DomainError::invalid(
                    "to",
                    format!("a statement covers at most {MAX_STATEMENT_DAYS} days"),
                ));
            }
            if !(1..=MAX_STATEMENT).contains(page_size) {
                return Err(DomainError::invalid("page_size", format!("must be 1 to {MAX_STATEMENT}")));
            }
            // The token is the last index entry of the previous page, `YYYY-MM-DD/serial`.
            let mut start = keys::statement_day(institution, *from).into_bytes();
            if !page_token.is_empty() {
                let bad = || DomainError::invalid("page_token", "is not a token this statement returned");
                let (day, serial) = page_token.split_once('/').ok_or_else(bad)?;
                let day = Date::parse(day).map_err(|_| bad())?;
                let serial = Serial::new(serial).map_err(|_| bad())?;
                if day < *from || day > *to {
                    return Err(bad());
                }
                start = keys::statement(institution, day, &serial).into_bytes();
                start.push(0);
            }
            let end = keys::statement_day(institution, to.plus_days(1));
            let rows = kv.scan(&start, end.as_bytes(), page_size + 1);
            let more = rows.len() > *page_size;
            let mut settlements = Vec::with_capacity(rows.len().min(*page_size));
            let mut last = String::new();
            for (k, _) in rows.into_iter().take(*page_size) {
                let k = String::from_utf8_lossy(&k).to_string();
                let mut parts = k.rsplitn(3, '/');
                let serial = parts.next().unwrap_or_default();
                let day = parts.next().unwrap_or_default();
                last = format!("{day}/{serial}");
                let serial = Serial::new(serial).map_err(|e| DomainError::invalid("serial", e.to_string()))?;
                if let Some(s) = load::<Settlement>(kv, &keys::settlement(institution, &serial)) {
                    settlements.push(s);
                }
            }
            Ok(Answer::Statement { settlements, next_page_token: if more { last } else { String::new() } })
        }
        Query::Qualification { code, now } => {
            Ok(Answer::Qualification(crate::rules::qualification(kv, code, now.date())?))
        }
        Query::Visit { institution, visit } => {
            load(kv, &keys::visit(institution, visit)).map(Answer::Visit).ok_or_else(|| {
                DomainError::not_found(
                    "visit_serial",
                    format!("visit {visit} of institution {institution} is not registered"),
                )
            })
        }
        Query::TransferClaim { institution, serial } => {
            let transfer: TreatmentTransfer = load(kv, &keys::transfer(institution, serial)).ok_or_else(|| {
                DomainError::not_found(
                    "serial",
                    format!("no non-local settlement {serial} of institution {institution}"),
                )
            })?;
            let (claim, nonlocal) =
                remote_claim(kv, institution, &transfer.visit, transfer.use_individual_account, &transfer.checks)?;
            Ok(Answer::TransferClaim { transfer, claim, nonlocal })
        }
        Query::VisitClaim { institution, visit, use_individual_account, now } => {
            let v: Visit = load(kv, &keys::visit(institution, visit)).ok_or_else(|| {
                DomainError::not_found(
                    "visit_serial",
                    format!("visit {visit} of institution {institution} is not registered"),
                )
            })?;
            if let Some(by) = &v.settled_by {
                return Err(DomainError::precondition(
                    "visit_serial",
                    format!("visit {visit} is already settled by {by}"),
                ));
            }
            let inst = crate::rules::active_institution(kv, institution, now.date())?;
            let points = crate::rules::billing_doctor(kv, &v.doctor, institution, now.date())?;
            // The quote meets this province's own rules as the settlement will.
            let checks = crate::monitoring::check_visitor(kv, &v, &inst, points, now.date());
            crate::monitoring::blocked(&checks)?;
            let (claim, nonlocal) = remote_claim(kv, institution, visit, *use_individual_account, &checks)?;
            Ok(Answer::VisitClaim { claim, nonlocal })
        }
        Query::OpenTransfers { limit } => {
            let mut out = Vec::new();
            for (k, _) in scan_prefix(kv, keys::OPEN_TRANSFERS, (*limit).min(MAX_ROWS)) {
                let parts = key_tail(&k, 1);
                if let [inst, serial] = &parts[..] {
                    if let (Ok(i), Ok(s)) = (InstitutionId::new(inst.clone()), Serial::new(serial.clone())) {
                        if let Some(t) = load::<TreatmentTransfer>(kv, &keys::transfer(&i, &s)) {
                            out.push(t);
                        }
                    }
                }
            }
            Ok(Answer::Transfers(out))
        }
        Query::OpenReversals { limit } => {
            let mut out = Vec::new();
            for (k, _) in scan_prefix(kv, keys::OPEN_REVERSALS, (*limit).min(MAX_ROWS)) {
                let parts = key_tail(&k, 1);
                if let [inst, serial] = &parts[..] {
                    if let (Ok(i), Ok(s)) = (InstitutionId::new(inst.clone()), Serial::new(serial.clone())) {
                        if let Some((target, _)) = load::<(Serial, String)>(kv, &keys::reversal(&i, &s)) {
                            if let Some(st) = load::<Settlement>(kv, &keys::settlement(&i, &target)) {
                                out.push((s, st));
                            }
                        }
                    }
                }
            }
            Ok(Answer::Reversals(out))
        }
        Query::PendingReservations { limit } => {
            let mut out = Vec::new();
            for (k, _) in scan_prefix(kv, keys::PENDING_RESERVATIONS, (*limit).min(MAX_ROWS)) {
                let k = String::from_utf8_lossy(&k).to_string();
                let tail = k.trim_start_matches(keys::PENDING_RESERVATIONS);
                if let Some(r) = load::<Reservation>(kv, &format!("rsv/{tail}")) {
                    out.push(r);
                }
            }
            Ok(Answer::Reservations(out))
        }
        Query::RemotePerson { .. } => Err(DomainError::invalid(
            "certificate",
            "a certificate number is sealed at the insured province's edge before any lookup",
        )),
        Query::RemoteQuote { handle, claim, now, transfer } => {
            let person = resolve_person(kv, CertificateKind::IdCard, handle)?;
            crate::insured::quote_remote(kv, &person, transfer, claim, *now).map(|(split, _, _)| Answer::Quote(split))
        }
        Query::SharedCursor => Ok(Answer::Cursor(load(kv, keys::SHARED_CURSOR).unwrap_or(0))),
        Query::Disciplines { subject, page_token, page_size } => {
            page(*page_size)?;
            let prefix = keys::disciplines(subject);
            let mut start = prefix.clone().into_bytes();
            if !page_token.is_empty() {
                if page_token.len() > 128 || page_token.contains('/') {
                    return Err(DomainError::invalid("page_token", "is not a token this list returned"));
                }
                start = keys::discipline(subject, page_token).into_bytes();
                start.push(0);
            }
            let mut end = prefix.into_bytes();
            if let Some(last) = end.last_mut() {
                *last += 1;
            }
            let rows = kv.scan(&start, &end, page_size + 1);
            let more = rows.len() > *page_size;
            let entries: Vec<(DisciplineEntry, Option<DisciplineLift>)> = rows
                .iter()
                .take(*page_size)
                .map(|(_, v)| {
                    let e: DisciplineEntry = decode(v);
                    let lift = load(kv, &keys::discipline_lift(subject, &e.id));
                    (e, lift)
                })
                .collect();
            let next_page_token = match (more, entries.last()) {
                (true, Some((e, _))) => e.id.clone(),
                _ => String::new(),
            };
            Ok(Answer::Disciplines { entries, next_page_token })
        }
        Query::Directory { key } => load(kv, &keys::fed_directory(key))
            .map(Answer::Province)
            .ok_or_else(|| DomainError::not_found("certificate", "no province insures the holder of this certificate")),
        Query::ProvinceEndpoints { province } => load(kv, &keys::fed_province(province))
            .map(|e| Answer::Endpoints(vec![e]))
            .ok_or_else(|| DomainError::not_found("province", format!("province {province} is not registered"))),
        Query::Provinces => Ok(Answer::Endpoints(rows(kv, keys::FED_PROVINCES, MAX_ROWS))),
        Query::Filings { person_key, treatment } => {
            Ok(Answer::Filings(rows(kv, &keys::fed_filings(person_key, treatment), MAX_ROWS)))
        }
        Query::Decision { transfer } => Ok(Answer::Decision(load(kv, &keys::fed_decision(transfer)))),
        Query::Positions => Ok(Answer::Positions(crate::clearing::positions(kv))),
        Query::Rules => Ok(Answer::Rules(crate::monitoring::rules(kv))),
        Query::Alerts { from, limit } => {
            Ok(Answer::Alerts(crate::monitoring::alerts(kv, *from, (*limit).clamp(1, MAX_ROWS))))
        }
        Query::Inspection { id } => crate::inspection::view(kv, id).map(|v| Answer::Inspection(Box::new(v))),
        Query::FundReport { period } => {
            crate::disclosure::fund_report(kv, *period).map(|r| Answer::FundReport(Box::new(r)))
        }
        Query::Report { id } => load(kv, &keys::report(id))
            .map(|r| Answer::Report(Box::new(r)))
            .ok_or_else(|| DomainError::not_found("report_id", format!("no report {id}"))),
        Query::Reports { after, limit } => {
            page(*limit)?;
            let today = load::<medmesh_types::LogTime>(kv, keys::TIME).map(|t| t.date());
            Ok(Answer::Reports { today, reports: crate::reports::reports(kv, after, *limit) })
        }
        Query::ReportByReceipt { receipt } => {
            crate::reports::by_receipt(kv, receipt).map(|r| Answer::Report(Box::new(r)))
        }
        Query::ReportPolicy => Ok(Answer::ReportPolicy(crate::reports::policy(kv))),
        Query::Flight { id } => {
            let today = load::<medmesh_types::LogTime>(kv, keys::TIME).map(|t| t.date());
            load(kv, &keys::flight(id))
                .map(|f| Answer::Flights { today, flights: vec![f] })
                .ok_or_else(|| DomainError::not_found("flight_id", format!("no flight inspection {id}")))
        }
        Query::Flights { after, limit } => {
            page(*limit)?;
            let (today, flights) = crate::flights::flights(kv, after, *limit);
            Ok(Answer::Flights { today, flights })
        }
        Query::CreditRating { institution, today } => {
            crate::credit::rating(kv, institution, *today, "institution_id").map(|r| Answer::CreditRating(Box::new(r)))
        }
        Query::CreditGrades { institutions, today } => {
            if institutions.len() > MAX_ROWS {
                return Err(DomainError::invalid("institutions", format!("at most {MAX_ROWS}")));
            }
            Ok(Answer::CreditGrades(
                institutions
                    .iter()
                    .map(|i| crate::credit::rating(kv, i, *today, "institution_id").ok().map(|r| (r.grade, r.trusted)))
                    .collect(),
            ))
        }
        Query::Case { id } => load(kv, &keys::case(id))
            .map(|c| Answer::Case(Box::new(c)))
            .ok_or_else(|| DomainError::not_found("case_id", format!("no case {id}"))),
        Query::Cases { after, limit } => {
            page(*limit)?;
            Ok(Answer::Cases(crate::cases::cases(kv, after, *limit)))
        }
        Query::CasePolicy => Ok(Answer::CasePolicy(crate::cases::policy(kv))),
        Query::PaymentStatement { institution, period } => {
            crate::payment::statement(kv, institution, *period).map(|s| Answer::PaymentStatement(Box::new(s)))
        }
        Query::Declarations { institution, after, limit } => {
            page(*limit)?;
            Ok(Answer::Declarations(crate::payment::declarations(kv, institution, *after, *limit)))
        }
        Query::Prepayments { institution, limit } => {
            page(*limit)?;
            let (account, list) = crate::payment::prepayments(kv, institution, *limit);
            Ok(Answer::Prepayments(account, list))
        }
        Query::PrepaymentQuote { institution, kind, procurement, now } => {
            crate::payment::assess(kv, institution, *kind, *procurement, now.date()).map(Answer::PrepaymentQuote)
        }
        Query::PrepaymentPolicy => Ok(Answer::PrepaymentPolicy(crate::payment::policy(kv))),
        Query::Budget { institution, year } => {
            crate::payment::budget(kv, institution, *year).map(|b| Answer::Budget(Box::new(b)))
        }
        Query::Outbox { limit } => Ok(Answer::SharedLog(crate::cases::outbox_items(kv, (*limit).clamp(1, MAX_ROWS)))),
        Query::CaseOutcomes { institution, limit } => {
            page(*limit)?;
            Ok(Answer::CaseOutcomes(crate::cases::outcomes(kv, institution, *limit)))
        }
        Query::TestRule { rule, institution, visit, now } => {
            let today = now.date();
            let points = |code: &medmesh_types::PersonnelCode| {
                crate::rules::qualification(kv, code, today).map(|q| q.year_points).unwrap_or(0)
            };
            crate::monitoring::test_rule(kv, rule, institution, visit, today, points).map(Answer::Verdict)
        }
        Query::Prepaid => Ok(Answer::Prepaid(crate::clearing::prepaid_views(kv))),
        Query::Clearing { month, page_token, page_size } => crate::clearing::page(kv, month, page_token, *page_size),
        Query::Audit { from, limit } => {
            let start = keys::audit((*from).max(1));
            let end = keys::audit(u64::MAX);
            let rows = kv.scan(start.as_bytes(), end.as_bytes(), (*limit).clamp(1, MAX_ROWS));
            Ok(Answer::Audit(rows.iter().map(|(_, v)| decode(v)).collect()))
        }
        Query::AuditHead => Ok(Answer::AuditHead(load(kv, keys::AUDIT_HEAD))),
        Query::History { record, from, limit } => {
            let kinds = ["person/", "inst/", "staff/", "item/"];
            if record != keys::POLICY && !kinds.iter().any(|k| record.starts_with(k)) || record.len() > 128 {
                return Err(DomainError::invalid("record", "is not a register record"));
            }
            let start = keys::history(record, *from);
            let mut end = keys::histories(record).into_bytes();
            if let Some(last) = end.last_mut() {
                *last += 1;
            }
            let rows = kv.scan(start.as_bytes(), &end, (*limit).clamp(1, MAX_ROWS));
            Ok(Answer::History(rows.iter().map(|(_, v)| decode(v)).collect()))
        }
        Query::FedRecords { transfers } => crate::reconcile::fed_records(kv, transfers),
        Query::NonLocalMonth { month, after, limit } => crate::reconcile::month_transfers(kv, month, after, *limit),
        Query::LocalRecords { own, transfers } => crate::reconcile::local_records(kv, own, transfers),
        Query::Anchors { province, from, limit } => {
            let start = keys::fed_anchor(province, *from);
            let mut end = keys::fed_anchors(province).into_bytes();
            if let Some(last) = end.last_mut() {
                *last += 1;
            }
            let rows = kv.scan(start.as_bytes(), &end, (*limit).clamp(1, MAX_ROWS));
            Ok(Answer::Anchors(rows.iter().map(|(_, v)| decode(v)).collect()))
        }
        Query::SharedLog { after, limit } => {
            let start = keys::fed_shared(after + 1);
            let rows = kv.scan(start.as_bytes(), keys::FED_SHARED_END.as_bytes(), (*limit).min(MAX_ROWS));
            let mut out = Vec::with_capacity(rows.len());
            for (k, v) in rows {
                let seq = key_tail(&k, 1).first().and_then(|s| s.parse::<u64>().ok()).unwrap_or(0);
                out.push((seq, decode(&v)));
            }
            Ok(Answer::SharedLog(out))
        }
        Query::Fund => {
            let ledger: FundLedger = load(kv, keys::FUND).unwrap_or_default();
            let payables = kv
                .scan(b"payable/", b"payable0", usize::MAX)
                .into_iter()
                .map(|(_, v)| decode::<Payable>(&v).amount)
                .sum();
            let today = load::<LogTime>(kv, keys::TIME).map(|t| t.date());
            let risk = crate::payment::fund_risk(kv, ledger.with_prepaid(), today);
            Ok(Answer::Fund(FundView { ledger, payables, risk }))
        }
        Query::Policy => load(kv, keys::POLICY)
            .map(Answer::Policy)
            .ok_or_else(|| DomainError::not_found("policy", "the province has no policy yet")),
        Query::Institution { id } => load(kv, &keys::institution(id))
            .map(Answer::Institution)
            .ok_or_else(|| DomainError::not_found("id", format!("institution {id} is not registered"))),
        Query::Personnel { code } => load(kv, &keys::personnel(code))
            .map(Answer::Personnel)
            .ok_or_else(|| DomainError::not_found("code", format!("personnel {code} is not registered"))),
        Query::CatalogueItem { code } => load(kv, &keys::item(code))
            .map(Answer::CatalogueItem)
            .ok_or_else(|| DomainError::not_found("code", format!("{code} is not in the catalogue"))),
        Query::Person { kind, key } => crate::rules::find_person(kv, *kind, key).map(Answer::Person),
        Query::Aggregate { period } => {
            crate::aggregate::check_period("period", *period)?;
            crate::aggregate::current(kv, *period).map(|a| Answer::Aggregate(Box::new(a)))
        }
        Query::NationalAggregates { period, province } => {
            crate::aggregate::check_period("period", *period)?;
            crate::aggregate::national(kv, *period, province.as_ref()).map(Answer::NationalAggregates)
        }
        Query::PersonnelCreditRating { code, today } => {
            crate::credit::personnel_rating(kv, code, *today, "personnel_code")
                .map(|r| Answer::CreditRating(Box::new(r)))
        }
        Query::Commitments { party } => Ok(Answer::Commitments {
            today: load::<LogTime>(kv, keys::TIME).map(|t| t.date()),
            commitments: crate::credit::commitments(kv, party),
        }),
        Query::EnterpriseCreditRating { code, today } => {
            crate::credit::enterprise_rating(kv, code, *today, "enterprise_code")
                .map(|r| Answer::CreditRating(Box::new(r)))
        }
        Query::PersonCreditRating { kind, key, directory_key, today } => {
            let insured_here = crate::rules::find_person(kv, *kind, key).is_ok();
            crate::credit::person_rating(kv, directory_key, insured_here, *today, "certificate")
                .map(|r| Answer::CreditRating(Box::new(r)))
        }
        Query::Incentives { party, today } => {
            let entries = crate::credit::incentives(kv, party);
            let a = entries.first().and_then(|_| crate::credit::party_rating(kv, party, *today).ok());
            let trusted_grade = a.is_some_and(|r| r.grade == medmesh_supervision::credit::Grade::A);
            Ok(Answer::Incentives(
                entries
                    .into_iter()
                    .map(|i| {
                        let in_force = trusted_grade && i.in_period(*today);
                        (i, in_force)
                    })
                    .collect(),
            ))
        }
        Query::ReportInbox { province, after, limit } => {
            Ok(Answer::ReportInbox(crate::federation::report_inbox(kv, province, *after, (*limit).clamp(1, MAX_ROWS))))
        }
    }
}
