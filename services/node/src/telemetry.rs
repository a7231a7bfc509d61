//! Logging and tracing: `tracing` to stderr — as text, or as one JSON object per line when
//! `MEDMESH_LOG_FORMAT=json` — and OpenTelemetry spans over OTLP/gRPC when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (or `MEDMESH_OTLP_ENDPOINT`) names a collector.
//!
//! Log fields never carry a raw identity number: `PersonId` prints masked.

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

/// Installs the global subscriber for `service` (for example `medmesh-110000-1`).
pub fn init(service: &str) -> anyhow::Result<Telemetry> {
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
