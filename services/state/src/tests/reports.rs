//! Reports (issue 13.2) through apply: intake idempotent on the serial, the receipt lookup,
//! the audited read of the sealed reporter, and a reward paid once from the pool on the
//! executed recovery of the case the report opened.

use medmesh_supervision::cases::*;
use medmesh_supervision::reports::{ReportPolicy, ReportState};
use medmesh_types::{InstitutionId, KeyedHash, Money, Sealed};

use crate::reports::{ReportCommand, ReportRecord, ReportRoute};
use crate::*;

use super::{case_of, fund, inst, m, ok, one, prov, seeded, ser, settle_cmd, settled, visit_and_lines, NOW};

fn hash(c: char) -> KeyedHash {
    KeyedHash::new(std::iter::repeat_n(c, 64).collect::<String>()).unwrap()
}

fn submit(serial: &str, fingerprint: char, reporter: bool) -> ProvinceCommand {
    submit_about(serial, fingerprint, reporter, inst())
}

fn submit_about(serial: &str, fingerprint: char, reporter: bool, institution: InstitutionId) -> ProvinceCommand {
    ProvinceCommand::Report(ReportCommand::Submit {
        serial: serial.into(),
        fingerprint: hash(fingerprint),
        receipt: hash(fingerprint),
        institution,
        summary: "stays billed that never happened".into(),
        reporter: reporter.then(|| Sealed::new(vec![7; 60]).unwrap()),
        route: None,
    })
}

fn report(r: &CommandResult) -> ReportRecord {
    match ok(r) {
        Outcome::Report(r) => *r,
        o => panic!("{o:?}"),
    }
}

fn step(c: ReportCommand) -> ProvinceCommand {
    ProvinceCommand::Report(c)
}

/// Submits and accepts a report about `institution`; its id.
pub(super) fn accepted_report(kv: &mut MemKv, serial: &str, institution: &str) -> String {
    let id = report(&one(kv, submit_about(serial, 'a', true, InstitutionId::new(institution).unwrap()))).report.id;
    report(&one(kv, step(ReportCommand::Acknowledge { id: id.clone(), accept: true, note: String::new() })));
    id
}

#[test]
fn intake_is_idempotent_on_the_serial_and_found_by_its_receipt() {
    let mut kv = seeded();
    let r = report(&one(&mut kv, submit("CH-1", 'a', true)));
    assert_eq!(
        (r.report.id.as_str(), r.report.state, r.report.anonymous),
        ("R-00000001", ReportState::Received, false)
    );
    assert_eq!(r.report.acknowledge_by, NOW.date().plus_days(15));
    assert_eq!(report(&one(&mut kv, submit("CH-1", 'a', true))), r, "a retry answers the same report");
    let e = one(&mut kv, submit("CH-1", 'b', true)).unwrap_err();
    assert_eq!((e.code, e.field.as_str()), (ErrorCode::AlreadyExists, "serial"), "{e}");
    let anon = report(&one(&mut kv, submit("CH-2", 'c', false)));
    assert_eq!((anon.report.id.as_str(), anon.report.anonymous), ("R-00000002", true));
    let mut other = submit("CH-3", 'd', false);
    if let ProvinceCommand::Report(ReportCommand::Submit { institution, .. }) = &mut other {
        *institution = medmesh_types::InstitutionId::new("H999").unwrap();
    }
    let e = one(&mut kv, other).unwrap_err();
    assert_eq!((e.code, e.field.as_str()), (ErrorCode::NotFound, "institution_id"), "{e}");
    match run_query(&kv, &Query::ReportByReceipt { receipt: hash('c') }).unwrap() {
        Answer::Report(found) => assert_eq!(found.report.id, "R-00000002"),
        o => panic!("{o:?}"),
    }
    let e = run_query(&kv, &Query::ReportByReceipt { receipt: hash('e') }).unwrap_err();
    assert_eq!((e.code, e.field.as_str()), (ErrorCode::NotFound, "receipt_code"));

    // Unacknowledged after its day, a report is overdue; the list says so by the group's day.
    let later = medmesh_types::LogTime(NOW.0 + 16 * 86_400_000);
    let mut t = NOW;
    while t.0 < later.0 {
        t = medmesh_types::LogTime((t.0 + crate::MAX_CLOCK_STEP_MS).min(later.0));
        let (res, writes) = apply_batch(&kv, &Batch::of::<Command>(t, Vec::new()), Role::Province);
        assert!(res.is_empty());
        kv.write(writes);
    }
    match run_query(&kv, &Query::Reports { after: String::new(), limit: 10 }).unwrap() {
        Answer::Reports { today, reports } => {
            assert_eq!(today, Some(later.date()));
            assert!(reports.iter().all(|r| r.report.overdue(later.date())), "both are late");
            assert!(reports.iter().all(|r| r.reporter.as_ref().is_none_or(|s| s.as_bytes() == [7; 60])));
        }
        o => panic!("{o:?}"),
    }
}

