use super::*;
use proptest::prelude::*;

fn d(text: &str) -> Date {
    Date::parse(text).unwrap()
}

fn doctor() -> PersonnelCode {
    PersonnelCode::new("D110101000001").unwrap()
}

fn beijing() -> ProvinceCode {
    ProvinceCode::new("110000").unwrap()
}

fn shanghai() -> ProvinceCode {
    ProvinceCode::new("310000").unwrap()
}

/// A Beijing violation of the doctor.
fn v(id: &str, decided_on: &str, points: u8, severity: u8) -> Violation {
    Violation {
        personnel: doctor(),
        id: id.to_string(),
        decided_on: d(decided_on),
        points,
        severity: Severity::new(severity).unwrap(),
        province: beijing(),
    }
}

fn at(history: &[Violation], on: &str) -> QualificationView {
    status(history, d(on)).unwrap()
}

fn suspended(since: &str, until: &str) -> QualificationState {
    QualificationState::Suspended { since: d(since), until: d(until) }
}

fn terminated(since: &str, reregister_from: &str, at_once: bool) -> QualificationState {
    QualificationState::Terminated { since: d(since), reregister_from: d(reregister_from), at_once }
}

#[test]
fn no_violations_is_active_without_notice() {
    let view = at(&[], "2025-06-01");
    assert_eq!(view.year, 2025);
    assert_eq!(view.year_points, 0);
    assert_eq!(view.state, QualificationState::Active);
    assert!(!view.notify_institution);
    assert!(view.may_bill(d("2025-06-01")));
    assert!(view.may_register(d("2025-06-01")));
}

#[test]
fn eight_points_notifies_the_institution_without_suspending() {
    let history = [v("A", "2025-02-01", 5, 6), v("B", "2025-03-01", 3, 6)];
    let view = at(&history, "2025-03-01");
    assert_eq!(view.year_points, 8);
    assert_eq!(view.state, QualificationState::Active);
    assert!(view.notify_institution);
    assert!(view.may_bill(d("2025-03-01")));
    // One point also notifies.
    assert!(at(&history[..1], "2025-02-01").notify_institution);
}

#[test]
fn nine_points_suspends_for_each_severity_exactly() {
    // From a 31st, so the month arithmetic clamps to shorter months.
    let ends = ["2025-04-30", "2025-05-31", "2025-06-30", "2025-07-31", "2025-08-31", "2025-09-30"];
    for (severity, end) in (1u8..=6).zip(ends) {
        let history = [v("A", "2025-03-31", 9, severity)];
        let view = at(&history, "2025-03-31");
        assert_eq!(view.year_points, 9);
        assert_eq!(view.state, suspended("2025-03-31", end), "severity {severity}");
        assert!(!view.notify_institution);
        assert!(!view.may_bill(d("2025-03-31")));
        assert!(!view.may_bill(d(end).plus_days(-1)));
        assert!(view.may_bill(d(end)));
        assert!(view.may_register(d("2025-03-31")));
        // The last suspended day and the first free one, computed afresh.
        assert_eq!(at(&history, &d(end).plus_days(-1).to_string()).state, suspended("2025-03-31", end));
        let after = at(&history, end);
        assert_eq!(after.state, QualificationState::Active);
        assert_eq!(after.year_points, 9);
        assert!(!after.notify_institution);
    }
}

#[test]
fn suspension_starts_on_the_date_nine_is_reached() {
    let history = [v("A", "2025-02-01", 5, 1), v("B", "2025-03-10", 4, 2)];
    let before = at(&history, "2025-03-09");
    assert_eq!(before.state, QualificationState::Active);
    assert!(before.notify_institution);
    assert_eq!(at(&history, "2025-03-10").state, suspended("2025-03-10", "2025-05-10"));
}

#[test]
fn suspension_length_follows_the_most_severe_violation_of_the_year() {
    let history = [v("A", "2025-01-15", 6, 5), v("B", "2025-04-01", 3, 1)];
    assert_eq!(at(&history, "2025-04-01").state, suspended("2025-04-01", "2025-09-01"));
    // A severe violation of last year does not lengthen this year's suspension.
    let history = [v("A", "2024-12-01", 1, 6), v("B", "2025-04-01", 9, 1)];
    assert_eq!(at(&history, "2025-04-01").state, suspended("2025-04-01", "2025-05-01"));
}

#[test]
fn eleven_points_is_suspended_not_terminated() {
    let at_once = [v("A", "2025-03-01", 11, 2)];
    let view = at(&at_once, "2025-03-01");
    assert_eq!(view.year_points, 11);
    assert_eq!(view.state, suspended("2025-03-01", "2025-05-01"));

    // Points after the crossing, still below 12, neither restart nor lengthen the suspension.
    let history = [v("A", "2025-03-01", 9, 1), v("B", "2025-03-15", 2, 6)];
    let view = at(&history, "2025-03-20");
    assert_eq!(view.year_points, 11);
    assert_eq!(view.state, suspended("2025-03-01", "2025-04-01"));
    let later = at(&history, "2025-04-01");
    assert_eq!(later.state, QualificationState::Active);
    assert_eq!(later.year_points, 11);
    assert!(!later.notify_institution);
}

