//! Apply-level tests over the in-memory store.

use std::collections::BTreeMap;

use medmesh_settlement::{
    CatalogueItem, CriticalIllnessTier, FeeLine, InsuranceType, ItemClass, Policy, Restrictions, Sex,
};
use medmesh_types::{Date, InstitutionId, ItemCode, LogTime, Money, PersonId, PersonnelCode, Ratio, Serial};
use rust_decimal_macros::dec;

use crate::*;

/// 2025-03-10 12:00 Beijing.
const NOW: LogTime = LogTime(1_741_579_200_000);

fn m(s: &str) -> Money {
    Money::parse_yuan(s).unwrap()
}
fn inst() -> InstitutionId {
    InstitutionId::new("H001").unwrap()
}
fn ser(s: &str) -> Serial {
    Serial::new(s).unwrap()
}
fn day(s: &str) -> Date {
    Date::parse(s).unwrap()
}

fn run(kv: &mut MemKv, cmds: Vec<Command>) -> Vec<CommandResult> {
    let (res, writes) = apply_batch(kv, &Batch { time: NOW, commands: cmds });
    kv.write(writes);
    res
}

fn seeded() -> MemKv {
    let mut kv = MemKv::default();
    let mut ratios = BTreeMap::new();
    ratios.insert((InsuranceType::Employee, 3), Ratio::parse("0.8").unwrap());
    let res = run(
        &mut kv,
        vec![
            Command::PutPolicy(Policy {
                deductible: m("100"),
                ratios,
                annual_cap: m("1000"),
                critical_illness: CriticalIllnessTier { ratio: Ratio::parse("0.5").unwrap(), annual_cap: m("5000") },
                temporary_visitor_reduction: Ratio::parse("0.1").unwrap(),
            }),
            Command::PutInstitution(Institution {
                id: inst(),
                name: "City Hospital".into(),
                level: 3,
                agreement_start: day("2024-01-01"),
                agreement_end: day("2026-12-31"),
                suspended: false,
            }),
            Command::PutPersonnel(Personnel {
                code: PersonnelCode::new("D001").unwrap(),
                name: "Dr Li".into(),
                institution: inst(),
                status: QualificationStatus::Active,
            }),
            Command::PutCatalogueItem(CatalogueItem {
                code: ItemCode::new("X1").unwrap(),
                name: "item".into(),
                class: ItemClass::A,
                price_ceiling: None,
                self_pay_share: Ratio::ZERO,
                restrictions: Restrictions::default(),
            }),
            Command::PutPerson(Person {
                id: PersonId::new("110101199001011234").unwrap(),
                name: "Zhang San".into(),
                sex: Sex::Male,
                birth_date: day("1990-01-01"),
                insurance: InsuranceType::Employee,
                status: InsuranceStatus::Active,
                account_balance: m("50"),
                social_security_card: Some("SS1".into()),
                e_credential: None,
            }),
            Command::Contribute { serial: ser("C1"), amount: m("100000"), source: "payroll".into() },
        ],
    );
    assert!(res.iter().all(|r| r.is_ok()), "{res:?}");
    kv
}

fn visit_and_lines(kv: &mut MemKv, visit: &str, price: &str) {
    let res = run(
        kv,
        vec![
            Command::RegisterVisit {
                institution: inst(),
                serial: ser(visit),
                certificate_kind: CertificateKind::SocialSecurityCard,
                certificate: "SS1".into(),
                kind: VisitKind::Outpatient,
                doctor: PersonnelCode::new("D001").unwrap(),
                department: "internal".into(),
                diagnosis: "J06.9".into(),
                admitted: day("2025-03-10"),
            },
            Command::UploadFees {
                institution: inst(),
                visit: ser(visit),
                lines: vec![FeeLine {
                    serial: ser("L1"),
                    code: ItemCode::new("X1").unwrap(),
                    quantity: dec!(1),
                    unit_price: m(price),
                    date: day("2025-03-10"),
                }],
            },
        ],
    );
    assert!(res.iter().all(|r| r.is_ok()), "{res:?}");
}

fn settle_cmd(serial: &str, visit: &str) -> Command {
    Command::Settle { institution: inst(), serial: ser(serial), visit: ser(visit), use_individual_account: true }
}

fn fund(kv: &MemKv) -> FundView {
    match run_query(kv, &Query::Fund).unwrap() {
        Answer::Fund(f) => f,
        other => panic!("{other:?}"),
    }
}

