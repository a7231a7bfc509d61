//! The OpenAPI 3.0 document of the HTTP gateway, built from the operation table and the
//! proto's own descriptors (field names, types and comments), so it cannot drift from what the
//! gateway reads and writes. Served at `GET /openapi.json`; a copy is checked in at
//! `docs/openapi.json` and a test keeps the two equal.

use std::collections::{BTreeMap, BTreeSet};

use prost::Message;
use prost_types::field_descriptor_proto::{Label, Type};
use prost_types::{DescriptorProto, EnumDescriptorProto, FileDescriptorSet};
use serde_json::{json, Map, Value};

use super::ops::{self, OPS};

const PACKAGE: &str = ".medmesh.v1.";

/// The proto's messages (with their comments and their fields'), enums by short name, and
/// the comments of `HospitalService`'s rpcs.
struct Protos {
    messages: BTreeMap<String, (DescriptorProto, String, Vec<String>)>,
    enums: BTreeMap<String, EnumDescriptorProto>,
    rpcs: BTreeMap<String, String>,
}

fn protos() -> Protos {
    let set = FileDescriptorSet::decode(crate::pb::FILE_DESCRIPTOR_SET).expect("the built descriptor set decodes");
    let mut messages = BTreeMap::new();
    let mut enums = BTreeMap::new();
    let mut rpcs = BTreeMap::new();
    for file in set.file {
        let comments: BTreeMap<Vec<i32>, String> = file
            .source_code_info
            .iter()
            .flat_map(|i| i.location.iter())
            .filter_map(|l| l.leading_comments.as_ref().map(|c| (l.path.clone(), tidy(c))))
            .collect();
        let comment = |path: &[i32]| comments.get(path).cloned().unwrap_or_default();
        for (i, m) in file.message_type.iter().enumerate() {
            let i = i as i32;
            let fields = (0..m.field.len() as i32).map(|f| comment(&[4, i, 2, f])).collect();
            messages.insert(m.name().to_string(), (m.clone(), comment(&[4, i]), fields));
        }
        for e in &file.enum_type {
            enums.insert(e.name().to_string(), e.clone());
        }
        for (si, svc) in file.service.iter().enumerate().filter(|(_, s)| s.name() == "HospitalService") {
            for (mi, m) in svc.method.iter().enumerate() {
                rpcs.insert(m.name().to_string(), comment(&[6, si as i32, 2, mi as i32]));
            }
        }
    }
    Protos { messages, enums, rpcs }
}

/// A proto comment as one line of text.
fn tidy(c: &str) -> String {
    c.split_whitespace().collect::<Vec<_>>().join(" ")
}

fn short(type_name: &str) -> &str {
    type_name.strip_prefix(PACKAGE).unwrap_or(type_name)
}

/// The JSON schema of one field, in the proto3 JSON mapping.
fn field_schema(f: &prost_types::FieldDescriptorProto, protos: &Protos, wanted: &mut Vec<String>) -> Value {
    let one = match f.r#type() {
        Type::String => json!({"type": "string"}),
        Type::Bool => json!({"type": "boolean"}),
        Type::Int32 | Type::Sint32 | Type::Sfixed32 => json!({"type": "integer", "format": "int32"}),
        Type::Uint32 | Type::Fixed32 => json!({"type": "integer", "format": "int32", "minimum": 0}),
        // 64-bit integers are strings in proto3 JSON.
        Type::Int64 | Type::Sint64 | Type::Sfixed64 | Type::Uint64 | Type::Fixed64 => {
            json!({"type": "string", "format": "int64"})
        }
        Type::Bytes => json!({"type": "string", "format": "byte"}),
        Type::Double | Type::Float => json!({"type": "number"}),
        Type::Enum => {
            let name = short(f.type_name());
            let values: Vec<&str> =
                protos.enums.get(name).map(|e| e.value.iter().map(|v| v.name()).collect()).unwrap_or_default();
            json!({"type": "string", "enum": values})
        }
        Type::Message | Type::Group => {
            let name = short(f.type_name()).to_string();
            let schema = json!({"$ref": format!("#/components/schemas/{name}")});
            wanted.push(name);
            schema
        }
    };
    if f.label() == Label::Repeated {
        json!({"type": "array", "items": one})
    } else {
        one
    }
}

