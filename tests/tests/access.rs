//! Issue 10: who may call what, through real replica processes over real mTLS.
//!
//! - every rpc × every kind of caller, against an expectation written here independently of
//!   the node's access table (allowed calls may fail on their empty request, but never with
//!   UNAUTHENTICATED or PERMISSION_DENIED; refused calls get exactly those);
//! - plaintext, a certificate of an unknown CA, an expired certificate and a revoked one;
//! - a hospital naming another institution, an agency of another province;
//! - forged cross-group messages: a replica of a province that is not part of a transfer
//!   proposing its decision, or registering another province's endpoints.

use std::collections::BTreeMap;

use medmesh_node::identity::Identity;
use medmesh_node::network::channel;
use medmesh_node::pb;
use medmesh_node::pki::{Pki, Transport};
use medmesh_tests::{
    agency, free_base_port, id, institution, national, operator, report_officer, transport, Group, Mesh,
};
use tonic::Code;

const HOME: &str = "110000";
const OTHER: &str = "310000";

/// The callers of the walk; `None` is a client without a certificate.
fn callers() -> Vec<(String, Option<Identity>)> {
    let mut v: Vec<(String, Option<Identity>)> = vec![("anonymous".into(), None)];
    for who in [
        institution(HOME, 1),
        institution(OTHER, 1),
        agency(HOME),
        agency(OTHER),
        national(),
        id(&format!("medmesh://replica/{HOME}/1")),
        id(&format!("medmesh://replica/{OTHER}/1")),
        operator(HOME),
        operator(OTHER),
        report_officer(HOME),
        report_officer(OTHER),
    ] {
        v.push((who.uri(), Some(who)));
    }
    v
}

/// Whether `who` may call `method` on a replica of province [`HOME`]: the rules as the issue
/// and the README state them, written out here by service.
fn expected(method: &str, who: Option<&Identity>) -> bool {
    let (service, name) = method.trim_start_matches('/').split_once('/').unwrap();
    let home_institution = matches!(who, Some(Identity::Institution { province, .. }) if province.as_str() == HOME);
    let any_institution = matches!(who, Some(Identity::Institution { .. }));
    let home_agency = matches!(who, Some(Identity::Agency { province }) if province.as_str() == HOME);
    let any_agency = matches!(who, Some(Identity::Agency { .. }));
    let national = matches!(who, Some(Identity::National));
    let home_replica = matches!(who, Some(Identity::Replica { group, .. }) if group.as_str() == HOME);
    let any_replica = matches!(who, Some(Identity::Replica { .. }));
    let home_operator = matches!(who, Some(Identity::Operator { group }) if group.as_str() == HOME);
    match service {
        "medmesh.v1.HospitalService" => home_institution,
        "medmesh.v1.AgencyService" => {
            home_agency
                // Inspection plans and draws are public ("一公开").
                || (name == "GetInspectionPlan" && who.is_some())
                || (national
                    && matches!(
                        name,
                        "GetFund"
                            | "ListDiscipline"
                            | "GetPolicy"
                            | "GetInstitution"
                            | "ListAudit"
                            | "ReconcileClearing"
                            | "GetFlightInspection"
                            | "ListFlightInspections"
                            | "GetCreditRating"
                            | "ListCommitments"
                            | "ListIncentives"
                    ))
        }
        "medmesh.v1.FederationService" => match name {
            "ListProvinces" => who.is_some(),
            "TopUp" => any_agency,
            "RunClearing" | "SettleClearing" | "ResolveClearingDispute" | "PutNationalRule" | "GetNonLocalFlows" => {
                national
            }
            "ConfirmClearingLine" | "DisputeClearingLine" => any_institution,
            _ => any_agency || national,
        },
        // Disclosure is public ("信息公开") to anyone the mesh knows.
        // An agency publishes its own province's aggregates.
        "medmesh.v1.DisclosureService" => match name {
            "PublishAggregate" => home_agency,
            _ => who.is_some(),
        },
        // Reports: anyone reports and follows a report; the agency handles; only the report
        // officer of the province reads who reported.
        "medmesh.v1.ReportService" => match name {
            "SubmitReport" | "GetReportStatus" => true,
            "OpenReporter" => matches!(who, Some(Identity::ReportOfficer { province }) if province.as_str() == HOME),
            "GetReportPolicy" => home_agency || national,
            _ => home_agency,
        },
        "medmesh.v1.RaftService" => home_replica,
        "medmesh.v1.MeshService" => any_replica && !home_replica,
        "medmesh.v1.AdminService" => home_operator || (name == "Status" && home_replica),
        "grpc.health.v1.Health" => true,
        _ => who.is_some(),
    }
}

