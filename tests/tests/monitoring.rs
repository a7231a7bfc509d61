//! Issue 11: monitoring before payment, through the public API of a real 3-replica province.
//!
//! The agency records the demo knowledge base and the shipped rules (and two of its own); then
//! a hospital's claims meet them at settlement: a clean claim settles with no alert, a second
//! visit billing the same item on the same day has that line moved to the patient's share
//! (duplicate charging) and is flagged for review (a second visit at the same institution that
//! day), a claim above the agency's own ceiling is refused naming the rule, and a rule that
//! cannot be evaluated on a claim becomes an alert instead of passing. Bad rules and entries are
//! refused naming the field.

use medmesh_node::pb;
use medmesh_node::pb::agency_service_client::AgencyServiceClient;
use medmesh_node::pb::hospital_service_client::HospitalServiceClient;
use medmesh_node::{convert, demo};
use medmesh_tests::{free_base_port, institution, yuan, Group};
use medmesh_types::Money;
use tonic::Code;

const HOME: &str = "110000";

fn line(serial: &str, code: &str, price: &str, day: &str) -> pb::FeeLine {
    pb::FeeLine {
        serial: serial.into(),
        code: code.into(),
        quantity: "1".into(),
        unit_price: price.into(),
        date: day.into(),
    }
}

