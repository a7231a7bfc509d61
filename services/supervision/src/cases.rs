//! Cases and penalties (issue 11.6), after the 2021 regulations on the supervision of medical
//! security funds.
//!
//! What monitoring, a report or an inspection finds becomes a [`Case`] about one designated
//! institution and some of its settlements. A case moves
//!
//! ```text
//! Opened -> Investigating -> Decided -> Executed -> Closed
//!    \___________\__________________________________/   (closed without a decision: nothing found)
//! ```
//!
//! - [`Case::open`] checks the ground and the subject; the investigation deadline is the
//!   opening day plus [`CasePolicy::investigate_days`];
//! - [`Case::investigate`] records a finding (the first one moves the case to investigating);
//! - [`Case::decide`] needs at least one finding and fixes the penalty: the amount to recover
//!   (never more than the fund paid on the case's settlements, which the caller computes from
//!   its store), a fine of a multiple of it within the range [`CasePolicy`] sets for the
//!   violation type, an agreement suspension or termination, points for personnel, a
//!   joint-discipline entry, a transfer to another department;
//! - [`Case::execute`] carries the decision out once and answers its [`Effects`], which the
//!   store applies in the same command (a second execution is refused);
//! - [`Case::close`] ends an executed case, or one where nothing was found (with a reason).
//!
//! A decided or executed case is never reopened or decided again. Every refusal names the field
//! at fault. Amounts are [`Money`] (fen); multiples are integer tenths; there are no floats.

use std::collections::BTreeMap;

use medmesh_types::{Date, InstitutionId, Money, PersonnelCode, ProvinceCode, Serial};
use serde::{Deserialize, Serialize};

use crate::{Severity, Violation, MAX_VIOLATION_POINTS};

/// Longest case id, in bytes.
pub const MAX_CASE_ID_LEN: usize = 64;
/// Longest free text (finding, reason, reference), in bytes.
pub const MAX_TEXT_LEN: usize = 1024;
/// Most findings on one case.
pub const MAX_FINDINGS: usize = 64;
/// Most settlements one case is about.
pub const MAX_CASE_SETTLEMENTS: usize = 256;
/// Most personnel scored by one decision.
pub const MAX_SCORED: usize = 16;
/// Longest agreement suspension, in months (2021 regulations: 6 to 12 months for fraud).
pub const MAX_SUSPENSION_MONTHS: u32 = 12;
/// Longest joint-discipline period a decision may set, in days (five years).
pub const MAX_DISCIPLINE_DAYS: u32 = 5 * 366;

/// Why a case command was refused; `field` names what is at fault.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CaseError {
    /// A field's value is not acceptable.
    #[error("{field}: {message}")]
    Invalid {
        /// The field.
        field: String,
        /// Why.
        message: String,
    },
    /// The case is not in a state that allows the step.
    #[error("{field}: {message}")]
    State {
        /// The field (`case_id` or `state`).
        field: String,
        /// Why.
        message: String,
    },
}

impl CaseError {
    /// The field at fault.
    pub fn field(&self) -> &str {
        match self {
            CaseError::Invalid { field, .. } | CaseError::State { field, .. } => field,
        }
    }
    pub(crate) fn invalid(field: impl Into<String>, message: impl Into<String>) -> CaseError {
        CaseError::Invalid { field: field.into(), message: message.into() }
    }
    fn state(message: impl Into<String>) -> CaseError {
        CaseError::State { field: "case_id".into(), message: message.into() }
    }
}

/// Where a case stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum CaseState {
    /// Opened, nothing found yet.
    Opened,
    /// Findings are being recorded.
    Investigating,
    /// The penalty is decided, not yet carried out.
    Decided,
    /// The decision was carried out (money recovered, agreement handled, points given).
    Executed,
    /// Closed.
    Closed,
}

impl CaseState {
    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            CaseState::Opened => "opened",
            CaseState::Investigating => "investigating",
            CaseState::Decided => "decided",
            CaseState::Executed => "executed",
            CaseState::Closed => "closed",
        }
    }
}

/// What opened a case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CaseSource {
    /// A monitoring alert (its sequence number in the province).
    Alert(u64),
    /// A report (whistleblowing), by its receipt id.
    Report(String),
    /// An inspection, by its id.
    Inspection(String),
}

