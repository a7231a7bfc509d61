//! Records of non-local (cross-province) care: what the federation holds for every province,
//! and what a treatment or insured province keeps about a transfer.
//!
//! The federation never holds a raw identity: a person is known there only by a keyed hash of
//! a certificate ([`directory_key`]), computed at the province edge with a secret shared by the
//! provinces and not by the federation's readers.

use std::collections::BTreeMap;

use medmesh_settlement::{CatalogueItem, FeeLine, Split};
use medmesh_types::{Date, InstitutionId, LogTime, Money, ProvinceCode, Serial};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Outpatient or inpatient.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum VisitKind {
    /// Outpatient visit.
    Outpatient,
    /// Inpatient stay.
    Inpatient,
}

/// Which certificate identified the person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum CertificateKind {
    /// Medical-security e-credential.
    ECredential,
    /// Resident ID card.
    IdCard,
    /// Social-security card.
    SocialSecurityCard,
}

impl CertificateKind {
    /// Key part of the index.
    pub fn key(self) -> &'static str {
        match self {
            CertificateKind::ECredential => "ecred",
            CertificateKind::IdCard => "id",
            CertificateKind::SocialSecurityCard => "sscard",
        }
    }
}

/// The province code of the federation group.
pub const FEDERATION: &str = "000000";

/// The directory key of a certificate: a keyed SHA-256 of its kind and number, as 32 hex
/// characters. Only a holder of `secret` can compute it from a certificate, and it cannot be
/// turned back into the number.
pub fn directory_key(secret: &str, kind: CertificateKind, number: &str) -> String {
    let mut h = Sha256::new();
    h.update((secret.len() as u64).to_be_bytes());
    h.update(secret.as_bytes());
    h.update([0]);
    h.update(kind.key().as_bytes());
    h.update([0]);
    h.update(number.as_bytes());
    hex::encode(&h.finalize()[..16])
}

/// Whether `key` looks like a [`directory_key`] (32 lowercase hex characters).
pub fn is_directory_key(key: &str) -> bool {
    key.len() == 32 && key.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Kind of non-local filing (备案).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum FilingKind {
    /// Long-term resident elsewhere: retirees resettled, long-term residence, posted workers.
    LongTermResident,
    /// Temporary visitor referred by an insured-place institution.
    Referral,
    /// Temporary visitor in an emergency: treated as filed.
    Emergency,
    /// Other temporary visitor: the insured place's reduced ratio applies.
    OtherTemporary,
}

impl FilingKind {
    /// Whether the insured place's temporary-visitor reduction applies.
    pub fn reduced_ratio(self) -> bool {
        self == FilingKind::OtherTemporary
    }
}

/// A non-local filing, as the federation holds it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filing {
    /// The insured province's filing serial.
    pub id: Serial,
    /// Directory key of the person's certificate.
    pub person_key: String,
    /// Where the person is insured (who filed).
    pub insured: ProvinceCode,
    /// Where the person is treated.
    pub treatment: ProvinceCode,
    /// Kind.
    pub kind: FilingKind,
    /// First day covered.
    pub start: Date,
    /// Last day covered.
    pub end: Date,
}

impl Filing {
    /// Whether the filing covers care on `day`.
    pub fn covers(&self, day: Date) -> bool {
        self.start <= day && day <= self.end
    }
}

/// Identifies one non-local settlement's transfer mesh-wide: the treatment province and the
/// hospital's idempotency key there.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct TransferId {
    /// Treatment province.
    pub treatment: ProvinceCode,
    /// Treating institution.
    pub institution: InstitutionId,
    /// The institution's settlement serial.
    pub serial: Serial,
}

impl TransferId {
    /// Key part `treatment/institution/serial`.
    pub fn key(&self) -> String {
        format!("{}/{}/{}", self.treatment, self.institution, self.serial)
    }
}

impl std::fmt::Display for TransferId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.key())
    }
}

/// The federation's decision on a transfer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Decision {
    /// Post on both sides: the insured province owes the amount to the treatment province.
    Commit,
    /// Void: the reservation is released; nothing is owed.
    Abort,
}

