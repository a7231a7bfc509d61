//! Credit ratings of institutions (issue 13.3): a documented scoring model over what every
//! province knows about an institution.
//!
//! **National by construction.** The model reads only what the federation's shared log copies
//! into every province: decided and executed case outcomes (from any province), joint-
//! discipline entries, resolved commitments, reviewed declarations and incentive entries. Every province therefore computes the same rating for an institution on
//! the same day, and a grade follows the institution across provinces without a second copy to
//! keep in step, and without any insured person's identity (outcomes carry none).
//!
//! **The model** (`MODEL_VERSION` 1), as of a day `today`:
//!
//! 1. Start at 100 points.
//! 2. Each case outcome decided within the last three years (`today` less than three whole years
//!    after the decision day) deducts:
//!    - by violation: irregular use of the fund 10, institution fraud 30, fraud by an insured
//!      person 0 (the institution was not the offender; the outcome is listed with 0 points);
//!    - 1 per full 10,000 yuan recovered, at most 20;
//!    - 10 if the agreement was suspended.
//! 3. The score is `max(0, 100 − deductions)`. Grade **A** from 90, **B** from 75, **C** from 60,
//!    **D** below 60.
//! 4. The grade is **D** whatever the score while the institution is on the joint-discipline
//!    list, or when a counted case ended its agreement.
//!
//! **Repair.** An outcome stops counting three years after its decision, a discipline entry the
//! day after its last day, and an outcome its deciding province lifts on appeal ([`Lift`],
//! shared like the outcome) stops counting from the day lifted; all stay in the history the
//! rating lists (with 0 points and `counted: false`), so a rating explains itself.
//!
//! Worked examples (checked by the tests): one irregular case recovering 25,000 yuan → 100 − 10
//! − 2 = 88, grade B; one fraud case recovering 150,000 yuan with the agreement suspended → 100 −
//! 30 − 15 − 10 = 45, grade D.
//!
//! **Notification-commitments** ([`rate_all`]): a resolved [`Commitment`] is shared like an
//! outcome; a breach deducts [`BREACH_POINTS`] (15) for three years from the day it was found,
//! a kept one is listed with 0. Example: a clean institution that breaches one → 85, grade B.
//!
//! **Personnel** ([`rate_personnel`], the same version) are rated from their qualification
//! points (the 2025 regulation's scoring, [`crate::status`]), which the federation's shared log
//! also copies into every province, so a doctor's grade follows them across provinces. A case
//! reaches a doctor through the points its decision scores them.
//!
//! 1. Start at 100.
//! 2. Each violation decided within the last three years deducts
//!    [`PERSONNEL_POINTS_FACTOR`] (4) per point it scored.
//! 3. Grades as for institutions; the grade is **D** whatever the score while the person's
//!    payment qualification is suspended, or terminated and the ban on registering again runs.
//!
//! Worked examples: one 3-point violation → 100 − 12 = 88, grade B; 6 and 2 points in one year →
//! 100 − 32 = 68, grade C; 9 points in a year suspend the qualification → 64 and grade D while
//! the suspension runs, C after it.
//!
//! **Reviewed declarations** ([`ReviewedDeclaration`], [`rate_institution`]): a month whose
//! review deducted (拒付) at least [`DEDUCTION_SHARE_PERCENT`] (10) percent of what the
//! institution declared deducts [`DEDUCTION_POINTS`] (5) for three years from the review. A
//! deduction withdrawn on contest comes out of the month's figure (the reviewing province shares
//! each new version), so a month whose contests bring it under 10% stops counting. Example: a
//! clean institution with 12,000 of 100,000 yuan deducted → 95, grade A; 8,000 → 100.
//!
//! **Pharmaceutical enterprises** ([`Party::Enterprise`], by unified social credit code) are
//! rated by the institutions' model from what names them: joint-discipline entries (grade D
//! while in force) and notification-commitments (a breach deducts 15 for three years) — the
//! price and supply commitment (信用承诺) an enterprise signs to take part in procurement.
//! Personnel commitments count the same way in a person's rating.
//!
//! **Insured persons** ([`rate_person`]) are rated only from joint-discipline entries naming the
//! keyed hash of their certificate (never the identity), which every province holds alike:
//! each entry deducts [`PERSON_DISCIPLINE_POINTS`] (30) for three years from its first day
//! unless lifted, and the grade is D while one is in force. Example: an entry for 2026 → D
//! through 2026-12-31, then 70 and grade C until three years after its first day, then A.
//!
//! **The joint incentive list** (守信联合激励, [`Incentive`]): a province's agency lists a
//! trusted institution, person or enterprise for a period, only while it is graded A. The entry
//! deducts nothing; it is in force on a day within its period on which the party is still
//! graded A, so a party that falls below A loses its incentives in every province at once, and
//! has them again when it is A again within the period. A party with an entry in force is
//! `trusted` ([`with_incentives`]); a trusted institution is left out of the target pools of
//! inspection plans (fewer routine inspections).

use medmesh_types::{Date, EnterpriseCode, InstitutionId, Money, PersonnelCode, ProvinceCode};
use serde::{Deserialize, Serialize};

use crate::cases::{check_case_id, AgreementAction, CaseError, CaseOutcome, ViolationType};
use crate::reports::check_text;

/// The version of the scoring model.
pub const MODEL_VERSION: u32 = 1;
/// Points an institution starts from.
pub const BASE: u32 = 100;
/// Years an outcome counts after its decision.
pub const TERM_YEARS: i32 = 3;
/// Yuan recovered per point deducted.
pub const YUAN_PER_POINT: i64 = 10_000;
/// Most points deducted for the money recovered by one case.
pub const MAX_RECOVERY_POINTS: u32 = 20;
/// Points deducted for a suspended agreement.
pub const SUSPENSION_POINTS: u32 = 10;
/// Lowest score of each grade: A, B, C (D below).
pub const THRESHOLDS: [u32; 3] = [90, 75, 60];

/// A credit grade, A (trusted) to D (poor).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Grade {
    /// From 90.
    A,
    /// From 75.
    B,
    /// From 60.
    C,
    /// Below 60, on the discipline list, or an agreement ended by a counted case.
    D,
}