fn ch(addr: &str, who: &Option<Identity>) -> tonic::transport::Channel {
    let t = match who {
        Some(w) => transport(w),
        None => medmesh_tests::pki().anonymous().unwrap(),
    };
    channel(addr, &t).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rpc_admits_exactly_the_documented_roles() {
    let mesh = Mesh::start(&[HOME], 4).await;
    let g = mesh.province(HOME);
    let leader = g.replica(g.leader().await);
    let (public, internal) = (leader.addr.clone(), leader.internal.clone());
    let mut wrong = Vec::new();
    let mut counts = BTreeMap::<&str, u32>::new();
    for rule in medmesh_node::access::TABLE {
        // Streaming methods cannot be called as unary; their rows are checked by the unit
        // tests of the table.
        if rule.method.ends_with("/Watch") || rule.method.ends_with("/ServerReflectionInfo") {
            continue;
        }
        // Raft and admin live on the internal listener only; everything else on the public
        // one only: the other listener does not know the service at all.
        let inside =
            rule.method.contains("/medmesh.v1.RaftService/") || rule.method.contains("/medmesh.v1.AdminService/");
        let (addr, other) = if inside { (&internal, &public) } else { (&public, &internal) };
        if !rule.method.contains("/grpc.") {
            let who = Some(operator(HOME));
            let got = medmesh_tests::raw::call(ch(other, &who), rule.method, Vec::new()).await;
            if got.as_ref().err().map(|s| s.code()) != Some(Code::Unimplemented) {
                wrong.push(format!("{} is served on the wrong listener: {got:?}", rule.method));
            }
        }
        for (name, who) in callers() {
            let got = medmesh_tests::raw::call(ch(addr, &who), rule.method, Vec::new()).await;
            let want = expected(rule.method, who.as_ref());
            let code = got.as_ref().err().map(|s| s.code()).unwrap_or(Code::Ok);
            let refused = matches!(code, Code::Unauthenticated | Code::PermissionDenied);
            *counts.entry(if refused { "refused" } else { "admitted" }).or_default() += 1;
            if want == refused {
                wrong.push(format!(
                    "{} as {name}: want {}, got {code:?} {:?}",
                    rule.method,
                    if want { "admitted" } else { "refused" },
                    got.err().map(|s| s.message().to_string())
                ));
            } else if refused {
                let want_code = if who.is_none() { Code::Unauthenticated } else { Code::PermissionDenied };
                let s = got.unwrap_err();
                if s.code() != want_code {
                    wrong.push(format!("{} as {name}: want {want_code:?}, got {:?}", rule.method, s.code()));
                } else if let Some(w) = &who {
                    if !s.message().contains(&w.uri()) {
                        wrong.push(format!(
                            "{} as {name}: the refusal should name the caller: {}",
                            rule.method,
                            s.message()
                        ));
                    }
                }
            }
        }
    }
    println!("rpc x role walk: {counts:?}");
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

/// A call that never reached a handler because the connection was refused during the TLS
/// handshake (the client sees the transport fail, however its stack words it).
fn handshake_failed(err: &tonic::Status) -> bool {
    matches!(err.code(), Code::Unavailable | Code::Unknown | Code::Cancelled)
        && (err.message().contains("transport error")
            || err.message().contains("canceled")
            || err.message().contains("connection")
            || err.message().contains("tcp connect error"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_certificates_and_plaintext_are_refused() {
    let revoked = agency(OTHER);
    let revoked_files = medmesh_tests::pki().ensure(&revoked, &[]).unwrap();
    let fingerprint =
        medmesh_node::pki::fingerprint_of_pem(&std::fs::read_to_string(&revoked_files.cert).unwrap()).unwrap();
    let mut g = Group::start(HOME, 1, free_base_port(), &[("MEDMESH_TLS_DENY", fingerprint)]);
    g.leader().await;
    let addr = g.replica(1).addr.clone();
    let status = pb::GetFundRequest {};
    let fund = |t: Transport| {
        let addr = addr.clone();
        async move {
            let mut c = pb::agency_service_client::AgencyServiceClient::new(channel(&addr, &t).unwrap());
            c.get_fund(status).await.map(|_| ())
        }
    };
    // The agency itself is served.
    fund(transport(&agency(HOME))).await.expect("the agency reads its fund");

    // Plaintext on the TLS port: no answer.
    let err = fund(Transport::Insecure).await.unwrap_err();
    assert!(handshake_failed(&err) || err.code() == Code::Internal, "plaintext: {err:?}");

    // A certificate from another CA: the handshake fails.
    let rogue_dir = tempfile::tempdir().unwrap();
    let rogue = Pki::open_or_create(rogue_dir.path()).unwrap();
    let files = rogue.ensure(&agency(HOME), &[]).unwrap();
    let t = Transport::Tls(std::sync::Arc::new(
        medmesh_node::pki::Tls::load(&medmesh_tests::pki().ca_path(), Some((&files.cert, &files.key))).unwrap(),
    ));
    // (The handshake fails on the server's side: the client sees the connection end.)
    let err = fund(t).await.unwrap_err();
    assert!(handshake_failed(&err), "unknown CA: {err:?}");

    // An expired certificate of the right CA: the handshake fails.
    let now = time::OffsetDateTime::now_utc();
    let files = medmesh_tests::pki()
        .issue(&agency(HOME), &[], now - time::Duration::days(30), now - time::Duration::days(1), "expired-agency")
        .unwrap();
    let err = fund(Transport::from_files(&files).unwrap()).await.unwrap_err();
    assert!(handshake_failed(&err), "expired: {err:?}");

    // A revoked certificate (on the replica's deny list): UNAUTHENTICATED.
    let mut c =
        pb::federation_service_client::FederationServiceClient::new(channel(&addr, &transport(&revoked)).unwrap());
    let err = c.list_provinces(pb::ListProvincesRequest {}).await.unwrap_err();
    assert_eq!(err.code(), Code::Unauthenticated, "{err:?}");
    assert!(err.message().contains("revoked"), "{}", err.message());
    assert!(g.log(1).contains("certificate on the deny list"), "the refusal is logged");
    g.stop_all().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callers_act_only_for_themselves() {
    let mut g = Group::start(HOME, 1, free_base_port(), &[]);
    g.leader().await;
    medmesh_node::demo::load(g.agency(1), HOME, 4).await.expect("demo data");
    // Institution 1 of 110000 naming institution 2.
    let mut h = g.hospital(1);
    let mut req = medmesh_node::demo::visit_request(HOME, "V1", 1, 1, &medmesh_node::demo::today());
    req.institution_id = medmesh_node::demo::institution(HOME, 2);
    req.doctor_code = medmesh_node::demo::doctor(HOME, 3);
    let err = h.register_visit(req.clone()).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    assert!(err.message().contains(&req.institution_id), "names the resource: {}", err.message());
    assert!(err.message().contains("medmesh://province/110000/institution/"), "names the caller: {}", err.message());
    // The same request as institution 2 itself is served.
    let mut h2 = pb::hospital_service_client::HospitalServiceClient::new(g.channel_as(1, &institution(HOME, 2)));
    h2.register_visit(req).await.expect("institution 2 registers its own visit");

    // The agency of 310000 writing 110000's register.
    let mut a = pb::agency_service_client::AgencyServiceClient::new(g.channel_as(1, &agency(OTHER)));
    let err = a.put_person(medmesh_node::demo::person(HOME, 99)).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    assert!(err.message().contains("medmesh://agency/310000"), "{}", err.message());
    // An agency topping up another province's prepaid account.
    let mut f = pb::federation_service_client::FederationServiceClient::new(g.channel_as(1, &agency(HOME)));
    let err = f
        .top_up(pb::TopUpRequest {
            province: OTHER.into(),
            serial: "T1".into(),
            amount: "100".into(),
            warning_below: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    g.stop_all().await;
}

/// A replica's forwarded command, as bytes of the Raft service's Propose.
async fn propose_as(
    addr: &str,
    who: &Identity,
    cmd: impl Into<medmesh_state::Command>,
) -> Result<Vec<u8>, tonic::Status> {
    use prost::Message;
    let body = pb::MeshServiceProposeRequest { data: bincode::serialize(&cmd.into()).unwrap() }.encode_to_vec();
    medmesh_tests::raw::call(channel(addr, &transport(who)).unwrap(), "/medmesh.v1.MeshService/Propose", body).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_cross_group_messages_are_refused() {
    use medmesh_state::{Decision, FederationCommand, ProvinceCommand, ProvinceEntry, TransferId};
    use medmesh_types::{InstitutionId, Money, ProvinceCode, Serial};
    let mut fed = Group::start(medmesh_state::FEDERATION, 1, free_base_port(), &[]);
    fed.leader().await;
    let addr = fed.replica(1).addr.clone();
    let p = |c: &str| ProvinceCode::new(c.to_string()).unwrap();
    let transfer = TransferId {
        treatment: p(HOME),
        institution: InstitutionId::new("H110000-01".to_string()).unwrap(),
        serial: Serial::new("S1".to_string()).unwrap(),
    };
    let decide = FederationCommand::Decide {
        transfer: transfer.clone(),
        insured: p(OTHER),
        amount: Money::parse_yuan("100").unwrap(),
        decision: Decision::Commit,
        reason: String::new(),
    };
    // 440000 is neither side of the transfer.
    let stranger = id("medmesh://replica/440000/1");
    let err = propose_as(&addr, &stranger, decide.clone()).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    assert!(err.message().contains("440000"), "{}", err.message());
    // Another province's endpoints.
    let entry =
        FederationCommand::RegisterProvince(ProvinceEntry { province: p(HOME), endpoints: vec!["10.0.0.1:1".into()] });
    let err = propose_as(&addr, &stranger, entry.clone()).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    // A province command sent to the federation by a province replica.
    let err = propose_as(&addr, &stranger, ProvinceCommand::UnpostReservation { transfer }).await.unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    // A replica of another group may not replicate into this one.
    let err = medmesh_tests::raw::call(
        channel(&fed.replica(1).internal, &transport(&stranger)).unwrap(),
        "/medmesh.v1.RaftService/AppendEntries",
        Vec::new(),
    )
    .await
    .unwrap_err();
    assert_eq!(err.code(), Code::PermissionDenied, "{err:?}");
    // The treatment province itself may propose the decision, but a commit must carry what the
    // insured province vouched for: with no vouch (or another amount) nothing is owed.
    let treatment = id(&format!("medmesh://replica/{HOME}/1"));
    let bytes = propose_as(&addr, &treatment, decide.clone()).await.expect("an answer");
    let data = <pb::MeshServiceProposeResponse as prost::Message>::decode(&bytes[..]).unwrap().data;
    let answer: Result<medmesh_state::CommandResult, medmesh_node::app::ForwardError> =
        bincode::deserialize(&data).unwrap();
    match answer {
        Ok(Err(e)) => {
            assert_eq!((e.code, e.field.as_str()), (medmesh_state::ErrorCode::FailedPrecondition, "amount"), "{e}")
        }
        other => panic!("a commit nobody vouched for was recorded: {other:?}"),
    }
    // The province registering its own endpoints is served.
    let own = FederationCommand::RegisterProvince(ProvinceEntry {
        province: p("440000"),
        endpoints: vec!["127.0.0.1:1".into()],
    });
    propose_as(&addr, &stranger, own.clone()).await.expect("a province registers its own endpoints");
    fed.stop_all().await;
}

/// The insured province checks the filing a treatment province claims against the
/// federation's record before it reserves anything, and that the certificate the claim names
/// is the person's.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claimed_filing_is_checked_with_the_federation() {
    use medmesh_state::{
        directory_key, Answer, CertificateKind, FilingKind, ProvinceCommand, Query, RemoteClaim, TransferId,
    };
    use medmesh_types::{Date, InstitutionId, KeyedHash, ProvinceCode, Serial};
    let mesh = Mesh::start(&[OTHER], 8).await;
    let g = mesh.province(OTHER);
    let addr = g.replica(g.leader().await).addr.clone();
    let treatment = id(&format!("medmesh://replica/{HOME}/1"));
    // The insured province's handle of a person, as a treatment province learns it.
    let handle = |person: u32| {
        let (addr, treatment) = (addr.clone(), treatment.clone());
        async move {
            use prost::Message;
            let q = Query::RemotePerson {
                kind: CertificateKind::SocialSecurityCard,
                number: medmesh_node::demo::ss_card(OTHER, person),
            };
            let body = pb::MeshServiceQueryRequest { data: bincode::serialize(&q).unwrap() }.encode_to_vec();
            let bytes = medmesh_tests::raw::call(
                channel(&addr, &transport(&treatment)).unwrap(),
                "/medmesh.v1.MeshService/Query",
                body,
            )
            .await
            .unwrap();
            let data = pb::MeshServiceQueryResponse::decode(&bytes[..]).unwrap().data;
            type Reply = Result<Result<Answer, medmesh_state::DomainError>, medmesh_node::app::ForwardError>;
            match bincode::deserialize::<Reply>(&data).unwrap() {
                Ok(Ok(Answer::RemotePerson(p))) => {
                    assert_eq!(p.name, format!("Person {person}"), "the name is opened at the insured edge");
                    p.handle
                }
                other => panic!("{other:?}"),
            }
        }
    };
    let card_key = |person: u32| {
        directory_key(
            medmesh_tests::DIRECTORY_SECRET,
            CertificateKind::SocialSecurityCard,
            &medmesh_node::demo::ss_card(OTHER, person),
        )
    };
    let reserve = |filing: FilingKind, handle: KeyedHash, person_key: String| ProvinceCommand::Reserve {
        transfer: TransferId {
            treatment: ProvinceCode::new(HOME.to_string()).unwrap(),
            institution: InstitutionId::new(medmesh_node::demo::institution(HOME, 1)).unwrap(),
            serial: Serial::new("S-1").unwrap(),
        },
        handle,
        person_key,
        claim: RemoteClaim {
            institution_level: 3,
            filing,
            use_individual_account: false,
            admitted: Date::parse(&medmesh_node::demo::today()).unwrap(),
            lines: Vec::new(),
            items: Vec::new(),
            kind: medmesh_state::VisitKind::Outpatient,
            doctor: medmesh_types::PersonnelCode::new(medmesh_node::demo::doctor(HOME, 1)).unwrap(),
            department: "internal medicine".into(),
            diagnosis: "J06.900".into(),
            rule_self_pay: Default::default(),
        },
    };
    let answer = |bytes: Vec<u8>| {
        let data = <pb::MeshServiceProposeResponse as prost::Message>::decode(&bytes[..]).unwrap().data;
        bincode::deserialize::<Result<medmesh_state::CommandResult, medmesh_node::app::ForwardError>>(&data).unwrap()
    };
    let four = handle(4).await;
    // Person 4 of the demo has no filing at all: a claimed referral is refused.
    match answer(propose_as(&addr, &treatment, reserve(FilingKind::Referral, four.clone(), card_key(4))).await.unwrap())
    {
        Ok(Err(e)) => assert_eq!(e.field, "claim.filing", "{e}"),
        other => panic!("a referral nobody filed was taken: {other:?}"),
    }
    // Person 2 has a referral on file: borrowing that certificate for person 4 is refused.
    match answer(propose_as(&addr, &treatment, reserve(FilingKind::Referral, four.clone(), card_key(2))).await.unwrap())
    {
        Ok(Err(e)) => assert_eq!(e.field, "person_key", "{e}"),
        other => panic!("another person's filing was borrowed: {other:?}"),
    }
    // An emergency is taken as declared: the check lets it through to the reserve itself.
    match answer(propose_as(&addr, &treatment, reserve(FilingKind::Emergency, four, card_key(4))).await.unwrap()) {
        Ok(Err(e)) => assert!(e.field != "claim.filing" && e.field != "person_key", "{e}"),
        Ok(Ok(_)) => {}
        other => panic!("{other:?}"),
    }
}