/// The durable decision on one transfer (first writer wins; it never changes).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionRecord {
    /// The transfer.
    pub transfer: TransferId,
    /// The insured province (the debtor on commit).
    pub insured: ProvinceCode,
    /// What the insured province pays: fund share plus individual account.
    pub amount: Money,
    /// Commit or abort.
    pub decision: Decision,
    /// Why it was aborted, if it was.
    pub reason: String,
    /// When it was recorded (log time).
    pub decided_at: LogTime,
    /// The serial of the reversal that gave a committed transfer back, if any.
    pub reversed: Option<Serial>,
}

/// What one insured province owes one treatment province, in real time.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Position {
    /// Committed non-local settlements in force (not reversed).
    pub settlements: u64,
    /// Their total.
    pub amount: Money,
    /// Paid through settled clearing months (net of adjustment lines).
    pub settled: Money,
    /// Upheld disputes' adjustments of settlements in force (claimed less the line's amount).
    pub adjusted: Money,
}

impl Position {
    /// Owed now: in force with upheld disputes' adjustments, less what settled clearing months
    /// paid. It falls back to the lines of months not yet settled (adjustment lines included).
    pub fn owed(&self) -> Money {
        self.amount + self.adjusted - self.settled
    }
}

/// A non-local visit's link to the insured province, kept at the treatment province.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NonLocalVisit {
    /// This (the treatment) province.
    pub treatment: ProvinceCode,
    /// Where the person is insured.
    pub insured: ProvinceCode,
    /// Directory key of the certificate.
    pub person_key: String,
    /// The kind of certificate presented. The number itself is not kept here: it went to the
    /// insured province once, at registration, and the visit names the person by `handle`.
    pub certificate_kind: CertificateKind,
    /// The insured province's handle of the person (a keyed hash under that province's key,
    /// meaningless elsewhere): later quotes and the reservation name the person by it.
    pub handle: medmesh_types::KeyedHash,
    /// Masked identity number, from the insured province.
    pub masked_id: String,
    /// The name the insured province gave, sealed for `handle` under this (the treatment)
    /// province's key (for the expense document).
    pub sealed_name: medmesh_types::Sealed,
    /// The filing covering the visit; `None` for an inpatient who may still file before
    /// discharge.
    pub filing: Option<FilingKind>,
}

/// The claim an insured province settles with its own policy: the treatment place's fee lines
/// and catalogue entries (treatment-place catalogue, insured-place policy).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemoteClaim {
    /// Level of the treating institution.
    pub institution_level: u8,
    /// The filing kind (decides the temporary-visitor reduction).
    pub filing: FilingKind,
    /// Pay the person's share from the individual account first.
    pub use_individual_account: bool,
    /// Day of admission (the person's age is taken on it).
    pub admitted: Date,
    /// The fee lines.
    pub lines: Vec<FeeLine>,
    /// The treatment place's catalogue entries of the lines' codes.
    pub items: Vec<CatalogueItem>,
    /// Outpatient or inpatient (the insured province's monitoring rules read it).
    pub kind: VisitKind,
    /// The billing doctor (a public registry code).
    pub doctor: medmesh_types::PersonnelCode,
    /// Department.
    pub department: String,
    /// Diagnosis code.
    pub diagnosis: String,
    /// Lines the treatment province's own monitoring rules moved to the patient's share, with
    /// the rule (only ever less for the fund: the insured province applies them beside its own
    /// rules' self-pay lines).
    pub rule_self_pay: BTreeMap<Serial, String>,
}

/// Where a transfer stands at the treatment province.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(clippy::large_enum_variant)] // one per open transfer
pub enum TransferPhase {
    /// Reserve asked of the insured province; no answer recorded yet.
    Reserving,
    /// The insured province reserved this split; commit is to be proposed.
    Reserved(Split),
    /// The federation's decision was applied here.
    Done(Decision),
}

/// A non-local settlement in progress or done, at the treatment province.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreatmentTransfer {
    /// The transfer.
    pub id: TransferId,
    /// The visit settled.
    pub visit: Serial,
    /// The insured province.
    pub insured: ProvinceCode,
    /// Pay the person's share from the individual account first.
    pub use_individual_account: bool,
    /// SHA-256 of the hospital's settle request (a retry must match it).
    pub digest: String,
    /// When it started (log time).
    pub started_at: LogTime,
    /// Where it stands.
    pub phase: TransferPhase,
    /// What this province's own rules found on the visitor's claim when the transfer opened
    /// (its self-pay lines travel with the claim; its flags join the review queue when the
    /// settlement is recorded).
    pub checks: medmesh_monitor::Verdict,
}

