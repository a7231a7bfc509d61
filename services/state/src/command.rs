//! What travels in a Raft log entry: a [`Batch`] of [`Command`]s, each one role's.
//!
//! A province group applies [`ProvinceCommand`]s ([`crate::model`]), the federation group
//! [`FederationCommand`]s ([`crate::federation`]); a command of the other role is refused in
//! apply. Stored with bincode, which encodes a variant by its index: a change here must bump
//! `medmesh_storage::FORMAT_VERSION`.

use medmesh_types::LogTime;
use serde::{Deserialize, Serialize};

use crate::federation::FederationCommand;
use crate::model::{CaseCommand, InspectionCommand, PaymentCommand, ProvinceCommand, ReportCommand, Role};

/// A command of either role, as the log carries it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Command {
    /// For a province group.
    Province(ProvinceCommand),
    /// For the federation group.
    Federation(FederationCommand),
}

impl From<ProvinceCommand> for Command {
    fn from(c: ProvinceCommand) -> Self {
        Command::Province(c)
    }
}

impl From<FederationCommand> for Command {
    fn from(c: FederationCommand) -> Self {
        Command::Federation(c)
    }
}

impl Command {
    /// The role of the group that accepts this command; any other group refuses it in apply.
    pub fn role(&self) -> Role {
        match self {
            Command::Province(_) => Role::Province,
            Command::Federation(_) => Role::Federation,
        }
    }

    /// The command's name, for logs, traces and the audit chain (never its content).
    pub fn kind(&self) -> &'static str {
        match self {
            Command::Province(c) => c.kind(),
            Command::Federation(c) => c.kind(),
        }
    }

    /// For a register command (`Put*`): the record's storage key and the record, encoded (its
    /// history keeps them).
    pub fn put_record(&self) -> Option<(String, Vec<u8>)> {
        match self {
            Command::Province(c) => c.put_record(),
            Command::Federation(_) => None,
        }
    }
}

impl ProvinceCommand {
    /// For a register command (`Put*`): the record's storage key and the record, encoded.
    pub fn put_record(&self) -> Option<(String, Vec<u8>)> {
        use crate::kv::{encode, keys};
        Some(match self {
            Self::PutPerson(p) => (keys::person(&p.key), encode(p)),
            Self::PutInstitution(i) => (keys::institution(&i.id), encode(i)),
            Self::PutPersonnel(p) => (keys::personnel(&p.code), encode(p)),
            Self::PutCatalogueItem(i) => (keys::item(&i.code), encode(i)),
            Self::PutPolicy(p) => (keys::POLICY.to_string(), encode(p)),
            _ => return None,
        })
    }

