//! Tests of the payment cycle and prepayment rules, against figures worked out by hand.

use medmesh_types::{Date, InstitutionId, LogTime, Money, Serial};
use proptest::prelude::*;

use crate::cycle::{DeclarationStatus, CONTEST_DAYS};
use crate::prepay::{check_conditions, size_general, size_special, window, Conditions};
use crate::*;

fn yuan(s: &str) -> Money {
    Money::parse_signed_yuan(s).unwrap()
}
/// The instant `ms` after midnight (China Standard Time) of `d`.
fn cst(d: Date, ms: i64) -> LogTime {
    LogTime(i64::from(d.days()) * 86_400_000 - 8 * 3_600_000 + ms)
}
fn day(s: &str) -> Date {
    Date::parse(s).unwrap()
}
fn at(s: &str) -> LogTime {
    LogTime(i64::from(day(s).days()) * 86_400_000 + 3_600_000)
}
fn p(s: &str) -> Period {
    Period::parse(s).unwrap()
}
fn serial(s: &str) -> Serial {
    Serial::new(s).unwrap()
}

#[test]
fn periods_parse_order_and_end() {
    assert_eq!(p("2024-02").last_day(), day("2024-02-29"));
    assert_eq!(p("2025-02").last_day(), day("2025-02-28"));
    assert_eq!(p("2025-12").next(), p("2026-01"));
    assert_eq!(p("2025-01").prev(), p("2024-12"));
    assert_eq!(p("2025-03").minus_months(12), p("2024-03"));
    assert_eq!(p("2025-03").minus_months(3), p("2024-12"));
    assert_eq!(p("2024-12").months_until(p("2025-03")), 3);
    assert_eq!(p("2025-03").key(), "202503");
    assert_eq!(p("2025-03").to_string(), "2025-03");
    assert!(!p("2025-03").ended_by(day("2025-03-31")));
    assert!(p("2025-03").ended_by(day("2025-04-01")));
    for bad in ["2025-3", "2025-13", "2025-00", "25-03", "2025/03", "1999-12", "2025-03-01", "+025-03", ""] {
        assert_eq!(Period::parse(bad), None, "{bad}");
    }
}

fn march() -> Declaration {
    let account = MonthAccount {
        settled: yuan("1000.00"),
        settlements: 3,
        reversed: yuan("100.00"),
        reversals: 1,
        recovered: yuan("50.00"),
        late: 0,
    };
    Declaration::new(InstitutionId::new("H001").unwrap(), p("2025-03"), serial("D1"), account, at("2025-04-02"))
        .unwrap()
}

fn ded(s: &str, amount: &str) -> DeductionInput {
    DeductionInput { settlement: serial(s), amount: yuan(amount), reason: "no indication".into(), alert: None }
}

/// Lines S1 (400.00), S2 (350.00 with 50.00 recovered: 300.00 left), S3 reversed.
fn cap(s: &Serial) -> Result<Money, String> {
    match s.as_str() {
        "S1" => Ok(yuan("400.00")),
        "S2" => Ok(yuan("300.00")),
        "S3" => Err("settlement S3 was reversed".into()),
        other => Err(format!("settlement {other} is not a line of 2025-03")),
    }
}

#[test]
fn a_month_is_declared_after_it_ends_at_its_net_amount() {
    let d = march();
    // 1000.00 settled − 100.00 reversed − 50.00 recovered.
    assert_eq!(d.declared, yuan("850.00"));
    assert_eq!(d.approved(), yuan("850.00"));
    assert_eq!(d.status, DeclarationStatus::Declared);
    let early = Declaration::new(
        InstitutionId::new("H001").unwrap(),
        p("2025-04"),
        serial("D2"),
        MonthAccount::default(),
        at("2025-04-30"),
    )
    .unwrap_err();
    assert_eq!(early.field(), "period");
    assert!(matches!(early, PayError::State { .. }));
}

