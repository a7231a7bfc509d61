//! Paying institutions (issue 12) over the in-memory store: the month's cycle, late lines,
//! prepayment, and money conserved to the fen, against figures recomputed from the settlement
//! records.

use medmesh_payment::{DeductionInput, MonthAccount, Period, PrepaymentKind, PrepaymentPolicy};
use medmesh_settlement::FeeLine;
use medmesh_types::{Date, InstitutionId, ItemCode, LogTime, Money};
use rust_decimal_macros::dec;

use crate::*;

use super::{inst, m, register_cmd, ser};

fn period(s: &str) -> Period {
    Period::parse(s).unwrap()
}
/// Noon in Beijing of `d`.
fn at(d: &str) -> LogTime {
    LogTime(i64::from(Date::parse(d).unwrap().days()) * 86_400_000 + 4 * 3_600_000)
}

/// Applies the commands one by one at `time` (the group clock's step limit is apply_batch's
/// business, not this test's: months pass here).
fn run_at(kv: &mut MemKv, time: &str, cmds: Vec<ProvinceCommand>) -> Vec<CommandResult> {
    cmds.into_iter()
        .map(|c| {
            let (r, writes) = apply_command(kv, &Command::Province(c), at(time));
            kv.write(writes);
            r
        })
        .collect()
}

fn one(kv: &mut MemKv, time: &str, cmd: ProvinceCommand) -> CommandResult {
    run_at(kv, time, vec![cmd]).remove(0)
}

fn step(kv: &mut MemKv, time: &str, c: PaymentCommand) -> CommandResult {
    one(kv, time, ProvinceCommand::Payment(c))
}

/// Registers visit `visit` on `time` with one line of `price`, settles it as `serial`, and
/// answers what the fund owes the institution for it.
fn settle(kv: &mut MemKv, time: &str, visit: &str, serial: &str, price: &str) -> Money {
    let res = run_at(
        kv,
        time,
        vec![
            register_cmd(visit, VisitKind::Outpatient, time),
            ProvinceCommand::UploadFees {
                institution: inst(),
                visit: ser(visit),
                lines: vec![FeeLine {
                    serial: ser("L1"),
                    code: ItemCode::new("X1").unwrap(),
                    quantity: dec!(1),
                    unit_price: m(price),
                    date: Date::parse(time).unwrap(),
                }],
            },
            ProvinceCommand::Settle {
                institution: inst(),
                serial: ser(serial),
                visit: ser(visit),
                use_individual_account: false,
            },
        ],
    );
    assert!(res.iter().all(|r| r.is_ok()), "{res:?}");
    match res.into_iter().last().unwrap().unwrap() {
        Outcome::Settlement(s) => s.split.fund_total() + s.split.individual_account,
        other => panic!("{other:?}"),
    }
}

fn ledger(kv: &MemKv) -> (FundLedger, Money) {
    match run_query(kv, &Query::Fund).unwrap() {
        Answer::Fund(f) => (f.ledger, f.payables),
        other => panic!("{other:?}"),
    }
}

fn declaration(r: CommandResult) -> medmesh_payment::Declaration {
    match r.unwrap() {
        Outcome::Declaration(d) => *d,
        other => panic!("{other:?}"),
    }
}

/// Held + paid out = came in, and the payable is what was settled less what was deducted,
/// paid and offset (recomputed here from the records, not from the ledger's own sums).
fn balanced(kv: &MemKv, contributed: Money) {
    let (f, payables) = ledger(kv);
    let mut totals = MoneyTotals::default();
    totals.add_province(&f, payables);
    totals.conserved().unwrap();
    assert_eq!(totals.came_in, contributed + f.accounts_paid);
    let mut settled = Money::ZERO;
    for (_, v) in kv.0.range(b"stl/".to_vec()..b"stl0".to_vec()) {
        let s: Settlement = crate::kv::decode(v);
        if s.status == SettlementStatus::Settled {
            settled += s.split.fund_total() + s.split.individual_account;
        }
    }
    let (mut deducted, mut paid, mut offset) = (Money::ZERO, Money::ZERO, Money::ZERO);
    for (_, v) in kv.0.range(b"decl/".to_vec()..b"decl0".to_vec()) {
        let d: medmesh_payment::Declaration = crate::kv::decode(v);
        deducted += d.deducted();
    }
    for (_, v) in kv.0.range(b"paid/".to_vec()..b"paid0".to_vec()) {
        let p: PaymentRecord = crate::kv::decode(v);
        paid += p.amount;
        offset += p.offset;
    }
    assert_eq!(payables, settled - deducted - paid - offset, "payables follow the records");
}

