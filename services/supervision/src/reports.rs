//! Reports (whistleblowing, "举报", issue 13.2): intake, handling with deadlines, feedback by
//! receipt code and the reward on a recovery, after the 2021 regulations (open channels, the
//! reporter's information kept confidential) and the 2022 reward measures (a share of the
//! verified amount, at least 200 and at most 200,000 yuan).
//!
//! A report moves received → accepted → concluded, or received → rejected (with a reason). It is
//! acknowledged (accepted or rejected) by [`Report::acknowledge_by`], [`ReportPolicy`]'s
//! `acknowledge_days` after it was received; one not acknowledged by then is overdue. An
//! accepted report may open a case (the case names it as its source; one case per report); once
//! that case's decision has been executed with a recovery, the reporter is owed
//! [`ReportPolicy::reward`] of the recovered amount, paid once.
//!
//! The reporter's identity is not part of [`Report`]: the node seals it under the province's
//! key before the report enters the log and stores it apart; this module sees only whether the
//! report was anonymous.
//!
//! Money is [`Money`] (fen); shares are per mille; there are no floats.

use medmesh_types::{Date, InstitutionId, Money};
use serde::{Deserialize, Serialize};

use crate::cases::CaseError;

/// Longest report text (what is reported, replies, reasons), in bytes.
pub const MAX_REPORT_TEXT: usize = 4000;
/// Longest report id or payment reference.
pub const MAX_REPORT_ID_LEN: usize = 64;

/// The smallest reward the 2022 measures allow: 200 yuan.
pub fn reward_floor() -> Money {
    Money::from_fen(20_000)
}

/// The largest reward the 2022 measures allow: 200,000 yuan.
pub fn reward_ceiling() -> Money {
    Money::from_fen(20_000_000)
}

fn invalid(field: &str, message: impl Into<String>) -> CaseError {
    CaseError::Invalid { field: field.into(), message: message.into() }
}

fn state(message: impl Into<String>) -> CaseError {
    CaseError::State { field: "report_id".into(), message: message.into() }
}

/// Checks free text: required or not, bounded, no control characters but newlines.
pub fn check_text(field: &str, value: &str, required: bool) -> Result<(), CaseError> {
    if required && value.trim().is_empty() {
        return Err(invalid(field, "is required"));
    }
    if value.len() > MAX_REPORT_TEXT || value.chars().any(|c| c.is_control() && c != '\n') {
        return Err(invalid(field, format!("must be at most {MAX_REPORT_TEXT} bytes without control characters")));
    }
    Ok(())
}

/// Checks an identifier (a report id, a serial, a payment reference): 1 to 64 of
/// `A-Z a-z 0-9 - _ .`.
pub fn check_id(field: &str, id: &str) -> Result<(), CaseError> {
    if id.is_empty()
        || id.len() > MAX_REPORT_ID_LEN
        || !id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
    {
        return Err(invalid(field, format!("must be 1 to {MAX_REPORT_ID_LEN} of A-Z a-z 0-9 - _ .")));
    }
    Ok(())
}

/// A province's reward and deadline rules for reports.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportPolicy {
    /// The reward's share of the recovered amount, per mille.
    pub reward_permille: u32,
    /// The smallest reward (the 2022 measures: 200 yuan).
    pub min_reward: Money,
    /// The largest reward (the 2022 measures: 200,000 yuan).
    pub max_reward: Money,
    /// Days from receipt to acknowledgement (accepted or rejected).
    pub acknowledge_days: u32,
}

impl Default for ReportPolicy {
    /// 5 % of the recovered amount within the 2022 measures' 200 to 200,000 yuan; acknowledged
    /// within 15 days.
    fn default() -> ReportPolicy {
        ReportPolicy {
            reward_permille: 50,
            min_reward: reward_floor(),
            max_reward: reward_ceiling(),
            acknowledge_days: 15,
        }
    }
}

