//! Who may call what: one table of every rpc and the roles allowed to call it, and the one
//! guard that applies it to every request before a handler runs.
//!
//! The caller's identity comes from its client certificate ([`crate::identity`]), verified by
//! rustls against the CA. The guard answers:
//!
//! - `UNAUTHENTICATED` when an rpc needs an identity and the caller presented no certificate,
//!   one naming no medmesh identity, or one on the deny list (`tls_deny`, by SHA-256
//!   fingerprint);
//! - `PERMISSION_DENIED` naming the caller's identity, the rpc and the roles allowed when the
//!   caller's role is not among them.
//!
//! Where a rule also depends on the request's content (an institution acts only for itself, an
//! agency tops up only its own province's account, a replica of another group proposes only
//! for transfers it is part of), the guard admits the role and the handler checks the content
//! with [`Caller`]'s methods; the table says so in its `scope` column. The same table is
//! printed in the proto next to each rpc and walked by the role test.

use std::collections::BTreeSet;
use std::convert::Infallible;
use std::sync::Arc;
use std::task::{Context, Poll};

use medmesh_types::ProvinceCode;
use tonic::body::Body;
use tonic::codegen::http;
use tonic::server::NamedService;
use tonic::transport::server::{TcpConnectInfo, TlsConnectInfo};
use tonic::Status;

use crate::identity::Identity;

/// A kind of caller an rpc admits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Allow {
    /// Any caller, with or without a certificate.
    Anyone,
    /// Any caller with a valid medmesh identity.
    AnyIdentity,
    /// An institution of this replica's province.
    InstitutionHere,
    /// An institution of any province.
    InstitutionAny,
    /// The agency of this replica's province.
    AgencyHere,
    /// The agency of any province.
    AgencyAny,
    /// The national administration.
    National,
    /// A replica of this replica's group.
    ReplicaOfGroup,
    /// A replica of another group than this replica's.
    ReplicaOther,
    /// The operator of this replica's group.
    OperatorHere,
    /// The report officer of this replica's province.
    ReportOfficerHere,
}

impl Allow {
    /// Whether `who` is admitted on a replica of group `here`.
    pub fn admits(self, who: Option<&Identity>, here: &ProvinceCode) -> bool {
        match (self, who) {
            (Allow::Anyone, _) => true,
            (_, None) => false,
            (Allow::AnyIdentity, Some(_)) => true,
            (Allow::InstitutionHere, Some(Identity::Institution { province, .. })) => province == here,
            (Allow::InstitutionAny, Some(Identity::Institution { .. })) => true,
            (Allow::AgencyHere, Some(Identity::Agency { province })) => province == here,
            (Allow::AgencyAny, Some(Identity::Agency { .. })) => true,
            (Allow::National, Some(Identity::National)) => true,
            (Allow::ReplicaOfGroup, Some(Identity::Replica { group, .. })) => group == here,
            (Allow::ReplicaOther, Some(Identity::Replica { group, .. })) => group != here,
            (Allow::OperatorHere, Some(Identity::Operator { group })) => group == here,
            (Allow::ReportOfficerHere, Some(Identity::ReportOfficer { province })) => province == here,
            _ => false,
        }
    }

    /// How the table names it.
    pub fn describe(self) -> &'static str {
        match self {
            Allow::Anyone => "anyone",
            Allow::AnyIdentity => "any identity",
            Allow::InstitutionHere => "an institution of this province",
            Allow::InstitutionAny => "an institution",
            Allow::AgencyHere => "this province's agency",
            Allow::AgencyAny => "a provincial agency",
            Allow::National => "the national administration",
            Allow::ReplicaOfGroup => "a replica of this group",
            Allow::ReplicaOther => "a replica of another group",
            Allow::OperatorHere => "this group's operator",
            Allow::ReportOfficerHere => "this province's report officer",
        }
    }
}

/// One row of the access table.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    /// The rpc's path, `/package.Service/Method`.
    pub method: &'static str,
    /// Who may call it.
    pub allow: &'static [Allow],
    /// What the handler checks beyond the role ("" when nothing).
    pub scope: &'static str,
}

impl Rule {
    /// The rule as the proto documents it next to the rpc (`Access: {doc}.`).
    pub fn doc(&self) -> String {
        let allowed: Vec<&str> = self.allow.iter().map(|a| a.describe()).collect();
        let mut text = allowed.join(" or ");
        if !self.scope.is_empty() {
            text.push_str("; ");
            text.push_str(self.scope);
        }
        text
    }
}

use Allow::*;

const OWN_INSTITUTION: &str = "the request's institution_id must be the caller's own";