#[test]
fn a_month_is_declared_reviewed_contested_and_paid_exactly_once() {
    let contributed = m("100000");
    let mut kv = crate::sim::province_fixture(contributed);
    let a = settle(&mut kv, "2025-03-12", "V1", "S1", "300");
    let b = settle(&mut kv, "2025-03-12", "V2", "S2", "200");
    assert!(a > Money::ZERO && b > Money::ZERO);
    let declare =
        |serial: &str, p: &str| PaymentCommand::Declare { institution: inst(), serial: ser(serial), period: period(p) };

    // Not before the month is over.
    let early = step(&mut kv, "2025-03-31", declare("D0", "2025-03")).unwrap_err();
    assert_eq!((early.code, early.field.as_str()), (ErrorCode::FailedPrecondition, "period"));
    let d = declaration(step(&mut kv, "2025-04-02", declare("D1", "2025-03")));
    assert_eq!((d.declared, d.account.settlements), (a + b, 2));
    // A retry answers the same; a second declaration of the month is refused.
    assert_eq!(declaration(step(&mut kv, "2025-04-02", declare("D1", "2025-03"))), d);
    let twice = step(&mut kv, "2025-04-02", declare("D2", "2025-03")).unwrap_err();
    assert_eq!((twice.code, twice.field.as_str()), (ErrorCode::FailedPrecondition, "period"));
    let april = step(&mut kv, "2025-04-02", declare("D3", "2025-04")).unwrap_err();
    assert_eq!(april.field, "period");
    balanced(&kv, contributed);

    // Review: 10.00 off S1; the payable falls and the pool gains it.
    let (before, payable_before) = ledger(&kv);
    let review = |lines: Vec<DeductionInput>| PaymentCommand::Review {
        province: medmesh_types::ProvinceCode::new("110000").unwrap(),
        institution: inst(),
        period: period("2025-03"),
        deductions: lines,
        note: "monthly review".into(),
    };
    let line = |s: &str, amount: &str| DeductionInput {
        settlement: ser(s),
        amount: m(amount),
        reason: "no indication for the item".into(),
        alert: None,
    };
    let too_much = step(&mut kv, "2025-04-03", review(vec![line("S2", "0.01"), line("S1", "300")])).unwrap_err();
    assert_eq!(too_much.field, "deductions[1].amount");
    let unknown = step(&mut kv, "2025-04-03", review(vec![line("S9", "1")])).unwrap_err();
    assert_eq!(unknown.field, "deductions[0].settlement_serial");
    let d = declaration(step(&mut kv, "2025-04-03", review(vec![line("S1", "10.00")])));
    assert_eq!((d.deducted(), d.approved()), (m("10.00"), a + b - m("10.00")));
    let (after, payable_after) = ledger(&kv);
    assert_eq!(payable_after, payable_before - m("10.00"));
    assert_eq!(after.balance(), before.balance() + m("10.00"));
    let again = step(&mut kv, "2025-04-03", review(vec![])).unwrap_err();
    assert_eq!((again.code, again.field.as_str()), (ErrorCode::FailedPrecondition, "period"));
    balanced(&kv, contributed);

    // The institution contests once; the agency accepts: the 10.00 is payable again.
    let contest = PaymentCommand::Contest {
        institution: inst(),
        period: period("2025-03"),
        settlement: ser("S1"),
        reason: "the item was indicated".into(),
    };
    declaration(step(&mut kv, "2025-04-05", contest.clone()));
    assert_eq!(step(&mut kv, "2025-04-05", contest).unwrap_err().field, "settlement_serial");
    let d = declaration(step(
        &mut kv,
        "2025-04-06",
        PaymentCommand::Resolve {
            province: medmesh_types::ProvinceCode::new("110000").unwrap(),
            institution: inst(),
            period: period("2025-03"),
            settlement: ser("S1"),
            accept: true,
            reason: "indicated by the notes".into(),
        },
    ));
    assert_eq!(d.approved(), a + b);
    assert_eq!(ledger(&kv).1, payable_before);
    balanced(&kv, contributed);

    // Payment: exactly once per reference, never beyond what is approved.
    let pay = |reference: &str, amount: Money| PaymentCommand::Pay {
        institution: inst(),
        period: period("2025-03"),
        reference: ser(reference),
        amount,
        offset: Money::ZERO,
    };
    let first = step(&mut kv, "2025-04-07", pay("P1", a + b - m("1.00"))).unwrap();
    assert_eq!(step(&mut kv, "2025-04-07", pay("P1", a + b - m("1.00"))).unwrap(), first, "a retry pays nothing more");
    let reused = step(&mut kv, "2025-04-07", pay("P1", m("1.00"))).unwrap_err();
    assert_eq!((reused.code, reused.field.as_str()), (ErrorCode::AlreadyExists, "reference"));
    let over = step(&mut kv, "2025-04-07", pay("P2", m("1.01"))).unwrap_err();
    assert_eq!((over.code, over.field.as_str()), (ErrorCode::FailedPrecondition, "amount"));
    let Outcome::Paid(paid) = step(&mut kv, "2025-04-07", pay("P2", m("1.00"))).unwrap() else { panic!() };
    assert_eq!(paid.1.outstanding(), Money::ZERO);
    let (f, payables) = ledger(&kv);
    assert_eq!(f.institution_payments, a + b);
    assert_eq!(payables, Money::ZERO, "everything settled was paid");
    balanced(&kv, contributed);

    // A reversal of a declared month's settlement is a late line of the month open now.
    one(
        &mut kv,
        "2025-04-08",
        ProvinceCommand::Reverse { institution: inst(), serial: ser("R1"), settlement: ser("S2") },
    )
    .unwrap();
    let statement = |p: &str| match run_query(&kv, &Query::PaymentStatement { institution: inst(), period: period(p) })
    {
        Ok(Answer::PaymentStatement(s)) => *s,
        other => panic!("{other:?}"),
    };
    let march = statement("2025-03");
    assert_eq!(march.declaration.as_ref().unwrap().declared, a + b, "a declared month never changes");
    assert_eq!(march.payments.len(), 2);
    let april = statement("2025-04");
    assert_eq!((april.account.reversed, april.account.late, april.account.net()), (b, 1, Money::ZERO - b));
    assert_eq!(ledger(&kv).1, Money::ZERO - b, "the institution owes back what was reversed after payment");
    balanced(&kv, contributed);
}

