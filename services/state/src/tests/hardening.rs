//! Issue 9: no command, whatever its origin, can poison a province. Each test here failed (or
//! panicked) before the fix it guards.

use proptest::prelude::*;

use super::*;

fn fee_line(serial: &str, quantity: rust_decimal::Decimal, price: Money) -> FeeLine {
    FeeLine {
        serial: ser(serial),
        code: ItemCode::new("X1").unwrap(),
        quantity,
        unit_price: price,
        date: day("2025-03-10"),
    }
}

fn quote_of(kv: &MemKv, visit: &str) -> Result<Answer, DomainError> {
    run_query(kv, &Query::PreSettle { institution: inst(), visit: ser(visit), use_individual_account: false, now: NOW })
}

/// A line of 99,999 × 99,999,999,999 used to be stored and made the visit unreadable.
#[test]
fn an_oversize_fee_line_is_refused_and_the_visit_stays_readable() {
    let mut kv = seeded();
    visit_and_lines(&mut kv, "V1", "300");
    let huge = ProvinceCommand::UploadFees {
        institution: inst(),
        visit: ser("V1"),
        lines: vec![fee_line("L2", dec!(99999), m("99999999999"))],
    };
    let e = one(&mut kv, huge).unwrap_err();
    assert_eq!((e.code, e.field.as_str()), (ErrorCode::InvalidArgument, "lines[0].unit_price"), "{e}");
    // Lines each within the limit but together above the claim limit are refused as a whole.
    let many: Vec<FeeLine> = (0..11).map(|i| fee_line(&format!("M{i}"), dec!(1), m("10000000"))).collect();
    let e =
        one(&mut kv, ProvinceCommand::UploadFees { institution: inst(), visit: ser("V1"), lines: many }).unwrap_err();
    assert_eq!((e.code, e.field.as_str()), (ErrorCode::InvalidArgument, "lines"), "{e}");
    // The visit still quotes: 300 yuan, as uploaded before.
    match quote_of(&kv, "V1").unwrap() {
        Answer::Quote(s) => assert_eq!(s.total, m("300")),
        o => panic!("{o:?}"),
    }
}

/// Running totals grow past the wire limit of 100 billion yuan and still read back.
#[test]
fn totals_above_the_wire_limit_still_read_back() {
    let mut kv = seeded();
    let before = fund(&kv).ledger.contributions;
    for i in 0..25 {
        ok(&one(
            &mut kv,
            ProvinceCommand::Contribute {
                serial: ser(&format!("BIG{i}")),
                amount: m("100000000000"),
                source: "x".into(),
                fund: Fund::Pooling,
            },
        ));
    }
    let after = fund(&kv).ledger.contributions;
    assert_eq!(after - before, Money::from_fen(25 * 100_000_000_000 * 100));
}

/// A province group refuses federation commands and the federation refuses province ones.
#[test]
fn each_group_accepts_only_its_role() {
    let mut kv = seeded();
    let top =
        FederationCommand::TopUp { province: prov("110000"), serial: ser("T1"), amount: m("5"), warning_below: None };
    let (r, w) = apply_batch(&kv, &Batch::of(NOW, vec![top]), Role::Province);
    let e = r[0].clone().unwrap_err();
    assert_eq!((e.code, e.field.as_str()), (ErrorCode::InvalidArgument, "command"), "{e}");
    assert!(
        w.keys().all(|k| k.as_slice() == keys::TIME.as_bytes() || k.starts_with(b"~audit/")),
        "nothing but the time and the refusal's audit entry is written"
    );
    kv.write(w);
    let fed = MemKv::default();
    let (r, _) = apply_batch(&fed, &Batch::of(NOW, vec![settle_cmd("S1", "V1")]), Role::Federation);
    assert_eq!(r[0].clone().unwrap_err().field, "command");
}

