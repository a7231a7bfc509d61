//! Issue 12.4: a month of non-local care cleared and settled between two provinces, through the
//! public API of a real mesh (the federation and two provinces, three replica processes each,
//! RocksDB, TLS).
//!
//! The mesh first runs with its clocks some days in the past (`clock_offset_ms`), in the last
//! days of the previous month, where a hospital of 110000 treats two patients insured in
//! 310000 and reverses one of the settlements. It is then restarted on the real clock: the
//! month is over and cleared; the hospital disputes a line and the nation upholds it; a
//! reversal of the cleared line becomes an adjustment line of this month; the month is settled
//! and the positions fall back to exactly this month's lines. Every figure is checked against
//! the settlement answers' own splits.

use std::time::Duration;

use medmesh_node::demo;
use medmesh_node::pb;
use medmesh_node::pb::agency_service_client::AgencyServiceClient;
use medmesh_node::pb::federation_service_client::FederationServiceClient;
use medmesh_node::pb::hospital_service_client::HospitalServiceClient;
use medmesh_tests::{agency, fails, institution, national, wait_until, yuan, Mesh};
use medmesh_types::{LogTime, Money};
use tonic::transport::Channel;
use tonic::Code;

const TREATMENT: &str = "110000";
const INSURED: &str = "310000";
const DAY_MS: i64 = 86_400_000;

/// Registers, uploads and settles a non-local visit of person `person` of 310000 on `day`;
/// answers what 310000 owes for it (fund share; no individual account used).
async fn treat(h: &mut HospitalServiceClient<Channel>, visit: &str, serial: &str, person: u32, day: &str) -> Money {
    admit(h, visit, person, day).await;
    settle(h, visit, serial).await.unwrap()
}

/// Registers a non-local visit of person `person` of 310000 on `day` and uploads its fees.
async fn admit(h: &mut HospitalServiceClient<Channel>, visit: &str, person: u32, day: &str) {
    let inst = demo::institution(TREATMENT, 1);
    // Right after a restart the group's time may still be catching up with the visit's day.
    let req = demo::nonlocal_visit_request(TREATMENT, INSURED, visit, person, 1, day);
    wait_until(Duration::from_secs(120), "the visit to register", || {
        let (mut h, req) = (h.clone(), req.clone());
        async move { h.register_visit(req).await.ok() }
    })
    .await;
    h.upload_fees(pb::UploadFeesRequest {
        institution_id: inst.clone(),
        visit_serial: visit.into(),
        lines: demo::fee_lines(u64::from(person), day),
    })
    .await
    .unwrap();
}

/// Settles an admitted visit: what 310000 owes for it.
async fn settle(h: &mut HospitalServiceClient<Channel>, visit: &str, serial: &str) -> Result<Money, tonic::Status> {
    let split = h
        .settle(pb::SettleRequest {
            lines: Vec::new(),
            institution_id: demo::institution(TREATMENT, 1),
            serial: serial.into(),
            visit_serial: visit.into(),
            use_individual_account: false,
        })
        .await?
        .into_inner()
        .split
        .unwrap();
    Ok(yuan(&split.pooling_fund) + yuan(&split.critical_illness) + yuan(&split.individual_account))
}

async fn reverse(h: &mut HospitalServiceClient<Channel>, serial: &str, settlement: &str) {
    let req = pb::ReverseRequest {
        institution_id: demo::institution(TREATMENT, 1),
        serial: serial.into(),
        settlement_serial: settlement.into(),
    };
    h.reverse(req).await.unwrap();
}

/// Every line of a month, read two to a page: (kind, serial, amount).
async fn lines(
    fed: &mut FederationServiceClient<Channel>,
    month: &str,
) -> (pb::Clearing, Vec<(String, String, Money)>) {
    let (mut out, mut token, mut first) = (Vec::new(), String::new(), None);
    loop {
        let page = fed
            .get_clearing(pb::GetClearingRequest { month: month.into(), page_size: 2, page_token: token })
            .await
            .unwrap()
            .into_inner();
        let c = page.clearing.unwrap();
        for s in &c.statements {
            out.extend(s.lines.iter().map(|l| (l.kind.clone(), l.serial.clone(), yuan(&l.amount))));
        }
        first.get_or_insert(c);
        if page.next_page_token.is_empty() {
            return (first.unwrap(), out);
        }
        token = page.next_page_token;
    }
}