/// The access table: every rpc a replica serves. An rpc missing here is refused to everyone.
pub const TABLE: &[Rule] = &[
    // Hospitals settle care at their own province's replicas, for themselves only.
    Rule { method: "/medmesh.v1.HospitalService/LookupIdentity", allow: &[InstitutionHere], scope: OWN_INSTITUTION },
    Rule { method: "/medmesh.v1.HospitalService/RegisterVisit", allow: &[InstitutionHere], scope: OWN_INSTITUTION },
    Rule { method: "/medmesh.v1.HospitalService/UploadFees", allow: &[InstitutionHere], scope: OWN_INSTITUTION },
    Rule { method: "/medmesh.v1.HospitalService/PreSettle", allow: &[InstitutionHere], scope: OWN_INSTITUTION },
    Rule { method: "/medmesh.v1.HospitalService/Settle", allow: &[InstitutionHere], scope: OWN_INSTITUTION },
    Rule { method: "/medmesh.v1.HospitalService/Reverse", allow: &[InstitutionHere], scope: OWN_INSTITUTION },
    Rule {
        method: "/medmesh.v1.HospitalService/GetExpenseDocument",
        allow: &[InstitutionHere],
        scope: OWN_INSTITUTION,
    },
    Rule { method: "/medmesh.v1.HospitalService/ListSettlements", allow: &[InstitutionHere], scope: OWN_INSTITUTION },
    // An institution declares and contests its own months and reads its own statements.
    Rule { method: "/medmesh.v1.HospitalService/DeclareMonth", allow: &[InstitutionHere], scope: OWN_INSTITUTION },
    Rule { method: "/medmesh.v1.HospitalService/ContestDeduction", allow: &[InstitutionHere], scope: OWN_INSTITUTION },
    Rule {
        method: "/medmesh.v1.HospitalService/GetPaymentStatement",
        allow: &[InstitutionHere],
        scope: OWN_INSTITUTION,
    },
    Rule { method: "/medmesh.v1.HospitalService/ListDeclarations", allow: &[InstitutionHere], scope: OWN_INSTITUTION },
    Rule { method: "/medmesh.v1.HospitalService/QuotePrepayment", allow: &[InstitutionHere], scope: OWN_INSTITUTION },
    Rule { method: "/medmesh.v1.HospitalService/ListPrepayments", allow: &[InstitutionHere], scope: OWN_INSTITUTION },
    Rule { method: "/medmesh.v1.HospitalService/GetBudget", allow: &[InstitutionHere], scope: OWN_INSTITUTION },
    // A province's agency keeps its own province's registers; the nation reads its aggregates.
    Rule { method: "/medmesh.v1.AgencyService/PutPerson", allow: &[AgencyHere], scope: "" },
    Rule { method: "/medmesh.v1.AgencyService/PutInstitution", allow: &[AgencyHere], scope: "" },
    Rule { method: "/medmesh.v1.AgencyService/PutPersonnel", allow: &[AgencyHere], scope: "" },
    Rule { method: "/medmesh.v1.AgencyService/PutCatalogueItem", allow: &[AgencyHere], scope: "" },
    Rule { method: "/medmesh.v1.AgencyService/PutPolicy", allow: &[AgencyHere], scope: "" },
    Rule { method: "/medmesh.v1.AgencyService/Contribute", allow: &[AgencyHere], scope: "" },
    Rule { method: "/medmesh.v1.AgencyService/GetFund", allow: &[AgencyHere, National], scope: "" },
    Rule { method: "/medmesh.v1.AgencyService/RecordViolation", allow: &[AgencyHere], scope: "" },
    Rule { method: "/medmesh.v1.AgencyService/GetQualification", allow: &[AgencyHere], scope: "" },
    Rule { method: "/medmesh.v1.AgencyService/FileNonLocal", allow: &[AgencyHere], scope: "" },
    Rule { method: "/medmesh.v1.AgencyService/RecordDiscipline", allow: &[AgencyHere], scope: "" },
    Rule { method: "/medmesh.v1.AgencyService/ListDiscipline", allow: &[AgencyHere, National], scope: "" },
    Rule { method: "/medmesh.v1.AgencyService/ListAudit", allow: &[AgencyHere, National], scope: "" },
    Rule { method: "/medmesh.v1.AgencyService/GetHistory", allow: &[AgencyHere], scope: "" },
    Rule { method: "/medmesh.v1.AgencyService/GetPolicy", allow: &[AgencyHere, National], scope: "" },
    Rule { method: "/medmesh.v1.AgencyService/GetInstitution", allow: &[AgencyHere, National], scope: "" },
    Rule { method: "/medmesh.v1.AgencyService/GetPersonnel", allow: &[AgencyHere], scope: "" },
    Rule { method: "/medmesh.v1.AgencyService/GetCatalogueItem", allow: &[AgencyHere], scope: "" },
    Rule { method: "/medmesh.v1.AgencyService/GetPerson", allow: &[AgencyHere], scope: "" },
    // Monitoring before payment: each province's agency keeps its rule library, knowledge
    // base and review queue.
    Rule { method: "/medmesh.v1.AgencyService/PutRule", allow: &[AgencyHere], scope: "" },
    Rule { method: "/medmesh.v1.AgencyService/ListRules", allow: &[AgencyHere], scope: "" },
    Rule { method: "/medmesh.v1.AgencyService/TestRule", allow: &[AgencyHere], scope: "" },
    Rule { method: "/medmesh.v1.AgencyService/PutKnowledge", allow: &[AgencyHere], scope: "" },
    Rule { method: "/medmesh.v1.AgencyService/ListAlerts", allow: &[AgencyHere], scope: "" },
    Rule { method: "/medmesh.v1.AgencyService/ReviewAlert", allow: &[AgencyHere], scope: "" },
    Rule { method: "/medmesh.v1.AgencyService/ScanSettlements", allow: &[AgencyHere], scope: "" },
    Rule { method: "/medmesh.v1.AgencyService/OpenCase", allow: &[AgencyHere], scope: "" },
    Rule { method: "/medmesh.v1.AgencyService/InvestigateCase", allow: &[AgencyHere], scope: "" },
    Rule { method: "/medmesh.v1.AgencyService/DecideCase", allow: &[AgencyHere], scope: "" },
    Rule { method: "/medmesh.v1.AgencyService/ExecuteCase", allow: &[AgencyHere], scope: "" },
    Rule { method: "/medmesh.v1.AgencyService/CloseCase", allow: &[AgencyHere], scope: "" },
    Rule { method: "/medmesh.v1.AgencyService/GetCase", allow: &[AgencyHere], scope: "" },
    Rule { method: "/medmesh.v1.AgencyService/ListCases", allow: &[AgencyHere], scope: "" },
    Rule { method: "/medmesh.v1.AgencyService/PutCasePolicy", allow: &[AgencyHere], scope: "" },
    Rule { method: "/medmesh.v1.AgencyService/GetCasePolicy", allow: &[AgencyHere], scope: "" },
    Rule { method: "/medmesh.v1.AgencyService/ListCaseOutcomes", allow: &[AgencyHere], scope: "" },
    // The agency reviews, pays and prepays its own province's institutions.
    Rule { method: "/medmesh.v1.AgencyService/ReviewDeclaration", allow: &[AgencyHere], scope: "" },
    Rule { method: "/medmesh.v1.AgencyService/ResolveContest", allow: &[AgencyHere], scope: "" },
    Rule { method: "/medmesh.v1.AgencyService/PayInstitution", allow: &[AgencyHere], scope: "" },
    Rule { method: "/medmesh.v1.AgencyService/GetInstitutionStatement", allow: &[AgencyHere], scope: "" },
    Rule { method: "/medmesh.v1.AgencyService/ListInstitutionDeclarations", allow: &[AgencyHere], scope: "" },
    Rule { method: "/medmesh.v1.AgencyService/PutPrepaymentPolicy", allow: &[AgencyHere], scope: "" },
    Rule { method: "/medmesh.v1.AgencyService/GetPrepaymentPolicy", allow: &[AgencyHere], scope: "" },
    Rule { method: "/medmesh.v1.AgencyService/GrantPrepayment", allow: &[AgencyHere], scope: "" },
    Rule { method: "/medmesh.v1.AgencyService/RepayPrepayment", allow: &[AgencyHere], scope: "" },
    Rule { method: "/medmesh.v1.AgencyService/WriteOffPrepayment", allow: &[AgencyHere], scope: "" },
    Rule { method: "/medmesh.v1.AgencyService/ListInstitutionPrepayments", allow: &[AgencyHere], scope: "" },
    Rule { method: "/medmesh.v1.AgencyService/PutBudget", allow: &[AgencyHere], scope: "" },
    Rule { method: "/medmesh.v1.AgencyService/GetInstitutionBudget", allow: &[AgencyHere], scope: "" },
    Rule { method: "/medmesh.v1.AgencyService/CloseBudgetYear", allow: &[AgencyHere], scope: "" },
    Rule { method: "/medmesh.v1.AgencyService/CreditAccounts", allow: &[AgencyHere], scope: "" },
    Rule { method: "/medmesh.v1.AgencyService/ReconcileClearing", allow: &[AgencyHere, National], scope: "" },
    Rule { method: "/medmesh.v1.AgencyService/PutInspectionPlan", allow: &[AgencyHere], scope: "" },
    Rule { method: "/medmesh.v1.AgencyService/DrawInspection", allow: &[AgencyHere], scope: "" },
    Rule { method: "/medmesh.v1.AgencyService/GetInspectionPlan", allow: &[AnyIdentity], scope: "" },
    Rule { method: "/medmesh.v1.AgencyService/RecordInspectionFinding", allow: &[AgencyHere], scope: "" },
    Rule { method: "/medmesh.v1.AgencyService/PutWorkCalendar", allow: &[AgencyHere], scope: "" },
    Rule { method: "/medmesh.v1.AgencyService/StartFlightInspection", allow: &[AgencyHere], scope: "" },
    Rule { method: "/medmesh.v1.AgencyService/FileFlightReport", allow: &[AgencyHere], scope: "" },
    Rule { method: "/medmesh.v1.AgencyService/CloseFlightInspection", allow: &[AgencyHere], scope: "" },
    Rule { method: "/medmesh.v1.AgencyService/GetFlightInspection", allow: &[AgencyHere, National], scope: "" },
    Rule { method: "/medmesh.v1.AgencyService/ListFlightInspections", allow: &[AgencyHere, National], scope: "" },
    Rule { method: "/medmesh.v1.AgencyService/GetCreditRating", allow: &[AgencyHere, National], scope: "" },
    Rule { method: "/medmesh.v1.AgencyService/LiftCreditEntry", allow: &[AgencyHere], scope: "" },
    Rule { method: "/medmesh.v1.AgencyService/LiftDiscipline", allow: &[AgencyHere], scope: "" },
    Rule { method: "/medmesh.v1.AgencyService/RecordCommitment", allow: &[AgencyHere], scope: "" },
    Rule { method: "/medmesh.v1.AgencyService/ResolveCommitment", allow: &[AgencyHere], scope: "" },
    Rule { method: "/medmesh.v1.AgencyService/ListCommitments", allow: &[AgencyHere, National], scope: "" },
    Rule { method: "/medmesh.v1.AgencyService/RecordIncentive", allow: &[AgencyHere], scope: "" },
    Rule { method: "/medmesh.v1.AgencyService/ListIncentives", allow: &[AgencyHere, National], scope: "" },
    // Reports (whistleblowing): anyone reports and follows their report by its receipt code;
    // the agency handles; only the report officer reads who reported.
    Rule { method: "/medmesh.v1.ReportService/SubmitReport", allow: &[Anyone], scope: "" },
    Rule { method: "/medmesh.v1.ReportService/GetReportStatus", allow: &[Anyone], scope: "" },
    Rule { method: "/medmesh.v1.ReportService/PutReportPolicy", allow: &[AgencyHere], scope: "" },
    Rule { method: "/medmesh.v1.ReportService/GetReportPolicy", allow: &[AgencyHere, National], scope: "" },
    Rule { method: "/medmesh.v1.ReportService/ListReports", allow: &[AgencyHere], scope: "" },
    Rule { method: "/medmesh.v1.ReportService/AcknowledgeReport", allow: &[AgencyHere], scope: "" },
    Rule { method: "/medmesh.v1.ReportService/ConcludeReport", allow: &[AgencyHere], scope: "" },
    Rule { method: "/medmesh.v1.ReportService/PayReportReward", allow: &[AgencyHere], scope: "" },
    Rule { method: "/medmesh.v1.ReportService/OpenReporter", allow: &[ReportOfficerHere], scope: "" },
    // Disclosure: what a province publishes, read by anyone the mesh knows.
    Rule { method: "/medmesh.v1.DisclosureService/GetFundReport", allow: &[AnyIdentity], scope: "" },
    Rule { method: "/medmesh.v1.DisclosureService/ListDisclosedCases", allow: &[AnyIdentity], scope: "" },
    Rule { method: "/medmesh.v1.DisclosureService/GetAggregate", allow: &[AnyIdentity], scope: "" },
    Rule { method: "/medmesh.v1.DisclosureService/PublishAggregate", allow: &[AgencyHere], scope: "" },
    // The federation: provinces read their positions; the nation runs clearing.
    Rule { method: "/medmesh.v1.FederationService/GetPositions", allow: &[AgencyAny, National], scope: "" },
    Rule { method: "/medmesh.v1.FederationService/ListAnchors", allow: &[AgencyAny, National], scope: "" },
    Rule { method: "/medmesh.v1.FederationService/GetTransfer", allow: &[AgencyAny, National], scope: "" },
    Rule { method: "/medmesh.v1.FederationService/ListProvinces", allow: &[AnyIdentity], scope: "" },
    Rule {
        method: "/medmesh.v1.FederationService/TopUp",
        allow: &[AgencyAny],
        scope: "the request's province must be the agency's own",
    },
    Rule { method: "/medmesh.v1.FederationService/GetPrepaid", allow: &[AgencyAny, National], scope: "" },
    Rule { method: "/medmesh.v1.FederationService/RunClearing", allow: &[National], scope: "" },
    Rule { method: "/medmesh.v1.FederationService/SettleClearing", allow: &[National], scope: "" },
    Rule { method: "/medmesh.v1.FederationService/ResolveClearingDispute", allow: &[National], scope: "" },
    Rule { method: "/medmesh.v1.FederationService/PutNationalRule", allow: &[National], scope: "" },
    Rule { method: "/medmesh.v1.FederationService/ListNationalRules", allow: &[AgencyAny, National], scope: "" },
    Rule {
        method: "/medmesh.v1.FederationService/GetNationalAggregates",
        allow: &[National, AgencyAny],
        scope: "an agency must name its own province",
    },
    Rule { method: "/medmesh.v1.FederationService/GetNonLocalFlows", allow: &[National], scope: "" },
    Rule { method: "/medmesh.v1.FederationService/GetClearing", allow: &[AgencyAny, National], scope: "" },
    Rule {
        method: "/medmesh.v1.FederationService/ConfirmClearingLine",
        allow: &[InstitutionAny],
        scope: "the line's institution and treatment province must be the caller's own",
    },
    Rule {
        method: "/medmesh.v1.FederationService/DisputeClearingLine",
        allow: &[InstitutionAny],
        scope: "the line's institution and treatment province must be the caller's own",
    },
    // Raft (internal listener): replication and forwarding only among a group's replicas.
    Rule { method: "/medmesh.v1.RaftService/AppendEntries", allow: &[ReplicaOfGroup], scope: "" },
    Rule { method: "/medmesh.v1.RaftService/Vote", allow: &[ReplicaOfGroup], scope: "" },
    Rule { method: "/medmesh.v1.RaftService/InstallSnapshot", allow: &[ReplicaOfGroup], scope: "" },
    Rule { method: "/medmesh.v1.RaftService/Clock", allow: &[ReplicaOfGroup], scope: "" },
    Rule { method: "/medmesh.v1.RaftService/Propose", allow: &[ReplicaOfGroup], scope: "" },
    Rule { method: "/medmesh.v1.RaftService/Query", allow: &[ReplicaOfGroup], scope: "" },
    // Between groups (public listener): only what the calling group is part of
    // (medmesh_state::access).
    Rule {
        method: "/medmesh.v1.MeshService/Propose",
        allow: &[ReplicaOther],
        scope: "only the commands that group may send, for its own transfers and entries",
    },
    Rule {
        method: "/medmesh.v1.MeshService/Query",
        allow: &[ReplicaOther],
        scope: "only the queries that group may ask",
    },
    Rule { method: "/medmesh.v1.AdminService/Init", allow: &[OperatorHere], scope: "" },
    Rule { method: "/medmesh.v1.AdminService/AddReplica", allow: &[OperatorHere], scope: "" },
    Rule { method: "/medmesh.v1.AdminService/RemoveReplica", allow: &[OperatorHere], scope: "" },
    Rule { method: "/medmesh.v1.AdminService/Status", allow: &[OperatorHere, ReplicaOfGroup], scope: "" },
    Rule { method: "/medmesh.v1.AdminService/Snapshot", allow: &[OperatorHere], scope: "" },
    // Probes need no certificate; reflection needs one.
    Rule { method: "/grpc.health.v1.Health/Check", allow: &[Anyone], scope: "" },
    Rule { method: "/grpc.health.v1.Health/Watch", allow: &[Anyone], scope: "" },
    Rule { method: "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", allow: &[AnyIdentity], scope: "" },
    Rule { method: "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", allow: &[AnyIdentity], scope: "" },
];