/// Amounts a forged command carries are checked in apply, not only at the gRPC edge.
#[test]
fn forged_amounts_are_refused_by_apply() {
    let mut kv = seeded();
    let neg = Money::ZERO - m("5");
    let e = one(
        &mut kv,
        ProvinceCommand::Contribute { serial: ser("N1"), amount: neg, source: String::new(), fund: Fund::Pooling },
    )
    .unwrap_err();
    assert_eq!((e.code, e.field.as_str()), (ErrorCode::InvalidArgument, "amount"));
    let vast = Money::from_fen(i64::MAX) + Money::from_fen(i64::MAX);
    let e = one(
        &mut kv,
        ProvinceCommand::Contribute { serial: ser("N2"), amount: vast, source: String::new(), fund: Fund::Pooling },
    )
    .unwrap_err();
    assert_eq!((e.code, e.field.as_str()), (ErrorCode::InvalidArgument, "amount"));
    let mut f = MemKv::default();
    let top =
        FederationCommand::TopUp { province: prov("110000"), serial: ser("T1"), amount: vast, warning_below: None };
    assert_eq!(one(&mut f, top).unwrap_err().field, "amount");
    // A forged reservation whose parts do not add up never reaches the treatment ledger.
    let mut t = trio();
    nonlocal_visit(&mut t, "V1", "300", Some(FilingKind::LongTermResident));
    ok(&one(&mut t.treatment, settle_cmd("S1", "V1")));
    let (x, _) = claim_of(&t, "S1");
    let split = match quote_of(&seeded_with_visit(), "V1").unwrap() {
        Answer::Quote(s) => s,
        o => panic!("{o:?}"),
    };
    let mut forged = split.clone();
    forged.pooling_fund += m("1000");
    let e =
        one(&mut t.treatment, ProvinceCommand::TransferReserved { transfer: x.id.clone(), split: forged }).unwrap_err();
    assert_eq!((e.code, e.field.as_str()), (ErrorCode::InvalidArgument, "split.total"), "{e}");
}

fn seeded_with_visit() -> MemKv {
    let mut kv = seeded();
    visit_and_lines(&mut kv, "V1", "300");
    kv
}

/// Entries with a time outside 2000–2199 are refused whole; a leap ahead moves the group's
/// time by at most [`MAX_CLOCK_STEP_MS`].
#[test]
fn entry_time_is_bounded() {
    let kv = seeded();
    let c =
        ProvinceCommand::Contribute { serial: ser("TT"), amount: m("1"), source: String::new(), fund: Fund::Pooling };
    for t in [i64::MAX, i64::MIN, 0, LogTime::MAX_VALID.millis() + 1] {
        let (r, w) = apply_batch(&kv, &Batch::of(LogTime(t), vec![c.clone()]), Role::Province);
        assert_eq!(r[0].clone().unwrap_err().field, "time", "{t}");
        assert!(w.is_empty(), "nothing written for time {t}");
    }
    let year_ahead = LogTime(NOW.millis() + 365 * 86_400_000);
    let (r, w) = apply_batch(&kv, &Batch::of(year_ahead, vec![c]), Role::Province);
    assert!(r[0].is_ok());
    let mut kv = kv;
    kv.write(w);
    let stored: LogTime = crate::kv::load(&kv, keys::TIME).unwrap();
    assert_eq!(stored, LogTime(NOW.millis() + MAX_CLOCK_STEP_MS), "moved by one step only");
    // Time never goes back.
    assert_eq!(group_time(Some(stored), NOW).unwrap(), stored);
}

/// The discipline check used to read only the first 64 entries of a subject: an entry in force
/// that sorted after 64 expired ones was missed.
#[test]
fn an_entry_in_force_after_many_expired_ones_is_found() {
    let mut p = seeded_with_visit();
    let entry = |i: usize, from: &str, until: &str| DisciplineEntry {
        id: format!("A{i:03}"),
        subject: DisciplineSubject::Institution(inst()),
        province: prov("440000"),
        from: day(from),
        until: day(until),
        reason: "old case".into(),
    };
    for i in 0..80 {
        ok(&one(&mut p, ProvinceCommand::RecordDiscipline(entry(i, "2020-01-01", "2020-12-31"))));
    }
    ok(&one(&mut p, ProvinceCommand::RecordDiscipline(entry(900, "2025-03-01", "2025-12-31"))));
    let e = one(&mut p, settle_cmd("S1", "V1")).unwrap_err();
    assert_eq!((e.code, e.field.as_str()), (ErrorCode::FailedPrecondition, "institution_id"), "{e}");
    assert!(e.message.contains("A900"), "{e}");
}

