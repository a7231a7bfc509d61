//! The case state machine against hand-computed expectations.

use super::*;
use proptest::prelude::*;
use rust_decimal::Decimal;

fn d(s: &str) -> Date {
    Date::parse(s).unwrap()
}
fn yuan(s: &str) -> Money {
    Money::parse_yuan(s).unwrap()
}
fn open(involved: &str) -> Case {
    Case::open(
        "C-2026-001",
        ProvinceCode::new("110000").unwrap(),
        CaseSource::Alert(7),
        InstitutionId::new("H001").unwrap(),
        vec![Serial::new("S2").unwrap(), Serial::new("S1").unwrap()],
        yuan(involved),
        d("2026-03-01"),
        &CasePolicy::default(),
    )
    .unwrap()
}
fn input(recover: &str, tenths: u32) -> DecisionInput {
    DecisionInput {
        violation: ViolationType::Irregular,
        recover: yuan(recover),
        fine_tenths: tenths,
        agreement: AgreementAction::Suspend(6),
        scored: vec![Scored {
            personnel: PersonnelCode::new("D001").unwrap(),
            points: 3,
            severity: Severity::new(2).unwrap(),
        }],
        discipline_days: 365,
        handoff: Some(Handoff { department: Department::PublicSecurity, reference: "PS-1".into() }),
        reason: "duplicate charging on 2 settlements".into(),
    }
}
fn field(e: CaseError) -> String {
    e.field().to_string()
}

#[test]
fn a_case_runs_from_opened_to_closed_with_every_penalty() {
    let mut c = open("1000.00");
    assert_eq!(c.state, CaseState::Opened);
    assert_eq!(c.deadline, d("2026-05-30"), "90 days after 2026-03-01");
    assert_eq!(c.settlements, vec![Serial::new("S1").unwrap(), Serial::new("S2").unwrap()]);
    c.investigate("both settlements bill item X twice on 2026-02-10", d("2026-03-02")).unwrap();
    assert_eq!(c.state, CaseState::Investigating);
    c.decide(input("400.05", 15), d("2026-03-10"), &CasePolicy::default()).unwrap();
    assert_eq!(c.state, CaseState::Decided);
    // 400.05 × 1.5 = 600.075 -> 600.08 (half away from zero).
    assert_eq!(c.decision.as_ref().unwrap().fine, yuan("600.08"));
    let e = c.execute(d("2026-03-15")).unwrap();
    assert_eq!(e.recover, yuan("400.05"));
    assert_eq!(e.fine, yuan("600.08"));
    // Six months from 2026-03-15: through 2026-09-14.
    assert_eq!(e.hold, Some((d("2026-03-15"), Some(d("2026-09-14")))));
    assert_eq!(e.discipline, Some((d("2026-03-15"), d("2027-03-14"))));
    assert_eq!(e.violations.len(), 1);
    assert_eq!(e.violations[0].id, "case-110000-C-2026-001");
    assert_eq!(e.violations[0].decided_on, d("2026-03-10"));
    assert_eq!(e.handoff.as_ref().unwrap().department, Department::PublicSecurity);
    let out = c.outcome().unwrap();
    assert_eq!(out.recovered, yuan("400.05"));
    assert_eq!(out.executed_on, d("2026-03-15"));
    out.validate().unwrap();
    c.close("", d("2026-03-20")).unwrap();
    assert_eq!(c.state, CaseState::Closed);
}

#[test]
fn a_second_execution_and_decisions_on_closed_cases_are_refused() {
    let mut c = open("1000.00");
    c.investigate("found", d("2026-03-02")).unwrap();
    c.decide(input("100.00", 10), d("2026-03-03"), &CasePolicy::default()).unwrap();
    c.execute(d("2026-03-04")).unwrap();
    let again = c.execute(d("2026-03-05")).unwrap_err();
    assert!(again.to_string().contains("already executed on 2026-03-04"), "{again}");
    assert_eq!(c.executed_on, Some(d("2026-03-04")));
    c.close("done", d("2026-03-06")).unwrap();
    assert_eq!(field(c.decide(input("1.00", 10), d("2026-03-07"), &CasePolicy::default()).unwrap_err()), "case_id");
    assert_eq!(field(c.investigate("more", d("2026-03-07")).unwrap_err()), "case_id");
    assert_eq!(field(c.close("again", d("2026-03-07")).unwrap_err()), "case_id");
    assert!(c.execute(d("2026-03-07")).is_err());
}