impl ReportPolicy {
    /// Checks the policy: a share of 1 to 1000 per mille, 200 ≤ min ≤ max ≤ 200,000 yuan (the
    /// measures' bounds; a province sets its own within them), 1 to 60 days.
    pub fn validate(&self) -> Result<(), CaseError> {
        if !(1..=1000).contains(&self.reward_permille) {
            return Err(invalid("reward_share", "must be more than 0 and at most 1 (1 to 1000 per mille)"));
        }
        let (floor, ceiling) = (reward_floor(), reward_ceiling());
        if self.min_reward < floor || self.min_reward > ceiling {
            return Err(invalid("min_reward", format!("must be {floor} to {ceiling} yuan")));
        }
        if self.max_reward < self.min_reward || self.max_reward > ceiling {
            return Err(invalid("max_reward", format!("must be min_reward to {ceiling} yuan")));
        }
        if !(1..=60).contains(&self.acknowledge_days) {
            return Err(invalid("acknowledge_days", "must be 1 to 60"));
        }
        Ok(())
    }

    /// The reward on `recovered`: its share, rounded half up to the fen, raised to the minimum
    /// and capped at the maximum; `None` when nothing was recovered (no amount verified).
    pub fn reward(&self, recovered: Money) -> Option<Money> {
        if recovered.is_negative() || recovered.is_zero() {
            return None;
        }
        let share = (recovered.fen() * i128::from(self.reward_permille) + 500) / 1000;
        let share = Money::from_fen(i64::try_from(share).unwrap_or(i64::MAX));
        Some(share.max(self.min_reward).min(self.max_reward))
    }
}

/// Where a report stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ReportState {
    /// Received, not yet acknowledged.
    Received,
    /// Accepted for handling.
    Accepted,
    /// Rejected (outside the fund's supervision, or not specific enough), with a reason.
    Rejected,
    /// Handled; the reporter has the outcome.
    Concluded,
}

impl ReportState {
    /// Lower-case name.
    pub fn name(self) -> &'static str {
        match self {
            ReportState::Received => "received",
            ReportState::Accepted => "accepted",
            ReportState::Rejected => "rejected",
            ReportState::Concluded => "concluded",
        }
    }
}

/// A reward paid to a reporter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reward {
    /// The amount.
    pub amount: Money,
    /// The recovery it is a share of.
    pub recovered: Money,
    /// The case.
    pub case_id: String,
    /// The payment's reference.
    pub reference: String,
    /// Paid on.
    pub paid_on: Date,
}

/// A report, without its reporter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// The report id the province gave it.
    pub id: String,
    /// The institution reported.
    pub institution: InstitutionId,
    /// What is reported.
    pub summary: String,
    /// True when the reporter gave no identity.
    pub anonymous: bool,
    /// Received on.
    pub received_on: Date,
    /// To be acknowledged by this day.
    pub acknowledge_by: Date,
    /// Where it stands.
    pub state: ReportState,
    /// Acknowledged on.
    pub acknowledged_on: Option<Date>,
    /// The agency's reply to the reporter (the acknowledgement's note, then the conclusion).
    pub reply: String,
    /// The case it opened.
    pub case_id: Option<String>,
    /// Concluded on.
    pub concluded_on: Option<Date>,
    /// The reward, once paid.
    pub reward: Option<Reward>,
}

impl Report {
    /// A report received `today`.
    pub fn receive(
        id: &str,
        institution: InstitutionId,
        summary: &str,
        anonymous: bool,
        today: Date,
        policy: &ReportPolicy,
    ) -> Result<Report, CaseError> {
        check_id("report_id", id)?;
        check_text("summary", summary, true)?;
        Ok(Report {
            id: id.to_string(),
            institution,
            summary: summary.to_string(),
            anonymous,
            received_on: today,
            acknowledge_by: today.plus_days(i32::try_from(policy.acknowledge_days).unwrap_or(60)),
            state: ReportState::Received,
            acknowledged_on: None,
            reply: String::new(),
            case_id: None,
            concluded_on: None,
            reward: None,
        })
    }

    /// True when it is still unacknowledged after its day.
    pub fn overdue(&self, today: Date) -> bool {
        self.state == ReportState::Received && today > self.acknowledge_by
    }

    /// Accepts (`accept`) or rejects it, with a note to the reporter (required to reject).
    pub fn acknowledge(&mut self, accept: bool, note: &str, today: Date) -> Result<(), CaseError> {
        check_text("note", note, !accept)?;
        if self.state != ReportState::Received {
            return Err(state(format!("report {} is {}, already acknowledged", self.id, self.state.name())));
        }
        self.state = if accept { ReportState::Accepted } else { ReportState::Rejected };
        self.acknowledged_on = Some(today);
        self.reply = note.to_string();
        Ok(())
    }

