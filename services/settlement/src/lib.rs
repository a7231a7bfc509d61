//! Pure settlement maths for medmesh.
//!
//! `settle(claim, catalogue, policy, accumulators) -> Split`: per-line classification
//! (class A/B/C, over the price ceiling, restriction breaches), then the deductible, the
//! reimbursement ratio, the annual cap and the critical-illness tier, with per-person
//! calendar-year accumulators, then the individual account and cash.
//!
//! This crate does no IO and must never depend on tokio, tonic, prost, rocksdb or openraft.
//! Money is [`Money`]; every intermediate product is brought to the fen by
//! [`Money::round_fen`] (half away from zero), the one rounding rule of the system.
//!
//! The invariants the property tests hold this crate to:
//! - `total = fully_self_paid + over_ceiling + pre_self_pay + in_policy`, to the fen;
//! - `total = pooling_fund + critical_illness + individual_account + cash`, to the fen;
//! - accumulators never pass the annual cap or the critical-illness cap;
//! - [`Accumulators::reverse`] restores the accumulators exactly;
//! - the same input always gives the same output.
#![forbid(unsafe_code)]

use std::collections::BTreeMap;

use medmesh_types::{Date, ItemCode, Money, Ratio, Serial};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

#[cfg(test)]
mod tests;

/// Catalogue class of an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum ItemClass {
    /// 甲类: fully in policy.
    A,
    /// 乙类: in policy after a self-pay share.
    B,
    /// 丙类: fully self-paid.
    C,
}

/// Sex, as registered and as restricted by the catalogue.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Sex {
    /// Female.
    Female,
    /// Male.
    Male,
}

/// Insurance type of the insured person.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum InsuranceType {
    /// Basic medical insurance for employees (职工医保).
    Employee,
    /// Basic medical insurance for urban and rural residents (居民医保).
    Resident,
}

/// Restrictions on an item's use; a breach makes the line fully self-paid.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Restrictions {
    /// Only for patients of this sex.
    pub sex: Option<Sex>,
    /// Minimum age in whole years (inclusive).
    pub min_age: Option<u32>,
    /// Maximum age in whole years (inclusive).
    pub max_age: Option<u32>,
    /// Maximum quantity per day of care.
    pub max_quantity_per_day: Option<Decimal>,
    /// Minimum institution level (1 = primary, 2 = secondary, 3 = tertiary).
    pub min_institution_level: Option<u8>,
}

/// One catalogue entry of the treatment place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CatalogueItem {
    /// National code.
    pub code: ItemCode,
    /// Name, for documents.
    pub name: String,
    /// Class A, B or C.
    pub class: ItemClass,
    /// Highest unit price the fund recognises; the part above is self-paid.
    pub price_ceiling: Option<Money>,
    /// For class B: the share the person pays before the policy applies.
    pub self_pay_share: Ratio,
    /// Restrictions of use.
    pub restrictions: Restrictions,
}

/// The critical-illness (大病保险) tier that pays above the annual cap.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CriticalIllnessTier {
    /// Share of the eligible amount above the cap that the tier pays.
    pub ratio: Ratio,
    /// Most the tier pays a person in a calendar year.
    pub annual_cap: Money,
}

/// Medical assistance (医疗救助): the third payer, for persons the province entitles (by civil
/// affairs' identification: the extremely poor, subsistence-allowance recipients, those at risk
/// of returning to poverty). It pays a share of the in-policy expense the person still bears
/// after the pooling fund and the critical-illness tier, from its own fund.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AssistancePolicy {
    /// Share of that remaining in-policy burden the assistance fund pays (zero: none).
    pub ratio: Ratio,
    /// Most assistance pays a person in a calendar year.
    pub annual_cap: Money,
}

/// The insured place's policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Policy {
    /// Deductible (起付线) per person per calendar year.
    pub deductible: Money,
    /// Reimbursement ratio by (insurance type, institution level).
    pub ratios: BTreeMap<(InsuranceType, u8), Ratio>,
    /// Most the pooling fund pays a person in a calendar year (封顶线).
    pub annual_cap: Money,
    /// The critical-illness tier above the cap.
    pub critical_illness: CriticalIllnessTier,
    /// Reduction of the ratio for temporary non-local visitors who are not referred.
    pub temporary_visitor_reduction: Ratio,
    /// Medical assistance for entitled persons.
    pub assistance: AssistancePolicy,
}

impl Policy {
    /// The ratio for an insurance type and institution level, if the policy defines it.
    pub fn ratio(&self, insurance: InsuranceType, level: u8) -> Option<Ratio> {
        self.ratios.get(&(insurance, level)).copied()
    }
}