fn conserved(kv: &MemKv) {
    let f = fund(kv);
    assert_eq!(f.ledger.balance() + f.ledger.pooling_paid + f.ledger.critical_illness_paid, f.ledger.contributions);
    assert_eq!(f.payables, f.ledger.pooling_paid + f.ledger.critical_illness_paid + f.ledger.accounts_paid);
}

#[test]
fn retry_with_same_serial_returns_first_outcome() {
    let mut kv = seeded();
    visit_and_lines(&mut kv, "V1", "300");
    let first = run(&mut kv, vec![settle_cmd("S1", "V1")]).remove(0).unwrap();
    let again = run(&mut kv, vec![settle_cmd("S1", "V1")]).remove(0).unwrap();
    assert_eq!(first, again);
    assert_eq!(fund(&kv).ledger.settlements, 1);
    conserved(&kv);
}

#[test]
fn serial_reused_with_different_content_is_rejected() {
    let mut kv = seeded();
    visit_and_lines(&mut kv, "V1", "300");
    visit_and_lines(&mut kv, "V2", "10");
    run(&mut kv, vec![settle_cmd("S1", "V1")]).remove(0).unwrap();
    let err = run(&mut kv, vec![settle_cmd("S1", "V2")]).remove(0).unwrap_err();
    assert_eq!(err.code, ErrorCode::AlreadyExists);
    assert_eq!(err.field, "serial");
}

#[test]
fn reversal_restores_fund_accumulators_and_account() {
    let mut kv = seeded();
    let before = kv.clone();
    visit_and_lines(&mut kv, "V1", "300");
    let s = run(&mut kv, vec![settle_cmd("S1", "V1")]).remove(0).unwrap();
    let Outcome::Settlement(s) = s else { panic!() };
    // 300: 100 deductible, 80% of 200 = 160 pooling, 140 person: 50 account + 90 cash.
    assert_eq!(s.split.pooling_fund, m("160"));
    assert_eq!(s.split.individual_account, m("50"));
    assert_eq!(s.split.cash, m("90"));
    conserved(&kv);
    run(&mut kv, vec![Command::Reverse { institution: inst(), serial: ser("R1"), settlement: ser("S1") }])
        .remove(0)
        .unwrap();
    let f = fund(&kv);
    assert_eq!(f.ledger.pooling_paid, Money::ZERO);
    assert_eq!(f.payables, Money::ZERO);
    let id = PersonId::new("110101199001011234").unwrap();
    let acc: medmesh_settlement::Accumulators = kv::load(&kv, &keys::accumulators(&id, 2025)).unwrap();
    assert_eq!(acc, Default::default());
    let p: Person = kv::load(&kv, &keys::person(&id)).unwrap();
    let p0: Person = kv::load(&before, &keys::person(&id)).unwrap();
    assert_eq!(p.account_balance, p0.account_balance);
    // A second reversal is refused and changes nothing.
    let err = run(&mut kv, vec![Command::Reverse { institution: inst(), serial: ser("R2"), settlement: ser("S1") }])
        .remove(0)
        .unwrap_err();
    assert_eq!(err.code, ErrorCode::FailedPrecondition);
    conserved(&kv);
}

#[test]
fn a_failed_command_in_a_batch_writes_nothing() {
    let mut kv = seeded();
    visit_and_lines(&mut kv, "V1", "300");
    let res = run(
        &mut kv,
        vec![
            settle_cmd("S1", "V-unknown"),
            Command::UploadFees {
                institution: inst(),
                visit: ser("V1"),
                lines: vec![
                    FeeLine {
                        serial: ser("L9"),
                        code: ItemCode::new("X1").unwrap(),
                        quantity: dec!(1),
                        unit_price: m("1"),
                        date: day("2025-03-10"),
                    },
                    FeeLine {
                        serial: ser("L8"),
                        code: ItemCode::new("NOPE").unwrap(),
                        quantity: dec!(1),
                        unit_price: m("1"),
                        date: day("2025-03-10"),
                    },
                ],
            },
            settle_cmd("S2", "V1"),
        ],
    );
    assert_eq!(res[0].as_ref().unwrap_err().code, ErrorCode::NotFound);
    assert_eq!(res[1].as_ref().unwrap_err().field, "lines[1].code");
    let Ok(Outcome::Settlement(s)) = &res[2] else { panic!("{:?}", res[2]) };
    assert_eq!(s.split.total, m("300"), "the rejected upload must not have added L9");
    // S1 failed, so its serial is still free.
    assert!(kv::load::<IdempotencyRecord>(&kv, &keys::idempotency("H001", &ser("S1"))).is_none());
}

