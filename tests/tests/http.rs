//! Issue 14.3: the hospital rpcs as JSON over HTTPS, driven with `curl` as a hospital system
//! would: the national platform's envelope (`infno` 1101, 2201, 2204, 2206, 2207, 2208) and the
//! resource routes, with the same client certificates and roles as gRPC. A real province group:
//! three replica processes, RocksDB, mutual TLS on every listener.

use std::time::Duration;

use medmesh_node::dev::http_of;
use medmesh_node::{demo, pb};
use medmesh_tests::{free_base_port, institution, pki, wait_until, yuan, Group};
use serde_json::{json, Value};

const PROVINCE: &str = "110000";

/// Who calls: a certificate of the test CA, or none.
#[derive(Clone, Copy)]
enum As<'a> {
    Cert(&'a medmesh_node::identity::Identity),
    Nobody,
}

/// Runs curl against `url` with `method` and `body` (JSON text); answers the HTTP status and the
/// body as JSON.
fn curl(who: As<'_>, method: &str, url: &str, body: Option<&[u8]>, extra: &[&str]) -> (u16, Value) {
    let ca = pki().ca_path();
    let mut c = std::process::Command::new("curl");
    c.args(["--silent", "--show-error", "--max-time", "30", "--cacert"]).arg(&ca);
    if let As::Cert(id) = who {
        let f = pki().ensure(id, &[]).expect("certificate");
        c.arg("--cert").arg(&f.cert).arg("--key").arg(&f.key);
    }
    c.args(["-X", method, "-H", "content-type: application/json", "-w", "\n%{http_code}"]);
    c.args(extra);
    if body.is_some() {
        c.args(["--data-binary", "@-"]);
    }
    c.arg(url);
    c.stdin(std::process::Stdio::piped()).stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped());
    let mut child = c.spawn().expect("curl is installed");
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        if let Some(b) = body {
            stdin.write_all(b).unwrap();
        }
    }
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "curl {method} {url}: {}", String::from_utf8_lossy(&out.stderr));
    let text = String::from_utf8(out.stdout).unwrap();
    let (body, code) = text.rsplit_once('\n').unwrap();
    let json =
        if body.is_empty() { Value::Null } else { serde_json::from_str(body).unwrap_or(Value::String(body.into())) };
    (code.parse().unwrap(), json)
}

/// Sends the envelope of `infno` with `input`; answers the answer envelope (after checking it
/// is HTTP 200 and echoes the msgid).
fn envelope(base: &str, who: As<'_>, infno: &str, msgid: &str, input: Value) -> Value {
    let body = json!({"infno": infno, "msgid": msgid, "input": input}).to_string();
    let (code, answer) = curl(who, "POST", &format!("{base}/v1/transactions"), Some(body.as_bytes()), &[]);
    assert_eq!(code, 200, "{answer}");
    assert_eq!(answer["inf_refmsgid"], msgid, "{answer}");
    answer
}

/// The output of a successful answer envelope.
fn ok(answer: Value) -> Value {
    assert_eq!(answer["infcode"], 0, "{answer}");
    assert_eq!(answer["err_msg"], "", "{answer}");
    answer["output"].clone()
}

/// A refused envelope: `infcode` is the gRPC code and `err_msg` starts with the field.
fn refused(answer: &Value, code: tonic::Code, field: &str) {
    assert_eq!(answer["infcode"], code as i32, "{answer}");
    let msg = answer["err_msg"].as_str().unwrap();
    assert!(msg.starts_with(&format!("{field}:")), "want {field} named: {answer}");
    assert!(answer["output"].is_null(), "{answer}");
}

/// Ten fee lines of the demo catalogue, as JSON, and their total computed here.
fn lines(n: u64, day: &str) -> (Value, medmesh_types::Money) {
    let lines = demo::fee_lines(n, day);
    let mut total = medmesh_types::Money::ZERO;
    let json: Vec<Value> = lines
        .iter()
        .map(|l| {
            // Demo quantities are whole numbers: a line is its price that many times.
            let q: u32 = l.quantity.parse().unwrap();
            total += (0..q).map(|_| yuan(&l.unit_price)).sum();
            json!({"serial": l.serial, "code": l.code, "quantity": l.quantity, "unit_price": l.unit_price, "date": l.date})
        })
        .collect();
    (Value::Array(json), total)
}

