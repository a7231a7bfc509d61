//! Facts: a claim and its surroundings as integers and strings, ready for conditions.

use std::collections::{BTreeMap, BTreeSet};

use medmesh_settlement::{CatalogueItem, FeeLine, InsuranceType, ItemClass, Sex};
use medmesh_types::{Date, Money};
use rust_decimal::Decimal;

use crate::kb::KnowledgeBase;
#[cfg(test)]
use crate::schema::{fields, Record};

/// One fee line with its catalogue entry (if the catalogue has the code).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineInput {
    /// The line as uploaded.
    pub line: FeeLine,
    /// The treatment place's catalogue entry.
    pub catalogue: Option<CatalogueItem>,
}

/// The billing doctor, as the register and the points ledger know them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DoctorFacts {
    /// Personnel code.
    pub code: String,
    /// Payment qualification suspended on the day of care.
    pub suspended: bool,
    /// Payment qualification terminated.
    pub terminated: bool,
    /// This year's points.
    pub points: u32,
}

/// A claim as the treatment province holds it at settlement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimInput {
    /// Inpatient (else outpatient).
    pub inpatient: bool,
    /// Admission (or visit) day.
    pub admitted: Date,
    /// Discharge day (the visit day for an outpatient; the settlement day for an inpatient).
    pub discharged: Date,
    /// ICD-10 diagnosis.
    pub diagnosis: String,
    /// Department.
    pub department: String,
    /// The person is insured in another province.
    pub nonlocal: bool,
    /// Age in whole years on admission.
    pub age: u32,
    /// Sex.
    pub sex: Sex,
    /// Insurance type.
    pub insurance: InsuranceType,
    /// Treating institution.
    pub institution: String,
    /// Its level (1–3).
    pub institution_level: u8,
    /// The billing doctor.
    pub doctor: DoctorFacts,
    /// The fee lines, in upload order.
    pub lines: Vec<LineInput>,
}

/// The person's recent care, gathered by the province (and, for other provinces, the
/// federation's index) before the rules run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct History {
    /// Days from the last discharge (any institution here) to this admission.
    pub days_since_last_discharge: Option<i32>,
    /// Visits (other than this one) admitted in the 7 days before this admission.
    pub visits_last_7_days: u32,
    /// Visits admitted in the 30 days before.
    pub visits_last_30_days: u32,
    /// Other visits at the same institution on the admission day.
    pub same_day_visits_here: u32,
    /// Inpatient stays here overlapping this one.
    pub overlapping_stays: u32,
    /// Inpatient stays in other provinces overlapping this one.
    pub remote_overlapping_stays: u32,
    /// Care billed in other provinces on a day of this claim.
    pub remote_same_day: u32,
    /// Non-local inpatient stays in the 90 days before.
    pub nonlocal_stays_90_days: u32,
    /// Lines of the person's other visits by (item code, day number).
    pub billed_elsewhere: BTreeMap<(String, i32), u32>,
    /// Distinct days each item code was billed in the course before this claim.
    pub course_days_before: BTreeMap<String, u32>,
}

/// One line's facts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineFacts {
    /// Line serial.
    pub serial: String,
    /// Item code.
    pub code: String,
    /// Item kind from the knowledge base, or empty.
    pub kind: String,
    /// Catalogue class, or empty.
    pub class: String,
    /// Quantity in ten-thousandths.
    pub quantity_e4: i64,
    /// Unit price in fen.
    pub unit_price_fen: i64,
    /// Amount in fen.
    pub amount_fen: i64,
    /// Day number.
    pub day: i64,
    /// Catalogue price ceiling in fen, or -1.
    pub price_ceiling_fen: i64,
    /// The knowledge base knows the item.
    pub kb_known: bool,
    /// `"F"`, `"M"` or empty.
    pub kb_sex: String,
    /// Or -1.
    pub kb_min_age: i64,
    /// Or -1.
    pub kb_max_age: i64,
    /// ICD-10 prefixes.
    pub kb_indications: Vec<String>,
    /// Or -1.
    pub kb_max_per_day_e4: i64,
    /// Or -1.
    pub kb_max_course_days: i64,
    /// Or -1.
    pub kb_min_level: i64,
    /// Inpatient only.
    pub kb_inpatient_only: bool,
    /// Once per day.
    pub kb_once_per_day: bool,
    /// Packages including it.
    pub kb_part_of: Vec<String>,
    /// Incompatible items.
    pub kb_incompatible: Vec<String>,
    /// The code's quantity that day in this claim.
    pub day_quantity_e4: i64,
    /// Lines of the code that day in this claim.
    pub same_code_same_day_lines: i64,
    /// Lines of the code that day before this one, in upload order.
    pub same_day_index: i64,
    /// Distinct days the code was billed, this claim and the course before.
    pub course_days: i64,
    /// Lines of the code that day on other visits of the person.
    pub billed_elsewhere: i64,
    /// An incompatible item is billed the same day.
    pub incompatible_same_day: bool,
    /// A package including it is billed the same day.
    pub package_same_day: bool,
}