impl Grade {
    /// The grade of a score.
    pub fn of(score: u32) -> Grade {
        match score {
            s if s >= THRESHOLDS[0] => Grade::A,
            s if s >= THRESHOLDS[1] => Grade::B,
            s if s >= THRESHOLDS[2] => Grade::C,
            _ => Grade::D,
        }
    }

    /// The letter.
    pub fn letter(self) -> &'static str {
        match self {
            Grade::A => "A",
            Grade::B => "B",
            Grade::C => "C",
            Grade::D => "D",
        }
    }
}

/// A case outcome's credit entry lifted on appeal by the province that decided the case.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lift {
    /// The deciding province.
    pub province: ProvinceCode,
    /// Its case id.
    pub case_id: String,
    /// The institution.
    pub institution: InstitutionId,
    /// Lifted from this day.
    pub lifted_on: Date,
    /// Why (published with the rating).
    pub reason: String,
}

impl Lift {
    /// Checks its fields, naming the one that fails.
    pub fn validate(&self) -> Result<(), CaseError> {
        check_case_id(&self.case_id)?;
        check_text("reason", &self.reason, true)
    }

    /// Whether it lifts `o` on `today`.
    pub fn lifts(&self, o: &CaseOutcome, today: Date) -> bool {
        self.province == o.province
            && self.case_id == o.case_id
            && self.institution == o.institution
            && self.lifted_on <= today
    }
}

/// A joint-discipline entry about the institution, as the model sees it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListedPeriod {
    /// The deciding province.
    pub province: String,
    /// The entry's id.
    pub id: String,
    /// First day in force.
    pub from: Date,
    /// Last day in force.
    pub until: Date,
    /// The first day it is no longer in force when its province lifted it early.
    pub lifted_on: Option<Date>,
}

/// What a rating entry comes from.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Source {
    /// A case outcome: deciding province and case id.
    Case {
        /// The deciding province.
        province: String,
        /// Its case id.
        case_id: String,
    },
    /// A joint-discipline entry: deciding province and entry id.
    Discipline {
        /// The deciding province.
        province: String,
        /// The entry's id.
        id: String,
    },
    /// A person's violation (qualification points): deciding province and violation id.
    Violation {
        /// The deciding province.
        province: String,
        /// The violation's id.
        id: String,
    },
    /// A person's payment qualification suspended, or terminated with its ban running.
    Qualification,
    /// A notification-commitment, kept or breached: deciding province and commitment id.
    Commitment {
        /// The deciding province.
        province: String,
        /// The commitment's id.
        id: String,
    },
    /// A reviewed monthly declaration: reviewing province and month (YYYY-MM).
    Declaration {
        /// The reviewing province.
        province: String,
        /// The month.
        period: String,
    },
    /// A joint-incentive entry: recording province and entry id.
    Incentive {
        /// The recording province.
        province: String,
        /// The entry's id.
        id: String,
    },
}

/// Who a notification-commitment or a joint-incentive entry names: a party with a public
/// registry code (never an insured person's identity).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Party {
    /// A designated institution.
    Institution(InstitutionId),
    /// A doctor, nurse or pharmacist.
    Personnel(PersonnelCode),
    /// A pharmaceutical or medical-consumables enterprise.
    Enterprise(EnterpriseCode),
}

impl Party {
    /// The API field that names this kind of party.
    pub fn field(&self) -> &'static str {
        match self {
            Party::Institution(_) => "institution_id",
            Party::Personnel(_) => "personnel_code",
            Party::Enterprise(_) => "enterprise_code",
        }
    }

    /// A storage key part, unambiguous across kinds (codes hold no '/').
    pub fn key(&self) -> String {
        match self {
            Party::Institution(i) => format!("i/{i}"),
            Party::Personnel(p) => format!("p/{p}"),
            Party::Enterprise(e) => format!("e/{e}"),
        }
    }
}

impl std::fmt::Display for Party {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Party::Institution(i) => write!(f, "institution {i}"),
            Party::Personnel(p) => write!(f, "personnel {p}"),
            Party::Enterprise(e) => write!(f, "enterprise {e}"),
        }
    }
}

/// An entry of the joint incentive list (守信联合激励): `party` is trusted from `from` through
/// `until` while it stays graded A. Recorded by one province, shared with every province.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Incentive {
    /// The recording province.
    pub province: ProvinceCode,
    /// Its id there (unique in the province).
    pub id: String,
    /// Who is trusted.
    pub party: Party,
    /// First day.
    pub from: Date,
    /// Last day.
    pub until: Date,
    /// Why (published with the entry).
    pub reason: String,
}

/// Longest period of one incentive entry, in years (it is renewed, not kept for ever).
pub const INCENTIVE_MAX_YEARS: i32 = 3;

impl Incentive {
    /// Checks the fields: an id, a reason, and a period of at most three years.
    pub fn validate(&self) -> Result<(), CaseError> {
        crate::reports::check_id("id", &self.id)?;
        check_text("reason", &self.reason, true)?;
        if self.until < self.from {
            return Err(CaseError::invalid("until", format!("{} is before from {}", self.until, self.from)));
        }
        if self.until.years_since(self.from) >= INCENTIVE_MAX_YEARS {
            return Err(CaseError::invalid(
                "until",
                format!("an entry lasts at most {INCENTIVE_MAX_YEARS} years; renew it instead"),
            ));
        }
        Ok(())
    }

    /// Within its period on `day` (whether it is in force also needs grade A).
    pub fn in_period(&self, day: Date) -> bool {
        self.from <= day && day <= self.until
    }
}

/// `r` with the party's joint-incentive entries listed (0 points each) and `trusted` set when
/// one is in force: within its period on `r.as_of`, with the grade A.
pub fn with_incentives(mut r: Rating, incentives: &[Incentive]) -> Rating {
    for i in incentives {
        let in_period = i.in_period(r.as_of);
        let counted = in_period && r.grade == Grade::A;
        let state = match (in_period, counted) {
            (true, true) => ": trusted".to_string(),
            (true, false) => format!(": suspended while the grade is {}", r.grade.letter()),
            (false, _) => ", not in force".to_string(),
        };
        r.entries.push(Entry {
            source: Source::Incentive { province: i.province.to_string(), id: i.id.clone() },
            on: i.from,
            points: 0,
            counted,
            forces_d: false,
            lifted_on: None,
            why: format!("joint incentive list {} to {}{state}; {}", i.from, i.until, i.reason),
        });
        r.trusted |= counted;
    }
    r.entries.sort_by(|a, b| b.on.cmp(&a.on).then_with(|| a.source.cmp(&b.source)));
    r
}