fn money(v: &Value) -> medmesh_types::Money {
    yuan(v.as_str().unwrap_or_else(|| panic!("a decimal string: {v}")))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claim_settles_end_to_end_over_http_with_curl() {
    let g = Group::start(PROVINCE, 3, free_base_port(), &[]);
    let leader = g.leader().await;
    demo::load(g.agency(leader), PROVINCE, 20).await.expect("demo data");
    // Any replica serves the gateway (a follower forwards to the leader, as over gRPC).
    let follower = g.replicas.iter().map(|r| r.id).find(|id| *id != leader).unwrap();
    let base = format!("https://{}", http_of(&g.replica(follower).addr).unwrap());
    let hospital = institution(PROVINCE, 1);
    let inst = demo::institution(PROVINCE, 1);
    let day = demo::today();
    let me = As::Cert(&hospital);
    wait_until(Duration::from_secs(30), "the gateway to listen", || async {
        std::net::TcpStream::connect(http_of(&g.replica(follower).addr).unwrap()).ok().map(|_| ())
    })
    .await;

    // 1101: identity.
    let who = ok(envelope(
        &base,
        me,
        "1101",
        "M1101-1",
        json!({"institution_id": inst, "certificate_kind": "CERTIFICATE_KIND_SOCIAL_SECURITY_CARD",
               "certificate": demo::ss_card(PROVINCE, 3)}),
    ));
    let id = demo::person_id(PROVINCE, 3);
    let masked = who["masked_id"].as_str().unwrap();
    assert!(
        masked.starts_with(&id[..3]) && masked.ends_with(&id[id.len() - 4..]) && !masked.contains(&id[3..14]),
        "{who}"
    );
    assert_eq!(who["insurance_status"], "ACTIVE");

    // 2201 register, 2204 upload, 2206 quote, 2207 settle.
    let visit = json!({"institution_id": inst, "serial": "HV1", "certificate_kind": "CERTIFICATE_KIND_SOCIAL_SECURITY_CARD",
        "certificate": demo::ss_card(PROVINCE, 3), "kind": "VISIT_KIND_OUTPATIENT", "doctor_code": demo::doctor(PROVINCE, 1),
        "department": "internal medicine", "diagnosis": "J06.900", "admitted": day});
    let registered = ok(envelope(&base, me, "2201", "M2201-1", visit.clone()));
    assert_eq!(registered["serial"], "HV1");
    assert_eq!(registered["masked_id"], who["masked_id"]);
    let (fee_lines, total) = lines(3, &day);
    let up = ok(envelope(
        &base,
        me,
        "2204",
        "M2204-1",
        json!({"institution_id": inst, "visit_serial": "HV1", "lines": fee_lines}),
    ));
    assert_eq!(up["line_count"], 10);
    assert_eq!(money(&up["total"]), total);
    let quote = ok(envelope(
        &base,
        me,
        "2206",
        "M2206-1",
        json!({"institution_id": inst, "visit_serial": "HV1", "use_individual_account": true}),
    ));
    let settle =
        json!({"institution_id": inst, "serial": "HS1", "visit_serial": "HV1", "use_individual_account": true});
    let settled = ok(envelope(&base, me, "2207", "M2207-1", settle.clone()));
    assert_eq!(settled["status"], "SETTLED");
    assert_eq!(settled["split"], quote["split"], "the settlement is what was quoted");
    let split = &settled["split"];
    assert_eq!(money(&split["total"]), total, "the split covers every line, computed here from the lines");
    let parts = ["pooling_fund", "critical_illness", "medical_assistance", "individual_account", "cash"];
    let sum = parts.iter().fold(medmesh_types::Money::ZERO, |a, p| a + money(&split[*p]));
    assert_eq!(sum, total, "fund parts and cash add up to the total: {split}");
    assert!(settled["settled_at_ms"].as_str().unwrap().parse::<i64>().unwrap() > 0, "int64 as a string: {settled}");

    // The same settlement through gRPC: one implementation, exactly once across protocols.
    let again = g
        .hospital(leader)
        .settle(pb::SettleRequest {
            lines: Vec::new(),
            institution_id: inst.clone(),
            serial: "HS1".into(),
            visit_serial: "HV1".into(),
            use_individual_account: true,
        })
        .await
        .expect("the retry over gRPC answers the first outcome")
        .into_inner();
    assert_eq!(serde_json::to_value(again.split.unwrap()).unwrap(), settled["split"]);
    assert_eq!(again.settled_at_ms.to_string(), settled["settled_at_ms"].as_str().unwrap());
    // A retry of the envelope with the same serial, over HTTP/1.1 this time, answers it too.
    let body = json!({"infno": "2207", "msgid": "M2207-2", "input": settle}).to_string();
    let (code, retry) = curl(me, "POST", &format!("{base}/v1/transactions"), Some(body.as_bytes()), &["--http1.1"]);
    assert_eq!(code, 200);
    assert_eq!(ok(retry)["split"], settled["split"]);
    // The same serial for another visit is refused; nothing moves.
    let other = json!({"institution_id": inst, "serial": "HS1", "visit_serial": "HV9", "use_individual_account": true});
    refused(&envelope(&base, me, "2207", "M2207-3", other), tonic::Code::AlreadyExists, "serial");

    // 2208: reversal.
    let reversed = ok(envelope(
        &base,
        me,
        "2208",
        "M2208-1",
        json!({"institution_id": inst, "serial": "HR1", "settlement_serial": "HS1"}),
    ));
    assert_eq!(reversed["status"], "REVERSED");
    assert_eq!(reversed["split"], settled["split"]);

    // The resource routes: the same rpcs, path fields merged into the body.
    let res = |p: &str| format!("{base}/v1/institutions/{inst}{p}");
    let mut v2 = visit.clone();
    v2.as_object_mut().unwrap().remove("serial");
    v2.as_object_mut().unwrap().remove("institution_id");
    let (code, r) = curl(me, "PUT", &res("/visits/HV2"), Some(v2.to_string().as_bytes()), &[]);
    assert_eq!((code, &r["serial"]), (200, &json!("HV2")), "{r}");
    let (fee_lines, total2) = lines(4, &day);
    let (code, r) =
        curl(me, "POST", &res("/visits/HV2/fees"), Some(json!({"lines": fee_lines}).to_string().as_bytes()), &[]);
    assert_eq!(code, 200, "{r}");
    assert_eq!(money(&r["total"]), total2);
    let (code, r) = curl(me, "PUT", &res("/settlements/HS2"), Some(br#"{"visit_serial": "HV2"}"#), &[]);
    assert_eq!(code, 200, "{r}");
    assert_eq!(money(&r["split"]["total"]), total2);
    assert_eq!(money(&r["split"]["individual_account"]), medmesh_types::Money::ZERO, "the account was not asked for");
    let (code, r) = curl(me, "PUT", &res("/reversals/HR2"), Some(br#"{"settlement_serial": "HS2"}"#), &[]);
    assert_eq!((code, &r["status"]), (200, &json!("REVERSED")), "{r}");
    let (code, r) = curl(
        me,
        "POST",
        &res("/identity-lookups"),
        Some(json!({"certificate_kind": 3, "certificate": demo::ss_card(PROVINCE, 3)}).to_string().as_bytes()),
        &[],
    );
    assert_eq!((code, &r["masked_id"]), (200, &who["masked_id"]), "{r}");

    // Bad input, each a clear answer naming the field; nothing half-applied.
    let refusals: Vec<(&str, Value, tonic::Code, &str)> = vec![
        ("9999", json!({}), tonic::Code::InvalidArgument, "infno"),
        (
            "2207",
            json!({"institution_id": inst, "serial": "HS3", "visit_serial": "HV2", "use_individual_account": "yes"}),
            tonic::Code::InvalidArgument,
            "input.use_individual_account",
        ),
        (
            "2204",
            json!({"institution_id": inst, "visit_serial": "HV2",
            "lines": [{"serial": "L1", "code": "XA0001", "quantity": 2, "unit_price": "1.00", "date": day}]}),
            tonic::Code::InvalidArgument,
            "input.lines[0].quantity",
        ),
        (
            "2207",
            json!({"institution_id": inst, "serial": "HS3", "visit_serial": "HV2", "amount": "1.00"}),
            tonic::Code::InvalidArgument,
            "input.amount",
        ),
        (
            "2201",
            json!({"institution_id": inst, "serial": "HV3", "certificate_kind": "CERTIFICATE_KIND_SOCIAL_SECURITY_CARD",
            "certificate": demo::ss_card(PROVINCE, 3), "kind": "VISIT_KIND_OUTPATIENT", "doctor_code": demo::doctor(PROVINCE, 1),
            "department": "x", "diagnosis": "J06.900", "admitted": "2099-01-01"}),
            tonic::Code::InvalidArgument,
            "admitted",
        ),
        (
            "2207",
            json!({"institution_id": demo::institution(PROVINCE, 2), "serial": "HS3", "visit_serial": "HV2"}),
            tonic::Code::PermissionDenied,
            "institution_id",
        ),
    ];
    for (i, (infno, input, code, field)) in refusals.into_iter().enumerate() {
        let a = envelope(&base, me, infno, &format!("MBAD-{i}"), input);
        if code == tonic::Code::PermissionDenied {
            assert_eq!(a["infcode"], code as i32, "{a}");
            assert!(a["err_msg"].as_str().unwrap().contains("institution_id"), "{a}");
        } else {
            refused(&a, code, field);
        }
    }
    let post = |who: As<'_>, body: &[u8]| curl(who, "POST", &format!("{base}/v1/transactions"), Some(body), &[]);
    let (code, a) = post(me, b"{\"infno\": \"2207\", ");
    assert_eq!(code, 200);
    refused(&a, tonic::Code::InvalidArgument, "request");
    assert_eq!(a["inf_refmsgid"], "");
    let (_, a) = post(me, br#"{"infno": "2207", "input": {}}"#);
    refused(&a, tonic::Code::InvalidArgument, "msgid");
    let (_, a) = post(me, br#"{"infno": "2207", "msgid": "M-no-input"}"#);
    refused(&a, tonic::Code::InvalidArgument, "input");
    let huge = format!(r#"{{"infno": "2204", "msgid": "M-huge", "input": {{"pad": "{}"}}}}"#, "x".repeat(5 << 20));
    let (_, a) = post(me, huge.as_bytes());
    refused(&a, tonic::Code::ResourceExhausted, "request");
    // No certificate: the access table's answer, as over gRPC.
    let a = envelope(
        &base,
        As::Nobody,
        "2207",
        "M-anon",
        json!({"institution_id": inst, "serial": "HS3", "visit_serial": "HV2"}),
    );
    assert_eq!(a["infcode"], tonic::Code::Unauthenticated as i32, "{a}");
    // Resource refusals carry HTTP statuses.
    let (code, r) =
        curl(me, "PUT", &res("/settlements/HS3"), Some(br#"{"visit_serial": "HV2", "institution_id": "OTHER"}"#), &[]);
    assert_eq!(code, 400, "{r}");
    assert!(r["error"]["message"].as_str().unwrap().starts_with("institution_id:"), "{r}");
    let (code, r) = curl(me, "PUT", &res("/settlements/HS1"), Some(br#"{"visit_serial": "HV2"}"#), &[]);
    assert_eq!((code, &r["error"]["status"]), (409, &json!("ALREADY_EXISTS")), "{r}");
    let (code, r) = curl(me, "GET", &format!("{base}/v1/nothing"), None, &[]);
    assert_eq!((code, &r["error"]["status"]), (404, &json!("NOT_FOUND")), "{r}");
    // Nothing was half-applied: the refused uploads added no line to HV2, and HS3 never settled.
    let doc = g
        .hospital(leader)
        .get_expense_document(pb::GetExpenseDocumentRequest { institution_id: inst.clone(), serial: "HS3".into() })
        .await;
    assert_eq!(doc.expect_err("HS3 never settled").code(), tonic::Code::NotFound);
    let (code, r) = curl(me, "POST", &res("/visits/HV2/quote"), Some(b"{}"), &[]);
    assert_eq!(code, 200, "{r}");
    assert_eq!(money(&r["split"]["total"]), total2, "HV2 holds its ten lines, nothing more");

    // The OpenAPI document the gateway serves is the one checked in.
    let (code, served) = curl(As::Nobody, "GET", &format!("{base}/openapi.json"), None, &[]);
    assert_eq!(code, 200);
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/openapi.json");
    let checked_in: Value = serde_json::from_str(&std::fs::read_to_string(root).unwrap()).unwrap();
    assert_eq!(served, checked_in);
}