    /// Records the case it opened: the report must be accepted, about the case's institution,
    /// and not have opened another.
    pub fn open_case(&mut self, case_id: &str, institution: &InstitutionId) -> Result<(), CaseError> {
        let field = "source.report_id";
        if self.state != ReportState::Accepted {
            return Err(CaseError::State {
                field: field.into(),
                message: format!("report {} is {}: only an accepted report opens a case", self.id, self.state.name()),
            });
        }
        if &self.institution != institution {
            return Err(invalid(
                "institution_id",
                format!("report {} is about institution {}, not {institution}", self.id, self.institution),
            ));
        }
        match &self.case_id {
            Some(c) if c != case_id => Err(CaseError::State {
                field: field.into(),
                message: format!("report {} already opened case {c}", self.id),
            }),
            _ => {
                self.case_id = Some(case_id.to_string());
                Ok(())
            }
        }
    }

    /// Concludes it with the outcome for the reporter.
    pub fn conclude(&mut self, reply: &str, today: Date) -> Result<(), CaseError> {
        check_text("reply", reply, true)?;
        if self.state != ReportState::Accepted {
            return Err(state(format!(
                "report {} is {}: only an accepted report is concluded",
                self.id,
                self.state.name()
            )));
        }
        self.state = ReportState::Concluded;
        self.concluded_on = Some(today);
        self.reply = reply.to_string();
        Ok(())
    }