#[test]
fn twelve_points_accumulated_terminates_with_a_one_year_ban() {
    let history = [v("A", "2025-02-01", 5, 1), v("B", "2025-03-10", 4, 6), v("C", "2025-06-15", 3, 1)];
    assert_eq!(at(&history, "2025-06-14").state, suspended("2025-03-10", "2025-09-10"));
    let view = at(&history, "2025-06-15");
    assert_eq!(view.year_points, 12);
    assert_eq!(view.state, terminated("2025-06-15", "2026-06-15", false));
    assert!(!view.notify_institution);
    assert!(!view.may_bill(d("2025-06-15")));
    assert!(!view.may_bill(d("2030-01-01")));
    assert!(!view.may_register(d("2026-06-14")));
    assert!(view.may_register(d("2026-06-15")));
}

#[test]
fn reaching_twelve_from_below_nine_terminates_without_suspending() {
    let history = [v("A", "2025-02-01", 8, 6), v("B", "2025-05-05", 4, 6)];
    assert_eq!(at(&history, "2025-05-05").state, terminated("2025-05-05", "2026-05-05", false));
}

#[test]
fn twelve_points_at_once_bans_for_three_years() {
    let history = [v("A", "2025-05-20", 12, 1)];
    let view = at(&history, "2025-05-20");
    assert_eq!(view.state, terminated("2025-05-20", "2028-05-20", true));
    assert!(!view.may_register(d("2028-05-19")));
    assert!(view.may_register(d("2028-05-20")));
}

#[test]
fn twelve_points_decided_on_one_date_count_as_at_once() {
    let history = [v("A", "2025-05-20", 7, 1), v("B", "2025-05-20", 5, 1)];
    assert_eq!(at(&history, "2025-05-20").state, terminated("2025-05-20", "2028-05-20", true));
}

#[test]
fn earlier_points_do_not_undo_twelve_at_once() {
    let history = [v("A", "2025-01-10", 2, 1), v("B", "2025-05-20", 12, 1)];
    let view = at(&history, "2025-05-20");
    assert_eq!(view.year_points, 14);
    assert_eq!(view.state, terminated("2025-05-20", "2028-05-20", true));
}

#[test]
fn bans_from_a_leap_day_end_on_february_28() {
    assert_eq!(at(&[v("A", "2024-02-29", 12, 1)], "2024-03-01").state, terminated("2024-02-29", "2027-02-28", true));
    let history = [v("A", "2024-01-10", 6, 1), v("B", "2024-02-29", 6, 1)];
    assert_eq!(at(&history, "2024-03-01").state, terminated("2024-02-29", "2025-02-28", false));
}

#[test]
fn december_points_do_not_count_in_january() {
    let history = [v("A", "2025-12-20", 8, 6), v("B", "2026-01-05", 1, 6)];
    let december = at(&history, "2025-12-31");
    assert_eq!(december.year_points, 8);
    let january = at(&history, "2026-01-05");
    assert_eq!(january.year, 2026);
    assert_eq!(january.year_points, 1);
    assert_eq!(january.state, QualificationState::Active);
    assert!(january.notify_institution);
    // Nor do they add up to a termination across the new year.
    let history = [v("A", "2025-12-20", 8, 6), v("B", "2026-01-05", 4, 6)];
    let view = at(&history, "2026-01-05");
    assert_eq!(view.year_points, 4);
    assert_eq!(view.state, QualificationState::Active);
}

#[test]
fn december_suspension_runs_into_january() {
    let history = [v("A", "2025-12-15", 9, 2)];
    let view = at(&history, "2026-01-10");
    assert_eq!(view.year_points, 0);
    assert_eq!(view.state, suspended("2025-12-15", "2026-02-15"));
    assert!(!view.notify_institution);
    assert!(!view.may_bill(d("2026-02-14")));
    assert_eq!(at(&history, "2026-02-14").state, suspended("2025-12-15", "2026-02-15"));
    assert_eq!(at(&history, "2026-02-15").state, QualificationState::Active);
}

#[test]
fn suspensions_that_touch_or_overlap_join() {
    // December's suspension ends on 2026-02-15, the day February's begins.
    let history = [v("A", "2025-12-15", 9, 2), v("B", "2026-02-15", 9, 1)];
    assert_eq!(at(&history, "2026-02-20").state, suspended("2025-12-15", "2026-03-15"));
    // A shorter suspension inside a longer one does not cut it short.
    let history = [v("A", "2025-12-15", 9, 3), v("B", "2026-02-01", 9, 1)];
    assert_eq!(at(&history, "2026-03-05").state, suspended("2025-12-15", "2026-03-15"));
}

