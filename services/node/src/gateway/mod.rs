//! HTTP/JSON for hospital systems (issue 14.3): the hospital rpcs as JSON over HTTPS, on the
//! listener `http_listen`.
//!
//! Two mappings of the same operations ([`ops::OPS`]):
//!
//! - **The envelope**, after the national platform's interface: `POST /v1/transactions` with
//!   `{"infno": "2207", "msgid": "...", "input": {...}}`, answered (always HTTP 200 once a body
//!   was read) with `{"infcode": 0, "err_msg": "", "inf_refmsgid": "...", "status": "OK",
//!   "output": {...}}`. `infcode` is the gRPC status code (0 for success) and `err_msg` its
//!   message, which names the field at fault.
//! - **Resources**: e.g. `PUT /v1/institutions/{institution_id}/settlements/{serial}` with the
//!   rest of the request message as the body; answered with the response message, or an HTTP
//!   status from the gRPC code and `{"error": {"code", "status", "message"}}`.
//!
//! `input`, bodies and outputs are the rpc's request and response messages in the proto3 JSON
//! mapping, with the proto's field names (see `build.rs`). `GET /openapi.json` serves the
//! OpenAPI document ([`openapi`]).
//!
//! One implementation: each request passes the access table of [`crate::access`] for its
//! gRPC method, with the certificate the TLS connection presented, and then runs the gRPC
//! service's own handler ([`ops::call`]), so identities, roles, validation, idempotency and
//! errors are those of gRPC. The audit chain records the envelope's `msgid` (or the
//! `x-request-id` header) as the request id.
//!
//! Why these crates: `axum` routes (already under tonic and the metrics listener), `hyper-util`
//! serves HTTP/1.1 and HTTP/2 on one port, `tokio-rustls` with rustls and `ring` (the TLS
//! stack tonic uses here) terminates TLS, so that the handshake's verified client certificate
//! reaches the access check; `serde_path_to_error` names the JSON field a request gets wrong.
//!
//! The same listener serves the dashboard for people under `/dashboard/` ([`crate::dashboard`]).

pub mod openapi;
pub mod ops;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use axum::body::Body;
use axum::extract::{Extension, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, on, MethodFilter};
use axum::Router;
use http_body_util::BodyExt;
use serde_json::{json, Map, Value};
use tonic::{Code, Status};

use crate::access::{Caller, Policy};
use crate::api::hospital::Hospital;
use crate::wire_status::code_name;
use ops::Op;

/// Largest JSON body the gateway reads; a larger one is RESOURCE_EXHAUSTED naming `request`.
pub const MAX_JSON: usize = 4 * 1024 * 1024;

/// What the handlers share.
pub struct Gateway {
    hospital: Hospital,
    policy: Arc<Policy>,
    dashboard: Option<Arc<crate::dashboard::Dashboard>>,
}

impl Gateway {
    /// A gateway to `hospital` behind `policy`, serving `dashboard` too when there is one.
    pub fn new(
        hospital: Hospital,
        policy: Arc<Policy>,
        dashboard: Option<Arc<crate::dashboard::Dashboard>>,
    ) -> Gateway {
        Gateway { hospital, policy, dashboard }
    }
}

/// The client certificate (DER) the connection's TLS handshake verified, if any.
#[derive(Clone, Default)]
struct PeerCert(Option<Arc<Vec<u8>>>);

/// The routes.
fn router(gateway: Arc<Gateway>) -> Router {
    let dashboard = crate::dashboard::router(gateway.dashboard.clone());
    let mut r = Router::new()
        .route("/v1/transactions", axum::routing::post(envelope))
        .route("/openapi.json", get(|| async { axum::Json(openapi::document()) }));
    for op in ops::OPS {
        let filter = match op.verb {
            "PUT" => MethodFilter::PUT,
            _ => MethodFilter::POST,
        };
        r = r.route(
            op.path,
            on(
                filter,
                move |State(g): State<Arc<Gateway>>,
                      Extension(peer): Extension<PeerCert>,
                      params: axum::extract::RawPathParams,
                      headers: HeaderMap,
                      body: Body| async move {
                    let params: Vec<(String, String)> =
                        params.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
                    resource(g, op, peer, params, headers, body).await
                },
            ),
        );
    }
    r.fallback(|| async {
        error_response(Status::not_found("path: no such resource (see /openapi.json)"), StatusCode::NOT_FOUND)
    })
    .with_state(gateway)
    .merge(dashboard)
}

