//! Records, commands and outcomes of a province.

use medmesh_settlement::{CatalogueItem, FeeLine, InsuranceType, Policy, Sex, Split};
use medmesh_types::{Date, InstitutionId, KeyedHash, LogTime, Money, PersonnelCode, Sealed, Serial};
use serde::{Deserialize, Serialize};

pub use crate::shared::{CertificateKind, VisitKind};

/// Whether a person's insurance is in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum InsuranceStatus {
    /// Contributions paid; benefits available.
    Active,
    /// Benefits suspended (for example unpaid contributions).
    Suspended,
    /// Insurance ended (moved away, deceased).
    Terminated,
}

/// An insured person of this province. No identity or certificate number is held in clear
/// (issue 10.6): the record is filed under the keyed hash of the identity number, the card
/// numbers are kept as keyed hashes (for the certificate index), and the identity number, name
/// and card numbers are sealed under the province's key at the node's edge
/// (`medmesh_seal::PersonSecrets`). Apply never sees a raw number.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Person {
    /// Keyed hash of the identity number: the record's key.
    pub key: KeyedHash,
    /// The masked identity number, for views (first three and last four characters).
    pub masked_id: String,
    /// Identity number, name and card numbers, sealed for `key`.
    pub sealed: Sealed,
    /// Sex.
    pub sex: Sex,
    /// Date of birth.
    pub birth_date: Date,
    /// Insurance type.
    pub insurance: InsuranceType,
    /// Insurance status.
    pub status: InsuranceStatus,
    /// Individual account balance.
    pub account_balance: Money,
    /// Keyed hash of the social-security card number, if issued.
    pub social_security_card: Option<KeyedHash>,
    /// Keyed hash of the medical-security e-credential token, if activated.
    pub e_credential: Option<KeyedHash>,
    /// Entitled to medical assistance (医疗救助) by the province's policy (identified by civil
    /// affairs); paid at settlements in this province.
    pub medical_assistance: bool,
}

/// Status of an institution's designated-service agreement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Institution {
    /// Institution code.
    pub id: InstitutionId,
    /// Name.
    pub name: String,
    /// Level: 1 primary, 2 secondary, 3 tertiary.
    pub level: u8,
    /// First day of the agreement.
    pub agreement_start: Date,
    /// Last day of the agreement.
    pub agreement_end: Date,
    /// Agreement suspended by the agency.
    pub suspended: bool,
}

impl Institution {
    /// Whether the agreement covers `day`.
    pub fn agreement_covers(&self, day: Date) -> bool {
        !self.suspended && self.agreement_start <= day && day <= self.agreement_end
    }
}

/// Payment-qualification status of medical personnel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum QualificationStatus {
    /// May bill the fund.
    Active,
    /// May not bill the fund until (exclusive) this date.
    SuspendedUntil(Date),
    /// Qualification terminated.
    Terminated,
}

/// Medical personnel registered with an institution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Personnel {
    /// National personnel code.
    pub code: PersonnelCode,
    /// Name.
    pub name: String,
    /// Institution where the person practises.
    pub institution: InstitutionId,
    /// Payment qualification.
    pub status: QualificationStatus,
}

impl Personnel {
    /// Whether the person may bill the fund on `day`.
    pub fn may_bill(&self, day: Date) -> bool {
        match self.status {
            QualificationStatus::Active => true,
            QualificationStatus::SuspendedUntil(until) => day >= until,
            QualificationStatus::Terminated => false,
        }
    }
}

/// A visit registered by an institution.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Visit {
    /// The institution.
    pub institution: InstitutionId,
    /// The institution's visit serial.
    pub serial: Serial,
    /// The patient: the keyed hash of the identity number (for a non-local patient, the
    /// insured province's handle).
    pub person: KeyedHash,
    /// The patient's masked identity number.
    pub masked_id: String,
    /// Outpatient or inpatient.
    pub kind: VisitKind,
    /// Billing (attending) doctor.
    pub doctor: PersonnelCode,
    /// Department.
    pub department: String,
    /// Diagnosis (ICD-10, national insurance version).
    pub diagnosis: String,
    /// Day of admission or of the outpatient visit.
    pub admitted: Date,
    /// Uploaded fee lines, in upload order.
    pub lines: Vec<FeeLine>,
    /// The settlement serial, while settled.
    pub settled_by: Option<Serial>,
    /// For a patient insured in another province: the link to that province.
    pub nonlocal: Option<crate::shared::NonLocalVisit>,
}

/// Status of a settlement.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum SettlementStatus {
    /// In force.
    Settled,
    /// A non-local settlement whose reversal (by the given serial) is under way.
    Reversing {
        /// The reversal's serial.
        by: Serial,
    },
    /// Reversed by the given serial.
    Reversed {
        /// The reversal's serial.
        by: Serial,
        /// When.
        at: LogTime,
    },
}

/// A settlement: immutable evidence of what was paid, and the expense document's content.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Settlement {
    /// The institution.
    pub institution: InstitutionId,
    /// The settlement serial.
    pub serial: Serial,
    /// The visit serial.
    pub visit: Serial,
    /// The person: keyed hash of the identity number (for a non-local patient, the insured
    /// province's handle).
    pub person: KeyedHash,
    /// The person's identity fields sealed for `person` under this province's key (the name
    /// is shown on the expense document).
    pub person_sealed: Sealed,
    /// Visit kind.
    pub kind: VisitKind,
    /// Billing doctor.
    pub doctor: PersonnelCode,
    /// Diagnosis.
    pub diagnosis: String,
    /// Time of settlement (from the log entry).
    pub settled_at: LogTime,
    /// Day of settlement.
    pub settled_on: Date,
    /// Accumulator year the settlement counted in.
    pub year: i32,
    /// The split.
    pub split: Split,
    /// Status.
    pub status: SettlementStatus,
    /// For a non-local settlement: the insured province, which computed the split with its
    /// policy and pays the fund share and the account part.
    pub insured: Option<medmesh_types::ProvinceCode>,
    /// The masked identity number (for a non-local settlement, as the insured province gave
    /// it: the treatment province never holds the raw number).
    pub masked_id: String,
}

/// A fund of the province that receives income ([`ProvinceCommand::Contribute`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum Fund {
    /// The pooling fund (basic medical insurance).
    #[default]
    Pooling,
    /// The medical-assistance fund (医疗救助; civil affairs and finance fund it).
    MedicalAssistance,
}