#[test]
fn reading_a_reporter_is_recorded_and_an_anonymous_report_has_none() {
    let mut kv = seeded();
    let id = accepted_report(&mut kv, "CH-1", "H001");
    let unseal = |officer: &str| {
        step(ReportCommand::Unseal { id: id.clone(), officer: format!("medmesh://report-officer/{officer}") })
    };
    let r = report(&one(&mut kv, unseal("110000")));
    assert_eq!((r.read_count, r.reads.len()), (1, 1));
    assert_eq!(r.reads[0].officer, "medmesh://report-officer/110000");
    for _ in 0..40 {
        report(&one(&mut kv, unseal("110000")));
    }
    let r = report(&one(&mut kv, unseal("110000")));
    assert_eq!((r.read_count, r.reads.len()), (42, crate::reports::MAX_READS_KEPT));
    let anon = report(&one(&mut kv, submit("CH-2", 'c', false))).report.id;
    let e = one(&mut kv, step(ReportCommand::Unseal { id: anon, officer: "x".into() })).unwrap_err();
    assert_eq!((e.code, e.field.as_str()), (ErrorCode::FailedPrecondition, "report_id"), "{e}");
}

/// The whole way: a report opens a case, the case recovers, the reporter is paid once, the
/// pool falls by exactly the reward.
#[test]
fn a_reward_is_paid_once_from_the_pool_on_the_executed_recovery() {
    let mut kv = seeded();
    let policy = ReportPolicy { reward_permille: 500, ..ReportPolicy::default() };
    ok(&one(&mut kv, step(ReportCommand::PutPolicy(policy))));
    visit_and_lines(&mut kv, "V1", "900");
    let s1 = settled(&one(&mut kv, settle_cmd("S1", "V1")));
    let paid = s1.split.fund_total() + s1.split.individual_account;
    let id = report(&one(&mut kv, submit("CH-1", 'a', true))).report.id;
    let open = |case: &str| {
        ProvinceCommand::Case(CaseCommand::Open {
            id: case.into(),
            province: prov("110000"),
            source: CaseSource::Report(id.clone()),
            institution: inst(),
            settlements: vec![ser("S1")],
        })
    };
    let e = one(&mut kv, open("C1")).unwrap_err();
    assert_eq!((e.code, e.field.as_str()), (ErrorCode::FailedPrecondition, "source.report_id"), "not accepted: {e}");
    report(&one(&mut kv, step(ReportCommand::Acknowledge { id: id.clone(), accept: true, note: "thank you".into() })));
    let e = one(&mut kv, step(ReportCommand::Acknowledge { id: id.clone(), accept: false, note: "no".into() }))
        .unwrap_err();
    assert_eq!((e.code, e.field.as_str()), (ErrorCode::FailedPrecondition, "report_id"), "once: {e}");
    let nope = ProvinceCommand::Case(CaseCommand::Open {
        id: "C0".into(),
        province: prov("110000"),
        source: CaseSource::Report("R-00000099".into()),
        institution: inst(),
        settlements: vec![],
    });
    let e = one(&mut kv, nope).unwrap_err();
    assert_eq!((e.code, e.field.as_str()), (ErrorCode::NotFound, "source.report_id"), "{e}");
    case_of(&one(&mut kv, open("C1")));
    let pay = |reference: &str| step(ReportCommand::PayReward { id: id.clone(), reference: reference.into() });
    let e = one(&mut kv, pay("PAY-1")).unwrap_err();
    assert_eq!((e.code, e.field.as_str()), (ErrorCode::FailedPrecondition, "report_id"), "not executed: {e}");

    let c = |x: CaseCommand| ProvinceCommand::Case(x);
    case_of(&one(&mut kv, c(CaseCommand::Investigate { id: "C1".into(), finding: "no such stay".into() })));
    let decision = DecisionInput {
        violation: ViolationType::Fraud,
        recover: paid,
        fine_tenths: 20,
        agreement: AgreementAction::Keep,
        scored: vec![],
        discipline_days: 0,
        handoff: None,
        reason: "stays billed that never happened".into(),
    };
    case_of(&one(&mut kv, c(CaseCommand::Decide { id: "C1".into(), decision })));
    case_of(&one(&mut kv, c(CaseCommand::Execute { id: "C1".into() })));

    let before = fund(&kv).ledger;
    let r = report(&one(&mut kv, pay("PAY-1")));
    // Independently: half the recovery, rounded half up to the fen, no less than 200 yuan.
    let half = Money::from_fen((paid.to_fen() * 500 + 500) / 1000);
    let want = if half < m("200") { m("200") } else { half };
    let reward = r.report.reward.clone().unwrap();
    assert_eq!((reward.amount, reward.recovered, reward.case_id.as_str()), (want, paid, "C1"));
    let after = fund(&kv).ledger;
    assert_eq!(after.rewards_paid, before.rewards_paid + want);
    assert_eq!(after.balance(), before.balance() - want, "the pool pays the reward");
    assert_eq!(report(&one(&mut kv, pay("PAY-1"))), r, "a retry pays nothing more");
    let e = one(&mut kv, pay("PAY-2")).unwrap_err();
    assert_eq!((e.code, e.field.as_str()), (ErrorCode::FailedPrecondition, "report_id"), "once: {e}");
    assert_eq!(fund(&kv).ledger, after);
    let done = step(ReportCommand::Conclude { id: id.clone(), reply: "recovered and fined".into() });
    assert_eq!(report(&one(&mut kv, done)).report.state, ReportState::Concluded);
}