#[test]
fn review_deducts_line_by_line_within_each_lines_share() {
    let mut d = march();
    let total = d.review(vec![ded("S1", "120.00"), ded("S2", "30.50")], "", at("2025-04-10"), cap).unwrap();
    assert_eq!(total, yuan("150.50"));
    assert_eq!(d.deducted(), yuan("150.50"));
    assert_eq!(d.approved(), yuan("699.50"));
    assert_eq!(d.outstanding(), yuan("699.50"));
    // Once only.
    let again = d.review(vec![], "", at("2025-04-11"), cap).unwrap_err();
    assert_eq!(again.field(), "period");
}

#[test]
fn bad_reviews_name_the_line_and_change_nothing() {
    let cases: Vec<(Vec<DeductionInput>, &str)> = vec![
        (vec![ded("S1", "1.00"), ded("S1", "2.00")], "deductions[1].settlement_serial"),
        (vec![ded("S1", "0.00")], "deductions[0].amount"),
        (vec![ded("S1", "-1.00")], "deductions[0].amount"),
        (vec![ded("S2", "300.01")], "deductions[0].amount"),
        (vec![ded("S1", "1.00"), ded("S3", "1.00")], "deductions[1].settlement_serial"),
        (vec![ded("S9", "1.00")], "deductions[0].settlement_serial"),
        (
            vec![DeductionInput { settlement: serial("S1"), amount: yuan("1.00"), reason: " ".into(), alert: None }],
            "deductions[0].reason",
        ),
    ];
    for (lines, field) in cases {
        let mut d = march();
        let before = d.clone();
        let e = d.review(lines, "", at("2025-04-10"), cap).unwrap_err();
        assert_eq!(e.field(), field);
        assert_eq!(d, before, "{field}: nothing half-applied");
    }
    // Together more than declared: a month declared at 100.00 with a line of 400.00.
    let mut small = Declaration::new(
        InstitutionId::new("H001").unwrap(),
        p("2025-03"),
        serial("D1"),
        MonthAccount { settled: yuan("500.00"), settlements: 2, reversed: yuan("400.00"), ..Default::default() },
        at("2025-04-02"),
    )
    .unwrap();
    assert_eq!(small.review(vec![ded("S1", "100.01")], "", at("2025-04-03"), cap).unwrap_err().field(), "deductions");
}

#[test]
fn a_deducted_line_is_contested_once_within_the_window() {
    let mut d = march();
    assert_eq!(d.contest(&serial("S1"), "it was indicated", at("2025-04-05")).unwrap_err().field(), "period");
    d.review(vec![ded("S1", "120.00"), ded("S2", "30.00")], "", at("2025-04-10"), cap).unwrap();
    assert_eq!(d.contest(&serial("S3"), "x", at("2025-04-11")).unwrap_err().field(), "settlement_serial");
    assert_eq!(d.contest(&serial("S1"), "", at("2025-04-11")).unwrap_err().field(), "reason");
    d.contest(&serial("S1"), "it was indicated", at("2025-04-11")).unwrap();
    assert_eq!(d.contests_open(), 1);
    assert_eq!(d.contest(&serial("S1"), "again", at("2025-04-12")).unwrap_err().field(), "settlement_serial");
    // The window: the review day plus CONTEST_DAYS, inclusive.
    let last = day("2025-04-10").plus_days(CONTEST_DAYS);
    assert_eq!(d.contest_until(), Some(last));
    let late = cst(last.plus_days(1), 0);
    assert_eq!(d.contest(&serial("S2"), "late", late).unwrap_err().field(), "settlement_serial");
    let on_time = cst(last, 86_399_999);
    d.contest(&serial("S2"), "on the last day", on_time).unwrap();
}