/// Serves the gateway on `addr` (TLS with `tls`, or plaintext for an `--insecure` run) until
/// `stop` resolves.
pub async fn serve(
    addr: SocketAddr,
    tls: Option<Arc<rustls::ServerConfig>>,
    gateway: Arc<Gateway>,
    stop: impl std::future::Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("http_listen: binding {addr}"))?;
    let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
    let app = router(gateway);
    tracing::info!(%addr, tls = acceptor.is_some(), "http gateway serving");
    tokio::pin!(stop);
    loop {
        let (tcp, peer_addr) = tokio::select! {
            _ = &mut stop => return Ok(()),
            accepted = listener.accept() => match accepted {
                Ok(a) => a,
                Err(e) => {
                    tracing::warn!(error = %e, "http gateway: accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
        };
        let app = app.clone();
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let _ = tcp.set_nodelay(true);
            match acceptor {
                Some(acceptor) => {
                    // A client that does not finish its handshake in time is dropped.
                    let tls = match tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => {
                            tracing::debug!(%peer_addr, error = %e, "http gateway: TLS handshake failed");
                            return;
                        }
                        Err(_) => return,
                    };
                    let cert =
                        tls.get_ref().1.peer_certificates().and_then(|c| c.first()).map(|c| Arc::new(c.to_vec()));
                    connection(hyper_util::rt::TokioIo::new(tls), app, PeerCert(cert)).await;
                }
                None => connection(hyper_util::rt::TokioIo::new(tcp), app, PeerCert(None)).await,
            }
        });
    }
}

async fn connection<I>(io: I, app: Router, peer: PeerCert)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    use tower::ServiceExt;
    let service = hyper::service::service_fn(move |mut req: hyper::Request<hyper::body::Incoming>| {
        req.extensions_mut().insert(peer.clone());
        app.clone().oneshot(req.map(Body::new))
    });
    let mut builder = hyper_util::server::conn::auto::Builder::new(hyper_util::rt::TokioExecutor::new());
    // A client that does not finish sending its headers in time is dropped (slow-loris).
    builder.http1().timer(hyper_util::rt::TokioTimer::new()).header_read_timeout(Duration::from_secs(30));
    if let Err(e) = builder.serve_connection(io, service).await {
        tracing::debug!(error = %e, "http gateway: connection ended with an error");
    }
}

/// How much of a body over [`MAX_JSON`] is read (and dropped) so that the refusal reaches a
/// client still sending; past this the connection is cut.
const DRAIN_LIMIT: usize = 64 * 1024 * 1024;

/// Reads a JSON body of at most [`MAX_JSON`] bytes.
async fn read_json(mut body: Body) -> Result<Option<Value>, Status> {
    let mut bytes: Vec<u8> = Vec::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|e| Status::invalid_argument(format!("request: body could not be read ({e})")))?;
        if let Ok(data) = frame.into_data() {
            seen = seen.saturating_add(data.len());
            if seen <= MAX_JSON {
                bytes.extend_from_slice(&data);
            } else if seen > DRAIN_LIMIT {
                break;
            }
        }
    }
    if seen > MAX_JSON {
        return Err(Status::resource_exhausted(format!(
            "request: JSON body of more than {MAX_JSON} bytes (the limit)"
        )));
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| Status::invalid_argument(format!("request: malformed JSON ({e})")))
}

/// Admits the caller of `op` (the access table of its gRPC method) and runs it, timed and
/// counted under the method like a gRPC call, inside the audit origin of `request_id`.
async fn admit_and_call(
    g: &Gateway,
    op: &'static Op,
    peer: &PeerCert,
    request_id: Option<&str>,
    input: Value,
) -> Result<Value, Status> {
    let caller: Caller = g.policy.decide(op.method, peer.0.as_deref().map(|c| c.as_slice()))?;
    crate::access::serve(op.method, &caller, request_id, ops::call(&g.hospital, op, caller.clone(), input)).await
}

/// `POST /v1/transactions`: the envelope.
async fn envelope(State(g): State<Arc<Gateway>>, Extension(peer): Extension<PeerCert>, body: Body) -> Response {
    let mut msgid = String::new();
    let result = async {
        let Some(Value::Object(mut env)) = read_json(body).await? else {
            return Err(Status::invalid_argument(
                "request: the body must be a JSON object with infno, msgid and input",
            ));
        };
        msgid = match env.remove("msgid") {
            Some(Value::String(s)) if medmesh_state::audit::valid_request_id(&s) => s,
            Some(Value::String(_)) => {
                return Err(Status::invalid_argument("msgid: 1 to 64 printable ASCII characters without spaces"))
            }
            Some(_) => return Err(Status::invalid_argument("msgid: must be a string")),
            None => return Err(Status::invalid_argument("msgid: required")),
        };
        let infno = match env.remove("infno") {
            Some(Value::String(s)) => s,
            Some(Value::Number(n)) => n.to_string(),
            Some(_) => return Err(Status::invalid_argument("infno: must be a string such as \"2207\"")),
            None => return Err(Status::invalid_argument("infno: required")),
        };
        let Some(op) = ops::by_infno(&infno) else {
            let known: Vec<&str> = ops::OPS.iter().map(|o| o.infno).collect();
            return Err(Status::invalid_argument(format!(
                "infno: unknown transaction number {:?} (known: {})",
                truncate(&infno),
                known.join(", ")
            )));
        };
        let input = match env.remove("input") {
            Some(v @ Value::Object(_)) => v,
            Some(_) => return Err(Status::invalid_argument("input: must be a JSON object")),
            None => return Err(Status::invalid_argument("input: required")),
        };
        admit_and_call(&g, op, &peer, Some(&msgid), input).await
    }
    .await;
    let (infcode, err_msg, status, output) = match result {
        Ok(output) => (0, String::new(), Code::Ok, output),
        Err(s) => (s.code() as i32, s.message().to_string(), s.code(), Value::Null),
    };
    axum::Json(json!({
        "infcode": infcode,
        "err_msg": err_msg,
        "inf_refmsgid": msgid,
        "status": code_name(status),
        "output": output,
    }))
    .into_response()
}