#[test]
fn a_policy_outside_the_measures_is_refused() {
    let mut kv = seeded();
    let e = one(
        &mut kv,
        step(ReportCommand::PutPolicy(ReportPolicy { max_reward: m("200000.01"), ..ReportPolicy::default() })),
    )
    .unwrap_err();
    assert_eq!((e.code, e.field.as_str()), (ErrorCode::InvalidArgument, "max_reward"), "{e}");
}

/// A report 310000 received about an institution of 110000: the outbox items of `kv`.
fn outbox(kv: &MemKv) -> Vec<(u64, SharedItem)> {
    match run_query(kv, &Query::Outbox { limit: 100 }).unwrap() {
        Answer::SharedLog(items) => items,
        o => panic!("{o:?}"),
    }
}

/// What a province's leader does with its outbox: every item to the federation, then
/// dropped here. The report messages it sent, in order.
fn publish(kv: &mut MemKv, f: &mut MemKv) -> Vec<ReportMessage> {
    let items = outbox(kv);
    let mut sent = Vec::new();
    for (_, item) in &items {
        if let SharedItem::ReportMessage(m) = item {
            ok(&one(f, FederationCommand::SendReport(m.clone())));
            sent.push(m.clone());
        }
    }
    if let Some((through, _)) = items.last() {
        ok(&one(kv, ProvinceCommand::Published { through: *through }));
    }
    sent
}

fn inbox(f: &MemKv, to: &str, after: u64) -> Vec<(u64, ReportMessage)> {
    match run_query(f, &Query::ReportInbox { province: prov(to), after, limit: 100 }).unwrap() {
        Answer::ReportInbox(items) => items,
        o => panic!("{o:?}"),
    }
}

/// What a province's leader does with its inbox at the federation.
fn receive(kv: &mut MemKv, f: &MemKv, here: &str) {
    let after: u64 = load(kv, keys::REPORT_INBOX_CURSOR).unwrap_or(0);
    let items = inbox(f, here, after);
    if !items.is_empty() {
        ok(&one(kv, ProvinceCommand::ReceiveReports { province: prov(here), items }));
    }
}

fn routed(serial: &str, fingerprint: char, institution: &str) -> ProvinceCommand {
    let mut cmd = submit_about(serial, fingerprint, true, InstitutionId::new(institution).unwrap());
    if let ProvinceCommand::Report(ReportCommand::Submit { route, .. }) = &mut cmd {
        *route = Some(ReportRoute { here: prov("310000"), to: prov("110000") });
    }
    cmd
}