/// The rule of `method`, if the table has one.
pub fn rule(method: &str) -> Option<&'static Rule> {
    static BY_METHOD: std::sync::OnceLock<std::collections::HashMap<&'static str, &'static Rule>> =
        std::sync::OnceLock::new();
    BY_METHOD.get_or_init(|| TABLE.iter().map(|r| (r.method, r)).collect()).get(method).copied()
}

/// The rule of `method`, or PERMISSION_DENIED for an rpc the table does not have.
fn ruled(method: &str) -> Result<&'static Rule, Status> {
    rule(method).ok_or_else(|| {
        tracing::warn!(target: "medmesh::access", method, "refused: not in the access table");
        Status::permission_denied(format!("{method}: no access rule; refused to every caller"))
    })
}

/// The verified caller of a request, put in its extensions by the guard.
#[derive(Debug, Clone)]
pub enum Caller {
    /// A caller whose certificate named this identity.
    Verified(Identity),
    /// A caller without a certificate on an rpc open to anyone.
    Anonymous,
    /// Any caller of a replica started with `--insecure` (no identities are checked).
    Insecure,
}

impl Caller {
    /// The caller of `req` (anonymous if the guard did not run).
    pub fn of<T>(req: &tonic::Request<T>) -> Caller {
        req.extensions().get::<Caller>().cloned().unwrap_or(Caller::Anonymous)
    }