/// Valid commands of every role, the seeds of the mutation test.
fn case_decision() -> medmesh_supervision::cases::DecisionInput {
    use medmesh_supervision::cases::*;
    DecisionInput {
        violation: ViolationType::Irregular,
        recover: m("1"),
        fine_tenths: 10,
        agreement: AgreementAction::Suspend(2),
        scored: vec![Scored {
            personnel: PersonnelCode::new("D001").unwrap(),
            points: 2,
            severity: medmesh_supervision::Severity::new(1).unwrap(),
        }],
        discipline_days: 10,
        handoff: None,
        reason: "r".into(),
    }
}

fn corpus() -> Vec<Command> {
    let v = medmesh_supervision::Violation {
        personnel: PersonnelCode::new("D001").unwrap(),
        id: "V-1".into(),
        decided_on: day("2025-03-01"),
        points: 3,
        severity: medmesh_supervision::Severity::new(2).unwrap(),
        province: prov("440000"),
    };
    let d = DisciplineEntry {
        id: "JD".into(),
        subject: DisciplineSubject::Institution(inst()),
        province: prov("440000"),
        from: day("2025-03-01"),
        until: day("2025-12-31"),
        reason: "r".into(),
    };
    let lift = DisciplineLift {
        subject: d.subject.clone(),
        id: d.id.clone(),
        province: prov("440000"),
        lifted_on: day("2025-04-01"),
        reason: "appeal upheld".into(),
    };
    let incentive = medmesh_supervision::credit::Incentive {
        province: prov("110000"),
        id: "JI-1".into(),
        party: medmesh_supervision::credit::Party::Personnel(PersonnelCode::new("D001").unwrap()),
        from: day("2025-01-01"),
        until: day("2026-12-31"),
        reason: "graded A three years running".into(),
    };
    let referral = ReportMessage {
        from: prov("310000"),
        to: prov("110000"),
        origin_id: "R-00000001".into(),
        body: ReportMessageBody::Referral {
            institution: inst(),
            summary: "stays billed that never happened".into(),
            anonymous: true,
            received_on: day("2025-03-01"),
        },
    };
    let t = TransferId { treatment: prov("110000"), institution: inst(), serial: ser("S9") };
    let split = match quote_of(&seeded_with_visit(), "V1").unwrap() {
        Answer::Quote(s) => s,
        o => panic!("{o:?}"),
    };
    let kb = medmesh_monitor::demo_knowledge_base();
    let province = vec![
        ProvinceCommand::PutRule(medmesh_monitor::shipped_rules().remove(5)),
        ProvinceCommand::PutKnowledge(medmesh_monitor::Knowledge::Item(kb.items["DRUG-CEFTRIAXONE"].clone())),
        ProvinceCommand::PutKnowledge(medmesh_monitor::Knowledge::Diagnosis(kb.diagnoses["O80"].clone())),
        ProvinceCommand::UploadFees {
            institution: inst(),
            visit: ser("V1"),
            lines: vec![fee_line("L7", dec!(2.5), m("12.30"))],
        },
        settle_cmd("S1", "V1"),
        ProvinceCommand::SettleWithLines {
            institution: inst(),
            serial: ser("S2"),
            visit: ser("V1"),
            use_individual_account: false,
            lines: vec![fee_line("L8", dec!(1), m("3.00"))],
        },
        ProvinceCommand::Reverse { institution: inst(), serial: ser("R1"), settlement: ser("S1") },
        ProvinceCommand::Contribute {
            serial: ser("C9"),
            amount: m("1000"),
            source: "payroll".into(),
            fund: Fund::Pooling,
        },
        ProvinceCommand::RecordViolation(v.clone()),
        ProvinceCommand::RecordDiscipline(d.clone()),
        ProvinceCommand::LiftDiscipline {
            province: prov("440000"),
            subject: d.subject.clone(),
            id: d.id.clone(),
            reason: "appeal upheld".into(),
        },
        ProvinceCommand::ReceiveReports { province: prov("110000"), items: vec![(1, referral.clone())] },
        ProvinceCommand::RecordCommitment {
            province: prov("110000"),
            party: medmesh_supervision::credit::Party::Institution(inst()),
            id: "NC-1".into(),
            text: "the licences declared are held".into(),
            verify_by: day("2025-12-31"),
        },
        ProvinceCommand::ResolveCommitment {
            province: prov("110000"),
            party: medmesh_supervision::credit::Party::Institution(inst()),
            id: "NC-1".into(),
            kept: false,
            finding: "no licence on file".into(),
        },
        ProvinceCommand::RecordIncentive(incentive.clone()),
        ProvinceCommand::Report(crate::reports::ReportCommand::Submit {
            serial: "CH-1".into(),
            fingerprint: medmesh_types::KeyedHash::new("ab".repeat(32)).unwrap(),
            receipt: medmesh_types::KeyedHash::new("cd".repeat(32)).unwrap(),
            institution: medmesh_types::InstitutionId::new("H310000-01").unwrap(),
            summary: "s".into(),
            reporter: None,
            route: Some(crate::reports::ReportRoute { here: prov("110000"), to: prov("310000") }),
        }),
        ProvinceCommand::SyncShared {
            items: vec![
                (1, SharedItem::Violation(v.clone())),
                (2, SharedItem::Discipline(d.clone())),
                (3, SharedItem::DisciplineLift(lift.clone())),
            ],
        },
        ProvinceCommand::TransferReserved { transfer: t.clone(), split: split.clone() },
        ProvinceCommand::FinishTransfer {
            transfer: t.clone(),
            decision: Decision::Commit,
            reason: String::new(),
            split: Some(split),
        },
        ProvinceCommand::Case(CaseCommand::Open {
            id: "C1".into(),
            province: prov("110000"),
            source: medmesh_supervision::cases::CaseSource::Inspection("I-1".into()),
            institution: inst(),
            settlements: vec![ser("S1")],
        }),
        ProvinceCommand::Case(CaseCommand::Investigate { id: "C1".into(), finding: "f".into() }),
        ProvinceCommand::Case(CaseCommand::Decide { id: "C1".into(), decision: case_decision() }),
        ProvinceCommand::Case(CaseCommand::Execute { id: "C1".into() }),
        ProvinceCommand::Case(CaseCommand::LiftCredit { id: "C1".into(), reason: "annulled".into() }),
        ProvinceCommand::Published { through: 1 },
        ProvinceCommand::PublishAggregate { period: crate::aggregate::AggPeriod::Day(NOW.date()) },
        ProvinceCommand::ScanRule {
            rule_id: medmesh_monitor::shipped_rules().remove(5).id,
            from: day("2025-03-01"),
            to: day("2025-03-31"),
            after: String::new(),
            limit: 10,
        },
    ];
    let federation = vec![
        FederationCommand::TopUp {
            province: prov("110000"),
            serial: ser("T1"),
            amount: m("500"),
            warning_below: Some(m("10")),
        },
        FederationCommand::Vouch { transfer: t.clone(), insured: prov("310000"), amount: m("10") },
        FederationCommand::Decide {
            transfer: t.clone(),
            insured: prov("310000"),
            amount: m("10"),
            decision: Decision::Commit,
            reason: String::new(),
        },
        FederationCommand::Reverse { transfer: t, reversal: ser("R1") },
        FederationCommand::RecordViolation(v),
        FederationCommand::RecordDiscipline(d),
        FederationCommand::RecordDisciplineLift(lift),
        FederationCommand::SendReport(referral),
        FederationCommand::RecordCommitment(medmesh_supervision::credit::Commitment {
            province: prov("440000"),
            id: "NC-1".into(),
            party: medmesh_supervision::credit::Party::Enterprise(
                medmesh_types::EnterpriseCode::new("91110000710925462X").unwrap(),
            ),
            made_on: day("2025-03-01"),
            verify_by: day("2025-04-01"),
            text: "t".into(),
            outcome: Some(medmesh_supervision::credit::CommitmentOutcome {
                kept: false,
                on: day("2025-03-20"),
                finding: "f".into(),
            }),
        }),
        FederationCommand::RecordIncentive(incentive),
        FederationCommand::RecordDeclarationReview(medmesh_supervision::credit::ReviewedDeclaration {
            province: prov("110000"),
            institution: inst(),
            period: "2025-03".into(),
            declared: m("1000"),
            deducted: m("200"),
            reviewed_on: day("2025-04-03"),
            version: 0,
        }),
        FederationCommand::RecordCaseOutcome(medmesh_supervision::cases::CaseOutcome {
            province: prov("440000"),
            case_id: "GD-1".into(),
            institution: inst(),
            personnel: vec![PersonnelCode::new("D001").unwrap()],
            violation: medmesh_supervision::cases::ViolationType::Fraud,
            recovered: m("10"),
            fine: m("20"),
            agreement: medmesh_supervision::cases::AgreementAction::Suspend(6),
            department: None,
            decided_on: day("2025-03-01"),
            executed_on: day("2025-03-02"),
            reason: "r".into(),
        }),
        FederationCommand::RecordCreditLift(medmesh_supervision::credit::Lift {
            province: prov("440000"),
            case_id: "GD-1".into(),
            institution: inst(),
            lifted_on: day("2025-04-01"),
            reason: "annulled".into(),
        }),
        FederationCommand::PutRule(medmesh_monitor::shipped_rules().remove(7)),
        FederationCommand::RunClearing { month: "2025-02".into() },
        FederationCommand::SettleClearing { month: "2025-02".into() },
        FederationCommand::RunClearing { month: "2025-03".into() },
        FederationCommand::Directory { entries: vec![(KEY.into(), prov("310000"))] },
        FederationCommand::RecordAggregate {
            province: prov("110000"),
            aggregate: {
                let mut kv = seeded_with_visit();
                let (_, w) = apply_batch(&kv, &Batch::of(NOW, vec![settle_cmd("S1", "V1")]), Role::Province);
                kv.write(w);
                let mut a = crate::aggregate::compute(&kv, crate::aggregate::AggPeriod::Day(NOW.date())).unwrap();
                a.version = 1;
                Box::new(a)
            },
        },
    ];
    province.into_iter().map(Command::from).chain(federation.into_iter().map(Command::from)).collect()
}