/// Everything a condition sees.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Facts {
    /// `claim`, by field.
    pub claim: BTreeMap<&'static str, Fact>,
    /// `person`.
    pub person: BTreeMap<&'static str, Fact>,
    /// `institution`.
    pub institution: BTreeMap<&'static str, Fact>,
    /// `doctor`.
    pub doctor: BTreeMap<&'static str, Fact>,
    /// `history`.
    pub history: BTreeMap<&'static str, Fact>,
    /// The lines.
    pub lines: Vec<LineFacts>,
}

/// One fact's value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fact {
    /// Integer.
    Int(i64),
    /// String.
    Str(String),
    /// Boolean.
    Bool(bool),
    /// A list of strings.
    StrList(Vec<String>),
    /// A set of strings.
    Set(BTreeSet<String>),
}

fn sex(s: Sex) -> &'static str {
    match s {
        Sex::Female => "F",
        Sex::Male => "M",
    }
}

fn opt<T: Into<i64>>(v: Option<T>) -> i64 {
    v.map(Into::into).unwrap_or(-1)
}

/// A quantity in ten-thousandths (quantities carry at most four decimals).
fn e4(q: Decimal) -> i64 {
    i64::try_from((q * Decimal::from(10_000)).trunc()).unwrap_or(i64::MAX)
}

fn fen(m: Money) -> i64 {
    m.to_fen()
}

