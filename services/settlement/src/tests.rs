use super::*;
use proptest::prelude::*;
use rust_decimal_macros::dec;

fn money(s: &str) -> Money {
    Money::parse_yuan(s).unwrap()
}

fn item(code: &str, class: ItemClass, ceiling: Option<&str>, share: &str) -> CatalogueItem {
    CatalogueItem {
        code: ItemCode::new(code).unwrap(),
        name: code.to_string(),
        class,
        price_ceiling: ceiling.map(money),
        self_pay_share: Ratio::parse(share).unwrap(),
        restrictions: Restrictions::default(),
    }
}

fn policy() -> Policy {
    let mut ratios = BTreeMap::new();
    for level in 1..=3u8 {
        ratios.insert(
            (InsuranceType::Employee, level),
            Ratio::parse(["0.9", "0.85", "0.8"][level as usize - 1]).unwrap(),
        );
        ratios
            .insert((InsuranceType::Resident, level), Ratio::parse(["0.7", "0.6", "0.5"][level as usize - 1]).unwrap());
    }
    Policy {
        deductible: money("800"),
        ratios,
        annual_cap: money("300000"),
        critical_illness: CriticalIllnessTier { ratio: Ratio::parse("0.6").unwrap(), annual_cap: money("400000") },
        temporary_visitor_reduction: Ratio::parse("0.1").unwrap(),
        assistance: AssistancePolicy { ratio: Ratio::parse("0.7").unwrap(), annual_cap: money("20000") },
    }
}

fn line(serial: &str, code: &str, qty: Decimal, price: &str) -> FeeLine {
    FeeLine {
        serial: Serial::new(serial).unwrap(),
        code: ItemCode::new(code).unwrap(),
        quantity: qty,
        unit_price: money(price),
        date: Date::parse("2025-03-01").unwrap(),
    }
}

fn catalogue() -> Vec<CatalogueItem> {
    let mut b = item("B1", ItemClass::B, Some("100"), "0.1");
    b.restrictions.max_quantity_per_day = Some(dec!(3));
    let mut f = item("F1", ItemClass::A, None, "0");
    f.restrictions.sex = Some(Sex::Female);
    let mut t = item("T3", ItemClass::A, None, "0");
    t.restrictions.min_institution_level = Some(3);
    let mut k = item("K1", ItemClass::A, None, "0");
    k.restrictions.max_age = Some(14);
    vec![item("A1", ItemClass::A, Some("50"), "0"), b, item("C1", ItemClass::C, None, "0"), f, t, k]
}

fn claim(lines: Vec<FeeLine>) -> Claim {
    Claim {
        patient: Patient {
            sex: Sex::Male,
            age: 40,
            insurance: InsuranceType::Employee,
            account_balance: money("100"),
            medical_assistance: false,
        },
        institution_level: 2,
        reduced_ratio: false,
        use_individual_account: true,
        lines,
        rule_self_pay: BTreeMap::new(),
        assistance_fund: money("1000000"),
    }
}

fn run(c: &Claim, acc: &Accumulators) -> Result<Split, SettleError> {
    let cat = catalogue();
    let p = policy();
    settle(c, |code| cat.iter().find(|i| &i.code == code), &p, acc)
}

fn assert_sums(s: &Split) {
    assert_eq!(s.total, s.fully_self_paid + s.over_ceiling + s.pre_self_pay + s.in_policy);
    assert_eq!(s.total, s.pooling_fund + s.critical_illness + s.medical_assistance + s.individual_account + s.cash);
    assert!(!s.cash.is_negative() && !s.individual_account.is_negative());
}

#[test]
fn worked_example_splits_every_part() {
    // A1: 2 x 60 with ceiling 50 -> 120, 20 over ceiling, 100 in policy.
    // B1: 1 x 200 with ceiling 100 -> 100 over ceiling, 10% of 100 pre-self-pay, 90 in policy.
    // C1: 30 fully self-paid.
    let c =
        claim(vec![line("1", "A1", dec!(2), "60"), line("2", "B1", dec!(1), "200"), line("3", "C1", dec!(1), "30")]);
    let s = run(&c, &Accumulators::default()).unwrap();
    assert_eq!(s.total, money("350"));
    assert_eq!(s.over_ceiling, money("120"));
    assert_eq!(s.pre_self_pay, money("10"));
    assert_eq!(s.fully_self_paid, money("30"));
    assert_eq!(s.in_policy, money("190"));
    // All 190 goes to the 800 deductible.
    assert_eq!(s.deductible_applied, money("190"));
    assert_eq!(s.pooling_fund, Money::ZERO);
    assert_eq!(s.individual_account, money("100"));
    assert_eq!(s.cash, money("250"));
    assert_sums(&s);
}