/// What a user could read after any command: none of these may panic.
fn read_everything(kv: &MemKv) {
    let queries = [
        Query::Fund,
        Query::Statement {
            institution: inst(),
            from: day("2025-01-01"),
            to: day("2025-12-31"),
            page_token: String::new(),
            page_size: 10,
        },
        Query::Settlement { institution: inst(), serial: ser("S1") },
        Query::Visit { institution: inst(), visit: ser("V1") },
        Query::PreSettle { institution: inst(), visit: ser("V1"), use_individual_account: true, now: NOW },
        Query::OpenTransfers { limit: 100 },
        Query::PendingReservations { limit: 100 },
        Query::SharedLog { after: 0, limit: 100 },
        Query::Positions,
        Query::Prepaid,
        Query::CreditRating { institution: inst(), today: day("2025-04-02") },
        Query::Clearing { month: "2025-03".into(), page_token: String::new(), page_size: 10 },
        Query::Clearing { month: "2025-02".into(), page_token: String::new(), page_size: 10 },
        Query::Disciplines {
            subject: DisciplineSubject::Institution(inst()),
            page_token: String::new(),
            page_size: 10,
        },
        Query::Qualification { code: PersonnelCode::new("D001").unwrap(), now: NOW },
        Query::Case { id: "C1".into() },
        Query::Cases { after: String::new(), limit: 10 },
        Query::CasePolicy,
        Query::Outbox { limit: 10 },
        Query::CaseOutcomes { institution: inst(), limit: 10 },
        Query::Aggregate { period: crate::aggregate::AggPeriod::Day(NOW.date()) },
        Query::Aggregate { period: crate::aggregate::AggPeriod::Month(medmesh_payment::Period::of(NOW.date())) },
        Query::NationalAggregates { period: crate::aggregate::AggPeriod::Day(NOW.date()), province: None },
    ];
    for q in &queries {
        let _ = run_query(kv, q);
    }
}