/// An open transfer with what driving it needs: the claim for the insured province and the
/// visit's link to it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenTransfer {
    /// The transfer.
    pub transfer: TreatmentTransfer,
    /// The claim for the insured province.
    pub claim: RemoteClaim,
    /// The visit's link to the insured province.
    pub nonlocal: NonLocalVisit,
}

/// Status of a reservation at the insured province.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReservationStatus {
    /// Held against the fund, the accumulators and the account; waiting for a decision.
    Pending,
    /// Committed: the amount is owed to the treatment province.
    Posted,
    /// Aborted: everything held was released.
    Voided,
    /// Committed, then the settlement was reversed: everything was given back.
    Reversed,
}

/// A phase-1 reservation at the insured province.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reservation {
    /// The transfer.
    pub transfer: TransferId,
    /// Calendar year whose accumulators hold it.
    pub year: i32,
    /// The split computed with this province's policy; `None` for a void that arrived before
    /// any reserve.
    pub split: Option<Split>,
    /// When it was reserved (log time).
    pub reserved_at: LogTime,
    /// Status.
    pub status: ReservationStatus,
}

impl Reservation {
    /// What the insured province pays the treatment province: fund share plus individual
    /// account.
    pub fn amount(&self) -> Money {
        self.split.as_ref().map(|s| s.fund_total() + s.individual_account).unwrap_or(Money::ZERO)
    }
}

/// A province's registered endpoints, in the federation's directory.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProvinceEntry {
    /// Province code.
    pub province: ProvinceCode,
    /// Replica addresses (`host:port`).
    pub endpoints: Vec<String>,
}

/// Who a joint-discipline entry names.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum DisciplineSubject {
    /// A designated institution (its code).
    Institution(InstitutionId),
    /// An insured person, by the directory key of a certificate (never the identity number).
    Person(String),
    /// A pharmaceutical or medical-consumables enterprise (its unified social credit code):
    /// the entry counts in its credit rating (it does not settle with the fund).
    Enterprise(medmesh_types::EnterpriseCode),
}

/// An entry of the joint-discipline list (联合惩戒): the subject may not settle directly with the
/// fund, in any province, from `from` through `until`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisciplineEntry {
    /// Stable id of the deciding agency's entry (no '/').
    pub id: String,
    /// Who.
    pub subject: DisciplineSubject,
    /// The deciding province.
    pub province: ProvinceCode,
    /// First day in force.
    pub from: Date,
    /// Last day in force.
    pub until: Date,
    /// Why (published with the entry).
    pub reason: String,
}

impl DisciplineEntry {
    /// Whether the entry is in force on `day`, unless lifted.
    pub fn in_force(&self, day: Date) -> bool {
        self.from <= day && day <= self.until
    }

    /// Whether the entry is in force on `day`, given its lift if it has one.
    pub fn in_force_unless(&self, lift: Option<&DisciplineLift>, day: Date) -> bool {
        self.in_force(day) && lift.is_none_or(|l| l.lifted_on > day)
    }
}

/// A joint-discipline entry lifted before its last day by its deciding province — on appeal,
/// or once the subject has put things right (信用修复, issue 13.3). From `lifted_on` the entry
/// is no longer in force in any province; it stays listed, with the lift.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisciplineLift {
    /// The entry's subject.
    pub subject: DisciplineSubject,
    /// The entry's id.
    pub id: String,
    /// The deciding province (the entry's, and the only one that lifts it).
    pub province: ProvinceCode,
    /// First day the entry is no longer in force.
    pub lifted_on: Date,
    /// Why (published with the entry).
    pub reason: String,
}

/// A report passed between two provinces through the federation (issue 13.2). It never
/// carries the reporter: the name, the contact, the submission's fingerprint and the receipt
/// code stay in the province that received the report.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportMessage {
    /// The sending province.
    pub from: ProvinceCode,
    /// The province it is for.
    pub to: ProvinceCode,
    /// The report's id in the province that received it.
    pub origin_id: String,
    /// What it says.
    pub body: ReportMessageBody,
}