/// The province's pooling-fund ledger.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FundLedger {
    /// Contributions received (income).
    pub contributions: Money,
    /// Paid by the pooling fund (net of reversals).
    pub pooling_paid: Money,
    /// Paid by the critical-illness tier (net of reversals).
    pub critical_illness_paid: Money,
    /// Paid from individual accounts (net of reversals).
    pub accounts_paid: Money,
    /// Settlements in force.
    pub settlements: u64,
    /// Settlements reversed.
    pub reversals: u64,
    /// Fund share of non-local settlements of this province's insured, held by the pool while
    /// the federation decides (given back on post or void: the prepaid account pays).
    pub nonlocal_reserved: Money,
    /// Memo: fund share of non-local care of this province's insured in force, paid from its
    /// prepaid account at the federation (not from the pool).
    pub nonlocal_paid: Money,
    /// Individual-account parts of non-local settlements in force, taken from the persons'
    /// accounts into the pool (the prepaid account paid the treatment province for them).
    pub nonlocal_accounts_in: Money,
    /// Non-local settlements of this province's insured, posted.
    pub nonlocal_settlements: u64,
    /// As insured province: owed to treatment provinces for posted non-local settlements (fund
    /// share plus individual account part), before clearing.
    pub nonlocal_owed: Money,
    /// As treatment province: owed by insured provinces for non-local settlements in force
    /// here (included in the payables to institutions).
    pub nonlocal_receivable: Money,
    /// As treatment province: non-local settlements in force here.
    pub nonlocal_treated: u64,
    /// Recovered from institutions by executed case decisions, back in the pool (taken off
    /// what the fund owed them).
    pub recovered: Money,
    /// Recoveries decided but not yet taken back: institutions owe these to the fund; they are
    /// offset against the institutions' next settlements.
    pub recovery_due: Money,
    /// Memo: fines imposed by executed case decisions (owed to the treasury, not the fund).
    pub fines_imposed: Money,
    /// Deducted from institutions' declarations in review (拒付), back in the pool.
    pub deducted: Money,
    /// Paid to institutions against their approved declarations (left the fund).
    pub institution_payments: Money,
    /// Prepaid to institutions (2024 notice; left the fund).
    pub prepaid_out: Money,
    /// Prepayments settled by offset against monthly payments (the payable they stood for is
    /// back in the pool).
    pub prepaid_offset: Money,
    /// Prepayments repaid by institutions (back in the pool).
    pub prepaid_repaid: Money,
    /// Institutions' share of budget overspends withheld at year end (back in the pool).
    pub budget_withheld: Money,
    /// Memo: credited to employees' individual accounts (their own money, outside the pool).
    pub accounts_credited: Money,
    /// As insured province: top-ups of this province's prepaid account for non-local care at
    /// the federation, as this province last saw them there (left the pool: the prepaid
    /// account pays this province's insured's non-local care, so the balance includes that
    /// spending through them). The federation's account is the record; the province follows
    /// it ([`ProvinceCommand::PrepaidSeen`]).
    pub prepaid_topped_up: Money,
    /// Memo, as treatment province: paid to this province by settled clearing months, as it
    /// last saw the federation's account (the money behind `nonlocal_receivable`, which the
    /// fund owes its institutions for visitors' care).
    pub clearing_received: Money,
    /// Memo, as insured province: paid from its prepaid account to treatment provinces by
    /// settled clearing months, as last seen.
    pub clearing_paid: Money,
    /// The federation's count of settled months at the reading `clearing_received` and
    /// `clearing_paid` come from (a later reading has a higher count).
    pub clearing_months_seen: u64,
    /// Income to the medical-assistance fund (its own fund, outside the pool).
    pub assistance_funded: Money,
    /// Paid by medical assistance (net of reversals; owed to institutions like the pool's
    /// payments).
    pub assistance_paid: Money,
    /// Rewards paid to reporters from the pooling fund (issue 13.2).
    pub rewards_paid: Money,
}

impl FundLedger {
    /// Pooling balance: contributions and non-local account parts received, less what the
    /// fund paid, what it holds for pending non-local care and what it put into its prepaid
    /// account for non-local care.
    pub fn balance(&self) -> Money {
        self.contributions
            + self.nonlocal_accounts_in
            + self.recovered
            + self.deducted
            + self.prepaid_offset
            + self.prepaid_repaid
            + self.budget_withheld
            - self.pooling_paid
            - self.critical_illness_paid
            - self.nonlocal_reserved
            - self.prepaid_out
            - self.prepaid_topped_up
            - self.rewards_paid
    }

    /// What the pool may hold for pending non-local care: its balance with what it moved into
    /// its prepaid account, which pays on commit (so a top-up never refuses care).
    pub fn for_holds(&self) -> Money {
        self.balance() + self.prepaid_topped_up
    }

    /// As insured province: the prepaid account's balance by this ledger — the top-ups it
    /// followed less the non-local care of its insured in force, which the account paid (fund
    /// share plus account part). Negative when that care outran the top-ups. The federation's
    /// account is the record; it differs from this by upheld clearing disputes' adjustments.
    pub fn prepaid_balance(&self) -> Money {
        self.prepaid_topped_up - self.nonlocal_owed
    }

    /// What the pool and its prepaid account hold between them: the figure the fund's risk
    /// level and the prepayment condition measure. A top-up only moves money from the pool to
    /// the account, so it leaves this unchanged; non-local care of the province's insured
    /// lowers it like local care.
    pub fn with_prepaid(&self) -> Money {
        self.balance() + self.prepaid_balance()
    }

    /// The medical-assistance fund's balance: its income less what it paid.
    pub fn assistance_balance(&self) -> Money {
        self.assistance_funded - self.assistance_paid
    }

    /// Prepayments to institutions not yet offset or repaid.
    pub fn prepayments_outstanding(&self) -> Money {
        self.prepaid_out - self.prepaid_offset - self.prepaid_repaid
    }

    /// What left the fund to institutions: payments, and prepayments not repaid.
    pub fn paid_out(&self) -> Money {
        self.institution_payments + self.prepaid_out - self.prepaid_repaid
    }

    /// What the fund owes institutions by this ledger: every payment in force through
    /// institutions (pooling, critical illness, individual accounts) and what insured
    /// provinces owe for non-local care treated here, and medical assistance. The payables to institutions always add
    /// up to this; apply checks it on every command ([`crate::apply_command`]). Recoveries are
    /// taken off it, and so are deductions and what was paid (in money or from a prepayment).
    pub fn owed_to_institutions(&self) -> Money {
        self.pooling_paid
            + self.critical_illness_paid
            + self.assistance_paid
            + self.accounts_paid
            + self.nonlocal_receivable
            - self.recovered
            - self.deducted
            - self.institution_payments
            - self.prepaid_offset
            - self.budget_withheld
    }
}