/// A resource route of `op`.
async fn resource(
    g: Arc<Gateway>,
    op: &'static Op,
    peer: PeerCert,
    params: Vec<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let result = async {
        let mut input = match read_json(body).await? {
            None => Map::new(),
            Some(Value::Object(m)) => m,
            Some(_) => return Err(Status::invalid_argument("request: the body must be a JSON object")),
        };
        for (name, value) in params {
            match input.get(&name) {
                Some(Value::String(s)) if *s != value => {
                    return Err(Status::invalid_argument(format!(
                        "{name}: the path says {:?}, the body {:?}",
                        truncate(&value),
                        truncate(s)
                    )))
                }
                _ => {
                    input.insert(name, Value::String(value));
                }
            }
        }
        let request_id = headers.get("x-request-id").and_then(|v| v.to_str().ok());
        admit_and_call(&g, op, &peer, request_id, Value::Object(input)).await
    }
    .await;
    match result {
        Ok(output) => axum::Json(output).into_response(),
        Err(s) => {
            let http = http_status(s.code());
            error_response(s, http)
        }
    }
}

fn error_response(s: Status, http: StatusCode) -> Response {
    let body = json!({"error": {"code": http.as_u16(), "status": code_name(s.code()), "message": s.message()}});
    (http, axum::Json(body)).into_response()
}

/// At most 64 characters of a value echoed in an error.
fn truncate(s: &str) -> String {
    s.chars().take(64).collect()
}

/// The HTTP status of a gRPC code, as Google's HTTP mapping of `google.rpc.Code` has it (a body
/// over the limit is 413).
pub fn http_status(code: Code) -> StatusCode {
    match code {
        Code::Ok => StatusCode::OK,
        Code::InvalidArgument | Code::FailedPrecondition | Code::OutOfRange => StatusCode::BAD_REQUEST,
        Code::Unauthenticated => StatusCode::UNAUTHORIZED,
        Code::PermissionDenied => StatusCode::FORBIDDEN,
        Code::NotFound => StatusCode::NOT_FOUND,
        Code::AlreadyExists | Code::Aborted => StatusCode::CONFLICT,
        Code::ResourceExhausted => StatusCode::PAYLOAD_TOO_LARGE,
        Code::Cancelled => StatusCode::from_u16(499).unwrap_or(StatusCode::BAD_REQUEST),
        Code::Unimplemented => StatusCode::NOT_IMPLEMENTED,
        Code::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        Code::DeadlineExceeded => StatusCode::GATEWAY_TIMEOUT,
        Code::Unknown | Code::Internal | Code::DataLoss => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The TLS settings of the gateway: the replica's certificate, client certificates from the
/// CA asked for but optional (a request without one is UNAUTHENTICATED from the access table,
/// like gRPC), HTTP/2 and HTTP/1.1 by ALPN.
pub fn tls_config(
    ca: &std::path::Path,
    cert: &std::path::Path,
    key: &std::path::Path,
) -> anyhow::Result<Arc<rustls::ServerConfig>> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut roots = rustls::RootCertStore::empty();
    for c in CertificateDer::pem_file_iter(ca).with_context(|| format!("reading CA {}", ca.display()))? {
        roots.add(c.context("tls_ca")?).context("tls_ca")?;
    }
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider.clone())
        .allow_unauthenticated()
        .build()
        .context("client certificate verifier")?;
    let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(cert)
        .with_context(|| format!("reading certificate {}", cert.display()))?
        .collect::<Result<_, _>>()
        .context("tls_cert")?;
    let key = PrivateKeyDer::from_pem_file(key).with_context(|| format!("reading key {}", key.display()))?;
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .context("tls versions")?
        .with_client_cert_verifier(verifier)
        .with_single_cert(chain, key)
        .context("tls_cert and tls_key")?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_code_maps_to_an_error_status_but_ok() {
        for c in 1..=16 {
            let code = Code::from_i32(c);
            assert!(http_status(code).as_u16() >= 400, "{code:?}");
            assert_ne!(code_name(code), "OK");
        }
    }

    #[test]
    fn msgids_are_request_ids() {
        use medmesh_state::audit::valid_request_id;
        assert!(valid_request_id("H110000012026120410000001"));
        assert!(!valid_request_id(""));
        assert!(!valid_request_id("a b"));
        assert!(!valid_request_id(&"x".repeat(65)));
    }
}