#[test]
fn prepayment_is_sized_from_the_history_granted_once_offset_and_repaid() {
    let contributed = m("100000");
    let mut kv = crate::sim::province_fixture(contributed);
    let march = settle(&mut kv, "2025-03-12", "V1", "S1", "300");
    let april = settle(&mut kv, "2025-04-10", "V2", "S2", "500");
    let grant = |reference: &str, kind: PrepaymentKind, procurement: Money| PaymentCommand::Prepay {
        institution: inst(),
        reference: ser(reference),
        kind,
        procurement,
    };
    // One year of history before 2025-05: 2024-05 .. 2025-04 (the agreement began 2024-01-01).
    let Outcome::Prepayment(p) =
        step(&mut kv, "2025-05-06", grant("PP1", PrepaymentKind::General, Money::ZERO)).unwrap()
    else {
        panic!()
    };
    let expected = Money::from_fen(((march + april).fen() / 12) as i64);
    assert_eq!((p.amount, p.sizing.months, p.sizing.base), (expected, 12, march + april));
    assert!(p.sizing.rule.contains("2024-05") && p.sizing.rule.contains("2025-04"), "{}", p.sizing.rule);
    let (f, _) = ledger(&kv);
    assert_eq!((f.prepaid_out, f.prepayments_outstanding()), (expected, expected));
    balanced(&kv, contributed);
    // A second general prepayment while one is outstanding is refused, naming the condition.
    let twice = step(&mut kv, "2025-05-06", grant("PP2", PrepaymentKind::General, Money::ZERO)).unwrap_err();
    assert_eq!(twice.field, "institution_id");
    assert!(twice.message.contains("PP1"), "{}", twice.message);
    // A central procurement prepayment is its own kind: 30% of the agreed amount.
    let Outcome::Prepayment(c) =
        step(&mut kv, "2025-05-06", grant("PP3", PrepaymentKind::CentralProcurement, m("100.01"))).unwrap()
    else {
        panic!()
    };
    assert_eq!(c.amount, m("30.00"));

    // Offset against a monthly payment: April is declared and paid partly from the prepayment.
    step(
        &mut kv,
        "2025-05-06",
        PaymentCommand::Declare { institution: inst(), serial: ser("D4"), period: period("2025-04") },
    )
    .unwrap();
    step(
        &mut kv,
        "2025-05-07",
        PaymentCommand::Review {
            province: medmesh_types::ProvinceCode::new("110000").unwrap(),
            institution: inst(),
            period: period("2025-04"),
            deductions: vec![],
            note: String::new(),
        },
    )
    .unwrap();
    let offset = m("5.00").min(expected);
    let pay = |reference: &str, amount: Money, offset: Money| PaymentCommand::Pay {
        institution: inst(),
        period: period("2025-04"),
        reference: ser(reference),
        amount,
        offset,
    };
    let too_much = step(&mut kv, "2025-05-08", pay("P1", Money::ZERO, expected + m("30.00") + m("0.01"))).unwrap_err();
    assert!(too_much.field == "offset" || too_much.field == "amount", "{too_much:?}");
    step(&mut kv, "2025-05-08", pay("P1", april - offset, offset)).unwrap();
    let (f, payables) = ledger(&kv);
    assert_eq!(f.prepaid_offset, offset);
    assert_eq!(f.prepayments_outstanding(), expected + m("30.00") - offset);
    assert_eq!(payables, march, "April is paid; March was never declared");
    balanced(&kv, contributed);

    // Repaid in money; over-repayment refused.
    let repay = |receipt: &str, reference: &str, amount: Money| PaymentCommand::Repay {
        institution: inst(),
        reference: ser(reference),
        receipt: ser(receipt),
        amount,
    };
    let over = step(&mut kv, "2025-05-09", repay("RC1", "PP3", m("30.01"))).unwrap_err();
    assert_eq!(over.field, "amount");
    let first = step(&mut kv, "2025-05-09", repay("RC1", "PP3", m("30.00"))).unwrap();
    assert_eq!(
        step(&mut kv, "2025-05-09", repay("RC1", "PP3", m("30.00"))).unwrap(),
        first,
        "a retry repays nothing more"
    );
    assert_eq!(step(&mut kv, "2025-05-09", repay("RC2", "PP3", m("0.01"))).unwrap_err().field, "amount");
    assert_eq!(ledger(&kv).0.prepaid_repaid, m("30.00"));
    balanced(&kv, contributed);
}