/// Violation types whose fine multiples the regulations set (and a province may configure).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ViolationType {
    /// An institution's irregular use of the fund (2021 regulations, art. 38): recover, fine 1
    /// to 2 times the loss.
    Irregular,
    /// Fraud by an institution (art. 40): recover, fine 2 to 5 times.
    Fraud,
    /// Fraud by an insured person or other party (art. 41): recover, fine 2 to 5 times.
    InsuredFraud,
}

impl ViolationType {
    /// Every type, in order.
    pub const ALL: [ViolationType; 3] = [ViolationType::Irregular, ViolationType::Fraud, ViolationType::InsuredFraud];

    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            ViolationType::Irregular => "irregular",
            ViolationType::Fraud => "fraud",
            ViolationType::InsuredFraud => "insured_fraud",
        }
    }
}

/// Departments a case can be transferred to (2021 regulations: case transfer mechanisms).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Department {
    /// Public security (suspected crime).
    PublicSecurity,
    /// Health administration (medical practice).
    Health,
    /// Market regulation (prices, drugs).
    MarketRegulation,
    /// Audit.
    Audit,
}

/// A province's case rules.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CasePolicy {
    /// Fine multiples per violation type, in tenths, as an inclusive range.
    pub fine_tenths: BTreeMap<ViolationType, (u32, u32)>,
    /// Days from opening to the investigation deadline.
    pub investigate_days: u32,
}

impl Default for CasePolicy {
    /// The 2021 regulations: irregular use 1–2 times, fraud 2–5 times; 90 days to investigate.
    fn default() -> CasePolicy {
        CasePolicy {
            fine_tenths: BTreeMap::from([
                (ViolationType::Irregular, (10, 20)),
                (ViolationType::Fraud, (20, 50)),
                (ViolationType::InsuredFraud, (20, 50)),
            ]),
            investigate_days: 90,
        }
    }
}

impl CasePolicy {
    /// Checks the policy: every type has a range, min ≤ max ≤ 10 times, 1 to 365 days.
    pub fn validate(&self) -> Result<(), CaseError> {
        for t in ViolationType::ALL {
            match self.fine_tenths.get(&t) {
                None => return Err(CaseError::invalid("fine_multiples", format!("no range for {}", t.name()))),
                Some(&(lo, hi)) if lo > hi || hi > 100 => {
                    return Err(CaseError::invalid(
                        "fine_multiples",
                        format!("{}: {lo}..{hi} tenths must have min <= max <= 100 (10 times)", t.name()),
                    ))
                }
                Some(_) => {}
            }
        }
        if !(1..=365).contains(&self.investigate_days) {
            return Err(CaseError::invalid("investigate_days", "must be 1 to 365"));
        }
        Ok(())
    }
}

/// A finding recorded during the investigation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Finding {
    /// When.
    pub on: Date,
    /// What was found.
    pub text: String,
}

/// What a decision does to the institution's agreement.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AgreementAction {
    /// Nothing.
    Keep,
    /// Suspended for this many months (1 to 12) from the execution day.
    Suspend(u32),
    /// Ended from the execution day.
    End,
}

/// Points given to one person by a decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Scored {
    /// The person.
    pub personnel: PersonnelCode,
    /// Points, 1 to 12.
    pub points: u8,
    /// Severity (months of suspension it calls for).
    pub severity: Severity,
}

/// A handoff to another department.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Handoff {
    /// To whom.
    pub department: Department,
    /// The receiving department's reference or a note.
    pub reference: String,
}

/// What the deciding agency asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DecisionInput {
    /// The violation type (sets the fine range).
    pub violation: ViolationType,
    /// Amount to recover to the fund.
    pub recover: Money,
    /// Fine as a multiple of `recover`, in tenths (0: no fine, allowed only when nothing is
    /// recovered).
    pub fine_tenths: u32,
    /// The agreement.
    pub agreement: AgreementAction,
    /// Personnel points.
    pub scored: Vec<Scored>,
    /// Days on the joint-discipline list for the institution (0: none).
    pub discipline_days: u32,
    /// Transfer to another department.
    pub handoff: Option<Handoff>,
    /// The decision's grounds (published with the outcome).
    pub reason: String,
}

/// A recorded decision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Decision {
    /// What was asked.
    pub input: DecisionInput,
    /// The fine: `recover × fine_tenths / 10`, rounded half away from zero to the fen.
    pub fine: Money,
    /// Day decided.
    pub decided_on: Date,
}

