//! The operations the HTTP gateway serves: one table maps each to its transaction number
//! (`infno`), its gRPC method and its resource route, and [`call`] runs it through the gRPC
//! service's own handler.

use std::future::Future;

use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use tonic::{Request, Response, Status};

use crate::access::Caller;
use crate::api::hospital::Hospital;
use crate::pb::hospital_service_server::HospitalService;

/// A hospital rpc.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rpc {
    /// `LookupIdentity`.
    LookupIdentity,
    /// `RegisterVisit`.
    RegisterVisit,
    /// `UploadFees`.
    UploadFees,
    /// `PreSettle`.
    PreSettle,
    /// `Settle`.
    Settle,
    /// `Reverse`.
    Reverse,
}

/// One operation: the same rpc under its transaction number and its resource route.
#[derive(Debug)]
pub struct Op {
    /// The transaction number of the envelope, after the national platform's interface.
    pub infno: &'static str,
    /// The rpc.
    pub rpc: Rpc,
    /// The gRPC method (the access table's key).
    pub method: &'static str,
    /// HTTP method of the resource route.
    pub verb: &'static str,
    /// Resource route; `{name}` segments are fields of the request message.
    pub path: &'static str,
    /// The request message (`medmesh.v1.` omitted).
    pub request: &'static str,
    /// The response message.
    pub response: &'static str,
    /// One line on what it does.
    pub summary: &'static str,
}

/// Every operation of the gateway.
pub const OPS: &[Op] = &[
    Op {
        infno: "1101",
        rpc: Rpc::LookupIdentity,
        method: "/medmesh.v1.HospitalService/LookupIdentity",
        verb: "POST",
        path: "/v1/institutions/{institution_id}/identity-lookups",
        request: "LookupIdentityRequest",
        response: "LookupIdentityResponse",
        summary: "Identity and entitlement of the holder of a certificate (人员信息获取)",
    },
    Op {
        infno: "2201",
        rpc: Rpc::RegisterVisit,
        method: "/medmesh.v1.HospitalService/RegisterVisit",
        verb: "PUT",
        path: "/v1/institutions/{institution_id}/visits/{serial}",
        request: "RegisterVisitRequest",
        response: "RegisterVisitResponse",
        summary: "Registers an outpatient visit or an inpatient admission (就诊登记)",
    },
    Op {
        infno: "2204",
        rpc: Rpc::UploadFees,
        method: "/medmesh.v1.HospitalService/UploadFees",
        verb: "POST",
        path: "/v1/institutions/{institution_id}/visits/{visit_serial}/fees",
        request: "UploadFeesRequest",
        response: "UploadFeesResponse",
        summary: "Uploads fee lines to an open visit (费用明细上传)",
    },
    Op {
        infno: "2206",
        rpc: Rpc::PreSettle,
        method: "/medmesh.v1.HospitalService/PreSettle",
        verb: "POST",
        path: "/v1/institutions/{institution_id}/visits/{visit_serial}/quote",
        request: "PreSettleRequest",
        response: "PreSettleResponse",
        summary: "A quote for an open visit; nothing moves (预结算)",
    },
    Op {
        infno: "2207",
        rpc: Rpc::Settle,
        method: "/medmesh.v1.HospitalService/Settle",
        verb: "PUT",
        path: "/v1/institutions/{institution_id}/settlements/{serial}",
        request: "SettleRequest",
        response: "SettleResponse",
        summary: "Settles an open visit, exactly once per serial (结算)",
    },
    Op {
        infno: "2208",
        rpc: Rpc::Reverse,
        method: "/medmesh.v1.HospitalService/Reverse",
        verb: "PUT",
        path: "/v1/institutions/{institution_id}/reversals/{serial}",
        request: "ReverseRequest",
        response: "ReverseResponse",
        summary: "Reverses a whole settlement (结算撤销)",
    },
];

/// The operation of transaction number `infno`.
pub fn by_infno(infno: &str) -> Option<&'static Op> {
    OPS.iter().find(|o| o.infno == infno)
}

/// The names of a route's `{field}` segments, in order.
pub fn path_fields(path: &str) -> Vec<&str> {
    path.split('/').filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}'))).collect()
}