    /// The identity, if verified.
    pub fn identity(&self) -> Option<&Identity> {
        match self {
            Caller::Verified(id) => Some(id),
            _ => None,
        }
    }

    fn denied(&self, what: &str) -> Status {
        let who = match self {
            Caller::Verified(id) => format!("{} {id}", id.role()),
            _ => "an anonymous caller".into(),
        };
        tracing::warn!(target: "medmesh::access", caller = %who, what, "refused");
        Status::permission_denied(format!("{who} may not {what}"))
    }

    /// Checks that the caller is the institution `institution_id` (the value as sent).
    pub fn acts_for_institution(&self, institution_id: &str) -> Result<(), Status> {
        match self {
            Caller::Insecure => Ok(()),
            Caller::Verified(Identity::Institution { institution, .. }) if institution.as_str() == institution_id => {
                Ok(())
            }
            _ => Err(self.denied(&format!("act for institution_id {institution_id:?}"))),
        }
    }

    /// Checks that the caller is the institution `institution_id` of `province`.
    pub fn is_institution_of(&self, province: &str, institution_id: &str) -> Result<(), Status> {
        match self {
            Caller::Insecure => Ok(()),
            Caller::Verified(Identity::Institution { institution, province: p })
                if institution.as_str() == institution_id && p.as_str() == province =>
            {
                Ok(())
            }
            _ => Err(self.denied(&format!("act for institution {institution_id:?} of province {province:?}"))),
        }
    }