/// Points a joint-discipline entry deducts from an insured person, for three years from its
/// first day unless lifted.
pub const PERSON_DISCIPLINE_POINTS: u32 = 30;

/// An insured person's rating on `today` from the joint-discipline entries naming their keyed
/// hash (every province's; see the module documentation).
pub fn rate_person(listed: &[ListedPeriod], today: Date) -> Rating {
    let entries = listed
        .iter()
        .map(|l| {
            let lifted = l.lifted_on.filter(|d| *d <= today);
            let in_force = l.from <= today && today <= l.until && lifted.is_none();
            let counted = lifted.is_none() && l.from <= today && today.years_since(l.from) < TERM_YEARS;
            let points = if counted { PERSON_DISCIPLINE_POINTS } else { 0 };
            let state = match (lifted, in_force, counted) {
                (Some(d), _, _) => format!(", lifted on {d}"),
                (None, true, _) => ": grade D".to_string(),
                (None, false, true) => String::new(),
                (None, false, false) if l.from > today => ", not yet in force".to_string(),
                (None, false, false) => ", its term is over".to_string(),
            };
            Entry {
                source: Source::Discipline { province: l.province.clone(), id: l.id.clone() },
                on: l.from,
                points,
                counted,
                forces_d: in_force,
                lifted_on: lifted,
                why: format!("joint-discipline list {} to {}: {points}{state}", l.from, l.until),
            }
        })
        .collect();
    finish(entries, today)
}

/// A rating from its entries: sorted newest first (ties by source, so every province lists the
/// same order), the deductions summed, the grade forced to D by any entry that forces it.
fn finish(mut entries: Vec<Entry>, today: Date) -> Rating {
    entries.sort_by(|a, b| b.on.cmp(&a.on).then_with(|| a.source.cmp(&b.source)));
    let deducted = entries.iter().map(|e| e.points).fold(0u32, u32::saturating_add);
    let score = BASE.saturating_sub(deducted);
    let grade = if entries.iter().any(|e| e.forces_d) { Grade::D } else { Grade::of(score) };
    Rating { score, grade, as_of: today, entries, trusted: false }
}

/// Share of a declared month, in percent, whose deduction on review costs points.
pub const DEDUCTION_SHARE_PERCENT: i64 = 10;
/// Points a month deducted at or above [`DEDUCTION_SHARE_PERCENT`] costs, for three years.
pub const DEDUCTION_POINTS: u32 = 5;

/// A reviewed monthly declaration (申报) as the credit model sees it: what the institution
/// declared and what the review deducted (拒付) less what contests withdrew. The reviewing
/// province shares it when the review deducts anything, and again with each withdrawal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReviewedDeclaration {
    /// The reviewing province (the institution's).
    pub province: ProvinceCode,
    /// The institution.
    pub institution: InstitutionId,
    /// The month, YYYY-MM.
    pub period: String,
    /// Declared.
    pub declared: Money,
    /// Deducted and not withdrawn.
    pub deducted: Money,
    /// Reviewed on.
    pub reviewed_on: Date,
    /// Deductions withdrawn so far: a higher version replaces a lower one.
    pub version: u32,
}

impl ReviewedDeclaration {
    /// Checks the fields: a month written YYYY-MM, and 0 ≤ deducted ≤ declared.
    pub fn validate(&self) -> Result<(), CaseError> {
        let p = self.period.as_bytes();
        let month = self.period.get(5..).and_then(|m| m.parse::<u32>().ok());
        if p.len() != 7 || p[4] != b'-' || !p[..4].iter().all(u8::is_ascii_digit) || !matches!(month, Some(1..=12)) {
            return Err(CaseError::invalid("period", "must be a month, YYYY-MM"));
        }
        if self.deducted < Money::ZERO || self.deducted > self.declared {
            return Err(CaseError::invalid(
                "deducted",
                format!("{} is not between 0 and the declared {}", self.deducted, self.declared),
            ));
        }
        Ok(())
    }
}

/// A reviewed month's line in a rating.
pub fn declaration_entry(d: &ReviewedDeclaration, today: Date) -> Entry {
    let (deducted, declared) = (d.deducted.to_fen(), d.declared.to_fen());
    let high = deducted > 0 && deducted.saturating_mul(100) >= declared.saturating_mul(DEDUCTION_SHARE_PERCENT);
    let in_term = d.reviewed_on <= today && today.years_since(d.reviewed_on) < TERM_YEARS;
    let counted = high && in_term;
    let state = match (high, in_term) {
        (false, _) => format!("; under {DEDUCTION_SHARE_PERCENT}%"),
        (true, false) => "; its term is over".to_string(),
        (true, true) => format!(": {DEDUCTION_POINTS}"),
    };
    Entry {
        source: Source::Declaration { province: d.province.to_string(), period: d.period.clone() },
        on: d.reviewed_on,
        points: if counted { DEDUCTION_POINTS } else { 0 },
        counted,
        forces_d: false,
        lifted_on: None,
        why: format!("declaration of {}: {} of {} deducted on review{state}", d.period, d.deducted, d.declared),
    }
}

/// Points a breached notification-commitment deducts, for three years from the breach.
pub const BREACH_POINTS: u32 = 15;

/// A notification-commitment (告知承诺, issue 13.3): what an institution, a person or an
/// enterprise committed to in writing when the agency recorded it in lieu of checking first,
/// to be verified by a day; then kept, or breached with a finding. The recording province resolves it; the federation shares the
/// resolved commitment with every province, where a breach counts in the rating.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Commitment {
    /// The recording province.
    pub province: ProvinceCode,
    /// Its id there (unique in the province).
    pub id: String,
    /// Who committed.
    pub party: Party,
    /// Recorded on.
    pub made_on: Date,
    /// To be verified by this day.
    pub verify_by: Date,
    /// What it committed to (no personal data).
    pub text: String,
    /// How it was resolved; `None` while open.
    pub outcome: Option<CommitmentOutcome>,
}