#[test]
fn an_unrecoverable_prepayment_stops_payments() {
    let mut kv = crate::sim::province_fixture(m("100000"));
    settle(&mut kv, "2025-03-12", "V1", "S1", "300");
    step(
        &mut kv,
        "2025-04-02",
        PaymentCommand::Prepay {
            institution: inst(),
            reference: ser("PP1"),
            kind: PrepaymentKind::General,
            procurement: Money::ZERO,
        },
    )
    .unwrap();
    let write_off = |case: &str| PaymentCommand::WriteOff {
        institution: inst(),
        reference: ser("PP1"),
        case_id: case.into(),
        reason: "the institution closed".into(),
    };
    assert_eq!(step(&mut kv, "2025-04-03", write_off("K1")).unwrap_err().field, "case_id");
    one(
        &mut kv,
        "2025-04-03",
        ProvinceCommand::Case(CaseCommand::Open {
            id: "K1".into(),
            province: medmesh_types::ProvinceCode::new("110000").unwrap(),
            source: medmesh_supervision::cases::CaseSource::Inspection("I1".into()),
            institution: inst(),
            settlements: vec![ser("S1")],
        }),
    )
    .unwrap();
    step(&mut kv, "2025-04-03", write_off("K1")).unwrap();
    assert_eq!(step(&mut kv, "2025-04-03", write_off("K1")).unwrap_err().field, "reference");
    step(
        &mut kv,
        "2025-04-03",
        PaymentCommand::Declare { institution: inst(), serial: ser("D3"), period: period("2025-03") },
    )
    .unwrap();
    step(
        &mut kv,
        "2025-04-03",
        PaymentCommand::Review {
            province: medmesh_types::ProvinceCode::new("110000").unwrap(),
            institution: inst(),
            period: period("2025-03"),
            deductions: vec![],
            note: String::new(),
        },
    )
    .unwrap();
    let stopped = step(
        &mut kv,
        "2025-04-04",
        PaymentCommand::Pay {
            institution: inst(),
            period: period("2025-03"),
            reference: ser("P1"),
            amount: m("1.00"),
            offset: Money::ZERO,
        },
    )
    .unwrap_err();
    assert_eq!((stopped.code, stopped.field.as_str()), (ErrorCode::FailedPrecondition, "institution_id"));
    assert!(stopped.message.contains("K1"), "{}", stopped.message);
}

#[test]
fn prepayment_conditions_are_named_in_the_quote() {
    let mut kv = crate::sim::province_fixture(m("100000"));
    let quote = |kv: &MemKv, time: &str| {
        run_query(
            kv,
            &Query::PrepaymentQuote {
                institution: inst(),
                kind: PrepaymentKind::General,
                procurement: Money::ZERO,
                now: at(time),
            },
        )
    };
    // No expenditure yet: nothing to base it on.
    let none = quote(&kv, "2025-04-02").unwrap_err();
    assert_eq!(none.field, "institution_id");
    settle(&mut kv, "2025-03-12", "V1", "S1", "300");
    assert!(matches!(quote(&kv, "2025-04-02"), Ok(Answer::PrepaymentQuote(_))));
    // The fund's risk level: a policy asking 120 months of a fund that holds fewer.
    step(
        &mut kv,
        "2025-04-02",
        PaymentCommand::PutPolicy(PrepaymentPolicy { min_months_covered: 120, ..PrepaymentPolicy::default() }),
    )
    .unwrap();
    let spent: Money = crate::kv::load(&kv, &keys::fund_month(period("2025-03"))).unwrap();
    let avg = Money::from_fen((spent.fen() / 12) as i64);
    let (f, _) = ledger(&kv);
    let answer = quote(&kv, "2025-04-02");
    if f.balance() < Money::from_fen((avg.fen() * 120) as i64) {
        assert_eq!(answer.unwrap_err().field, "fund");
    } else {
        assert!(answer.is_ok());
    }
    step(&mut kv, "2025-04-02", PaymentCommand::PutPolicy(PrepaymentPolicy::default())).unwrap();
    // Credit grade D (issue 13.3): a fraud case decided in another province two years ago (past
    // the 12 clean months) that recovered 150,000 yuan and suspended the agreement leaves
    // 100 - 30 - 15 - 10 = 45 points.
    use medmesh_supervision::cases::{AgreementAction, CaseOutcome, ViolationType};
    let outcome = CaseOutcome {
        province: medmesh_types::ProvinceCode::new("310000").unwrap(),
        case_id: "SH-7".into(),
        institution: inst(),
        personnel: vec![],
        violation: ViolationType::Fraud,
        recovered: m("150000"),
        fine: m("300000"),
        agreement: AgreementAction::Suspend(1),
        department: None,
        decided_on: Date::parse("2023-04-03").unwrap(),
        executed_on: Date::parse("2023-04-04").unwrap(),
        reason: "fraud".into(),
    };
    let shared = vec![(1, crate::shared::SharedItem::CaseOutcome(outcome))];
    one(&mut kv, "2025-04-02", ProvinceCommand::SyncShared { items: shared }).unwrap();
    let e = quote(&kv, "2025-04-02").unwrap_err();
    assert_eq!(e.field, "institution_id");
    assert!(
        e.message.contains("credit grade is D: score 45 of 100") && e.message.contains("310000/SH-7"),
        "{}",
        e.message
    );
    // Three years after the decision it no longer counts.
    let later = quote(&kv, "2026-04-03");
    assert!(later.as_ref().err().is_none_or(|e| !e.message.contains("credit grade")), "{later:?}");
    // A suspended agreement.
    let mut i: Institution = crate::kv::load(&kv, &keys::institution(&inst())).unwrap();
    i.suspended = true;
    one(&mut kv, "2025-04-02", ProvinceCommand::PutInstitution(i)).unwrap();
    let e = quote(&kv, "2025-04-02").unwrap_err();
    assert!(e.message.contains("agreement is not in force"), "{}", e.message);
}