/// The schema of message `name` (and those it refers to, pushed on `wanted`).
fn message_schema(name: &str, protos: &Protos, wanted: &mut Vec<String>) -> Value {
    let (m, doc, field_docs) = protos.messages.get(name).unwrap_or_else(|| panic!("{name} is a message of the proto"));
    let mut properties = Map::new();
    for (f, d) in m.field.iter().zip(field_docs) {
        let mut s = field_schema(f, protos, wanted);
        if !d.is_empty() {
            if s.get("$ref").is_some() {
                // A $ref admits no siblings in OpenAPI 3.0.
                s = json!({"allOf": [s], "description": d});
            } else {
                s["description"] = json!(d);
            }
        }
        properties.insert(f.name().to_string(), s);
    }
    json!({"type": "object", "description": doc, "properties": properties, "additionalProperties": false})
}

/// The OpenAPI document (built once per process).
pub fn document() -> &'static Value {
    static DOC: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    DOC.get_or_init(build)
}

fn build() -> Value {
    let protos = protos();
    let mut wanted: Vec<String> = Vec::new();
    let mut paths = Map::new();
    let error = json!({"$ref": "#/components/schemas/Error"});
    let mut table = String::from("| infno | rpc | resource |\n|---|---|---|\n");
    for op in OPS {
        let rpc = op.method.rsplit('/').next().unwrap_or(op.method);
        table.push_str(&format!("| {} | {rpc} | `{} {}` |\n", op.infno, op.verb, op.path));
        wanted.push(op.request.to_string());
        wanted.push(op.response.to_string());
        let rpc_doc = protos.rpcs.get(rpc).cloned().unwrap_or_default();
        let params: Vec<Value> = ops::path_fields(op.path)
            .into_iter()
            .map(|p| {
                json!({"name": p, "in": "path", "required": true, "schema": {"type": "string"},
                       "description": format!("The request's `{p}`; the body may repeat it, with the same value.")})
            })
            .collect();
        let operation = json!({
            "operationId": rpc,
            "summary": op.summary,
            "description": format!("{rpc_doc}\n\nThe envelope's transaction {} (`POST /v1/transactions`) runs the same rpc.", op.infno),
            "parameters": params,
            "requestBody": {"required": false, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{}", op.request)}}}},
            "responses": {
                "200": {"description": "The rpc's response message.", "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{}", op.response)}}}},
                "default": {"description": "Refused: the HTTP status of the gRPC code; the message names the field.", "content": {"application/json": {"schema": error.clone()}}}
            }
        });
        let entry = paths.entry(op.path.to_string()).or_insert_with(|| json!({}));
        entry[op.verb.to_lowercase()] = operation;
    }
    paths.insert(
        "/v1/transactions".into(),
        json!({"post": {
            "operationId": "Transaction",
            "summary": "The envelope of the national platform's interface",
            "description": format!("Runs the rpc of `infno` with `input` as its request message. Answered with HTTP 200 once the body was read; `infcode` 0 is success, any other value is the gRPC status code, with `err_msg` naming the field.\n\n{table}"),
            "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Envelope"}}}},
            "responses": {"200": {"description": "The answer envelope.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/EnvelopeAnswer"}}}}}
        }}),
    );
    paths.insert(
        "/openapi.json".into(),
        json!({"get": {"operationId": "OpenApi", "summary": "This document",
            "responses": {"200": {"description": "The OpenAPI document.", "content": {"application/json": {"schema": {"type": "object"}}}}}}}),
    );
    let mut schemas = Map::new();
    let mut done = BTreeSet::new();
    while let Some(name) = wanted.pop() {
        if done.insert(name.clone()) {
            let s = message_schema(&name, &protos, &mut wanted);
            schemas.insert(name, s);
        }
    }
    let infnos: Vec<&str> = OPS.iter().map(|o| o.infno).collect();
    schemas.insert(
        "Envelope".into(),
        json!({"type": "object", "required": ["infno", "msgid", "input"], "properties": {
            "infno": {"type": "string", "enum": infnos, "description": "Transaction number: which rpc."},
            "msgid": {"type": "string", "minLength": 1, "maxLength": 64, "description": "The message id (printable ASCII), echoed as inf_refmsgid and recorded as the request id in the audit chain."},
            "input": {"type": "object", "description": "The rpc's request message."}
        }}),
    );
    schemas.insert(
        "EnvelopeAnswer".into(),
        json!({"type": "object", "properties": {
            "infcode": {"type": "integer", "description": "0: success; else the gRPC status code."},
            "err_msg": {"type": "string", "description": "Empty on success; else the status message, naming the field at fault."},
            "inf_refmsgid": {"type": "string", "description": "The request's msgid (empty when it could not be read)."},
            "status": {"type": "string", "description": "The gRPC status code's name (OK, INVALID_ARGUMENT, ...)."},
            "output": {"type": "object", "nullable": true, "description": "The rpc's response message; null on failure."}
        }}),
    );
    schemas.insert(
        "Error".into(),
        json!({"type": "object", "properties": {"error": {"type": "object", "properties": {
            "code": {"type": "integer", "description": "The HTTP status."},
            "status": {"type": "string", "description": "The gRPC status code's name."},
            "message": {"type": "string", "description": "What is wrong, naming the field."}
        }}}}),
    );
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "medmesh hospital HTTP/JSON gateway",
            "version": "v1",
            "description": "The hospital rpcs of `proto/medmesh/v1/hospital.proto` as JSON over HTTPS, on a replica's `http_listen`. Callers present the client certificate they use for gRPC (mutual TLS); the access table and the handlers are gRPC's. Messages are the proto3 JSON mapping with the proto's field names: money and quantities are decimal strings, enums are names (numbers are accepted), 64-bit integers are strings."
        },
        "paths": paths,
        "components": {"schemas": schemas}
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb;

    fn checked_in() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/openapi.json")
    }

    /// `docs/openapi.json` is what the gateway serves; `MEDMESH_WRITE_OPENAPI=1` rewrites it.
    #[test]
    fn the_checked_in_document_is_current() {
        let text = serde_json::to_string_pretty(document()).unwrap() + "\n";
        if std::env::var("MEDMESH_WRITE_OPENAPI").as_deref() == Ok("1") {
            std::fs::write(checked_in(), &text).unwrap();
        }
        let have = std::fs::read_to_string(checked_in()).unwrap_or_default();
        assert!(have == text, "docs/openapi.json is stale: run MEDMESH_WRITE_OPENAPI=1 cargo nextest run --release -p medmesh-node openapi");
    }

    #[test]
    fn the_document_is_openapi() {
        let doc: openapiv3::OpenAPI = serde_json::from_value(document().clone()).expect("an OpenAPI 3.0 document");
        assert_eq!(doc.paths.paths.len(), OPS.len() + 2);
    }

    /// Each message's schema lists exactly the fields the JSON mapping writes (an independent
    /// source: pbjson's serializer with every field emitted; a message field left unset is
    /// the one it omits).
    #[test]
    fn schemas_list_the_fields_json_writes() {
        let doc = document();
        let check = |name: &str, written: Value| {
            let props = doc["components"]["schemas"][name]["properties"].as_object().unwrap();
            let listed: BTreeSet<&String> = props.keys().collect();
            let written: BTreeSet<&String> = written.as_object().unwrap().keys().collect();
            assert!(written.is_subset(&listed), "{name}: writes {written:?}, lists {listed:?}");
            for extra in listed.difference(&written) {
                let s = &props[extra.as_str()];
                assert!(s.get("allOf").is_some() || s.get("$ref").is_some(), "{name}.{extra} is listed, never written");
            }
        };
        fn json<T: serde::Serialize + Default>() -> Value {
            serde_json::to_value(T::default()).unwrap()
        }
        check("LookupIdentityRequest", json::<pb::LookupIdentityRequest>());
        check("LookupIdentityResponse", json::<pb::LookupIdentityResponse>());
        check("RegisterVisitRequest", json::<pb::RegisterVisitRequest>());
        check("UploadFeesRequest", json::<pb::UploadFeesRequest>());
        check("FeeLine", json::<pb::FeeLine>());
        check("SettleRequest", json::<pb::SettleRequest>());
        check("SettleResponse", json::<pb::SettleResponse>());
        check("Split", json::<pb::Split>());
        check("ReverseRequest", json::<pb::ReverseRequest>());
        let listed = |name: &str| -> BTreeSet<String> {
            doc["components"]["schemas"][name]["properties"].as_object().unwrap().keys().cloned().collect()
        };
        for op in OPS {
            let props = listed(op.request);
            for p in ops::path_fields(op.path) {
                assert!(props.contains(p), "{}: {p} is not a field of {}", op.path, op.request);
            }
        }
    }
}