/// How a commitment was resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CommitmentOutcome {
    /// Kept (true) or breached.
    pub kept: bool,
    /// Resolved on.
    pub on: Date,
    /// What verification found (required for a breach).
    pub finding: String,
}

impl Commitment {
    /// Checks the fields: an id, the text, a verification day not before the recording, and a
    /// resolution on or after the recording with a finding when breached.
    pub fn validate(&self) -> Result<(), CaseError> {
        crate::reports::check_id("id", &self.id)?;
        check_text("text", &self.text, true)?;
        if self.verify_by < self.made_on {
            return Err(CaseError::invalid("verify_by", format!("{} is before {}", self.verify_by, self.made_on)));
        }
        if let Some(o) = &self.outcome {
            check_text("finding", &o.finding, !o.kept)?;
            if o.on < self.made_on {
                return Err(CaseError::invalid("resolved_on", format!("{} is before {}", o.on, self.made_on)));
            }
        }
        Ok(())
    }

    /// Still open after its verification day.
    pub fn overdue(&self, today: Date) -> bool {
        self.outcome.is_none() && today > self.verify_by
    }
}

/// A resolved commitment's line in a rating (`None` for an open one, which counts nowhere).
pub fn commitment_entry(c: &Commitment, today: Date) -> Option<Entry> {
    let o = c.outcome.as_ref()?;
    let counted = !o.kept && o.on <= today && today.years_since(o.on) < TERM_YEARS;
    let why = match (o.kept, counted) {
        (true, _) => format!("commitment kept (verified on {})", o.on),
        (false, true) => format!("commitment breached on {}: {BREACH_POINTS}; {}", o.on, o.finding),
        (false, false) => format!("commitment breached on {}; its term is over", o.on),
    };
    Some(Entry {
        source: Source::Commitment { province: c.province.to_string(), id: c.id.clone() },
        on: o.on,
        points: if counted { BREACH_POINTS } else { 0 },
        counted,
        forces_d: false,
        lifted_on: None,
        why,
    })
}

/// One line of a rating: what it comes from and what it deducted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// Where it comes from.
    pub source: Source,
    /// The day it dates from (decision day, or the entry's first day).
    pub on: Date,
    /// Points deducted (0 once its term is over).
    pub points: u32,
    /// It counts today (within its term, or in force).
    pub counted: bool,
    /// It sets the grade to D whatever the score.
    pub forces_d: bool,
    /// Lifted on appeal (the day), if it was.
    pub lifted_on: Option<Date>,
    /// Why, in words.
    pub why: String,
}

/// An institution's rating on a day.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rating {
    /// Score, 0 to 100.
    pub score: u32,
    /// Grade.
    pub grade: Grade,
    /// The day it is for.
    pub as_of: Date,
    /// Every outcome and discipline entry seen, newest first.
    pub entries: Vec<Entry>,
    /// On the joint incentive list with an entry in force ([`with_incentives`]).
    pub trusted: bool,
}

/// Days before an agreement's last day from which a renewal warning shows.
pub const RENEWAL_WARNING_DAYS: i32 = 90;

/// The warning to heed before renewing an agreement ending on `agreement_end`: shown from
/// [`RENEWAL_WARNING_DAYS`] before its last day (and after it) when the grade is C or D.
pub fn renewal_warning(grade: Grade, score: u32, agreement_end: Date, today: Date) -> Option<String> {
    if grade < Grade::C || today < agreement_end.plus_days(-RENEWAL_WARNING_DAYS) {
        return None;
    }
    Some(format!(
        "the agreement ends on {agreement_end} and the institution's credit grade is {} (score {score}): review its record before renewing",
        grade.letter()
    ))
}

fn recovery_points(recovered: Money) -> u32 {
    let yuan = recovered.to_fen().max(0) / 100;
    u32::try_from(yuan / YUAN_PER_POINT).unwrap_or(u32::MAX).min(MAX_RECOVERY_POINTS)
}

/// The entry of one case outcome on `today`, lifted by `lift` if any.
pub fn outcome_entry(o: &CaseOutcome, lift: Option<&Lift>, today: Date) -> Entry {
    let lift = lift.filter(|l| l.lifts(o, today));
    let counted = lift.is_none() && o.decided_on <= today && today.years_since(o.decided_on) < TERM_YEARS;
    let (violation, name) = match o.violation {
        ViolationType::Irregular => (10, "irregular use of the fund"),
        ViolationType::Fraud => (30, "fraud by the institution"),
        ViolationType::InsuredFraud => (0, "fraud by an insured person (not the institution's)"),
    };
    let recovery = recovery_points(o.recovered);
    let (agreement, ended) = match o.agreement {
        AgreementAction::Keep => (0, false),
        AgreementAction::Suspend(_) => (SUSPENSION_POINTS, false),
        AgreementAction::End => (0, true),
    };
    let mut why = format!("{name}: {violation}; recovered {}: {recovery}", o.recovered);
    if agreement > 0 {
        why.push_str(&format!("; agreement suspended: {agreement}"));
    }
    if ended {
        why.push_str("; agreement ended: grade D");
    }
    match lift {
        Some(l) => why.push_str(&format!("; lifted on appeal on {}: {}", l.lifted_on, l.reason)),
        None if !counted => why.push_str("; its term is over"),
        None => {}
    }
    Entry {
        source: Source::Case { province: o.province.to_string(), case_id: o.case_id.clone() },
        on: o.decided_on,
        points: if counted { violation + recovery + agreement } else { 0 },
        counted,
        forces_d: counted && ended,
        lifted_on: lift.map(|l| l.lifted_on),
        why,
    }
}

/// Rates an institution on `today` from its case outcomes, the lifts of some of them and its
/// discipline entries (any order).
pub fn rate(outcomes: &[CaseOutcome], lifts: &[Lift], listed: &[ListedPeriod], today: Date) -> Rating {
    rate_all(outcomes, lifts, listed, &[], today)
}

/// [`rate`] with the institution's resolved notification-commitments: each breach deducts
/// [`BREACH_POINTS`] for three years; a kept one is listed with 0.
pub fn rate_all(
    outcomes: &[CaseOutcome],
    lifts: &[Lift],
    listed: &[ListedPeriod],
    commitments: &[Commitment],
    today: Date,
) -> Rating {
    rate_institution(outcomes, lifts, listed, commitments, &[], today)
}