/// Money conserved across the mesh, to the fen: pools, pending non-local holds, prepaid
/// balances and institution payables together (`held`), with what was paid out to
/// institutions and reporters (`paid_out`: payments, prepayments not repaid, rewards), change
/// only by what came in
/// from outside — contributions and individual-account payments (`came_in`). A top-up moves
/// money from a pool into its prepaid account; one the province has not followed yet counts as
/// come in (in flight). Each argument is summed over every province (prepaid over every
/// account). Holds between the steps of a transfer are in flight; it is exact once every
/// transfer is resolved.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MoneyTotals {
    /// Σ pool balances + Σ pending holds + Σ prepaid balances + Σ payables.
    pub held: Money,
    /// Σ contributions + Σ account payments (local and non-local) + Σ top-ups not yet
    /// followed by their province.
    pub came_in: Money,
    /// Σ paid to institutions and prepaid to them, less prepayments repaid, and Σ rewards paid
    /// to reporters.
    pub paid_out: Money,
}

impl MoneyTotals {
    /// Adds one province's ledger and payables. Top-ups come out of the province's pool: only
    /// those the province has not seen yet (in flight, see [`ProvinceCommand::PrepaidSeen`])
    /// count as money from outside, so they are taken off what [`MoneyTotals::add_prepaid`]
    /// counts in once the province has them.
    pub fn add_province(&mut self, f: &FundLedger, payables: Money) {
        self.held += f.balance() + f.assistance_balance() + f.nonlocal_reserved + payables;
        self.came_in +=
            f.contributions + f.assistance_funded + f.accounts_paid + f.nonlocal_accounts_in - f.prepaid_topped_up;
        // Rewards to reporters leave the pool like payments to institutions.
        self.paid_out += f.paid_out() + f.rewards_paid;
    }

    /// Adds the prepaid accounts.
    pub fn add_prepaid(&mut self, accounts: &[crate::shared::PrepaidView]) {
        for a in accounts {
            // An upheld dispute's adjustment leaves the insured province's balance for the
            // treatment province's claim at the federation.
            self.held += a.balance + a.adjusted;
            self.came_in += a.topped_up;
        }
    }

    /// The invariant.
    pub fn conserved(&self) -> Result<(), String> {
        if self.held + self.paid_out == self.came_in {
            Ok(())
        } else {
            Err(format!("money held {} and paid out {} but {} came in", self.held, self.paid_out, self.came_in))
        }
    }
}

/// What the fund owes one institution.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payable {
    /// Fund share of the institution's settlements in force, less what cases recovered.
    pub amount: Money,
    /// Recovered by cases but not yet taken back (more than was owed when executed): taken off
    /// the institution's next settlements.
    pub recovery_due: Money,
}

impl Payable {
    /// Takes `amount` off what is owed as far as it goes; the rest becomes due from the
    /// institution (taken off its next settlements by [`Payable::offset_recovery`]). Answers
    /// what was taken off the amount owed (the caller books it, and the rest as
    /// [`FundLedger::recovery_due`]).
    pub fn withhold(&mut self, amount: Money) -> Money {
        let taken = amount.min(self.amount.max(Money::ZERO));
        self.amount -= taken;
        self.recovery_due += amount - taken;
        taken
    }

    /// Takes what is due from recoveries off the amount owed, as far as it goes; answers what
    /// was taken (the caller adds it to [`FundLedger::recovered`] and takes it off
    /// [`FundLedger::recovery_due`]).
    pub fn offset_recovery(&mut self) -> Money {
        let taken = self.recovery_due.min(self.amount).max(Money::ZERO);
        self.amount -= taken;
        self.recovery_due -= taken;
        taken
    }
}

/// An institution's agreement held by a case decision: no settlement from `from` through
/// `until` (for good when `until` is `None`: the agreement was ended).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AgreementHold {
    /// The deciding case.
    pub case_id: String,
    /// First day.
    pub from: Date,
    /// Last day, or `None` when the agreement was ended.
    pub until: Option<Date>,
}

impl AgreementHold {
    /// Whether the hold is in force on `day`.
    pub fn holds(&self, day: Date) -> bool {
        self.from <= day && self.until.is_none_or(|u| day <= u)
    }
}

/// A step of a case (issue 11.6): the state machine is [`medmesh_supervision::cases`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CaseCommand {
    /// Opens a case about settlements of one institution; the same opening again answers the
    /// case.
    Open {
        /// The agency's case id.
        id: String,
        /// This province (stamped by the edge: a case is shared under it).
        province: medmesh_types::ProvinceCode,
        /// What opened it (an alert is accepted by it).
        source: medmesh_supervision::cases::CaseSource,
        /// The institution.
        institution: InstitutionId,
        /// Its settlements the case is about (empty for an alert: the alert's settlement).
        settlements: Vec<Serial>,
    },
    /// Records a finding.
    Investigate {
        /// The case.
        id: String,
        /// What was found.
        finding: String,
    },
    /// Decides the penalty.
    Decide {
        /// The case.
        id: String,
        /// The decision.
        decision: medmesh_supervision::cases::DecisionInput,
    },
    /// Executes the decision, once.
    Execute {
        /// The case.
        id: String,
    },
    /// Closes the case.
    Close {
        /// The case.
        id: String,
        /// Why (required when nothing was decided).
        reason: String,
    },
    /// Replaces the province's case policy (fine multiples, deadline).
    PutPolicy(medmesh_supervision::cases::CasePolicy),
    /// Lifts an executed case's credit entry on appeal (credit repair), shared like its outcome.
    LiftCredit {
        /// The case.
        id: String,
        /// Why (published with the rating).
        reason: String,
    },
}

impl CaseCommand {
    /// The case id, for the steps of one case.
    pub fn id(&self) -> Option<&str> {
        match self {
            CaseCommand::Open { id, .. }
            | CaseCommand::Investigate { id, .. }
            | CaseCommand::Decide { id, .. }
            | CaseCommand::Execute { id }
            | CaseCommand::Close { id, .. }
            | CaseCommand::LiftCredit { id, .. } => Some(id),
            CaseCommand::PutPolicy(_) => None,
        }
    }
}