    /// The command's name.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::PutPerson(_) => "put_person",
            Self::PutInstitution(_) => "put_institution",
            Self::PutPersonnel(_) => "put_personnel",
            Self::PutCatalogueItem(_) => "put_catalogue_item",
            Self::PutPolicy(_) => "put_policy",
            Self::PutRule(_) => "put_rule",
            Self::PutKnowledge(_) => "put_knowledge",
            Self::ReviewAlert { .. } => "review_alert",
            Self::Contribute { .. } => "contribute",
            Self::RecordViolation(_) => "record_violation",
            Self::RegisterVisit { .. } => "register_visit",
            Self::UploadFees { .. } => "upload_fees",
            Self::Settle { .. } => "settle",
            Self::Reverse { .. } => "reverse",
            Self::RegisterNonLocalVisit { .. } => "register_nonlocal_visit",
            Self::Reserve { .. } => "reserve",
            Self::ResolveReservation { .. } => "resolve_reservation",
            Self::TransferReserved { .. } => "transfer_reserved",
            Self::FinishTransfer { .. } => "finish_transfer",
            Self::SyncShared { .. } => "sync_shared",
            Self::RecordDiscipline(_) => "record_discipline",
            Self::AttachFiling { .. } => "attach_filing",
            Self::UnpostReservation { .. } => "unpost_reservation",
            Self::FinishReversal { .. } => "finish_reversal",
            Self::Case(c) => match c {
                CaseCommand::Open { .. } => "open_case",
                CaseCommand::Investigate { .. } => "investigate_case",
                CaseCommand::Decide { .. } => "decide_case",
                CaseCommand::Execute { .. } => "execute_case",
                CaseCommand::Close { .. } => "close_case",
                CaseCommand::PutPolicy(_) => "put_case_policy",
                CaseCommand::LiftCredit { .. } => "lift_credit",
            },
            Self::Published { .. } => "published",
            Self::CreditAccounts { .. } => "credit_accounts",
            Self::PrepaidSeen { .. } => "prepaid_seen",
            Self::Payment(c) => match c {
                PaymentCommand::Declare { .. } => "declare_month",
                PaymentCommand::Review { .. } => "review_declaration",
                PaymentCommand::Contest { .. } => "contest_deduction",
                PaymentCommand::Resolve { .. } => "resolve_contest",
                PaymentCommand::Pay { .. } => "pay_institution",
                PaymentCommand::PutPolicy(_) => "put_prepayment_policy",
                PaymentCommand::Prepay { .. } => "grant_prepayment",
                PaymentCommand::Repay { .. } => "repay_prepayment",
                PaymentCommand::WriteOff { .. } => "write_off_prepayment",
                PaymentCommand::PutBudget { .. } => "put_budget",
                PaymentCommand::CloseBudgetYear { .. } => "close_budget_year",
            },
            Self::ScanRule { .. } => "scan_rule",
            Self::Inspection(c) => match c {
                InspectionCommand::PutPlan { .. } => "put_inspection_plan",
                InspectionCommand::Draw { .. } => "draw_inspection",
                InspectionCommand::Finding { .. } => "record_inspection_finding",
                InspectionCommand::PutCalendar(_) => "put_work_calendar",
                InspectionCommand::StartFlight { .. } => "start_flight_inspection",
                InspectionCommand::FileFlightReport { .. } => "file_flight_report",
                InspectionCommand::CloseFlight { .. } => "close_flight_inspection",
            },
            Self::Report(c) => match c {
                ReportCommand::PutPolicy(_) => "put_report_policy",
                ReportCommand::Submit { .. } => "submit_report",
                ReportCommand::Acknowledge { .. } => "acknowledge_report",
                ReportCommand::Conclude { .. } => "conclude_report",
                ReportCommand::PayReward { .. } => "pay_report_reward",
                ReportCommand::Unseal { .. } => "open_reporter",
            },
            Self::PublishAggregate { .. } => "publish_aggregate",
            Self::SettleWithLines { .. } => "settle_with_lines",
            Self::LiftDiscipline { .. } => "lift_discipline",
            Self::ReceiveReports { .. } => "receive_reports",
            Self::RecordCommitment { .. } => "record_commitment",
            Self::ResolveCommitment { .. } => "resolve_commitment",
            Self::RecordIncentive(_) => "record_incentive",
        }
    }
}

impl FederationCommand {
    /// The command's name (`fed_` and the variant).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::RecordDiscipline(_) => "fed_record_discipline",
            Self::TopUp { .. } => "fed_top_up",
            Self::RunClearing { .. } => "fed_run_clearing",
            Self::SettleClearing { .. } => "fed_settle_clearing",
            Self::DisputeClearing { .. } => "fed_dispute_clearing",
            Self::ResolveDispute { .. } => "fed_resolve_dispute",
            Self::ConfirmClearing { .. } => "fed_confirm_clearing",
            Self::Reverse { .. } => "fed_reverse",
            Self::RegisterProvince(_) => "fed_register_province",
            Self::Directory { .. } => "fed_directory",
            Self::File(_) => "fed_file",
            Self::Decide { .. } => "fed_decide",
            Self::Vouch { .. } => "fed_vouch",
            Self::Anchor { .. } => "fed_anchor",
            Self::RecordViolation(_) => "fed_record_violation",
            Self::RecordCaseOutcome(_) => "fed_record_case_outcome",
            Self::PutRule(_) => "fed_put_rule",
            Self::RecordCreditLift(_) => "fed_record_credit_lift",
            Self::RecordAggregate { .. } => "fed_record_aggregate",
            Self::RecordDisciplineLift(_) => "fed_record_discipline_lift",
            Self::SendReport(_) => "fed_send_report",
            Self::RecordCommitment(_) => "fed_record_commitment",
            Self::RecordIncentive(_) => "fed_record_incentive",
            Self::RecordDeclarationReview(_) => "fed_record_declaration_review",
        }
    }
}

/// A Raft log entry's payload: commands proposed together, with the leader's time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Batch {
    /// Time of the entry; apply uses `max(time, last applied time)`.
    pub time: LogTime,
    /// The commands, applied in order; each succeeds or fails alone.
    pub commands: Vec<Command>,
    /// Who asked for each command, by position (a command without one is recorded with an
    /// empty origin); kept in the audit chain ([`crate::audit`]).
    pub origins: Vec<crate::audit::Origin>,
}

impl Batch {
    /// Commands proposed together at `time`, with no recorded origins.
    pub fn of<C: Into<Command>>(time: LogTime, commands: Vec<C>) -> Batch {
        Batch { time, commands: commands.into_iter().map(Into::into).collect(), origins: Vec::new() }
    }
}