/// [`rate_all`] with the institution's reviewed declarations: a month deducted at or above
/// [`DEDUCTION_SHARE_PERCENT`] costs [`DEDUCTION_POINTS`] for three years.
pub fn rate_institution(
    outcomes: &[CaseOutcome],
    lifts: &[Lift],
    listed: &[ListedPeriod],
    commitments: &[Commitment],
    declarations: &[ReviewedDeclaration],
    today: Date,
) -> Rating {
    let mut entries: Vec<Entry> = declarations.iter().map(|d| declaration_entry(d, today)).collect();
    entries.extend(outcomes.iter().map(|o| outcome_entry(o, lifts.iter().find(|l| l.lifts(o, today)), today)));
    entries.extend(commitments.iter().filter_map(|c| commitment_entry(c, today)));
    entries.extend(listed.iter().map(|l| {
        let lifted = l.lifted_on.filter(|d| *d <= today);
        let counted = l.from <= today && today <= l.until && lifted.is_none();
        Entry {
            source: Source::Discipline { province: l.province.clone(), id: l.id.clone() },
            on: l.from,
            points: 0,
            counted,
            forces_d: counted,
            lifted_on: lifted,
            why: format!(
                "joint-discipline list {} to {}{}",
                l.from,
                l.until,
                match lifted {
                    Some(d) => format!(", lifted on {d}"),
                    None if counted => ": grade D".to_string(),
                    None => ", not in force".to_string(),
                }
            ),
        }
    }));
    finish(entries, today)
}

/// Credit points a person loses per qualification point of a counted violation.
pub const PERSONNEL_POINTS_FACTOR: u32 = 4;

/// A person's rating on `today` from their violations (every province's; see the module
/// documentation for the model).
pub fn rate_personnel(violations: &[crate::Violation], today: Date) -> Rating {
    rate_personnel_all(violations, &[], today)
}

/// [`rate_personnel`] with the person's resolved notification-commitments (as for
/// institutions: a breach deducts [`BREACH_POINTS`] for three years).
pub fn rate_personnel_all(violations: &[crate::Violation], commitments: &[Commitment], today: Date) -> Rating {
    let mut entries: Vec<Entry> = violations
        .iter()
        .map(|v| {
            let counted = v.decided_on <= today && today.years_since(v.decided_on) < TERM_YEARS;
            let points = if counted { u32::from(v.points) * PERSONNEL_POINTS_FACTOR } else { 0 };
            let state = match () {
                () if v.decided_on > today => "; decided after the day rated",
                () if !counted => "; its term is over",
                () => "",
            };
            Entry {
                source: Source::Violation { province: v.province.to_string(), id: v.id.clone() },
                on: v.decided_on,
                points,
                counted,
                forces_d: false,
                lifted_on: None,
                why: format!("{} qualification points: {points}{state}", v.points),
            }
        })
        .collect();
    entries.extend(commitments.iter().filter_map(|c| commitment_entry(c, today)));
    // The history is validated when recorded; one that is not (mixed persons) forces nothing.
    if let Ok(view) = crate::status(violations, today) {
        let forced = match view.state {
            crate::QualificationState::Suspended { since, until } if !view.may_bill(today) => {
                Some((since, format!("payment qualification suspended from {since} until {until}: grade D")))
            }
            crate::QualificationState::Terminated { since, reregister_from, .. } if !view.may_register(today) => Some((
                since,
                format!("payment qualification terminated on {since}, no registering again before {reregister_from}: grade D"),
            )),
            _ => None,
        };
        if let Some((on, why)) = forced {
            entries.push(Entry {
                source: Source::Qualification,
                on,
                points: 0,
                counted: true,
                forces_d: true,
                lifted_on: None,
                why,
            });
        }
    }
    finish(entries, today)
}

#[cfg(test)]
mod tests {
    use medmesh_types::{InstitutionId, ProvinceCode};

    use super::*;

    fn day(s: &str) -> Date {
        Date::parse(s).unwrap()
    }

    fn outcome(id: &str, v: ViolationType, recovered: &str, agreement: AgreementAction, on: &str) -> CaseOutcome {
        CaseOutcome {
            province: ProvinceCode::new("310000").unwrap(),
            case_id: id.into(),
            institution: InstitutionId::new("H110000-01").unwrap(),
            personnel: vec![],
            violation: v,
            recovered: Money::parse_yuan(recovered).unwrap(),
            fine: Money::ZERO,
            agreement,
            department: None,
            decided_on: day(on),
            executed_on: day(on),
            reason: "r".into(),
        }
    }

    #[test]
    fn the_documented_examples_hold() {
        let today = day("2026-12-04");
        let r = rate(
            &[outcome("C-1", ViolationType::Irregular, "25000.00", AgreementAction::Keep, "2026-03-01")],
            &[],
            &[],
            today,
        );
        assert_eq!((r.score, r.grade), (88, Grade::B));
        let r = rate(
            &[outcome("C-2", ViolationType::Fraud, "150000.00", AgreementAction::Suspend(3), "2025-01-10")],
            &[],
            &[],
            today,
        );
        assert_eq!((r.score, r.grade), (45, Grade::D));
        let clean = rate(&[], &[], &[], today);
        assert_eq!((clean.score, clean.grade, clean.entries.len()), (100, Grade::A, 0));
    }

    /// Warned from 90 days before the last day (2027-03-31 less 90 days is 2026-12-31), for C
    /// and D only.
    fn violation(id: &str, points: u8, months: u8, on: &str) -> crate::Violation {
        crate::Violation {
            personnel: medmesh_types::PersonnelCode::new("D110000-01").unwrap(),
            id: id.into(),
            decided_on: day(on),
            points,
            severity: crate::Severity::new(months).unwrap(),
            province: ProvinceCode::new("440000").unwrap(),
        }
    }

    fn commitment(id: &str, kept: Option<bool>, on: &str) -> Commitment {
        Commitment {
            province: ProvinceCode::new("110000").unwrap(),
            id: id.into(),
            party: Party::Institution(InstitutionId::new("H110000-01").unwrap()),
            made_on: day("2024-01-10"),
            verify_by: day("2024-03-10"),
            text: "the pharmacy holds the licences it declared".into(),
            outcome: kept.map(|kept| CommitmentOutcome { kept, on: day(on), finding: "no licence on file".into() }),
        }
    }