#[test]
fn the_steps_must_come_in_order() {
    let mut c = open("10.00");
    assert_eq!(field(c.decide(input("1.00", 10), d("2026-03-02"), &CasePolicy::default()).unwrap_err()), "case_id");
    assert_eq!(field(c.execute(d("2026-03-02")).unwrap_err()), "case_id");
    c.investigate("x", d("2026-03-02")).unwrap();
    c.decide(input("1.00", 10), d("2026-03-02"), &CasePolicy::default()).unwrap();
    assert_eq!(field(c.close("skip", d("2026-03-02")).unwrap_err()), "case_id", "a decided case is executed first");
    let mut clean = open("10.00");
    assert_eq!(field(clean.close(" ", d("2026-03-02")).unwrap_err()), "reason");
    clean.close("nothing found", d("2026-03-02")).unwrap();
    assert_eq!(clean.decision, None);
}

#[test]
fn bad_decisions_name_their_field() {
    let p = CasePolicy::default();
    let bad = |f: &dyn Fn(&mut DecisionInput)| {
        let mut c = open("500.00");
        c.investigate("x", d("2026-03-02")).unwrap();
        let mut i = input("100.00", 15);
        f(&mut i);
        let e = c.decide(i, d("2026-03-03"), &p).unwrap_err();
        assert_eq!(c.state, CaseState::Investigating, "nothing half-applied");
        field(e)
    };
    assert_eq!(bad(&|i| i.recover = yuan("500.01")), "recover", "more than was paid");
    assert_eq!(bad(&|i| i.fine_tenths = 9), "fine_multiple", "below 1x for irregular");
    assert_eq!(bad(&|i| i.fine_tenths = 21), "fine_multiple", "above 2x for irregular");
    assert_eq!(
        bad(&|i| {
            i.violation = ViolationType::Fraud;
            i.fine_tenths = 15
        }),
        "fine_multiple",
        "fraud is 2-5x"
    );
    assert_eq!(
        bad(&|i| {
            i.recover = Money::ZERO;
            i.fine_tenths = 10
        }),
        "fine_multiple"
    );
    assert_eq!(bad(&|i| i.agreement = AgreementAction::Suspend(13)), "suspend_months");
    assert_eq!(bad(&|i| i.agreement = AgreementAction::Suspend(0)), "suspend_months");
    assert_eq!(bad(&|i| i.scored[0].points = 13), "points[0].points");
    assert_eq!(bad(&|i| i.scored.push(i.scored[0].clone())), "points[1].personnel_code");
    assert_eq!(bad(&|i| i.discipline_days = MAX_DISCIPLINE_DAYS + 1), "discipline_days");
    assert_eq!(bad(&|i| i.reason = String::new()), "reason");
    assert_eq!(
        bad(&|i| i.handoff = Some(Handoff { department: Department::Health, reference: "".into() })),
        "transfer.reference"
    );
    // The whole paid amount may be recovered; ending the agreement has no end date.
    let mut c = open("500.00");
    c.investigate("x", d("2026-03-02")).unwrap();
    let mut i = input("500.00", 20);
    i.agreement = AgreementAction::End;
    c.decide(i, d("2026-03-03"), &p).unwrap();
    assert_eq!(c.decision.as_ref().unwrap().fine, yuan("1000.00"));
    assert_eq!(c.execute(d("2026-03-04")).unwrap().hold, Some((d("2026-03-04"), None)));
}