/// A step of paying an institution (issue 12): the monthly cycle of
/// [`medmesh_payment::cycle`] and prepayment ([`medmesh_payment::prepay`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum PaymentCommand {
    /// The institution declares a month that is over; idempotent on its serial.
    Declare {
        /// The institution.
        institution: InstitutionId,
        /// The institution's declaration serial.
        serial: Serial,
        /// The month.
        period: medmesh_payment::Period,
    },
    /// The agency reviews a declaration, once, deducting lines.
    Review {
        /// The institution.
        institution: InstitutionId,
        /// The month.
        period: medmesh_payment::Period,
        /// The deductions.
        deductions: Vec<medmesh_payment::DeductionInput>,
        /// The reviewer's note.
        note: String,
        /// This province (the reviewed month is shared as a credit input under its code).
        province: medmesh_types::ProvinceCode,
    },
    /// The institution contests a deducted line, once.
    Contest {
        /// The institution.
        institution: InstitutionId,
        /// The month.
        period: medmesh_payment::Period,
        /// The deducted settlement.
        settlement: Serial,
        /// Why.
        reason: String,
    },
    /// The agency answers a contest.
    Resolve {
        /// The institution.
        institution: InstitutionId,
        /// The month.
        period: medmesh_payment::Period,
        /// The contested settlement.
        settlement: Serial,
        /// Accept (the deduction is withdrawn) or reject.
        accept: bool,
        /// Why.
        reason: String,
        /// This province.
        province: medmesh_types::ProvinceCode,
    },
    /// The agency pays an approved month; idempotent on the payment reference.
    Pay {
        /// The institution.
        institution: InstitutionId,
        /// The month.
        period: medmesh_payment::Period,
        /// The payment's reference (bank transfer number).
        reference: Serial,
        /// Paid in money.
        amount: Money,
        /// Settled from the institution's outstanding prepayments.
        offset: Money,
    },
    /// Replaces the province's prepayment policy.
    PutPolicy(medmesh_payment::PrepaymentPolicy),
    /// The agency grants a prepayment if the 2024 notice's conditions hold; idempotent on the
    /// reference.
    Prepay {
        /// The institution.
        institution: InstitutionId,
        /// The prepayment's reference.
        reference: Serial,
        /// General or central procurement.
        kind: medmesh_payment::PrepaymentKind,
        /// The agreed annual procurement amount (central procurement only; zero otherwise).
        procurement: Money,
    },
    /// The institution repaid (part of) a prepayment in money; idempotent on the receipt.
    Repay {
        /// The institution.
        institution: InstitutionId,
        /// The prepayment.
        reference: Serial,
        /// The receipt of the repayment.
        receipt: Serial,
        /// Repaid.
        amount: Money,
    },
    /// Sets (or revises, while its year runs) an institution's annual budget.
    PutBudget {
        /// The institution (registered here).
        institution: InstitutionId,
        /// The year.
        year: i32,
        /// What was agreed.
        terms: medmesh_payment::BudgetTerms,
    },
    /// Closes a budget year once it is over: the institution's share of an overspend is
    /// withheld from what the fund owes it.
    CloseBudgetYear {
        /// The institution.
        institution: InstitutionId,
        /// The year.
        year: i32,
    },
    /// A prepayment cannot be recovered: payments to the institution stop and the case is
    /// marked for judicial proceedings.
    WriteOff {
        /// The institution.
        institution: InstitutionId,
        /// The prepayment.
        reference: Serial,
        /// The case handed to the courts.
        case_id: String,
        /// Why.
        reason: String,
    },
}

impl PaymentCommand {
    /// The institution the step is about (`None` for the policy).
    pub fn institution(&self) -> Option<&InstitutionId> {
        match self {
            PaymentCommand::Declare { institution, .. }
            | PaymentCommand::Review { institution, .. }
            | PaymentCommand::Contest { institution, .. }
            | PaymentCommand::Resolve { institution, .. }
            | PaymentCommand::Pay { institution, .. }
            | PaymentCommand::Prepay { institution, .. }
            | PaymentCommand::Repay { institution, .. }
            | PaymentCommand::WriteOff { institution, .. }
            | PaymentCommand::PutBudget { institution, .. }
            | PaymentCommand::CloseBudgetYear { institution, .. } => Some(institution),
            PaymentCommand::PutPolicy(_) => None,
        }
    }
}

/// A payment to an institution against a declaration.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaymentRecord {
    /// The institution.
    pub institution: InstitutionId,
    /// The month paid.
    pub period: medmesh_payment::Period,
    /// The reference.
    pub reference: Serial,
    /// Paid in money.
    pub amount: Money,
    /// Settled from prepayments.
    pub offset: Money,
    /// When.
    pub at: LogTime,
}

/// A prepayment that cannot be recovered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WrittenOff {
    /// The case handed to the courts.
    pub case_id: String,
    /// Why.
    pub reason: String,
    /// When.
    pub at: LogTime,
}

/// What the prepayment is for (2024 notice): nothing else may be named.
pub const PREPAYMENT_PURPOSE: &str = "procurement of drugs and medical consumables";

/// A prepayment to an institution, written into its agreement record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Prepayment {
    /// The institution.
    pub institution: InstitutionId,
    /// The reference.
    pub reference: Serial,
    /// General or central procurement.
    pub kind: medmesh_payment::PrepaymentKind,
    /// How it was sized.
    pub sizing: medmesh_payment::Sizing,
    /// Granted.
    pub amount: Money,
    /// When.
    pub granted_at: LogTime,
    /// Settled by offset against monthly payments.
    pub offset: Money,
    /// Repaid in money.
    pub repaid: Money,
    /// Marked unrecoverable.
    pub written_off: Option<WrittenOff>,
}

impl Prepayment {
    /// Not yet offset or repaid.
    pub fn remaining(&self) -> Money {
        self.amount - self.offset - self.repaid
    }
}

/// An institution's prepayments in force and whether payments to it are stopped.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PrepaymentAccount {
    /// References of the prepayments with something remaining, oldest first.
    pub open: Vec<Serial>,
    /// Remaining on them together.
    pub outstanding: Money,
    /// Payments stopped: why (an unrecoverable prepayment).
    pub stopped: Option<String>,
}

/// Most persons credited by one command.
pub const MAX_CREDITS: usize = 1_000;

/// One person's individual-account credit ([`crate::accounts`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccountCredit {
    /// Certificate kind.
    pub certificate_kind: CertificateKind,
    /// Keyed hash of the certificate number (computed at the edge).
    pub certificate: KeyedHash,
    /// Amount credited.
    pub amount: Money,
}

