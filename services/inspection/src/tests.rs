use proptest::prelude::*;

use super::*;

/// Bytes 0 to 31.
fn nonce() -> [u8; 32] {
    std::array::from_fn(|i| i as u8)
}

/// Bytes 32 to 63.
fn beacon() -> [u8; 32] {
    std::array::from_fn(|i| 32 + i as u8)
}

/// The published test vector (`testdata/vector.json`, README "Inspections"; nonce bytes 0–31,
/// beacon bytes 32–63): its expected draw was computed by `scripts/verify_draw.py`, an
/// independent implementation in Python.
fn vector() -> Plan {
    let grades = [Grade::A, Grade::B, Grade::C, Grade::D, Grade::A, Grade::B];
    Plan {
        id: "P-2026-01".into(),
        targets: (1..=6).map(|i| Target { id: format!("H1100000{i}"), grade: grades[i - 1] }).collect(),
        inspectors: (1..=10)
            .map(|i| Inspector {
                id: format!("I{i:02}"),
                home: (i <= 6).then(|| format!("H1100000{i}")),
                region: if i % 2 == 1 { "110000" } else { "310000" }.into(),
            })
            .collect(),
        conflicts: vec![
            Conflict { inspector: "I07".into(), institution: "H11000004".into() },
            Conflict { inspector: "I08".into(), institution: "H11000004".into() },
        ],
        draw_targets: 3,
        per_target: 2,
        commitment: commitment(&nonce()),
    }
}

#[test]
fn the_published_test_vector() {
    assert_eq!(hex::encode(commitment(&nonce())), "630dcd2966c4336691125448bbb25b4ff412a49c732db2c8abc1b8581bd710dd");
    let got = draw(&vector(), &nonce(), &beacon()).unwrap();
    let want = [("H11000006", ["I07", "I09"]), ("H11000004", ["I03", "I10"]), ("H11000002", ["I04", "I06"])];
    let got: Vec<(&str, Vec<&str>)> =
        got.iter().map(|a| (a.target.as_str(), a.inspectors.iter().map(String::as_str).collect())).collect();
    let want: Vec<(&str, Vec<&str>)> = want.iter().map(|(t, i)| (*t, i.to_vec())).collect();
    assert_eq!(got, want);
}

#[test]
fn the_order_pools_are_given_in_does_not_matter() {
    let mut p = vector();
    p.targets.reverse();
    p.inspectors.reverse();
    p.conflicts.reverse();
    assert_eq!(draw(&p, &nonce(), &beacon()), draw(&vector(), &nonce(), &beacon()));
    // Another beacon, another draw.
    assert_ne!(draw(&vector(), &nonce(), &[0; 32]), draw(&vector(), &nonce(), &beacon()));
}

#[test]
fn a_nonce_that_does_not_match_the_commitment_is_refused() {
    let mut other = nonce();
    other[0] ^= 1;
    assert_eq!(draw(&vector(), &other, &beacon()).unwrap_err().field, "nonce");
    assert_eq!(parse_hex32("nonce", "00").unwrap_err().field, "nonce");
    assert_eq!(parse_hex32("nonce", &"zz".repeat(32)).unwrap_err().field, "nonce");
    assert_eq!(parse_hex32("nonce", &hex::encode(nonce())).unwrap(), nonce());
}

#[test]
fn bad_plans_name_the_field() {
    type Change = Box<dyn Fn(&mut Plan)>;
    let cases: Vec<(Change, &str)> = vec![
        (Box::new(|p| p.id = "has space".into()), "id"),
        (Box::new(|p| p.targets.clear()), "targets"),
        (Box::new(|p| p.targets[1].id = p.targets[0].id.clone()), "targets[1].id"),
        (Box::new(|p| p.inspectors[2].id = "I01".into()), "inspectors[2].id"),
        (Box::new(|p| p.inspectors[0].region = String::new()), "inspectors[0].region"),
        (Box::new(|p| p.inspectors[0].home = Some("é".into())), "inspectors[0].home_institution"),
        (Box::new(|p| p.conflicts[1].institution = String::new()), "conflicts[1].institution"),
        (Box::new(|p| p.draw_targets = 0), "draw_targets"),
        (Box::new(|p| p.draw_targets = 7), "draw_targets"),
        (Box::new(|p| p.per_target = 0), "inspectors_per_target"),
        // 3 targets × 3 inspectors + 3 in conflict with H11000004 = 12 > 10.
        (Box::new(|p| p.per_target = 3), "inspectors"),
    ];
    for (change, field) in cases {
        let mut p = vector();
        change(&mut p);
        assert_eq!(p.check().unwrap_err().field, field, "{p:?}");
        assert_eq!(draw(&p, &nonce(), &beacon()).unwrap_err().field, field);
    }
    assert_eq!(vector().check(), Ok(()));
}