/// What the store must carry out when a decision is executed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Effects {
    /// Money to take back into the fund from the institution.
    pub recover: Money,
    /// Fine owed by the institution (to the treasury, not the fund).
    pub fine: Money,
    /// Agreement hold: from the execution day through `Some(last day)`, or for good (`None`).
    pub hold: Option<(Date, Option<Date>)>,
    /// Points to record, one violation per person, id `case-{case id}`.
    pub violations: Vec<Violation>,
    /// Joint-discipline period for the institution, first and last day.
    pub discipline: Option<(Date, Date)>,
    /// Transfer.
    pub handoff: Option<Handoff>,
}

/// A case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Case {
    /// The agency's case id (unique in the province).
    pub id: String,
    /// The deciding province.
    pub province: ProvinceCode,
    /// What opened it.
    pub source: CaseSource,
    /// The institution.
    pub institution: InstitutionId,
    /// Settlements of the institution the case is about.
    pub settlements: Vec<Serial>,
    /// Fund share paid on those settlements when the case was opened (what can be recovered).
    pub involved: Money,
    /// Where it stands.
    pub state: CaseState,
    /// Opened on.
    pub opened_on: Date,
    /// The investigation must be decided by this day.
    pub deadline: Date,
    /// Findings, in order.
    pub findings: Vec<Finding>,
    /// The decision.
    pub decision: Option<Decision>,
    /// Executed on.
    pub executed_on: Option<Date>,
    /// Closed on.
    pub closed_on: Option<Date>,
    /// Why it was closed (required when closed without a decision).
    pub close_reason: String,
}

fn text(field: &str, value: &str, required: bool) -> Result<(), CaseError> {
    if required && value.trim().is_empty() {
        return Err(CaseError::invalid(field, "is required"));
    }
    if value.len() > MAX_TEXT_LEN || value.chars().any(|c| c.is_control() && c != '\n') {
        return Err(CaseError::invalid(
            field,
            format!("must be at most {MAX_TEXT_LEN} bytes without control characters"),
        ));
    }
    Ok(())
}

/// Checks a case id: 1 to [`MAX_CASE_ID_LEN`] bytes of letters, digits, `-`, `_` and `.`.
pub fn check_case_id(id: &str) -> Result<(), CaseError> {
    if id.is_empty()
        || id.len() > MAX_CASE_ID_LEN
        || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
    {
        return Err(CaseError::invalid(
            "case_id",
            format!("must be 1 to {MAX_CASE_ID_LEN} letters, digits, '-', '_' or '.'"),
        ));
    }
    Ok(())
}

/// The fine for `recover` at `tenths` tenths of a multiple, half away from zero to the fen.
pub fn fine(recover: Money, tenths: u32) -> Money {
    let fen = recover.fen() * i128::from(tenths);
    let rounded = (fen + 5).div_euclid(10);
    Money::from_fen(i64::try_from(rounded).unwrap_or(i64::MAX))
}

impl Case {
    /// Opens a case. `involved` is the fund share paid on `settlements` (the caller reads it
    /// from its store); `today` is the log entry's day.
    #[allow(clippy::too_many_arguments)] // one per field of the case being opened
    pub fn open(
        id: &str,
        province: ProvinceCode,
        source: CaseSource,
        institution: InstitutionId,
        settlements: Vec<Serial>,
        involved: Money,
        today: Date,
        policy: &CasePolicy,
    ) -> Result<Case, CaseError> {
        check_case_id(id)?;
        match &source {
            CaseSource::Alert(0) => return Err(CaseError::invalid("source.alert_seq", "must be 1 or more")),
            CaseSource::Report(r) | CaseSource::Inspection(r) => check_case_id(r).map_err(|_| {
                CaseError::invalid("source.reference", "must be 1 to 64 letters, digits, '-', '_' or '.'")
            })?,
            CaseSource::Alert(_) => {}
        }
        if settlements.len() > MAX_CASE_SETTLEMENTS {
            return Err(CaseError::invalid("settlement_serials", format!("at most {MAX_CASE_SETTLEMENTS}")));
        }
        let mut sorted = settlements.clone();
        sorted.sort();
        sorted.dedup();
        if sorted.len() != settlements.len() {
            return Err(CaseError::invalid("settlement_serials", "names a settlement twice"));
        }
        if involved.is_negative() {
            return Err(CaseError::invalid("settlement_serials", "the fund share paid is negative"));
        }
        Ok(Case {
            id: id.to_string(),
            province,
            source,
            institution,
            settlements: sorted,
            involved,
            state: CaseState::Opened,
            opened_on: today,
            deadline: today.plus_days(policy.investigate_days as i32),
            findings: Vec::new(),
            decision: None,
            executed_on: None,
            closed_on: None,
            close_reason: String::new(),
        })
    }