/// A province group's command: one client request, applied atomically (all or nothing).
///
/// Commands are stored in the Raft log with bincode (inside [`crate::Command`]), which encodes
/// a variant by its index: a change to this enum, or to any record stored in the state, must
/// bump `medmesh_storage::FORMAT_VERSION`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ProvinceCommand {
    /// Registers or updates an insured person. On update the individual account balance is
    /// kept (it moves only with settlements and account credits).
    PutPerson(Person),
    /// Registers or updates an institution.
    PutInstitution(Institution),
    /// Registers or updates personnel.
    PutPersonnel(Personnel),
    /// Adds or replaces a catalogue entry.
    PutCatalogueItem(CatalogueItem),
    /// Replaces the province's policy.
    PutPolicy(Policy),
    /// Records income to the pooling fund or the medical-assistance fund; idempotent on the
    /// agency's serial.
    Contribute {
        /// The agency's serial.
        serial: Serial,
        /// Amount received.
        amount: Money,
        /// Free-text source (payroll month, subsidy).
        source: String,
        /// The fund it goes to.
        fund: Fund,
    },
    /// Records a version of one of this province's monitoring rules (issue 11): a new rule
    /// at version 1, a changed one at the next version; its condition must compile.
    PutRule(medmesh_monitor::Rule),
    /// Records (or replaces) a knowledge-base entry the monitoring rules read.
    PutKnowledge(medmesh_monitor::Knowledge),
    /// A reviewer accepts an open alert (it becomes the ground of a case) or dismisses it with
    /// a reason. An alert is reviewed once; the same review again changes nothing.
    ReviewAlert {
        /// The alert's sequence number.
        seq: u64,
        /// Accept (else dismiss).
        accept: bool,
        /// Why: required to dismiss, a note when accepting.
        reason: String,
    },
    /// Records a violation scored against personnel (points under the 2025 regulation, decided
    /// by this or another province); recording the same id again changes nothing.
    RecordViolation(medmesh_supervision::Violation),
    /// Registers a visit; idempotent on (institution, serial).
    RegisterVisit {
        /// The institution.
        institution: InstitutionId,
        /// The visit serial.
        serial: Serial,
        /// Certificate kind.
        certificate_kind: CertificateKind,
        /// Keyed hash of the certificate number under this province's key (computed at the
        /// edge: the number itself never enters the log).
        certificate: KeyedHash,
        /// Outpatient or inpatient.
        kind: VisitKind,
        /// Billing doctor.
        doctor: PersonnelCode,
        /// Department.
        department: String,
        /// Diagnosis code.
        diagnosis: String,
        /// Admission (or visit) day.
        admitted: Date,
    },
    /// Uploads fee lines to an open visit; a line serial already uploaded with the same content
    /// is accepted again, with different content it is rejected.
    UploadFees {
        /// The institution.
        institution: InstitutionId,
        /// The visit serial.
        visit: Serial,
        /// The lines.
        lines: Vec<FeeLine>,
    },
    /// Settles a visit; idempotent on (institution, serial).
    Settle {
        /// The institution.
        institution: InstitutionId,
        /// The settlement serial.
        serial: Serial,
        /// The visit serial.
        visit: Serial,
        /// Pay the person's share from the individual account.
        use_individual_account: bool,
    },
    /// Reverses a settlement; idempotent on (institution, serial).
    Reverse {
        /// The institution.
        institution: InstitutionId,
        /// The reversal serial.
        serial: Serial,
        /// The settlement to reverse.
        settlement: Serial,
    },
    /// Treatment province: registers a visit of a person insured in another province. The
    /// idempotency record is that of `request`, the hospital's [`ProvinceCommand::RegisterVisit`], so
    /// a retry of the hospital's request finds it.
    RegisterNonLocalVisit {
        /// The hospital's request (a [`ProvinceCommand::RegisterVisit`]).
        request: Box<ProvinceCommand>,
        /// The link to the insured province.
        nonlocal: crate::shared::NonLocalVisit,
    },
    /// Insured province, phase 1: settles the claim with this province's policy and holds the
    /// result against the fund, the person's accumulators and account. Idempotent on the
    /// transfer.
    Reserve {
        /// The transfer.
        transfer: crate::shared::TransferId,
        /// The person: this (the insured) province's handle, as its `RemotePerson` answer gave
        /// it.
        handle: KeyedHash,
        /// Directory key of the certificate the person presented (the filing check runs on
        /// it, and the insured province checks it is the person's).
        person_key: String,
        /// The claim.
        claim: crate::shared::RemoteClaim,
    },
    /// Insured province, phase 2: posts or voids a reservation by the federation's decision.
    ResolveReservation {
        /// The transfer.
        transfer: crate::shared::TransferId,
        /// The recorded decision.
        decision: crate::shared::Decision,
    },
    /// Treatment province: records the insured province's reservation of a transfer.
    TransferReserved {
        /// The transfer.
        transfer: crate::shared::TransferId,
        /// The split the insured province reserved.
        split: Split,
    },
    /// Treatment province: applies the federation's decision; on commit the settlement is
    /// stored, on abort the serial is spent with the reason.
    FinishTransfer {
        /// The transfer.
        transfer: crate::shared::TransferId,
        /// The recorded decision.
        decision: crate::shared::Decision,
        /// Why it was aborted.
        reason: String,
        /// On commit, the insured province's split, if not recorded by
        /// [`ProvinceCommand::TransferReserved`] before.
        split: Option<Split>,
    },
    /// Treatment province: records the filing found for a non-local inpatient who filed after
    /// admission (before discharge).
    AttachFiling {
        /// The institution.
        institution: InstitutionId,
        /// The visit serial.
        visit: Serial,
        /// The filing's kind.
        filing: crate::shared::FilingKind,
    },
    /// Insured province: gives back a posted reservation whose settlement the treatment
    /// province reversed. Idempotent on the transfer.
    UnpostReservation {
        /// The transfer.
        transfer: crate::shared::TransferId,
    },
    /// Treatment province: completes the reversal of a non-local settlement once the
    /// federation and the insured province recorded it.
    FinishReversal {
        /// The institution.
        institution: InstitutionId,
        /// The reversal's serial.
        serial: Serial,
    },
    /// Province: copies the federation's shared log (violations, joint-discipline entries)
    /// from the cursor on.
    SyncShared {
        /// `(sequence, item)` in sequence order.
        items: Vec<(u64, crate::shared::SharedItem)>,
    },
    /// Province: records a joint-discipline entry here at once (it is also in the shared log).
    RecordDiscipline(crate::shared::DisciplineEntry),
    /// A step of a case (issue 11.6).
    Case(CaseCommand),
    /// A post-payment scan step: runs one recorded rule over the period's local settlements,
    /// at most `limit` (1 to 1,000) settlements after `after`.
    ScanRule {
        /// The rule.
        rule_id: String,
        /// First settlement day.
        from: Date,
        /// Last settlement day.
        to: Date,
        /// Where to resume (the `next` of the step before; empty to start).
        after: String,
        /// Most settlements read.
        limit: u32,
    },
    /// Province: the outbox items through `through` reached the federation's shared log.
    Published {
        /// Sequence of the last published item.
        through: u64,
    },
    /// A step of paying an institution (issue 12).
    Payment(PaymentCommand),
    /// Credits a month's account parts to employees' individual accounts; idempotent on the
    /// agency's serial (issue 12.5, [`crate::accounts`]).
    CreditAccounts {
        /// The agency's serial.
        serial: Serial,
        /// The month credited.
        period: medmesh_payment::Period,
        /// The credits, at most [`MAX_CREDITS`].
        credits: Vec<AccountCredit>,
    },
    /// Province: this province's prepaid account as the federation records it — the total of
    /// top-ups, and what settled clearing months paid from it and to the province
    /// ([`crate::accounts::prepaid_seen`]). Proposed by the province's own leader after reading
    /// the federation; the total of top-ups and the count of settled months only grow there,
    /// so an older reading (a deposed leader's, a retry's) changes nothing.
    PrepaidSeen {
        /// The federation's total of top-ups for this province.
        topped_up: Money,
        /// The federation's count of settled clearing months at the reading.
        settled_months: u64,
        /// Paid to this province by settled months (treatment province).
        received: Money,
        /// Paid from its prepaid account by settled months (insured province).
        paid: Money,
    },
    /// Province: an inspection plan or its draw (issue 13.1).
    Inspection(InspectionCommand),
    /// Province: a step of a report (whistleblowing, issue 13.2).
    Report(ReportCommand),
    /// Province: publishes the aggregate of a day or a month to the federation, as it stands
    /// (issue 14.1, [`crate::aggregate`]); figures equal to the last publication are not sent
    /// again.
    PublishAggregate {
        /// The period.
        period: crate::figures::AggPeriod,
    },
    /// Uploads fee lines and settles the visit in one command (`SettleRequest.lines`, issue
    /// 15): the same as [`ProvinceCommand::UploadFees`] then [`ProvinceCommand::Settle`], both
    /// or neither. Idempotent on (institution, serial): once the serial is answered (settled,
    /// or a non-local transfer opened), the lines are not uploaded again and the answer is the
    /// settlement's.
    SettleWithLines {
        /// The institution.
        institution: InstitutionId,
        /// The settlement serial.
        serial: Serial,
        /// The visit serial.
        visit: Serial,
        /// Pay the person's share from the individual account.
        use_individual_account: bool,
        /// The lines to upload first.
        lines: Vec<FeeLine>,
    },
    /// Province: lifts one of its own joint-discipline entries from today (issue 13.3); shared
    /// through the federation from the outbox. `province` is this province (the node's).
    LiftDiscipline {
        /// This province: only the entry's deciding province lifts it.
        province: medmesh_types::ProvinceCode,
        /// The entry's subject.
        subject: crate::shared::DisciplineSubject,
        /// The entry's id.
        id: String,
        /// Why.
        reason: String,
    },
    /// Province: takes the reports the federation holds for this province (issue 13.2): reports
    /// other provinces received about its institutions, and the progress of reports it received
    /// about theirs. `province` is this province (the node's); every item must be for it.
    ReceiveReports {
        /// This province.
        province: medmesh_types::ProvinceCode,
        /// `(sequence, message)` from this province's inbox at the federation, in order.
        items: Vec<(u64, crate::shared::ReportMessage)>,
    },
    /// Province: records a notification-commitment (issue 13.3) of one of its institutions or
    /// personnel, or of an enterprise, to be verified by a day; idempotent on the id with the
    /// same content.
    RecordCommitment {
        /// This province.
        province: medmesh_types::ProvinceCode,
        /// Who committed (this province's institution or personnel, or an enterprise).
        party: medmesh_supervision::credit::Party,
        /// The commitment's id.
        id: String,
        /// What the institution committed to.
        text: String,
        /// To be verified by.
        verify_by: Date,
    },
    /// Province: resolves one of its commitments as kept or breached (with a finding), once;
    /// shared through the federation from the outbox.
    ResolveCommitment {
        /// This province.
        province: medmesh_types::ProvinceCode,
        /// Who committed.
        party: medmesh_supervision::credit::Party,
        /// The commitment's id.
        id: String,
        /// Kept (true) or breached.
        kept: bool,
        /// What verification found (required for a breach).
        finding: String,
    },
    /// Province: lists a party graded A on the joint incentive list (issue 13.3); shared
    /// through the federation from the outbox.
    RecordIncentive(medmesh_supervision::credit::Incentive),
}

