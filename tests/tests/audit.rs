//! Issue 10.5: the audit chain, through real replica processes.
//!
//! Every command a province applies — accepted or refused — extends its chain with who asked
//! (from the certificate); the province's leader anchors the head at the federation;
//! `medmesh audit verify` re-walks the chain online (as the national administration, who sees
//! digests only) and offline on a copy of a replica's data directory, and fails on a copy in
//! which one stored byte was changed.

use std::time::Duration;

use medmesh_node::demo;
use medmesh_node::pb;
use medmesh_tests::{data_dir, institution, medmesh_as, national, wait_until, Mesh};

const HOME: &str = "110000";

/// Runs `medmesh audit verify` with `args` as the national administration.
fn verify(args: &[&str]) -> std::process::Output {
    let args: Vec<&str> = ["audit", "verify", "--province", HOME].into_iter().chain(args.iter().copied()).collect();
    medmesh_as(&national(), &args).output().expect("medmesh runs")
}

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap().flatten() {
        let (src, dst) = (e.path(), to.join(e.file_name()));
        if src.is_dir() {
            copy_dir(&src, &dst);
        } else {
            std::fs::copy(&src, &dst).unwrap();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_audit_chain_names_every_caller_is_anchored_and_detects_tampering() {
    let mut mesh = Mesh::start(&[HOME], 4).await;
    let fed_addr = mesh.federation.replica(mesh.federation.leader().await).addr.clone();
    let g = mesh.province(HOME);
    let leader = g.leader().await;
    let addr = g.replica(leader).addr.clone();
    let inst = demo::institution(HOME, 1);

    // One accepted command (with the caller's request id) and one refused.
    let mut h = g.hospital(leader);
    let mut req = tonic::Request::new(demo::visit_request(HOME, "AV1", 1, 1, &demo::today()));
    req.metadata_mut().insert("x-request-id", "audit-test-1".parse().unwrap());
    h.register_visit(req).await.expect("visit registered");
    let refused = h
        .settle(pb::SettleRequest {
            lines: Vec::new(),
            institution_id: inst.clone(),
            serial: "AS1".into(),
            visit_serial: "NO-SUCH-VISIT".into(),
            use_individual_account: false,
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::NotFound, "{refused:?}");

    // The national administration reads the chain: digests and callers, no content.
    let mut a = pb::agency_service_client::AgencyServiceClient::new(g.channel_as(leader, &national()));
    let page = a.list_audit(pb::ListAuditRequest { from_seq: 0, page_size: 0 }).await.unwrap().into_inner();
    let head = page.head_seq;
    let mut entries = page.entries;
    let mut next = page.next_seq;
    while next != 0 {
        let p = a.list_audit(pb::ListAuditRequest { from_seq: next, page_size: 0 }).await.unwrap().into_inner();
        entries.extend(p.entries);
        next = p.next_seq;
    }
    assert_eq!(entries.len() as u64, head, "one entry per command, numbered from 1");
    let who = institution(HOME, 1).uri();
    let visit = entries.iter().find(|e| e.command == "register_visit").expect("the visit is in the chain");
    assert_eq!((visit.actor.as_str(), visit.request_id.as_str(), visit.accepted), (who.as_str(), "audit-test-1", true));
    let settle = entries.iter().find(|e| e.command == "settle").expect("the refused settle is in the chain");
    assert_eq!((settle.actor.as_str(), settle.accepted), (who.as_str(), false));
    assert!(
        entries.iter().any(|e| e.command == "put_person" && e.actor == medmesh_tests::agency(HOME).uri()),
        "the demo register was written by the agency"
    );
    for (i, e) in entries.iter().enumerate() {
        assert_eq!(e.seq, i as u64 + 1);
        assert!(!e.actor.contains(&demo::person_id(HOME, 1)), "no content in the chain");
    }

    // Register records keep their history: who changed them, when, and to what.
    let mut ag = pb::agency_service_client::AgencyServiceClient::new(g.agency(leader));
    let inst2 = demo::institution(HOME, 2);
    let history = |ag: &mut pb::agency_service_client::AgencyServiceClient<tonic::transport::Channel>,
                   register: pb::RegisterKind,
                   id: String,
                   certificate: String| {
        let mut ag = ag.clone();
        async move {
            let req = pb::GetHistoryRequest {
                register: register as i32,
                id,
                certificate_kind: pb::CertificateKind::SocialSecurityCard as i32,
                certificate,
                from_seq: 0,
                page_size: 0,
            };
            ag.get_history(req).await.unwrap().into_inner().changes
        }
    };
    let before = history(&mut ag, pb::RegisterKind::Institution, inst2.clone(), String::new()).await;
    let mut put = match before.last().and_then(|c| c.record.clone()) {
        Some(pb::record_change::Record::Institution(i)) => i,
        other => panic!("the demo institution has a history: {other:?}"),
    };
    assert!(!put.suspended);
    put.suspended = true;
    let mut req = tonic::Request::new(put);
    req.metadata_mut().insert("x-request-id", "suspend-h2".parse().unwrap());
    ag.put_institution(req).await.expect("suspended");
    let after = history(&mut ag, pb::RegisterKind::Institution, inst2.clone(), String::new()).await;
    assert_eq!(after.len(), before.len() + 1);
    let last = after.last().unwrap();
    assert_eq!(
        (last.actor.as_str(), last.request_id.as_str()),
        (medmesh_tests::agency(HOME).uri().as_str(), "suspend-h2")
    );
    assert!(matches!(&last.record, Some(pb::record_change::Record::Institution(i)) if i.suspended));
    assert!(last.seq > head && last.time_ms >= after[0].time_ms, "a later audit entry");
    let person = history(&mut ag, pb::RegisterKind::Person, String::new(), demo::ss_card(HOME, 1)).await;
    match person.first().and_then(|c| c.record.clone()) {
        Some(pb::record_change::Record::Person(p)) => {
            assert_eq!(p.name, "Person 1");
            assert_eq!(p.masked_id, medmesh_types::mask_identity(&demo::person_id(HOME, 1)));
        }
        other => panic!("the person's history: {other:?}"),
    }

    // The leader anchors its head at the federation within seconds.
    let fed = mesh.federation.channel_as(mesh.federation.leader().await, &national());
    wait_until(Duration::from_secs(60), "the chain head to be anchored", || {
        let mut f = pb::federation_service_client::FederationServiceClient::new(fed.clone());
        async move {
            let r = f
                .list_anchors(pb::ListAnchorsRequest { province: HOME.into(), from_seq: 0, page_size: 0 })
                .await
                .ok()?
                .into_inner();
            r.anchors.iter().any(|a| a.seq >= head).then_some(())
        }
    })
    .await;

    // Online: the chain verifies against the anchors.
    let out = verify(&["--addr", &addr, "--federation", &fed_addr]);
    let text = String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{text}");
    assert!(text.contains("entries verified") && !text.contains("0 anchors match"), "{text}");

    // Offline: a copy of a stopped replica's data verifies; the same copy with one byte of one
    // entry changed does not.
    let g = mesh.provinces.iter_mut().find(|g| g.province == HOME).unwrap();
    g.stop_all().await;
    let copies = tempfile::tempdir().unwrap();
    let (good, bad) = (copies.path().join("good"), copies.path().join("bad"));
    copy_dir(&data_dir(g.replica(leader)), &good);
    copy_dir(&data_dir(g.replica(leader)), &bad);
    let out = verify(&["--data-dir", good.to_str().unwrap(), "--federation", &fed_addr]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    let tampered = {
        let db_path = bad.join("db");
        let opts = rocksdb::Options::default();
        let cfs = rocksdb::DB::list_cf(&opts, &db_path).unwrap();
        let db = rocksdb::DB::open_cf(&opts, &db_path, &cfs).unwrap();
        let cf = db.cf_handle("sm").unwrap();
        let key = medmesh_state::keys::audit(visit.seq);
        let mut value = db.get_cf(cf, key.as_bytes()).unwrap().expect("the entry is stored");
        // One byte of the actor: "medmesh://province/110000/institution/..." names institution 2.
        let at = value.windows(inst.len()).position(|w| w == inst.as_bytes()).expect("actor in the entry");
        let last = at + inst.len() - 1;
        value[last] = if value[last] == b'1' { b'2' } else { b'1' };
        db.put_cf(cf, key.as_bytes(), &value).unwrap();
        visit.seq
    };
    let out = verify(&["--data-dir", bad.to_str().unwrap(), "--federation", &fed_addr]);
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("NOT VERIFIED"), "{err}");
    assert!(
        err.contains(&format!("entry {tampered}")) || err.contains(&format!("entry {}", tampered + 1)),
        "names the changed entry or the next: {err}"
    );
}

/// The request was refused with INVALID_ARGUMENT naming `field`.
fn refused<T: std::fmt::Debug>(r: Result<T, tonic::Status>, field: &str) {
    let e = r.expect_err("refused");
    assert_eq!(e.code(), tonic::Code::InvalidArgument, "{field}: {e:?}");
    assert!(e.message().starts_with(&format!("{field}: ")), "{field}: {}", e.message());
}

/// Bad requests to the audit rpcs get INVALID_ARGUMENT naming the request field, never
/// INTERNAL.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_audit_requests_name_their_field() {
    let mut g = medmesh_tests::Group::start(HOME, 1, medmesh_tests::free_base_port(), &[]);
    g.leader().await;
    demo::load(g.agency(1), HOME, 2).await.expect("demo data");
    let mut ag = pb::agency_service_client::AgencyServiceClient::new(g.agency(1));
    refused(ag.list_audit(pb::ListAuditRequest { from_seq: 0, page_size: 10_001 }).await, "page_size");
    let history = |register: pb::RegisterKind, id: &str, certificate: &str| pb::GetHistoryRequest {
        register: register as i32,
        id: id.into(),
        certificate_kind: pb::CertificateKind::SocialSecurityCard as i32,
        certificate: certificate.into(),
        from_seq: 0,
        page_size: 0,
    };
    refused(ag.get_history(history(pb::RegisterKind::Unspecified, "", "")).await, "register");
    refused(ag.get_history(history(pb::RegisterKind::Institution, "a/b", "")).await, "id");
    refused(ag.get_history(history(pb::RegisterKind::Personnel, "", "")).await, "id");
    refused(ag.get_history(history(pb::RegisterKind::CatalogueItem, &"x".repeat(200), "")).await, "id");
    refused(ag.get_history(history(pb::RegisterKind::Person, "", "")).await, "certificate");
    refused(ag.get_history(history(pb::RegisterKind::Person, "", &"9".repeat(65))).await, "certificate");
    let mut req = history(pb::RegisterKind::Policy, "", "");
    req.page_size = 10_001;
    refused(ag.get_history(req).await, "page_size");
    // An unknown person is NOT_FOUND on the certificate; an unknown institution has no history.
    let e = ag.get_history(history(pb::RegisterKind::Person, "", "SS-NOBODY")).await.unwrap_err();
    assert_eq!((e.code(), e.message().starts_with("certificate: ")), (tonic::Code::NotFound, true), "{e:?}");
    let none = ag.get_history(history(pb::RegisterKind::Institution, "H-NONE", "")).await.unwrap().into_inner();
    assert!(none.changes.is_empty());
    let mut f = pb::federation_service_client::FederationServiceClient::new(g.agency(1));
    let anchors =
        |province: &str, page_size| pb::ListAnchorsRequest { province: province.into(), from_seq: 0, page_size };
    refused(f.list_anchors(anchors("12", 0)).await, "province");
    refused(f.list_anchors(anchors(HOME, 10_001)).await, "page_size");
    g.stop_all().await;
}