#[test]
fn bad_openings_name_their_field() {
    let p = CasePolicy::default();
    let o = |id: &str, src: CaseSource, s: Vec<&str>| {
        Case::open(
            id,
            ProvinceCode::new("110000").unwrap(),
            src,
            InstitutionId::new("H001").unwrap(),
            s.into_iter().map(|x| Serial::new(x).unwrap()).collect(),
            Money::ZERO,
            d("2026-01-01"),
            &p,
        )
        .map(|_| ())
        .map_err(field)
    };
    assert_eq!(o("", CaseSource::Alert(1), vec![]), Err("case_id".into()));
    assert_eq!(o("a/b", CaseSource::Alert(1), vec![]), Err("case_id".into()));
    assert_eq!(o(&"x".repeat(65), CaseSource::Alert(1), vec![]), Err("case_id".into()));
    assert_eq!(o("C1", CaseSource::Alert(0), vec![]), Err("source.alert_seq".into()));
    assert_eq!(o("C1", CaseSource::Report("".into()), vec![]), Err("source.reference".into()));
    assert_eq!(o("C1", CaseSource::Alert(1), vec!["S1", "S1"]), Err("settlement_serials".into()));
    assert_eq!(o("C1", CaseSource::Inspection("I-1".into()), vec!["S1"]), Ok(()));
}

#[test]
fn overdue_only_while_undecided_and_past_the_deadline() {
    let mut c = open("10.00");
    assert!(!c.overdue(d("2026-05-30")));
    assert!(c.overdue(d("2026-05-31")));
    c.investigate("x", d("2026-05-31")).unwrap();
    c.decide(input("1.00", 10), d("2026-05-31"), &CasePolicy::default()).unwrap();
    assert!(!c.overdue(d("2026-12-31")));
}

#[test]
fn policies_are_checked() {
    CasePolicy::default().validate().unwrap();
    let mut p = CasePolicy::default();
    p.fine_tenths.insert(ViolationType::Fraud, (30, 20));
    assert_eq!(field(p.validate().unwrap_err()), "fine_multiples");
    let mut p = CasePolicy::default();
    p.fine_tenths.remove(&ViolationType::Irregular);
    assert_eq!(field(p.validate().unwrap_err()), "fine_multiples");
    let p = CasePolicy { investigate_days: 0, ..CasePolicy::default() };
    assert_eq!(field(p.validate().unwrap_err()), "investigate_days");
}

proptest! {
    /// The fine equals the decimal product rounded half away from zero, computed independently
    /// with rust_decimal.
    #[test]
    fn fine_matches_decimal_arithmetic(fen in 0i64..10_000_000_000, tenths in 0u32..=100) {
        let recover = Money::from_fen(fen);
        let expected = Decimal::new(fen, 2) * Decimal::new(i64::from(tenths), 1);
        let expected = expected.round_dp_with_strategy(2, rust_decimal::RoundingStrategy::MidpointAwayFromZero);
        prop_assert_eq!(fine(recover, tenths).as_decimal(), expected);
    }

    /// Whatever order steps are tried in, a case is executed at most once and only after a
    /// decision that followed a finding.
    #[test]
    fn steps_in_any_order_execute_at_most_once(steps in proptest::collection::vec(0u8..4, 0..12)) {
        let mut c = open("100.00");
        let mut executed = 0;
        let mut found = false;
        for (i, s) in steps.iter().enumerate() {
            let day = d("2026-03-01").plus_days(i as i32);
            match s {
                0 => { if c.investigate("f", day).is_ok() { found = true; } }
                1 => { if c.decide(input("10.00", 10), day, &CasePolicy::default()).is_ok() { prop_assert!(found); } }
                2 => { if c.execute(day).is_ok() { executed += 1; prop_assert!(c.decision.is_some()); } }
                _ => { let _ = c.close("r", day); }
            }
        }
        prop_assert!(executed <= 1);
        prop_assert_eq!(executed == 1, c.executed_on.is_some());
    }
}
