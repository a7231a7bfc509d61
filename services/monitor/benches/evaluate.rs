//! Bench (issue 11): what the rules cost one replica per claim, without Raft or storage:
//! building a claim's facts, and running every shipped rule over facts already built, each
//! timed on its own.
//!
//! ```sh
//! cargo bench -p medmesh-monitor --bench evaluate -- --claims 20000
//! ```
//!
//! The claim is the settlement bench's: an outpatient visit with ten fee lines over the demo
//! catalogue's codes, some repeated on the day (so duplicate-charging and per-day rules have
//! work to do), with a person's history of earlier visits.

use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::Instant;

use medmesh_monitor::{
    compile, demo_knowledge_base, evaluate, shipped_rules, ClaimInput, DoctorFacts, Facts, History, LineInput,
};
use medmesh_settlement::{CatalogueItem, FeeLine, InsuranceType, ItemClass, Restrictions, Sex};
use medmesh_types::{Date, ItemCode, Money, Ratio, Serial};
use rust_decimal::Decimal;

/// The demo catalogue's codes, as the settlement bench bills them.
const CODES: [&str; 8] = ["XA0001", "XA0002", "XA0003", "XB0001", "XB0002", "XB0003", "XC0001", "XF0001"];

fn claim(n: u64, day: Date) -> ClaimInput {
    let lines = (0..10u64)
        .map(|j| {
            let code = CODES[((n + j) % 8) as usize];
            LineInput {
                line: FeeLine {
                    serial: Serial::new(format!("L{j}")).expect("serial"),
                    code: ItemCode::new(code).expect("code"),
                    quantity: Decimal::from(1 + (n + j) % 3),
                    unit_price: Money::from_fen(1_000 + ((n * 7 + j * 13) % 19_000) as i64),
                    date: day,
                },
                catalogue: Some(CatalogueItem {
                    code: ItemCode::new(code).expect("code"),
                    name: code.into(),
                    class: ItemClass::A,
                    price_ceiling: Some(Money::from_fen(20_000)),
                    self_pay_share: Ratio::ZERO,
                    restrictions: Restrictions::default(),
                }),
            }
        })
        .collect();
    ClaimInput {
        inpatient: false,
        admitted: day,
        discharged: day,
        diagnosis: "J06.9".into(),
        department: "internal medicine".into(),
        nonlocal: false,
        age: 45,
        sex: Sex::Male,
        insurance: InsuranceType::Employee,
        institution: "H001".into(),
        institution_level: 2,
        doctor: DoctorFacts { code: "D001".into(), points: 2, ..Default::default() },
        lines,
    }
}

fn history(day: Date) -> History {
    let mut billed = BTreeMap::new();
    for code in &CODES[..4] {
        billed.insert((code.to_string(), day.days()), 1);
    }
    History {
        days_since_last_discharge: Some(3),
        visits_last_7_days: 2,
        visits_last_30_days: 5,
        same_day_visits_here: 1,
        billed_elsewhere: billed,
        course_days_before: CODES.iter().map(|c| (c.to_string(), 2)).collect(),
        ..History::default()
    }
}

fn main() {
    let mut claims = 20_000u64;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        if a == "--claims" {
            claims = args.next().and_then(|v| v.parse().ok()).expect("--claims N");
        }
    }
    let kb = demo_knowledge_base();
    let rules: Vec<_> = shipped_rules().iter().map(|r| compile(r).expect("shipped rules compile")).collect();
    let day = Date::parse("2026-03-10").expect("day");
    let inputs: Vec<ClaimInput> = (0..64).map(|n| claim(n, day)).collect();
    let h = history(day);
    println!(
        "{} rules, {} of them line rules; {claims} claims of 10 lines each",
        rules.len(),
        rules.iter().filter(|r| r.rule.target == medmesh_monitor::Target::Line).count()
    );
    // warm up
    for c in inputs.iter().take(16) {
        black_box(evaluate(&rules, &Facts::build(c, &kb, &h)));
    }
    let t = Instant::now();
    for i in 0..claims {
        black_box(Facts::build(&inputs[(i % 64) as usize], &kb, &h));
    }
    report("building the facts", claims, t.elapsed(), None);
    let facts: Vec<Facts> = inputs.iter().map(|c| Facts::build(c, &kb, &h)).collect();
    let t = Instant::now();
    let mut hits = 0usize;
    for i in 0..claims {
        hits += evaluate(&rules, &facts[(i % 64) as usize]).hits.len();
    }
    report("evaluating every shipped rule", claims, t.elapsed(), Some(hits));
}

fn report(label: &str, claims: u64, e: std::time::Duration, hits: Option<usize>) {
    let per = e.as_nanos() / u128::from(claims.max(1));
    let hits = hits.map(|h| format!("; {} hits per 100 claims", h as u64 * 100 / claims.max(1))).unwrap_or_default();
    println!(
        "{label}: {}.{} µs per claim ({claims} claims in {} ms{hits})",
        per / 1000,
        per % 1000 / 100,
        e.as_millis()
    );
}
