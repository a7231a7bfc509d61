//! Issue 12.1–12.2: a month of an institution is declared, reviewed, contested, paid, and a
//! prepayment granted, through the public API of a real 3-replica province (processes, RocksDB,
//! TLS).
//!
//! The group first runs with its clocks four days or so in the past (`clock_offset_ms`), in the
//! last days of the previous month, where a hospital settles two claims. It is then restarted
//! on the real clock: the month is over, and the month-end work runs. Every figure is checked
//! against the settlement answers' own splits, and the fund against contributions to the fen.

use std::time::Duration;

use medmesh_node::demo;
use medmesh_node::pb;
use medmesh_node::pb::agency_service_client::AgencyServiceClient;
use medmesh_node::pb::hospital_service_client::HospitalServiceClient;
use medmesh_tests::{fails, free_base_port, institution, wait_until, yuan, Group};
use medmesh_types::{LogTime, Money};
use tonic::Code;

const HOME: &str = "110000";
const DAY_MS: i64 = 86_400_000;

/// Money held in the province (both funds and the payables) plus what left it equals what came
/// in (GetFund alone).
fn conserved(f: &pb::GetFundResponse) {
    let held = yuan(&f.balance) + yuan(&f.assistance_balance) + yuan(&f.payables);
    let out = yuan(&f.institution_payments) + yuan(&f.prepaid_out) - yuan(&f.prepaid_repaid);
    let came = yuan(&f.contributions) + yuan(&f.assistance_funded) + yuan(&f.accounts_paid);
    assert_eq!(held + out, came, "{f:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_month_is_declared_reviewed_contested_paid_and_prepaid() {
    let real = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let day_of_month = LogTime(real).date().ymd().2 as i64;
    let offset = -(day_of_month + 2) * DAY_MS;
    let day = LogTime(real + offset).date();
    let (y, m, _) = day.ymd();
    let month = format!("{y:04}-{m:02}");
    let day = day.to_string();

    let mut g = Group::start(HOME, 3, free_base_port(), &[("MEDMESH_CLOCK_OFFSET_MS", offset.to_string())]);
    let leader = g.leader().await;
    demo::load(g.agency(leader), HOME, 4).await.unwrap();
    // Person 2 is entitled to medical assistance (the demo policy: 70% of what the person
    // still bears in policy, from the assistance fund the demo funds with 1,000,000).
    let mut agency = AgencyServiceClient::new(g.agency(leader));
    agency.put_person(pb::PutPersonRequest { medical_assistance: true, ..demo::person(HOME, 2) }).await.unwrap();
    let inst = demo::institution(HOME, 1);
    let mut h = HospitalServiceClient::new(g.channel_as(leader, &institution(HOME, 1)));
    let (mut owed, mut spent, mut assisted) = (Money::ZERO, Money::ZERO, Money::ZERO);
    for (visit, serial, person) in [("V1", "S1", 1u32), ("V2", "S2", 2)] {
        h.register_visit(demo::visit_request(HOME, visit, person, 1, &day)).await.unwrap();
        h.upload_fees(pb::UploadFeesRequest {
            institution_id: inst.clone(),
            visit_serial: visit.into(),
            lines: demo::fee_lines(u64::from(person), &day),
        })
        .await
        .unwrap();
        let split = h
            .settle(pb::SettleRequest {
                lines: Vec::new(),
                institution_id: inst.clone(),
                serial: serial.into(),
                visit_serial: visit.into(),
                use_individual_account: true,
            })
            .await
            .unwrap()
            .into_inner()
            .split
            .unwrap();
        let burden = yuan(&split.in_policy) - yuan(&split.pooling_fund) - yuan(&split.critical_illness);
        let assistance = if person == 2 { Money::from_fen((burden.to_fen() * 7 + 5) / 10) } else { Money::ZERO };
        assert_eq!(yuan(&split.medical_assistance), assistance, "person {person}: {split:?}");
        owed += yuan(&split.pooling_fund)
            + yuan(&split.critical_illness)
            + yuan(&split.medical_assistance)
            + yuan(&split.individual_account);
        spent += yuan(&split.pooling_fund) + yuan(&split.critical_illness);
        assisted += assistance;
    }
    assert!(owed > Money::ZERO && assisted > Money::ZERO);
    let f = agency.get_fund(pb::GetFundRequest {}).await.unwrap().into_inner();
    assert_eq!(
        (yuan(&f.assistance_funded), yuan(&f.assistance_paid), yuan(&f.assistance_balance)),
        (yuan("1000000"), assisted, yuan("1000000") - assisted)
    );
    conserved(&f);
    // The year's budget, set after the care: what the year consumed counts, and the 50%
    // threshold was reached (the budget is 1.5 times the consumption).
    let year = LogTime(real + offset).date().year();
    let budget_amount = Money::from_fen(owed.to_fen() * 3 / 2);
    let b = agency
        .put_budget(pb::PutBudgetRequest {
            institution_id: inst.clone(),
            year,
            amount: budget_amount.to_string(),
            thresholds: vec![50, 100],
            overspend_fund_percent: 40,
        })
        .await
        .unwrap()
        .into_inner()
        .budget
        .unwrap();
    assert_eq!(yuan(&b.consumed), owed);
    assert_eq!(b.warnings.iter().map(|w| w.threshold).collect::<Vec<_>>(), vec![50]);
    let bad = |thresholds: Vec<u32>, percent: u32, institution_id: &str| pb::PutBudgetRequest {
        institution_id: institution_id.into(),
        year,
        amount: "100.00".into(),
        thresholds,
        overspend_fund_percent: percent,
    };
    fails(agency.put_budget(bad(vec![90, 80], 0, &inst)).await, Code::InvalidArgument, "thresholds[1]");
    fails(agency.put_budget(bad(vec![], 101, &inst)).await, Code::InvalidArgument, "overspend_fund_percent");
    fails(agency.put_budget(bad(vec![], 0, "H310000-01")).await, Code::NotFound, "institution_id");
    let declare = |serial: &str, period: &str| pb::DeclareMonthRequest {
        institution_id: inst.clone(),
        serial: serial.into(),
        period: period.into(),
    };
    // The month is not over yet.
    fails(h.declare_month(declare("D0", &month)).await, Code::FailedPrecondition, "period");
    fails(h.declare_month(declare("D0", "2026-13")).await, Code::InvalidArgument, "period");
    let statement = h
        .get_payment_statement(pb::GetPaymentStatementRequest { institution_id: inst.clone(), period: month.clone() })
        .await
        .unwrap()
        .into_inner()
        .statement
        .unwrap();
    let account = statement.account.unwrap();
    assert_eq!((yuan(&account.settled), account.settlements), (owed, 2));
    assert!(statement.declaration.is_none());
    // Another institution's statement is not this one's to read.
    let other = HospitalServiceClient::new(g.channel_as(leader, &institution(HOME, 2)))
        .get_payment_statement(pb::GetPaymentStatementRequest { institution_id: inst.clone(), period: month.clone() })
        .await;
    assert_eq!(other.unwrap_err().code(), Code::PermissionDenied);

    // The month ends: the group runs on the real clock again.
    g.stop_all().await;
    g.set_env("MEDMESH_CLOCK_OFFSET_MS", "0");
    for id in 1..=3 {
        g.restart(id);
    }
    let leader = g.leader().await;
    let h = HospitalServiceClient::new(g.channel_as(leader, &institution(HOME, 1)));
    let mut agency = AgencyServiceClient::new(g.agency(leader));
    // The group's time catches up in steps of ten minutes; the declaration waits for it.
    let d = wait_until(Duration::from_secs(120), "the group's time to pass the month's end", || {
        let mut h = h.clone();
        let req = declare("D1", &month);
        async move {
            match h.declare_month(req).await {
                Ok(r) => Some(r.into_inner().declaration.unwrap()),
                Err(e) if e.code() == Code::FailedPrecondition && e.message().contains("is not over") => None,
                Err(e) => panic!("{e:?}"),
            }
        }
    })
    .await;
    let mut h = h;
    assert_eq!((yuan(&d.declared), d.status), (owed, pb::DeclarationStatus::Declared as i32));
    assert_eq!(h.declare_month(declare("D1", &month)).await.unwrap().into_inner().declaration.unwrap(), d, "a retry");
    fails(h.declare_month(declare("D2", &month)).await, Code::FailedPrecondition, "period");

    // Review, once: bad lines first (nothing is recorded), then 1.00 off S1.
    let review = |lines: Vec<pb::DeductionInput>| pb::ReviewDeclarationRequest {
        institution_id: inst.clone(),
        period: month.clone(),
        deductions: lines,
        note: "monthly review".into(),
    };
    let line = |serial: &str, amount: &str, reason: &str| pb::DeductionInput {
        settlement_serial: serial.into(),
        amount: amount.into(),
        reason: reason.into(),
        alert_seq: 0,
    };
    let r = agency.review_declaration(review(vec![line("S9", "1.00", "x")])).await;
    fails(r, Code::FailedPrecondition, "deductions[0].settlement_serial");
    let r = agency.review_declaration(review(vec![line("S1", "0", "x")])).await;
    fails(r, Code::InvalidArgument, "deductions[0].amount");
    let r = agency.review_declaration(review(vec![line("S1", "1e3", "x")])).await;
    fails(r, Code::InvalidArgument, "deductions[0].amount");
    let r = agency.review_declaration(review(vec![line("S1", "1.00", " ")])).await;
    fails(r, Code::InvalidArgument, "deductions[0].reason");
    let r = agency.review_declaration(review(vec![line("S1", "1.00", "a"), line("S1", "1.00", "b")])).await;
    fails(r, Code::InvalidArgument, "deductions[1].settlement_serial");
    let before = agency.get_fund(pb::GetFundRequest {}).await.unwrap().into_inner();
    let reviewed = agency
        .review_declaration(review(vec![line("S1", "1.00", "item billed twice on the same day")]))
        .await
        .unwrap()
        .into_inner()
        .declaration
        .unwrap();
    assert_eq!((yuan(&reviewed.deducted), yuan(&reviewed.approved)), (yuan("1.00"), owed - yuan("1.00")));
    let after = agency.get_fund(pb::GetFundRequest {}).await.unwrap().into_inner();
    assert_eq!(yuan(&after.deducted), yuan("1.00"));
    assert_eq!(yuan(&after.payables), yuan(&before.payables) - yuan("1.00"));
    assert_eq!(yuan(&after.balance), yuan(&before.balance) + yuan("1.00"));
    conserved(&after);
    fails(agency.review_declaration(review(vec![])).await, Code::FailedPrecondition, "period");

    // The institution contests the line once; the agency accepts.
    let contest = pb::ContestDeductionRequest {
        institution_id: inst.clone(),
        period: month.clone(),
        settlement_serial: "S1".into(),
        reason: "billed once; the second line is the dressing".into(),
    };
    h.contest_deduction(contest.clone()).await.unwrap();
    fails(h.contest_deduction(contest).await, Code::FailedPrecondition, "settlement_serial");
    let resolve = pb::ResolveContestRequest {
        institution_id: inst.clone(),
        period: month.clone(),
        settlement_serial: "S1".into(),
        accept: true,
        reason: "the notes show a dressing".into(),
    };
    let resolved = agency.resolve_contest(resolve.clone()).await.unwrap().into_inner().declaration.unwrap();
    assert_eq!(yuan(&resolved.approved), owed);
    assert_eq!(resolved.deductions[0].contest, pb::ContestStatus::Accepted as i32);
    fails(agency.resolve_contest(resolve).await, Code::FailedPrecondition, "settlement_serial");

    // Payment, exactly once per reference.
    let pay = |reference: &str, amount: Money, period: &str| pb::PayInstitutionRequest {
        institution_id: inst.clone(),
        period: period.into(),
        reference: reference.into(),
        amount: amount.to_string(),
        offset: String::new(),
    };
    fails(agency.pay_institution(pay("P0", owed, "2020-01")).await, Code::NotFound, "period");
    let half = Money::from_fen(owed.to_fen() / 2);
    let first = agency.pay_institution(pay("P1", half, &month)).await.unwrap().into_inner();
    assert_eq!(agency.pay_institution(pay("P1", half, &month)).await.unwrap().into_inner(), first, "a retry pays once");
    fails(agency.pay_institution(pay("P1", owed, &month)).await, Code::AlreadyExists, "reference");
    fails(
        agency.pay_institution(pay("P2", owed - half + yuan("0.01"), &month)).await,
        Code::FailedPrecondition,
        "amount",
    );
    let second = agency.pay_institution(pay("P2", owed - half, &month)).await.unwrap().into_inner();
    assert_eq!(yuan(&second.declaration.unwrap().outstanding), Money::ZERO);
    let f = agency.get_fund(pb::GetFundRequest {}).await.unwrap().into_inner();
    assert_eq!((yuan(&f.institution_payments), yuan(&f.payables)), (owed, Money::ZERO));
    conserved(&f);
    // The fund's risk level: months of the average monthly expenditure over the last 12 full
    // months (only last month spent) that the balance covers.
    let monthly = Money::from_fen(spent.to_fen() / 12);
    let tenths = yuan(&f.balance).to_fen() * 10 / monthly.to_fen();
    assert_eq!(yuan(&f.monthly_expenditure), monthly);
    assert_eq!(f.months_covered, format!("{}.{}", tenths / 10, tenths % 10));
    assert_eq!((f.risk_threshold_months, f.risk_warning.is_empty()), (6, tenths >= 60), "{f:?}");
    // The budget: the year-end closing waits for the year to be over.
    let b = h.get_budget(pb::GetBudgetRequest { institution_id: inst.clone(), year }).await.unwrap().into_inner();
    assert_eq!(yuan(&b.budget.unwrap().consumed), owed);
    let close = agency.close_budget_year(pb::CloseBudgetYearRequest { institution_id: inst.clone(), year }).await;
    if year == LogTime(real).date().year() {
        fails(close, Code::FailedPrecondition, "year");
    } else {
        let closed = close.unwrap().into_inner().budget.unwrap().closed.unwrap();
        assert_eq!((yuan(&closed.overspend), yuan(&closed.underspend)), (Money::ZERO, budget_amount - owed));
    }
    let listed = h
        .list_declarations(pb::ListDeclarationsRequest { institution_id: inst.clone(), ..Default::default() })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(listed.declarations.len(), 1);
    assert_eq!((yuan(&listed.declarations[0].paid), listed.declarations[0].payment_references.len()), (owed, 2));

    // Prepayment: one month of the average over the last year (only one month had spending).
    let quote = h
        .quote_prepayment(pb::QuotePrepaymentRequest {
            institution_id: inst.clone(),
            kind: pb::PrepaymentKind::General as i32,
            procurement_amount: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .sizing
        .unwrap();
    let expected = Money::from_fen(owed.to_fen() / 12);
    assert_eq!((yuan(&quote.amount), quote.months, yuan(&quote.base)), (expected, 12, owed));
    assert!(quote.rule.contains(&month), "{}", quote.rule);
    let grant = |reference: &str, kind: pb::PrepaymentKind, procurement: &str| pb::GrantPrepaymentRequest {
        institution_id: inst.clone(),
        reference: reference.into(),
        kind: kind as i32,
        procurement_amount: procurement.into(),
    };
    fails(
        agency.grant_prepayment(grant("PP0", pb::PrepaymentKind::Unspecified, "")).await,
        Code::InvalidArgument,
        "kind",
    );
    let r = agency.grant_prepayment(grant("PP0", pb::PrepaymentKind::General, "10.00")).await;
    fails(r, Code::InvalidArgument, "procurement_amount");
    let p = agency
        .grant_prepayment(grant("PP1", pb::PrepaymentKind::General, ""))
        .await
        .unwrap()
        .into_inner()
        .prepayment
        .unwrap();
    assert_eq!((yuan(&p.amount), p.purpose.as_str()), (expected, "procurement of drugs and medical consumables"));
    fails(
        agency.grant_prepayment(grant("PP2", pb::PrepaymentKind::General, "")).await,
        Code::FailedPrecondition,
        "institution_id",
    );
    let f = agency.get_fund(pb::GetFundRequest {}).await.unwrap().into_inner();
    assert_eq!((yuan(&f.prepaid_out), yuan(&f.prepayments_outstanding)), (expected, expected));
    conserved(&f);
    let mine =
        h.list_prepayments(pb::ListPrepaymentsRequest { institution_id: inst.clone() }).await.unwrap().into_inner();
    assert_eq!((mine.prepayments.len(), yuan(&mine.outstanding), mine.payments_stopped.as_str()), (1, expected, ""));

    // Repaid, then more than remains is refused; an unknown case cannot take a write-off.
    let repay = |receipt: &str, amount: &str| pb::RepayPrepaymentRequest {
        institution_id: inst.clone(),
        reference: "PP1".into(),
        receipt: receipt.into(),
        amount: amount.into(),
    };
    if expected > yuan("0.01") {
        agency.repay_prepayment(repay("RC1", "0.01")).await.unwrap();
    }
    fails(agency.repay_prepayment(repay("RC2", &expected.to_string())).await, Code::FailedPrecondition, "amount");
    let r = agency
        .write_off_prepayment(pb::WriteOffPrepaymentRequest {
            institution_id: inst.clone(),
            reference: "PP1".into(),
            case_id: "NO-SUCH-CASE".into(),
            reason: "closed".into(),
        })
        .await;
    fails(r, Code::NotFound, "case_id");
    conserved(&agency.get_fund(pb::GetFundRequest {}).await.unwrap().into_inner());

    // The policy: ranges named.
    let put = |p: Option<pb::PrepaymentPolicy>| pb::PutPrepaymentPolicyRequest { policy: p };
    fails(agency.put_prepayment_policy(put(None)).await, Code::InvalidArgument, "policy");
    let bad =
        pb::PrepaymentPolicy { min_months_covered: 6, history_years: 4, clean_months: 12, procurement_percent: 30 };
    fails(agency.put_prepayment_policy(put(Some(bad))).await, Code::InvalidArgument, "policy.history_years");
    let good =
        pb::PrepaymentPolicy { min_months_covered: 3, history_years: 2, clean_months: 6, procurement_percent: 40 };
    agency.put_prepayment_policy(put(Some(good))).await.unwrap();
    let got = agency.get_prepayment_policy(pb::GetPrepaymentPolicyRequest {}).await.unwrap().into_inner().policy;
    assert_eq!(got, Some(good));
    let r = h
        .list_declarations(pb::ListDeclarationsRequest {
            institution_id: inst.clone(),
            page_token: "x".into(),
            page_size: 0,
        })
        .await;
    fails(r, Code::InvalidArgument, "page_token");
    // The reads refuse what they cannot answer, naming the field.
    let r = agency
        .get_institution_statement(pb::GetInstitutionStatementRequest {
            institution_id: inst.clone(),
            period: "2026-1".into(),
        })
        .await;
    fails(r, Code::InvalidArgument, "period");
    let r = agency
        .list_institution_declarations(pb::ListInstitutionDeclarationsRequest {
            institution_id: inst.clone(),
            page_token: "2026/01".into(),
            page_size: 0,
        })
        .await;
    fails(r, Code::InvalidArgument, "page_token");
    let r = agency
        .list_institution_prepayments(pb::ListInstitutionPrepaymentsRequest { institution_id: "bad id!".into() })
        .await;
    fails(r, Code::InvalidArgument, "institution_id");
    let r = agency
        .get_institution_budget(pb::GetInstitutionBudgetRequest { institution_id: inst.clone(), year: 2001 })
        .await;
    fails(r, Code::NotFound, "year");
    fails(
        h.get_budget(pb::GetBudgetRequest { institution_id: inst.clone(), year: 2001 }).await,
        Code::NotFound,
        "year",
    );
    let r = h
        .quote_prepayment(pb::QuotePrepaymentRequest {
            institution_id: inst.clone(),
            kind: 9,
            procurement_amount: String::new(),
        })
        .await;
    fails(r, Code::InvalidArgument, "kind");
    let r = h
        .contest_deduction(pb::ContestDeductionRequest {
            institution_id: inst.clone(),
            period: month.clone(),
            settlement_serial: "S1".into(),
            reason: String::new(),
        })
        .await;
    fails(r, Code::InvalidArgument, "reason");

    // Individual accounts: an employee's month credited once; a resident has no account.
    let account = |h: &mut HospitalServiceClient<tonic::transport::Channel>, person: u32| {
        let req = pb::LookupIdentityRequest {
            institution_id: inst.clone(),
            certificate_kind: pb::CertificateKind::SocialSecurityCard as i32,
            certificate: demo::ss_card(HOME, person),
        };
        let mut h = h.clone();
        async move { yuan(&h.lookup_identity(req).await.unwrap().into_inner().account_balance) }
    };
    let before = account(&mut h, 1).await;
    let credit = |serial: &str, person: u32| pb::CreditAccountsRequest {
        serial: serial.into(),
        period: month.clone(),
        credits: vec![pb::AccountCredit {
            certificate_kind: pb::CertificateKind::SocialSecurityCard as i32,
            certificate: demo::ss_card(HOME, person),
            amount: "150.25".into(),
        }],
    };
    let c = agency.credit_accounts(credit("AC1", 1)).await.unwrap().into_inner();
    assert_eq!((c.persons, yuan(&c.total)), (1, yuan("150.25")));
    assert_eq!(agency.credit_accounts(credit("AC1", 1)).await.unwrap().into_inner(), c, "a retry credits once");
    assert_eq!(account(&mut h, 1).await, before + yuan("150.25"));
    fails(agency.credit_accounts(credit("AC2", 1)).await, Code::FailedPrecondition, "credits[0].certificate");
    fails(agency.credit_accounts(credit("AC3", 3)).await, Code::FailedPrecondition, "credits[0].certificate");
    let mut zero = credit("AC4", 2);
    zero.credits[0].amount = "0".into();
    fails(agency.credit_accounts(zero).await, Code::InvalidArgument, "credits[0].amount");
    let r = agency.credit_accounts(pb::CreditAccountsRequest { credits: vec![], ..credit("AC5", 2) }).await;
    fails(r, Code::InvalidArgument, "credits");
    let f = agency.get_fund(pb::GetFundRequest {}).await.unwrap().into_inner();
    assert_eq!(yuan(&f.accounts_credited), yuan("150.25"));
    conserved(&f);
    g.stop_all().await;
}
