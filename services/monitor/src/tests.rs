use std::collections::BTreeMap;

use medmesh_settlement::{CatalogueItem, FeeLine, InsuranceType, ItemClass, Restrictions, Sex};
use medmesh_types::{Date, ItemCode, Money, Ratio, Serial};
use proptest::prelude::*;
use rust_decimal::Decimal;
use rust_decimal_macros::dec;

use super::*;
use crate::facts::matches_schema;
use crate::schema::Record;

const DAY: &str = "2026-03-10";

fn day(offset: i32) -> Date {
    Date::parse(DAY).unwrap().plus_days(offset)
}

/// The catalogue the tests bill against (ceilings for the demo codes).
fn catalogue(code: &str) -> CatalogueItem {
    let ceiling = match code {
        "XA0001" => Some(Money::from_fen(5_000)),
        "XA0003" => Some(Money::from_fen(20_000)),
        "XB0001" => Some(Money::from_fen(10_000)),
        _ => None,
    };
    CatalogueItem {
        code: ItemCode::new(code).unwrap(),
        name: code.into(),
        class: ItemClass::A,
        price_ceiling: ceiling,
        self_pay_share: Ratio::ZERO,
        restrictions: Restrictions::default(),
    }
}

/// A test case: a claim, the person's history and the knowledge base.
#[derive(Debug, Clone)]
struct Case {
    claim: ClaimInput,
    history: History,
}

impl Case {
    /// A clean outpatient claim: a 45-year-old man with an upper respiratory infection, one
    /// consultation within its ceiling and one drug, at a secondary institution.
    fn clean() -> Case {
        let mut c = Case {
            claim: ClaimInput {
                inpatient: false,
                admitted: day(0),
                discharged: day(0),
                diagnosis: "J06.9".into(),
                department: "internal medicine".into(),
                nonlocal: false,
                age: 45,
                sex: Sex::Male,
                insurance: InsuranceType::Employee,
                institution: "H001".into(),
                institution_level: 2,
                doctor: DoctorFacts { code: "D001".into(), ..Default::default() },
                lines: Vec::new(),
            },
            history: History::default(),
        };
        c.line("XA0001", dec!(1), 3_000, 0);
        c.line("XB0001", dec!(2), 2_000, 0);
        c
    }

    fn line(&mut self, code: &str, quantity: Decimal, price_fen: i64, day_offset: i32) -> &mut Case {
        let n = self.claim.lines.len() + 1;
        self.claim.lines.push(LineInput {
            line: FeeLine {
                serial: Serial::new(format!("L{n}")).unwrap(),
                code: ItemCode::new(code).unwrap(),
                quantity,
                unit_price: Money::from_fen(price_fen),
                date: day(day_offset),
            },
            catalogue: Some(catalogue(code)),
        });
        self
    }

    /// Inpatient, admitted today, discharged `days` later, with a bed day for each day.
    fn inpatient(&mut self, days: i32) -> &mut Case {
        self.claim.inpatient = true;
        self.claim.discharged = day(days);
        for d in 0..days.max(1) {
            self.line("BED-GENERAL", dec!(1), 6_000, d);
        }
        self
    }

    fn verdict(&self) -> Verdict {
        let rules: Vec<CompiledRule> = shipped_rules().iter().map(|r| compile(r).unwrap()).collect();
        evaluate(&rules, &Facts::build(&self.claim, &demo_knowledge_base(), &self.history))
    }
}