    /// Checks that the caller is the agency of `province`.
    pub fn is_agency_of(&self, province: &str) -> Result<(), Status> {
        match self {
            Caller::Insecure => Ok(()),
            Caller::Verified(Identity::Agency { province: p }) if p.as_str() == province => Ok(()),
            _ => Err(self.denied(&format!("act for province {province:?}"))),
        }
    }

    /// The group of a calling replica from another group than `here` (`None` for a replica
    /// of this group or an insecure run).
    pub fn foreign_group(&self, here: &ProvinceCode) -> Option<&ProvinceCode> {
        match self {
            Caller::Verified(Identity::Replica { group, .. }) if group != here => Some(group),
            _ => None,
        }
    }
}

/// What the guard of one replica knows.
#[derive(Debug, Clone)]
pub struct Policy {
    /// The replica's group.
    pub here: ProvinceCode,
    /// Fingerprints (SHA-256 of the DER, lower-case hex) of refused certificates.
    pub deny: BTreeSet<String>,
    /// No TLS, no identities: every rpc is admitted (a throwaway local run only).
    pub insecure: bool,
}

impl Policy {
    /// A guard policy for a replica of `here`.
    pub fn new(here: ProvinceCode, deny: BTreeSet<String>, insecure: bool) -> Policy {
        Policy { here, deny, insecure }
    }

