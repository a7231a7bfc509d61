//! Apply-level tests over the in-memory store.

use medmesh_settlement::FeeLine;
use medmesh_supervision::credit::{Grade, Incentive, Party};
use medmesh_types::{Date, EnterpriseCode, InstitutionId, ItemCode, LogTime, Money, PersonnelCode, Ratio, Serial};
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

fn run<C: Into<Command>>(kv: &mut MemKv, cmds: Vec<C>) -> Vec<CommandResult> {
    let cmds: Vec<Command> = cmds.into_iter().map(Into::into).collect();
    let role = cmds.first().map(Command::role).unwrap_or(Role::Province);
    let (res, writes) = apply_batch(kv, &Batch::of(NOW, cmds), role);
    kv.write(writes);
    res
}

fn seeded() -> MemKv {
    crate::sim::province_fixture(m("100000"))
}

fn visit_and_lines(kv: &mut MemKv, visit: &str, price: &str) {
    visit_of(kv, visit, price, VisitKind::Outpatient, "2025-03-10");
}

/// The registration of a visit of the test person by doctor D001, admitted on `admitted`.
fn register_cmd(visit: &str, kind: VisitKind, admitted: &str) -> ProvinceCommand {
    ProvinceCommand::RegisterVisit {
        institution: inst(),
        serial: ser(visit),
        certificate_kind: CertificateKind::SocialSecurityCard,
        certificate: crate::sim::ss1(),
        kind,
        doctor: PersonnelCode::new("D001").unwrap(),
        department: "internal".into(),
        diagnosis: "J06.9".into(),
        admitted: day(admitted),
    }
}

/// Registers a visit of the test person admitted on `admitted` with one line of `price`.
fn visit_of(kv: &mut MemKv, visit: &str, price: &str, kind: VisitKind, admitted: &str) {
    let res = run(
        kv,
        vec![
            register_cmd(visit, kind, admitted),
            ProvinceCommand::UploadFees {
                institution: inst(),
                visit: ser(visit),
                lines: vec![FeeLine {
                    serial: ser("L1"),
                    code: ItemCode::new("X1").unwrap(),
                    quantity: dec!(1),
                    unit_price: m(price),
                    date: day(admitted),
                }],
            },
        ],
    );
    assert!(res.iter().all(|r| r.is_ok()), "{res:?}");
}

fn settle_cmd(serial: &str, visit: &str) -> ProvinceCommand {
    ProvinceCommand::Settle {
        institution: inst(),
        serial: ser(serial),
        visit: ser(visit),
        use_individual_account: true,
    }
}

fn fund(kv: &MemKv) -> FundView {
    match run_query(kv, &Query::Fund).unwrap() {
        Answer::Fund(f) => f,
        other => panic!("{other:?}"),
    }
}