    /// A breach deducts 15 for three years; kept and open commitments deduct nothing.
    #[test]
    fn a_breached_commitment_deducts_fifteen_for_three_years() {
        let today = day("2026-12-04");
        let all = [
            commitment("NC-1", Some(false), "2024-12-05"),
            commitment("NC-2", Some(true), "2024-03-01"),
            commitment("NC-3", None, ""),
        ];
        let r = rate_all(&[], &[], &[], &all, today);
        assert_eq!((r.score, r.grade, r.entries.len()), (85, Grade::B, 2), "{:?}", r.entries);
        assert_eq!(r.entries[0].points, 15);
        assert!(r.entries[0].why.contains("no licence on file"), "{}", r.entries[0].why);
        assert_eq!((r.entries[1].points, r.entries[1].counted), (0, false));
        assert_eq!(rate_all(&[], &[], &[], &all, day("2027-12-05")).score, 100, "three years after the breach");
        assert_eq!(rate_all(&[], &[], &[], &all, day("2027-12-04")).score, 85, "the last day it counts");
        let mut bad = commitment("NC-4", Some(false), "2024-02-01");
        bad.outcome.as_mut().unwrap().finding = String::new();
        assert_eq!(bad.validate().unwrap_err().field(), "finding", "a breach says what was found");
        bad.verify_by = day("2023-12-31");
        assert_eq!(bad.validate().unwrap_err().field(), "verify_by");
        assert!(commitment("NC-5", None, "").overdue(day("2024-03-11")));
        assert!(!commitment("NC-5", None, "").overdue(day("2024-03-10")));
    }

    /// The personnel examples of the module documentation, worked by hand.
    #[test]
    fn the_documented_personnel_examples_hold() {
        let today = day("2026-12-04");
        let r = rate_personnel(&[violation("V-1", 3, 1, "2026-02-01")], today);
        assert_eq!((r.score, r.grade, r.entries.len()), (88, Grade::B, 1));
        let two = [violation("V-1", 6, 1, "2026-02-01"), violation("V-2", 2, 1, "2026-05-01")];
        let r = rate_personnel(&two, today);
        assert_eq!((r.score, r.grade), (68, Grade::C));
        // 9 points on 2026-11-01 suspend for 3 months: D until 2027-02-01, then C.
        let nine = [violation("V-1", 6, 3, "2026-10-01"), violation("V-2", 3, 2, "2026-11-01")];
        let r = rate_personnel(&nine, today);
        assert_eq!((r.score, r.grade), (64, Grade::D));
        let forced = r.entries.iter().find(|e| e.forces_d).unwrap();
        assert_eq!((forced.source.clone(), forced.on), (Source::Qualification, day("2026-11-01")));
        assert!(forced.why.contains("until 2027-02-01"), "{}", forced.why);
        assert_eq!(rate_personnel(&nine, day("2027-02-01")).grade, Grade::C, "the suspension has ended");
        // Three years after, a violation stops counting; one decided later is not counted yet.
        let old = [violation("V-0", 3, 1, "2023-12-04"), violation("V-9", 3, 1, "2026-12-05")];
        let r = rate_personnel(&old, today);
        assert_eq!((r.score, r.grade), (100, Grade::A));
        assert!(r.entries.iter().all(|e| !e.counted && e.points == 0), "{:?}", r.entries);
        assert_eq!(rate_personnel(&old, day("2023-12-04")).score, 88, "the day it was decided counts");
    }

    /// 12 points at once terminate with a three-year ban: D for the ban, whatever the score.
    #[test]
    fn a_terminated_person_is_d_while_the_ban_runs() {
        let v = [violation("V-1", 12, 6, "2025-06-01")];
        let r = rate_personnel(&v, day("2026-12-04"));
        assert_eq!((r.score, r.grade), (52, Grade::D));
        assert!(r.entries.iter().any(|e| e.forces_d && e.why.contains("2028-06-01")), "{:?}", r.entries);
        let r = rate_personnel(&v, day("2028-06-01"));
        assert_eq!((r.score, r.grade), (100, Grade::A), "the ban and the term are over");
    }

    fn listed(id: &str, from: &str, until: &str, lifted: Option<&str>) -> ListedPeriod {
        ListedPeriod {
            province: "310000".into(),
            id: id.into(),
            from: day(from),
            until: day(until),
            lifted_on: lifted.map(day),
        }
    }

    /// The insured-person example of the module documentation: an entry for 2026 is D through
    /// its last day, then 100 − 30 = 70 (C) until three years after its first day, then A.
    #[test]
    fn the_documented_insured_person_example_holds() {
        let l = [listed("P-1", "2026-01-01", "2026-12-31", None)];
        let at = |d: &str| {
            let r = rate_person(&l, day(d));
            (r.score, r.grade)
        };
        assert_eq!(at("2025-12-31"), (100, Grade::A), "not yet in force");
        assert_eq!(at("2026-01-01"), (70, Grade::D));
        assert_eq!(at("2026-12-31"), (70, Grade::D), "the last day in force");
        assert_eq!(at("2027-01-01"), (70, Grade::C));
        assert_eq!(at("2028-12-31"), (70, Grade::C), "the last day it counts");
        assert_eq!(at("2029-01-01"), (100, Grade::A));
        // Two entries within three years, neither in force: 40, D by the score.
        let two = [listed("P-1", "2025-03-01", "2025-05-31", None), listed("P-2", "2026-06-01", "2026-06-30", None)];
        assert_eq!(
            (rate_person(&two, day("2026-12-04")).score, rate_person(&two, day("2026-12-04")).grade),
            (40, Grade::D)
        );
        // A lift stops both the D and the deduction from its day; the entry stays listed.
        let lifted = [listed("P-1", "2026-01-01", "2026-12-31", Some("2026-03-01"))];
        assert_eq!(rate_person(&lifted, day("2026-02-28")).grade, Grade::D);
        let r = rate_person(&lifted, day("2026-03-01"));
        assert_eq!((r.score, r.grade, r.entries.len()), (100, Grade::A, 1));
        assert!(r.entries[0].why.contains("lifted on 2026-03-01"), "{}", r.entries[0].why);
    }