    /// The identity `der` names, or why it is refused (revoked, no medmesh identity).
    fn identify(&self, method: &str, der: &[u8]) -> Result<Identity, Status> {
        if !self.deny.is_empty() && self.deny.contains(&crate::pki::fingerprint(der)) {
            tracing::warn!(target: "medmesh::access", method, "refused: certificate on the deny list");
            return Err(Status::unauthenticated("certificate: revoked (on this replica's deny list)"));
        }
        Identity::from_der(der).map_err(|e| {
            tracing::warn!(target: "medmesh::access", method, error = %e, "refused");
            Status::unauthenticated(e)
        })
    }

    /// Decides a request to `method` by a caller who presented `cert` (DER), if any.
    pub fn decide(&self, method: &str, cert: Option<&[u8]>) -> Result<Caller, Status> {
        if self.insecure {
            return Ok(Caller::Insecure);
        }
        let rule = ruled(method)?;
        let identity = cert.map(|der| self.identify(method, der)).transpose()?;
        self.admit_to(rule, method, identity)
    }

    /// Decides a request to `method` by `identity`, established otherwise than by a
    /// certificate (a dashboard session, [`crate::dashboard`]): the same table, the same
    /// answers.
    pub fn admit(&self, method: &str, identity: Identity) -> Result<Caller, Status> {
        if self.insecure {
            return Ok(Caller::Insecure);
        }
        let rule = ruled(method)?;
        self.admit_to(rule, method, Some(identity))
    }