/// A report command (issue 13.2, [`crate::reports`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum ReportCommand {
    /// Sets the province's reward and deadline rules.
    PutPolicy(medmesh_supervision::reports::ReportPolicy),
    /// A report received through a channel; idempotent on `serial` with the same fingerprint.
    Submit {
        /// The channel's serial.
        serial: String,
        /// Keyed hash of everything submitted, reporter included (the edge's).
        fingerprint: KeyedHash,
        /// Keyed hash of the receipt code the reporter was given.
        receipt: KeyedHash,
        /// The institution reported.
        institution: InstitutionId,
        /// What is reported.
        summary: String,
        /// The reporter's name and contact, sealed; `None` when anonymous.
        reporter: Option<Sealed>,
        /// Set (by the edge) when the institution is another province's: the report is kept
        /// here, with its reporter, and referred there through the federation.
        route: Option<ReportRoute>,
    },
    /// Accepts or rejects a received report.
    Acknowledge {
        /// The report.
        id: String,
        /// Accept (true) or reject.
        accept: bool,
        /// The note to the reporter (required to reject).
        note: String,
    },
    /// Concludes an accepted report with the outcome for the reporter.
    Conclude {
        /// The report.
        id: String,
        /// The outcome, for the reporter.
        reply: String,
    },
    /// Pays the reporter's reward on the executed recovery of the case the report opened.
    PayReward {
        /// The report.
        id: String,
        /// The payment's reference.
        reference: String,
    },
    /// A report officer reads the sealed reporter: recorded, then opened at the edge.
    Unseal {
        /// The report.
        id: String,
        /// The officer's identity (from the caller's certificate).
        officer: String,
    },
}

/// One read of a sealed reporter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReporterRead {
    /// When (the group's time).
    pub at: LogTime,
    /// Who read it.
    pub officer: String,
}