/// What a person has used of this year's policy (per person, per calendar year).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accumulators {
    /// Deductible already met.
    pub deductible_used: Money,
    /// Pooling fund paid so far.
    pub pooling_paid: Money,
    /// Critical-illness tier paid so far.
    pub critical_illness_paid: Money,
    /// In-policy expense so far.
    pub in_policy_total: Money,
    /// Medical assistance paid so far.
    pub assistance_paid: Money,
}

impl Accumulators {
    /// The accumulators after a settlement.
    pub fn apply(self, split: &Split) -> Accumulators {
        Accumulators {
            deductible_used: self.deductible_used + split.deductible_applied,
            pooling_paid: self.pooling_paid + split.pooling_fund,
            critical_illness_paid: self.critical_illness_paid + split.critical_illness,
            in_policy_total: self.in_policy_total + split.in_policy,
            assistance_paid: self.assistance_paid + split.medical_assistance,
        }
    }

    /// The accumulators after a settlement is reversed: exactly what it added is taken away.
    pub fn reverse(self, split: &Split) -> Accumulators {
        Accumulators {
            deductible_used: self.deductible_used - split.deductible_applied,
            pooling_paid: self.pooling_paid - split.pooling_fund,
            critical_illness_paid: self.critical_illness_paid - split.critical_illness,
            in_policy_total: self.in_policy_total - split.in_policy,
            assistance_paid: self.assistance_paid - split.medical_assistance,
        }
    }
}

/// One uploaded fee line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FeeLine {
    /// The institution's serial for this line (unique within the visit).
    pub serial: Serial,
    /// National code.
    pub code: ItemCode,
    /// Quantity (positive, at most 4 decimals).
    pub quantity: Decimal,
    /// Unit price.
    pub unit_price: Money,
    /// Day of care the line belongs to.
    pub date: Date,
}

/// The patient facts settlement needs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Patient {
    /// Sex.
    pub sex: Sex,
    /// Age in whole years on the day of care.
    pub age: u32,
    /// Insurance type.
    pub insurance: InsuranceType,
    /// Balance of the individual account.
    pub account_balance: Money,
    /// Entitled to medical assistance ([`AssistancePolicy`]) for this claim.
    pub medical_assistance: bool,
}

/// A claim to settle.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Claim {
    /// The patient.
    pub patient: Patient,
    /// Level of the treating institution (1–3).
    pub institution_level: u8,
    /// Temporary non-local visitor who was not referred: the policy's reduction applies.
    pub reduced_ratio: bool,
    /// Pay the person's share from the individual account first.
    pub use_individual_account: bool,
    /// Fee lines.
    pub lines: Vec<FeeLine>,
    /// Lines a monitoring rule moved to the patient's own share, by serial, with the rule's id
    /// (a catalogue restriction, checked first, takes precedence as the reason).
    #[serde(default)]
    pub rule_self_pay: BTreeMap<Serial, String>,
    /// What the medical-assistance fund holds now: assistance never pays more (a fund with
    /// nothing in it pays nothing; the person's share is paid as usual).
    pub assistance_fund: Money,
}

/// Why a line was made fully self-paid.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum SelfPayReason {
    /// Class C.
    ClassC,
    /// The item is restricted to the other sex.
    SexRestriction,
    /// The patient's age is outside the item's range.
    AgeRestriction,
    /// The institution's level is below the item's minimum.
    InstitutionLevelRestriction,
    /// The day's quantity of the item is above its maximum.
    QuantityRestriction,
    /// A monitoring rule ([`LineSplit::rule`]) moved the line to the patient's own share.
    MonitoringRule,
}

/// The split of one fee line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineSplit {
    /// The line's serial.
    pub serial: Serial,
    /// National code.
    pub code: ItemCode,
    /// Class.
    pub class: ItemClass,
    /// quantity × unit price, to the fen.
    pub amount: Money,
    /// Fully self-paid part (class C or a restriction breach).
    pub fully_self_paid: Money,
    /// Part over the price ceiling.
    pub over_ceiling: Money,
    /// Class B self-pay share.
    pub pre_self_pay: Money,
    /// In-policy part.
    pub in_policy: Money,
    /// Why the line was fully self-paid, if it was.
    pub self_pay_reason: Option<SelfPayReason>,
    /// The monitoring rule, when that is the reason.
    pub rule: Option<String>,
}