    fn admit_to(&self, rule: &Rule, method: &str, identity: Option<Identity>) -> Result<Caller, Status> {
        if rule.allow.iter().any(|a| a.admits(identity.as_ref(), &self.here)) {
            return Ok(identity.map(Caller::Verified).unwrap_or(Caller::Anonymous));
        }
        let allowed: Vec<&str> = rule.allow.iter().map(|a| a.describe()).collect();
        let name = method.rsplit('/').next().unwrap_or(method);
        match identity {
            None => {
                tracing::warn!(target: "medmesh::access", method, "refused: no client certificate");
                Err(Status::unauthenticated(format!(
                    "{name} needs a client certificate naming a medmesh identity ({})",
                    allowed.join(" or ")
                )))
            }
            Some(id) => {
                tracing::warn!(target: "medmesh::access", method, caller = %id, "refused: role not allowed");
                Err(Status::permission_denied(format!(
                    "{} {id} may not call {name} on group {}: allowed to {}",
                    id.role(),
                    self.here,
                    allowed.join(" or ")
                )))
            }
        }
    }
}

tokio::task_local! {
    /// Who asked for the request this task serves (the audit chain's actor and request id).
    pub static ORIGIN: medmesh_state::audit::Origin;
}

/// The origin of a request: the caller's identity and the request id it sent (gRPC's
/// `x-request-id`, the HTTP envelope's `msgid`); one is made up when the caller sent none, or
/// one that is not 1 to 64 printable characters.
pub fn origin(caller: &Caller, request_id: Option<&str>) -> medmesh_state::audit::Origin {
    let actor = match caller {
        Caller::Verified(id) => id.uri(),
        Caller::Anonymous => "anonymous".to_string(),
        Caller::Insecure => "insecure".to_string(),
    };
    let request =
        request_id.filter(|v| medmesh_state::audit::valid_request_id(v)).map(str::to_string).unwrap_or_else(|| {
            use rand::Rng;
            format!("{:016x}", rand::thread_rng().gen::<u64>())
        });
    medmesh_state::audit::Origin::new(actor, request)
}

/// Runs `handler`, the work of an admitted call of `method` outside gRPC (the HTTP gateway,
/// the dashboard), as a served gRPC call is run: inside the audit origin of `caller` and
/// `request_id`, timed and counted under the method.
pub async fn serve<T>(
    method: &'static str,
    caller: &Caller,
    request_id: Option<&str>,
    handler: impl std::future::Future<Output = Result<T, Status>>,
) -> Result<T, Status> {
    let start = std::time::Instant::now();
    let result = ORIGIN.scope(origin(caller, request_id), handler).await;
    let code = result.as_ref().err().map_or(tonic::Code::Ok, Status::code);
    crate::metrics::get().rpc(method, start.elapsed(), &(code as i32).to_string());
    result
}

/// `inner` behind the access guard of `policy`.
pub fn guard<S>(inner: S, policy: Arc<Policy>) -> Guard<S> {
    Guard { inner, policy }
}

/// A gRPC service behind the access guard.
#[derive(Clone)]
pub struct Guard<S> {
    inner: S,
    policy: Arc<Policy>,
}

impl<S: NamedService> NamedService for Guard<S> {
    const NAME: &'static str = S::NAME;
}