impl Facts {
    /// The facts of a claim.
    pub fn build(input: &ClaimInput, kb: &KnowledgeBase, history: &History) -> Facts {
        let codes: BTreeSet<String> = input.lines.iter().map(|l| l.line.code.to_string()).collect();
        let mut by_day: BTreeMap<i32, BTreeSet<String>> = BTreeMap::new();
        let mut day_qty: BTreeMap<(String, i32), (i64, i64)> = BTreeMap::new();
        let mut days_of: BTreeMap<String, BTreeSet<i32>> = BTreeMap::new();
        for l in &input.lines {
            let (code, day) = (l.line.code.to_string(), l.line.date.days());
            by_day.entry(day).or_default().insert(code.clone());
            let q = day_qty.entry((code.clone(), day)).or_insert((0, 0));
            q.0 = q.0.saturating_add(e4(l.line.quantity));
            q.1 += 1;
            days_of.entry(code).or_default().insert(day);
        }
        let mut seen: BTreeMap<(String, i32), i64> = BTreeMap::new();
        let mut total = 0i64;
        let mut bed_days = 0i64;
        let lines: Vec<LineFacts> = input
            .lines
            .iter()
            .map(|l| {
                let code = l.line.code.to_string();
                let day = l.line.date.days();
                let k = kb.item(&code);
                let amount = l.line.amount().map(fen).unwrap_or(0);
                total = total.saturating_add(amount);
                if k.is_some_and(|k| k.kind == crate::ItemKind::Bed) {
                    bed_days = bed_days.saturating_add(e4(l.line.quantity));
                }
                let same_day = by_day.get(&day);
                let any_same_day = |list: &[String]| list.iter().any(|c| same_day.is_some_and(|s| s.contains(c)));
                let (day_quantity_e4, same_code_same_day_lines) =
                    day_qty.get(&(code.clone(), day)).copied().unwrap_or((0, 0));
                let index = seen.entry((code.clone(), day)).or_insert(0);
                let same_day_index = *index;
                *index += 1;
                let course_before = history.course_days_before.get(&code).copied().unwrap_or(0);
                LineFacts {
                    serial: l.line.serial.to_string(),
                    kind: k.map(|k| k.kind.name().to_string()).unwrap_or_default(),
                    class: match l.catalogue.as_ref().map(|c| c.class) {
                        Some(ItemClass::A) => "A".into(),
                        Some(ItemClass::B) => "B".into(),
                        Some(ItemClass::C) => "C".into(),
                        None => String::new(),
                    },
                    quantity_e4: e4(l.line.quantity),
                    unit_price_fen: fen(l.line.unit_price),
                    amount_fen: amount,
                    day: i64::from(day),
                    price_ceiling_fen: l.catalogue.as_ref().and_then(|c| c.price_ceiling).map(fen).unwrap_or(-1),
                    kb_known: k.is_some(),
                    kb_sex: k.and_then(|k| k.sex).map(|s| sex(s).to_string()).unwrap_or_default(),
                    kb_min_age: opt(k.and_then(|k| k.min_age)),
                    kb_max_age: opt(k.and_then(|k| k.max_age)),
                    kb_indications: k.map(|k| k.indications.clone()).unwrap_or_default(),
                    kb_max_per_day_e4: k.and_then(|k| k.max_per_day).map(e4).unwrap_or(-1),
                    kb_max_course_days: opt(k.and_then(|k| k.max_course_days)),
                    kb_min_level: opt(k.and_then(|k| k.min_level)),
                    kb_inpatient_only: k.is_some_and(|k| k.inpatient_only),
                    kb_once_per_day: k.is_some_and(|k| k.once_per_day),
                    kb_part_of: k.map(|k| k.part_of.clone()).unwrap_or_default(),
                    kb_incompatible: k.map(|k| k.incompatible.clone()).unwrap_or_default(),
                    day_quantity_e4,
                    same_code_same_day_lines,
                    same_day_index,
                    course_days: days_of.get(&code).map(|d| d.len() as i64).unwrap_or(0) + i64::from(course_before),
                    billed_elsewhere: i64::from(
                        history.billed_elsewhere.get(&(code.clone(), day)).copied().unwrap_or(0),
                    ),
                    incompatible_same_day: k.is_some_and(|k| any_same_day(&k.incompatible)),
                    package_same_day: k.is_some_and(|k| any_same_day(&k.part_of)),
                    code,
                }
            })
            .collect();
        let d = kb.diagnosis(&input.diagnosis);
        let s = |v: &str| Fact::Str(v.to_string());
        let claim = BTreeMap::from([
            ("kind", s(if input.inpatient { "inpatient" } else { "outpatient" })),
            ("admitted", Fact::Int(i64::from(input.admitted.days()))),
            ("discharged", Fact::Int(i64::from(input.discharged.days()))),
            ("stay_days", Fact::Int(i64::from(input.discharged.days() - input.admitted.days()))),
            ("diagnosis", s(&input.diagnosis)),
            ("diagnosis_known", Fact::Bool(d.is_some())),
            ("diagnosis_sex", s(d.and_then(|d| d.sex).map(sex).unwrap_or(""))),
            ("diagnosis_min_age", Fact::Int(opt(d.and_then(|d| d.min_age)))),
            ("diagnosis_max_age", Fact::Int(opt(d.and_then(|d| d.max_age)))),
            ("department", s(&input.department)),
            ("nonlocal", Fact::Bool(input.nonlocal)),
            ("total_fen", Fact::Int(total)),
            ("line_count", Fact::Int(lines.len() as i64)),
            ("bed_days_e4", Fact::Int(bed_days)),
            ("codes", Fact::Set(codes)),
        ]);
        let person = BTreeMap::from([
            ("age", Fact::Int(i64::from(input.age))),
            ("sex", s(sex(input.sex))),
            (
                "insurance",
                s(match input.insurance {
                    InsuranceType::Employee => "employee",
                    InsuranceType::Resident => "resident",
                }),
            ),
        ]);
        let institution =
            BTreeMap::from([("id", s(&input.institution)), ("level", Fact::Int(i64::from(input.institution_level)))]);
        let doctor = BTreeMap::from([
            ("code", s(&input.doctor.code)),
            ("suspended", Fact::Bool(input.doctor.suspended)),
            ("terminated", Fact::Bool(input.doctor.terminated)),
            ("points", Fact::Int(i64::from(input.doctor.points))),
        ]);
        let h = history;
        let history = BTreeMap::from([
            ("days_since_last_discharge", Fact::Int(opt(h.days_since_last_discharge))),
            ("visits_last_7_days", Fact::Int(i64::from(h.visits_last_7_days))),
            ("visits_last_30_days", Fact::Int(i64::from(h.visits_last_30_days))),
            ("same_day_visits_here", Fact::Int(i64::from(h.same_day_visits_here))),
            ("overlapping_stays", Fact::Int(i64::from(h.overlapping_stays))),
            ("remote_overlapping_stays", Fact::Int(i64::from(h.remote_overlapping_stays))),
            ("remote_same_day", Fact::Int(i64::from(h.remote_same_day))),
            ("nonlocal_stays_90_days", Fact::Int(i64::from(h.nonlocal_stays_90_days))),
        ]);
        Facts { claim, person, institution, doctor, history, lines }
    }
}

