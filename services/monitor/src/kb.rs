//! The knowledge base the rules read: diagnoses and items.

use std::collections::BTreeMap;

use medmesh_settlement::Sex;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// An ICD-10 diagnosis (a code or a three-character category) and who it can apply to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Diagnosis {
    /// ICD-10 code (`O80`, `N40.x`, `C61`).
    pub code: String,
    /// Name.
    pub name: String,
    /// Only persons of this sex can have it.
    pub sex: Option<Sex>,
    /// Youngest age, whole years.
    pub min_age: Option<u32>,
    /// Oldest age, whole years.
    pub max_age: Option<u32>,
}

/// What kind of catalogue entry an item is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ItemKind {
    /// A drug.
    Drug,
    /// A medical service item (examination, treatment, surgery).
    Service,
    /// A medical consumable.
    Consumable,
    /// A bed day.
    Bed,
}

impl ItemKind {
    /// The name rules see.
    pub fn name(self) -> &'static str {
        match self {
            ItemKind::Drug => "drug",
            ItemKind::Service => "service",
            ItemKind::Consumable => "consumable",
            ItemKind::Bed => "bed",
        }
    }
}

/// What the knowledge base knows of one item.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ItemKnowledge {
    /// National code.
    pub code: String,
    /// Kind.
    pub kind: ItemKind,
    /// Only for this sex.
    pub sex: Option<Sex>,
    /// Youngest age, whole years.
    pub min_age: Option<u32>,
    /// Oldest age, whole years (a child-only item has one).
    pub max_age: Option<u32>,
    /// ICD-10 prefixes it is indicated for; empty means any.
    pub indications: Vec<String>,
    /// Most per day of care.
    pub max_per_day: Option<Decimal>,
    /// Most distinct days in one course.
    pub max_course_days: Option<u32>,
    /// Lowest institution level allowed to bill it.
    pub min_level: Option<u8>,
    /// Billed only for inpatients.
    pub inpatient_only: bool,
    /// At most one line per day (bed, nursing grade, daily fees).
    pub once_per_day: bool,
    /// Package items that already include this one (billing both is decomposed charging).
    pub part_of: Vec<String>,
    /// Items it must not be billed with on the same day.
    pub incompatible: Vec<String>,
}

impl ItemKnowledge {
    /// An item of `kind` with no restrictions.
    pub fn plain(code: &str, kind: ItemKind) -> ItemKnowledge {
        ItemKnowledge {
            code: code.to_string(),
            kind,
            sex: None,
            min_age: None,
            max_age: None,
            indications: Vec::new(),
            max_per_day: None,
            max_course_days: None,
            min_level: None,
            inpatient_only: false,
            once_per_day: false,
            part_of: Vec::new(),
            incompatible: Vec::new(),
        }
    }
}

/// Diagnoses and items, by code.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct KnowledgeBase {
    /// Diagnoses by code.
    pub diagnoses: BTreeMap<String, Diagnosis>,
    /// Items by code.
    pub items: BTreeMap<String, ItemKnowledge>,
}

impl KnowledgeBase {
    /// Adds or replaces a diagnosis.
    pub fn add_diagnosis(&mut self, d: Diagnosis) {
        self.diagnoses.insert(d.code.clone(), d);
    }

    /// Adds or replaces an item.
    pub fn add_item(&mut self, i: ItemKnowledge) {
        self.items.insert(i.code.clone(), i);
    }

    /// The diagnosis of a code: the code itself, or else its three-character category.
    pub fn diagnosis(&self, code: &str) -> Option<&Diagnosis> {
        self.diagnoses.get(code).or_else(|| code.get(..3).and_then(|c| self.diagnoses.get(c)))
    }

    /// What is known of an item.
    pub fn item(&self, code: &str) -> Option<&ItemKnowledge> {
        self.items.get(code)
    }
}

/// One knowledge-base entry, as an agency records it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Knowledge {
    /// A diagnosis.
    Diagnosis(Diagnosis),
    /// An item.
    Item(ItemKnowledge),
}

/// Most entries in one of an item's lists (indications, packages, incompatible items).
pub const MAX_KB_LIST: usize = 64;

fn code_ok(code: &str) -> bool {
    !code.is_empty()
        && code.len() <= 64
        && code.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b':' | b'-'))
}

impl Knowledge {
    /// The entry's code.
    pub fn code(&self) -> &str {
        match self {
            Knowledge::Diagnosis(d) => &d.code,
            Knowledge::Item(i) => &i.code,
        }
    }

    /// Checks the entry's fields; the error names the field.
    pub fn check(&self) -> Result<(), crate::RuleError> {
        let bad = |field: &'static str, message: &str| Err(crate::RuleError { field, message: message.into() });
        if !code_ok(self.code()) {
            return bad("code", "must be 1 to 64 letters, digits, '.', '_', ':' or '-'");
        }
        let age = |a: Option<u32>| a.is_some_and(|a| a > 150);
        match self {
            Knowledge::Diagnosis(d) => {
                if d.name.trim().is_empty() || d.name.len() > 200 {
                    return bad("name", "must be 1 to 200 bytes");
                }
                if age(d.min_age) || age(d.max_age) {
                    return bad("min_age", "ages are 0 to 150");
                }
            }
            Knowledge::Item(i) => {
                if age(i.min_age) || age(i.max_age) {
                    return bad("min_age", "ages are 0 to 150");
                }
                if i.min_level.is_some_and(|l| !(1..=3).contains(&l)) {
                    return bad("min_level", "must be 1 to 3");
                }
                if i.max_per_day.is_some_and(|q| q <= Decimal::ZERO || q > Decimal::from(1_000_000) || q.scale() > 4) {
                    return bad("max_per_day", "must be positive, at most 1,000,000 with at most 4 decimals");
                }
                for (field, list) in
                    [("indications", &i.indications), ("part_of", &i.part_of), ("incompatible", &i.incompatible)]
                {
                    if list.len() > MAX_KB_LIST || !list.iter().all(|c| code_ok(c)) {
                        return bad(field, "must hold at most 64 codes");
                    }
                }
            }
        }
        Ok(())
    }
}