/// A report as stored: the report, its fingerprint and its sealed reporter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportRecord {
    /// The report.
    pub report: medmesh_supervision::reports::Report,
    /// Keyed hash of the submission (the associated data of the sealed reporter).
    pub fingerprint: KeyedHash,
    /// The reporter's name and contact, sealed; `None` when anonymous.
    pub reporter: Option<Sealed>,
    /// Reads of the reporter so far.
    pub read_count: u64,
    /// The latest reads (at most [`crate::reports::MAX_READS_KEPT`]).
    pub reads: Vec<ReporterRead>,
    /// Received here about another province's institution: that province handles it, and
    /// its progress is copied here for the reporter.
    pub handled_by: Option<medmesh_types::ProvinceCode>,
    /// Referred here by the province that received it (which keeps the reporter).
    pub referred: Option<Referred>,
}

/// Where a report received here about another province's institution goes (issue 13.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportRoute {
    /// This province, which keeps the reporter.
    pub here: medmesh_types::ProvinceCode,
    /// The institution's province, which handles the report.
    pub to: medmesh_types::ProvinceCode,
}

/// Where a report handled here came from (issue 13.2).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Referred {
    /// The province that received it, and keeps the reporter.
    pub by: medmesh_types::ProvinceCode,
    /// Its id there.
    pub origin_id: String,
    /// This province (the one the referral was addressed to).
    pub here: medmesh_types::ProvinceCode,
}

/// An inspection command of a province's agency.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum InspectionCommand {
    /// Records a plan with the commitment to its nonce; a plan is never changed afterwards.
    PutPlan {
        /// The plan.
        plan: medmesh_inspection::Plan,
        /// Its title, published with it.
        title: String,
    },
    /// Draws a plan: reveals the nonce; recorded once.
    Draw {
        /// The plan's id.
        plan: String,
        /// The nonce whose SHA-256 the plan committed to.
        nonce: [u8; 32],
    },
    /// Records the finding of one drawn target, once: clean, or the case it opened.
    Finding {
        /// The plan's id.
        plan: String,
        /// The drawn target.
        target: String,
        /// The case the inspection opened about the target (its source this inspection).
        case: Option<String>,
        /// What was found, published with the result (no personal data).
        summary: String,
    },
    /// Records the province's working-day calendar (flight inspection deadlines).
    PutCalendar(medmesh_supervision::flights::WorkCalendar),
    /// Starts a flight inspection (unannounced), once per id.
    StartFlight {
        /// The agency's id.
        id: String,
        /// The institution inspected.
        institution: InstitutionId,
        /// What triggered it.
        trigger: medmesh_supervision::flights::FlightTrigger,
    },
    /// Files a flight inspection's progress report, or (`final_report`) its final report.
    FileFlightReport {
        /// The flight inspection.
        id: String,
        /// The final report (after closing) rather than the progress report.
        final_report: bool,
        /// What it says.
        text: String,
    },
    /// Closes a flight inspection with what was found and the case it opened.
    CloseFlight {
        /// The flight inspection.
        id: String,
        /// What was found.
        summary: String,
        /// The case it opened, about the same institution.
        case: Option<String>,
    },
}

/// The finding of one drawn target.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InspectionFinding {
    /// The target.
    pub target: String,
    /// The case opened, if any (none: clean).
    pub case: Option<String>,
    /// What was found.
    pub summary: String,
    /// When it was recorded.
    pub recorded: LogTime,
}

/// A recorded plan, with its draw once drawn.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InspectionRecord {
    /// The plan, its pools and conflicts sorted (the draw's order).
    pub plan: medmesh_inspection::Plan,
    /// Its title.
    pub title: String,
    /// When it was recorded.
    pub recorded: LogTime,
    /// The draw, once drawn.
    pub draw: Option<InspectionDraw>,
    /// Findings of drawn targets, in the order recorded.
    pub findings: Vec<InspectionFinding>,
}

/// A plan's draw: everything needed to re-derive it, and the result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InspectionDraw {
    /// The revealed nonce.
    pub nonce: [u8; 32],
    /// The beacon: the hash of the audit entry at `beacon_seq` (zeros before the first).
    pub beacon: [u8; 32],
    /// The audit entry whose hash is the beacon (the last before the draw's own).
    pub beacon_seq: u64,
    /// When it was drawn.
    pub drawn: LogTime,
    /// The version of the algorithm.
    pub version: u32,
    /// The drawn targets and their inspectors, in draw order.
    pub assignments: Vec<medmesh_inspection::Assignment>,
}

/// The role of a Raft group: which commands its state machine accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Role {
    /// A province group: insured persons, institutions, claims, the fund ledger.
    Province,
    /// The federation group: directory, filings, transfer decisions, prepaid accounts,
    /// clearing and the shared violation log.
    Federation,
}

impl Role {
    /// The role of a group serving `province` (the federation's code is
    /// [`crate::FEDERATION`]).
    pub fn of_province(province: &str) -> Role {
        if province == crate::shared::FEDERATION {
            Role::Federation
        } else {
            Role::Province
        }
    }
}

impl std::fmt::Display for Role {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Role::Province => "province",
            Role::Federation => "federation",
        })
    }
}