fn budget_of(r: CommandResult) -> medmesh_payment::Budget {
    match r.unwrap() {
        Outcome::Budget(b) => *b,
        other => panic!("{other:?}"),
    }
}

#[test]
fn a_budget_counts_consumption_warns_and_withholds_the_institutions_share_of_an_overspend() {
    let contributed = m("100000");
    let mut kv = crate::sim::province_fixture(contributed);
    let a = settle(&mut kv, "2025-03-12", "V1", "S1", "300");
    // Set after the first settlement: what the year consumed so far counts.
    let amount = Money::from_fen(a.to_fen() * 3 / 2);
    let put = |amount: Money| PaymentCommand::PutBudget {
        institution: inst(),
        year: 2025,
        terms: medmesh_payment::BudgetTerms { amount, thresholds: vec![50, 100], overspend_fund_percent: 50 },
    };
    let b = budget_of(step(&mut kv, "2025-03-13", put(amount)));
    assert_eq!(b.consumed, a);
    assert_eq!(b.warnings.iter().map(|w| w.threshold).collect::<Vec<_>>(), vec![50], "a is two thirds of the budget");
    let other = PaymentCommand::PutBudget {
        institution: InstitutionId::new("H999").unwrap(),
        year: 2025,
        terms: medmesh_payment::BudgetTerms { amount, thresholds: vec![], overspend_fund_percent: 0 },
    };
    let e = step(&mut kv, "2025-03-13", other).unwrap_err();
    assert_eq!((e.code, e.field.as_str()), (ErrorCode::NotFound, "institution_id"));
    let c = settle(&mut kv, "2025-06-01", "V2", "S2", "300");
    let b = match run_query(&kv, &Query::Budget { institution: inst(), year: 2025 }).unwrap() {
        Answer::Budget(b) => *b,
        other => panic!("{other:?}"),
    };
    assert_eq!(b.consumed, a + c);
    assert_eq!(b.warnings[1].threshold, 100);
    let close = PaymentCommand::CloseBudgetYear { institution: inst(), year: 2025 };
    assert_eq!(step(&mut kv, "2025-12-31", close.clone()).unwrap_err().field, "year");
    let (before, payable_before) = ledger(&kv);
    let b = budget_of(step(&mut kv, "2026-01-02", close.clone()));
    let end = b.closed.clone().unwrap();
    let overspend = a + c - amount;
    let fund_bears = Money::from_fen(overspend.to_fen() / 2);
    assert_eq!((end.overspend, end.fund_bears, end.institution_bears), (overspend, fund_bears, overspend - fund_bears));
    let (after, payable_after) = ledger(&kv);
    assert_eq!(payable_after, payable_before - end.institution_bears);
    assert_eq!(after.budget_withheld, end.institution_bears);
    assert_eq!(after.balance(), before.balance() + end.institution_bears);
    let january: MonthAccount = crate::kv::load(&kv, &keys::month_account(&inst(), period("2026-01"))).unwrap();
    assert_eq!(january.recovered, end.institution_bears, "the month open declares less by it");
    assert_eq!(step(&mut kv, "2026-01-02", close).unwrap_err().field, "year");
    let mut totals = MoneyTotals::default();
    totals.add_province(&after, payable_after);
    totals.conserved().unwrap();
}

#[test]
fn the_fund_warns_when_its_balance_covers_too_few_months() {
    let mut kv = crate::sim::province_fixture(m("1000"));
    settle(&mut kv, "2025-03-12", "V1", "S1", "300");
    let spent: Money = crate::kv::load(&kv, &keys::fund_month(period("2025-03"))).unwrap();
    // The group's time is April: the window is 2024-04 .. 2025-03.
    kv.0.insert(keys::TIME.as_bytes().to_vec(), crate::kv::encode(&at("2025-04-02")));
    let risk = |kv: &MemKv| match run_query(kv, &Query::Fund).unwrap() {
        Answer::Fund(f) => (f.ledger.balance(), f.risk),
        other => panic!("{other:?}"),
    };
    let (balance, r) = risk(&kv);
    let monthly = Money::from_fen((spent.fen() / 12) as i64);
    let tenths = (balance.fen() * 10 / monthly.fen()) as i64;
    assert_eq!((r.monthly_expenditure, r.months_covered_tenths), (monthly, Some(tenths)));
    assert!(tenths / 10 < 119, "the fixture's fund covers {tenths} tenths of a month");
    assert_eq!(r.warning, None, "6 months by default: {tenths} tenths");
    let threshold = (tenths / 10 + 1) as u32;
    step(
        &mut kv,
        "2025-04-02",
        PaymentCommand::PutPolicy(PrepaymentPolicy { min_months_covered: threshold, ..PrepaymentPolicy::default() }),
    )
    .unwrap();
    let (_, r) = risk(&kv);
    let warning = r.warning.unwrap();
    assert!(warning.contains(&format!("{}.{} months", tenths / 10, tenths % 10)), "{warning}");
}