#[test]
fn suspended_doctor_and_expired_agreement_are_refused() {
    let mut kv = seeded();
    visit_and_lines(&mut kv, "V1", "300");
    run(
        &mut kv,
        vec![Command::PutPersonnel(Personnel {
            code: PersonnelCode::new("D001").unwrap(),
            name: "Dr Li".into(),
            institution: inst(),
            status: QualificationStatus::SuspendedUntil(day("2025-06-01")),
        })],
    );
    let err = run(&mut kv, vec![settle_cmd("S1", "V1")]).remove(0).unwrap_err();
    assert_eq!((err.code, err.field.as_str()), (ErrorCode::FailedPrecondition, "doctor"));
    run(
        &mut kv,
        vec![Command::PutInstitution(Institution {
            id: inst(),
            name: "City Hospital".into(),
            level: 3,
            agreement_start: day("2024-01-01"),
            agreement_end: day("2024-12-31"),
            suspended: false,
        })],
    );
    let err = run(&mut kv, vec![settle_cmd("S1", "V1")]).remove(0).unwrap_err();
    assert_eq!((err.code, err.field.as_str()), (ErrorCode::FailedPrecondition, "institution"));
}

#[test]
fn apply_is_deterministic() {
    let mut a = seeded();
    let mut b = seeded();
    visit_and_lines(&mut a, "V1", "123.45");
    visit_and_lines(&mut b, "V1", "123.45");
    run(&mut a, vec![settle_cmd("S1", "V1")]);
    run(&mut b, vec![settle_cmd("S1", "V1")]);
    assert_eq!(a, b);
}

fn violation(id: &str, province: &str, points: u8, decided_on: &str) -> Command {
    Command::RecordViolation(medmesh_supervision::Violation {
        personnel: PersonnelCode::new("D001").unwrap(),
        id: id.into(),
        decided_on: day(decided_on),
        points,
        severity: medmesh_supervision::Severity::new(2).unwrap(),
        province: medmesh_types::ProvinceCode::new(province).unwrap(),
    })
}

/// Points decided in two other provinces add up here: at 9 the doctor can no longer be the
/// billing doctor, and the refusal names the field and the end of the suspension.
#[test]
fn points_from_two_provinces_suspend_the_billing_doctor() {
    let mut kv = seeded();
    visit_and_lines(&mut kv, "V1", "300");
    let res = run(&mut kv, vec![violation("P-310000-1", "310000", 5, "2025-02-01")]);
    let Ok(Outcome::Qualification(q)) = &res[0] else { panic!("{res:?}") };
    assert!(q.notify_institution && q.may_bill(day("2025-03-10")));
    // Recording the same decision again counts once.
    run(&mut kv, vec![violation("P-310000-1", "310000", 5, "2025-02-01")]).remove(0).unwrap();
    let err = run(&mut kv, vec![violation("P-310000-1", "310000", 6, "2025-02-01")]).remove(0).unwrap_err();
    assert_eq!((err.code, err.field.as_str()), (ErrorCode::AlreadyExists, "id"));
    run(&mut kv, vec![violation("P-440000-1", "440000", 4, "2025-03-01")]).remove(0).unwrap();
    let err = run(&mut kv, vec![settle_cmd("S1", "V1")]).remove(0).unwrap_err();
    assert_eq!((err.code, err.field.as_str()), (ErrorCode::FailedPrecondition, "doctor"));
    assert!(err.message.contains("suspended until 2025-05-01"), "{}", err.message);
    assert!(err.message.contains("9 points in 2025"), "{}", err.message);
}

#[test]
fn a_terminated_doctor_cannot_register_again_during_the_ban() {
    let mut kv = seeded();
    run(
        &mut kv,
        vec![Command::RecordViolation(medmesh_supervision::Violation {
            personnel: PersonnelCode::new("D777").unwrap(),
            id: "P-1".into(),
            decided_on: day("2025-01-15"),
            points: 12,
            severity: medmesh_supervision::Severity::new(6).unwrap(),
            province: medmesh_types::ProvinceCode::new("310000").unwrap(),
        })],
    )
    .remove(0)
    .unwrap();
    let err = run(
        &mut kv,
        vec![Command::PutPersonnel(Personnel {
            code: PersonnelCode::new("D777").unwrap(),
            name: "Dr Wang".into(),
            institution: inst(),
            status: QualificationStatus::Active,
        })],
    )
    .remove(0)
    .unwrap_err();
    assert_eq!((err.code, err.field.as_str()), (ErrorCode::FailedPrecondition, "code"));
    assert!(err.message.contains("2028-01-15"), "12 points at once bar for three years: {}", err.message);
}