impl<S> tonic::codegen::Service<http::Request<Body>> for Guard<S>
where
    S: tonic::codegen::Service<http::Request<Body>, Response = http::Response<Body>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = tonic::codegen::BoxFuture<http::Response<Body>, Infallible>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<Body>) -> Self::Future {
        let certs = req.extensions().get::<TlsConnectInfo<TcpConnectInfo>>().and_then(|i| i.peer_certs());
        let cert = certs.as_ref().and_then(|c| c.first()).map(|c| c.as_ref());
        match self.policy.decide(req.uri().path(), cert) {
            Ok(caller) => {
                let origin = origin(&caller, req.headers().get("x-request-id").and_then(|v| v.to_str().ok()));
                req.extensions_mut().insert(caller);
                // Only methods of the table are timed, under the table's own name.
                let method = rule(req.uri().path()).map(|r| r.method);
                let span = crate::telemetry::rpc_span(method.unwrap_or("unknown"), req.headers());
                let fut = {
                    // The handler's own work (a call to another group, say) runs in the span.
                    let _entered = span.enter();
                    self.inner.call(req)
                };
                let start = std::time::Instant::now();
                Box::pin(async move {
                    use tracing::Instrument as _;
                    let res = ORIGIN.scope(origin, fut).instrument(span).await;
                    if let (Some(method), Ok(r)) = (method, &res) {
                        // A refusal travels in the headers (trailers-only); an answer's status
                        // follows the body, and is OK.
                        let code = r.headers().get("grpc-status").and_then(|v| v.to_str().ok()).unwrap_or("0");
                        crate::metrics::get().rpc(method, start.elapsed(), code);
                    }
                    res
                })
            }
            Err(status) => Box::pin(async move { Ok(status.into_http()) }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn here() -> ProvinceCode {
        ProvinceCode::new("110000".to_string()).unwrap()
    }

    #[test]
    fn every_method_has_one_rule() {
        let mut seen = BTreeSet::new();
        for r in TABLE {
            assert!(seen.insert(r.method), "{} twice", r.method);
            assert!(!r.allow.is_empty(), "{} admits nobody", r.method);
        }
    }

    /// The proto documents every rpc's rule, word for word, and every rpc there has a rule.
    #[test]
    fn the_proto_documents_the_table() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../proto/medmesh/v1");
        let mut documented = BTreeSet::new();
        for entry in std::fs::read_dir(&dir).unwrap() {
            let text = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            let mut service = String::new();
            let mut comment: Vec<String> = Vec::new();
            for line in text.lines() {
                let t = line.trim();
                if let Some(name) = t.strip_prefix("service ").and_then(|r| r.strip_suffix(" {")) {
                    service = name.to_string();
                }
                if let Some(c) = t.strip_prefix("//") {
                    comment.push(c.trim().to_string());
                    continue;
                }
                if let Some(rest) = t.strip_prefix("rpc ") {
                    let method = format!("/medmesh.v1.{service}/{}", rest.split('(').next().unwrap());
                    let rule = rule(&method).unwrap_or_else(|| panic!("{method} has no access rule"));
                    let doc = comment.join(" ");
                    let want = format!("Access: {}.", rule.doc());
                    assert!(doc.contains(&want), "{method}: the proto should say {want:?}, it says {doc:?}");
                    documented.insert(method);
                }
                comment.clear();
            }
        }
        for r in TABLE.iter().filter(|r| r.method.starts_with("/medmesh.")) {
            assert!(documented.contains(r.method), "{} is in the table but not in the proto", r.method);
        }
    }

    #[test]
    fn institutions_are_admitted_only_at_home() {
        let p = Policy::new(here(), BTreeSet::new(), false);
        let home = Identity::parse("medmesh://province/110000/institution/H1").unwrap();
        let away = Identity::parse("medmesh://province/310000/institution/H1").unwrap();
        assert!(InstitutionHere.admits(Some(&home), &p.here));
        assert!(!InstitutionHere.admits(Some(&away), &p.here));
        assert!(!InstitutionHere.admits(None, &p.here));
        assert!(Anyone.admits(None, &p.here));
    }

    #[test]
    fn unknown_methods_and_missing_certificates_are_refused() {
        let p = Policy::new(here(), BTreeSet::new(), false);
        assert_eq!(
            p.decide("/medmesh.v1.HospitalService/Nope", None).unwrap_err().code(),
            tonic::Code::PermissionDenied
        );
        assert_eq!(
            p.decide("/medmesh.v1.HospitalService/Settle", None).unwrap_err().code(),
            tonic::Code::Unauthenticated
        );
        assert!(p.decide("/grpc.health.v1.Health/Check", None).is_ok());
    }

    #[test]
    fn content_checks_name_the_caller_and_the_resource() {
        let c = Caller::Verified(Identity::parse("medmesh://province/110000/institution/H1").unwrap());
        assert!(c.acts_for_institution("H1").is_ok());
        let e = c.acts_for_institution("H2").unwrap_err();
        assert_eq!(e.code(), tonic::Code::PermissionDenied);
        assert!(e.message().contains("medmesh://province/110000/institution/H1"), "{}", e.message());
        assert!(e.message().contains("\"H2\""), "{}", e.message());
        assert!(Caller::Insecure.acts_for_institution("H2").is_ok());
        assert!(Caller::Anonymous.acts_for_institution("H1").is_err());
    }
}