    /// Pays the reward on the case's executed recovery (`recovered`, `None` while the case has
    /// not been executed). Paying again with the same reference answers the reward paid;
    /// another reference is refused.
    pub fn pay_reward(
        &mut self,
        recovered: Option<Money>,
        reference: &str,
        today: Date,
        policy: &ReportPolicy,
    ) -> Result<Reward, CaseError> {
        check_id("reference", reference)?;
        if let Some(r) = &self.reward {
            if r.reference == reference {
                return Ok(r.clone());
            }
            return Err(CaseError::State {
                field: "report_id".into(),
                message: format!("report {}'s reward was paid with reference {}", self.id, r.reference),
            });
        }
        let case_id = self
            .case_id
            .clone()
            .ok_or_else(|| state(format!("report {} opened no case: there is no verified amount", self.id)))?;
        let recovered =
            recovered.ok_or_else(|| state(format!("case {case_id} of report {} has not been executed", self.id)))?;
        let amount = policy
            .reward(recovered)
            .ok_or_else(|| state(format!("case {case_id} recovered nothing: no reward is due")))?;
        let reward = Reward { amount, recovered, case_id, reference: reference.to_string(), paid_on: today };
        self.reward = Some(reward.clone());
        Ok(reward)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yuan(s: &str) -> Money {
        Money::parse_yuan(s).unwrap()
    }

    fn day(s: &str) -> Date {
        Date::parse(s).unwrap()
    }

    fn report() -> Report {
        let inst = InstitutionId::new("H110000-01".to_string()).unwrap();
        Report::receive(
            "R-1",
            inst,
            "billed for a stay that never happened",
            true,
            day("2026-03-02"),
            &ReportPolicy::default(),
        )
        .unwrap()
    }

    /// The 2022 measures' bounds and a 5 % share, worked by hand.
    #[test]
    fn the_reward_is_a_share_within_200_and_200000_yuan() {
        let p = ReportPolicy::default();
        assert_eq!(p.reward(yuan("21540.00")), Some(yuan("1077.00")));
        assert_eq!(p.reward(yuan("4321.09")), Some(yuan("216.05")), "216.0545 rounds down");
        assert_eq!(p.reward(yuan("4321.10")), Some(yuan("216.06")), "216.055 rounds half up");
        assert_eq!(p.reward(yuan("100.00")), Some(yuan("200.00")), "5.00 is raised to the minimum");
        assert_eq!(p.reward(yuan("10000000.00")), Some(yuan("200000.00")), "500,000 is capped");
        assert_eq!(p.reward(Money::ZERO), None, "nothing verified, nothing owed");
        let generous = ReportPolicy { reward_permille: 100, max_reward: yuan("50000.00"), ..p.clone() };
        assert_eq!(generous.reward(yuan("21540.00")), Some(yuan("2154.00")));
        assert_eq!(generous.reward(yuan("900000.00")), Some(yuan("50000.00")));
    }

    #[test]
    fn a_policy_outside_the_measures_is_refused_naming_the_field() {
        let p = ReportPolicy::default();
        let field = |q: ReportPolicy| q.validate().unwrap_err().field().to_string();
        assert!(p.validate().is_ok());
        assert_eq!(field(ReportPolicy { reward_permille: 0, ..p.clone() }), "reward_share");
        assert_eq!(field(ReportPolicy { min_reward: yuan("199.99"), ..p.clone() }), "min_reward");
        assert_eq!(field(ReportPolicy { max_reward: yuan("200000.01"), ..p.clone() }), "max_reward");
        assert_eq!(
            field(ReportPolicy { min_reward: yuan("500.00"), max_reward: yuan("400.00"), ..p.clone() }),
            "max_reward"
        );
        assert_eq!(field(ReportPolicy { acknowledge_days: 0, ..p }), "acknowledge_days");
    }

    #[test]
    fn a_report_is_acknowledged_by_its_day_then_handled_once() {
        let mut r = report();
        assert_eq!(r.acknowledge_by, day("2026-03-17"));
        assert!(!r.overdue(day("2026-03-17")));
        assert!(r.overdue(day("2026-03-18")));
        assert_eq!(r.acknowledge(false, "", day("2026-03-03")).unwrap_err().field(), "note", "a rejection says why");
        let inst = r.institution.clone();
        assert_eq!(r.open_case("C-1", &inst).unwrap_err().field(), "source.report_id", "not accepted yet");
        r.acknowledge(true, "", day("2026-03-03")).unwrap();
        assert!(!r.overdue(day("2027-01-01")));
        assert!(r.acknowledge(true, "", day("2026-03-04")).is_err(), "acknowledged once");
        let other = InstitutionId::new("H110000-02".to_string()).unwrap();
        assert_eq!(r.open_case("C-1", &other).unwrap_err().field(), "institution_id");
        r.open_case("C-1", &inst).unwrap();
        r.open_case("C-1", &inst).unwrap();
        assert_eq!(r.open_case("C-2", &inst).unwrap_err().field(), "source.report_id", "one case per report");
    }

    #[test]
    fn the_reward_is_paid_once_and_only_on_an_executed_recovery() {
        let p = ReportPolicy::default();
        let mut r = report();
        r.acknowledge(true, "", day("2026-03-03")).unwrap();
        assert!(r.pay_reward(Some(yuan("1000.00")), "PAY-1", day("2026-03-04"), &p).is_err(), "no case");
        let inst = r.institution.clone();
        r.open_case("C-1", &inst).unwrap();
        assert!(r.pay_reward(None, "PAY-1", day("2026-03-04"), &p).is_err(), "not executed");
        assert!(r.pay_reward(Some(Money::ZERO), "PAY-1", day("2026-03-04"), &p).is_err(), "nothing recovered");
        assert_eq!(
            r.pay_reward(Some(yuan("1000.00")), "bad ref", day("2026-03-04"), &p).unwrap_err().field(),
            "reference"
        );
        let paid = r.pay_reward(Some(yuan("21540.00")), "PAY-1", day("2026-04-01"), &p).unwrap();
        assert_eq!((paid.amount, paid.case_id.as_str()), (yuan("1077.00"), "C-1"));
        assert_eq!(r.pay_reward(Some(yuan("99999.00")), "PAY-1", day("2026-05-01"), &p).unwrap(), paid, "a retry");
        assert!(r.pay_reward(Some(yuan("21540.00")), "PAY-2", day("2026-05-01"), &p).is_err(), "paid once");
        r.conclude("the hospital repaid 21,540 yuan and was fined", day("2026-04-02")).unwrap();
        assert_eq!(r.state, ReportState::Concluded);
        assert!(r.conclude("again", day("2026-04-03")).is_err());
    }
}