/// Runs `op` for `caller` with `input` (the request message in the proto3 JSON mapping) through
/// the gRPC service's own handler, and answers the response message as JSON.
pub async fn call(hospital: &Hospital, op: &Op, caller: Caller, input: Value) -> Result<Value, Status> {
    match op.rpc {
        Rpc::LookupIdentity => run(caller, input, |r| hospital.lookup_identity(r)).await,
        Rpc::RegisterVisit => run(caller, input, |r| hospital.register_visit(r)).await,
        Rpc::UploadFees => run(caller, input, |r| hospital.upload_fees(r)).await,
        Rpc::PreSettle => run(caller, input, |r| hospital.pre_settle(r)).await,
        Rpc::Settle => run(caller, input, |r| hospital.settle(r)).await,
        Rpc::Reverse => run(caller, input, |r| hospital.reverse(r)).await,
    }
}

async fn run<Req, Resp, F, Fut>(caller: Caller, input: Value, handler: F) -> Result<Value, Status>
where
    Req: DeserializeOwned,
    Resp: Serialize,
    F: FnOnce(Request<Req>) -> Fut,
    Fut: Future<Output = Result<Response<Resp>, Status>>,
{
    let message: Req = decode(input)?;
    let mut req = Request::new(message);
    req.extensions_mut().insert(caller);
    let resp = handler(req).await?;
    serde_json::to_value(resp.into_inner())
        .map_err(|e| Status::internal(format!("output: cannot be written as JSON ({e})")))
}

/// The request message from its JSON, or INVALID_ARGUMENT naming the field (`input.{path}`).
pub fn decode<Req: DeserializeOwned>(input: Value) -> Result<Req, Status> {
    serde_path_to_error::deserialize(input).map_err(|e| {
        let path = e.path().to_string();
        let at = if path == "." { "input".to_string() } else { format!("input.{path}") };
        Status::invalid_argument(format!("{at}: {}", e.inner()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pb;

    #[test]
    fn transaction_numbers_and_routes_are_unique() {
        let mut infnos = std::collections::BTreeSet::new();
        let mut routes = std::collections::BTreeSet::new();
        for op in OPS {
            assert!(infnos.insert(op.infno), "{} twice", op.infno);
            assert!(routes.insert((op.verb, op.path)), "{} {} twice", op.verb, op.path);
            assert!(crate::access::rule(op.method).is_some(), "{} has no access rule", op.method);
        }
    }

    #[test]
    fn json_names_the_field_it_cannot_read() {
        let e = decode::<pb::UploadFeesRequest>(serde_json::json!({
            "institution_id": "H1", "visit_serial": "V1",
            "lines": [{"serial": "L1", "code": "X", "quantity": 2, "unit_price": "1.00", "date": "2026-12-01"}]
        }))
        .unwrap_err();
        assert_eq!(e.code(), tonic::Code::InvalidArgument);
        assert!(e.message().starts_with("input.lines[0].quantity: "), "{}", e.message());
        let e = decode::<pb::SettleRequest>(serde_json::json!({"serial": "S1", "amount": "5"})).unwrap_err();
        assert!(e.message().starts_with("input") && e.message().contains("amount"), "{}", e.message());
        let e = decode::<pb::SettleRequest>(serde_json::json!(["S1"])).unwrap_err();
        assert!(e.message().starts_with("input: "), "{}", e.message());
    }

    #[test]
    fn enums_read_by_name_or_number() {
        let by_name: pb::RegisterVisitRequest =
            decode(serde_json::json!({"certificate_kind": "CERTIFICATE_KIND_ID_CARD", "kind": "VISIT_KIND_INPATIENT"}))
                .unwrap();
        let by_number: pb::RegisterVisitRequest =
            decode(serde_json::json!({"certificate_kind": 2, "kind": 2})).unwrap();
        assert_eq!(by_name, by_number);
        assert_eq!(by_name.certificate_kind, pb::CertificateKind::IdCard as i32);
        assert_eq!(by_name.kind, pb::VisitKind::Inpatient as i32);
    }
}