/// What a [`ReportMessage`] says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReportMessageBody {
    /// From the receiving province: a report about an institution of `to`, which handles it.
    Referral {
        /// The institution reported.
        institution: InstitutionId,
        /// What is reported.
        summary: String,
        /// True when the reporter gave no identity.
        anonymous: bool,
        /// Received on (in the receiving province).
        received_on: Date,
    },
    /// From the handling province: the report as it stands there (state, reply, case, reward),
    /// for the reporter who follows it where they reported it.
    Progress(medmesh_supervision::reports::Report),
}

/// An entry of the federation's shared log, copied into every province.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SharedItem {
    /// Points scored against personnel.
    Violation(medmesh_supervision::Violation),
    /// A joint-discipline entry.
    Discipline(DisciplineEntry),
    /// A decided and executed case, without personal identities (issue 11.6).
    CaseOutcome(medmesh_supervision::cases::CaseOutcome),
    /// A version of a national monitoring rule.
    Rule(medmesh_monitor::Rule),
    /// A case outcome's credit entry lifted on appeal by its deciding province (issue 13.3).
    CreditLift(medmesh_supervision::credit::Lift),
    /// A province's aggregate of a day or a month (issue 14.1). It goes from the province's
    /// outbox to the federation (which records it for the national view); it is never in the
    /// shared log.
    Aggregate(Box<crate::figures::Aggregate>),
    /// A joint-discipline entry lifted by its deciding province (issue 13.3).
    DisciplineLift(DisciplineLift),
    /// A report for another province (issue 13.2). It goes from the province's outbox to the
    /// federation, which keeps it in the addressed province's inbox; it is never in the shared
    /// log.
    ReportMessage(ReportMessage),
    /// A notification-commitment resolved (kept or breached) by its recording province
    /// (issue 13.3).
    Commitment(medmesh_supervision::credit::Commitment),
    /// An entry of the joint incentive list (守信联合激励, issue 13.3) recorded by a province.
    Incentive(medmesh_supervision::credit::Incentive),
    /// A reviewed monthly declaration with deductions (issue 13.3's credit input), a new
    /// version with each deduction withdrawn on contest.
    DeclarationReview(medmesh_supervision::credit::ReviewedDeclaration),
}

/// What a person looks like to a treatment province: no raw identity number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RemotePerson {
    /// Masked identity number.
    pub masked_id: String,
    /// Name (for the expense document).
    pub name: String,
    /// The insured province's handle of the person: the keyed hash its register is filed
    /// under, which the treatment province sends back in quotes and the reservation instead
    /// of the certificate number.
    pub handle: medmesh_types::KeyedHash,
}

/// A province's prepaid account for non-local care (先预付), held by the federation. Committed
/// non-local settlements of its insured consume it; top-ups replenish it. A balance below
/// `warning_below` raises a warning; care is never refused for it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrepaidAccount {
    /// Total of recorded top-ups.
    pub topped_up: Money,
    /// The balance under which a warning is raised.
    pub warning_below: Money,
}

/// A province's prepaid position now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrepaidView {
    /// Province.
    pub province: ProvinceCode,
    /// Total of top-ups.
    pub topped_up: Money,
    /// Committed non-local settlements of its insured in force (what the account has paid for).
    pub consumed: Money,
    /// `topped_up - consumed`; may be negative.
    pub balance: Money,
    /// The warning threshold.
    pub warning_below: Money,
    /// Whether the balance is below the threshold.
    pub warning: bool,
    /// Of `consumed`, paid to treatment provinces by settled clearing months.
    pub paid: Money,
    /// `consumed - paid`: what settled months have not paid yet.
    pub owed: Money,
    /// Paid to this province (as treatment province) by settled clearing months: the money
    /// behind what its fund owes its institutions for visitors' care, not a prepaid balance.
    pub received: Money,
    /// Upheld disputes' adjustments in this province's favour as treatment province (net):
    /// owed to it by clearing beyond what its own ledger records, held at the federation.
    pub adjusted: Money,
    /// Clearing months settled so far, over every pair (one more with each settlement):
    /// orders readings of `paid` and `received`, which a month of adjustment lines can lower.
    pub settled_months: u64,
}

impl PrepaidView {
    /// The command by which the account's province follows this reading of it.
    pub fn followed(&self) -> crate::ProvinceCommand {
        crate::ProvinceCommand::PrepaidSeen {
            topped_up: self.topped_up,
            settled_months: self.settled_months,
            received: self.received,
            paid: self.paid,
        }
    }
}