#[test]
fn termination_and_ban_survive_the_new_year() {
    let history = [v("A", "2025-10-01", 6, 1), v("B", "2025-11-01", 6, 1)];
    let view = at(&history, "2026-01-02");
    assert_eq!(view.year_points, 0);
    assert!(!view.notify_institution);
    assert_eq!(view.state, terminated("2025-11-01", "2026-11-01", false));
    assert!(!view.may_bill(d("2026-01-02")));
    assert!(!view.may_register(d("2026-10-31")));
    assert!(view.may_register(d("2026-11-01")));
    // A later termination with a longer ban governs.
    let history = [v("A", "2025-10-01", 6, 1), v("B", "2025-11-01", 6, 1), v("C", "2026-02-01", 12, 1)];
    assert_eq!(at(&history, "2026-02-01").state, terminated("2026-02-01", "2029-02-01", true));
}

#[test]
fn violations_decided_after_the_date_are_ignored() {
    let history = [v("A", "2025-06-01", 12, 1)];
    let view = at(&history, "2025-05-31");
    assert_eq!(view.year_points, 0);
    assert_eq!(view.state, QualificationState::Active);
}

#[test]
fn same_violation_id_counts_once() {
    let a = v("A", "2025-02-01", 5, 1);
    let history = [a.clone(), a.clone(), v("B", "2025-03-01", 3, 1)];
    let view = at(&history, "2025-03-01");
    assert_eq!(view.year_points, 8);
    assert_eq!(view.state, QualificationState::Active);

    let mut ledger = Ledger::new();
    assert_eq!(ledger.record(a.clone()), Ok(Recorded::New));
    assert_eq!(ledger.record(a), Ok(Recorded::AlreadyRecorded));
    assert_eq!(ledger.status(&doctor(), d("2025-03-01")).year_points, 5);
    assert_eq!(ledger.history(&doctor()).count(), 1);
}

#[test]
fn duplicate_id_with_different_content_is_rejected() {
    let history = [v("A", "2025-02-01", 5, 1), v("A", "2025-02-01", 6, 1)];
    assert_eq!(
        status(&history, d("2025-03-01")),
        Err(SupervisionError::ConflictingDuplicate { personnel: doctor(), id: "A".to_string() })
    );

    let mut ledger = Ledger::new();
    ledger.record(v("A", "2025-02-01", 5, 1)).unwrap();
    let before = ledger.clone();
    let mut other_province = v("A", "2025-02-01", 5, 1);
    other_province.province = shanghai();
    assert_eq!(
        ledger.record(other_province),
        Err(SupervisionError::ConflictingDuplicate { personnel: doctor(), id: "A".to_string() })
    );
    assert_eq!(ledger, before);
}

#[test]
fn the_same_id_may_score_two_people() {
    let mut ledger = Ledger::new();
    let mut nurse = v("DECISION-7", "2025-02-01", 9, 1);
    nurse.personnel = PersonnelCode::new("N110101000002").unwrap();
    assert_eq!(ledger.record(v("DECISION-7", "2025-02-01", 9, 1)), Ok(Recorded::New));
    assert_eq!(ledger.record(nurse.clone()), Ok(Recorded::New));
    assert_eq!(ledger.status(&nurse.personnel, d("2025-02-01")).state, suspended("2025-02-01", "2025-03-01"));
    assert_eq!(ledger.status(&doctor(), d("2025-02-01")).state, suspended("2025-02-01", "2025-03-01"));
}

#[test]
fn points_from_two_provinces_add_up() {
    let mut shanghai_violation = v("SH-1", "2025-04-01", 4, 3);
    shanghai_violation.province = shanghai();
    let history = [v("BJ-1", "2025-02-01", 5, 1), shanghai_violation.clone()];
    let view = at(&history, "2025-04-01");
    assert_eq!(view.year_points, 9);
    assert_eq!(view.state, suspended("2025-04-01", "2025-07-01"));

    let mut shanghai_violation = v("SH-2", "2025-08-01", 6, 1);
    shanghai_violation.province = shanghai();
    let history = [v("BJ-1", "2025-02-01", 6, 1), shanghai_violation];
    assert_eq!(at(&history, "2025-08-01").state, terminated("2025-08-01", "2026-08-01", false));
}

#[test]
fn points_outside_one_to_twelve_are_rejected() {
    for points in [0u8, 13, 255] {
        let bad = v("A", "2025-02-01", points, 1);
        let err = SupervisionError::PointsOutOfRange { id: "A".to_string(), points };
        assert_eq!(bad.validate(), Err(err.clone()));
        assert_eq!(status(std::slice::from_ref(&bad), d("2025-03-01")), Err(err.clone()));
        assert_eq!(Ledger::new().record(bad), Err(err));
    }
    assert_eq!(v("A", "2025-02-01", 1, 1).validate(), Ok(()));
    assert_eq!(v("A", "2025-02-01", 12, 1).validate(), Ok(()));
}

