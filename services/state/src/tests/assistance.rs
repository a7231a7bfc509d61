//! Medical assistance (医疗救助), the third payer (issue 12.5), over the in-memory store:
//! figures worked by hand from the fixture's policy, and the ledger recomputed from the
//! settlement records.

use medmesh_settlement::{Accumulators, AssistancePolicy, Policy};
use medmesh_types::{Money, Ratio};

use crate::*;

use super::{conserved, fund, inst, m, ok, one, run, seeded, ser, settle_cmd, visit_and_lines};

/// The fixture (deductible 100, ratio 0.8, 50 in the account) with assistance paying half the
/// remaining in-policy burden up to 75 a year.
fn with_assistance_policy() -> MemKv {
    let mut kv = seeded();
    let mut policy: Policy = kv::load(&kv, keys::POLICY).unwrap();
    policy.assistance = AssistancePolicy { ratio: Ratio::parse("0.5").unwrap(), annual_cap: m("75") };
    ok(&one(&mut kv, ProvinceCommand::PutPolicy(policy)));
    kv
}

/// Entitles the test person.
fn entitle(kv: &mut MemKv) {
    let mut person: Person = kv::load(kv, &keys::person(&crate::sim::person_key())).unwrap();
    person.medical_assistance = true;
    ok(&one(kv, ProvinceCommand::PutPerson(person)));
}

/// Funds the assistance fund; returns the outcome.
fn fund_assistance(kv: &mut MemKv, amount: &str) -> Outcome {
    let c = ProvinceCommand::Contribute {
        serial: ser("MA1"),
        amount: m(amount),
        source: "civil affairs".into(),
        fund: Fund::MedicalAssistance,
    };
    ok(&one(kv, c))
}

/// The person entitled and 1,000 in the assistance fund.
fn entitled() -> MemKv {
    let mut kv = with_assistance_policy();
    entitle(&mut kv);
    assert_eq!(fund_assistance(&mut kv, "1000"), Outcome::Contributed { balance: m("1000") });
    kv
}

fn settled(kv: &mut MemKv, serial: &str, visit: &str) -> Settlement {
    match run(kv, vec![settle_cmd(serial, visit)]).remove(0) {
        Ok(Outcome::Settlement(s)) => s,
        other => panic!("{other:?}"),
    }
}

#[test]
fn assistance_pays_its_share_within_its_cap_from_its_own_fund() {
    let mut kv = entitled();
    let pool_before = fund(&kv).ledger.balance();
    visit_and_lines(&mut kv, "V1", "300");
    let s1 = settled(&mut kv, "S1", "V1");
    // 300 in policy: 100 deductible, 80% of 200 = 160 pooling; the person bears 140, half of
    // it (70) from assistance; the rest, 70: 50 from the account, 20 in cash.
    let parts =
        |s: &Settlement| (s.split.pooling_fund, s.split.medical_assistance, s.split.individual_account, s.split.cash);
    assert_eq!(parts(&s1), (m("160"), m("70"), m("50"), m("20")));
    visit_and_lines(&mut kv, "V2", "100");
    let s2 = settled(&mut kv, "S2", "V2");
    // 100: pooling 80, burden 20, half is 10 but only 5 is left of the 75 cap; 15 in cash.
    assert_eq!(parts(&s2), (m("80"), m("5"), Money::ZERO, m("15")));
    let f = fund(&kv);
    assert_eq!((f.ledger.assistance_paid, f.ledger.assistance_balance()), (m("75"), m("925")));
    // The pool paid its own share only; the institution is owed every fund's part.
    assert_eq!(f.ledger.balance(), pool_before - m("240"));
    assert_eq!(f.payables, m("240") + m("75") + m("50"));
    conserved(&kv);
    let mut totals = MoneyTotals::default();
    totals.add_province(&f.ledger, f.payables);
    assert_eq!(totals.held, totals.came_in, "{totals:?}");

    // Reversing the first gives its 70 back to the fund and to the person's headroom.
    ok(&one(&mut kv, ProvinceCommand::Reverse { institution: inst(), serial: ser("R1"), settlement: ser("S1") }));
    let f = fund(&kv);
    assert_eq!((f.ledger.assistance_paid, f.ledger.assistance_balance()), (m("5"), m("995")));
    let acc: Accumulators = kv::load(&kv, &keys::accumulators(&crate::sim::person_key(), 2025)).unwrap();
    assert_eq!(acc.assistance_paid, m("5"));
    conserved(&kv);
}

#[test]
fn without_entitlement_or_money_in_its_fund_assistance_pays_nothing() {
    // Entitled, but the fund holds 12.34: it pays 12.34.
    let plain = with_assistance_policy();
    let mut kv = plain.clone();
    entitle(&mut kv);
    fund_assistance(&mut kv, "12.34");
    visit_and_lines(&mut kv, "V1", "300");
    assert_eq!(settled(&mut kv, "S1", "V1").split.medical_assistance, m("12.34"));
    visit_and_lines(&mut kv, "V2", "300");
    assert_eq!(settled(&mut kv, "S2", "V2").split.medical_assistance, Money::ZERO, "an empty fund pays nothing");
    assert_eq!(fund(&kv).ledger.assistance_balance(), Money::ZERO);
    conserved(&kv);

    // Not entitled: nothing, whatever the fund holds.
    let mut kv = plain;
    fund_assistance(&mut kv, "1000");
    visit_and_lines(&mut kv, "V1", "300");
    assert_eq!(settled(&mut kv, "S1", "V1").split.medical_assistance, Money::ZERO);
    conserved(&kv);
}

/// An insured province never sends assistance through a non-local settlement (it is paid at
/// home); a split that claims some is refused before it reaches the treatment ledger.
#[test]
fn a_non_local_split_carries_no_assistance() {
    let mut t = super::trio();
    super::nonlocal_visit(&mut t, "V1", "300", Some(FilingKind::LongTermResident));
    ok(&one(&mut t.treatment, settle_cmd("S1", "V1")));
    let (x, _) = super::claim_of(&t, "S1");
    let mut local = seeded();
    visit_and_lines(&mut local, "V1", "300");
    let quote =
        Query::PreSettle { institution: inst(), visit: ser("V1"), use_individual_account: false, now: super::NOW };
    let mut forged = match run_query(&local, &quote) {
        Ok(Answer::Quote(s)) => s,
        o => panic!("{o:?}"),
    };
    forged.cash -= m("10");
    forged.medical_assistance += m("10");
    let before = fund(&t.treatment);
    let e =
        one(&mut t.treatment, ProvinceCommand::TransferReserved { transfer: x.id.clone(), split: forged }).unwrap_err();
    assert_eq!((e.code, e.field.as_str()), (ErrorCode::InvalidArgument, "split.medical_assistance"), "{e}");
    assert_eq!(fund(&t.treatment), before);
}