/// Weighting: of targets graded A and D, D is drawn with probability 4/5. Over 4,000 nonces
/// the share is within 0.03 of 0.8 (more than 4 standard deviations: 0.0063 each).
#[test]
fn a_lower_grade_is_drawn_more_often() {
    let mut plan = vector();
    plan.targets = vec![Target { id: "HA".into(), grade: Grade::A }, Target { id: "HD".into(), grade: Grade::D }];
    plan.conflicts.clear();
    plan.draw_targets = 1;
    plan.per_target = 1;
    let mut d = 0;
    let runs = 4_000u32;
    for i in 0..runs {
        let mut n = [0u8; 32];
        n[..4].copy_from_slice(&i.to_be_bytes());
        plan.commitment = commitment(&n);
        if draw(&plan, &n, &beacon()).unwrap()[0].target == "HD" {
            d += 1;
        }
    }
    let share = f64::from(d) / f64::from(runs);
    assert!((share - 0.8).abs() < 0.03, "D drawn {share} of the time");
}

fn arb_plan() -> impl Strategy<Value = (Plan, [u8; 32])> {
    (
        proptest::collection::vec(0u8..4, 1..12),
        4usize..40,
        proptest::collection::vec((0usize..40, 0usize..12), 0..20),
        1u32..4,
        1u32..4,
        any::<[u8; 32]>(),
    )
        .prop_map(|(grades, n_insp, conflicts, n, k, nonce)| {
            let grade = [Grade::A, Grade::B, Grade::C, Grade::D];
            let targets: Vec<Target> = grades
                .iter()
                .enumerate()
                .map(|(i, g)| Target { id: format!("T{i}"), grade: grade[*g as usize] })
                .collect();
            let n_targets = targets.len();
            let plan = Plan {
                id: "P".into(),
                inspectors: (0..n_insp)
                    .map(|i| Inspector {
                        id: format!("I{i}"),
                        home: (i % 3 == 0).then(|| format!("T{}", i % n_targets)),
                        region: "110000".into(),
                    })
                    .collect(),
                targets,
                conflicts: conflicts
                    .into_iter()
                    .map(|(p, t)| Conflict { inspector: format!("I{p}"), institution: format!("T{t}") })
                    .collect(),
                draw_targets: n.min(n_targets as u32),
                per_target: k,
                commitment: commitment(&nonce),
            };
            (plan, nonce)
        })
}

proptest! {
    /// Whatever the plan and nonce: a plan that passes its check always draws; the draw is the
    /// same twice; targets and inspectors are distinct; no inspector is in conflict with their
    /// target.
    #[test]
    fn draws_respect_exclusions_and_repeat((plan, nonce) in arb_plan()) {
        let Ok(()) = plan.check() else { return Ok(()) };
        let a = draw(&plan, &nonce, &beacon()).unwrap();
        prop_assert_eq!(&a, &draw(&plan, &nonce, &beacon()).unwrap());
        prop_assert_eq!(a.len(), plan.draw_targets as usize);
        let mut targets = std::collections::BTreeSet::new();
        let mut inspectors = std::collections::BTreeSet::new();
        for x in &a {
            prop_assert!(targets.insert(x.target.clone()));
            prop_assert_eq!(x.inspectors.len(), plan.per_target as usize);
            for i in &x.inspectors {
                prop_assert!(inspectors.insert(i.clone()));
                let p = plan.inspectors.iter().find(|p| &p.id == i).unwrap();
                prop_assert!(p.home.as_deref() != Some(x.target.as_str()));
                prop_assert!(!plan.conflicts.iter().any(|c| &c.inspector == i && c.institution == x.target));
            }
        }
    }
}