/// The result of settlement: every part of the split.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Split {
    /// Total of all lines.
    pub total: Money,
    /// Fully self-paid (class C and restriction breaches).
    pub fully_self_paid: Money,
    /// Over the price ceiling.
    pub over_ceiling: Money,
    /// Class B self-pay share.
    pub pre_self_pay: Money,
    /// In-policy amount.
    pub in_policy: Money,
    /// Deductible met by this claim.
    pub deductible_applied: Money,
    /// Paid by the pooling fund.
    pub pooling_fund: Money,
    /// Paid by the critical-illness tier.
    pub critical_illness: Money,
    /// Paid by medical assistance (the third payer).
    pub medical_assistance: Money,
    /// Paid from the individual account.
    pub individual_account: Money,
    /// Paid in cash by the person.
    pub cash: Money,
    /// The ratio that was applied.
    pub ratio: Ratio,
    /// Per-line detail.
    pub lines: Vec<LineSplit>,
}

impl Split {
    /// What the funds pay (pooling + critical illness + medical assistance).
    pub fn fund_total(&self) -> Money {
        self.pooling_fund + self.critical_illness + self.medical_assistance
    }

    /// What the person pays (individual account + cash).
    pub fn person_total(&self) -> Money {
        self.individual_account + self.cash
    }

    /// Checks a split that arrived from elsewhere (another province's reservation) before it
    /// moves money here: every part within `0 ..= MAX_CLAIM_TOTAL`, the parts adding up to the
    /// total both ways (by category and by payer), and the lines adding up to the total.
    /// Returns the first part at fault, as a field path, and why.
    pub fn check(&self) -> Result<(), (String, String)> {
        let parts = [
            ("total", self.total),
            ("fully_self_paid", self.fully_self_paid),
            ("over_ceiling", self.over_ceiling),
            ("pre_self_pay", self.pre_self_pay),
            ("in_policy", self.in_policy),
            ("deductible_applied", self.deductible_applied),
            ("pooling_fund", self.pooling_fund),
            ("critical_illness", self.critical_illness),
            ("medical_assistance", self.medical_assistance),
            ("individual_account", self.individual_account),
            ("cash", self.cash),
        ];
        for (field, m) in parts {
            if m.is_negative() || m > max_claim_total() {
                return Err((format!("split.{field}"), format!("{m} is outside 0 to {}", max_claim_total())));
            }
        }
        if self.fully_self_paid + self.over_ceiling + self.pre_self_pay + self.in_policy != self.total {
            return Err(("split.total".into(), "is not the sum of its categories".into()));
        }
        if self.fund_total() + self.person_total() != self.total {
            return Err(("split.total".into(), "is not the sum of what the funds and the person pay".into()));
        }
        if self.deductible_applied > self.in_policy {
            return Err(("split.deductible_applied".into(), "is above the in-policy amount".into()));
        }
        if self.lines.is_empty() || self.lines.len() > MAX_LINES {
            return Err(("split.lines".into(), format!("must hold 1 to {MAX_LINES} lines")));
        }
        let mut sum = Money::ZERO;
        for (i, l) in self.lines.iter().enumerate() {
            for m in [l.amount, l.fully_self_paid, l.over_ceiling, l.pre_self_pay, l.in_policy] {
                if m.is_negative() || m > max_line_amount() {
                    return Err((format!("split.lines[{i}]"), format!("{m} is outside 0 to {}", max_line_amount())));
                }
            }
            if l.fully_self_paid + l.over_ceiling + l.pre_self_pay + l.in_policy != l.amount {
                return Err((format!("split.lines[{i}].amount"), "is not the sum of its categories".into()));
            }
            sum += l.amount;
        }
        if sum != self.total {
            return Err(("split.lines".into(), "do not add up to the total".into()));
        }
        Ok(())
    }
}

/// Largest amount of one fee line (quantity × unit price), in fen: ten million yuan.
pub const MAX_LINE_AMOUNT_FEN: i64 = 1_000_000_000;
/// Largest total of one claim (all its lines), in fen: one hundred million yuan.
pub const MAX_CLAIM_TOTAL_FEN: i64 = 10_000_000_000;

/// [`MAX_LINE_AMOUNT_FEN`] as money.
pub fn max_line_amount() -> Money {
    Money::from_fen(MAX_LINE_AMOUNT_FEN)
}

/// [`MAX_CLAIM_TOTAL_FEN`] as money.
pub fn max_claim_total() -> Money {
    Money::from_fen(MAX_CLAIM_TOTAL_FEN)
}