#[test]
fn an_accepted_contest_withdraws_the_deduction_a_rejected_one_does_not() {
    let mut d = march();
    d.review(vec![ded("S1", "120.00"), ded("S2", "30.00")], "", at("2025-04-10"), cap).unwrap();
    d.contest(&serial("S1"), "indicated", at("2025-04-11")).unwrap();
    d.contest(&serial("S2"), "indicated", at("2025-04-11")).unwrap();
    assert_eq!(d.resolve(&serial("S1"), true, "agreed", at("2025-04-12")).unwrap(), yuan("120.00"));
    assert_eq!(d.resolve(&serial("S2"), false, "not indicated", at("2025-04-12")).unwrap(), Money::ZERO);
    assert_eq!(
        d.resolve(&serial("S2"), true, "changed my mind", at("2025-04-13")).unwrap_err().field(),
        "settlement_serial"
    );
    assert_eq!(d.deducted(), yuan("30.00"));
    assert_eq!(d.approved(), yuan("820.00"));
    assert_eq!(d.contests_open(), 0);
}

#[test]
fn payments_never_exceed_what_is_approved() {
    let mut d = march();
    assert_eq!(d.pay(&serial("P1"), yuan("1.00"), Money::ZERO).unwrap_err().field(), "period");
    d.review(vec![ded("S1", "50.00")], "", at("2025-04-10"), cap).unwrap();
    // Approved 800.00.
    assert_eq!(d.pay(&serial("P1"), yuan("800.01"), Money::ZERO).unwrap_err().field(), "amount");
    assert_eq!(d.pay(&serial("P1"), Money::ZERO, Money::ZERO).unwrap_err().field(), "amount");
    assert_eq!(d.pay(&serial("P1"), yuan("-1.00"), Money::ZERO).unwrap_err().field(), "amount");
    assert_eq!(d.pay(&serial("P1"), Money::ZERO, yuan("-1.00")).unwrap_err().field(), "offset");
    d.pay(&serial("P1"), yuan("500.00"), yuan("100.00")).unwrap();
    assert_eq!(d.outstanding(), yuan("200.00"));
    assert_eq!(d.pay(&serial("P1"), yuan("150.00"), yuan("50.01")).unwrap_err().field(), "amount");
    d.pay(&serial("P1"), yuan("200.00"), Money::ZERO).unwrap();
    assert_eq!((d.paid, d.offset, d.outstanding(), d.payments.len()), (yuan("700.00"), yuan("100.00"), Money::ZERO, 2));
}

#[derive(Debug, Clone)]
enum Op {
    Contest(usize),
    Resolve(usize, bool),
    Pay(i64, i64),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (0usize..4).prop_map(Op::Contest),
        (0usize..4, any::<bool>()).prop_map(|(i, a)| Op::Resolve(i, a)),
        (0i64..60_000, 0i64..20_000).prop_map(|(a, o)| Op::Pay(a, o)),
    ]
}

proptest! {
    /// Whatever the sequence of contests, answers and payments: declared = deducted + paid +
    /// offset + outstanding, nothing is paid beyond what is approved, and a refused step
    /// changes nothing.
    #[test]
    fn the_cycle_conserves_money(
        lines in proptest::collection::vec(1i64..40_000, 0..4),
        ops in proptest::collection::vec(op(), 0..30),
    ) {
        let mut d = march();
        let inputs: Vec<DeductionInput> = lines
            .iter()
            .enumerate()
            .map(|(i, fen)| DeductionInput {
                settlement: serial(&format!("S{i}")),
                amount: Money::from_fen(*fen),
                reason: "r".into(),
                alert: None,
            })
            .collect();
        let fen: i64 = lines.iter().sum();
        let reviewed = d.review(inputs, "", at("2025-04-10"), |_| Ok(Money::from_fen(40_000)));
        prop_assert_eq!(reviewed.is_ok(), fen <= 85_000);
        let mut paid_total = Money::ZERO;
        for o in ops {
            let before = d.clone();
            let r = match o {
                Op::Contest(i) => d.contest(&serial(&format!("S{i}")), "c", at("2025-04-11")).map(|_| ()),
                Op::Resolve(i, a) => d.resolve(&serial(&format!("S{i}")), a, "r", at("2025-04-12")).map(|_| ()),
                Op::Pay(a, o) => d.pay(&serial("P1"), Money::from_fen(a), Money::from_fen(o)).map(|_| paid_total += Money::from_fen(a + o)),
            };
            if r.is_err() {
                prop_assert_eq!(&d, &before);
            }
            prop_assert_eq!(d.declared, d.deducted() + d.paid + d.offset + d.outstanding());
            prop_assert!(d.paid + d.offset <= d.approved());
            prop_assert!(d.outstanding() >= Money::ZERO);
            prop_assert_eq!(d.paid + d.offset, paid_total);
        }
    }
}