fn record(kv: &MemKv, id: &str) -> ReportRecord {
    load(kv, &keys::report(id)).unwrap()
}

/// Issue 13.2: a report received in 310000 about an institution of 110000 is referred through
/// the federation without its reporter, handled in 110000 (accepted, a case, a recovery, the
/// reward from 110000's pool) and followed in 310000, where the reporter reported it.
#[test]
fn a_report_about_another_province_is_handled_there_and_followed_here() {
    let (mut here, mut f, mut there) = (MemKv::default(), MemKv::default(), seeded());

    // 110000 has the institution; 310000 (an empty store here) does not.
    let e = one(&mut there, {
        let mut c = routed("CH-0", 'f', "H001");
        if let ProvinceCommand::Report(ReportCommand::Submit { route: Some(r), .. }) = &mut c {
            *r = ReportRoute { here: prov("110000"), to: prov("310000") };
        }
        c
    })
    .unwrap_err();
    assert_eq!((e.code, e.field.as_str()), (ErrorCode::InvalidArgument, "province"), "a local institution: {e}");
    let mut same = routed("CH-0", 'f', "H001");
    if let ProvinceCommand::Report(ReportCommand::Submit { route: Some(r), .. }) = &mut same {
        r.to = prov("310000");
    }
    let e = one(&mut here, same).unwrap_err();
    assert_eq!((e.code, e.field.as_str()), (ErrorCode::InvalidArgument, "province"), "no route to itself: {e}");

    let mine = report(&one(&mut here, routed("CH-1", 'a', "H001")));
    assert_eq!((mine.report.id.as_str(), mine.handled_by.as_ref().map(|p| p.as_str())), ("R-00000001", Some("110000")));
    assert!(mine.reporter.is_some(), "the reporter stays here, sealed");
    let e =
        one(&mut here, step(ReportCommand::Acknowledge { id: mine.report.id.clone(), accept: true, note: "".into() }))
            .unwrap_err();
    assert_eq!((e.code, e.field.as_str()), (ErrorCode::FailedPrecondition, "report_id"), "handled there: {e}");

    // The referral carries no reporter, fingerprint or receipt.
    let sent = publish(&mut here, &mut f);
    assert_eq!(sent.len(), 1);
    let bytes = crate::kv::encode(&sent[0]);
    for secret in [vec![7u8; 60], hash('a').as_str().as_bytes().to_vec()] {
        assert!(!bytes.windows(secret.len()).any(|w| w == secret.as_slice()), "the referral holds a secret");
    }
    ok(&one(&mut f, FederationCommand::SendReport(sent[0].clone())));
    assert_eq!(inbox(&f, "110000", 0).len(), 1, "a referral sent again is kept once");
    assert!(inbox(&f, "310000", 0).is_empty() && inbox(&f, "440000", 0).is_empty(), "one province's inbox");

    // 110000 handles it as its own report, without a reporter.
    receive(&mut there, &f, "110000");
    receive(&mut there, &f, "110000");
    let theirs = record(&there, "R-00000001");
    assert_eq!(theirs.reporter, None);
    let from = theirs.referred.clone().unwrap();
    assert_eq!((from.by.as_str(), from.origin_id.as_str(), from.here.as_str()), ("310000", "R-00000001", "110000"));
    assert_eq!((theirs.report.state, theirs.report.anonymous), (ReportState::Received, false));
    assert!(load::<ReportRecord>(&there, &keys::report("R-00000002")).is_none(), "received once");
    let e = one(&mut there, step(ReportCommand::Unseal { id: "R-00000001".into(), officer: "x".into() })).unwrap_err();
    assert_eq!((e.code, e.field.as_str()), (ErrorCode::FailedPrecondition, "report_id"), "{e}");

    visit_and_lines(&mut there, "V1", "900");
    let s1 = settled(&one(&mut there, settle_cmd("S1", "V1")));
    let paid = s1.split.fund_total() + s1.split.individual_account;
    let id = "R-00000001".to_string();
    report(&one(
        &mut there,
        step(ReportCommand::Acknowledge { id: id.clone(), accept: true, note: "we inspect".into() }),
    ));
    let c = |x: CaseCommand| ProvinceCommand::Case(x);
    case_of(&one(
        &mut there,
        c(CaseCommand::Open {
            id: "C1".into(),
            province: prov("110000"),
            source: CaseSource::Report(id.clone()),
            institution: inst(),
            settlements: vec![ser("S1")],
        }),
    ));
    case_of(&one(&mut there, c(CaseCommand::Investigate { id: "C1".into(), finding: "no such stay".into() })));
    let decision = DecisionInput {
        violation: ViolationType::Fraud,
        recover: paid,
        fine_tenths: 20,
        agreement: AgreementAction::Keep,
        scored: vec![],
        discipline_days: 0,
        handoff: None,
        reason: "stays billed that never happened".into(),
    };
    case_of(&one(&mut there, c(CaseCommand::Decide { id: "C1".into(), decision })));
    case_of(&one(&mut there, c(CaseCommand::Execute { id: "C1".into() })));
    let before = fund(&there).ledger;
    let r = report(&one(&mut there, step(ReportCommand::PayReward { id: id.clone(), reference: "PAY-1".into() })));
    let five = Money::from_fen((paid.to_fen() * 50 + 500) / 1000);
    let want = if five < m("200") { m("200") } else { five };
    assert_eq!(r.report.reward.as_ref().map(|w| w.amount), Some(want));
    assert_eq!(fund(&there).ledger.rewards_paid, before.rewards_paid + want, "110000's pool pays it");

    // Each step went back; 310000 shows the last, and pays nothing.
    let progress = publish(&mut there, &mut f);
    assert_eq!(progress.len(), 3, "accepted, case opened, reward paid: {progress:?}");
    assert!(progress.iter().all(|m| m.to.as_str() == "310000" && m.origin_id == "R-00000001"));
    receive(&mut here, &f, "310000");
    let mine = record(&here, "R-00000001");
    assert_eq!(
        (mine.report.state, mine.report.reply.as_str(), mine.report.case_id.as_deref()),
        (ReportState::Accepted, "we inspect", Some("C1"))
    );
    assert_eq!(mine.report.reward.as_ref().map(|w| (w.amount, w.reference.as_str())), Some((want, "PAY-1")));
    assert!(mine.reporter.is_some() && mine.handled_by.is_some());
    assert_eq!(fund(&here).ledger.rewards_paid, Money::ZERO, "310000's pool pays nothing");
    match run_query(&here, &Query::ReportByReceipt { receipt: hash('a') }).unwrap() {
        Answer::Report(r) => assert_eq!(r.report.reward.map(|w| w.amount), Some(want), "the reporter sees it"),
        o => panic!("{o:?}"),
    }
    report(&one(&mut there, step(ReportCommand::Conclude { id: id.clone(), reply: "recovered".into() })));
    publish(&mut there, &mut f);
    receive(&mut here, &f, "310000");
    assert_eq!(record(&here, "R-00000001").report.state, ReportState::Concluded);

    // An institution 110000 does not have: rejected there, and the rejection comes back.
    report(&one(&mut here, routed("CH-2", 'b', "H999")));
    publish(&mut here, &mut f);
    receive(&mut there, &f, "110000");
    assert_eq!(record(&there, "R-00000002").report.state, ReportState::Rejected);
    publish(&mut there, &mut f);
    receive(&mut here, &f, "310000");
    let back = record(&here, "R-00000002");
    assert_eq!(back.report.state, ReportState::Rejected);
    assert!(back.report.reply.contains("H999"), "{}", back.report.reply);

    // A batch with a message for another province, or one skipping a message, is refused whole.
    let all = inbox(&f, "110000", 0);
    let e =
        one(&mut there, ProvinceCommand::ReceiveReports { province: prov("440000"), items: all.clone() }).unwrap_err();
    assert_eq!((e.code, e.field.as_str()), (ErrorCode::FailedPrecondition, "items[0].to"), "{e}");
    let mut other = MemKv::default();
    let e = one(&mut other, ProvinceCommand::ReceiveReports { province: prov("110000"), items: all[1..].to_vec() })
        .unwrap_err();
    assert_eq!((e.code, e.field.as_str()), (ErrorCode::FailedPrecondition, "items[0]"), "{e}");
    let mut bad = all[0].clone();
    bad.1.origin_id = "../x".into();
    let e =
        one(&mut other, ProvinceCommand::ReceiveReports { province: prov("110000"), items: vec![bad] }).unwrap_err();
    assert_eq!((e.code, e.field.as_str()), (ErrorCode::InvalidArgument, "items[0].origin_id"), "{e}");
}
