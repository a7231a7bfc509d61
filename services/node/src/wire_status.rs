//! The statuses `common.proto` promises for requests that never reach a handler.
//!
//! tonic answers a request body that is not a protobuf message of the method's type with
//! INTERNAL (its default for a decode error) and one above the size limit with OUT_OF_RANGE.
//! [`contract_status`] wraps a public service and rewrites those answers to INVALID_ARGUMENT
//! (`request: malformed protobuf message (...)`) and RESOURCE_EXHAUSTED (`request: message of
//! N bytes is larger than the limit of L bytes`). Everything else passes through unchanged.
//!
//! tonic sends these errors before any handler runs, as a trailers-only response whose
//! message is tonic's or prost's own text; the rewrite recognises exactly those texts.

use tonic::body::Body;
use tonic::codegen::http;

use crate::map_response::MapResponse;
use tonic::{Code, Status};

/// Wraps a gRPC service (whose decoding limit is `limit` bytes, named in the message) so that
/// decode and size errors get the statuses of the contract.
pub fn contract_status<S>(
    inner: S,
    limit: usize,
) -> MapResponse<S, impl Fn(http::Response<Body>) -> http::Response<Body> + Clone + Send + Sync + 'static> {
    MapResponse::new(inner, move |resp: http::Response<Body>| {
        // A trailers-only answer carries its status in the headers.
        let Some(status) = Status::from_header_map(resp.headers()) else { return resp };
        match rewrite(status.code(), status.message(), limit) {
            Some(fixed) => {
                tracing::debug!(from = ?status.code(), to = ?fixed.code(), message = fixed.message(), "request refused before its handler");
                fixed.into_http()
            }
            None => resp,
        }
    })
}

/// What prost's `DecodeError` prints before its description.
const PROST_DECODE: &str = "failed to decode Protobuf message: ";
/// tonic's text for a frame longer than the decoding limit.
const TONIC_TOO_LARGE: &str = "Error, decoded message length too large: found ";
/// tonic's text for a body that ends inside a frame.
const TONIC_EOF: &str = "Unexpected EOF decoding stream.";
/// tonic's text for a unary call whose body holds no message.
const TONIC_MISSING: &str = "Missing request message.";

/// The status the contract promises for a status tonic produced while decoding a request, or
/// `None` to leave it as it is.
pub fn rewrite(code: Code, message: &str, limit: usize) -> Option<Status> {
    match code {
        Code::Internal => {
            if let Some(detail) = message.strip_prefix(PROST_DECODE) {
                Some(Status::invalid_argument(format!("request: malformed protobuf message ({detail})")))
            } else if message == TONIC_EOF {
                Some(Status::invalid_argument("request: malformed gRPC body (it ends inside a message)"))
            } else if message == TONIC_MISSING {
                Some(Status::invalid_argument("request: the body holds no message"))
            } else {
                None
            }
        }
        Code::OutOfRange => {
            let rest = message.strip_prefix(TONIC_TOO_LARGE)?;
            let len: String = rest.chars().take_while(char::is_ascii_digit).collect();
            let len = if len.is_empty() { "more".to_string() } else { len };
            Some(Status::resource_exhausted(format!(
                "request: message of {len} bytes is larger than the limit of {limit} bytes"
            )))
        }
        _ => None,
    }
}

/// The gRPC code's name, as `google.rpc.Code` spells it.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_prost_decode_error_becomes_invalid_argument() {
        let s = rewrite(Code::Internal, "failed to decode Protobuf message: buffer underflow", 10).unwrap();
        assert_eq!(s.code(), Code::InvalidArgument);
        assert_eq!(s.message(), "request: malformed protobuf message (buffer underflow)");
    }

    #[test]
    fn an_oversize_message_becomes_resource_exhausted() {
        let s = rewrite(
            Code::OutOfRange,
            "Error, decoded message length too large: found 4194400 bytes, the limit is: 4194304 bytes",
            4194304,
        )
        .unwrap();
        assert_eq!(s.code(), Code::ResourceExhausted);
        assert_eq!(s.message(), "request: message of 4194400 bytes is larger than the limit of 4194304 bytes");
    }

    #[test]
    fn truncated_and_empty_bodies_are_invalid_arguments() {
        assert_eq!(rewrite(Code::Internal, TONIC_EOF, 1).unwrap().code(), Code::InvalidArgument);
        assert_eq!(rewrite(Code::Internal, TONIC_MISSING, 1).unwrap().code(), Code::InvalidArgument);
    }

    #[test]
    fn other_statuses_pass_through() {
        assert!(rewrite(Code::Internal, "bad reply from leader: x", 1).is_none());
        assert!(rewrite(Code::OutOfRange, "lines[0].date: out of range", 1).is_none());
        assert!(rewrite(Code::InvalidArgument, "failed to decode Protobuf message: x", 1).is_none());
        assert!(rewrite(Code::Unavailable, "no leader elected", 1).is_none());
    }
}