impl LineFacts {
    /// The line's facts by field.
    pub fn fields(&self) -> BTreeMap<&'static str, Fact> {
        BTreeMap::from(self.field_list())
    }

    /// The line's facts, in the schema's order.
    pub(crate) fn field_list(&self) -> [(&'static str, Fact); 28] {
        let i = Fact::Int;
        let b = Fact::Bool;
        let s = |v: &str| Fact::Str(v.to_string());
        let l = |v: &[String]| Fact::StrList(v.to_vec());
        [
            ("serial", s(&self.serial)),
            ("code", s(&self.code)),
            ("kind", s(&self.kind)),
            ("class", s(&self.class)),
            ("quantity_e4", i(self.quantity_e4)),
            ("unit_price_fen", i(self.unit_price_fen)),
            ("amount_fen", i(self.amount_fen)),
            ("day", i(self.day)),
            ("price_ceiling_fen", i(self.price_ceiling_fen)),
            ("kb_known", b(self.kb_known)),
            ("kb_sex", s(&self.kb_sex)),
            ("kb_min_age", i(self.kb_min_age)),
            ("kb_max_age", i(self.kb_max_age)),
            ("kb_indications", l(&self.kb_indications)),
            ("kb_max_per_day_e4", i(self.kb_max_per_day_e4)),
            ("kb_max_course_days", i(self.kb_max_course_days)),
            ("kb_min_level", i(self.kb_min_level)),
            ("kb_inpatient_only", b(self.kb_inpatient_only)),
            ("kb_once_per_day", b(self.kb_once_per_day)),
            ("kb_part_of", l(&self.kb_part_of)),
            ("kb_incompatible", l(&self.kb_incompatible)),
            ("day_quantity_e4", i(self.day_quantity_e4)),
            ("same_code_same_day_lines", i(self.same_code_same_day_lines)),
            ("same_day_index", i(self.same_day_index)),
            ("course_days", i(self.course_days)),
            ("billed_elsewhere", i(self.billed_elsewhere)),
            ("incompatible_same_day", b(self.incompatible_same_day)),
            ("package_same_day", b(self.package_same_day)),
        ]
    }
}

impl Fact {
    /// Whether the value has the schema's type.
    #[cfg(test)]
    pub(crate) fn is(&self, t: crate::schema::Ty) -> bool {
        use crate::schema::Ty;
        matches!(
            (self, t),
            (Fact::Int(_), Ty::Int)
                | (Fact::Str(_), Ty::Str)
                | (Fact::Bool(_), Ty::Bool)
                | (Fact::StrList(_), Ty::StrList)
                | (Fact::Set(_), Ty::Set)
        )
    }
}

/// Whether a record's facts are exactly the schema's fields with the schema's types.
#[cfg(test)]
pub(crate) fn matches_schema(r: Record, facts: &BTreeMap<&'static str, Fact>) -> bool {
    let schema = fields(r);
    schema.len() == facts.len() && schema.iter().all(|(name, t)| facts.get(name).is_some_and(|f| f.is(*t)))
}