fn monthly(entries: &[(&str, &str)]) -> Vec<(Period, Money)> {
    entries.iter().map(|(m, a)| (p(m), yuan(a))).collect()
}

#[test]
fn a_general_prepayment_is_one_month_of_the_average_over_one_two_or_three_years() {
    // Spending in 2022, 2023 and 2024; the grant is in 2025-01; the agreement began long ago.
    let mut history = Vec::new();
    for m in 1..=12 {
        history.push((Period::new(2022, m).unwrap(), yuan("1000.00")));
        history.push((Period::new(2023, m).unwrap(), yuan("2000.00")));
        history.push((Period::new(2024, m).unwrap(), yuan("3000.01")));
    }
    let start = day("2015-01-01");
    let one = size_general(&history, p("2025-01"), start, 1).unwrap();
    assert_eq!((one.from, one.to, one.months), (Some(p("2024-01")), Some(p("2024-12")), 12));
    assert_eq!(one.base, yuan("36000.12"));
    assert_eq!(one.amount, yuan("3000.01"));
    let two = size_general(&history, p("2025-01"), start, 2).unwrap();
    // (24000.00 + 36000.12) / 24 = 2500.005 → 2500.00 (rounded down).
    assert_eq!((two.months, two.base, two.amount), (24, yuan("60000.12"), yuan("2500.00")));
    let three = size_general(&history, p("2025-01"), start, 3).unwrap();
    // 72000.12 / 36 = 2000.0033… → 2000.00.
    assert_eq!((three.months, three.amount), (36, yuan("2000.00")));
    assert!(three.rule.contains("2022-01") && three.rule.contains("2024-12") && three.rule.contains("72000.12"));
    // Spending of the grant's own month and later never counts.
    history.push((p("2025-01"), yuan("99999.00")));
    assert_eq!(size_general(&history, p("2025-01"), start, 1).unwrap().amount, yuan("3000.01"));
}

#[test]
fn months_without_spending_count_as_zero() {
    let history = monthly(&[("2024-03", "1200.00"), ("2024-11", "1200.01")]);
    let s = size_general(&history, p("2025-01"), day("2010-01-01"), 1).unwrap();
    // 2400.01 / 12 = 200.0008… → 200.00.
    assert_eq!((s.months, s.base, s.amount), (12, yuan("2400.01"), yuan("200.00")));
}

#[test]
fn a_new_institution_is_sized_on_its_full_months_only() {
    // Agreement from 2024-10-15: November and December are its full months.
    assert_eq!(window(p("2025-01"), day("2024-10-15"), 3), Some((p("2024-11"), p("2024-12"))));
    assert_eq!(window(p("2025-01"), day("2024-10-01"), 3), Some((p("2024-10"), p("2024-12"))));
    let history = monthly(&[("2024-10", "9000.00"), ("2024-11", "3000.00"), ("2024-12", "1000.01")]);
    let s = size_general(&history, p("2025-01"), day("2024-10-15"), 3).unwrap();
    assert_eq!((s.months, s.base, s.amount), (2, yuan("4000.01"), yuan("2000.00")));
    // Agreement from 2024-12-02: no full month yet.
    let e = size_general(&history, p("2025-01"), day("2024-12-02"), 1).unwrap_err();
    assert_eq!(e.field(), "institution_id");
    // No spending at all in the window.
    let e = size_general(&[], p("2025-01"), day("2020-01-01"), 1).unwrap_err();
    assert_eq!(e.field(), "institution_id");
}