    /// Whether the investigation is past its deadline on `today` without a decision.
    pub fn overdue(&self, today: Date) -> bool {
        matches!(self.state, CaseState::Opened | CaseState::Investigating) && today > self.deadline
    }

    /// Records a finding; the case is then investigating.
    pub fn investigate(&mut self, finding: &str, today: Date) -> Result<(), CaseError> {
        text("finding", finding, true)?;
        if !matches!(self.state, CaseState::Opened | CaseState::Investigating) {
            return Err(CaseError::state(format!("case {} is {}: findings are closed", self.id, self.state.name())));
        }
        if self.findings.len() >= MAX_FINDINGS {
            return Err(CaseError::invalid("finding", format!("a case holds at most {MAX_FINDINGS} findings")));
        }
        self.findings.push(Finding { on: today, text: finding.to_string() });
        self.state = CaseState::Investigating;
        Ok(())
    }

    /// Decides the penalty. Needs a finding; the recovery is at most [`Case::involved`].
    pub fn decide(&mut self, input: DecisionInput, today: Date, policy: &CasePolicy) -> Result<(), CaseError> {
        match self.state {
            CaseState::Investigating => {}
            CaseState::Opened => {
                return Err(CaseError::state(format!("case {} has no finding yet: investigate first", self.id)))
            }
            s => return Err(CaseError::state(format!("case {} is {}: it was already decided", self.id, s.name()))),
        }
        text("reason", &input.reason, true)?;
        if input.recover.is_negative() {
            return Err(CaseError::invalid("recover", "must not be negative"));
        }
        if input.recover > self.involved {
            return Err(CaseError::invalid(
                "recover",
                format!("{} is more than the fund paid on the case's settlements ({})", input.recover, self.involved),
            ));
        }
        let (lo, hi) = policy.fine_tenths.get(&input.violation).copied().unwrap_or((0, 0));
        if input.recover.is_zero() {
            if input.fine_tenths != 0 {
                return Err(CaseError::invalid("fine_multiple", "no fine without an amount recovered"));
            }
        } else if !(lo..=hi).contains(&input.fine_tenths) {
            return Err(CaseError::invalid(
                "fine_multiple",
                format!(
                    "{}.{} times is outside {}.{}..{}.{} times for {}",
                    input.fine_tenths / 10,
                    input.fine_tenths % 10,
                    lo / 10,
                    lo % 10,
                    hi / 10,
                    hi % 10,
                    input.violation.name()
                ),
            ));
        }
        if let AgreementAction::Suspend(m) = input.agreement {
            if !(1..=MAX_SUSPENSION_MONTHS).contains(&m) {
                return Err(CaseError::invalid("suspend_months", format!("must be 1 to {MAX_SUSPENSION_MONTHS}")));
            }
        }
        if input.scored.len() > MAX_SCORED {
            return Err(CaseError::invalid("points", format!("at most {MAX_SCORED} personnel")));
        }
        for (i, s) in input.scored.iter().enumerate() {
            if s.points == 0 || s.points > MAX_VIOLATION_POINTS {
                return Err(CaseError::invalid(format!("points[{i}].points"), "must be 1 to 12"));
            }
            if input.scored[..i].iter().any(|o| o.personnel == s.personnel) {
                return Err(CaseError::invalid(format!("points[{i}].personnel_code"), "named twice"));
            }
        }
        if input.discipline_days > MAX_DISCIPLINE_DAYS {
            return Err(CaseError::invalid("discipline_days", format!("at most {MAX_DISCIPLINE_DAYS}")));
        }
        if let Some(h) = &input.handoff {
            text("transfer.reference", &h.reference, true)?;
        }
        let fine = fine(input.recover, input.fine_tenths);
        self.decision = Some(Decision { input, fine, decided_on: today });
        self.state = CaseState::Decided;
        Ok(())
    }

