//! The rules medmesh ships, after the national rule framework (policy, management and medical
//! families), and a demo knowledge base.
//!
//! They are data: an operator records them like any other rule (the national ones at the
//! federation), may disable or replace one with a new version, and the tests check each one
//! against a claim that breaks it and a clean claim.

use medmesh_settlement::Sex;
use rust_decimal::Decimal;

use crate::kb::{Diagnosis, ItemKind, ItemKnowledge, KnowledgeBase};
use crate::rule::{Action, Category, Rule, Target};

use Action::*;
use Category::*;
use Target::*;

/// `(id, category, target, action, severity, title, condition)`.
type Row = (&'static str, Category, Target, Action, u8, &'static str, &'static str);

const RULES: &[Row] = &[
    // Medical: is the care plausible for this patient and diagnosis?
    (
        "MED-01",
        Medical,
        Line,
        SelfPay,
        3,
        "Item restricted to the other sex",
        r#"line.kb_sex != "" && line.kb_sex != person.sex"#,
    ),
    (
        "MED-02",
        Medical,
        Line,
        SelfPay,
        3,
        "Patient younger than the item's minimum age",
        "line.kb_min_age >= 0 && person.age < line.kb_min_age",
    ),
    (
        "MED-03",
        Medical,
        Line,
        SelfPay,
        3,
        "Child-only item for an older patient",
        "line.kb_max_age >= 0 && person.age > line.kb_max_age",
    ),
    (
        "MED-04",
        Medical,
        Claim,
        Flag,
        3,
        "Diagnosis impossible for the patient's sex",
        r#"claim.diagnosis_sex != "" && claim.diagnosis_sex != person.sex"#,
    ),
    (
        "MED-05",
        Medical,
        Claim,
        Flag,
        3,
        "Diagnosis outside its age range",
        "(claim.diagnosis_min_age >= 0 && person.age < claim.diagnosis_min_age) || \
         (claim.diagnosis_max_age >= 0 && person.age > claim.diagnosis_max_age)",
    ),
    (
        "MED-06",
        Medical,
        Line,
        SelfPay,
        2,
        "Item not indicated for the diagnosis",
        "size(line.kb_indications) > 0 && !line.kb_indications.exists(p, claim.diagnosis.startsWith(p))",
    ),
    ("MED-07", Medical, Line, Flag, 3, "Incompatible items billed the same day", "line.incompatible_same_day"),
    (
        "MED-08",
        Medical,
        Line,
        SelfPay,
        2,
        "Daily quantity above the item's limit",
        "line.kb_max_per_day_e4 >= 0 && line.day_quantity_e4 > line.kb_max_per_day_e4",
    ),
    (
        "MED-09",
        Medical,
        Line,
        SelfPay,
        2,
        "Course longer than the item's limit",
        "line.kb_max_course_days >= 0 && line.course_days > line.kb_max_course_days",
    ),
    (
        "MED-10",
        Medical,
        Line,
        Flag,
        2,
        "Outpatient drug quantity beyond a 30-day supply",
        r#"claim.kind == "outpatient" && line.kind == "drug" && line.kb_max_per_day_e4 > 0 && line.quantity_e4 > 30 * line.kb_max_per_day_e4"#,
    ),
    (
        "MED-11",
        Medical,
        Claim,
        Flag,
        2,
        "Inpatient claim with no bed day billed",
        r#"claim.kind == "inpatient" && claim.line_count > 0 && !lines.exists(l, l.kind == "bed")"#,
    ),
    // Policy: does the policy pay for this, here, at this price?
    (
        "POL-01",
        Policy,
        Line,
        Flag,
        2,
        "Unit price above the catalogue's ceiling",
        "line.price_ceiling_fen >= 0 && line.unit_price_fen > line.price_ceiling_fen",
    ),
    (
        "POL-02",
        Policy,
        Line,
        SelfPay,
        3,
        "Item above the institution's level",
        "line.kb_min_level >= 0 && institution.level < line.kb_min_level",
    ),
    (
        "POL-03",
        Policy,
        Line,
        SelfPay,
        3,
        "Inpatient-only item on an outpatient claim",
        r#"claim.kind == "outpatient" && line.kb_inpatient_only"#,
    ),
    (
        "POL-04",
        Policy,
        Line,
        Block,
        4,
        "Billing day outside the stay",
        "line.day < claim.admitted || line.day > claim.discharged",
    ),
    (
        "POL-05",
        Policy,
        Claim,
        Block,
        5,
        "Billing doctor's payment qualification suspended or terminated",
        "doctor.suspended || doctor.terminated",
    ),
    (
        "POL-06",
        Policy,
        Claim,
        Flag,
        2,
        "Outpatient claim above 10,000 yuan",
        r#"claim.kind == "outpatient" && claim.total_fen > 1000000"#,
    ),
    ("POL-07", Policy, Claim, Flag, 3, "Billing doctor with 9 points or more this year", "doctor.points >= 9"),
    (
        "POL-08",
        Policy,
        Claim,
        Flag,
        3,
        "Inpatient stay longer than 60 days",
        r#"claim.kind == "inpatient" && claim.stay_days > 60"#,
    ),
    // Management: is it billed the way care happened?
    (
        "MGT-01",
        Management,
        Line,
        SelfPay,
        4,
        "Duplicate charging: same item, same day on another visit",
        "line.billed_elsewhere > 0",
    ),
    (
        "MGT-02",
        Management,
        Line,
        SelfPay,
        3,
        "Once-a-day item billed again the same day",
        "line.kb_once_per_day && line.same_day_index > 0",
    ),
    (
        "MGT-03",
        Management,
        Line,
        SelfPay,
        3,
        "Decomposed charging: item billed with a package that includes it",
        "line.package_same_day",
    ),
    (
        "MGT-04",
        Management,
        Claim,
        Flag,
        3,
        "Split hospitalisation: readmitted within 15 days of discharge",
        r#"claim.kind == "inpatient" && history.days_since_last_discharge >= 0 && history.days_since_last_discharge <= 15"#,
    ),
    (
        "MGT-05",
        Management,
        Claim,
        Block,
        5,
        "Overlapping inpatient stays in this province",
        r#"claim.kind == "inpatient" && history.overlapping_stays > 0"#,
    ),
    ("MGT-06", Management, Claim, Flag, 2, "Frequent visits: 3 or more in 7 days", "history.visits_last_7_days >= 3"),
    ("MGT-07", Management, Claim, Flag, 2, "Frequent visits: 8 or more in 30 days", "history.visits_last_30_days >= 8"),
    (
        "MGT-08",
        Management,
        Claim,
        Flag,
        2,
        "Frequent drug purchases: drugs only, 4 or more visits in 30 days",
        r#"claim.kind == "outpatient" && claim.line_count > 0 && lines.all(l, l.kind == "drug") && history.visits_last_30_days >= 4"#,
    ),
    (
        "MGT-09",
        Management,
        Claim,
        Flag,
        2,
        "Another visit at the same institution the same day",
        "history.same_day_visits_here > 0",
    ),
    (
        "MGT-10",
        Management,
        Claim,
        Flag,
        3,
        "Bed days above the length of stay",
        "claim.bed_days_e4 > (claim.stay_days + 1) * 10000",
    ),
    (
        "MGT-11",
        Management,
        Line,
        Flag,
        1,
        "The same item on more than three lines the same day",
        "line.same_code_same_day_lines > 3",
    ),
    // Cross-regional (2023 circular): what only the federation's index of stays can show.
    (
        "XR-01",
        Management,
        Claim,
        Block,
        5,
        "Overlapping inpatient stays in another province",
        r#"claim.kind == "inpatient" && history.remote_overlapping_stays > 0"#,
    ),
    (
        "XR-02",
        Management,
        Claim,
        Flag,
        3,
        "Care billed the same day in another province",
        "history.remote_same_day > 0",
    ),
    (
        "XR-03",
        Management,
        Claim,
        Flag,
        2,
        "Repeated non-local inpatient stays: 3 or more in 90 days",
        r#"claim.nonlocal && claim.kind == "inpatient" && history.nonlocal_stays_90_days >= 3"#,
    ),
];

/// The shipped rules, version 1, enabled.
pub fn shipped_rules() -> Vec<Rule> {
    RULES
        .iter()
        .map(|(id, category, target, action, severity, title, condition)| Rule {
            id: id.to_string(),
            version: 1,
            category: *category,
            target: *target,
            action: *action,
            severity: *severity,
            title: title.to_string(),
            condition: condition.to_string(),
            enabled: true,
        })
        .collect()
}

fn dx(code: &str, name: &str, sex: Option<Sex>, min_age: Option<u32>, max_age: Option<u32>) -> Diagnosis {
    Diagnosis { code: code.into(), name: name.into(), sex, min_age, max_age }
}

/// A demo subset: the diagnoses and items of `medmesh dev`'s demo data and the rule tests.
pub fn demo_knowledge_base() -> KnowledgeBase {
    let mut kb = KnowledgeBase::default();
    for d in [
        dx("O80", "Single spontaneous delivery", Some(Sex::Female), Some(12), Some(60)),
        dx("N40", "Hyperplasia of prostate", Some(Sex::Male), Some(30), None),
        dx("C61", "Malignant neoplasm of prostate", Some(Sex::Male), None, None),
        dx("C53", "Malignant neoplasm of cervix uteri", Some(Sex::Female), None, None),
        dx("P07", "Short gestation and low birth weight", None, None, Some(0)),
        dx("E11", "Type 2 diabetes mellitus", None, None, None),
        dx("I10", "Essential hypertension", None, None, None),
        dx("J18", "Pneumonia, organism unspecified", None, None, None),
        dx("J06", "Acute upper respiratory infections", None, None, None),
        dx("K35", "Acute appendicitis", None, None, None),
        dx("S72", "Fracture of femur", None, None, None),
        dx("R50", "Fever of other and unknown origin", None, None, None),
    ] {
        kb.add_diagnosis(d);
    }
    let item = |code: &str, kind| ItemKnowledge::plain(code, kind);
    let mut items = vec![
        // The demo catalogue's codes, with the restrictions the catalogue gives them.
        item("XA0001", ItemKind::Service),
        item("XA0002", ItemKind::Drug),
        item("XA0003", ItemKind::Service),
        item("XB0001", ItemKind::Drug),
        item("XB0002", ItemKind::Drug),
        ItemKnowledge { max_per_day: Some(Decimal::from(3)), ..item("XB0003", ItemKind::Drug) },
        ItemKnowledge { sex: Some(Sex::Female), ..item("XF0001", ItemKind::Service) },
        ItemKnowledge { max_age: Some(14), ..item("XK0001", ItemKind::Drug) },
        item("XC0001", ItemKind::Consumable),
    ];
    items.extend([
        ItemKnowledge {
            indications: vec!["E11".into()],
            max_per_day: Some(Decimal::from(3)),
            max_course_days: Some(90),
            ..item("DRUG-METFORMIN", ItemKind::Drug)
        },
        ItemKnowledge {
            indications: vec!["J18".into(), "J06".into(), "K35".into()],
            max_per_day: Some(Decimal::from(4)),
            max_course_days: Some(14),
            incompatible: vec!["DRUG-WARFARIN".into()],
            ..item("DRUG-CEFTRIAXONE", ItemKind::Drug)
        },
        ItemKnowledge { incompatible: vec!["DRUG-CEFTRIAXONE".into()], ..item("DRUG-WARFARIN", ItemKind::Drug) },
        ItemKnowledge {
            sex: Some(Sex::Male),
            indications: vec!["N40".into(), "C61".into()],
            ..item("SVC-PSA", ItemKind::Service)
        },
        ItemKnowledge { sex: Some(Sex::Female), min_age: Some(21), ..item("SVC-PAP", ItemKind::Service) },
        ItemKnowledge { max_age: Some(0), inpatient_only: true, ..item("SVC-NEONATAL-CARE", ItemKind::Service) },
        ItemKnowledge { min_level: Some(3), inpatient_only: true, ..item("SVC-PET-CT", ItemKind::Service) },
        ItemKnowledge { once_per_day: true, inpatient_only: true, ..item("BED-GENERAL", ItemKind::Bed) },
        ItemKnowledge { once_per_day: true, inpatient_only: true, ..item("NURSE-GRADE1", ItemKind::Service) },
        item("SVC-APPENDECTOMY", ItemKind::Service),
        ItemKnowledge { part_of: vec!["SVC-APPENDECTOMY".into()], ..item("SVC-SUTURE", ItemKind::Service) },
        ItemKnowledge { part_of: vec!["SVC-APPENDECTOMY".into()], ..item("SVC-ANAESTHESIA-LOCAL", ItemKind::Service) },
    ]);
    for i in items {
        kb.add_item(i);
    }
    kb
}