/// Mutates the encoding of corpus command `pick` by `edits`, decodes it and applies it in a
/// group of the given role, checking what must always hold. `None` when the bytes do not
/// decode; otherwise whether the command was accepted.
fn mutate_and_apply(corpus: &[Command], pick: usize, edits: &[(usize, u8, u8)], federation: bool) -> Option<bool> {
    let mut bytes = crate::kv::encode(&corpus[pick % corpus.len()]);
    for &(at, byte, how) in edits {
        if bytes.is_empty() {
            break;
        }
        let i = at % bytes.len();
        // Mostly changes in place (which keep the layout and so mostly decode), sometimes a
        // shifted or cut encoding.
        match how % 8 {
            0..=2 => bytes[i] = byte,
            3..=5 => bytes[i] ^= 1 << (byte % 8),
            6 => bytes.insert(i, byte),
            _ => bytes.truncate(i.max(1)),
        }
    }
    let cmd = bincode::deserialize::<Command>(&bytes).ok()?;
    let base = seeded_with_visit();
    let role = if federation { Role::Federation } else { Role::Province };
    let (results, writes) = apply_batch(&base, &Batch::of(NOW, vec![cmd]), role);
    assert_eq!(results.len(), 1);
    if results[0].is_err() {
        // A refused command writes nothing but the group's time and its audit entry.
        let head: Option<crate::audit::AuditHead> = crate::kv::load(&base, keys::AUDIT_HEAD);
        let audit_entry = keys::audit(head.map(|h| h.seq + 1).unwrap_or(1));
        assert!(
            writes
                .keys()
                .all(|k| [keys::TIME, keys::AUDIT_HEAD, audit_entry.as_str()].contains(&&*String::from_utf8_lossy(k))),
            "a refused command wrote"
        );
    }
    let mut after = base;
    after.write(writes);
    read_everything(&after);
    Some(results[0].is_ok())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, ..ProptestConfig::default() })]

    /// Arbitrary commands, made by mutating the encoded bytes of valid ones (as a forged or
    /// corrupted `Propose` would carry them): whatever decodes is applied in a group of either
    /// role. Apply answers `Ok` or a domain error and never panics (a panic fails the case); a
    /// refused command writes nothing but the group's time; everything stays readable.
    #[test]
    fn apply_survives_arbitrary_commands(
        pick in 0usize..16,
        edits in proptest::collection::vec((any::<usize>(), any::<u8>(), any::<u8>()), 1..6),
        federation in any::<bool>(),
    ) {
        mutate_and_apply(&corpus(), pick, &edits, federation);
    }
}

