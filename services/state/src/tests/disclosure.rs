//! The fund's monthly report (issue 13.4) over the in-memory store: each month's figures are
//! worked out from the settlements and contributions made in it, not from the ledger.

use medmesh_payment::Period;
use medmesh_types::{LogTime, Money};

use crate::disclosure::FundReport;
use crate::*;

use super::{fund, inst, m, ok, one, run, seeded, ser, settle_cmd, visit_of};

fn month(text: &str) -> Period {
    Period::parse(text).unwrap()
}

/// Moves the group's time into `target` with empty entries, each as far ahead as the group
/// accepts (the way an idle leader's heartbeat entries move it).
fn advance_to(kv: &mut MemKv, target: Period) {
    loop {
        let now: LogTime = kv::load(kv, keys::TIME).unwrap();
        if Period::of(now.date()) >= target {
            return;
        }
        let next = LogTime(now.millis() + crate::MAX_CLOCK_STEP_MS);
        let (res, writes) = apply_batch(kv, &Batch::of::<Command>(next, Vec::new()), Role::Province);
        assert!(res.is_empty());
        kv.write(writes);
    }
}

fn report(kv: &MemKv, period: &str) -> Result<FundReport, DomainError> {
    match run_query(kv, &Query::FundReport { period: month(period) }) {
        Ok(Answer::FundReport(r)) => Ok(*r),
        Ok(other) => panic!("{other:?}"),
        Err(e) => Err(e),
    }
}

fn settled(kv: &mut MemKv, serial: &str, visit: &str) -> Settlement {
    match run(kv, vec![settle_cmd(serial, visit)]).remove(0) {
        Ok(Outcome::Settlement(s)) => s,
        other => panic!("{other:?}"),
    }
}

fn contribute(kv: &mut MemKv, serial: &str, amount: &str) {
    let c = ProvinceCommand::Contribute {
        serial: ser(serial),
        amount: m(amount),
        source: "payroll".into(),
        fund: Fund::Pooling,
    };
    ok(&one(kv, c));
}

#[test]
fn a_month_reports_what_moved_in_it_and_stays_put_once_ended() {
    // March 2025 (the fixture's month): its contributions and one settlement.
    let mut kv = seeded();
    let march_in = fund(&kv).ledger.contributions;
    visit_of(&mut kv, "V1", "300", VisitKind::Outpatient, "2025-03-10");
    let s1 = settled(&mut kv, "S1", "V1");
    let march_balance = march_in - s1.split.pooling_fund - s1.split.critical_illness;

    let r = report(&kv, "2025-03").unwrap();
    assert!(!r.closed, "March is the current month");
    assert_eq!((r.contributions, r.pooling_paid, r.settlements, r.reversals), (march_in, s1.split.pooling_fund, 1, 0));
    assert_eq!(r.closing_balance, march_balance);

    // April: more income, a new settlement, and March's settlement reversed.
    advance_to(&mut kv, month("2025-04"));
    contribute(&mut kv, "C-APR", "500");
    visit_of(&mut kv, "V2", "200", VisitKind::Outpatient, "2025-04-01");
    let s2 = settled(&mut kv, "S2", "V2");
    let r = ProvinceCommand::Reverse { institution: inst(), serial: ser("R1"), settlement: ser("S1") };
    ok(&one(&mut kv, r));

    // March is final: its figures are what happened in March, whatever April did.
    let march = report(&kv, "2025-03").unwrap();
    assert!(march.closed);
    assert_eq!(
        (march.contributions, march.pooling_paid, march.accounts_paid, march.settlements, march.reversals),
        (march_in, s1.split.pooling_fund, s1.split.individual_account, 1, 0)
    );
    assert_eq!(march.closing_balance, march_balance);
    // 12-month average of the pool's expenditure: March's alone over 12 months, to the fen down.
    let spent = (s1.split.pooling_fund + s1.split.critical_illness).fen();
    assert_eq!(march.monthly_expenditure, Money::from_fen((spent / 12) as i64));
    let tenths = (march_balance.fen() * 10 / (spent / 12)) as i64;
    assert_eq!(march.months_covered_tenths, Some(tenths));

    // April so far: net of the reversal of March's settlement.
    let april = report(&kv, "2025-04").unwrap();
    assert!(!april.closed);
    assert_eq!(april.contributions, m("500"));
    assert_eq!(april.pooling_paid, s2.split.pooling_fund - s1.split.pooling_fund);
    assert_eq!((april.settlements, april.reversals), (0, 1), "one new in force, one reversed");
    assert_eq!(april.closing_balance, fund(&kv).ledger.balance());
    assert_eq!(april.closing_balance, march_balance + m("500") + s1.split.pooling_fund - s2.split.pooling_fund);

    // Once May begins, April is final with the same figures, and May starts from zero.
    advance_to(&mut kv, month("2025-05"));
    let final_april = report(&kv, "2025-04").unwrap();
    assert_eq!(final_april, FundReport { closed: true, ..april.clone() });
    let may = report(&kv, "2025-05").unwrap();
    assert_eq!((may.contributions, may.pooling_paid, may.settlements), (Money::ZERO, Money::ZERO, 0));
    assert_eq!(may.closing_balance, april.closing_balance);

    // Before the group existed: nothing moved. Not begun yet: refused naming the month.
    let feb = report(&kv, "2025-02").unwrap();
    assert_eq!((feb.contributions, feb.closing_balance, feb.closed), (Money::ZERO, Money::ZERO, true));
    let e = report(&kv, "2025-06").unwrap_err();
    assert_eq!((e.code, e.field.as_str()), (ErrorCode::FailedPrecondition, "month"), "{e}");
}

/// Every replica keeps the same closes: the report is part of the deterministic state.
#[test]
fn closes_are_kept_by_apply_alike() {
    let mut a = seeded();
    let mut b = seeded();
    advance_to(&mut a, month("2025-04"));
    advance_to(&mut b, month("2025-04"));
    assert_eq!(a.0, b.0);
    assert!(a.0.contains_key(keys::fund_close(month("2025-03")).as_bytes()));
    assert!(!a.0.contains_key(keys::fund_close(month("2025-04")).as_bytes()));
}