#[test]
fn a_central_procurement_prepayment_is_its_share_of_the_agreed_amount() {
    let s = size_special(yuan("1000000.05"), 30).unwrap();
    // 30% of 100000005 fen = 30000001.5 fen → 300000.01.
    assert_eq!(s.amount, yuan("300000.01"));
    assert_eq!(size_special(Money::ZERO, 30).unwrap_err().field(), "procurement_amount");
    assert_eq!(size_special(yuan("0.01"), 30).unwrap_err().field(), "procurement_amount");
}

fn good() -> Conditions {
    Conditions {
        fund_balance: yuan("600.00"),
        fund_monthly_expenditure: yuan("100.00"),
        agreement: Ok(()),
        last_case: None,
        outstanding: None,
        stopped: None,
        poor_credit: None,
        today: day("2025-01-15"),
    }
}

#[test]
fn each_failed_condition_is_named() {
    let policy = PrepaymentPolicy::default();
    check_conditions(&policy, &good()).unwrap();
    let fund = check_conditions(&policy, &Conditions { fund_balance: yuan("599.99"), ..good() }).unwrap_err();
    assert_eq!(fund.field(), "fund");
    assert!(fund.to_string().contains("5.9 months"), "{fund}");
    let agreement = check_conditions(&policy, &Conditions { agreement: Err("ended on 2024-12-31".into()), ..good() });
    assert!(agreement.unwrap_err().to_string().contains("agreement is not in force"));
    // A case decided 2024-01-16 is within 12 months of 2025-01-15; one on 2024-01-15 is not.
    let recent = Conditions { last_case: Some(day("2024-01-16")), ..good() };
    assert!(check_conditions(&policy, &recent).unwrap_err().to_string().contains("case was decided"));
    check_conditions(&policy, &Conditions { last_case: Some(day("2024-01-15")), ..good() }).unwrap();
    let twice = Conditions { outstanding: Some("P1".into()), ..good() };
    assert!(check_conditions(&policy, &twice).unwrap_err().to_string().contains("P1"));
    let stopped = Conditions { stopped: Some("prepayment P0 could not be recovered".into()), ..good() };
    assert!(check_conditions(&policy, &stopped).unwrap_err().to_string().contains("stopped"));
    let poor = Conditions { poor_credit: Some("score 45".into()), ..good() };
    let e = check_conditions(&policy, &poor).unwrap_err();
    assert!(e.field() == "institution_id" && e.to_string().contains("credit grade is D"), "{e}");
    // A fund that spent nothing is at no risk.
    check_conditions(
        &policy,
        &Conditions { fund_balance: Money::ZERO, fund_monthly_expenditure: Money::ZERO, ..good() },
    )
    .unwrap();
}

#[test]
fn policies_out_of_range_are_refused() {
    let ok = PrepaymentPolicy::default();
    ok.validate().unwrap();
    for (bad, field) in [
        (PrepaymentPolicy { history_years: 0, ..ok.clone() }, "policy.history_years"),
        (PrepaymentPolicy { history_years: 4, ..ok.clone() }, "policy.history_years"),
        (PrepaymentPolicy { procurement_percent: 0, ..ok.clone() }, "policy.procurement_percent"),
        (PrepaymentPolicy { procurement_percent: 101, ..ok.clone() }, "policy.procurement_percent"),
        (PrepaymentPolicy { min_months_covered: 121, ..ok.clone() }, "policy.min_months_covered"),
        (PrepaymentPolicy { clean_months: 121, ..ok.clone() }, "policy.clean_months"),
    ] {
        assert_eq!(bad.validate().unwrap_err().field(), field);
    }
}

fn terms(amount: &str, thresholds: Vec<u32>, fund_percent: u32) -> BudgetTerms {
    BudgetTerms { amount: yuan(amount), thresholds, overspend_fund_percent: fund_percent }
}