#[test]
fn deductible_met_then_ratio_applies() {
    let acc = Accumulators { deductible_used: money("800"), ..Default::default() };
    let c = claim(vec![line("1", "A1", dec!(1), "50")]);
    let s = run(&c, &acc).unwrap();
    assert_eq!(s.deductible_applied, Money::ZERO);
    assert_eq!(s.pooling_fund, money("42.50"));
    assert_sums(&s);
}

#[test]
fn annual_cap_then_critical_illness_tier() {
    let acc = Accumulators { deductible_used: money("800"), pooling_paid: money("299990"), ..Default::default() };
    let c = claim(vec![line("1", "A1", dec!(2), "50")]);
    let s = run(&c, &acc).unwrap();
    // Pooling would pay 85; only 10 of headroom is left.
    assert_eq!(s.pooling_fund, money("10"));
    // 10 / 0.85 = 11.76 of the 100 was covered; 60% of the other 88.24 is 52.94.
    assert_eq!(s.critical_illness, money("52.94"));
    assert_eq!(acc.apply(&s).pooling_paid, money("300000"));
    assert_sums(&s);
}

#[test]
fn restrictions_make_lines_fully_self_paid() {
    let mut c = claim(vec![
        line("1", "F1", dec!(1), "10"),
        line("2", "T3", dec!(1), "10"),
        line("3", "K1", dec!(1), "10"),
        line("4", "B1", dec!(2), "10"),
        line("5", "B1", dec!(2), "10"),
    ]);
    c.lines[4].serial = Serial::new("5").unwrap();
    let s = run(&c, &Accumulators::default()).unwrap();
    let reasons: Vec<_> = s.lines.iter().map(|l| l.self_pay_reason).collect();
    assert_eq!(
        reasons,
        vec![
            Some(SelfPayReason::SexRestriction),
            Some(SelfPayReason::InstitutionLevelRestriction),
            Some(SelfPayReason::AgeRestriction),
            Some(SelfPayReason::QuantityRestriction),
            Some(SelfPayReason::QuantityRestriction),
        ]
    );
    assert_eq!(s.fully_self_paid, s.total);
    assert_sums(&s);
}

/// A line a monitoring rule moved to the patient's share is paid by the patient in full, with
/// the rule named; a catalogue restriction on the same line stays the reason.
#[test]
fn a_monitoring_rule_moves_a_line_to_the_patients_share() {
    let acc = Accumulators { deductible_used: money("800"), ..Default::default() };
    let clean = claim(vec![line("1", "A1", dec!(1), "40"), line("2", "A1", dec!(1), "40")]);
    let before = run(&clean, &acc).unwrap();
    let mut c = clean.clone();
    c.rule_self_pay.insert(Serial::new("2").unwrap(), "MGT-03".into());
    c.lines.push(line("3", "F1", dec!(1), "10"));
    c.rule_self_pay.insert(Serial::new("3").unwrap(), "MED-01".into());
    let s = run(&c, &acc).unwrap();
    assert_eq!(s.lines[1].self_pay_reason, Some(SelfPayReason::MonitoringRule));
    assert_eq!(s.lines[1].rule.as_deref(), Some("MGT-03"));
    assert_eq!((s.lines[2].self_pay_reason, s.lines[2].rule.as_deref()), (Some(SelfPayReason::SexRestriction), None));
    assert_eq!(s.lines[0].rule, None);
    // The fund pays for line 1 only: half of what it paid for both lines (ratio 0.85 of 40).
    assert_eq!(before.pooling_fund, money("68"));
    assert_eq!(s.pooling_fund, money("34"));
    assert_eq!(s.fully_self_paid, money("50"));
    assert_sums(&s);
}