/// What an applied command produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[allow(clippy::large_enum_variant)] // one per command, moved rarely; boxing buys nothing here
pub enum Outcome {
    /// A record was stored.
    Stored,
    /// A contribution was recorded; the pooling balance after it.
    Contributed {
        /// Pooling balance.
        balance: Money,
    },
    /// A visit was registered.
    VisitRegistered(Visit),
    /// Fee lines were accepted; the visit's line count and total after the upload.
    FeesUploaded {
        /// Lines on the visit.
        line_count: u32,
        /// Total of the lines.
        total: Money,
    },
    /// Personnel qualification after a recorded violation.
    Qualification(medmesh_supervision::QualificationView),
    /// A settlement (for settle and for reverse: the record after the command).
    Settlement(Settlement),
    /// A non-local settlement was started (or is in progress): the transfer must be driven.
    TransferOpen(Box<crate::shared::OpenTransfer>),
    /// A non-local settlement was aborted; the serial is spent.
    NonLocalAborted {
        /// The transfer.
        transfer: crate::shared::TransferId,
        /// Why.
        reason: String,
    },
    /// A reservation at the insured province, after the command.
    Reservation(crate::shared::Reservation),
    /// The federation's recorded decision.
    Decided(crate::shared::DecisionRecord),
    /// A non-local reversal was started (or is in progress): it must be driven.
    ReversalOpen(Settlement),
    /// A prepaid account after a top-up.
    Prepaid(crate::shared::PrepaidView),
    /// An alert after its review.
    Alert(Alert),
    /// A case after the step.
    Case(Box<medmesh_supervision::cases::Case>),
    /// The province's case policy.
    CasePolicy(medmesh_supervision::cases::CasePolicy),
    /// A post-payment scan step.
    Scanned(ScanReport),
    /// A declaration after the step.
    Declaration(Box<medmesh_payment::Declaration>),
    /// A payment recorded, and the declaration after it.
    Paid(Box<(PaymentRecord, medmesh_payment::Declaration)>),
    /// The province's prepayment policy.
    PrepaymentPolicy(medmesh_payment::PrepaymentPolicy),
    /// A prepayment after the step.
    Prepayment(Box<Prepayment>),
    /// A budget after the step.
    Budget(Box<medmesh_payment::Budget>),
    /// Individual accounts credited.
    Credited {
        /// Persons credited.
        persons: u32,
        /// Amount credited.
        total: Money,
    },
    /// A month's clearing: its status and statements' totals.
    Clearing(crate::shared::ClearingView),
    /// Shared-log entries copied; the cursor after them.
    Synced {
        /// Sequence of the last copied violation.
        cursor: u64,
    },
    /// An inspection plan after the step.
    Inspection(Box<InspectionRecord>),
    /// A report after the step.
    Report(Box<ReportRecord>),
    /// A flight inspection after the step.
    Flight(Box<medmesh_supervision::flights::FlightInspection>),
    /// The province's report policy.
    ReportPolicy(medmesh_supervision::reports::ReportPolicy),
    /// An aggregate as published (with its version).
    Aggregate(Box<crate::figures::Aggregate>),
    /// A joint-discipline entry and its lift.
    DisciplineLifted(Box<(crate::shared::DisciplineEntry, crate::shared::DisciplineLift)>),
    /// A notification-commitment after the step.
    Commitment(Box<medmesh_supervision::credit::Commitment>),
    /// A joint-incentive entry as recorded.
    Incentive(Box<medmesh_supervision::credit::Incentive>),
}

/// Idempotency record: the digest of the first request and its outcome.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IdempotencyRecord {
    /// SHA-256 of the encoded command.
    pub digest: String,
    /// What the first request produced, as [`Answered`] keeps it.
    pub outcome: Answered,
}

/// A first answer as its idempotency record keeps it. Every settlement and visit registration
/// keeps one for good, so the two answers that repeat a record kept beside them are kept by
/// reference, with only what has changed in that record since the answer: a settlement only
/// ever changes its status, a visit its lines, its settling serial and a late filing. Storing
/// the whole answer again was two of a claim's 5.6 KB (`BENCHMARKS.md`, a province at a
/// million claims).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Answered {
    /// Any other outcome, whole.
    Whole(Box<Outcome>),
    /// [`Outcome::Settlement`]: the settlement record, with its status when it answered.
    Settlement {
        /// The institution.
        institution: InstitutionId,
        /// The settlement's serial.
        serial: Serial,
        /// Its status in the answer.
        status: SettlementStatus,
    },
    /// [`Outcome::VisitRegistered`]: the visit record as registered, before any fee line, with
    /// the filing it was registered with.
    Visit {
        /// The institution.
        institution: InstitutionId,
        /// The visit's serial.
        serial: Serial,
        /// A non-local visit's filing when registered.
        filing: Option<crate::shared::FilingKind>,
    },
}

impl IdempotencyRecord {
    /// The record of a first answer.
    pub fn new(digest: String, outcome: &Outcome) -> Self {
        let outcome = match outcome {
            Outcome::Settlement(s) => Answered::Settlement {
                institution: s.institution.clone(),
                serial: s.serial.clone(),
                status: s.status.clone(),
            },
            Outcome::VisitRegistered(v) if v.lines.is_empty() && v.settled_by.is_none() => Answered::Visit {
                institution: v.institution.clone(),
                serial: v.serial.clone(),
                filing: v.nonlocal.as_ref().and_then(|n| n.filing),
            },
            other => Answered::Whole(Box::new(other.clone())),
        };
        IdempotencyRecord { digest, outcome }
    }

    /// The first answer again, rebuilt from the records it refers to (which are kept as long as
    /// the idempotency record: neither is ever deleted).
    pub fn answer(self, kv: &dyn crate::kv::KvRead) -> Result<Outcome, crate::DomainError> {
        use crate::kv::{keys, load};
        let gone =
            |what: &str| crate::DomainError::not_found("serial", format!("the {what} this serial answered is gone"));
        match self.outcome {
            Answered::Whole(o) => Ok(*o),
            Answered::Settlement { institution, serial, status } => {
                let mut s: Settlement =
                    load(kv, &keys::settlement(&institution, &serial)).ok_or_else(|| gone("settlement"))?;
                s.status = status;
                Ok(Outcome::Settlement(s))
            }
            Answered::Visit { institution, serial, filing } => {
                let mut v: Visit = load(kv, &keys::visit(&institution, &serial)).ok_or_else(|| gone("visit"))?;
                v.lines.clear();
                v.settled_by = None;
                if let Some(n) = v.nonlocal.as_mut() {
                    n.filing = filing;
                }
                Ok(Outcome::VisitRegistered(v))
            }
        }
    }
}

/// The result of one command.
pub type CommandResult = Result<Outcome, crate::DomainError>;

/// What an alert is about.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AlertKind {
    /// A flag rule was broken.
    Flag,
    /// The rule failed to evaluate on this claim (never a pass).
    Fault(String),
}

/// Where an alert stands in review.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum AlertStatus {
    /// Waiting for a reviewer.
    Open,
    /// Dismissed, with the reason.
    Dismissed(String),
    /// Accepted: a case was opened.
    Accepted(String),
}

/// An entry of the review queue.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    /// Sequence number in this province, from 1.
    pub seq: u64,
    /// When the settlement that raised it was recorded.
    pub raised_at: LogTime,
    /// The institution.
    pub institution: InstitutionId,
    /// The visit.
    pub visit: Serial,
    /// The settlement.
    pub settlement: Serial,
    /// The rule.
    pub rule: String,
    /// Its version.
    pub version: u32,
    /// Its title.
    pub title: String,
    /// 1–5.
    pub severity: u8,
    /// The line, for a line rule.
    pub line: Option<String>,
    /// Flag or fault.
    pub kind: AlertKind,
    /// Review status.
    pub status: AlertStatus,
}

/// What one post-payment scan command did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ScanReport {
    /// Settlements read.
    pub scanned: u32,
    /// Settlements in the period the rule was run on.
    pub checked: u32,
    /// Alerts raised.
    pub raised: u32,
    /// Where the next command starts; empty when the scan is done.
    pub next: String,
}