/// The mutation test reaches apply: a fair share of mutated commands decode, and both accepted
/// and refused ones occur (a generator whose output never decoded would prove nothing).
#[test]
fn mutated_commands_reach_apply_both_ways() {
    let corpus = corpus();
    let mut rng = crate::sim::Rng::new(0x9e37_79b9_7f4a_7c15);
    let mut next = move || rng.next_u64();
    let (mut decoded, mut accepted) = (0, 0);
    for n in 0..2_000 {
        let edits: Vec<(usize, u8, u8)> =
            (0..1 + next() % 2).map(|_| (next() as usize, next() as u8, next() as u8)).collect();
        if let Some(ok) = mutate_and_apply(&corpus, n, &edits, next() % 2 == 0) {
            decoded += 1;
            accepted += usize::from(ok);
        }
    }
    assert!(decoded >= 200, "only {decoded} of 2000 mutated commands decoded");
    assert!(accepted > 0 && accepted < decoded, "{accepted} of {decoded} accepted");
}

/// A day with more settlements than a page is listed whole, page by page, each once.
#[test]
fn a_statement_pages_through_a_busy_day() {
    let mut kv = seeded();
    for i in 0..25 {
        visit_and_lines(&mut kv, &format!("V{i:02}"), "10");
        ok(&one(&mut kv, settle_cmd(&format!("S{i:02}"), &format!("V{i:02}"))));
    }
    let page = |token: &str, size: usize| {
        run_query(
            &kv,
            &Query::Statement {
                institution: inst(),
                from: day("2025-03-10"),
                to: day("2025-03-10"),
                page_token: token.into(),
                page_size: size,
            },
        )
    };
    let mut seen = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    loop {
        let Answer::Statement { settlements, next_page_token } = page(&token, 10).unwrap() else { panic!() };
        pages += 1;
        seen.extend(settlements.into_iter().map(|s| s.serial.to_string()));
        if next_page_token.is_empty() {
            break;
        }
        token = next_page_token;
    }
    let expected: Vec<String> = (0..25).map(|i| format!("S{i:02}")).collect();
    assert_eq!((pages, seen), (3, expected));
    for bad in ["garbage", "2025-03-11/S01", "2025-03-10/a b"] {
        assert_eq!(page(bad, 10).unwrap_err().field, "page_token", "{bad}");
    }
    assert_eq!(page("", 0).unwrap_err().field, "page_size");
    assert_eq!(page("", MAX_STATEMENT + 1).unwrap_err().field, "page_size");
}