#[test]
fn temporary_visitor_ratio_is_reduced() {
    let acc = Accumulators { deductible_used: money("800"), ..Default::default() };
    let mut c = claim(vec![line("1", "A1", dec!(1), "50")]);
    c.reduced_ratio = true;
    let s = run(&c, &acc).unwrap();
    assert_eq!(s.ratio, Ratio::parse("0.75").unwrap());
    assert_eq!(s.pooling_fund, money("37.50"));
}

/// Medical assistance pays 70% of what the person still bears in policy after the pooling fund
/// and the critical-illness tier, before the individual account and cash.
#[test]
fn medical_assistance_pays_a_share_of_the_remaining_in_policy_burden() {
    // In policy: 1,000 (A1 at its ceiling: 20 x 50); deductible 800 met earlier.
    let acc = Accumulators { deductible_used: money("800"), ..Default::default() };
    let mut c = claim(vec![line("1", "A1", dec!(20), "50"), line("2", "C1", dec!(1), "30")]);
    let plain = run(&c, &acc).unwrap();
    assert_eq!(plain.medical_assistance, Money::ZERO, "not entitled: nothing");
    c.patient.medical_assistance = true;
    let s = run(&c, &acc).unwrap();
    // Pooling 85% of 1,000 = 850; the person bears 150 in policy; assistance 70% = 105.
    assert_eq!((s.pooling_fund, s.medical_assistance), (money("850"), money("105")));
    // The rest (45 in policy + 30 class C = 75) from the account (100), then cash.
    assert_eq!((s.individual_account, s.cash), (money("75"), Money::ZERO));
    assert_eq!(s.fund_total(), money("955"));
    assert_sums(&s);
    assert_eq!(acc.apply(&s).assistance_paid, money("105"));

    // With the deductible still to meet, assistance covers 70% of it too: in policy 1,000,
    // deductible 800, pooling 85% of 200 = 170, burden 830, assistance 581.
    let s = run(&c, &Accumulators::default()).unwrap();
    assert_eq!((s.pooling_fund, s.medical_assistance), (money("170"), money("581")));
    assert_sums(&s);
}

#[test]
fn medical_assistance_stays_within_its_cap_and_its_fund() {
    let mut c = claim(vec![line("1", "A1", dec!(20), "50")]);
    c.patient.medical_assistance = true;
    let acc = Accumulators { deductible_used: money("800"), assistance_paid: money("19950"), ..Default::default() };
    // 105 due; 50 left of the 20,000 cap.
    let s = run(&c, &acc).unwrap();
    assert_eq!(s.medical_assistance, money("50"));
    assert_eq!(acc.apply(&s).assistance_paid, money("20000"));
    assert_sums(&s);
    // A fund holding 12.34 pays 12.34; an empty or overdrawn one pays nothing.
    let acc = Accumulators { deductible_used: money("800"), ..Default::default() };
    for (fund, want) in [("12.34", "12.34"), ("0", "0"), ("-5", "0")] {
        c.assistance_fund = Money::parse_signed_yuan(fund).unwrap();
        let s = run(&c, &acc).unwrap();
        assert_eq!(s.medical_assistance, money(want), "fund {fund}");
        assert_sums(&s);
    }
}

#[test]
fn bad_claims_name_the_line() {
    let c = claim(vec![line("1", "ZZ", dec!(1), "1")]);
    assert!(matches!(run(&c, &Accumulators::default()), Err(SettleError::UnknownItem { index: 0, .. })));
    let c = claim(vec![line("1", "A1", dec!(0), "1")]);
    assert!(matches!(run(&c, &Accumulators::default()), Err(SettleError::BadQuantity { index: 0 })));
    let c = claim(vec![line("1", "A1", dec!(1), "1"), line("1", "A1", dec!(1), "1")]);
    assert!(matches!(run(&c, &Accumulators::default()), Err(SettleError::DuplicateLine { index: 1, .. })));
    assert!(matches!(run(&claim(vec![]), &Accumulators::default()), Err(SettleError::NoLines)));
}

fn arb_line() -> impl Strategy<Value = (usize, u32, i64)> {
    (0usize..6, 1u32..5000, 1i64..500_000)
}