#[test]
fn severity_outside_one_to_six_is_rejected() {
    for severity in [0u8, 7, 255] {
        assert_eq!(Severity::new(severity), Err(SupervisionError::SeverityOutOfRange { severity }));
        assert!(Severity::try_from(severity).is_err());
    }
    for months in 1u8..=6 {
        assert_eq!(Severity::new(months).map(Severity::months), Ok(months));
    }
}

#[test]
fn bad_ids_are_rejected() {
    for id in [String::new(), "a/b".to_string(), "a\nb".to_string(), "x".repeat(MAX_ID_LEN + 1)] {
        let mut bad = v("A", "2025-02-01", 1, 1);
        bad.id = id.clone();
        assert_eq!(bad.validate(), Err(SupervisionError::BadId { id }));
    }
    assert_eq!(v("京医保罚〔2025〕12号-3", "2025-02-01", 1, 1).validate(), Ok(()));
}

#[test]
fn a_history_of_two_people_is_rejected() {
    let mut nurse = v("B", "2025-02-01", 1, 1);
    nurse.personnel = PersonnelCode::new("N110101000002").unwrap();
    let history = [nurse.clone(), v("A", "2025-02-01", 1, 1)];
    let expected =
        SupervisionError::MixedPersonnel { id: "B".to_string(), expected: doctor(), found: nurse.personnel.clone() };
    assert_eq!(status(&history, d("2025-03-01")), Err(expected.clone()));
    let reversed = [history[1].clone(), history[0].clone()];
    assert_eq!(status(&reversed, d("2025-03-01")), Err(expected));
}

#[test]
fn errors_name_their_fields() {
    let err = SupervisionError::PointsOutOfRange { id: "A".to_string(), points: 13 };
    assert_eq!(err.to_string(), "violation A: points must be 1 to 12, got 13");
}

/// Up to 12 violations of the doctor between 2024 and early 2027, in two provinces.
fn histories() -> impl Strategy<Value = Vec<Violation>> {
    prop::collection::vec((0i32..1100, 1u8..=12, 1u8..=6, any::<bool>()), 0..12).prop_map(|raw| {
        raw.into_iter()
            .enumerate()
            .map(|(i, (day, points, severity, in_shanghai))| Violation {
                personnel: doctor(),
                id: format!("V{i}"),
                decided_on: d("2024-01-01").plus_days(day),
                points,
                severity: Severity::new(severity).unwrap(),
                province: if in_shanghai { shanghai() } else { beijing() },
            })
            .collect()
    })
}

proptest! {
    #[test]
    fn status_does_not_depend_on_history_order(
        (history, shuffled) in histories().prop_flat_map(|h| (Just(h.clone()), Just(h).prop_shuffle())),
        repeats in prop::collection::vec(any::<prop::sample::Index>(), 0..4),
        on_day in 0i32..1500,
    ) {
        let on = d("2024-01-01").plus_days(on_day);
        let expected = status(&history, on).unwrap();
        prop_assert_eq!(status(&shuffled, on).unwrap(), expected);
        let reversed: Vec<Violation> = history.iter().rev().cloned().collect();
        prop_assert_eq!(status(&reversed, on).unwrap(), expected);
        // Recording some violations again changes nothing.
        let mut repeated = shuffled.clone();
        if !history.is_empty() {
            repeated.extend(repeats.iter().map(|ix| history[ix.index(history.len())].clone()));
        }
        prop_assert_eq!(status(&repeated, on).unwrap(), expected);
        // The ledger, fed in any order, agrees.
        let mut ledger = Ledger::new();
        for violation in repeated {
            ledger.record(violation).unwrap();
        }
        prop_assert_eq!(ledger.status(&doctor(), on), expected);
    }

    #[test]
    fn year_points_and_notice_follow_the_year_so_far(history in histories(), on_day in 0i32..1500) {
        let on = d("2024-01-01").plus_days(on_day);
        let view = status(&history, on).unwrap();
        let expected: u32 = history
            .iter()
            .filter(|v| v.decided_on <= on && v.decided_on.year() == on.year())
            .map(|v| u32::from(v.points))
            .sum();
        prop_assert_eq!(view.year_points, expected);
        prop_assert_eq!(view.notify_institution, (1..9).contains(&expected));
        if expected >= TERMINATION_POINTS {
            let is_terminated = matches!(view.state, QualificationState::Terminated { .. });
            prop_assert!(is_terminated);
        }
        prop_assert_eq!(view.may_bill(on), view.state == QualificationState::Active);
    }
}