mod conservation {
    //! Any sequence of settlements, reversals and payment steps keeps money conserved to the
    //! fen, keeps every payable equal to what its records say, and never changes a declared
    //! month.

    use proptest::prelude::*;

    use super::*;

    #[derive(Debug, Clone)]
    enum Op {
        Settle(u32),
        Reverse(usize),
        Advance(u8),
        Declare,
        Review(usize, u32),
        Contest,
        Resolve(bool),
        Pay(u32, u32),
        Prepay,
        Repay(u32),
        /// Moves to the 2nd of next month, declares the month before and reviews it.
        MonthEnd,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (10u32..900).prop_map(Op::Settle),
            1 => (0usize..50).prop_map(Op::Reverse),
            3 => (1u8..20).prop_map(Op::Advance),
            2 => Just(Op::Declare),
            2 => ((0usize..50), (1u32..20_000)).prop_map(|(i, f)| Op::Review(i, f)),
            1 => Just(Op::Contest),
            1 => any::<bool>().prop_map(Op::Resolve),
            3 => ((0u32..=110), (0u32..5_000)).prop_map(|(a, o)| Op::Pay(a, o)),
            1 => Just(Op::Prepay),
            1 => (1u32..5_000).prop_map(Op::Repay),
            2 => Just(Op::MonthEnd),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]
        #[test]
        fn money_is_conserved_after_any_sequence(ops in proptest::collection::vec(op(), 1..80)) {
            let contributed = m("100000");
            let mut kv = crate::sim::province_fixture(contributed);
            let mut day = Date::parse("2025-03-11").unwrap();
            let mut settled: Vec<(String, Period)> = Vec::new();
            let mut declared: Vec<(Period, medmesh_payment::Declaration)> = Vec::new();
            let mut n = 0u32;
            for op in ops {
                let today = day.to_string();
                let last_month = Period::of(day).prev();
                match op {
                    Op::Settle(yuan) => {
                        n += 1;
                        settle(&mut kv, &today, &format!("V{n}"), &format!("S{n}"), &yuan.to_string());
                        settled.push((format!("S{n}"), Period::of(day)));
                    }
                    Op::Reverse(i) if !settled.is_empty() => {
                        let (s, _) = settled[i % settled.len()].clone();
                        n += 1;
                        let _ = one(&mut kv, &today, ProvinceCommand::Reverse {
                            institution: inst(),
                            serial: ser(&format!("R{n}")),
                            settlement: ser(&s),
                        });
                    }
                    Op::Reverse(_) => {}
                    Op::Advance(d) => day = day.plus_days(i32::from(d)),
                    Op::MonthEnd => {
                        day = Period::of(day).next().first_day().plus_days(1);
                        let month = Period::of(day).prev();
                        let at_day = day.to_string();
                        if let Ok(Outcome::Declaration(d)) = step(&mut kv, &at_day, PaymentCommand::Declare {
                            institution: inst(),
                            serial: ser(&format!("D{}", month.key())),
                            period: month,
                        }) {
                            if !declared.iter().any(|(p, _)| *p == month) {
                                declared.push((month, *d));
                            }
                        }
                        let _ = step(&mut kv, &at_day, PaymentCommand::Review {
                            province: medmesh_types::ProvinceCode::new("110000").unwrap(),
                            institution: inst(),
                            period: month,
                            deductions: vec![],
                            note: String::new(),
                        });
                    }
                    Op::Declare => {
                        let r = step(&mut kv, &today, PaymentCommand::Declare {
                            institution: inst(),
                            serial: ser(&format!("D{}", last_month.key())),
                            period: last_month,
                        });
                        if let Ok(Outcome::Declaration(d)) = r {
                            if !declared.iter().any(|(p, _)| *p == last_month) {
                                declared.push((last_month, *d));
                            }
                        }
                    }
                    Op::Review(i, fen) => {
                        let lines: Vec<DeductionInput> = settled
                            .iter()
                            .filter(|(_, p)| *p == last_month)
                            .nth(i % 3)
                            .map(|(s, _)| DeductionInput {
                                settlement: ser(s),
                                amount: Money::from_fen(i64::from(fen)),
                                reason: "r".into(),
                                alert: None,
                            })
                            .into_iter()
                            .collect();
                        let _ = step(&mut kv, &today, PaymentCommand::Review {
                            province: medmesh_types::ProvinceCode::new("110000").unwrap(),
                            institution: inst(),
                            period: last_month,
                            deductions: lines,
                            note: String::new(),
                        });
                    }
                    Op::Contest | Op::Resolve(_) => {
                        let first = settled.iter().find(|(_, p)| *p == last_month).map(|(s, _)| ser(s));
                        if let Some(settlement) = first {
                            let cmd = match op {
                                Op::Contest => PaymentCommand::Contest {
                                    institution: inst(),
                                    period: last_month,
                                    settlement,
                                    reason: "c".into(),
                                },
                                _ => PaymentCommand::Resolve {
                                    province: medmesh_types::ProvinceCode::new("110000").unwrap(),
                                    institution: inst(),
                                    period: last_month,
                                    settlement,
                                    accept: matches!(op, Op::Resolve(true)),
                                    reason: "r".into(),
                                },
                            };
                            let _ = step(&mut kv, &today, cmd);
                        }
                    }
                    Op::Pay(percent, o) => {
                        // A share of what is outstanding (above 100%: more than approved).
                        let outstanding = crate::kv::load::<medmesh_payment::Declaration>(
                            &kv,
                            &keys::declaration(&inst(), last_month),
                        )
                        .map(|d| d.outstanding().max(Money::ZERO))
                        .unwrap_or(Money::from_fen(100));
                        let offset = Money::from_fen(i64::from(o)).min(outstanding);
                        let amount = Money::from_fen((outstanding - offset).to_fen() * i64::from(percent) / 100);
                        n += 1;
                        let _ = step(&mut kv, &today, PaymentCommand::Pay {
                            institution: inst(),
                            period: last_month,
                            reference: ser(&format!("P{n}")),
                            amount,
                            offset,
                        });
                    }
                    Op::Prepay => {
                        n += 1;
                        let _ = step(&mut kv, &today, PaymentCommand::Prepay {
                            institution: inst(),
                            reference: ser(&format!("PP{n}")),
                            kind: PrepaymentKind::General,
                            procurement: Money::ZERO,
                        });
                    }
                    Op::Repay(fen) => {
                        let (account, _) = crate::payment::prepayments(&kv, &inst(), 10);
                        if let Some(reference) = account.open.first() {
                            n += 1;
                            let _ = step(&mut kv, &today, PaymentCommand::Repay {
                                institution: inst(),
                                reference: reference.clone(),
                                receipt: ser(&format!("RC{n}")),
                                amount: Money::from_fen(i64::from(fen)),
                            });
                        }
                    }
                }
                balanced(&kv, contributed);
                for (p, first) in &declared {
                    let now: medmesh_payment::Declaration =
                        crate::kv::load(&kv, &keys::declaration(&inst(), *p)).unwrap();
                    prop_assert_eq!((&now.account, now.declared), (&first.account, first.declared));
                    // Never paid beyond what was approved (a month of late reversals only is
                    // approved below zero: nothing is paid for it, the payable nets it).
                    let out = now.paid + now.offset;
                    prop_assert!(out.is_zero() || out <= now.approved());
                }
                let (f, _) = ledger(&kv);
                let (account, list) = crate::payment::prepayments(&kv, &inst(), 100);
                let remaining = list.iter().fold(Money::ZERO, |s, p| s + p.remaining());
                prop_assert_eq!(f.prepayments_outstanding(), remaining);
                prop_assert_eq!(account.outstanding, remaining);
            }
        }
    }
}