impl FeeLine {
    /// The line's amount, quantity × unit price rounded to the fen, or `None` when it is above
    /// [`MAX_LINE_AMOUNT_FEN`] (or the unit price is negative).
    pub fn amount(&self) -> Option<Money> {
        if self.unit_price.is_negative()
            || self.unit_price > max_line_amount()
            || self.quantity > Decimal::from(MAX_QUANTITY)
        {
            return None;
        }
        let a = Money::round_fen(self.unit_price.as_decimal() * self.quantity);
        (a <= max_line_amount()).then_some(a)
    }
}

/// Largest quantity of one fee line.
pub const MAX_QUANTITY: i64 = 100_000;

/// Checks the quantities and amounts of a claim's lines: each quantity positive, at most
/// [`MAX_QUANTITY`] with at most 4 decimals; each amount within [`MAX_LINE_AMOUNT_FEN`]; all
/// together within [`MAX_CLAIM_TOTAL_FEN`]. Returns the claim's total.
pub fn check_amounts(lines: &[FeeLine]) -> Result<Money, SettleError> {
    let mut total = Money::ZERO;
    for (index, line) in lines.iter().enumerate() {
        let q = line.quantity;
        if q <= Decimal::ZERO || q.normalize().scale() > 4 || q > Decimal::from(MAX_QUANTITY) {
            return Err(SettleError::BadQuantity { index });
        }
        total += line.amount().ok_or(SettleError::LineTooLarge { index })?;
    }
    if total > max_claim_total() {
        return Err(SettleError::ClaimTooLarge);
    }
    Ok(total)
}

/// Why a claim could not be settled.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SettleError {
    /// A line's code is not in the treatment place's catalogue.
    #[error("lines[{index}].code: {code} is not in the catalogue")]
    UnknownItem {
        /// Index of the line.
        index: usize,
        /// The code.
        code: ItemCode,
    },
    /// A line's quantity is zero, negative, above 100000 or finer than 4 decimals.
    #[error("lines[{index}].quantity: must be positive, at most 100000, with at most 4 decimals")]
    BadQuantity {
        /// Index of the line.
        index: usize,
    },
    /// Two lines share a serial.
    #[error("lines[{index}].serial: {serial} appears twice")]
    DuplicateLine {
        /// Index of the second line.
        index: usize,
        /// The serial.
        serial: Serial,
    },
    /// The claim has no lines.
    #[error("lines: a claim needs at least one fee line")]
    NoLines,
    /// A line's amount (quantity × unit price) is negative or above the line limit.
    #[error("lines[{index}].unit_price: quantity × unit price must be within 0 to 10000000.00 yuan")]
    LineTooLarge {
        /// Index of the line.
        index: usize,
    },
    /// The claim's lines add up to more than the claim limit.
    #[error("lines: the claim's total is above the limit of 100000000.00 yuan")]
    ClaimTooLarge,
    /// The policy has no ratio for this insurance type and level.
    #[error("policy has no ratio for {insurance:?} at institution level {level}")]
    NoRatio {
        /// Insurance type.
        insurance: InsuranceType,
        /// Institution level.
        level: u8,
    },
}

/// Most fee lines in one claim.
pub const MAX_LINES: usize = 2_000;