    fn incentive(id: &str, party: Party, from: &str, until: &str) -> Incentive {
        Incentive {
            province: ProvinceCode::new("110000").unwrap(),
            id: id.into(),
            party,
            from: day(from),
            until: day(until),
            reason: "A for three years running".into(),
        }
    }

    /// An incentive entry makes a party trusted within its period while the grade is A, and
    /// is listed (suspended) but not trusted when the grade falls.
    #[test]
    fn incentives_hold_only_with_grade_a_within_their_period() {
        let inst = Party::Institution(InstitutionId::new("H110000-01").unwrap());
        let i = [incentive("JI-1", inst.clone(), "2026-01-01", "2027-12-31")];
        let clean = with_incentives(rate(&[], &[], &[], day("2026-12-04")), &i);
        assert!(clean.trusted);
        assert_eq!((clean.score, clean.entries.len(), clean.entries[0].points), (100, 1, 0));
        assert!(clean.entries[0].why.contains(": trusted"), "{}", clean.entries[0].why);
        let before = with_incentives(rate(&[], &[], &[], day("2025-12-31")), &i);
        assert!(!before.trusted && before.entries[0].why.contains("not in force"));
        // A breached commitment (85, B) suspends it.
        let breached = [commitment("NC-1", Some(false), "2026-06-01")];
        let b = with_incentives(rate_all(&[], &[], &[], &breached, day("2026-12-04")), &i);
        assert_eq!((b.score, b.grade, b.trusted), (85, Grade::B, false));
        let e = b.entries.iter().find(|e| matches!(e.source, Source::Incentive { .. })).unwrap();
        assert!(!e.counted && e.why.contains("suspended while the grade is B"), "{}", e.why);
        // Fields: a period of at most three years, a reason, an id.
        assert_eq!(i[0].validate(), Ok(()));
        let long = incentive("JI-2", inst.clone(), "2026-01-01", "2029-01-01");
        assert_eq!(long.validate().unwrap_err().field(), "until");
        assert_eq!(incentive("JI-3", inst.clone(), "2026-01-01", "2028-12-31").validate(), Ok(()), "the longest");
        assert_eq!(
            incentive("JI-4", inst.clone(), "2026-01-02", "2026-01-01").validate().unwrap_err().field(),
            "until"
        );
        assert_eq!(Incentive { reason: String::new(), ..i[0].clone() }.validate().unwrap_err().field(), "reason");
        assert_eq!(Incentive { id: "a/b".into(), ..i[0].clone() }.validate().unwrap_err().field(), "id");
    }

    /// An enterprise is rated by the institutions' model: a breached commitment 85 (B), a
    /// discipline entry in force D; a person's breached commitment counts in their rating.
    #[test]
    fn enterprises_and_personnel_count_their_commitments() {
        let ent = Party::Enterprise(EnterpriseCode::new("91110000710925462X").unwrap());
        let c = Commitment { party: ent.clone(), ..commitment("NC-9", Some(false), "2026-06-01") };
        let r = rate_all(&[], &[], &[], std::slice::from_ref(&c), day("2026-12-04"));
        assert_eq!((r.score, r.grade), (85, Grade::B));
        let d = [listed("E-1", "2026-11-01", "2027-10-31", None)];
        assert_eq!(rate_all(&[], &[], &d, std::slice::from_ref(&c), day("2026-12-04")).grade, Grade::D);
        let v = [violation("V-1", 3, 1, "2026-02-01")];
        let r = rate_personnel_all(&v, std::slice::from_ref(&c), day("2026-12-04"));
        assert_eq!((r.score, r.grade), (100 - 12 - 15, Grade::C));
        assert_eq!(ent.field(), "enterprise_code");
        assert_eq!(ent.key(), "e/91110000710925462X");
    }

    fn reviewed(declared: &str, deducted: &str, on: &str) -> ReviewedDeclaration {
        ReviewedDeclaration {
            province: ProvinceCode::new("110000").unwrap(),
            institution: InstitutionId::new("H110000-01").unwrap(),
            period: "2026-10".into(),
            declared: Money::parse_yuan(declared).unwrap(),
            deducted: Money::parse_yuan(deducted).unwrap(),
            reviewed_on: day(on),
            version: 0,
        }
    }

    /// The documented example: 12,000 of 100,000 deducted → 95 (A); 8,000 → 100; exactly 10%
    /// counts; three years after the review it no longer does.
    #[test]
    fn a_month_deducted_ten_percent_or_more_costs_five_points() {
        let today = day("2026-12-04");
        let score = |d: ReviewedDeclaration| rate_institution(&[], &[], &[], &[], &[d], today).score;
        assert_eq!(score(reviewed("100000.00", "12000.00", "2026-11-20")), 95);
        assert_eq!(score(reviewed("100000.00", "8000.00", "2026-11-20")), 100);
        assert_eq!(score(reviewed("100000.00", "10000.00", "2026-11-20")), 95, "10% counts");
        assert_eq!(score(reviewed("100000.00", "9999.99", "2026-11-20")), 100);
        assert_eq!(score(reviewed("0.00", "0.00", "2026-11-20")), 100, "nothing declared, nothing deducted");
        assert_eq!(score(reviewed("100000.00", "50000.00", "2023-12-04")), 100, "three years on");
        assert_eq!(score(reviewed("100000.00", "50000.00", "2023-12-05")), 95, "the last day it counts");
        let r = rate_institution(&[], &[], &[], &[], &[reviewed("100000.00", "12000.00", "2026-11-20")], today);
        assert!(r.entries[0].why.contains("12000.00 of 100000.00"), "{}", r.entries[0].why);
        assert_eq!(reviewed("100.00", "100.01", "2026-11-20").validate().unwrap_err().field(), "deducted");
        let bad = ReviewedDeclaration { period: "2026-13".into(), ..reviewed("1.00", "0.00", "2026-11-20") };
        assert_eq!(bad.validate().unwrap_err().field(), "period");
        assert_eq!(reviewed("100.00", "100.00", "2026-11-20").validate(), Ok(()));
    }