#[test]
fn individual_accounts_are_credited_once_per_month_and_all_or_nothing() {
    let mut kv = crate::sim::province_fixture(m("1000"));
    let balance = |kv: &MemKv| {
        crate::find_person(kv, CertificateKind::SocialSecurityCard, &crate::sim::ss1()).unwrap().account_balance
    };
    let before = balance(&kv);
    let credit = |serial: &str, certs: Vec<medmesh_types::KeyedHash>| ProvinceCommand::CreditAccounts {
        serial: ser(serial),
        period: period("2025-03"),
        credits: certs
            .into_iter()
            .map(|c| crate::AccountCredit {
                certificate_kind: CertificateKind::SocialSecurityCard,
                certificate: c,
                amount: m("150.25"),
            })
            .collect(),
    };
    let first = one(&mut kv, "2025-03-31", credit("AC1", vec![crate::sim::ss1()])).unwrap();
    assert_eq!(first, Outcome::Credited { persons: 1, total: m("150.25") });
    assert_eq!(balance(&kv), before + m("150.25"));
    assert_eq!(one(&mut kv, "2025-03-31", credit("AC1", vec![crate::sim::ss1()])).unwrap(), first, "a retry");
    let again = one(&mut kv, "2025-03-31", credit("AC2", vec![crate::sim::ss1()])).unwrap_err();
    assert_eq!((again.code, again.field.as_str()), (ErrorCode::FailedPrecondition, "credits[0].certificate"));
    // All or nothing: a line naming nobody refuses the whole command.
    let nobody = medmesh_types::KeyedHash::new("ab".repeat(32)).unwrap();
    let mut april = credit("AC3", vec![crate::sim::ss1(), nobody]);
    if let ProvinceCommand::CreditAccounts { period: p, .. } = &mut april {
        *p = period("2025-04");
    }
    let e = one(&mut kv, "2025-04-30", april).unwrap_err();
    assert_eq!((e.code, e.field.as_str()), (ErrorCode::NotFound, "credits[1].certificate"));
    assert_eq!(balance(&kv), before + m("150.25"), "nothing of the refused command was credited");
    assert_eq!(ledger(&kv).0.accounts_credited, m("150.25"));
}