/// Settles a claim. Pure: the same input always gives the same output.
pub fn settle<'a>(
    claim: &Claim,
    catalogue: impl Fn(&ItemCode) -> Option<&'a CatalogueItem>,
    policy: &Policy,
    acc: &Accumulators,
) -> Result<Split, SettleError> {
    if claim.lines.is_empty() {
        return Err(SettleError::NoLines);
    }
    check_amounts(&claim.lines)?;
    let mut seen = std::collections::BTreeSet::new();
    let mut per_day_qty: BTreeMap<(&ItemCode, Date), Decimal> = BTreeMap::new();
    for (index, line) in claim.lines.iter().enumerate() {
        if !seen.insert(&line.serial) {
            return Err(SettleError::DuplicateLine { index, serial: line.serial.clone() });
        }
        *per_day_qty.entry((&line.code, line.date)).or_default() += line.quantity;
    }

    let mut lines = Vec::with_capacity(claim.lines.len());
    for (index, line) in claim.lines.iter().enumerate() {
        let item = catalogue(&line.code).ok_or_else(|| SettleError::UnknownItem { index, code: line.code.clone() })?;
        let day_qty = per_day_qty.get(&(&line.code, line.date)).copied().unwrap_or_default();
        lines.push(split_line(line, item, claim, day_qty));
    }

    let total: Money = lines.iter().map(|l| l.amount).sum();
    let fully_self_paid: Money = lines.iter().map(|l| l.fully_self_paid).sum();
    let over_ceiling: Money = lines.iter().map(|l| l.over_ceiling).sum();
    let pre_self_pay: Money = lines.iter().map(|l| l.pre_self_pay).sum();
    let in_policy: Money = lines.iter().map(|l| l.in_policy).sum();

    let level = claim.institution_level;
    let insurance = claim.patient.insurance;
    let base_ratio = policy.ratio(insurance, level).ok_or(SettleError::NoRatio { insurance, level })?;
    let ratio =
        if claim.reduced_ratio { base_ratio.reduced_by(policy.temporary_visitor_reduction) } else { base_ratio };

    let deductible_left = policy.deductible.saturating_sub(acc.deductible_used);
    let deductible_applied = in_policy.min(deductible_left);
    let eligible = in_policy - deductible_applied;

    let pooling_raw = eligible.times(ratio);
    let cap_left = policy.annual_cap.saturating_sub(acc.pooling_paid);
    let pooling_fund = pooling_raw.min(cap_left);

    // The part of the eligible amount that the cap kept the pooling fund from covering.
    let eligible_over_cap = if pooling_fund == pooling_raw || ratio == Ratio::ZERO {
        Money::ZERO
    } else {
        let covered = Money::round_fen(pooling_fund.as_decimal() / ratio.as_decimal()).min(eligible);
        eligible - covered
    };
    let ci_left = policy.critical_illness.annual_cap.saturating_sub(acc.critical_illness_paid);
    let critical_illness = eligible_over_cap.times(policy.critical_illness.ratio).min(ci_left);

    // Medical assistance: a share of the in-policy expense the person still bears (the
    // deductible, the co-payment and what is above both caps), within its annual cap and what
    // its fund holds.
    let medical_assistance = if claim.patient.medical_assistance {
        let burden = in_policy - pooling_fund - critical_illness;
        let left = policy.assistance.annual_cap.saturating_sub(acc.assistance_paid);
        burden.times(policy.assistance.ratio).min(left).min(claim.assistance_fund.max(Money::ZERO))
    } else {
        Money::ZERO
    };

    let person_share = total - pooling_fund - critical_illness - medical_assistance;
    let individual_account =
        if claim.use_individual_account { person_share.min(claim.patient.account_balance) } else { Money::ZERO };
    let cash = person_share - individual_account;

    Ok(Split {
        total,
        fully_self_paid,
        over_ceiling,
        pre_self_pay,
        in_policy,
        deductible_applied,
        pooling_fund,
        critical_illness,
        medical_assistance,
        individual_account,
        cash,
        ratio,
        lines,
    })
}

fn split_line(line: &FeeLine, item: &CatalogueItem, claim: &Claim, day_qty: Decimal) -> LineSplit {
    let amount = Money::round_fen(line.unit_price.as_decimal() * line.quantity);
    let r = &item.restrictions;
    let p = &claim.patient;
    let reason = if item.class == ItemClass::C {
        Some(SelfPayReason::ClassC)
    } else if r.sex.is_some_and(|s| s != p.sex) {
        Some(SelfPayReason::SexRestriction)
    } else if r.min_age.is_some_and(|a| p.age < a) || r.max_age.is_some_and(|a| p.age > a) {
        Some(SelfPayReason::AgeRestriction)
    } else if r.min_institution_level.is_some_and(|l| claim.institution_level < l) {
        Some(SelfPayReason::InstitutionLevelRestriction)
    } else if r.max_quantity_per_day.is_some_and(|q| day_qty > q) {
        Some(SelfPayReason::QuantityRestriction)
    } else if claim.rule_self_pay.contains_key(&line.serial) {
        Some(SelfPayReason::MonitoringRule)
    } else {
        None
    };
    let mut out = LineSplit {
        serial: line.serial.clone(),
        code: line.code.clone(),
        class: item.class,
        amount,
        fully_self_paid: Money::ZERO,
        over_ceiling: Money::ZERO,
        pre_self_pay: Money::ZERO,
        in_policy: Money::ZERO,
        self_pay_reason: reason,
        rule: match reason {
            Some(SelfPayReason::MonitoringRule) => claim.rule_self_pay.get(&line.serial).cloned(),
            _ => None,
        },
    };
    if reason.is_some() {
        out.fully_self_paid = amount;
        return out;
    }
    let over = match item.price_ceiling {
        Some(ceiling) if line.unit_price > ceiling => {
            Money::round_fen((line.unit_price - ceiling).as_decimal() * line.quantity).min(amount)
        }
        _ => Money::ZERO,
    };
    let allowed = amount - over;
    let pre = if item.class == ItemClass::B { allowed.times(item.self_pay_share) } else { Money::ZERO };
    out.over_ceiling = over;
    out.pre_self_pay = pre;
    out.in_policy = allowed - pre;
    out
}