/// A statement's totals, with the lines of one page (none in the answer of a run, a
/// settlement or a confirmation: a month's lines are read a page at a time).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatementSummary {
    /// Debtor.
    pub insured: ProvinceCode,
    /// Creditor.
    pub treatment: ProvinceCode,
    /// Number of lines.
    pub line_count: u64,
    /// Sum of all the statement's lines, to the fen (adjustment lines are negative).
    pub total: Money,
    /// Sum of its confirmed lines.
    pub confirmed_total: Money,
    /// The lines of this page, by institution, serial and kind.
    pub lines: Vec<ClearingLine>,
}

/// What a clearing line stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum LineKind {
    /// A committed non-local settlement: the insured province owes its amount.
    Settlement,
    /// The reversal of a settlement whose line was in a month cleared already: an adjustment
    /// line of minus its amount (with any upheld dispute's adjustment) in the month open when
    /// the reversal was recorded.
    Reversal,
    /// An upheld dispute: an adjustment line of the amount claimed less the line's amount, in
    /// the month open when the dispute was upheld.
    Dispute,
}

impl LineKind {
    /// Every kind, in key order.
    pub const ALL: [LineKind; 3] = [LineKind::Dispute, LineKind::Reversal, LineKind::Settlement];

    /// The kind's part of a line's key.
    pub fn key(self) -> &'static str {
        match self {
            LineKind::Settlement => "s",
            LineKind::Reversal => "r",
            LineKind::Dispute => "d",
        }
    }

    /// The kind's name in the API.
    pub fn name(self) -> &'static str {
        match self {
            LineKind::Settlement => "SETTLEMENT",
            LineKind::Reversal => "REVERSAL",
            LineKind::Dispute => "DISPUTE",
        }
    }
}

/// An institution's dispute of a settlement line of a cleared month.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineDispute {
    /// What the institution says the line should be.
    pub claimed: Money,
    /// Why.
    pub reason: String,
    /// When it was raised (log time).
    pub raised_at: LogTime,
    /// The national administration's decision, once made.
    pub outcome: Option<DisputeOutcome>,
}

/// How a dispute was decided.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DisputeOutcome {
    /// Upheld (an adjustment line follows) or rejected.
    pub upheld: bool,
    /// The decision's note.
    pub note: String,
    /// When (log time).
    pub decided_at: LogTime,
}

/// One line of a clearing statement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClearingLine {
    /// The treating institution.
    pub institution: InstitutionId,
    /// Its settlement serial.
    pub serial: Serial,
    /// What the insured province owes for it; negative on an adjustment line.
    pub amount: Money,
    /// Settlement or adjustment.
    pub kind: LineKind,
    /// Confirmed by the institution (a confirmation can be rolled back).
    pub confirmed: bool,
    /// The institution's dispute of a settlement line, if raised.
    pub dispute: Option<LineDispute>,
}

/// The running totals of one month's statement of one province pair (kept as lines come and
/// go, so that neither a run nor a confirmation reads the lines).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatementTotals {
    /// Number of lines.
    pub lines: u64,
    /// Sum of the lines.
    pub total: Money,
    /// Sum of the confirmed lines.
    pub confirmed_total: Money,
}

/// Where a month's clearing stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum MonthStatus {
    /// Not yet cleared: lines still come (new settlements) and go (reversals).
    Open,
    /// Cleared after it ended: its lines are fixed; later reversals and decisions go into the
    /// month open then as adjustment lines.
    Cleared,
    /// Its net positions were paid between the provinces' prepaid accounts.
    Settled,
}

/// A month's clearing record.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClearingMonth {
    /// When it was cleared (log time).
    pub cleared_at: Option<LogTime>,
    /// When it was settled (log time).
    pub settled_at: Option<LogTime>,
}

impl ClearingMonth {
    /// Its status.
    pub fn status(&self) -> MonthStatus {
        match (self.cleared_at, self.settled_at) {
            (_, Some(_)) => MonthStatus::Settled,
            (Some(_), None) => MonthStatus::Cleared,
            _ => MonthStatus::Open,
        }
    }
}

/// A month's clearing: its status and every statement's totals (with one page of lines where
/// read a page at a time).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ClearingView {
    /// Month, `YYYY-MM`.
    pub month: String,
    /// Its record.
    pub record: ClearingMonth,
    /// Statements by insured then treatment province.
    pub statements: Vec<StatementSummary>,
}