/// Every difference of a month's reconciliation through the API, in pages of `size`, with the
/// number of the federation's lines checked: `(kind, line kind, serial, federation amount)`.
async fn reconcile(
    ag: &mut AgencyServiceClient<Channel>,
    month: &str,
    size: u32,
) -> (Vec<(String, String, String, Money)>, u32) {
    let (mut diffs, mut lines, mut token) = (Vec::new(), 0, String::new());
    loop {
        let req = pb::ReconcileClearingRequest { month: month.into(), page_token: token, page_size: size };
        let page = ag.reconcile_clearing(req).await.unwrap().into_inner();
        lines += page.lines_checked;
        diffs.extend(page.differences.into_iter().map(|d| (d.kind, d.line_kind, d.serial, yuan(&d.federation_amount))));
        if page.next_page_token.is_empty() {
            return (diffs, lines);
        }
        token = page.next_page_token;
    }
}

fn pair(p: &pb::GetPositionsResponse) -> (Money, Money, Money) {
    let x = p.positions.iter().find(|x| x.insured_province == INSURED && x.treatment_province == TREATMENT);
    x.map(|x| (yuan(&x.amount), yuan(&x.in_force), yuan(&x.settled))).unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_month_of_non_local_care_is_cleared_after_it_ends_and_settled_once() {
    let real = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    let day_of_month = LogTime(real).date().ymd().2 as i64;
    let offset = -(day_of_month + 2) * DAY_MS;
    let last_month_day = LogTime(real + offset).date();
    let (y, m, _) = last_month_day.ymd();
    let month = format!("{y:04}-{m:02}");
    let day = last_month_day.to_string();

    let mut mesh =
        Mesh::start_with_env(&[TREATMENT, INSURED], 10, &[("MEDMESH_CLOCK_OFFSET_MS", offset.to_string())]).await;
    let g = mesh.province(TREATMENT);
    let mut h = HospitalServiceClient::new(g.channel_as(g.leader().await, &institution(TREATMENT, 1)));
    // Before admitting, the hospital checks the patient's entitlement with the insured
    // province (through the federation), as soon as the young mesh answers it.
    wait_until(Duration::from_secs(60), "310000 to answer a non-local identity lookup", || {
        let mut h = h.clone();
        let req = pb::LookupIdentityRequest {
            institution_id: demo::institution(TREATMENT, 1),
            certificate_kind: pb::CertificateKind::SocialSecurityCard as i32,
            certificate: demo::ss_card(INSURED, 1),
        };
        async move { h.lookup_identity(req).await.ok().filter(|r| r.get_ref().insured_province == INSURED) }
    })
    .await;
    // Persons 1, 5 and 9 of 310000 live in 110000 (filed long-term residents).
    let a = treat(&mut h, "V1", "NS-1", 1, &day).await;
    let b = treat(&mut h, "V2", "NS-2", 5, &day).await;
    assert!(a > Money::ZERO && b > Money::ZERO);
    let fed_ch = mesh.federation.channel_as(mesh.federation.leader().await, &national());
    let mut fed = FederationServiceClient::new(fed_ch);
    // Reversed while its month is open: NS-2's line leaves the month.
    reverse(&mut h, "NR-2", "NS-2").await;
    let (open, seen) = wait_until(Duration::from_secs(60), "the reversal to reach the federation", || {
        let mut fed = fed.clone();
        let month = month.clone();
        async move {
            let (c, seen) = lines(&mut fed, &month).await;
            (seen.len() == 1).then_some((c, seen))
        }
    })
    .await;
    assert_eq!(open.status, "OPEN");
    assert_eq!(seen, vec![("SETTLEMENT".to_string(), "NS-1".to_string(), a)]);
    fails(fed.run_clearing(pb::RunClearingRequest { month: month.clone() }).await, Code::FailedPrecondition, "month");

    // The month ends: the mesh runs on the real clock again.
    mesh.federation.stop_all().await;
    for g in &mut mesh.provinces {
        g.stop_all().await;
    }
    for g in std::iter::once(&mut mesh.federation).chain(mesh.provinces.iter_mut()) {
        g.set_env("MEDMESH_CLOCK_OFFSET_MS", "0");
        for id in 1..=3 {
            g.restart(id);
        }
    }
    let fed_ch = mesh.federation.channel_as(mesh.federation.leader().await, &national());
    let mut fed = FederationServiceClient::new(fed_ch);
    // The federation's time catches up in steps; clearing waits for it.
    let cleared = wait_until(Duration::from_secs(180), "the federation's time to pass the month's end", || {
        let mut fed = fed.clone();
        let month = month.clone();
        async move {
            match fed.run_clearing(pb::RunClearingRequest { month }).await {
                Ok(r) => Some(r.into_inner().clearing.unwrap()),
                Err(e) if e.code() == Code::FailedPrecondition && e.message().contains("has not ended") => None,
                Err(e) => panic!("{e:?}"),
            }
        }
    })
    .await;
    assert_eq!(cleared.status, "CLEARED");
    assert!(cleared.cleared_at_ms > 0);
    let st = &cleared.statements[0];
    assert_eq!((st.insured_province.as_str(), yuan(&st.total), st.line_count), (INSURED, a, 1));
    let again = fed.run_clearing(pb::RunClearingRequest { month: month.clone() }).await.unwrap().into_inner();
    assert_eq!(again.clearing.unwrap().cleared_at_ms, cleared.cleared_at_ms, "cleared once");

    // The hospital disputes NS-1 through its own province's replica (ten yuan were left off);
    // the nation upholds it: a DISPUTE line of +10 goes into this month.
    let g = mesh.province(TREATMENT);
    let mut own = FederationServiceClient::new(g.channel_as(g.leader().await, &institution(TREATMENT, 1)));
    let claimed = a + yuan("10.00");
    let dispute = |claimed: Money, reason: &str| pb::DisputeClearingLineRequest {
        month: month.clone(),
        treatment_province: TREATMENT.into(),
        institution_id: demo::institution(TREATMENT, 1),
        serial: "NS-1".into(),
        claimed_amount: claimed.to_string(),
        reason: reason.into(),
    };
    let d = own.dispute_clearing_line(dispute(claimed, "two lines left off")).await.unwrap().into_inner();
    assert_eq!(d.clearing.unwrap().status, "CLEARED");
    fails(own.dispute_clearing_line(dispute(claimed + yuan("1"), "more")).await, Code::AlreadyExists, "serial");
    fails(own.dispute_clearing_line(dispute(claimed, " ")).await, Code::InvalidArgument, "reason");
    let mut bad = dispute(claimed, "x");
    bad.claimed_amount = "ten".into();
    fails(own.dispute_clearing_line(bad).await, Code::InvalidArgument, "claimed_amount");
    let mut other = FederationServiceClient::new(g.channel_as(1, &institution(TREATMENT, 2)));
    let e = other.dispute_clearing_line(dispute(claimed, "not mine")).await.unwrap_err();
    assert_eq!(e.code(), Code::PermissionDenied, "another institution's line: {e:?}");
    let resolve = |uphold| pb::ResolveClearingDisputeRequest {
        month: month.clone(),
        treatment_province: TREATMENT.into(),
        institution_id: demo::institution(TREATMENT, 1),
        serial: "NS-1".into(),
        uphold,
        note: "the bill shows them".into(),
    };
    fed.resolve_clearing_dispute(resolve(true)).await.unwrap();
    fails(fed.resolve_clearing_dispute(resolve(false)).await, Code::FailedPrecondition, "serial");
    let (_, last) = lines(&mut fed, &month).await;
    assert_eq!(last, vec![("SETTLEMENT".to_string(), "NS-1".to_string(), a)], "the cleared line stays as it was");

    // This month: a new settlement, and NS-1 reversed after its month was cleared: what was
    // owed for it, the upheld ten yuan included, comes back.
    let today = demo::today();
    let this_month = today[..7].to_string();
    let mut h = HospitalServiceClient::new(g.channel_as(g.leader().await, &institution(TREATMENT, 1)));
    // Right after the restart the province's time is still catching up with the clock (ten
    // minutes an entry), so the transfer is logged minutes in the past: it must still settle,
    // not be aborted as older than the reserve timeout. Only an unavailable answer is retried,
    // with the same serial, as a hospital would.
    admit(&mut h, "V3", 9, &today).await;
    let ns3 = "NS-3".to_string();
    let c = wait_until(Duration::from_secs(60), "the settlement after the restart", || {
        let mut h = h.clone();
        async move {
            match settle(&mut h, "V3", "NS-3").await {
                Ok(c) => Some(c),
                Err(e) if e.code() == Code::Unavailable => None,
                Err(e) => panic!("a settlement opened while the time catches up: {e:?}"),
            }
        }
    })
    .await;
    reverse(&mut h, "NR-1", "NS-1").await;
    let (_, now_lines) = wait_until(Duration::from_secs(60), "this month's lines at the federation", || {
        let mut fed = fed.clone();
        let m = this_month.clone();
        async move {
            let (c, seen) = lines(&mut fed, &m).await;
            (seen.len() == 3).then_some((c, seen))
        }
    })
    .await;
    let want = vec![
        ("DISPUTE".to_string(), "NS-1".to_string(), yuan("10.00")),
        ("REVERSAL".to_string(), "NS-1".to_string(), Money::ZERO - claimed),
        ("SETTLEMENT".to_string(), ns3.clone(), c),
    ];
    assert_eq!(now_lines, want, "by serial, then kind");
    let (_, last) = lines(&mut fed, &month).await;
    assert_eq!(last, vec![("SETTLEMENT".to_string(), "NS-1".to_string(), a)], "a cleared month never changes");

    // Settled once: 310000 pays `a` to 110000; what it owes falls back to this month's lines.
    let before = fed.get_positions(pb::GetPositionsRequest {}).await.unwrap().into_inner();
    assert_eq!(pair(&before), (c, c, Money::ZERO), "in force: NS-3 only");
    let settled = fed.settle_clearing(pb::SettleClearingRequest { month: month.clone() }).await.unwrap().into_inner();
    let settled = settled.clearing.unwrap();
    assert_eq!((settled.status.as_str(), yuan(&settled.statements[0].total)), ("SETTLED", a));
    let twice = fed.settle_clearing(pb::SettleClearingRequest { month: month.clone() }).await.unwrap().into_inner();
    assert_eq!(twice.clearing.unwrap().settled_at_ms, settled.settled_at_ms, "settled once");
    let after = fed.get_positions(pb::GetPositionsRequest {}).await.unwrap().into_inner();
    assert_eq!(pair(&after), (c - a, c, a), "owed = this month's lines: NS-3 − NS-1");
    assert_eq!(yuan(&after.total), c - a);
    let prepaid = fed.get_prepaid(pb::GetPrepaidRequest {}).await.unwrap().into_inner().accounts;
    let of = |p: &str| prepaid.iter().find(|x| x.province == p).unwrap().clone();
    let (ins, tr) = (of(INSURED), of(TREATMENT));
    assert_eq!((yuan(&ins.consumed), yuan(&ins.paid), yuan(&ins.owed)), (c, a, c - a));
    assert_eq!((yuan(&tr.received), yuan(&tr.adjusted)), (a, Money::ZERO));
    // Each province's ledger follows: the treatment province received the month's statement,
    // the insured province's account paid it.
    type Field = fn(&pb::GetFundResponse) -> &str;
    let sides: [(&str, &str, Field); 2] =
        [(TREATMENT, "clearing_received", |f| &f.clearing_received), (INSURED, "clearing_paid", |f| &f.clearing_paid)];
    for (p, field, read) in sides {
        let g = mesh.province(p);
        let ag = AgencyServiceClient::new(g.channel_as(g.leader().await, &agency(p)));
        wait_until(Duration::from_secs(30), &format!("{p}'s ledger to show the settled month ({field})"), || {
            let mut ag = ag.clone();
            async move {
                let f = ag.get_fund(pb::GetFundRequest {}).await.ok()?.into_inner();
                (yuan(read(&f)) == a).then_some(())
            }
        })
        .await;
    }

    // Reconciled with each province's own ledger: last month agrees on both sides (NS-1
    // reversed at both since, NS-2 reversed while its month was open); this month differs by
    // the upheld ten yuan only, listed as an adjustment. The nation may ask a province too.
    for (p, caller) in [(TREATMENT, agency(TREATMENT)), (INSURED, national())] {
        let g = mesh.province(p);
        let mut ag = AgencyServiceClient::new(g.channel_as(g.leader().await, &caller));
        let (diffs, lines_checked) = reconcile(&mut ag, &month, 1).await;
        assert_eq!((diffs, lines_checked), (vec![], 1), "{p} in {month}: NS-1's line");
        // The insured province's part of NS-1's reversal may land a moment after the hospital's
        // answer; until then that is a difference, and it must go away.
        let want = vec![("ADJUSTED".to_string(), "DISPUTE".to_string(), "NS-1".to_string(), yuan("10.00"))];
        let (diffs, lines_checked) = wait_until(Duration::from_secs(30), "this month to reconcile", || {
            let (mut ag, m, want) = (ag.clone(), this_month.clone(), want.clone());
            async move { Some(reconcile(&mut ag, &m, 2).await).filter(|(d, _)| d == &want) }
        })
        .await;
        assert_eq!((diffs, lines_checked), (want, 3), "{p} in {this_month}");
    }
    let g = mesh.province(TREATMENT);
    let mut ag = AgencyServiceClient::new(g.channel_as(1, &agency(TREATMENT)));
    let req = |month: &str, token: &str, size| pb::ReconcileClearingRequest {
        month: month.into(),
        page_token: token.into(),
        page_size: size,
    };
    fails(ag.reconcile_clearing(req("2026-13", "", 0)).await, Code::InvalidArgument, "month");
    fails(ag.reconcile_clearing(req(&month, "x:1", 0)).await, Code::InvalidArgument, "page_token");
    fails(ag.reconcile_clearing(req(&month, "r:110000/../", 0)).await, Code::InvalidArgument, "page_token");
    fails(ag.reconcile_clearing(req(&month, "", 10_001)).await, Code::InvalidArgument, "page_size");
    let mut at_fed = AgencyServiceClient::new(mesh.federation.channel_as(1, &national()));
    fails(at_fed.reconcile_clearing(req(&month, "", 0)).await, Code::FailedPrecondition, "province");

    // Bad input: this month is neither cleared nor settled; a month written otherwise, a
    // page token this list never gave, and clearing at a province replica are refused.
    fails(
        fed.run_clearing(pb::RunClearingRequest { month: this_month.clone() }).await,
        Code::FailedPrecondition,
        "month",
    );
    fails(
        fed.settle_clearing(pb::SettleClearingRequest { month: this_month.clone() }).await,
        Code::FailedPrecondition,
        "month",
    );
    fails(fed.run_clearing(pb::RunClearingRequest { month: "2026-13".into() }).await, Code::InvalidArgument, "month");
    fails(
        fed.settle_clearing(pb::SettleClearingRequest { month: "26-01".into() }).await,
        Code::InvalidArgument,
        "month",
    );
    // Disputes: an open month's line, a month written otherwise, a province that is not one, a
    // decision on a line nobody disputed, a serial left empty.
    let mut this = dispute(c, "x");
    this.month = this_month.clone();
    this.serial = ns3.clone();
    fails(own.dispute_clearing_line(this.clone()).await, Code::FailedPrecondition, "month");
    this.month = "2026-13".into();
    fails(own.dispute_clearing_line(this.clone()).await, Code::InvalidArgument, "month");
    this.treatment_province = "11".into();
    fails(own.dispute_clearing_line(this).await, Code::InvalidArgument, "treatment_province");
    let mut undisputed = resolve(true);
    undisputed.month = this_month.clone();
    undisputed.serial = ns3.clone();
    fails(fed.resolve_clearing_dispute(undisputed.clone()).await, Code::FailedPrecondition, "serial");
    undisputed.serial = String::new();
    fails(fed.resolve_clearing_dispute(undisputed).await, Code::InvalidArgument, "serial");
    let bad = pb::GetClearingRequest { month: month.clone(), page_size: 1, page_token: "310000/110000".into() };
    fails(fed.get_clearing(bad).await, Code::InvalidArgument, "page_token");
    let g = mesh.province(INSURED);
    let mut via_province = FederationServiceClient::new(g.channel_as(1, &national()));
    let e = via_province.settle_clearing(pb::SettleClearingRequest { month }).await.unwrap_err();
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
}