fn conserved(kv: &MemKv) {
    // Recomputed from the settlement records, independently of how apply keeps the ledger.
    let (mut pooling, mut ci, mut account, mut receivable) = (Money::ZERO, Money::ZERO, Money::ZERO, Money::ZERO);
    let mut assistance = Money::ZERO;
    for (_, v) in kv.0.range(b"stl/".to_vec()..b"stl0".to_vec()) {
        let s: Settlement = crate::kv::decode(v);
        if s.status != SettlementStatus::Settled {
            continue;
        }
        if s.insured.is_some() {
            receivable += s.split.fund_total() + s.split.individual_account;
        } else {
            pooling += s.split.pooling_fund;
            ci += s.split.critical_illness;
            assistance += s.split.medical_assistance;
            account += s.split.individual_account;
        }
    }
    let f = fund(kv);
    let l = &f.ledger;
    assert_eq!((l.pooling_paid, l.critical_illness_paid, l.accounts_paid), (pooling, ci, account));
    assert_eq!(l.nonlocal_receivable, receivable);
    assert_eq!(l.assistance_paid, assistance);
    assert_eq!(
        f.payables,
        pooling + ci + assistance + account + receivable,
        "the fund owes institutions what they settled"
    );
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
    run(&mut kv, vec![ProvinceCommand::Reverse { institution: inst(), serial: ser("R1"), settlement: ser("S1") }])
        .remove(0)
        .unwrap();
    let f = fund(&kv);
    assert_eq!(f.ledger.pooling_paid, Money::ZERO);
    assert_eq!(f.payables, Money::ZERO);
    let id = crate::sim::person_key();
    let acc: medmesh_settlement::Accumulators = kv::load(&kv, &keys::accumulators(&id, 2025)).unwrap();
    assert_eq!(acc, Default::default());
    let p: Person = kv::load(&kv, &keys::person(&id)).unwrap();
    let p0: Person = kv::load(&before, &keys::person(&id)).unwrap();
    assert_eq!(p.account_balance, p0.account_balance);
    // A second reversal is refused and changes nothing.
    let err =
        run(&mut kv, vec![ProvinceCommand::Reverse { institution: inst(), serial: ser("R2"), settlement: ser("S1") }])
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
            ProvinceCommand::UploadFees {
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

/// A retried registration, settlement or reversal answers exactly what the first did, however
/// the records have changed since (fee lines uploaded, the visit settled, the settlement
/// reversed), though the idempotency records keep those answers by reference, in a few bytes.
#[test]
fn a_retry_answers_what_the_first_request_did_from_a_small_record() {
    let mut kv = seeded();
    let register = register_cmd("V1", VisitKind::Outpatient, "2025-03-10");
    let registered = ok(&one(&mut kv, register.clone()));
    let upload =
        ProvinceCommand::UploadFees { institution: inst(), visit: ser("V1"), lines: vec![line("L1", "X1", "150")] };
    ok(&one(&mut kv, upload));
    let settled = ok(&one(&mut kv, settle_cmd("S1", "V1")));
    let reverse = ProvinceCommand::Reverse { institution: inst(), serial: ser("R1"), settlement: ser("S1") };
    let reversed = ok(&one(&mut kv, reverse.clone()));
    let Outcome::Settlement(first) = &settled else { panic!("{settled:?}") };
    assert_eq!(first.status, SettlementStatus::Settled);
    assert!(matches!(&reversed, Outcome::Settlement(s) if matches!(s.status, SettlementStatus::Reversed { .. })));
    // The visit now holds lines and was settled and freed again; the settlement is reversed.
    assert_eq!(ok(&one(&mut kv, register)), registered);
    assert_eq!(ok(&one(&mut kv, settle_cmd("S1", "V1"))), settled);
    assert_eq!(ok(&one(&mut kv, reverse)), reversed);
    for serial in ["V1", "S1", "R1"] {
        let raw = kv.get(keys::idempotency("H001", &ser(serial)).as_bytes()).unwrap();
        assert!(raw.len() < 200, "{serial}'s record is {} bytes", raw.len());
    }
}

#[test]
fn suspended_doctor_and_expired_agreement_are_refused() {
    let mut kv = seeded();
    visit_and_lines(&mut kv, "V1", "300");
    run(
        &mut kv,
        vec![ProvinceCommand::PutPersonnel(Personnel {
            code: PersonnelCode::new("D001").unwrap(),
            name: "Dr Li".into(),
            institution: inst(),
            status: QualificationStatus::SuspendedUntil(day("2025-06-01")),
        })],
    );
    let err = run(&mut kv, vec![settle_cmd("S1", "V1")]).remove(0).unwrap_err();
    assert_eq!((err.code, err.field.as_str()), (ErrorCode::FailedPrecondition, "doctor_code"));
    run(
        &mut kv,
        vec![ProvinceCommand::PutInstitution(Institution {
            id: inst(),
            name: "City Hospital".into(),
            level: 3,
            agreement_start: day("2024-01-01"),
            agreement_end: day("2024-12-31"),
            suspended: false,
        })],
    );
    let err = run(&mut kv, vec![settle_cmd("S1", "V1")]).remove(0).unwrap_err();
    assert_eq!((err.code, err.field.as_str()), (ErrorCode::FailedPrecondition, "institution_id"));
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

fn violation(id: &str, province: &str, points: u8, decided_on: &str) -> ProvinceCommand {
    ProvinceCommand::RecordViolation(medmesh_supervision::Violation {
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
    assert_eq!((err.code, err.field.as_str()), (ErrorCode::FailedPrecondition, "doctor_code"));
    assert!(err.message.contains("suspended until 2025-05-01"), "{}", err.message);
    assert!(err.message.contains("9 points in 2025"), "{}", err.message);
}

#[test]
fn a_terminated_doctor_cannot_register_again_during_the_ban() {
    let mut kv = seeded();
    run(
        &mut kv,
        vec![ProvinceCommand::RecordViolation(medmesh_supervision::Violation {
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
        vec![ProvinceCommand::PutPersonnel(Personnel {
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

// ---------------------------------------------------------------------------------------------
// Non-local settlement: three groups (treatment, insured, federation), each an in-memory store,
// driven step by step as the coordinator does.

fn prov(code: &str) -> medmesh_types::ProvinceCode {
    medmesh_types::ProvinceCode::new(code).unwrap()
}

fn ok(r: &CommandResult) -> Outcome {
    r.clone().unwrap_or_else(|e| panic!("{e}"))
}

fn one(kv: &mut MemKv, cmd: impl Into<Command>) -> CommandResult {
    let cmd: Command = cmd.into();
    run(kv, vec![cmd]).remove(0)
}

struct Trio {
    treatment: MemKv,
    insured: MemKv,
    federation: MemKv,
}

const KEY: &str = "0123456789abcdef0123456789abcdef";

fn trio() -> Trio {
    Trio { treatment: seeded(), insured: seeded(), federation: MemKv::default() }
}

fn nonlocal_visit(t: &mut Trio, visit: &str, price: &str, filing: Option<FilingKind>) {
    nonlocal_visit_on(t, visit, price, filing, "2025-03-10");
}

fn nonlocal_visit_on(t: &mut Trio, visit: &str, price: &str, filing: Option<FilingKind>, admitted: &str) {
    let request = ProvinceCommand::RegisterVisit {
        institution: inst(),
        serial: ser(visit),
        certificate_kind: CertificateKind::SocialSecurityCard,
        certificate: crate::sim::ss1(),
        kind: VisitKind::Inpatient,
        doctor: PersonnelCode::new("D001").unwrap(),
        department: "internal".into(),
        diagnosis: "J06.9".into(),
        admitted: day(admitted),
    };
    let nonlocal = NonLocalVisit {
        treatment: prov("110000"),
        insured: prov("310000"),
        person_key: KEY.into(),
        certificate_kind: CertificateKind::SocialSecurityCard,
        handle: crate::sim::person_key(),
        masked_id: "110***********1234".into(),
        sealed_name: crate::sim::sealed(),
        filing,
    };
    ok(&one(&mut t.treatment, ProvinceCommand::RegisterNonLocalVisit { request: Box::new(request), nonlocal }));
    ok(&one(
        &mut t.treatment,
        ProvinceCommand::UploadFees {
            institution: inst(),
            visit: ser(visit),
            lines: vec![FeeLine {
                serial: ser("L1"),
                code: ItemCode::new("X1").unwrap(),
                quantity: dec!(1),
                unit_price: m(price),
                date: day(admitted),
            }],
        },
    ));
}

fn claim_of(t: &Trio, serial: &str) -> (TreatmentTransfer, ProvinceCommand) {
    match run_query(&t.treatment, &Query::TransferClaim { institution: inst(), serial: ser(serial) }).unwrap() {
        Answer::TransferClaim { transfer, claim, nonlocal } => {
            let reserve = ProvinceCommand::Reserve {
                transfer: transfer.id.clone(),
                handle: nonlocal.handle,
                person_key: nonlocal.person_key,
                claim,
            };
            (transfer, reserve)
        }
        other => panic!("{other:?}"),
    }
}

/// Drives one transfer to commit as the coordinator does; returns the settlement.
fn commit(t: &mut Trio, serial: &str, visit: &str) -> Settlement {
    let x = match ok(&one(&mut t.treatment, settle_cmd(serial, visit))) {
        Outcome::TransferOpen(o) => o.transfer,
        other => panic!("{other:?}"),
    };
    let (_, reserve) = claim_of(t, serial);
    let r = match ok(&one(&mut t.insured, reserve)) {
        Outcome::Reservation(r) => r,
        other => panic!("{other:?}"),
    };
    assert_eq!(r.status, ReservationStatus::Pending);
    let split = r.split.clone().unwrap();
    ok(&one(&mut t.treatment, ProvinceCommand::TransferReserved { transfer: x.id.clone(), split }));
    // The insured province vouches for what it reserved (its edge does, before answering).
    ok(&one(
        &mut t.federation,
        FederationCommand::Vouch { transfer: x.id.clone(), insured: prov("310000"), amount: r.amount() },
    ));
    let decided = one(
        &mut t.federation,
        FederationCommand::Decide {
            transfer: x.id.clone(),
            insured: prov("310000"),
            amount: r.amount(),
            decision: Decision::Commit,
            reason: String::new(),
        },
    );
    assert!(matches!(ok(&decided), Outcome::Decided(DecisionRecord { decision: Decision::Commit, .. })));
    ok(&one(
        &mut t.insured,
        ProvinceCommand::ResolveReservation { transfer: x.id.clone(), decision: Decision::Commit },
    ));
    match ok(&one(
        &mut t.treatment,
        ProvinceCommand::FinishTransfer {
            transfer: x.id,
            decision: Decision::Commit,
            reason: String::new(),
            split: None,
        },
    )) {
        Outcome::Settlement(s) => s,
        other => panic!("{other:?}"),
    }
}

fn positions_total(f: &MemKv) -> Money {
    match run_query(f, &Query::Positions).unwrap() {
        Answer::Positions(p) => p.iter().map(|(_, _, p)| p.amount).sum(),
        other => panic!("{other:?}"),
    }
}

/// The mesh-wide money invariants, written once: each ledger balances, what insured provinces
/// owe equals what treatment provinces are owed and what the federation's positions say, and
/// nothing is left reserved once every transfer is resolved.
fn mesh_conserved(t: &Trio) {
    conserved(&t.insured);
    let i = fund(&t.insured).ledger;
    let tr = fund(&t.treatment).ledger;
    assert_eq!(
        i.nonlocal_owed, tr.nonlocal_receivable,
        "owed by the insured province = owed to the treatment province"
    );
    assert_eq!(i.nonlocal_owed, positions_total(&t.federation), "federation positions match both sides");
    assert_eq!(i.nonlocal_settlements, tr.nonlocal_treated);
    assert_eq!(i.nonlocal_reserved, Money::ZERO, "nothing pending once resolved");
    let mut totals = MoneyTotals::default();
    for kv in [&t.insured, &t.treatment] {
        let f = fund(kv);
        totals.add_province(&f.ledger, f.payables);
    }
    if let Answer::Prepaid(p) = run_query(&t.federation, &Query::Prepaid).unwrap() {
        totals.add_prepaid(&p);
    }
    totals.conserved().unwrap();
}

#[test]
fn nonlocal_settlement_uses_the_insured_policy_and_moves_money_once() {
    let mut t = trio();
    nonlocal_visit(&mut t, "V1", "300", Some(FilingKind::LongTermResident));
    let s = commit(&mut t, "S1", "V1");
    // Insured-place policy: deductible 100, ratio 0.8 on 200.
    assert_eq!(s.split.pooling_fund, m("160"));
    assert_eq!(s.insured, Some(prov("310000")));
    assert_eq!(s.masked_id, "110***********1234");
    // The hospital's retry returns the same settlement, and nothing moves again.
    match ok(&one(&mut t.treatment, settle_cmd("S1", "V1"))) {
        Outcome::Settlement(again) => assert_eq!(again, s),
        other => panic!("{other:?}"),
    }
    mesh_conserved(&t);
    let i = fund(&t.insured).ledger;
    assert_eq!(i.nonlocal_paid, m("160"));
    assert_eq!(i.nonlocal_owed, m("210"), "fund share plus 50 from the individual account");
    let acc = match run_query(
        &t.insured,
        &Query::Identity {
            institution: inst(),
            kind: CertificateKind::SocialSecurityCard,
            key: crate::sim::ss1(),
            now: NOW,
        },
    )
    .unwrap()
    {
        Answer::Identity(v) => v.accumulators,
        other => panic!("{other:?}"),
    };
    assert_eq!(acc.pooling_paid, m("160"), "the insured province's accumulators count non-local care");
}

#[test]
fn temporary_visitors_get_the_reduced_ratio() {
    let mut t = trio();
    nonlocal_visit(&mut t, "V1", "300", Some(FilingKind::OtherTemporary));
    let s = commit(&mut t, "S1", "V1");
    assert_eq!(s.split.ratio, Ratio::parse("0.7").unwrap());
    assert_eq!(s.split.pooling_fund, m("140"));
}

#[test]
fn concurrent_reservations_cannot_share_annual_headroom() {
    let mut t = trio();
    nonlocal_visit(&mut t, "V1", "1500", Some(FilingKind::LongTermResident));
    nonlocal_visit(&mut t, "V2", "1500", Some(FilingKind::LongTermResident));
    ok(&one(&mut t.treatment, settle_cmd("S1", "V1")));
    ok(&one(&mut t.treatment, settle_cmd("S2", "V2")));
    let (_, r1) = claim_of(&t, "S1");
    let (_, r2) = claim_of(&t, "S2");
    let a = match ok(&one(&mut t.insured, r1)) {
        Outcome::Reservation(r) => r.split.unwrap(),
        other => panic!("{other:?}"),
    };
    let b = match ok(&one(&mut t.insured, r2)) {
        Outcome::Reservation(r) => r.split.unwrap(),
        other => panic!("{other:?}"),
    };
    // Annual cap 1000: the first takes (1500-100)*0.8 = 1120 capped to 1000, the second none.
    assert_eq!(a.pooling_fund, m("1000"));
    assert_eq!(b.pooling_fund, Money::ZERO);
}

#[test]
fn a_void_gives_everything_back_and_a_late_reserve_stays_voided() {
    let mut t = trio();
    nonlocal_visit(&mut t, "V1", "300", Some(FilingKind::LongTermResident));
    let before = fund(&t.insured);
    ok(&one(&mut t.treatment, settle_cmd("S1", "V1")));
    let (x, reserve) = claim_of(&t, "S1");
    ok(&one(&mut t.insured, reserve.clone()));
    ok(&one(&mut t.insured, ProvinceCommand::ResolveReservation { transfer: x.id.clone(), decision: Decision::Abort }));
    assert_eq!(fund(&t.insured), before, "fund and accounts back where they were");
    // A void that overtakes its reserve: the late reserve finds it voided.
    let mut other = x.id.clone();
    other.serial = ser("S9");
    ok(&one(
        &mut t.insured,
        ProvinceCommand::ResolveReservation { transfer: other.clone(), decision: Decision::Abort },
    ));
    let ProvinceCommand::Reserve { handle, person_key, claim, .. } = reserve else { unreachable!() };
    let late = ProvinceCommand::Reserve { transfer: other, handle, person_key, claim };
    match ok(&one(&mut t.insured, late)) {
        Outcome::Reservation(r) => assert_eq!(r.status, ReservationStatus::Voided),
        o => panic!("{o:?}"),
    }
    assert_eq!(fund(&t.insured), before);
    // The treatment side spends the serial on abort; a retry gets the same abort.
    let aborted = one(
        &mut t.treatment,
        ProvinceCommand::FinishTransfer {
            transfer: x.id,
            decision: Decision::Abort,
            reason: "refused".into(),
            split: None,
        },
    );
    assert!(matches!(ok(&aborted), Outcome::NonLocalAborted { .. }));
    assert!(matches!(ok(&one(&mut t.treatment, settle_cmd("S1", "V1"))), Outcome::NonLocalAborted { .. }));
    // The visit is open again for a new serial.
    assert!(matches!(ok(&one(&mut t.treatment, settle_cmd("S2", "V1"))), Outcome::TransferOpen(_)));
}

/// Issue 10: a directory key one province holds cannot be taken over by another.
#[test]
fn a_directory_key_is_not_taken_over_by_another_province() {
    let mut f = MemKv::default();
    let key = directory_key("a-directory-secret", CertificateKind::IdCard, "110101199003071234");
    ok(&one(&mut f, FederationCommand::Directory { entries: vec![(key.clone(), prov("310000"))] }));
    ok(&one(&mut f, FederationCommand::Directory { entries: vec![(key.clone(), prov("310000"))] }));
    let other = directory_key("a-directory-secret", CertificateKind::IdCard, "110101199003075678");
    let e = one(
        &mut f,
        FederationCommand::Directory { entries: vec![(other.clone(), prov("440000")), (key.clone(), prov("440000"))] },
    )
    .unwrap_err();
    assert_eq!((e.code, e.field.as_str()), (ErrorCode::AlreadyExists, "entries[1].key"), "{e}");
    assert!(e.message.contains("310000"), "{e}");
    match run_query(&f, &Query::Directory { key: key.clone() }).unwrap() {
        Answer::Province(p) => assert_eq!(p, prov("310000"), "the holder is unchanged"),
        o => panic!("{o:?}"),
    }
    assert!(run_query(&f, &Query::Directory { key: other }).is_err(), "the refused batch wrote nothing");
}

/// Issue 10: the federation commits a transfer only with the amount the insured province
/// vouched for; a treatment province cannot make another province owe more (or less).
#[test]
fn a_commit_carries_exactly_what_the_insured_province_vouched_for() {
    let mut f = MemKv::default();
    let t = TransferId { treatment: prov("110000"), institution: inst(), serial: ser("S1") };
    let decide = |amount: &str| FederationCommand::Decide {
        transfer: t.clone(),
        insured: prov("310000"),
        amount: m(amount),
        decision: Decision::Commit,
        reason: String::new(),
    };
    let err = one(&mut f, decide("10")).unwrap_err();
    assert_eq!((err.code, err.field.as_str()), (ErrorCode::FailedPrecondition, "amount"), "{err}");
    let vouch =
        |amount: &str| FederationCommand::Vouch { transfer: t.clone(), insured: prov("310000"), amount: m(amount) };
    ok(&one(&mut f, vouch("10")));
    ok(&one(&mut f, vouch("10")));
    let err = one(&mut f, vouch("99")).unwrap_err();
    assert_eq!(err.code, ErrorCode::AlreadyExists, "a vouch is not rewritten: {err}");
    let err = one(&mut f, decide("10000")).unwrap_err();
    assert_eq!((err.code, err.field.as_str()), (ErrorCode::FailedPrecondition, "amount"), "{err}");
    let other = FederationCommand::Decide {
        transfer: t.clone(),
        insured: prov("440000"),
        amount: m("10"),
        decision: Decision::Commit,
        reason: String::new(),
    };
    assert_eq!(one(&mut f, other).unwrap_err().field, "insured");
    assert_eq!(positions_total(&f), Money::ZERO, "nothing owed after the forgeries");
    ok(&one(&mut f, decide("10")));
    assert_eq!(positions_total(&f), m("10"));
}

#[test]
fn the_first_recorded_decision_wins() {
    let mut f = MemKv::default();
    let t = TransferId { treatment: prov("110000"), institution: inst(), serial: ser("S1") };
    let decide = |d| FederationCommand::Decide {
        transfer: t.clone(),
        insured: prov("310000"),
        amount: m("10"),
        decision: d,
        reason: String::new(),
    };
    ok(&one(&mut f, decide(Decision::Abort)));
    match ok(&one(&mut f, decide(Decision::Commit))) {
        Outcome::Decided(r) => assert_eq!(r.decision, Decision::Abort),
        o => panic!("{o:?}"),
    }
    assert_eq!(positions_total(&f), Money::ZERO);
}

#[test]
fn a_nonlocal_serial_reused_for_other_content_is_rejected() {
    let mut t = trio();
    nonlocal_visit(&mut t, "V1", "300", Some(FilingKind::LongTermResident));
    nonlocal_visit(&mut t, "V2", "300", Some(FilingKind::LongTermResident));
    ok(&one(&mut t.treatment, settle_cmd("S1", "V1")));
    let e = one(&mut t.treatment, settle_cmd("S1", "V2")).unwrap_err();
    assert_eq!((e.code, e.field.as_str()), (ErrorCode::AlreadyExists, "serial"));
}

#[test]
fn an_unfiled_outpatient_is_refused_and_an_inpatient_must_file_before_discharge() {
    let mut t = trio();
    nonlocal_visit(&mut t, "V1", "300", None);
    let e = one(&mut t.treatment, settle_cmd("S1", "V1")).unwrap_err();
    assert_eq!((e.code, e.field.as_str()), (ErrorCode::FailedPrecondition, "filing"));
    ok(&one(
        &mut t.treatment,
        ProvinceCommand::AttachFiling { institution: inst(), visit: ser("V1"), filing: FilingKind::Referral },
    ));
    assert!(matches!(ok(&one(&mut t.treatment, settle_cmd("S1", "V1"))), Outcome::TransferOpen(_)));
    let bad = Filing {
        id: ser("F1"),
        person_key: KEY.into(),
        insured: prov("310000"),
        treatment: prov("310000"),
        kind: FilingKind::Referral,
        start: day("2025-01-01"),
        end: day("2025-12-31"),
    };
    let e = one(&mut t.federation, FederationCommand::File(bad.clone())).unwrap_err();
    assert_eq!(e.field, "treatment_province");
    let e = one(
        &mut t.federation,
        FederationCommand::File(Filing { treatment: prov("110000"), end: day("2024-12-31"), ..bad.clone() }),
    )
    .unwrap_err();
    assert_eq!(e.field, "end");
}

#[test]
fn a_nonlocal_reversal_gives_everything_back_once() {
    let mut t = trio();
    nonlocal_visit(&mut t, "V1", "300", Some(FilingKind::LongTermResident));
    let before = fund(&t.insured);
    let s = commit(&mut t, "S1", "V1");
    let rev = ProvinceCommand::Reverse { institution: inst(), serial: ser("R1"), settlement: ser("S1") };
    assert!(matches!(ok(&one(&mut t.treatment, rev.clone())), Outcome::ReversalOpen(_)));
    let id = TransferId { treatment: prov("110000"), institution: inst(), serial: s.serial.clone() };
    ok(&one(&mut t.federation, FederationCommand::Reverse { transfer: id.clone(), reversal: ser("R1") }));
    ok(&one(&mut t.insured, ProvinceCommand::UnpostReservation { transfer: id.clone() }));
    ok(&one(&mut t.insured, ProvinceCommand::UnpostReservation { transfer: id }));
    match ok(&one(&mut t.treatment, ProvinceCommand::FinishReversal { institution: inst(), serial: ser("R1") })) {
        Outcome::Settlement(s) => assert!(matches!(s.status, SettlementStatus::Reversed { .. })),
        o => panic!("{o:?}"),
    }
    assert!(matches!(ok(&one(&mut t.treatment, rev)), Outcome::Settlement(_)), "retry returns the reversal");
    let again = ProvinceCommand::Reverse { institution: inst(), serial: ser("R2"), settlement: ser("S1") };
    let e = one(&mut t.treatment, again).unwrap_err();
    assert_eq!((e.code, e.field.as_str()), (ErrorCode::FailedPrecondition, "settlement_serial"));
    assert_eq!(fund(&t.insured), before, "the insured province is back where it was");
    mesh_conserved(&t);
    assert_eq!(fund(&t.treatment).payables, Money::ZERO);
}

#[test]
fn violations_from_the_shared_log_count_once() {
    let mut f = MemKv::default();
    let mut p = seeded();
    let v = |id: &str, pts| medmesh_supervision::Violation {
        personnel: PersonnelCode::new("D001").unwrap(),
        id: id.into(),
        decided_on: day("2025-03-01"),
        points: pts,
        severity: medmesh_supervision::Severity::new(3).unwrap(),
        province: prov("440000"),
    };
    ok(&one(&mut f, FederationCommand::RecordViolation(v("A", 5))));
    ok(&one(&mut f, FederationCommand::RecordViolation(v("A", 5))));
    ok(&one(&mut f, FederationCommand::RecordViolation(v("B", 4))));
    let items = match run_query(&f, &Query::SharedLog { after: 0, limit: 10 }).unwrap() {
        Answer::SharedLog(items) => items,
        o => panic!("{o:?}"),
    };
    assert_eq!(items.len(), 2);
    // Issue 10: a batch that skips an item is refused whole, so a withheld violation cannot be
    // stepped over; the cursor stays put.
    let skipping = vec![items[1].clone()];
    let e = one(&mut p, ProvinceCommand::SyncShared { items: skipping }).unwrap_err();
    assert_eq!((e.code, e.field.as_str()), (ErrorCode::FailedPrecondition, "items[0]"), "{e}");
    assert!(e.message.contains("1 to 1 are missing"), "{e}");
    ok(&one(&mut p, ProvinceCommand::SyncShared { items: items.clone() }));
    ok(&one(&mut p, ProvinceCommand::SyncShared { items }));
    let q = run_query(&p, &Query::Qualification { code: PersonnelCode::new("D001").unwrap(), now: NOW }).unwrap();
    match q {
        Answer::Qualification(q) => assert_eq!(q.year_points, 9),
        o => panic!("{o:?}"),
    }
}

/// Entry JD-1 of 440000 listing the test institution for 2025 from March.
fn institution_entry() -> DisciplineEntry {
    DisciplineEntry {
        id: "JD-1".into(),
        subject: DisciplineSubject::Institution(inst()),
        province: prov("440000"),
        from: day("2025-03-01"),
        until: day("2025-12-31"),
        reason: "fraudulent claims".into(),
    }
}

#[test]
fn a_joint_discipline_entry_from_another_province_stops_direct_settlement() {
    let mut f = MemKv::default();
    let mut p = seeded();
    visit_and_lines(&mut p, "V1", "300");
    let entry = institution_entry();
    ok(&one(&mut f, FederationCommand::RecordDiscipline(entry.clone())));
    ok(&one(&mut f, FederationCommand::RecordDiscipline(entry.clone())));
    let e =
        one(&mut f, FederationCommand::RecordDiscipline(DisciplineEntry { reason: "other".into(), ..entry.clone() }))
            .unwrap_err();
    assert_eq!((e.code, e.field.as_str()), (ErrorCode::AlreadyExists, "id"));
    let items = match run_query(&f, &Query::SharedLog { after: 0, limit: 10 }).unwrap() {
        Answer::SharedLog(items) => items,
        o => panic!("{o:?}"),
    };
    assert_eq!(items.len(), 1, "recorded once");
    ok(&one(&mut p, ProvinceCommand::SyncShared { items }));
    let e = one(&mut p, settle_cmd("S1", "V1")).unwrap_err();
    assert_eq!((e.code, e.field.as_str()), (ErrorCode::FailedPrecondition, "institution_id"));
    assert!(e.message.contains("joint-discipline"), "{e}");
    let bad = DisciplineEntry { until: day("2025-01-01"), id: "JD-2".into(), ..entry };
    assert_eq!(one(&mut f, FederationCommand::RecordDiscipline(bad)).unwrap_err().field, "until");
}

/// Credit repair of a joint-discipline entry (issue 13.3): the deciding province lifts it; the
/// federation takes the lift only from that province and for an entry it shared; another
/// province copies it and settles with the institution again; the entry stays listed.
#[test]
fn a_lifted_discipline_entry_stops_counting_in_every_province() {
    let (mut decider, mut f, mut other) = (seeded(), MemKv::default(), seeded());
    visit_and_lines(&mut other, "V1", "300");
    let entry = institution_entry();
    ok(&one(&mut decider, ProvinceCommand::RecordDiscipline(entry.clone())));
    ok(&one(&mut f, FederationCommand::RecordDiscipline(entry.clone())));
    let shared = |f: &MemKv| match run_query(f, &Query::SharedLog { after: 0, limit: 10 }).unwrap() {
        Answer::SharedLog(items) => items,
        o => panic!("{o:?}"),
    };
    ok(&one(&mut other, ProvinceCommand::SyncShared { items: shared(&f) }));
    assert_eq!(one(&mut other, settle_cmd("S1", "V1")).unwrap_err().field, "institution_id");

    let lift = |province: &str, id: &str, reason: &str| ProvinceCommand::LiftDiscipline {
        province: prov(province),
        subject: DisciplineSubject::Institution(inst()),
        id: id.into(),
        reason: reason.into(),
    };
    let e = one(&mut other, lift("110000", "JD-1", "appeal upheld")).unwrap_err();
    assert_eq!((e.code, e.field.as_str()), (ErrorCode::FailedPrecondition, "id"), "another province's entry");
    assert_eq!(one(&mut decider, lift("440000", "JD-9", "r")).unwrap_err().code, ErrorCode::NotFound);
    assert_eq!(one(&mut decider, lift("440000", "JD-1", "")).unwrap_err().field, "reason");
    let not_a_key = ProvinceCommand::LiftDiscipline {
        province: prov("440000"),
        subject: DisciplineSubject::Person("../JD-1".into()),
        id: "JD-1".into(),
        reason: "r".into(),
    };
    let e = one(&mut decider, not_a_key).unwrap_err();
    assert_eq!((e.code, e.field.as_str()), (ErrorCode::InvalidArgument, "certificate"), "checked in apply");
    let lifted = |r: &CommandResult| match ok(r) {
        Outcome::DisciplineLifted(b) => b.1,
        o => panic!("{o:?}"),
    };
    let l = lifted(&one(&mut decider, lift("440000", "JD-1", "appeal upheld")));
    assert_eq!((l.lifted_on, l.province.as_str()), (NOW.date(), "440000"));
    assert_eq!(lifted(&one(&mut decider, lift("440000", "JD-1", "appeal upheld"))), l, "the same lift answers it");
    let e = one(&mut decider, lift("440000", "JD-1", "another")).unwrap_err();
    assert_eq!((e.code, e.field.as_str()), (ErrorCode::AlreadyExists, "id"));
    let outbox = match run_query(&decider, &Query::Outbox { limit: 10 }).unwrap() {
        Answer::SharedLog(items) => items,
        o => panic!("{o:?}"),
    };
    assert_eq!(outbox.len(), 1, "one lift in the outbox: {outbox:?}");
    assert_eq!(outbox[0].1, SharedItem::DisciplineLift(l.clone()));

    // The federation checks who lifts what.
    let forged = DisciplineLift { province: prov("110000"), ..l.clone() };
    assert_eq!(one(&mut f, FederationCommand::RecordDisciplineLift(forged)).unwrap_err().field, "id");
    let unknown = DisciplineLift { id: "JD-9".into(), ..l.clone() };
    assert_eq!(one(&mut f, FederationCommand::RecordDisciplineLift(unknown)).unwrap_err().code, ErrorCode::NotFound);
    ok(&one(&mut f, FederationCommand::RecordDisciplineLift(l.clone())));
    ok(&one(&mut f, FederationCommand::RecordDisciplineLift(l.clone())));
    assert_eq!(shared(&f).len(), 2, "the entry and its lift, once");

    ok(&one(&mut other, ProvinceCommand::SyncShared { items: shared(&f) }));
    ok(&one(&mut other, settle_cmd("S1", "V1")));
    match run_query(
        &other,
        &Query::Disciplines {
            subject: DisciplineSubject::Institution(inst()),
            page_token: String::new(),
            page_size: 10,
        },
    )
    .unwrap()
    {
        Answer::Disciplines { entries, .. } => assert_eq!(entries, vec![(entry, Some(l))], "listed with its lift"),
        o => panic!("{o:?}"),
    }
}

/// Issue 13.3: a notification-commitment recorded and found breached in 440000 lowers the
/// institution's rating by 15 there at once and, through the federation, in another province.
#[test]
fn a_breached_commitment_counts_in_every_province() {
    let (mut decider, mut f, mut other) = (seeded(), MemKv::default(), seeded());
    let record = |id: &str, text: &str, verify_by: &str| ProvinceCommand::RecordCommitment {
        province: prov("440000"),
        party: Party::Institution(inst()),
        id: id.into(),
        text: text.into(),
        verify_by: day(verify_by),
    };
    let resolve = |id: &str, kept: bool, finding: &str| ProvinceCommand::ResolveCommitment {
        province: prov("440000"),
        party: Party::Institution(inst()),
        id: id.into(),
        kept,
        finding: finding.into(),
    };
    let commitment = |r: &CommandResult| match ok(r) {
        Outcome::Commitment(c) => *c,
        o => panic!("{o:?}"),
    };
    let later = NOW.date().plus_days(30).to_string();
    let c = commitment(&one(&mut decider, record("NC-1", "the licences declared are held", &later)));
    assert_eq!((c.made_on, c.outcome.clone()), (NOW.date(), None));
    assert_eq!(commitment(&one(&mut decider, record("NC-1", "the licences declared are held", &later))), c);
    let e = one(&mut decider, record("NC-1", "other", &later)).unwrap_err();
    assert_eq!((e.code, e.field.as_str()), (ErrorCode::AlreadyExists, "id"));
    let e = one(&mut decider, record("NC-2", "t", "2000-01-01")).unwrap_err();
    assert_eq!((e.code, e.field.as_str()), (ErrorCode::InvalidArgument, "verify_by"));
    let e = one(&mut decider, record("NC-2", "", &later)).unwrap_err();
    assert_eq!((e.code, e.field.as_str()), (ErrorCode::InvalidArgument, "text"));
    let mut elsewhere = record("NC-2", "t", &later);
    if let ProvinceCommand::RecordCommitment { party, .. } = &mut elsewhere {
        *party = Party::Institution(InstitutionId::new("H999").unwrap());
    }
    assert_eq!(one(&mut decider, elsewhere).unwrap_err().field, "institution_id");
    // Ids are unique in the province: NC-1 of another party is refused (the federation shares
    // by province and id).
    let mut other_party = record("NC-1", "the licences declared are held", &later);
    if let ProvinceCommand::RecordCommitment { party, .. } = &mut other_party {
        *party = Party::Enterprise(EnterpriseCode::new("91110000710925462X").unwrap());
    }
    let e = one(&mut decider, other_party).unwrap_err();
    assert_eq!((e.code, e.field.as_str()), (ErrorCode::AlreadyExists, "id"));
    let e = one(&mut decider, resolve("NC-1", false, "")).unwrap_err();
    assert_eq!((e.code, e.field.as_str()), (ErrorCode::InvalidArgument, "finding"), "a breach says what");
    assert_eq!(one(&mut decider, resolve("NC-9", true, "")).unwrap_err().code, ErrorCode::NotFound);
    let rating =
        |kv: &MemKv| match run_query(kv, &Query::CreditRating { institution: inst(), today: NOW.date() }).unwrap() {
            Answer::CreditRating(r) => *r,
            o => panic!("{o:?}"),
        };
    assert_eq!(rating(&decider).score, 100, "an open commitment counts nowhere");
    let breached = commitment(&one(&mut decider, resolve("NC-1", false, "no licence on file")));
    assert_eq!(commitment(&one(&mut decider, resolve("NC-1", false, "no licence on file"))), breached);
    let e = one(&mut decider, resolve("NC-1", true, "")).unwrap_err();
    assert_eq!((e.code, e.field.as_str()), (ErrorCode::FailedPrecondition, "id"), "resolved once");
    let here = rating(&decider);
    assert_eq!((here.score, here.grade), (85, medmesh_supervision::credit::Grade::B));

    // Shared: the federation takes it from its province once, and every province rates alike.
    let outbox = match run_query(&decider, &Query::Outbox { limit: 10 }).unwrap() {
        Answer::SharedLog(items) => items,
        o => panic!("{o:?}"),
    };
    assert_eq!(
        outbox.iter().map(|(_, i)| i.clone()).collect::<Vec<_>>(),
        vec![SharedItem::Commitment(breached.clone())]
    );
    let open = medmesh_supervision::credit::Commitment { outcome: None, ..breached.clone() };
    assert_eq!(one(&mut f, FederationCommand::RecordCommitment(open)).unwrap_err().field, "outcome");
    ok(&one(&mut f, FederationCommand::RecordCommitment(breached.clone())));
    ok(&one(&mut f, FederationCommand::RecordCommitment(breached.clone())));
    let kept = medmesh_supervision::credit::Commitment {
        outcome: Some(medmesh_supervision::credit::CommitmentOutcome {
            kept: true,
            on: NOW.date(),
            finding: String::new(),
        }),
        ..breached.clone()
    };
    assert_eq!(one(&mut f, FederationCommand::RecordCommitment(kept)).unwrap_err().code, ErrorCode::AlreadyExists);
    let shared = match run_query(&f, &Query::SharedLog { after: 0, limit: 10 }).unwrap() {
        Answer::SharedLog(items) => items,
        o => panic!("{o:?}"),
    };
    assert_eq!(shared.len(), 1, "shared once");
    assert_eq!(rating(&other).score, 100);
    ok(&one(&mut other, ProvinceCommand::SyncShared { items: shared }));
    assert_eq!(rating(&other), here, "every province rates alike");
    match run_query(&other, &Query::Commitments { party: Party::Institution(inst()) }).unwrap() {
        Answer::Commitments { commitments, .. } => assert_eq!(commitments, vec![breached]),
        o => panic!("{o:?}"),
    }
}

/// Issue 13.3: the joint incentive list. Only a party graded A is listed; the entry is shared
/// through the federation once; in another province the party is trusted while it stays A
/// there, and a discipline entry there suspends the incentive at once.
#[test]
fn the_joint_incentive_list_holds_only_grade_a_parties_in_every_province() {
    let (mut here, mut f, mut other) = (seeded(), MemKv::default(), seeded());
    let today = NOW.date();
    let entry = |id: &str, party: Party| Incentive {
        province: prov("440000"),
        id: id.into(),
        party,
        from: today,
        until: today.plus_days(364),
        reason: "graded A for three years running".into(),
    };
    let listed = |r: &CommandResult| match ok(r) {
        Outcome::Incentive(i) => *i,
        o => panic!("{o:?}"),
    };
    let refused = |kv: &mut MemKv, i: Incentive| {
        let e = one(kv, ProvinceCommand::RecordIncentive(i)).unwrap_err();
        (e.code, e.field)
    };
    let inst_entry = entry("JI-1", Party::Institution(inst()));
    assert_eq!(listed(&one(&mut here, ProvinceCommand::RecordIncentive(inst_entry.clone()))), inst_entry);
    assert_eq!(listed(&one(&mut here, ProvinceCommand::RecordIncentive(inst_entry.clone()))), inst_entry, "again");
    let changed = Incentive { reason: "other".into(), ..inst_entry.clone() };
    assert_eq!(refused(&mut here, changed), (ErrorCode::AlreadyExists, "id".into()));

    // A doctor with a 3-point violation is graded B (88): not listed, and the refusal says why.
    ok(&one(&mut here, violation("V-1", "440000", 3, "2025-03-01")));
    let doctor = Party::Personnel(PersonnelCode::new("D001").unwrap());
    let e = one(&mut here, ProvinceCommand::RecordIncentive(entry("JI-2", doctor))).unwrap_err();
    assert_eq!((e.code, e.field.as_str()), (ErrorCode::FailedPrecondition, "personnel_code"));
    assert!(e.message.contains("graded B") && e.message.contains("violation 440000/V-1"), "{}", e.message);
    // Unknown parties, a period over, a period too long, an id of another party.
    let ent = Party::Enterprise(EnterpriseCode::new("91110000710925462X").unwrap());
    assert_eq!(refused(&mut here, entry("JI-3", ent.clone())), (ErrorCode::NotFound, "enterprise_code".into()));
    let stranger = Party::Institution(InstitutionId::new("H999").unwrap());
    assert_eq!(refused(&mut here, entry("JI-3", stranger)), (ErrorCode::NotFound, "institution_id".into()));
    let past = Incentive {
        until: today.plus_days(-1),
        from: today.plus_days(-30),
        ..entry("JI-3", Party::Institution(inst()))
    };
    assert_eq!(refused(&mut here, past), (ErrorCode::InvalidArgument, "until".into()));
    let long = Incentive { until: today.plus_days(3 * 366), ..entry("JI-3", Party::Institution(inst())) };
    assert_eq!(refused(&mut here, long), (ErrorCode::InvalidArgument, "until".into()));
    // An enterprise with a credit commitment on record is known, graded A, and may be listed;
    // the id JI-1 is the institution's.
    ok(&one(
        &mut here,
        ProvinceCommand::RecordCommitment {
            province: prov("440000"),
            party: ent.clone(),
            id: "EC-1".into(),
            text: "no kickbacks; prices as declared; supply as agreed".into(),
            verify_by: today.plus_days(365),
        },
    ));
    assert_eq!(refused(&mut here, entry("JI-1", ent.clone())), (ErrorCode::AlreadyExists, "id".into()));
    let ent_entry = entry("JI-4", ent.clone());
    assert_eq!(listed(&one(&mut here, ProvinceCommand::RecordIncentive(ent_entry.clone()))), ent_entry);
    let rating = |kv: &MemKv, party: &Party| {
        let q = match party {
            Party::Institution(i) => Query::CreditRating { institution: i.clone(), today },
            Party::Personnel(p) => Query::PersonnelCreditRating { code: p.clone(), today },
            Party::Enterprise(e) => Query::EnterpriseCreditRating { code: e.clone(), today },
        };
        match run_query(kv, &q).unwrap() {
            Answer::CreditRating(r) => *r,
            o => panic!("{o:?}"),
        }
    };
    let r = rating(&here, &ent);
    assert_eq!((r.score, r.grade, r.trusted), (100, Grade::A, true));

    // Shared once by the federation; the other province holds the same entries.
    let outbox = match run_query(&here, &Query::Outbox { limit: 10 }).unwrap() {
        Answer::SharedLog(items) => items,
        o => panic!("{o:?}"),
    };
    let shared: Vec<SharedItem> = outbox.iter().map(|(_, i)| i.clone()).collect();
    assert_eq!(shared, vec![SharedItem::Incentive(inst_entry.clone()), SharedItem::Incentive(ent_entry.clone())]);
    for i in [&inst_entry, &ent_entry, &inst_entry] {
        ok(&one(&mut f, FederationCommand::RecordIncentive(i.clone())));
    }
    let e = one(&mut f, FederationCommand::RecordIncentive(Incentive { reason: "x".into(), ..inst_entry.clone() }));
    assert_eq!(e.unwrap_err().code, ErrorCode::AlreadyExists);
    let log = match run_query(&f, &Query::SharedLog { after: 0, limit: 10 }).unwrap() {
        Answer::SharedLog(items) => items,
        o => panic!("{o:?}"),
    };
    assert_eq!(log.len(), 2, "shared once each");
    ok(&one(&mut other, ProvinceCommand::SyncShared { items: log }));
    let inst_party = Party::Institution(inst());
    assert_eq!(
        run_query(&other, &Query::Incentives { party: inst_party.clone(), today }).unwrap(),
        Answer::Incentives(vec![(inst_entry.clone(), true)])
    );
    assert!(rating(&other, &inst_party).trusted);
    assert_eq!(rating(&other, &ent), r, "the enterprise is rated alike");
    match run_query(&other, &Query::CreditGrades { institutions: vec![inst()], today }).unwrap() {
        Answer::CreditGrades(g) => assert_eq!(g, vec![Some((Grade::A, true))]),
        o => panic!("{o:?}"),
    }
    // A discipline entry in force there: grade D, the incentive suspended, not trusted.
    let d = DisciplineEntry {
        id: "JD-9".into(),
        subject: DisciplineSubject::Institution(inst()),
        province: prov("310000"),
        from: today,
        until: today.plus_days(30),
        reason: "billed for care not given".into(),
    };
    ok(&one(&mut other, ProvinceCommand::RecordDiscipline(d)));
    assert_eq!(
        run_query(&other, &Query::Incentives { party: inst_party.clone(), today }).unwrap(),
        Answer::Incentives(vec![(inst_entry, false)])
    );
    let r = rating(&other, &inst_party);
    assert_eq!((r.grade, r.trusted), (Grade::D, false));
    assert!(r.entries.iter().any(|e| e.why.contains("suspended while the grade is D")), "{:?}", r.entries);
}

/// Issue 13.3: an insured person is rated from the joint-discipline entries naming their
/// directory key (worked by hand: one entry in force → 100 − 30 = 70, grade D); a person
/// neither insured here nor named is NOT_FOUND naming certificate; an enterprise's discipline
/// entry makes its grade D.
#[test]
fn insured_persons_and_enterprises_are_rated_from_discipline_entries() {
    let mut kv = seeded();
    let today = NOW.date();
    let stranger = medmesh_types::KeyedHash::new("ee".repeat(32)).unwrap();
    let person = |kv: &MemKv, directory_key: &str| {
        run_query(
            kv,
            &Query::PersonCreditRating {
                kind: CertificateKind::IdCard,
                key: stranger.clone(),
                directory_key: directory_key.into(),
                today,
            },
        )
    };
    assert_eq!(person(&kv, KEY).unwrap_err().field, "certificate");
    let d = |id: &str, subject: DisciplineSubject| DisciplineEntry {
        id: id.into(),
        subject,
        province: prov("310000"),
        from: today,
        until: today.plus_days(90),
        reason: "lent the card".into(),
    };
    ok(&one(&mut kv, ProvinceCommand::RecordDiscipline(d("JD-P", DisciplineSubject::Person(KEY.into())))));
    match person(&kv, KEY).unwrap() {
        Answer::CreditRating(r) => assert_eq!((r.score, r.grade, r.entries.len()), (70, Grade::D, 1)),
        o => panic!("{o:?}"),
    }
    let code = EnterpriseCode::new("91350100M000100Y43").unwrap();
    let q = Query::EnterpriseCreditRating { code: code.clone(), today };
    assert_eq!(run_query(&kv, &q).unwrap_err().field, "enterprise_code", "nothing names it");
    ok(&one(&mut kv, ProvinceCommand::RecordDiscipline(d("JD-E", DisciplineSubject::Enterprise(code)))));
    match run_query(&kv, &q).unwrap() {
        Answer::CreditRating(r) => assert_eq!((r.score, r.grade), (100, Grade::D)),
        o => panic!("{o:?}"),
    }
}

/// A non-local settlement or reversal writes its idempotency record only when it finishes, so
/// while it is under way its serial is refused to any other request of the institution: else
/// the other request's answer would be taken for the transfer's when it finished.
#[test]
fn a_serial_in_flight_cannot_be_taken_by_another_request() {
    let mut t = trio();
    nonlocal_visit(&mut t, "V1", "300", Some(FilingKind::LongTermResident));
    commit(&mut t, "S1", "V1");
    let reverse = ProvinceCommand::Reverse { institution: inst(), serial: ser("R1"), settlement: ser("S1") };
    assert!(matches!(ok(&one(&mut t.treatment, reverse)), Outcome::ReversalOpen(_)));
    visit_and_lines(&mut t.treatment, "V9", "300");
    let e = one(&mut t.treatment, settle_cmd("R1", "V9")).unwrap_err();
    assert_eq!((e.code, e.field.as_str()), (ErrorCode::AlreadyExists, "serial"), "{e}");
    nonlocal_visit(&mut t, "V2", "300", Some(FilingKind::LongTermResident));
    let e = one(&mut t.treatment, settle_cmd("R1", "V2")).unwrap_err();
    assert_eq!((e.code, e.field.as_str()), (ErrorCode::AlreadyExists, "serial"), "{e}");
    assert!(matches!(ok(&one(&mut t.treatment, settle_cmd("S2", "V2"))), Outcome::TransferOpen(_)));
    let e = one(&mut t.treatment, register_cmd("S2", VisitKind::Outpatient, "2025-03-10")).unwrap_err();
    assert_eq!((e.code, e.field.as_str()), (ErrorCode::AlreadyExists, "serial"), "{e}");
    let e = one(&mut t.treatment, settle_cmd("S2", "V9")).unwrap_err();
    assert_eq!((e.code, e.field.as_str()), (ErrorCode::AlreadyExists, "serial"), "{e}");
    let again = ProvinceCommand::Reverse { institution: inst(), serial: ser("S2"), settlement: ser("S1") };
    let e = one(&mut t.treatment, again).unwrap_err();
    assert_eq!((e.code, e.field.as_str()), (ErrorCode::AlreadyExists, "serial"), "{e}");
    // The local visit settles under a serial of its own.
    settled(&one(&mut t.treatment, settle_cmd("S9", "V9")));
}

#[test]
fn a_disciplined_person_cannot_settle_non_locally() {
    let mut t = trio();
    nonlocal_visit(&mut t, "V1", "300", Some(FilingKind::LongTermResident));
    let entry = DisciplineEntry {
        id: "JD-P".into(),
        subject: DisciplineSubject::Person(KEY.into()),
        province: prov("310000"),
        from: day("2025-01-01"),
        until: day("2025-12-31"),
        reason: "resold drugs".into(),
    };
    ok(&one(&mut t.treatment, ProvinceCommand::RecordDiscipline(entry)));
    let e = one(&mut t.treatment, settle_cmd("S1", "V1")).unwrap_err();
    assert_eq!((e.code, e.field.as_str()), (ErrorCode::FailedPrecondition, "visit_serial"));
}

fn prepaid_of(f: &MemKv, p: &str) -> PrepaidView {
    match run_query(f, &Query::Prepaid).unwrap() {
        Answer::Prepaid(v) => v.into_iter().find(|v| v.province.as_str() == p).unwrap(),
        o => panic!("{o:?}"),
    }
}

#[test]
fn prepaid_accounts_are_consumed_by_commits_and_warn_when_low() {
    let mut t = trio();
    let top = |amount: &str, serial: &str| FederationCommand::TopUp {
        province: prov("310000"),
        serial: ser(serial),
        amount: m(amount),
        warning_below: Some(m("100")),
    };
    ok(&one(&mut t.federation, top("300", "T1")));
    ok(&one(&mut t.federation, top("300", "T1")));
    let e = one(&mut t.federation, top("301", "T1")).unwrap_err();
    assert_eq!((e.code, e.field.as_str()), (ErrorCode::AlreadyExists, "serial"));
    nonlocal_visit(&mut t, "V1", "300", Some(FilingKind::LongTermResident));
    let s = commit(&mut t, "S1", "V1");
    let amount = s.split.fund_total() + s.split.individual_account;
    let v = prepaid_of(&t.federation, "310000");
    assert_eq!((v.topped_up, v.consumed, v.balance), (m("300"), amount, m("300") - amount));
    assert!(v.warning, "300 - 210 = 90 is below the 100 threshold");
    ok(&one(&mut t.federation, top("50", "T2")));
    assert!(!prepaid_of(&t.federation, "310000").warning);
}

fn seen_cmd(topped_up: Money) -> ProvinceCommand {
    ProvinceCommand::PrepaidSeen { topped_up, settled_months: 0, received: Money::ZERO, paid: Money::ZERO }
}

/// A province's leader proposes what the federation's view of its account says.
fn follow(fed: &MemKv, province: &mut MemKv, code: &str) {
    ok(&one(province, prepaid_of(fed, code).followed()));
}

/// Issue 12.5: the insured province's pool pays for its prepaid account, so its balance falls
/// by each top-up once the province has seen the federation's total, and money is conserved
/// before (the top-up in flight) and after. A top-up larger than the pool takes the balance
/// below zero and still refuses no care: the prepaid account pays.
#[test]
fn the_pool_follows_the_federation_s_top_ups_once() {
    let mut t = trio();
    let before = fund(&t.insured).ledger.balance();
    let big = before + m("1000");
    for (serial, amount) in [("T1", m("300")), ("T2", big)] {
        let top =
            FederationCommand::TopUp { province: prov("310000"), serial: ser(serial), amount, warning_below: None };
        ok(&one(&mut t.federation, top));
    }
    let total = m("300") + big;
    mesh_conserved(&t);
    let seen = |t: &mut Trio, total: Money| ok(&one(&mut t.insured, seen_cmd(total)));
    seen(&mut t, m("300"));
    seen(&mut t, total);
    // The same reading again, and an older one arriving late (a deposed leader's), change
    // nothing.
    seen(&mut t, total);
    seen(&mut t, m("300"));
    let l = fund(&t.insured).ledger;
    assert_eq!((l.prepaid_topped_up, l.balance()), (total, before - total));
    assert!(l.balance().is_negative());
    mesh_conserved(&t);
    nonlocal_visit(&mut t, "V1", "300", Some(FilingKind::LongTermResident));
    commit(&mut t, "S1", "V1");
    // The settlement itself was paid by the prepaid account; its account part came into the
    // pool from the person's account.
    let l = fund(&t.insured).ledger;
    assert_eq!(l.balance(), before - total + l.nonlocal_accounts_in);
    mesh_conserved(&t);
    let e = one(&mut t.insured, seen_cmd(Money::ZERO - m("1"))).unwrap_err();
    assert_eq!((e.code, e.field.as_str()), (ErrorCode::InvalidArgument, "topped_up"), "{e}");
}

/// Issue 12.5: the insured province's risk level counts what its prepaid account holds and what
/// its insured's non-local care cost. The care (March) is in the expenditure of the 12 months
/// before April; the months covered are the pool's balance with the account's balance over
/// that, recomputed here from the settlement's split and the top-ups; a top-up, which only
/// moves money from the pool into the account, leaves them unchanged.
#[test]
fn the_risk_level_counts_the_prepaid_account_and_non_local_care() {
    let mut t = trio();
    let contributed = fund(&t.insured).ledger.balance();
    nonlocal_visit(&mut t, "V1", "3000", Some(FilingKind::LongTermResident));
    let s = commit(&mut t, "S1", "V1");
    let split = s.split.clone();
    let pooled = split.pooling_fund + split.critical_illness;
    assert!(pooled > Money::ZERO, "{split:?}");
    let april = LogTime(i64::from(day("2025-04-02").days()) * 86_400_000 + 4 * 3_600_000);
    t.insured.0.insert(keys::TIME.as_bytes().to_vec(), crate::kv::encode(&april));
    let risk = |kv: &MemKv| fund(kv).risk;
    let monthly = Money::from_fen(pooled.to_fen() / 12);
    // Nothing topped up yet: the account is overdrawn by the care, which the pool will fund.
    let held = contributed - split.fund_total();
    let want = |held: Money| Some(held.to_fen() * 10 / monthly.to_fen());
    let r = risk(&t.insured);
    assert_eq!((r.monthly_expenditure, r.months_covered_tenths), (monthly, want(held)), "{r:?}");
    let l = fund(&t.insured).ledger;
    assert_eq!(l.prepaid_balance(), Money::ZERO - (split.fund_total() + split.individual_account));
    // Topped up and followed: the pool's balance falls, the months covered do not.
    let top = FederationCommand::TopUp {
        province: prov("310000"),
        serial: ser("T1"),
        amount: m("5000"),
        warning_below: None,
    };
    ok(&one(&mut t.federation, top));
    follow(&t.federation, &mut t.insured, "310000");
    t.insured.0.insert(keys::TIME.as_bytes().to_vec(), crate::kv::encode(&april));
    let after = fund(&t.insured);
    assert_eq!(after.ledger.balance(), l.balance() - m("5000"));
    assert_eq!(after.risk, r, "a top-up moves money, it does not spend it");
    assert_eq!(after.ledger.prepaid_balance(), prepaid_of(&t.federation, "310000").balance, "as the federation has it");
    // The month's disclosure (April so far; its 12 months hold March's care alone) measures
    // the same way.
    let april = medmesh_payment::Period::parse("2025-04").unwrap();
    let report = match run_query(&t.insured, &Query::FundReport { period: april }).unwrap() {
        Answer::FundReport(r) => *r,
        other => panic!("{other:?}"),
    };
    assert_eq!((report.monthly_expenditure, report.months_covered_tenths), (monthly, want(held)));
    mesh_conserved(&t);
}

/// Applies one command at `time` (a month can pass between two commands here).
fn one_at(kv: &mut MemKv, time: LogTime, cmd: impl Into<Command>) -> CommandResult {
    let (r, writes) = apply_command(kv, &cmd.into(), time);
    kv.write(writes);
    r
}

/// The full non-local flow through the three groups, then clearing: the month's statement is
/// its lines' sum and the positions' total, cleared once the month has ended and settled once.
#[test]
fn a_cleared_month_reconciles_to_the_line_and_settles_once() {
    let mut t = trio();
    nonlocal_visit(&mut t, "V1", "300", Some(FilingKind::LongTermResident));
    nonlocal_visit(&mut t, "V2", "500", Some(FilingKind::LongTermResident));
    let a = commit(&mut t, "S1", "V1");
    let b = commit(&mut t, "S2", "V2");
    let month = "2025-03".to_string();
    let e = one(&mut t.federation, FederationCommand::RunClearing { month: month.clone() }).unwrap_err();
    assert_eq!((e.code, e.field.as_str()), (ErrorCode::FailedPrecondition, "month"), "March has not ended: {e}");
    let april = LogTime(NOW.0 + 25 * 86_400_000);
    let view = match ok(&one_at(&mut t.federation, april, FederationCommand::RunClearing { month: month.clone() })) {
        Outcome::Clearing(v) => v,
        o => panic!("{o:?}"),
    };
    assert_eq!((view.record.status(), view.statements.len()), (MonthStatus::Cleared, 1));
    let st = &view.statements[0];
    let owed = |s: &Settlement| s.split.fund_total() + s.split.individual_account;
    assert_eq!(st.total, owed(&a) + owed(&b), "the statement's total is its lines' sum, to the fen");
    assert_eq!((st.total, st.line_count), (positions_total(&t.federation), 2));
    assert!(st.lines.is_empty(), "a run answers totals; lines are read a page at a time");
    let mut token = String::new();
    let mut seen = Vec::new();
    loop {
        let q = Query::Clearing { month: month.clone(), page_token: token.clone(), page_size: 1 };
        let Ok(Answer::Clearing { view, next_page_token }) = run_query(&t.federation, &q) else {
            panic!("clearing page")
        };
        assert_eq!((view.statements.len(), view.statements[0].total), (1, st.total));
        seen.extend(view.statements[0].lines.iter().map(|l| (l.serial.to_string(), l.amount)));
        if next_page_token.is_empty() {
            break;
        }
        token = next_page_token;
    }
    assert_eq!(seen, vec![("S1".to_string(), owed(&a)), ("S2".to_string(), owed(&b))]);
    // Settled once: the positions fall back to zero; the prepaid account shows it paid.
    let settled = one_at(&mut t.federation, april, FederationCommand::SettleClearing { month: month.clone() });
    assert_eq!(ok(&settled), ok(&one_at(&mut t.federation, april, FederationCommand::SettleClearing { month })));
    match run_query(&t.federation, &Query::Positions).unwrap() {
        Answer::Positions(p) => assert_eq!(p[0].2.owed(), Money::ZERO, "{p:?}"),
        o => panic!("{o:?}"),
    }
    let v = prepaid_of(&t.federation, "310000");
    assert_eq!((v.consumed, v.paid, v.owed), (st.total, st.total, Money::ZERO));
    assert_eq!(prepaid_of(&t.federation, "110000").received, st.total);
    mesh_conserved(&t);
    // Both provinces follow: the treatment province's ledger shows the month's money received,
    // the insured's what its account paid; a reading from before the settlement arriving late
    // changes nothing.
    let before =
        ProvinceCommand::PrepaidSeen { topped_up: Money::ZERO, settled_months: 0, received: m("1"), paid: m("1") };
    follow(&t.federation, &mut t.treatment, "110000");
    follow(&t.federation, &mut t.insured, "310000");
    ok(&one(&mut t.treatment, before.clone()));
    ok(&one(&mut t.insured, before));
    let (tr, i) = (fund(&t.treatment).ledger, fund(&t.insured).ledger);
    assert_eq!((tr.clearing_received, tr.clearing_paid, tr.clearing_months_seen), (st.total, Money::ZERO, 1));
    assert_eq!((i.clearing_received, i.clearing_paid, i.clearing_months_seen), (Money::ZERO, st.total, 1));
    mesh_conserved(&t);
}

/// Found by the bank test under a stalled insured province: the treatment province finished a
/// committed settlement while the insured province's post was still deferred, and a reversal
/// arriving in that window was refused as "never posted". An unpost follows a recorded reversal
/// of a committed transfer, so it posts a pending reservation first, then gives it back.
#[test]
fn reversing_before_the_insured_province_posted_still_gives_everything_back() {
    let mut t = trio();
    nonlocal_visit(&mut t, "V1", "300", Some(FilingKind::LongTermResident));
    let before = fund(&t.insured);
    let x = match ok(&one(&mut t.treatment, settle_cmd("S1", "V1"))) {
        Outcome::TransferOpen(o) => o.transfer,
        o => panic!("{o:?}"),
    };
    let (_, reserve) = claim_of(&t, "S1");
    let split = match ok(&one(&mut t.insured, reserve)) {
        Outcome::Reservation(r) => r.split.unwrap(),
        o => panic!("{o:?}"),
    };
    let amount = split.fund_total() + split.individual_account;
    ok(&one(&mut t.federation, FederationCommand::Vouch { transfer: x.id.clone(), insured: prov("310000"), amount }));
    let decide = FederationCommand::Decide {
        transfer: x.id.clone(),
        insured: prov("310000"),
        amount,
        decision: Decision::Commit,
        reason: String::new(),
    };
    ok(&one(&mut t.federation, decide));
    // The insured province's post is deferred; the treatment province finishes.
    let finish = ProvinceCommand::FinishTransfer {
        transfer: x.id.clone(),
        decision: Decision::Commit,
        reason: String::new(),
        split: Some(split),
    };
    ok(&one(&mut t.treatment, finish));
    let rev = ProvinceCommand::Reverse { institution: inst(), serial: ser("R1"), settlement: ser("S1") };
    assert!(matches!(ok(&one(&mut t.treatment, rev)), Outcome::ReversalOpen(_)));
    ok(&one(&mut t.federation, FederationCommand::Reverse { transfer: x.id.clone(), reversal: ser("R1") }));
    match ok(&one(&mut t.insured, ProvinceCommand::UnpostReservation { transfer: x.id.clone() })) {
        Outcome::Reservation(r) => assert_eq!(r.status, ReservationStatus::Reversed),
        o => panic!("{o:?}"),
    }
    // The deferred post arrives late: harmless.
    ok(&one(&mut t.insured, ProvinceCommand::ResolveReservation { transfer: x.id, decision: Decision::Commit }));
    ok(&one(&mut t.treatment, ProvinceCommand::FinishReversal { institution: inst(), serial: ser("R1") }));
    assert_eq!(fund(&t.insured), before, "the insured province is back where it was");
    mesh_conserved(&t);
}

mod aggregate;
mod assistance;
mod clearing;
mod disclosure;
mod flights;
mod hardening;
mod inspection;
mod payment;
mod reconcile;
mod reports;

/// Files of this crate import one another only one way: no module reaches back to one that
/// reaches it (issue 9 found apply ↔ nonlocal ↔ query ↔ clearing and model ↔ shared).
#[test]
fn import_graph_has_no_cycles() {
    use std::collections::{BTreeMap, BTreeSet};
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut edges: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let Some(name) = path.file_stem().and_then(|s| s.to_str()).map(str::to_string) else { continue };
        if path.extension().and_then(|e| e.to_str()) != Some("rs") || ["lib", "tests", "sim"].contains(&name.as_str()) {
            continue;
        }
        let text: String = std::fs::read_to_string(&path)
            .unwrap()
            .lines()
            .filter(|l| !l.trim_start().starts_with("//"))
            .collect::<Vec<_>>()
            .join("\n");
        let deps = edges.entry(name.clone()).or_default();
        for part in text.split("crate::").skip(1) {
            let module: String = part.chars().take_while(|c| c.is_ascii_lowercase() || *c == '_').collect();
            if !module.is_empty() && module != name {
                deps.insert(module);
            }
        }
    }
    // Depth-first search for a back edge.
    fn visit(
        m: &str,
        edges: &BTreeMap<String, BTreeSet<String>>,
        state: &mut BTreeMap<String, u8>,
        path: &mut Vec<String>,
    ) {
        match state.get(m) {
            Some(2) => return,
            Some(1) => panic!("import cycle: {} -> {m}", path.join(" -> ")),
            _ => {}
        }
        state.insert(m.to_string(), 1);
        path.push(m.to_string());
        for d in edges.get(m).into_iter().flatten() {
            if edges.contains_key(d) {
                visit(d, edges, state, path);
            }
        }
        path.pop();
        state.insert(m.to_string(), 2);
    }
    let mut state = BTreeMap::new();
    for m in edges.keys() {
        visit(m, &edges, &mut state, &mut Vec::new());
    }
    assert!(edges.len() >= 12, "found the crate's modules: {:?}", edges.keys());
}

/// A province's audit anchors: recorded once per entry, the same head again changes nothing,
/// another hash for an anchored entry is refused, bad heads are refused in apply, and a
/// province may anchor only its own chain.
#[test]
fn anchors_are_recorded_once_per_entry_and_checked_in_apply() {
    use crate::audit::AuditHead;
    let mut fed = MemKv::default();
    let anchor =
        |seq: u64, hash: String| FederationCommand::Anchor { province: prov("310000"), head: AuditHead { seq, hash } };
    ok(&one(&mut fed, anchor(3, "a".repeat(64))));
    ok(&one(&mut fed, anchor(3, "a".repeat(64))));
    for (cmd, code, field) in [
        (anchor(3, "b".repeat(64)), ErrorCode::AlreadyExists, "head.hash"),
        (anchor(0, "a".repeat(64)), ErrorCode::InvalidArgument, "head.seq"),
        (anchor(4, "A".repeat(64)), ErrorCode::InvalidArgument, "head.hash"),
        (anchor(4, "a".repeat(63)), ErrorCode::InvalidArgument, "head.hash"),
    ] {
        let e = one(&mut fed, cmd).unwrap_err();
        assert_eq!((e.code, e.field.as_str()), (code, field), "{e}");
    }
    match run_query(&fed, &Query::Anchors { province: prov("310000"), from: 0, limit: 10 }).unwrap() {
        Answer::Anchors(a) => {
            assert_eq!(a.len(), 1);
            assert_eq!((a[0].head.seq, a[0].head.hash.clone()), (3, "a".repeat(64)));
        }
        other => panic!("{other:?}"),
    }
    assert!(access::foreign_command(&anchor(5, "c".repeat(64)).into(), &prov("310000")).is_ok());
    assert!(access::foreign_command(&anchor(5, "c".repeat(64)).into(), &prov("440000")).is_err());
}

/// The history of a register record: each accepted `Put*` under its audit entry, with its
/// caller; a key that names no register record is refused.
#[test]
fn register_history_keeps_each_accepted_put_with_its_caller() {
    let mut kv = seeded();
    let mut inst: Institution = kv::load(&kv, &keys::institution(&inst())).unwrap();
    inst.suspended = true;
    let batch = Batch {
        time: NOW,
        commands: vec![ProvinceCommand::PutInstitution(inst.clone()).into()],
        origins: vec![crate::audit::Origin::new("medmesh://agency/110000", "r-1")],
    };
    let (res, writes) = apply_batch(&kv, &batch, Role::Province);
    ok(&res[0]);
    kv.write(writes);
    let record = keys::institution(&inst.id);
    let changes = match run_query(&kv, &Query::History { record, from: 0, limit: 10 }).unwrap() {
        Answer::History(c) => c,
        other => panic!("{other:?}"),
    };
    let last = changes.last().unwrap();
    assert_eq!((last.actor.as_str(), last.request.as_str()), ("medmesh://agency/110000", "r-1"));
    assert_eq!(crate::kv::decode::<Institution>(&last.record), inst);
    let head: crate::audit::AuditHead = kv::load(&kv, keys::AUDIT_HEAD).unwrap();
    assert_eq!(last.seq, head.seq, "the change is under its command's audit entry");
    let e = run_query(&kv, &Query::History { record: keys::FUND.into(), from: 0, limit: 10 }).unwrap_err();
    assert_eq!(e.field, "record");
}

fn monitoring_rule(id: &str, action: medmesh_monitor::Action, condition: &str) -> medmesh_monitor::Rule {
    medmesh_monitor::Rule {
        id: id.into(),
        version: 1,
        category: medmesh_monitor::Category::Policy,
        target: medmesh_monitor::Target::Claim,
        action,
        severity: 2,
        title: format!("test rule {id}"),
        condition: condition.into(),
        enabled: true,
    }
}

fn alerts_of(kv: &MemKv) -> Vec<crate::monitoring::Alert> {
    match run_query(kv, &Query::Alerts { from: 0, limit: 100 }).unwrap() {
        Answer::Alerts(a) => a,
        other => panic!("{other:?}"),
    }
}

fn settled(r: &CommandResult) -> Settlement {
    match ok(r) {
        Outcome::Settlement(s) => s,
        other => panic!("{other:?}"),
    }
}

/// The rules in force run at every settlement: a flag joins the review queue, the shipped
/// duplicate-charging rule moves the second visit's line to the patient's share (the fund pays
/// nothing for it), a block refuses naming the rule and writes nothing, and a reversal takes a
/// visit out of the person's care index so it no longer counts.
#[test]
fn monitoring_rules_run_at_settlement_and_reversals_leave_the_care_index() {
    use medmesh_monitor::Action;
    let mut kv = seeded();
    let dup = medmesh_monitor::shipped_rules().into_iter().find(|r| r.id == "MGT-01").unwrap();
    for r in [
        dup,
        monitoring_rule("T-FLAG", Action::Flag, "claim.total_fen >= 1000"),
        monitoring_rule("T-BLOCK", Action::Block, "claim.total_fen > 100000"),
    ] {
        ok(&one(&mut kv, ProvinceCommand::PutRule(r)));
    }
    visit_and_lines(&mut kv, "V1", "300");
    let s1 = settled(&one(&mut kv, settle_cmd("S1", "V1")));
    assert_eq!(s1.split.fully_self_paid, Money::ZERO);
    assert!(s1.split.fund_total() > Money::ZERO);
    let alerts = alerts_of(&kv);
    assert_eq!(alerts.len(), 1);
    assert_eq!((alerts[0].rule.as_str(), alerts[0].settlement.as_str()), ("T-FLAG", "S1"));
    // Another visit billing X1 on the same day: duplicate charging.
    visit_and_lines(&mut kv, "V2", "300");
    let s2 = settled(&one(&mut kv, settle_cmd("S2", "V2")));
    assert_eq!(s2.split.lines[0].self_pay_reason, Some(medmesh_settlement::SelfPayReason::MonitoringRule));
    assert_eq!(s2.split.lines[0].rule.as_deref(), Some("MGT-01"));
    assert_eq!((s2.split.fund_total(), s2.split.fully_self_paid), (Money::ZERO, m("300")));
    assert_eq!(s2.split.person_total(), m("300"), "the patient pays the line in full");
    // Both reversed: a third visit the same day is clean again.
    for (r, s) in [("R1", "S1"), ("R2", "S2")] {
        ok(&one(&mut kv, ProvinceCommand::Reverse { institution: inst(), serial: ser(r), settlement: ser(s) }));
    }
    visit_and_lines(&mut kv, "V3", "300");
    let s3 = settled(&one(&mut kv, settle_cmd("S3", "V3")));
    assert_eq!(s3.split.fully_self_paid, Money::ZERO, "reversed visits leave the care index");
    // Blocked: refused naming the rule, and nothing but the audit entry is written.
    visit_and_lines(&mut kv, "V4", "2000");
    let before = fund(&kv);
    let e = one(&mut kv, settle_cmd("S4", "V4")).unwrap_err();
    assert_eq!((e.code, e.field.as_str()), (ErrorCode::FailedPrecondition, "visit_serial"));
    assert!(e.message.contains("T-BLOCK v1"), "{e}");
    assert_eq!(fund(&kv), before);
    assert_eq!(alerts_of(&kv).len(), 3, "S2 and S3 flagged too, the blocked claim raised nothing");
}

/// Rules are versioned and checked when recorded; what cannot compile never reaches the store.
#[test]
fn rules_are_versioned_and_checked_when_recorded() {
    use medmesh_monitor::Action;
    let mut kv = seeded();
    let r = monitoring_rule("T-1", Action::Flag, "claim.total_fen > 10");
    ok(&one(&mut kv, ProvinceCommand::PutRule(r.clone())));
    ok(&one(&mut kv, ProvinceCommand::PutRule(r.clone())));
    let mut other = r.clone();
    other.condition = "claim.total_fen > 20".into();
    let e = one(&mut kv, ProvinceCommand::PutRule(other.clone())).unwrap_err();
    assert_eq!((e.code, e.field.as_str()), (ErrorCode::AlreadyExists, "rule.version"));
    other.version = 3;
    assert_eq!(one(&mut kv, ProvinceCommand::PutRule(other.clone())).unwrap_err().field, "rule.version");
    other.version = 2;
    ok(&one(&mut kv, ProvinceCommand::PutRule(other)));
    for bad in ["claim.total_fen >", "claim.patient_id == \"x\"", "claim.total_fen > 1.5"] {
        let e = one(&mut kv, ProvinceCommand::PutRule(monitoring_rule("T-2", Action::Flag, bad))).unwrap_err();
        assert_eq!((e.code, e.field.as_str()), (ErrorCode::InvalidArgument, "rule.condition"), "{bad}");
    }
    match run_query(&kv, &Query::Rules).unwrap() {
        Answer::Rules(rules) => {
            assert_eq!(rules.len(), 1);
            assert_eq!((rules[0].rule.version, rules[0].national), (2, false));
        }
        other => panic!("{other:?}"),
    }
}

/// An alert is reviewed once: dismissed with a reason or accepted; the same review again
/// changes nothing, another is refused.
#[test]
fn an_alert_is_reviewed_once() {
    use crate::monitoring::AlertStatus;
    let mut kv = seeded();
    ok(&one(&mut kv, ProvinceCommand::PutRule(monitoring_rule("T-FLAG", medmesh_monitor::Action::Flag, "true"))));
    for (v, s) in [("V1", "S1"), ("V2", "S2")] {
        visit_and_lines(&mut kv, v, "300");
        ok(&one(&mut kv, settle_cmd(s, v)));
    }
    let review = |seq, accept, reason: &str| ProvinceCommand::ReviewAlert { seq, accept, reason: reason.into() };
    let e = one(&mut kv, review(1, false, " ")).unwrap_err();
    assert_eq!((e.code, e.field.as_str()), (ErrorCode::InvalidArgument, "reason"), "a dismissal says why");
    ok(&one(&mut kv, review(1, false, "billed correctly")));
    ok(&one(&mut kv, review(1, false, "billed correctly")));
    let e = one(&mut kv, review(1, true, "")).unwrap_err();
    assert_eq!((e.code, e.field.as_str()), (ErrorCode::FailedPrecondition, "seq"));
    ok(&one(&mut kv, review(2, true, "")));
    assert_eq!(one(&mut kv, review(9, true, "")).unwrap_err().code, ErrorCode::NotFound);
    let statuses: Vec<AlertStatus> = alerts_of(&kv).into_iter().map(|a| a.status).collect();
    assert_eq!(statuses, vec![AlertStatus::Dismissed("billed correctly".into()), AlertStatus::Accepted(String::new())]);
}

fn case_of(r: &CommandResult) -> medmesh_supervision::cases::Case {
    match ok(r) {
        Outcome::Case(c) => *c,
        other => panic!("{other:?}"),
    }
}

/// A flagged claim becomes a case, and its decision is executed once: the recovery comes off
/// what the fund owes the institution and back into the pool to the fen, the fine is recorded,
/// the agreement is suspended (no new visit), the doctor gets the points, the institution goes
/// on the discipline list, the settlement recovered on cannot be reversed, and the points, the
/// entry and the outcome wait in the outbox for the shared log.
/// A decision on an irregular use: recover `recover`, a fine of `tenths` tenths of it, the
/// agreement suspended a month, 3 points for D001, 30 days on the list, a transfer to health.
fn case_decision(recover: Money, tenths: u32) -> medmesh_supervision::cases::DecisionInput {
    use medmesh_supervision::cases::*;
    DecisionInput {
        violation: ViolationType::Irregular,
        recover,
        fine_tenths: tenths,
        agreement: AgreementAction::Suspend(1),
        scored: vec![Scored {
            personnel: PersonnelCode::new("D001").unwrap(),
            points: 3,
            severity: medmesh_supervision::Severity::new(1).unwrap(),
        }],
        discipline_days: 30,
        handoff: Some(Handoff { department: Department::Health, reference: "HC-7".into() }),
        reason: "item billed without indication".into(),
    }
}

#[test]
fn a_flagged_claim_becomes_a_case_and_its_recovery_reaches_the_ledger_once() {
    use medmesh_supervision::cases::*;
    let mut kv = seeded();
    ok(&one(&mut kv, ProvinceCommand::PutRule(monitoring_rule("T-FLAG", medmesh_monitor::Action::Flag, "true"))));
    visit_and_lines(&mut kv, "V1", "300");
    let s1 = settled(&one(&mut kv, settle_cmd("S1", "V1")));
    let paid = s1.split.fund_total() + s1.split.individual_account;
    assert!(paid > Money::ZERO);
    let open = |id: &str, seq| {
        ProvinceCommand::Case(CaseCommand::Open {
            id: id.into(),
            province: prov("110000"),
            source: CaseSource::Alert(seq),
            institution: inst(),
            settlements: vec![],
        })
    };
    let c = case_of(&one(&mut kv, open("C1", 1)));
    assert_eq!((c.state, c.settlements.clone(), c.involved), (CaseState::Opened, vec![ser("S1")], paid));
    assert_eq!(alerts_of(&kv)[0].status, crate::monitoring::AlertStatus::Accepted("case C1".into()));
    assert_eq!(case_of(&one(&mut kv, open("C1", 1))), c, "the same opening again answers the case");
    let e = one(&mut kv, open("C2", 1)).unwrap_err();
    assert_eq!((e.code, e.field.as_str()), (ErrorCode::AlreadyExists, "source.alert_seq"));
    assert_eq!(one(&mut kv, open("C3", 9)).unwrap_err().code, ErrorCode::NotFound);

    let step = |c: CaseCommand| ProvinceCommand::Case(c);
    let decision = case_decision;
    let decide = |recover, tenths| step(CaseCommand::Decide { id: "C1".into(), decision: decision(recover, tenths) });
    let e = one(&mut kv, decide(paid, 10)).unwrap_err();
    assert_eq!((e.code, e.field.as_str()), (ErrorCode::FailedPrecondition, "case_id"), "no finding yet");
    case_of(&one(&mut kv, step(CaseCommand::Investigate { id: "C1".into(), finding: "no indication".into() })));
    let e = one(&mut kv, decide(paid + m("0.01"), 10)).unwrap_err();
    assert_eq!((e.code, e.field.as_str()), (ErrorCode::InvalidArgument, "recover"), "more than was paid");
    let e = one(&mut kv, decide(paid, 25)).unwrap_err();
    assert_eq!(e.field, "fine_multiple");
    let c = case_of(&one(&mut kv, decide(paid, 15)));
    assert_eq!(c.state, CaseState::Decided);

    let before = fund(&kv);
    let c = case_of(&one(&mut kv, step(CaseCommand::Execute { id: "C1".into() })));
    assert_eq!(c.state, CaseState::Executed);
    let after = fund(&kv);
    // Independently: the fine is 1.5 × the recovery, rounded half away from zero.
    let fine_fen = (paid.to_fen() * 15 + 5) / 10;
    assert_eq!(after.ledger.recovered, paid);
    assert_eq!(after.ledger.fines_imposed, Money::from_fen(fine_fen));
    assert_eq!(after.payables, before.payables - paid);
    assert_eq!(after.ledger.balance(), before.ledger.balance() + paid);
    assert_eq!(after.ledger.recovery_due, Money::ZERO);
    let again = one(&mut kv, step(CaseCommand::Execute { id: "C1".into() })).unwrap_err();
    assert_eq!((again.code, again.field.as_str()), (ErrorCode::FailedPrecondition, "case_id"));
    assert_eq!(fund(&kv), after, "a second execution changes nothing");

    let e = one(&mut kv, ProvinceCommand::Reverse { institution: inst(), serial: ser("R1"), settlement: ser("S1") })
        .unwrap_err();
    assert_eq!((e.code, e.field.as_str()), (ErrorCode::FailedPrecondition, "settlement_serial"));
    let e = run(
        &mut kv,
        vec![ProvinceCommand::RegisterVisit {
            institution: inst(),
            serial: ser("V9"),
            certificate_kind: CertificateKind::SocialSecurityCard,
            certificate: crate::sim::ss1(),
            kind: VisitKind::Outpatient,
            doctor: PersonnelCode::new("D002").unwrap(),
            department: "internal".into(),
            diagnosis: "J06.9".into(),
            admitted: day("2025-03-10"),
        }],
    )
    .remove(0)
    .unwrap_err();
    assert_eq!((e.code, e.field.as_str()), (ErrorCode::FailedPrecondition, "institution_id"));
    assert!(e.message.contains("case C1"), "{e}");
    match run_query(&kv, &Query::Qualification { code: PersonnelCode::new("D001").unwrap(), now: NOW }).unwrap() {
        Answer::Qualification(q) => assert_eq!(q.year_points, 3),
        other => panic!("{other:?}"),
    }
    let outbox = match run_query(&kv, &Query::Outbox { limit: 10 }).unwrap() {
        Answer::SharedLog(items) => items,
        other => panic!("{other:?}"),
    };
    let kinds: Vec<&str> = outbox
        .iter()
        .map(|(_, i)| match i {
            SharedItem::Violation(_) => "violation",
            SharedItem::Discipline(_) => "discipline",
            SharedItem::CaseOutcome(_) => "outcome",
            SharedItem::Rule(_) => "rule",
            SharedItem::CreditLift(_) => "lift",
            SharedItem::Aggregate(_) => "aggregate",
            SharedItem::DisciplineLift(_) => "discipline lift",
            SharedItem::ReportMessage(_) => "report",
            SharedItem::Commitment(_) => "commitment",
            SharedItem::Incentive(_) => "incentive",
            SharedItem::DeclarationReview(_) => "declaration",
        })
        .collect();
    assert_eq!(kinds, vec!["violation", "discipline", "outcome"]);
    assert_eq!(one(&mut kv, ProvinceCommand::Published { through: 4 }).unwrap_err().field, "through");
    ok(&one(&mut kv, ProvinceCommand::Published { through: 3 }));
    assert_eq!(run_query(&kv, &Query::Outbox { limit: 10 }).unwrap(), Answer::SharedLog(vec![]));
    match run_query(&kv, &Query::CaseOutcomes { institution: inst(), limit: 10 }).unwrap() {
        Answer::CaseOutcomes(o) => {
            assert_eq!(o.len(), 1);
            assert_eq!((o[0].recovered, o[0].department), (paid, Some(Department::Health)));
        }
        other => panic!("{other:?}"),
    }
    let c = case_of(&one(&mut kv, step(CaseCommand::Close { id: "C1".into(), reason: String::new() })));
    assert_eq!(c.state, CaseState::Closed);
    assert_eq!(one(&mut kv, decide(paid, 15)).unwrap_err().code, ErrorCode::FailedPrecondition);

    // Credit repair (issue 13.3): the executed case's entry is lifted on appeal, once, and
    // goes to the outbox for every province; the rating stops counting it.
    let lift = |reason: &str| step(CaseCommand::LiftCredit { id: "C1".into(), reason: reason.into() });
    assert_eq!(one(&mut kv, lift(" ")).unwrap_err().field, "reason");
    let e = one(&mut kv, step(CaseCommand::LiftCredit { id: "C404".into(), reason: "r".into() })).unwrap_err();
    assert_eq!((e.code, e.field.as_str()), (ErrorCode::NotFound, "case_id"));
    case_of(&one(&mut kv, lift("annulled on review")));
    case_of(&one(&mut kv, lift("annulled on review")));
    let e = one(&mut kv, lift("another reason")).unwrap_err();
    assert_eq!((e.code, e.field.as_str()), (ErrorCode::AlreadyExists, "case_id"));
    match run_query(&kv, &Query::Outbox { limit: 10 }).unwrap() {
        Answer::SharedLog(items) => {
            assert_eq!(items.len(), 1, "one lift in the outbox: {items:?}");
            assert!(matches!(&items[0].1, SharedItem::CreditLift(l) if l.case_id == "C1" && l.institution == inst()));
        }
        other => panic!("{other:?}"),
    }
    match run_query(&kv, &Query::CreditRating { institution: inst(), today: NOW.date() }).unwrap() {
        Answer::CreditRating(r) => {
            let case = r.entries.iter().find(|e| matches!(&e.source, medmesh_supervision::credit::Source::Case { .. }));
            assert!(case.is_some_and(|e| !e.counted && e.why.contains("annulled on review")), "{r:?}");
        }
        other => panic!("{other:?}"),
    }
}

/// A recovery beyond what the fund still owes the institution is due from it, and taken off
/// its next settlements as far as they go.
#[test]
fn a_recovery_due_is_taken_off_later_payables() {
    let mut p = Payable { amount: m("100"), recovery_due: m("30") };
    assert_eq!(p.offset_recovery(), m("30"));
    assert_eq!((p.amount, p.recovery_due), (m("70"), Money::ZERO));
    let mut p = Payable { amount: m("10"), recovery_due: m("30") };
    assert_eq!(p.offset_recovery(), m("10"));
    assert_eq!((p.amount, p.recovery_due), (Money::ZERO, m("20")));
    let mut p = Payable { amount: Money::from_fen(-500), recovery_due: m("30") };
    assert_eq!(p.offset_recovery(), Money::ZERO);
}

/// Case outcomes copied from the shared log are checked; a bad one is skipped, never stored.
#[test]
fn case_outcomes_from_the_shared_log_are_checked() {
    use medmesh_supervision::cases::*;
    let mut kv = seeded();
    let good = CaseOutcome {
        province: prov("310000"),
        case_id: "SH-1".into(),
        institution: inst(),
        personnel: vec![],
        violation: ViolationType::Fraud,
        recovered: m("10"),
        fine: m("20"),
        agreement: AgreementAction::End,
        department: Some(Department::PublicSecurity),
        decided_on: day("2025-03-01"),
        executed_on: day("2025-03-02"),
        reason: "fraud".into(),
    };
    let mut bad = good.clone();
    bad.case_id = "SH-2".into();
    bad.executed_on = day("2025-02-01");
    ok(&one(
        &mut kv,
        ProvinceCommand::SyncShared {
            items: vec![(1, SharedItem::CaseOutcome(good.clone())), (2, SharedItem::CaseOutcome(bad))],
        },
    ));
    assert_eq!(
        run_query(&kv, &Query::CaseOutcomes { institution: inst(), limit: 10 }).unwrap(),
        Answer::CaseOutcomes(vec![good])
    );
}

/// Issue 13.3: a province rates an institution from shared outcomes and discipline entries,
/// another province's institution included; one it knows nothing of is NOT_FOUND.
#[test]
fn credit_ratings_read_what_the_federation_shares() {
    use medmesh_supervision::cases::*;
    use medmesh_supervision::credit::Grade;
    let mut kv = seeded();
    let rating = |kv: &MemKv, institution: InstitutionId, today: &str| {
        run_query(kv, &Query::CreditRating { institution, today: day(today) })
    };
    let clean = rating(&kv, inst(), "2026-12-04").unwrap();
    assert!(matches!(&clean, Answer::CreditRating(r) if (r.score, r.grade) == (100, Grade::A)), "{clean:?}");
    let elsewhere = InstitutionId::new("H310000-07").unwrap();
    let e = rating(&kv, elsewhere.clone(), "2026-12-04").unwrap_err();
    assert_eq!((e.code, e.field.as_str()), (ErrorCode::NotFound, "institution_id"));
    // Irregular use, 23,456.78 yuan recovered: 100 - 10 - 2 = 88, grade B, until three years on.
    let outcome = CaseOutcome {
        province: prov("310000"),
        case_id: "SH-9".into(),
        institution: elsewhere.clone(),
        personnel: vec![],
        violation: ViolationType::Irregular,
        recovered: m("23456.78"),
        fine: m("23456.78"),
        agreement: AgreementAction::Keep,
        department: None,
        decided_on: day("2025-03-01"),
        executed_on: day("2025-03-02"),
        reason: "irregular".into(),
    };
    ok(&one(&mut kv, ProvinceCommand::SyncShared { items: vec![(1, SharedItem::CaseOutcome(outcome))] }));
    let graded = |kv: &MemKv, today: &str| match rating(kv, elsewhere.clone(), today).unwrap() {
        Answer::CreditRating(r) => (r.score, r.grade),
        other => panic!("{other:?}"),
    };
    assert_eq!(graded(&kv, "2026-12-04"), (88, Grade::B));
    assert_eq!(graded(&kv, "2028-03-01"), (100, Grade::A), "three years after the decision");
    let grades = run_query(
        &kv,
        &Query::CreditGrades {
            institutions: vec![inst(), elsewhere.clone(), InstitutionId::new("H9").unwrap()],
            today: day("2026-12-04"),
        },
    )
    .unwrap();
    assert_eq!(grades, Answer::CreditGrades(vec![Some((Grade::A, false)), Some((Grade::B, false)), None]));
}

/// A local inpatient stay of the test person at the insured province, admitted on `admitted`
/// and discharged (settled) today.
fn local_stay(kv: &mut MemKv, visit: &str, serial: &str, admitted: &str) -> CommandResult {
    visit_of(kv, visit, "200", VisitKind::Inpatient, admitted);
    one(kv, settle_cmd(serial, visit))
}

fn cross_regional_rules(kv: &mut MemKv) {
    for r in medmesh_monitor::shipped_rules().into_iter().filter(|r| r.id.starts_with("XR-")) {
        ok(&one(kv, ProvinceCommand::PutRule(r)));
    }
}

/// Issue 11.4: every fund-paid claim of a person passes through the insured province (local
/// care directly, non-local care at reservation), so its care index is the person's whole,
/// cross-regional history, kept at home. A non-local stay overlapping a local one is refused
/// at reservation, before the second payment, and a local stay overlapping a non-local one is
/// refused at settlement; a voided reservation leaves the index. No national round trip.
#[test]
fn overlapping_stays_in_two_provinces_are_caught_before_the_second_payment() {
    // Local first: the non-local stay is refused by the insured province.
    let mut t = trio();
    cross_regional_rules(&mut t.insured);
    settled(&local_stay(&mut t.insured, "VL", "SL", "2025-03-01"));
    nonlocal_visit_on(&mut t, "V1", "300", Some(FilingKind::LongTermResident), "2025-03-05");
    assert!(matches!(ok(&one(&mut t.treatment, settle_cmd("S1", "V1"))), Outcome::TransferOpen(_)));
    let (_, reserve) = claim_of(&t, "S1");
    let before = fund(&t.insured);
    let e = one(&mut t.insured, reserve.clone()).unwrap_err();
    assert_eq!((e.code, e.field.as_str()), (ErrorCode::FailedPrecondition, "visit_serial"));
    assert!(e.message.contains("XR-01"), "{e}");
    assert_eq!(fund(&t.insured), before, "nothing reserved");
    // The pre-settlement quote says so too.
    let q = match reserve {
        ProvinceCommand::Reserve { transfer, handle, claim, .. } => {
            Query::RemoteQuote { handle, claim, now: NOW, transfer }
        }
        other => panic!("{other:?}"),
    };
    assert!(run_query(&t.insured, &q).unwrap_err().message.contains("XR-01"));

    // Non-local first: the local stay is refused; once the non-local one is voided, it settles.
    let mut t = trio();
    cross_regional_rules(&mut t.insured);
    nonlocal_visit_on(&mut t, "V1", "300", Some(FilingKind::LongTermResident), "2025-03-05");
    assert!(matches!(ok(&one(&mut t.treatment, settle_cmd("S1", "V1"))), Outcome::TransferOpen(_)));
    let (x, reserve) = claim_of(&t, "S1");
    ok(&one(&mut t.insured, reserve));
    let e = local_stay(&mut t.insured, "VL", "SL", "2025-03-01").unwrap_err();
    assert!(e.message.contains("XR-01"), "{e}");
    ok(&one(&mut t.insured, ProvinceCommand::ResolveReservation { transfer: x.id, decision: Decision::Abort }));
    settled(&one(&mut t.insured, settle_cmd("SL", "VL")));
}

/// The treatment province's own rules judge a visitor's claim before anything is asked of the
/// insured province: those that read nothing of the person or the person's care (which only
/// the insured province holds) run on the claim as this province registered it. A block
/// refuses the settlement here, naming the rule, and opens nothing; a self-pay line reaches
/// the insured province with the claim and the fund pays nothing for it; a flag joins this
/// province's review queue once the settlement is recorded. Its rules that read the person or
/// history, and the national rules (which the insured province runs), do not run here.
#[test]
fn the_treatment_provinces_own_rules_judge_a_visitors_claim() {
    use medmesh_monitor::{Action, Target};
    use std::collections::BTreeMap;
    let mut t = trio();
    let mut ceiling = monitoring_rule("T-CEIL", Action::SelfPay, "line.amount_fen > 25000");
    ceiling.target = Target::Line;
    for r in [
        ceiling,
        monitoring_rule("T-FLAG", Action::Flag, "institution.level >= 1 && claim.nonlocal"),
        monitoring_rule("T-BLOCK", Action::Block, "claim.total_fen > 50000"),
        // These would refuse every claim, were they run on a visitor.
        monitoring_rule("T-AGE", Action::Block, "person.age >= 0"),
        monitoring_rule("T-HIST", Action::Block, "history.visits_last_30_days >= 0"),
        monitoring_rule("T-SEEN", Action::Block, "lines.exists(l, l.billed_elsewhere >= 0)"),
    ] {
        ok(&one(&mut t.treatment, ProvinceCommand::PutRule(r)));
    }
    let national = monitoring_rule("NAT-X", Action::Block, "claim.total_fen > 0");
    ok(&one(&mut t.treatment, ProvinceCommand::SyncShared { items: vec![(1, SharedItem::Rule(national))] }));

    // ¥300.00 on one line, above the ¥250.00 ceiling: the patient pays it in full.
    nonlocal_visit(&mut t, "V1", "300", Some(FilingKind::LongTermResident));
    let (_, reserve) = {
        assert!(matches!(ok(&one(&mut t.treatment, settle_cmd("S1", "V1"))), Outcome::TransferOpen(_)));
        claim_of(&t, "S1")
    };
    match &reserve {
        ProvinceCommand::Reserve { claim, .. } => {
            assert_eq!(claim.rule_self_pay, BTreeMap::from([(ser("L1"), "T-CEIL".to_string())]));
        }
        other => panic!("{other:?}"),
    }
    assert!(alerts_of(&t.treatment).is_empty(), "a flag waits for the settlement");
    let s = commit(&mut t, "S1", "V1");
    assert_eq!(s.split.lines[0].rule.as_deref(), Some("T-CEIL"));
    assert_eq!(s.split.lines[0].self_pay_reason, Some(medmesh_settlement::SelfPayReason::MonitoringRule));
    assert_eq!((s.split.fund_total(), s.split.person_total()), (Money::ZERO, m("300")));
    let alerts = alerts_of(&t.treatment);
    assert_eq!(alerts.len(), 1, "{alerts:?}");
    assert_eq!((alerts[0].rule.as_str(), alerts[0].settlement.as_str()), ("T-FLAG", "S1"));
    assert!(alerts_of(&t.insured).is_empty(), "the insured province has no rules here");

    // ¥600.00: refused at the treatment province, and nothing opened.
    nonlocal_visit(&mut t, "V2", "600", Some(FilingKind::LongTermResident));
    let e = one(&mut t.treatment, settle_cmd("S2", "V2")).unwrap_err();
    assert_eq!((e.code, e.field.as_str()), (ErrorCode::FailedPrecondition, "visit_serial"));
    assert!(e.message.contains("T-BLOCK v1"), "{e}");
    let q = Query::TransferClaim { institution: inst(), serial: ser("S2") };
    assert_eq!(run_query(&t.treatment, &q).unwrap_err().code, ErrorCode::NotFound);
    // The quote meets the same rule.
    let q = Query::VisitClaim { institution: inst(), visit: ser("V2"), use_individual_account: false, now: NOW };
    assert!(run_query(&t.treatment, &q).unwrap_err().message.contains("T-BLOCK"));
    mesh_conserved(&t);

    // The insured province checks what it is sent: a self-pay line the claim does not hold.
    let forged = match reserve {
        ProvinceCommand::Reserve { transfer, handle, person_key, mut claim } => {
            claim.rule_self_pay.insert(ser("L9"), "T-CEIL".into());
            ProvinceCommand::Reserve { transfer, handle, person_key, claim }
        }
        other => panic!("{other:?}"),
    };
    let e = one(&mut t.insured, forged).unwrap_err();
    assert_eq!((e.code, e.field.as_str()), (ErrorCode::InvalidArgument, "claim.rule_self_pay"));

    // Testing a rule on the visitor's visit, and a post-payment scan over the visitor's
    // settlement, hold to the same line: only a rule that reads nothing of the person runs.
    let test = |rule: medmesh_monitor::Rule| Query::TestRule { rule, institution: inst(), visit: ser("V1"), now: NOW };
    match run_query(&t.treatment, &test(monitoring_rule("T-NEW", Action::Flag, "claim.total_fen > 100"))).unwrap() {
        Answer::Verdict(v) => assert_eq!(v.hits.len(), 1, "{v:?}"),
        other => panic!("{other:?}"),
    }
    let e = run_query(&t.treatment, &test(monitoring_rule("T-NEW", Action::Flag, "person.age > 60"))).unwrap_err();
    assert_eq!((e.code, e.field.as_str()), (ErrorCode::FailedPrecondition, "rule.condition"));
    let scan = |rule_id: &str| ProvinceCommand::ScanRule {
        rule_id: rule_id.into(),
        from: day("2025-01-01"),
        to: day("2025-12-31"),
        after: String::new(),
        limit: 100,
    };
    ok(&one(
        &mut t.treatment,
        ProvinceCommand::PutRule(monitoring_rule("LATE", Action::Flag, "claim.total_fen > 100")),
    ));
    let scanned = |r: CommandResult| match ok(&r) {
        Outcome::Scanned(r) => (r.checked, r.raised),
        other => panic!("{other:?}"),
    };
    assert_eq!(scanned(one(&mut t.treatment, scan("LATE"))), (1, 1), "the visitor's settlement S1");
    assert_eq!(scanned(one(&mut t.treatment, scan("T-AGE"))), (0, 0), "a rule reading the person skips it");
    assert_eq!(
        alerts_of(&t.treatment).last().map(|a| (a.rule.clone(), a.settlement.clone())),
        Some(("LATE".into(), ser("S1")))
    );

    // The flag becomes a case here: it suspends the agreement and scores the doctor, but
    // recovers nothing from the visitor's settlement, whose fund share was 310000's.
    {
        use medmesh_supervision::cases::*;
        let step = |c: CaseCommand| ProvinceCommand::Case(c);
        let c = case_of(&one(
            &mut t.treatment,
            step(CaseCommand::Open {
                id: "C1".into(),
                province: prov("110000"),
                source: CaseSource::Alert(alerts[0].seq),
                institution: inst(),
                settlements: vec![],
            }),
        ));
        assert_eq!((c.settlements.clone(), c.involved), (vec![ser("S1")], Money::ZERO));
        case_of(&one(&mut t.treatment, step(CaseCommand::Investigate { id: "C1".into(), finding: "f".into() })));
        let decision =
            |recover, tenths| DecisionInput { discipline_days: 0, handoff: None, ..case_decision(recover, tenths) };
        let e = one(&mut t.treatment, step(CaseCommand::Decide { id: "C1".into(), decision: decision(m("0.01"), 10) }))
            .unwrap_err();
        assert_eq!((e.code, e.field.as_str()), (ErrorCode::InvalidArgument, "recover"));
        assert!(e.message.contains("S1") && e.message.contains("310000"), "{e}");
        let before = fund(&t.treatment);
        case_of(&one(
            &mut t.treatment,
            step(CaseCommand::Decide { id: "C1".into(), decision: decision(Money::ZERO, 0) }),
        ));
        let c = case_of(&one(&mut t.treatment, step(CaseCommand::Execute { id: "C1".into() })));
        assert_eq!(c.state, CaseState::Executed);
        assert_eq!(fund(&t.treatment), before, "no money moves");
        let hold: AgreementHold = crate::kv::load(&t.treatment, &keys::agreement_hold(&inst())).unwrap();
        assert_eq!(hold.case_id, "C1");
    }
}

/// National rules are recorded at the federation and copied into every province through the
/// shared log; a province cannot take over a national rule's id, and a rule that does not
/// compile is never stored, wherever it comes from.
#[test]
fn national_rules_reach_provinces_through_the_shared_log() {
    use medmesh_monitor::Action;
    let mut t = trio();
    let r1 = monitoring_rule("NAT-1", Action::Flag, "claim.total_fen > 100");
    ok(&one(&mut t.federation, FederationCommand::PutRule(r1.clone())));
    ok(&one(&mut t.federation, FederationCommand::PutRule(r1.clone())));
    let mut r2 = r1.clone();
    r2.version = 2;
    r2.condition = "claim.total_fen > 200".into();
    ok(&one(&mut t.federation, FederationCommand::PutRule(r2.clone())));
    let bad = monitoring_rule("NAT-2", Action::Flag, "claim.total_fen > 1.5");
    assert_eq!(one(&mut t.federation, FederationCommand::PutRule(bad.clone())).unwrap_err().field, "rule.condition");
    let mut items = match run_query(&t.federation, &Query::SharedLog { after: 0, limit: 10 }).unwrap() {
        Answer::SharedLog(items) => items,
        other => panic!("{other:?}"),
    };
    assert_eq!(items.len(), 2, "one entry per new version");
    // A forged item that does not compile is skipped by the province.
    items.push((3, SharedItem::Rule(bad)));
    ok(&one(&mut t.insured, ProvinceCommand::SyncShared { items }));
    match run_query(&t.insured, &Query::Rules).unwrap() {
        Answer::Rules(rules) => {
            assert_eq!(rules.len(), 1);
            assert_eq!((rules[0].rule.version, rules[0].national), (2, true));
            assert_eq!(rules[0].rule.condition, r2.condition);
        }
        other => panic!("{other:?}"),
    }
    let mut own = r2.clone();
    own.version = 3;
    let e = one(&mut t.insured, ProvinceCommand::PutRule(own)).unwrap_err();
    assert_eq!((e.code, e.field.as_str()), (ErrorCode::FailedPrecondition, "rule.id"));
    // The national rule runs at settlement like the province's own.
    visit_and_lines(&mut t.insured, "V1", "300");
    settled(&one(&mut t.insured, settle_cmd("S1", "V1")));
    assert_eq!(alerts_of(&t.insured)[0].rule, "NAT-1");
}

/// A post-payment scan runs a rule recorded after the claims were paid over a period's
/// settlements, a bounded batch at a time and resumable; each settlement's hits become alerts
/// once, however often the scan is run.
#[test]
fn a_post_payment_scan_is_batched_resumable_and_raises_each_alert_once() {
    use medmesh_monitor::Action;
    let mut kv = seeded();
    for (v, s, price) in [("V1", "S1", "300"), ("V2", "S2", "5"), ("V3", "S3", "400")] {
        visit_and_lines(&mut kv, v, price);
        settled(&one(&mut kv, settle_cmd(s, v)));
    }
    ok(&one(&mut kv, ProvinceCommand::PutRule(monitoring_rule("LATE", Action::Block, "claim.total_fen > 10000"))));
    let scan = |after: &str, limit, from: &str| ProvinceCommand::ScanRule {
        rule_id: "LATE".into(),
        from: day(from),
        to: day("2025-03-31"),
        after: after.into(),
        limit,
    };
    let report = |r: CommandResult| match ok(&r) {
        Outcome::Scanned(r) => r,
        other => panic!("{other:?}"),
    };
    let mut after = String::new();
    let mut total = (0, 0, 0);
    let mut steps = 0;
    loop {
        let r = report(one(&mut kv, scan(&after, 2, "2025-03-01")));
        total = (total.0 + r.scanned, total.1 + r.checked, total.2 + r.raised);
        steps += 1;
        if r.next.is_empty() {
            break;
        }
        after = r.next;
    }
    assert_eq!(steps, 2, "three settlements, two a step");
    assert_eq!(total, (3, 3, 2), "S1 (300) and S3 (400) break the rule, S2 (5) does not");
    let mut flagged: Vec<String> = alerts_of(&kv).into_iter().map(|a| a.settlement.to_string()).collect();
    flagged.sort();
    assert_eq!(flagged, vec!["S1", "S3"], "a block after payment is an alert");
    let again = report(one(&mut kv, scan("", 10, "2025-03-01")));
    assert_eq!((again.checked, again.raised), (1, 0), "S2 checked again, nothing raised twice");
    let outside = report(one(&mut kv, scan("", 10, "2025-03-11")));
    assert_eq!(outside.checked, 0, "outside the period");
    let unknown = ProvinceCommand::ScanRule {
        rule_id: "NONE".into(),
        from: day("2025-03-01"),
        to: day("2025-03-31"),
        after: String::new(),
        limit: 10,
    };
    let e = one(&mut kv, unknown).unwrap_err();
    assert_eq!((e.code, e.field.as_str()), (ErrorCode::NotFound, "rule_id"));
    let e = one(&mut kv, scan("", 0, "2025-03-01")).unwrap_err();
    assert_eq!(e.field, "page_size");
}

/// Of two cases' agreement holds, the stronger stands: an ended agreement stays ended.
#[test]
fn a_later_shorter_suspension_never_lifts_an_ended_agreement() {
    use medmesh_supervision::cases::*;
    let mut kv = seeded();
    for (v, s) in [("V1", "S1"), ("V2", "S2")] {
        visit_and_lines(&mut kv, v, "300");
        settled(&one(&mut kv, settle_cmd(s, v)));
    }
    for (id, settlement, agreement) in [("C1", "S1", AgreementAction::End), ("C2", "S2", AgreementAction::Suspend(1))] {
        let step = |c| ProvinceCommand::Case(c);
        case_of(&one(
            &mut kv,
            step(CaseCommand::Open {
                id: id.into(),
                province: prov("110000"),
                source: CaseSource::Inspection("I-1".into()),
                institution: inst(),
                settlements: vec![ser(settlement)],
            }),
        ));
        case_of(&one(&mut kv, step(CaseCommand::Investigate { id: id.into(), finding: "f".into() })));
        let decision = DecisionInput {
            violation: ViolationType::Fraud,
            recover: m("1"),
            fine_tenths: 20,
            agreement,
            scored: vec![],
            discipline_days: 0,
            handoff: None,
            reason: "r".into(),
        };
        case_of(&one(&mut kv, step(CaseCommand::Decide { id: id.into(), decision })));
        case_of(&one(&mut kv, step(CaseCommand::Execute { id: id.into() })));
    }
    let hold: AgreementHold = crate::kv::load(&kv, &keys::agreement_hold(&inst())).unwrap();
    assert_eq!((hold.case_id.as_str(), hold.until), ("C1", None));
    assert_eq!(fund(&kv).ledger.recovered, m("2"));
}

fn line(serial: &str, code: &str, price: &str) -> FeeLine {
    FeeLine {
        serial: ser(serial),
        code: ItemCode::new(code).unwrap(),
        quantity: dec!(2),
        unit_price: m(price),
        date: day("2025-03-10"),
    }
}

fn settle_with(serial: &str, visit: &str, lines: Vec<FeeLine>) -> ProvinceCommand {
    ProvinceCommand::SettleWithLines {
        institution: inst(),
        serial: ser(serial),
        visit: ser(visit),
        use_individual_account: true,
        lines,
    }
}

fn visit_lines(kv: &MemKv, visit: &str) -> usize {
    match run_query(kv, &Query::Visit { institution: inst(), visit: ser(visit) }).unwrap() {
        Answer::Visit(v) => v.lines.len(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn settle_with_lines_is_upload_then_settle_in_one_command() {
    // The step-by-step flow is the expectation: two commands against one.
    let mut steps = seeded();
    visit_and_lines(&mut steps, "V1", "80.00");
    let upload =
        ProvinceCommand::UploadFees { institution: inst(), visit: ser("V1"), lines: vec![line("L2", "X1", "35.50")] };
    let r = run(&mut steps, vec![upload, settle_cmd("S1", "V1")]);
    let expected = ok(&r[1]);
    let mut one_call = seeded();
    visit_and_lines(&mut one_call, "V1", "80.00");
    let got = ok(&one(&mut one_call, settle_with("S1", "V1", vec![line("L2", "X1", "35.50")])));
    assert_eq!(got, expected);
    assert_eq!(fund(&one_call), fund(&steps));
    assert_eq!(visit_lines(&one_call, "V1"), 2);
    conserved(&one_call);
    // A retry with the same serial is the same settlement; nothing is uploaded or paid twice.
    assert_eq!(ok(&one(&mut one_call, settle_with("S1", "V1", vec![line("L2", "X1", "35.50")]))), expected);
    assert_eq!(fund(&one_call), fund(&steps));
    assert_eq!(visit_lines(&one_call, "V1"), 2);
}

#[test]
fn settle_with_lines_is_both_or_neither() {
    let mut kv = seeded();
    visit_and_lines(&mut kv, "V1", "80.00");
    let before = fund(&kv);
    // A line the catalogue does not know: nothing is uploaded, nothing settled.
    let e =
        one(&mut kv, settle_with("S1", "V1", vec![line("L2", "X1", "1.00"), line("L3", "NOPE", "1.00")])).unwrap_err();
    assert_eq!(e.field, "lines[1].code");
    assert_eq!(visit_lines(&kv, "V1"), 1);
    assert_eq!(fund(&kv), before);
    // Settling fails after the upload would have succeeded (the visit is settled by another
    // serial): the upload is not kept either.
    ok(&one(&mut kv, settle_cmd("S1", "V1")));
    let settled = fund(&kv);
    let e = one(&mut kv, settle_with("S2", "V1", vec![line("L4", "X1", "1.00")])).unwrap_err();
    assert_eq!(e.field, "visit_serial", "{e}");
    assert_eq!(visit_lines(&kv, "V1"), 1);
    assert_eq!(fund(&kv), settled);
    // No lines at all is refused by validation, naming the field.
    assert_eq!(one(&mut kv, settle_with("S3", "V1", vec![])).unwrap_err().field, "lines");
}