fn own_rule(id: &str, action: pb::RuleAction, condition: &str) -> pb::MonitoringRule {
    pb::MonitoringRule {
        id: id.into(),
        version: 1,
        category: pb::RuleCategory::Policy as i32,
        target: pb::RuleTarget::Claim as i32,
        action: action as i32,
        severity: 3,
        title: format!("agency rule {id}"),
        condition: condition.into(),
        enabled: true,
        ..Default::default()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rules_block_self_pay_and_flag_claims_at_settlement() {
    let mut g = Group::start(HOME, 3, free_base_port(), &[]);
    let leader = g.leader().await;
    demo::load(g.agency(leader), HOME, 4).await.unwrap();
    let mut agency = AgencyServiceClient::new(g.agency(leader));
    // The knowledge base and the rule library, as data.
    let kb = medmesh_monitor::demo_knowledge_base();
    for k in kb.diagnoses.values().cloned().map(medmesh_monitor::Knowledge::Diagnosis) {
        agency.put_knowledge(convert::knowledge_pb(&k)).await.unwrap();
    }
    for k in kb.items.values().cloned().map(medmesh_monitor::Knowledge::Item) {
        agency.put_knowledge(convert::knowledge_pb(&k)).await.unwrap();
    }
    let shipped = medmesh_monitor::shipped_rules();
    for r in &shipped {
        agency.put_rule(pb::PutRuleRequest { rule: Some(convert::rule_pb(r)) }).await.unwrap();
    }
    for r in [
        own_rule("AG-CEILING", pb::RuleAction::Block, "claim.total_fen > 500000"),
        own_rule("AG-BROKEN", pb::RuleAction::Flag, "claim.total_fen / (claim.line_count - 4) > 0"),
    ] {
        agency.put_rule(pb::PutRuleRequest { rule: Some(r) }).await.unwrap();
    }
    let listed = agency.list_rules(pb::ListRulesRequest {}).await.unwrap().into_inner().rules;
    assert_eq!(listed.len(), shipped.len() + 2);
    assert!(listed.iter().all(|r| r.version == 1 && !r.national && r.recorded_at_ms > 0));

    let day = demo::today();
    let inst = demo::institution(HOME, 1);
    // Through a follower: the hospital's calls are forwarded to the leader.
    let follower = (1..=3).find(|i| *i != leader).unwrap();
    let mut h = HospitalServiceClient::new(g.channel_as(follower, &institution(HOME, 1)));
    let (hc, ic, dc) = (h.clone(), inst.clone(), day.clone());
    let claim = move |visit: &str, lines: Vec<pb::FeeLine>| {
        let mut h = hc.clone();
        let (visit, inst, day) = (visit.to_string(), ic.clone(), dc.clone());
        async move {
            h.register_visit(demo::visit_request(HOME, &visit, 1, 1, &day)).await.unwrap();
            h.upload_fees(pb::UploadFeesRequest { institution_id: inst, visit_serial: visit, lines }).await.unwrap();
        }
    };
    let settle = |serial: &str, visit: &str| pb::SettleRequest {
        lines: Vec::new(),
        institution_id: inst.clone(),
        serial: serial.into(),
        visit_serial: visit.into(),
        use_individual_account: false,
    };

    // A clean claim: a consultation within its ceiling, three lines. No hit, no alert.
    claim(
        "V1",
        vec![line("L1", "XA0001", "30", &day), line("L2", "XB0001", "20", &day), line("L3", "XA0002", "12", &day)],
    )
    .await;
    let split = h.settle(settle("S1", "V1")).await.unwrap().into_inner().split.unwrap();
    assert!(split.lines.iter().all(|l| l.self_pay_reason.is_empty()), "{:?}", split.lines);
    let alerts = agency.list_alerts(pb::ListAlertsRequest::default()).await.unwrap().into_inner().alerts;
    assert!(alerts.is_empty(), "{alerts:?}");

    // The same consultation again that day, on a new visit and serial: duplicate charging. The
    // quote already shows it; the settlement moves the line to the patient's share, and the
    // second visit at the same institution that day is flagged.
    claim(
        "V2",
        vec![line("L1", "XA0001", "30", &day), line("L2", "XB0001", "20", &day), line("L3", "XA0002", "12", &day)],
    )
    .await;
    let quote = h
        .pre_settle(pb::PreSettleRequest {
            institution_id: inst.clone(),
            visit_serial: "V2".into(),
            use_individual_account: false,
        })
        .await
        .unwrap()
        .into_inner()
        .split
        .unwrap();
    let split = h.settle(settle("S2", "V2")).await.unwrap().into_inner().split.unwrap();
    assert_eq!(split, quote, "pre-settlement and settlement agree");
    let dup: Vec<&pb::LineSplit> = split.lines.iter().filter(|l| l.self_pay_reason == "MONITORING_RULE").collect();
    assert_eq!(dup.len(), 3, "every line repeats the same item on the same day: {:?}", split.lines);
    assert!(dup.iter().all(|l| l.rule_id == "MGT-01" && l.fully_self_paid == l.amount));
    assert_eq!(yuan(&split.pooling_fund) + yuan(&split.critical_illness), Money::ZERO, "the fund pays none of it");
    assert_eq!(yuan(&split.cash), yuan("62"), "the patient pays 30 + 20 + 12");
    let alerts = agency.list_alerts(pb::ListAlertsRequest::default()).await.unwrap().into_inner().alerts;
    let flagged: Vec<&str> = alerts.iter().map(|a| a.rule_id.as_str()).collect();
    assert!(flagged.contains(&"MGT-09"), "{flagged:?}");
    assert!(alerts.iter().all(|a| a.settlement_serial == "S2" && a.status == pb::AlertStatus::Open as i32));

    // Four lines: the agency's broken rule now divides by zero, which is an alert, never a
    // pass; above 5,000 yuan the agency's ceiling refuses, naming the rule.
    claim(
        "V3",
        vec![
            line("L1", "XA0003", "1500", &day),
            line("L2", "XA0003", "1500", &day),
            line("L3", "XA0003", "1500", &day),
            line("L4", "XA0003", "1500", &day),
        ],
    )
    .await;
    let e = h.settle(settle("S3", "V3")).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    assert!(e.message().starts_with("visit_serial: refused by monitoring rule AG-CEILING v1"), "{}", e.message());
    // The agency disables its ceiling (a new version); the claim then settles, and the broken
    // rule's fault joins the queue.
    let mut off = own_rule("AG-CEILING", pb::RuleAction::Block, "claim.total_fen > 500000");
    off.version = 2;
    off.enabled = false;
    agency.put_rule(pb::PutRuleRequest { rule: Some(off) }).await.unwrap();
    h.settle(settle("S3", "V3")).await.unwrap();
    // The replica that answered the hospital counted the hits on its metrics page.
    let ops = medmesh_node::dev::ops_of(&g.replica(follower).addr).unwrap();
    let page = std::process::Command::new("curl").args(["-s", &format!("http://{ops}/metrics")]).output().unwrap();
    let page = String::from_utf8(page.stdout).unwrap();
    let hits = |rule: &str, action: &str| -> u64 {
        page.lines()
            .filter(|l| l.starts_with("medmesh_rule_hits_total{"))
            .filter(|l| l.contains(&format!("rule=\"{rule}\"")) && l.contains(&format!("action=\"{action}\"")))
            .find_map(|l| l.rsplit(' ').next()?.parse().ok())
            .unwrap_or(0)
    };
    assert_eq!(hits("AG-CEILING", "block"), 1, "{page}");
    assert!(hits("MGT-01", "self_pay") >= 3, "{page}");
    let alerts = agency.list_alerts(pb::ListAlertsRequest::default()).await.unwrap().into_inner().alerts;
    let fault = alerts.iter().find(|a| a.settlement_serial == "S3" && a.rule_id == "AG-BROKEN").expect("a fault alert");
    assert!(!fault.fault.is_empty(), "{fault:?}");
    // The reviewer dismisses the flag (saying why) and accepts the fault; each once.
    let flag = alerts.iter().find(|a| a.rule_id == "MGT-09").unwrap().seq;
    let review = |seq, accept, reason: &str| pb::ReviewAlertRequest { seq, accept, reason: reason.into() };
    let e = agency.review_alert(review(flag, false, "")).await.unwrap_err();
    assert!(e.code() == Code::InvalidArgument && e.message().starts_with("reason:"), "{e:?}");
    let a = agency.review_alert(review(flag, false, "two visits, two doctors")).await.unwrap().into_inner();
    assert_eq!(a.alert.unwrap().status, pb::AlertStatus::Dismissed as i32);
    agency.review_alert(review(fault.seq, true, "open a case")).await.unwrap();
    let e = agency.review_alert(review(fault.seq, false, "no")).await.unwrap_err();
    assert!(e.code() == Code::FailedPrecondition && e.message().starts_with("seq:"), "{e:?}");
    assert_eq!(agency.review_alert(review(9_999, true, "")).await.unwrap_err().code(), Code::NotFound);
    let e = agency.review_alert(review(0, true, "")).await.unwrap_err();
    assert!(e.code() == Code::InvalidArgument && e.message().starts_with("seq:"), "{e:?}");
    let e = agency.list_alerts(pb::ListAlertsRequest { from_seq: 0, page_size: 10_001 }).await.unwrap_err();
    assert!(e.code() == Code::InvalidArgument && e.message().starts_with("page_size:"), "{e:?}");
    // Paged by sequence number.
    let first = agency.list_alerts(pb::ListAlertsRequest { from_seq: 0, page_size: 1 }).await.unwrap().into_inner();
    assert_eq!((first.alerts.len(), first.next_from_seq), (1, first.alerts[0].seq + 1));

    // A rule tried on a registered visit before it is recorded.
    let test = |rule: pb::MonitoringRule, visit: &str| pb::TestRuleRequest {
        rule: Some(rule),
        institution_id: inst.clone(),
        visit_serial: visit.into(),
    };
    let t = agency
        .test_rule(test(own_rule("TRY", pb::RuleAction::Flag, "claim.line_count == 4"), "V3"))
        .await
        .unwrap()
        .into_inner();
    assert_eq!((t.hits.len(), t.faults.len()), (1, 0));
    let e = agency.test_rule(test(own_rule("TRY", pb::RuleAction::Flag, "true"), "V9")).await.unwrap_err();
    assert_eq!(e.code(), Code::NotFound, "{e:?}");

    // A post-payment scan: a rule recorded after the claims were paid runs over them a step at
    // a time; each paid claim (S1, S2, S3) is alerted once, however often the scan runs.
    agency
        .put_rule(pb::PutRuleRequest { rule: Some(own_rule("LATE", pb::RuleAction::Block, "claim.line_count >= 1")) })
        .await
        .unwrap();
    let step = |token: String| pb::ScanSettlementsRequest {
        rule_id: "LATE".into(),
        from: day.clone(),
        to: day.clone(),
        page_token: token,
        page_size: 1,
    };
    let (mut token, mut raised, mut steps) = (String::new(), 0, 0);
    loop {
        let r = agency.scan_settlements(step(token)).await.unwrap().into_inner();
        raised += r.alerts_raised;
        steps += 1;
        assert!(steps < 20, "the scan ends");
        if r.next_page_token.is_empty() {
            break;
        }
        token = r.next_page_token;
    }
    assert_eq!(raised, 3);
    let again = agency.scan_settlements(pb::ScanSettlementsRequest { page_size: 0, ..step(String::new()) }).await;
    assert_eq!(again.unwrap().into_inner().alerts_raised, 0);
    let e = agency.scan_settlements(pb::ScanSettlementsRequest { rule_id: "NONE".into(), ..step(String::new()) });
    let e = e.await.unwrap_err();
    assert!(e.code() == Code::NotFound && e.message().starts_with("rule_id:"), "{e:?}");
    let e = agency.scan_settlements(pb::ScanSettlementsRequest { page_size: 1001, ..step(String::new()) });
    let e = e.await.unwrap_err();
    assert!(e.code() == Code::InvalidArgument && e.message().starts_with("page_size:"), "{e:?}");
    let e = agency.scan_settlements(pb::ScanSettlementsRequest { to: "2000-01-01".into(), ..step(String::new()) });
    let e = e.await.unwrap_err();
    assert!(e.code() == Code::InvalidArgument && e.message().starts_with("to:"), "{e:?}");

    // Bad rules and entries: refused naming the field, nothing recorded.
    let bad_rules = [
        (pb::PutRuleRequest { rule: None }, "rule:"),
        (
            pb::PutRuleRequest {
                rule: Some(pb::MonitoringRule { category: 0, ..own_rule("B", pb::RuleAction::Flag, "true") }),
            },
            "rule.category:",
        ),
        (
            pb::PutRuleRequest { rule: Some(own_rule("B", pb::RuleAction::Flag, "claim.total_fen > 1.5")) },
            "rule.condition:",
        ),
        (
            pb::PutRuleRequest { rule: Some(own_rule("B", pb::RuleAction::Flag, "claim.identity == \"x\"")) },
            "rule.condition:",
        ),
        (
            pb::PutRuleRequest { rule: Some(own_rule("B", pb::RuleAction::Flag, "claim.codes.all(c, c != \"X\")")) },
            "rule.condition:",
        ),
        (
            pb::PutRuleRequest {
                rule: Some(pb::MonitoringRule { severity: 9, ..own_rule("B", pb::RuleAction::Flag, "true") }),
            },
            "rule.severity:",
        ),
        (
            pb::PutRuleRequest {
                rule: Some(pb::MonitoringRule { version: 5, ..own_rule("MGT-01", pb::RuleAction::Flag, "true") }),
            },
            "rule.version:",
        ),
    ];
    for (req, field) in bad_rules {
        let e = agency.put_rule(req).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{field} {e:?}");
        assert!(e.message().starts_with(field), "{field}: {}", e.message());
    }
    let item = |f: fn(&mut pb::KnowledgeItem)| {
        let mut i = pb::KnowledgeItem { code: "K1".into(), kind: pb::ItemKind::Drug as i32, ..Default::default() };
        f(&mut i);
        pb::PutKnowledgeRequest { entry: Some(pb::put_knowledge_request::Entry::Item(i)) }
    };
    let bad_entries = [
        (pb::PutKnowledgeRequest { entry: None }, "entry:"),
        (item(|i| i.kind = 0), "item.kind:"),
        (item(|i| i.max_per_day = "lots".into()), "item.max_per_day:"),
        (item(|i| i.max_per_day = "-1".into()), "item.max_per_day:"),
        (item(|i| i.indications = vec!["J".into(); 65]), "item.indications:"),
        (item(|i| i.code = "a b".into()), "item.code:"),
        (item(|i| i.min_level = Some(7)), "item.min_level:"),
    ];
    for (req, field) in bad_entries {
        let e = agency.put_knowledge(req).await.unwrap_err();
        assert_eq!(e.code(), Code::InvalidArgument, "{field} {e:?}");
        assert!(e.message().starts_with(field), "{field}: {}", e.message());
    }
    let after = agency.list_rules(pb::ListRulesRequest {}).await.unwrap().into_inner().rules;
    assert_eq!(
        after.len(),
        shipped.len() + 3,
        "nothing bad was recorded (the agency's own: AG-CEILING, AG-BROKEN, LATE)"
    );
    g.stop_all().await;
}