/// The check apply runs after every command catches a command that pays an institution
/// without the ledger knowing (and passes a real settlement).
#[test]
fn the_ledger_check_catches_a_payable_moved_alone() {
    let kv = seeded_with_visit();
    let (r, writes) = apply_command(&kv, &settle_cmd("S1", "V1").into(), NOW);
    assert!(r.is_ok());
    assert!(crate::apply::payables_follow_the_ledger(&kv, &writes));
    let mut forged = WriteSet::new();
    forged.insert(
        keys::payable(&inst()).into_bytes(),
        Some(crate::kv::encode(&Payable { amount: m("5"), ..Payable::default() })),
    );
    assert!(!crate::apply::payables_follow_the_ledger(&kv, &forged));
}

/// A subject's joint-discipline entries list whole, page by page.
#[test]
fn discipline_entries_page() {
    let mut p = seeded();
    for i in 0..25 {
        let e = DisciplineEntry {
            id: format!("E{i:02}"),
            subject: DisciplineSubject::Institution(inst()),
            province: prov("440000"),
            from: day("2020-01-01"),
            until: day("2020-12-31"),
            reason: "old case".into(),
        };
        ok(&one(&mut p, ProvinceCommand::RecordDiscipline(e)));
    }
    let (mut seen, mut token, mut pages) = (Vec::new(), String::new(), 0);
    loop {
        let q = Query::Disciplines {
            subject: DisciplineSubject::Institution(inst()),
            page_token: token.clone(),
            page_size: 10,
        };
        let Answer::Disciplines { entries, next_page_token } = run_query(&p, &q).unwrap() else { panic!() };
        pages += 1;
        seen.extend(entries.into_iter().map(|(e, _)| e.id));
        if next_page_token.is_empty() {
            break;
        }
        token = next_page_token;
    }
    assert_eq!((pages, seen), (3, (0..25).map(|i| format!("E{i:02}")).collect::<Vec<_>>()));
}

/// A person record holds sealed identity fields, whose `Debug` (logs, panics, errors) shows
/// only their length, never their bytes.
#[test]
fn a_person_debug_shows_no_sealed_bytes() {
    let p = Person {
        key: crate::sim::person_key(),
        masked_id: "110***********1234".into(),
        sealed: medmesh_types::Sealed::new(b"0123456789-sealed-bytes-abcdefgh".to_vec()).unwrap(),
        sex: medmesh_settlement::Sex::Female,
        birth_date: day("1990-03-07"),
        insurance: medmesh_settlement::InsuranceType::Employee,
        status: InsuranceStatus::Active,
        account_balance: m("10"),
        social_security_card: Some(crate::sim::ss1()),
        e_credential: None,
        medical_assistance: false,
    };
    let text = format!("{p:?}");
    assert!(!text.contains("sealed-bytes") && !text.contains("48, 49"), "{text}");
    assert!(text.contains("Sealed(32 bytes)"), "{text}");
}