fn arb_acc() -> impl Strategy<Value = Accumulators> {
    (0i64..100_000, 0i64..30_000_000, 0i64..40_000_000).prop_map(|(d, p, c)| Accumulators {
        deductible_used: Money::from_fen(d).min(money("800")),
        pooling_paid: Money::from_fen(p * 1000).min(money("300000")),
        critical_illness_paid: Money::from_fen(c * 1000).min(money("400000")),
        in_policy_total: Money::ZERO,
        assistance_paid: Money::from_fen(d * 100).min(money("20000")),
    })
}

fn build_claim(raw: &[(usize, u32, i64)], level: u8, resident: bool, reduced: bool, balance: i64) -> Claim {
    let codes = ["A1", "B1", "C1", "F1", "T3", "K1"];
    let mut c = claim(
        raw.iter()
            .enumerate()
            .map(|(i, (code, q, price))| FeeLine {
                serial: Serial::new(format!("L{i}")).unwrap(),
                code: ItemCode::new(codes[*code]).unwrap(),
                quantity: Decimal::new(*q as i64, 2),
                unit_price: Money::from_fen(*price),
                date: Date::parse("2025-03-01").unwrap(),
            })
            .collect(),
    );
    c.institution_level = level;
    c.reduced_ratio = reduced;
    c.patient.account_balance = Money::from_fen(balance);
    if resident {
        c.patient.insurance = InsuranceType::Resident;
    }
    // Entitled to medical assistance on odd balances, so every property covers both.
    c.patient.medical_assistance = balance % 2 == 1;
    c
}

proptest! {
    #[test]
    fn parts_always_sum_to_the_total(
        raw in proptest::collection::vec(arb_line(), 1..20),
        level in 1u8..=3, resident: bool, reduced: bool, balance in 0i64..1_000_000, acc in arb_acc(),
    ) {
        let c = build_claim(&raw, level, resident, reduced, balance);
        let s = run(&c, &acc).unwrap();
        prop_assert_eq!(s.total, s.fully_self_paid + s.over_ceiling + s.pre_self_pay + s.in_policy);
        prop_assert_eq!(
            s.total,
            s.pooling_fund + s.critical_illness + s.medical_assistance + s.individual_account + s.cash
        );
        prop_assert_eq!(s.total, s.lines.iter().map(|l| l.amount).sum::<Money>());
        prop_assert!(!s.cash.is_negative());
        prop_assert!(s.individual_account <= c.patient.account_balance);
        prop_assert!(s.deductible_applied + s.pooling_fund + s.critical_illness <= s.in_policy);
        prop_assert!(s.pooling_fund + s.critical_illness + s.medical_assistance <= s.in_policy);
        prop_assert!(c.patient.medical_assistance || s.medical_assistance.is_zero());
    }

    #[test]
    fn accumulators_never_pass_a_cap(
        claims in proptest::collection::vec((proptest::collection::vec(arb_line(), 1..8), 1u8..=3), 1..30),
    ) {
        let p = policy();
        let mut acc = Accumulators::default();
        for (raw, level) in claims {
            let mut c = build_claim(&raw, level, false, false, 1);
            for l in &mut c.lines { l.unit_price = Money::from_fen(l.unit_price.to_fen() * 97); }
            // Claims past the line or claim limit are refused, never settled.
            let Ok(s) = run(&c, &acc) else {
                prop_assert!(crate::check_amounts(&c.lines).is_err());
                continue;
            };
            acc = acc.apply(&s);
            prop_assert!(acc.pooling_paid <= p.annual_cap);
            prop_assert!(acc.critical_illness_paid <= p.critical_illness.annual_cap);
            prop_assert!(acc.deductible_used <= p.deductible);
            prop_assert!(acc.assistance_paid <= p.assistance.annual_cap);
        }
    }

    #[test]
    fn reversal_restores_accumulators_exactly(raw in proptest::collection::vec(arb_line(), 1..20), acc in arb_acc()) {
        let c = build_claim(&raw, 2, false, false, 0);
        let s = run(&c, &acc).unwrap();
        prop_assert_eq!(acc.apply(&s).reverse(&s), acc);
    }

    #[test]
    fn same_input_same_output(raw in proptest::collection::vec(arb_line(), 1..20), acc in arb_acc()) {
        let c = build_claim(&raw, 3, true, true, 5000);
        prop_assert_eq!(run(&c, &acc), run(&c.clone(), &acc));
    }
}