#[test]
fn a_budget_warns_once_at_each_threshold_and_shares_an_overspend_at_year_end() {
    let h = InstitutionId::new("H001").unwrap();
    let mut b =
        Budget::put(None, h.clone(), 2025, terms("1000.00", vec![80, 100], 60), yuan("100.00"), day("2025-03-01"))
            .unwrap();
    assert!(b.warnings.is_empty());
    assert!(!b.consume(yuan("699.99"), day("2025-06-01")));
    assert_eq!(b.used_tenths(), 799);
    assert!(b.consume(yuan("0.01"), day("2025-06-02")), "800.00 is 80%");
    assert_eq!(b.warnings[0], BudgetWarning { threshold: 80, on: day("2025-06-02"), consumed: yuan("800.00") });
    // Down and up again: nothing new.
    assert!(!b.consume(yuan("-50.00"), day("2025-06-03")));
    assert!(!b.consume(yuan("50.00"), day("2025-06-04")));
    assert!(b.consume(yuan("300.01"), day("2025-11-30")), "1100.01 is past 100%");
    assert_eq!(b.warnings.len(), 2);
    // A revision keeps what was consumed and warned.
    let revised = Budget::put(
        Some(b.clone()),
        h.clone(),
        2025,
        terms("1050.00", vec![80, 100], 60),
        Money::ZERO,
        day("2025-12-01"),
    )
    .unwrap();
    assert_eq!((revised.consumed, revised.warnings.len()), (yuan("1100.01"), 2));
    // Not before the year is over; then once.
    assert_eq!(b.close_year(day("2025-12-31")).unwrap_err().field(), "year");
    let end = b.close_year(day("2026-01-02")).unwrap();
    // Overspend 100.01: the fund bears 60% = 60.006 → 60.00, the institution 40.01.
    assert_eq!(
        (end.overspend, end.fund_bears, end.institution_bears, end.underspend),
        (yuan("100.01"), yuan("60.00"), yuan("40.01"), Money::ZERO)
    );
    assert_eq!(b.close_year(day("2026-01-03")).unwrap_err().field(), "year");
    assert!(!b.consume(yuan("1.00"), day("2026-01-03")), "a closed budget no longer moves");
    assert_eq!(b.consumed, yuan("1100.01"));
    let e = Budget::put(Some(b), h, 2025, terms("2000.00", vec![], 0), Money::ZERO, day("2025-12-31")).unwrap_err();
    assert_eq!(e.field(), "year");
}

#[test]
fn an_underspent_budget_withholds_nothing_and_bad_terms_are_named() {
    let h = InstitutionId::new("H001").unwrap();
    let mut b =
        Budget::put(None, h.clone(), 2025, terms("1000.00", vec![], 0), yuan("400.00"), day("2025-01-10")).unwrap();
    let end = b.close_year(day("2026-01-01")).unwrap();
    assert_eq!((end.overspend, end.institution_bears, end.underspend), (Money::ZERO, Money::ZERO, yuan("600.00")));
    for (t, field) in [
        (terms("0.00", vec![], 0), "amount"),
        (terms("1.00", vec![0], 0), "thresholds[0]"),
        (terms("1.00", vec![201], 0), "thresholds[0]"),
        (terms("1.00", vec![90, 80], 0), "thresholds[1]"),
        (terms("1.00", vec![10, 20, 30, 40, 50, 60], 0), "thresholds"),
        (terms("1.00", vec![], 101), "overspend_fund_percent"),
    ] {
        assert_eq!(Budget::put(None, h.clone(), 2025, t, Money::ZERO, day("2025-01-10")).unwrap_err().field(), field);
    }
    let late = Budget::put(None, h, 2024, terms("1.00", vec![], 0), Money::ZERO, day("2025-01-10")).unwrap_err();
    assert_eq!(late.field(), "year");
}