    /// Carries the decision out, once: answers what the store must do.
    pub fn execute(&mut self, today: Date) -> Result<Effects, CaseError> {
        let d = match (self.state, &self.decision) {
            (CaseState::Decided, Some(d)) => d.clone(),
            (CaseState::Executed | CaseState::Closed, Some(_)) => {
                return Err(CaseError::state(format!(
                    "case {}: the decision was already executed on {}",
                    self.id,
                    self.executed_on.map(|d| d.to_string()).unwrap_or_default()
                )))
            }
            (s, _) => {
                return Err(CaseError::state(format!("case {} is {}: nothing decided to execute", self.id, s.name())))
            }
        };
        let hold = match d.input.agreement {
            AgreementAction::Keep => None,
            AgreementAction::Suspend(m) => Some((today, Some(today.plus_months(m).plus_days(-1)))),
            AgreementAction::End => Some((today, None)),
        };
        let violations = d
            .input
            .scored
            .iter()
            .map(|s| Violation {
                personnel: s.personnel.clone(),
                id: format!("case-{}-{}", self.province, self.id),
                decided_on: d.decided_on,
                points: s.points,
                severity: s.severity,
                province: self.province.clone(),
            })
            .collect();
        let discipline =
            (d.input.discipline_days > 0).then(|| (today, today.plus_days(d.input.discipline_days as i32 - 1)));
        self.state = CaseState::Executed;
        self.executed_on = Some(today);
        Ok(Effects {
            recover: d.input.recover,
            fine: d.fine,
            hold,
            violations,
            discipline,
            handoff: d.input.handoff.clone(),
        })
    }

    /// Closes the case: an executed one, or one without a decision (nothing found; `reason`
    /// required).
    pub fn close(&mut self, reason: &str, today: Date) -> Result<(), CaseError> {
        match self.state {
            CaseState::Executed => text("reason", reason, false)?,
            CaseState::Opened | CaseState::Investigating => text("reason", reason, true)?,
            CaseState::Decided => {
                return Err(CaseError::state(format!("case {} is decided: execute the decision first", self.id)))
            }
            CaseState::Closed => return Err(CaseError::state(format!("case {} is already closed", self.id))),
        }
        self.state = CaseState::Closed;
        self.closed_on = Some(today);
        self.close_reason = reason.to_string();
        Ok(())
    }
}

/// A decided case as every province sees it: no personal identity, no claim line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CaseOutcome {
    /// The deciding province.
    pub province: ProvinceCode,
    /// Its case id.
    pub case_id: String,
    /// The institution.
    pub institution: InstitutionId,
    /// Personnel scored (codes are public registry numbers, not identities).
    pub personnel: Vec<PersonnelCode>,
    /// Violation type.
    pub violation: ViolationType,
    /// Recovered.
    pub recovered: Money,
    /// Fine.
    pub fine: Money,
    /// Agreement handling.
    pub agreement: AgreementAction,
    /// Transferred to.
    pub department: Option<Department>,
    /// Decided on.
    pub decided_on: Date,
    /// Executed on.
    pub executed_on: Date,
    /// Published grounds.
    pub reason: String,
}

impl Case {
    /// The shareable outcome of an executed case.
    pub fn outcome(&self) -> Option<CaseOutcome> {
        let d = self.decision.as_ref()?;
        Some(CaseOutcome {
            province: self.province.clone(),
            case_id: self.id.clone(),
            institution: self.institution.clone(),
            personnel: d.input.scored.iter().map(|s| s.personnel.clone()).collect(),
            violation: d.input.violation,
            recovered: d.input.recover,
            fine: d.fine,
            agreement: d.input.agreement,
            department: d.input.handoff.as_ref().map(|h| h.department),
            decided_on: d.decided_on,
            executed_on: self.executed_on?,
            reason: d.input.reason.clone(),
        })
    }
}

impl CaseOutcome {
    /// Checks an outcome that arrived from another province (apply trusts nothing it is sent).
    pub fn validate(&self) -> Result<(), CaseError> {
        check_case_id(&self.case_id)?;
        text("reason", &self.reason, true)?;
        if self.recovered.is_negative() || self.fine.is_negative() {
            return Err(CaseError::invalid("recovered", "amounts must not be negative"));
        }
        if self.executed_on < self.decided_on {
            return Err(CaseError::invalid("executed_on", "is before decided_on"));
        }
        if self.personnel.len() > MAX_SCORED {
            return Err(CaseError::invalid("personnel", format!("at most {MAX_SCORED}")));
        }
        if let AgreementAction::Suspend(m) = self.agreement {
            if !(1..=MAX_SUSPENSION_MONTHS).contains(&m) {
                return Err(CaseError::invalid("suspend_months", format!("must be 1 to {MAX_SUSPENSION_MONTHS}")));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
#[path = "cases_tests.rs"]
mod tests;