/// How to break a rule, starting from the clean claim.
type Breaker = (&'static str, fn(&mut Case));

/// For each shipped rule, how to break it starting from the clean claim.
fn breakers() -> Vec<Breaker> {
    vec![
        ("MED-01", |c| {
            c.line("XF0001", dec!(1), 1_000, 0);
        }),
        ("MED-02", |c| {
            c.claim.sex = Sex::Female;
            c.claim.age = 18;
            c.line("SVC-PAP", dec!(1), 1_000, 0);
        }),
        ("MED-03", |c| {
            c.line("XK0001", dec!(1), 1_000, 0);
        }),
        ("MED-04", |c| c.claim.diagnosis = "O80".into()),
        ("MED-05", |c| {
            c.claim.diagnosis = "N40.0".into();
            c.claim.age = 20;
        }),
        ("MED-06", |c| {
            c.line("DRUG-METFORMIN", dec!(2), 500, 0);
        }),
        ("MED-07", |c| {
            c.line("DRUG-CEFTRIAXONE", dec!(1), 800, 0).line("DRUG-WARFARIN", dec!(1), 300, 0);
        }),
        ("MED-08", |c| {
            // Two lines of 2 on one day: 4 against a limit of 3.
            c.line("XB0003", dec!(2), 500, 0).line("XB0003", dec!(2), 500, 0);
        }),
        ("MED-09", |c| {
            c.history.course_days_before.insert("DRUG-CEFTRIAXONE".into(), 14);
            c.line("DRUG-CEFTRIAXONE", dec!(1), 800, 0);
        }),
        ("MED-10", |c| {
            c.claim.diagnosis = "E11.9".into();
            c.line("DRUG-METFORMIN", dec!(91), 50, 0);
        }),
        ("MED-11", |c| c.claim.inpatient = true),
        ("POL-01", |c| {
            c.line("XA0001", dec!(1), 6_000, 0);
        }),
        ("POL-02", |c| {
            c.inpatient(1).line("SVC-PET-CT", dec!(1), 600_000, 0);
        }),
        ("POL-03", |c| {
            c.line("BED-GENERAL", dec!(1), 6_000, 0);
        }),
        ("POL-04", |c| {
            c.line("XA0001", dec!(1), 3_000, -1);
        }),
        ("POL-05", |c| c.claim.doctor.suspended = true),
        ("POL-06", |c| {
            c.line("XA0003", dec!(60), 18_000, 0);
        }),
        ("POL-07", |c| c.claim.doctor.points = 9),
        ("POL-08", |c| {
            c.inpatient(61);
        }),
        ("MGT-01", |c| {
            c.history.billed_elsewhere.insert(("XA0001".into(), day(0).days()), 1);
        }),
        ("MGT-02", |c| {
            c.inpatient(1).line("BED-GENERAL", dec!(1), 6_000, 0);
        }),
        ("MGT-03", |c| {
            c.line("SVC-APPENDECTOMY", dec!(1), 200_000, 0).line("SVC-SUTURE", dec!(1), 5_000, 0);
        }),
        ("MGT-04", |c| {
            c.inpatient(3);
            c.history.days_since_last_discharge = Some(3);
        }),
        ("MGT-05", |c| {
            c.inpatient(3);
            c.history.overlapping_stays = 1;
        }),
        ("MGT-06", |c| c.history.visits_last_7_days = 3),
        ("MGT-07", |c| c.history.visits_last_30_days = 8),
        ("MGT-08", |c| {
            c.claim.lines.retain(|l| l.line.code.as_str() == "XB0001");
            c.history.visits_last_30_days = 4;
        }),
        ("MGT-09", |c| c.history.same_day_visits_here = 1),
        ("MGT-10", |c| {
            c.inpatient(2).line("BED-GENERAL", dec!(2), 6_000, 2);
        }),
        ("MGT-11", |c| {
            for _ in 0..3 {
                c.line("XA0001", dec!(1), 3_000, 0);
            }
        }),
        ("XR-01", |c| {
            c.inpatient(3);
            c.history.remote_overlapping_stays = 1;
        }),
        ("XR-02", |c| c.history.remote_same_day = 1),
        ("XR-03", |c| {
            c.inpatient(3);
            c.claim.nonlocal = true;
            c.history.nonlocal_stays_90_days = 3;
        }),
    ]
}

#[test]
fn the_library_has_25_rules_or_more_in_all_three_families_and_all_compile() {
    let rules = shipped_rules();
    assert!(rules.len() >= 25, "{} rules", rules.len());
    for cat in [Category::Policy, Category::Management, Category::Medical] {
        assert!(rules.iter().filter(|r| r.category == cat).count() >= 5, "{cat:?}");
    }
    for action in [Action::Block, Action::SelfPay, Action::Flag] {
        assert!(rules.iter().any(|r| r.action == action), "{action:?}");
    }
    let mut ids: Vec<&str> = rules.iter().map(|r| r.id.as_str()).collect();
    ids.dedup();
    assert_eq!(ids.len(), rules.len(), "ids are unique");
    for r in &rules {
        compile(r).unwrap_or_else(|e| panic!("{}: {e}", r.id));
    }
}

#[test]
fn the_clean_claim_breaks_no_rule() {
    let v = Case::clean().verdict();
    assert!(v.is_clean(), "{v:#?}");
}

#[test]
fn each_shipped_rule_catches_a_claim_that_breaks_it() {
    let shipped: Vec<String> = shipped_rules().into_iter().map(|r| r.id).collect();
    let breakers = breakers();
    let covered: Vec<&str> = breakers.iter().map(|(id, _)| *id).collect();
    assert_eq!(covered, shipped, "every shipped rule has a breaking claim, in library order");
    for (id, break_it) in breakers {
        let mut c = Case::clean();
        break_it(&mut c);
        let v = c.verdict();
        assert!(v.faults.is_empty(), "{id}: {:?}", v.faults);
        assert!(v.hits.iter().any(|h| h.rule == id), "{id} not caught: {:?}", v.hits);
    }
}

#[test]
fn line_rules_name_the_line_and_claim_rules_none() {
    let mut c = Case::clean();
    c.inpatient(1).line("BED-GENERAL", dec!(1), 6_000, 0);
    let v = c.verdict();
    let bed: Vec<&Hit> = v.hits.iter().filter(|h| h.rule == "MGT-02").collect();
    // Lines: L1, L2 (clean), L3 (the day's bed), L4 (a second bed that day).
    assert_eq!(bed.len(), 1, "only the second bed line of the day: {bed:?}");
    assert_eq!(bed[0].line.as_deref(), Some("L4"));
    let serials: Vec<String> = c.claim.lines.iter().map(|l| l.line.serial.to_string()).collect();
    let self_pay = v.self_pay(&serials);
    assert_eq!(self_pay.keys().collect::<Vec<_>>(), vec!["L4"]);
    let mut c = Case::clean();
    c.claim.doctor.terminated = true;
    let v = c.verdict();
    let block = v.block().expect("blocked");
    assert_eq!((block.rule.as_str(), block.line.as_deref()), ("POL-05", None));
}

#[test]
fn a_claim_level_self_pay_covers_every_line() {
    let rule = Rule {
        id: "P-ALL".into(),
        version: 1,
        category: Category::Policy,
        target: Target::Claim,
        action: Action::SelfPay,
        severity: 2,
        title: "everything self-paid at level 2".into(),
        condition: "institution.level == 2".into(),
        enabled: true,
    };
    let c = Case::clean();
    let v = evaluate(&[compile(&rule).unwrap()], &Facts::build(&c.claim, &demo_knowledge_base(), &c.history));
    let serials = vec!["L1".to_string(), "L2".to_string()];
    assert_eq!(v.self_pay(&serials).len(), 2);
    assert!(v.block().is_none());
}

#[test]
fn the_facts_are_exactly_the_schema() {
    let mut c = Case::clean();
    c.inpatient(2);
    let f = Facts::build(&c.claim, &demo_knowledge_base(), &c.history);
    assert!(matches_schema(Record::Claim, &f.claim));
    assert!(matches_schema(Record::Person, &f.person));
    assert!(matches_schema(Record::Institution, &f.institution));
    assert!(matches_schema(Record::Doctor, &f.doctor));
    assert!(matches_schema(Record::History, &f.history));
    for l in &f.lines {
        assert!(matches_schema(Record::Line, &l.fields()));
    }
}

#[test]
fn facts_are_integers_computed_from_the_claim() {
    let mut c = Case::clean();
    c.line("XB0003", dec!(1.25), 333, 0).line("XB0003", dec!(0.5), 333, 0);
    let f = Facts::build(&c.claim, &demo_knowledge_base(), &c.history);
    // 30.00 + 2 × 20.00 + 1.25 × 3.33 (4.1625 → 4.16) + 0.5 × 3.33 (1.665 → 1.67), in fen.
    assert_eq!(f.claim["total_fen"], Fact::Int(3_000 + 4_000 + 416 + 167));
    let l3 = &f.lines[2];
    assert_eq!((l3.quantity_e4, l3.day_quantity_e4, l3.same_code_same_day_lines), (12_500, 17_500, 2));
    assert_eq!((f.lines[2].same_day_index, f.lines[3].same_day_index), (0, 1));
    assert_eq!(l3.kb_max_per_day_e4, 30_000);
    assert_eq!(f.lines[0].price_ceiling_fen, 5_000);
    assert_eq!(f.claim["stay_days"], Fact::Int(0));
}

fn rule(target: Target, condition: &str) -> Rule {
    Rule {
        id: "T-1".into(),
        version: 1,
        category: Category::Management,
        target,
        action: Action::Flag,
        severity: 1,
        title: "test".into(),
        condition: condition.into(),
        enabled: true,
    }
}

/// A rule that reads the person, the person's care or a line's facts drawn from it is marked so:
/// the province treating a visitor holds none of those, and runs only the others.
#[test]
fn what_a_condition_reads_of_the_person_is_known_when_compiled() {
    let reads = |target, condition: &str| compile(&rule(target, condition)).unwrap().reads.person;
    for (target, condition) in [
        (Target::Claim, "person.age > 60"),
        (Target::Claim, "history.visits_last_7_days > 3"),
        (Target::Claim, "claim.total_fen > 0 && person.sex == \"F\""),
        (Target::Line, "line.billed_elsewhere > 0"),
        (Target::Line, "line.course_days > 7"),
        (Target::Claim, "lines.exists(l, l.course_days > 3)"),
        (Target::Claim, "lines.filter(l, l.billed_elsewhere > 0).size() > 0"),
        // What may be a line counts as one.
        (Target::Line, "(false ? null : line).billed_elsewhere > 0"),
        (Target::Line, "[line][0].course_days > 3"),
        (Target::Claim, "[lines[0]].exists(l, l.course_days > 3)"),
    ] {
        assert!(reads(target, condition), "{condition} reads the person");
    }
    // A record's fields are read by name, never by index, so none escapes the check.
    let e = compile(&rule(Target::Line, "line[\"course_days\"] > 3")).unwrap_err();
    assert_eq!(e.field, "condition", "{e}");
    for (target, condition) in [
        (Target::Claim, "claim.total_fen > 100000 && institution.level < 3"),
        (Target::Line, "line.amount_fen > line.price_ceiling_fen && line.price_ceiling_fen >= 0"),
        (Target::Line, "line.kb_sex != \"\" && line.same_day_index > 0"),
        (Target::Claim, "lines.exists(l, l.day > claim.discharged) || doctor.points >= 12"),
        // A comprehension variable named like a record is the variable, not the record.
        (Target::Claim, "lines.exists(person, person.amount_fen > 0)"),
    ] {
        assert!(!reads(target, condition), "{condition} reads nothing of the person");
    }
}

#[test]
fn conditions_that_cannot_be_run_deterministically_are_refused_when_recorded() {
    let refused = [
        (Target::Claim, "claim.total_fen >", "does not parse"),
        (Target::Claim, "patient.age > 3", "`patient`"),
        (Target::Claim, "claim.identity == \"x\"", "no field `identity`"),
        (Target::Claim, "claim.total_fen > 10.5", "floating-point"),
        (Target::Claim, "double(claim.total_fen) > 1", "`double`"),
        (Target::Claim, "claim.codes.exists(c, c == \"X\")", "only lists"),
        (Target::Claim, "claim.exists(k, k == \"kind\")", "only lists"),
        (Target::Claim, "line.amount_fen > 0", "only a line rule"),
        (Target::Claim, "lines.exists(a, a.kb_part_of.exists(p, a.kb_incompatible.exists(q, p == q)))", "nests"),
        (Target::Claim, "lines.exists(a, lines.exists(b, a.code == b.code))", "square"),
        (Target::Line, "lines.exists(b, b.code == line.code && b.serial != line.serial)", "square"),
        (Target::Claim, "{'a': 1}.a == 1", "map or message literal"),
        (Target::Claim, "claim.diagnosis.matches('J.*')", "`matches`"),
    ];
    for (target, condition, why) in refused {
        let e = compile(&rule(target, condition)).unwrap_err();
        assert_eq!(e.field, "condition", "{condition}");
        assert!(e.message.contains(why), "{condition}: {}", e.message);
    }
    let long = format!("claim.total_fen > 0{}", " && claim.total_fen > 0".repeat(200));
    assert_eq!(compile(&rule(Target::Claim, &long)).unwrap_err().field, "condition");
    let nodes = format!("claim.total_fen > 0{}", " && true".repeat(250));
    assert!(compile(&rule(Target::Claim, &nodes)).unwrap_err().message.contains("syntax nodes"));
    let mut r = rule(Target::Claim, "true");
    r.id = "bad id".into();
    assert_eq!(compile(&r).unwrap_err().field, "id");
    let mut r = rule(Target::Claim, "true");
    r.severity = 0;
    assert_eq!(compile(&r).unwrap_err().field, "severity");
    let mut r = rule(Target::Claim, "true");
    r.version = 0;
    assert_eq!(compile(&r).unwrap_err().field, "version");
    // Membership in the set of codes, ranges over lines and string lists are fine.
    for ok in [
        "\"XA0001\" in claim.codes",
        "lines.filter(l, l.kind == \"drug\").exists(l, l.amount_fen > 100)",
        "size(lines.map(l, l.code)) > 1",
    ] {
        compile(&rule(Target::Claim, ok)).unwrap_or_else(|e| panic!("{ok}: {e}"));
    }
}

#[test]
fn a_rule_that_fails_at_evaluation_is_a_fault_never_a_pass() {
    let c = Case::clean();
    let facts = Facts::build(&c.claim, &demo_knowledge_base(), &c.history);
    for condition in [
        "lines[5].amount_fen > 0",
        "claim.total_fen / (claim.line_count - 2) > 0",
        "claim.total_fen * 9223372036854775807 > 0",
        "claim.total_fen",
    ] {
        let v = evaluate(&[compile(&rule(Target::Claim, condition)).unwrap()], &facts);
        assert!(v.hits.is_empty(), "{condition}");
        assert_eq!(v.faults.len(), 1, "{condition}: {v:?}");
        assert_eq!(v.faults[0].rule, "T-1");
    }
    // A disabled rule does not run at all.
    let mut r = rule(Target::Claim, "claim.total_fen");
    r.enabled = false;
    assert!(evaluate(&[compile(&r).unwrap()], &facts).is_clean());
}

fn arb_case() -> impl Strategy<Value = Case> {
    let codes = ["XA0001", "XB0001", "XB0003", "DRUG-CEFTRIAXONE", "DRUG-WARFARIN", "BED-GENERAL", "SVC-SUTURE"];
    (
        prop::collection::vec((0..codes.len(), 1u32..40_000, 0i64..500_000, -1i32..4), 0..12),
        any::<bool>(),
        0u32..100,
        any::<bool>(),
        0u32..10,
        prop::option::of(0i32..40),
    )
        .prop_map(move |(lines, inpatient, age, female, visits, since)| {
            let mut c = Case::clean();
            c.claim.lines.clear();
            c.claim.inpatient = inpatient;
            c.claim.discharged = day(if inpatient { 3 } else { 0 });
            c.claim.age = age;
            c.claim.sex = if female { Sex::Female } else { Sex::Male };
            c.history.visits_last_30_days = visits;
            c.history.days_since_last_discharge = since;
            for (i, q, price, d) in lines {
                c.line(codes[i], Decimal::new(i64::from(q), 4), price, d);
            }
            c
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    /// Any claim: evaluation never panics, gives the same verdict twice, and the daily-limit
    /// rule hits exactly the lines whose day's quantity (summed here independently) is above
    /// the item's limit.
    #[test]
    fn evaluation_is_deterministic_and_matches_an_independent_count(c in arb_case()) {
        let v = c.verdict();
        prop_assert_eq!(&v, &c.verdict());
        prop_assert!(v.faults.is_empty(), "{:?}", v.faults);
        let mut per_day: BTreeMap<(String, Date), Decimal> = BTreeMap::new();
        for l in &c.claim.lines {
            *per_day.entry((l.line.code.to_string(), l.line.date)).or_default() += l.line.quantity;
        }
        let limit = |code: &str| demo_knowledge_base().item(code).and_then(|k| k.max_per_day);
        let expected: Vec<String> = c.claim.lines.iter()
            .filter(|l| limit(l.line.code.as_str()).is_some_and(|m| per_day[&(l.line.code.to_string(), l.line.date)] > m))
            .map(|l| l.line.serial.to_string())
            .collect();
        let got: Vec<String> = v.hits.iter().filter(|h| h.rule == "MED-08").filter_map(|h| h.line.clone()).collect();
        prop_assert_eq!(got, expected);
    }
}

/// Field reads are bound to one name each when compiled (`bind`); a comprehension variable
/// named like a record is still the variable inside its comprehension and the record outside,
/// and `has()` still tests the record.
#[test]
fn a_field_read_means_the_same_whether_bound_or_shadowed() {
    // The clean claim: XA0001 1 × 30.00 and XB0001 2 × 20.00, a 45-year-old man.
    let c = Case::clean();
    let facts = Facts::build(&c.claim, &demo_knowledge_base(), &c.history);
    let caught = |target, condition: &str| -> bool {
        let v = evaluate(&[compile(&rule(target, condition)).unwrap()], &facts);
        assert!(v.faults.is_empty(), "{condition}: {:?}", v.faults);
        !v.hits.is_empty()
    };
    for (target, condition, expected) in [
        (Target::Claim, "lines.exists(person, person.amount_fen == 4000)", true),
        (Target::Claim, "lines.exists(person, person.amount_fen == 4000) && person.age == 45", true),
        (Target::Claim, "lines.exists(claim, claim.code == \"XB0001\") && claim.total_fen == 7000", true),
        (Target::Claim, "lines.exists(claim, claim.code == \"XB0001\") && claim.total_fen == 7001", false),
        // A line's kind is the item's ("service"), the claim's is "outpatient".
        (Target::Claim, "lines.exists(claim, claim.kind == \"outpatient\")", false),
        (Target::Claim, "lines.exists(claim, claim.kind == \"service\") && claim.kind == \"outpatient\"", true),
        (Target::Claim, "lines.all(l, l.amount_fen < claim.total_fen)", true),
        (Target::Claim, "has(claim.total_fen) && has(person.age)", true),
        (Target::Claim, "[claim.line_count, institution.level, doctor.points][0] == 2", true),
        (Target::Line, "line.amount_fen == 4000 && [3000].exists(line, line == 3000)", true),
        (Target::Line, "[line.amount_fen].exists(line, line == 4000) && line.code == \"XB0001\"", true),
        (Target::Line, "[line.amount_fen].exists(line, line == 4000) && line.code == \"XZ\"", false),
    ] {
        assert_eq!(caught(target, condition), expected, "{condition}");
    }
}

/// Compiling binds a record's field read to one name, and leaves a shadowed one to CEL.
#[test]
fn compiling_binds_field_reads_to_one_name() {
    use cel::common::ast::Expr;
    let bound = |condition: &str| compile(&rule(Target::Claim, condition)).unwrap().program;
    assert!(matches!(&bound("claim.total_fen > 0").expr, Expr::Call(c)
        if matches!(&c.args[0].expr, Expr::Ident(n) if n == "claim.total_fen")));
    let shadowed = bound("lines.exists(claim, claim.kind == \"x\")");
    let text = format!("{:?}", shadowed.expr);
    assert!(!text.contains("Ident(\"claim.kind\")"), "{text}");
}
