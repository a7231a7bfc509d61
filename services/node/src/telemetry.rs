//! Logging and tracing: `tracing` to stderr — as text, or as one JSON object per line when
//! `MEDMESH_LOG_FORMAT=json` — and OpenTelemetry spans over OTLP/gRPC when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (or `MEDMESH_OTLP_ENDPOINT`) names a collector.
//!
//! Log fields never carry a raw identity number: `PersonId` prints masked.
//!
//! **One trace across groups.** Every rpc a replica serves runs in a span ([`rpc_span`]) whose
//! parent is the W3C trace context (`traceparent`) the caller sent in its gRPC metadata, and
//! every call to another group carries the current span's context ([`inject`]): a non-local
//! settlement is one trace over the treatment province, the federation and the insured
//! province. The propagator is the W3C Trace Context one. A replica carries a context on only
//! while it exports spans (without an OTLP endpoint it records none), so every replica of a
//! traced mesh should name the collector.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::WithExportConfig as _;
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::EnvFilter;

/// Keeps the tracer provider alive; flushes spans when dropped.
pub struct Telemetry {
    provider: Option<SdkTracerProvider>,
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        if let Some(p) = self.provider.take() {
            let _ = p.shutdown();
        }
    }
}

/// Writes a trace context into gRPC metadata.
struct MetadataInjector<'a>(&'a mut tonic::metadata::MetadataMap);

impl opentelemetry::propagation::Injector for MetadataInjector<'_> {
    fn set(&mut self, key: &str, value: String) {
        if let (Ok(k), Ok(v)) =
            (tonic::metadata::MetadataKey::from_bytes(key.as_bytes()), tonic::metadata::MetadataValue::try_from(value))
        {
            self.0.insert(k, v);
        }
    }
}

/// Reads a trace context from HTTP/2 headers.
struct HeaderExtractor<'a>(&'a tonic::codegen::http::HeaderMap);

impl opentelemetry::propagation::Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(|k| k.as_str()).collect()
    }
}

/// Carries the current span's trace context into the metadata of an outgoing call.
pub fn inject(metadata: &mut tonic::metadata::MetadataMap) {
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    let cx = tracing::Span::current().context();
    opentelemetry::global::get_text_map_propagator(|p| p.inject_context(&cx, &mut MetadataInjector(metadata)));
}

/// The span of a served rpc `method`: a child of the trace context the caller's `headers`
/// carry, or a new trace.
pub fn rpc_span(method: &str, headers: &tonic::codegen::http::HeaderMap) -> tracing::Span {
    use tracing_opentelemetry::OpenTelemetrySpanExt as _;
    // Replication and probes run many times a second and belong to no request's story.
    if method.starts_with("/medmesh.v1.RaftService/") || method.starts_with("/grpc.health.") {
        return tracing::Span::none();
    }
    let parent = opentelemetry::global::get_text_map_propagator(|p| p.extract(&HeaderExtractor(headers)));
    let span = tracing::info_span!("rpc", otel.name = %method, otel.kind = "server", rpc.system = "grpc");
    // Fails only when no OpenTelemetry layer is installed, and then there is nothing to link.
    let _ = span.set_parent(parent);
    span
}

/// Installs the global subscriber for `service` (for example `medmesh-110000-1`).
pub fn init(service: &str) -> anyhow::Result<Telemetry> {
    opentelemetry::global::set_text_map_propagator(opentelemetry_sdk::propagation::TraceContextPropagator::new());
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,openraft=warn".into());
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let json = match std::env::var("MEDMESH_LOG_FORMAT").unwrap_or_default().as_str() {
        "" | "text" => false,
        "json" => true,
        other => anyhow::bail!("MEDMESH_LOG_FORMAT: {other:?} is neither text nor json"),
    };
    let text = (!json)
        .then(|| tracing_subscriber::fmt::layer().with_target(false).with_ansi(ansi).with_writer(std::io::stderr));
    let json = json.then(|| tracing_subscriber::fmt::layer().json().with_writer(std::io::stderr));
    let endpoint = std::env::var("MEDMESH_OTLP_ENDPOINT")
        .ok()
        .or_else(|| std::env::var("OTEL_EXPORTER_OTLP_ENDPOINT").ok())
        .filter(|e| !e.is_empty());
    let registry = tracing_subscriber::registry().with(filter).with(text).with(json);
    match endpoint {
        Some(ep) => {
            let exporter = opentelemetry_otlp::SpanExporter::builder().with_tonic().with_endpoint(ep).build()?;
            let provider = SdkTracerProvider::builder()
                .with_batch_exporter(exporter)
                .with_resource(Resource::builder().with_service_name(service.to_string()).build())
                .build();
            let tracer = provider.tracer("medmesh");
            registry.with(tracing_opentelemetry::layer().with_tracer(tracer)).try_init()?;
            Ok(Telemetry { provider: Some(provider) })
        }
        None => {
            registry.try_init()?;
            Ok(Telemetry { provider: None })
        }
    }
}