/// Issue 13.3: a reviewed month with at least a tenth deducted costs the institution 5 credit
/// points (worked by hand: 100 − 5 = 95), here at once and, through the federation, in another
/// province; a deduction withdrawn on contest is shared as a newer version, and the month stops
/// counting everywhere.
#[test]
fn a_month_deducted_a_tenth_or_more_counts_in_every_province_until_withdrawn() {
    use medmesh_supervision::credit::{Grade, ReviewedDeclaration};
    let province = medmesh_types::ProvinceCode::new("110000").unwrap();
    let (mut kv, mut f, mut other) =
        (crate::sim::province_fixture(m("100000")), MemKv::default(), crate::sim::province_fixture(m("100000")));
    let a = settle(&mut kv, "2025-03-12", "V1", "S1", "300");
    let b = settle(&mut kv, "2025-03-12", "V2", "S2", "300");
    step(
        &mut kv,
        "2025-04-02",
        PaymentCommand::Declare { institution: inst(), serial: ser("D1"), period: period("2025-03") },
    )
    .unwrap();
    let today = Date::parse("2025-04-10").unwrap();
    let score = |kv: &MemKv| match run_query(kv, &Query::CreditRating { institution: inst(), today }).unwrap() {
        Answer::CreditRating(r) => (r.score, r.grade),
        o => panic!("{o:?}"),
    };
    // All of S1 is half the month: at least a tenth.
    let review = PaymentCommand::Review {
        province: province.clone(),
        institution: inst(),
        period: period("2025-03"),
        deductions: vec![DeductionInput {
            settlement: ser("S1"),
            amount: a,
            reason: "not indicated".into(),
            alert: None,
        }],
        note: String::new(),
    };
    step(&mut kv, "2025-04-03", review).unwrap();
    assert_eq!(score(&kv), (95, Grade::A));
    let shared = |kv: &MemKv| match run_query(kv, &Query::Outbox { limit: 10 }).unwrap() {
        Answer::SharedLog(items) => items
            .into_iter()
            .filter_map(|(_, i)| match i {
                SharedItem::DeclarationReview(r) => Some(r),
                _ => None,
            })
            .collect::<Vec<_>>(),
        o => panic!("{o:?}"),
    };
    let first = ReviewedDeclaration {
        province: province.clone(),
        institution: inst(),
        period: "2025-03".into(),
        declared: a + b,
        deducted: a,
        reviewed_on: Date::parse("2025-04-03").unwrap(),
        version: 0,
    };
    assert_eq!(shared(&kv), vec![first.clone()]);

    // The federation keeps the newest version once; the same version with other figures is
    // refused; another province rates alike.
    let fed = |f: &mut MemKv, r: &ReviewedDeclaration| {
        let (res, writes) = apply_command(
            f,
            &Command::Federation(FederationCommand::RecordDeclarationReview(r.clone())),
            at("2025-04-10"),
        );
        f.write(writes);
        res
    };
    fed(&mut f, &first).unwrap();
    fed(&mut f, &first).unwrap();
    let forged = ReviewedDeclaration { deducted: b, ..first.clone() };
    assert_eq!(fed(&mut f, &forged).unwrap_err().code, ErrorCode::AlreadyExists);
    let log = |f: &MemKv| match run_query(f, &Query::SharedLog { after: 0, limit: 10 }).unwrap() {
        Answer::SharedLog(items) => items,
        o => panic!("{o:?}"),
    };
    assert_eq!(log(&f).len(), 1, "shared once");
    one(&mut other, "2025-04-10", ProvinceCommand::SyncShared { items: log(&f) }).unwrap();
    assert_eq!(score(&other), (95, Grade::A));

    // Contested and withdrawn: version 1 with nothing deducted; the older version arriving late
    // changes nothing; both provinces are back at 100.
    step(
        &mut kv,
        "2025-04-05",
        PaymentCommand::Contest {
            institution: inst(),
            period: period("2025-03"),
            settlement: ser("S1"),
            reason: "indicated".into(),
        },
    )
    .unwrap();
    step(
        &mut kv,
        "2025-04-06",
        PaymentCommand::Resolve {
            province: province.clone(),
            institution: inst(),
            period: period("2025-03"),
            settlement: ser("S1"),
            accept: true,
            reason: "indicated by the notes".into(),
        },
    )
    .unwrap();
    assert_eq!(score(&kv), (100, Grade::A));
    let second = ReviewedDeclaration { deducted: Money::ZERO, version: 1, ..first.clone() };
    assert_eq!(shared(&kv), vec![first.clone(), second.clone()]);
    fed(&mut f, &second).unwrap();
    fed(&mut f, &first).unwrap();
    let items = log(&f);
    assert_eq!(items.len(), 2);
    one(&mut other, "2025-04-10", ProvinceCommand::SyncShared { items }).unwrap();
    assert_eq!(score(&other), (100, Grade::A));
}