    #[test]
    fn renewal_warnings_show_for_c_and_d_near_the_end() {
        let end = day("2027-03-31");
        assert_eq!(renewal_warning(Grade::C, 70, end, day("2026-12-30")), None, "91 days before");
        let w = renewal_warning(Grade::C, 70, end, day("2026-12-31")).unwrap();
        assert!(w.contains("2027-03-31") && w.contains("grade is C (score 70)"), "{w}");
        assert!(renewal_warning(Grade::D, 10, end, day("2027-05-01")).is_some(), "after the end too");
        assert_eq!(renewal_warning(Grade::B, 80, end, day("2027-03-30")), None);
    }

    #[test]
    fn thresholds_are_inclusive() {
        assert_eq!(
            [Grade::of(90), Grade::of(89), Grade::of(75), Grade::of(74)],
            [Grade::A, Grade::B, Grade::B, Grade::C]
        );
        assert_eq!([Grade::of(60), Grade::of(59), Grade::of(0)], [Grade::C, Grade::D, Grade::D]);
    }

    #[test]
    fn recovery_points_count_full_ten_thousands_up_to_twenty() {
        let pts = |m: &str| recovery_points(Money::parse_yuan(m).unwrap());
        assert_eq!([pts("9999.99"), pts("10000.00"), pts("29999.99"), pts("5000000.00")], [0, 1, 2, 20]);
    }

    /// An outcome counts for three whole years to the day, then stays listed with 0 points.
    #[test]
    fn outcomes_age_out_after_three_years() {
        let o = [outcome("C-3", ViolationType::Fraud, "0.00", AgreementAction::End, "2023-12-05")];
        let before = rate(&o, &[], &[], day("2026-12-04"));
        assert_eq!((before.score, before.grade), (70, Grade::D), "ended agreement forces D");
        let after = rate(&o, &[], &[], day("2026-12-05"));
        assert_eq!((after.score, after.grade), (100, Grade::A));
        assert!(!after.entries[0].counted && after.entries[0].points == 0);
        assert!(after.entries[0].why.contains("term is over"));
    }

    /// A lift by the deciding province counts from its day; another province's or another
    /// case's lift changes nothing; the entry stays listed.
    #[test]
    fn a_lift_on_appeal_stops_the_outcome_counting() {
        let o = [outcome("C-5", ViolationType::Fraud, "0.00", AgreementAction::End, "2026-06-01")];
        let lift = Lift {
            province: ProvinceCode::new("310000").unwrap(),
            case_id: "C-5".into(),
            institution: InstitutionId::new("H110000-01").unwrap(),
            lifted_on: day("2026-12-01"),
            reason: "the court annulled the decision".into(),
        };
        assert_eq!(lift.validate(), Ok(()));
        assert_eq!(rate(&o, std::slice::from_ref(&lift), &[], day("2026-11-30")).grade, Grade::D, "before the lift");
        let r = rate(&o, std::slice::from_ref(&lift), &[], day("2026-12-01"));
        assert_eq!((r.score, r.grade, r.entries.len()), (100, Grade::A, 1));
        assert!(!r.entries[0].counted && r.entries[0].why.contains("lifted on appeal on 2026-12-01"));
        let elsewhere = Lift { province: ProvinceCode::new("440000").unwrap(), ..lift.clone() };
        assert_eq!(rate(&o, &[elsewhere], &[], day("2026-12-04")).grade, Grade::D);
        let other_case = Lift { case_id: "C-6".into(), ..lift.clone() };
        assert_eq!(rate(&o, &[other_case], &[], day("2026-12-04")).grade, Grade::D);
        assert_eq!(Lift { reason: " ".into(), ..lift }.validate().unwrap_err().field(), "reason");
    }

    #[test]
    fn the_discipline_list_forces_d_while_in_force() {
        let l = [ListedPeriod {
            province: "310000".into(),
            id: "D-1".into(),
            from: day("2026-11-01"),
            until: day("2026-12-31"),
            lifted_on: None,
        }];
        assert_eq!(rate(&[], &[], &l, day("2026-12-31")).grade, Grade::D);
        let after = rate(&[], &[], &l, day("2027-01-01"));
        assert_eq!((after.score, after.grade), (100, Grade::A));
        assert_eq!(after.entries.len(), 1, "history kept");
        assert_eq!(rate(&[], &[], &l, day("2026-10-31")).grade, Grade::A, "not yet in force");
    }

    #[test]
    fn a_lifted_discipline_entry_stops_forcing_d_from_its_lift() {
        let l = [ListedPeriod {
            province: "310000".into(),
            id: "D-1".into(),
            from: day("2026-11-01"),
            until: day("2026-12-31"),
            lifted_on: Some(day("2026-12-10")),
        }];
        assert_eq!(rate(&[], &[], &l, day("2026-12-09")).grade, Grade::D, "in force the day before the lift");
        let after = rate(&[], &[], &l, day("2026-12-10"));
        assert_eq!((after.score, after.grade), (100, Grade::A));
        assert_eq!(after.entries[0].lifted_on, Some(day("2026-12-10")), "history kept, with the lift");
        assert!(after.entries[0].why.contains("lifted on 2026-12-10"), "{}", after.entries[0].why);
    }

    #[test]
    fn insured_fraud_lists_but_deducts_only_its_recovery() {
        let o = [outcome("C-4", ViolationType::InsuredFraud, "12000.00", AgreementAction::Keep, "2026-06-01")];
        let r = rate(&o, &[], &[], day("2026-12-04"));
        assert_eq!((r.score, r.entries[0].points), (99, 1));
    }

    #[test]
    fn many_cases_floor_at_zero_and_the_order_is_newest_first() {
        let o: Vec<_> = (0..6)
            .map(|i| {
                outcome(
                    &format!("C-{i}"),
                    ViolationType::Fraud,
                    "300000.00",
                    AgreementAction::Keep,
                    &format!("2026-0{}-01", i + 1),
                )
            })
            .collect();
        let r = rate(&o, &[], &[], day("2026-12-04"));
        assert_eq!((r.score, r.grade), (0, Grade::D));
        let days: Vec<_> = r.entries.iter().map(|e| e.on).collect();
        let mut sorted = days.clone();
        sorted.sort_by(|a, b| b.cmp(a));
        assert_eq!(days, sorted);
    }
}
