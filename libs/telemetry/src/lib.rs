//! Logs and traces for every binary. `RUST_LOG` filters the log lines (on stderr) and
//! `FRAMEOS_LOG_FORMAT=json` makes them machine-readable. The INFO-and-above spans of our own
//! crates are also OpenTelemetry spans, so one trace follows an execution from the REST call to
//! the node (W3C trace context: [`inject`], [`set_parent`]). They are exported over OTLP/gRPC
//! only when `OTEL_EXPORTER_OTLP_ENDPOINT` is set; without it they still get ids and propagate.
//!
//! Spans follow the OpenTelemetry conventions: the `otel.kind`, `otel.name` and
//! `otel.status_code` fields set a span's kind, name and status, and fields named after the
//! semantic conventions (`http.*`, `rpc.*`, `messaging.*`) become its attributes. gRPC calls get
//! their spans from the [`grpc`] layers, which carry the trace context in the call's metadata.

pub mod grpc;
mod log_fields;
mod propagation;
#[cfg(test)]
mod tests;

use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use opentelemetry::KeyValue;
use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{BatchConfigBuilder, BatchSpanProcessor, SdkTracerProvider};
use tracing::{Level, Span, Subscriber};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

pub use propagation::{
    MAX_TRACESTATE, inject, inject_http, set_parent, set_parent_from_http, trace_id,
};

static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// [`init_for`] with the service name `frameos`.
pub fn init() {
    init_for("frameos");
}

/// Installs the global subscriber, tracer provider and W3C propagator. Safe to call more than
/// once (later calls do nothing). Call [`shutdown`] before exiting to flush exported spans.
pub fn init_for(service_name: &'static str) {
    install(service_name, Output::Stderr);
}

/// For tests that check propagation: log lines go to the test harness, nothing is exported.
pub fn init_for_tests() {
    install("frameos-test", Output::Test);
}

/// For tests that check the exported spans: as [`init_for`], exporting over OTLP/gRPC to
/// `endpoint` (whatever the environment says) every 100 ms. The subscriber is process-wide, so a
/// test process that calls this exports everything its services trace.
pub fn init_exporting_to(service_name: &'static str, endpoint: &str) {
    install(service_name, Output::Endpoint(endpoint.to_owned()));
}

/// Records a span that already ended, from `start` to `end`, as a child of `parent`: a phase
/// that began before this process knew of it (an execution waiting in the queue). tracing spans
/// start when they are created, so this one is made with OpenTelemetry directly.
pub fn record_past_span(
    name: &'static str,
    parent: &Span,
    start: SystemTime,
    end: SystemTime,
    attributes: &[(&'static str, String)],
) {
    let Some(provider) = PROVIDER.get() else {
        return;
    };
    let tracer = provider.tracer("frameos");
    let mut span = tracer
        .span_builder(name)
        .with_start_time(start)
        .with_attributes(
            attributes
                .iter()
                .map(|(key, value)| KeyValue::new(*key, value.clone())),
        )
        .start_with_context(&tracer, &parent.context());
    span.end_with_timestamp(end.max(start));
}

/// Exports the spans still buffered and stops exporting.
pub fn shutdown() {
    if let Some(provider) = PROVIDER.get()
        && let Err(error) = provider.shutdown()
    {
        tracing::warn!(%error, "could not flush the last spans");
    }
}

#[derive(Clone, PartialEq, Eq)]
enum Output {
    Stderr,
    Test,
    /// As `Stderr`, exporting to this endpoint.
    Endpoint(String),
}

fn install(service_name: &'static str, output: Output) {
    if PROVIDER.get().is_some() {
        return;
    }
    let (exporter, exporter_error) = match &output {
        Output::Stderr => otlp_exporter(None),
        Output::Endpoint(endpoint) => otlp_exporter(Some(endpoint)),
        Output::Test => (None, None),
    };
    let mut builder = SdkTracerProvider::builder()
        .with_resource(Resource::builder().with_service_name(service_name).build());
    match (exporter, &output) {
        (Some(exporter), Output::Endpoint(_)) => {
            let config = BatchConfigBuilder::default()
                .with_scheduled_delay(Duration::from_millis(100))
                .build();
            builder = builder.with_span_processor(
                BatchSpanProcessor::builder(exporter)
                    .with_batch_config(config)
                    .build(),
            );
        }
        (Some(exporter), _) => builder = builder.with_batch_exporter(exporter),
        (None, _) => {}
    }
    let provider = builder.build();

    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("FRAMEOS_LOG_FORMAT").is_ok_and(|v| v == "json");
    let fmt = || tracing_subscriber::fmt::layer().with_target(true);
    let text = fmt().fmt_fields(log_fields::LogFields);
    // Logs go to stderr so that stdout stays for what a command prints for its user.
    let fmt: Box<dyn Layer<Registry> + Send + Sync> = match output {
        Output::Test => text.with_test_writer().with_ansi(false).boxed(),
        Output::Endpoint(_) => text.with_test_writer().with_ansi(false).boxed(),
        Output::Stderr if json => fmt().json().with_writer(std::io::stderr).boxed(),
        Output::Stderr => text
            .with_writer(std::io::stderr)
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .boxed(),
    };
    let installed = tracing_subscriber::registry()
        .with(fmt.with_filter(filter))
        .with(otel_layer(&provider, service_name))
        .try_init();
    if installed.is_ok() {
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        let _ = PROVIDER.set(provider);
        if let Some(error) = exporter_error {
            tracing::warn!(%error, "OTLP export disabled");
        }
    }
}

/// The OpenTelemetry layer, with its own filter: `RUST_LOG=warn` must not break propagation,
/// and dependencies' spans (tonic, h2, the exporter's own calls) are noise in a trace.
fn otel_layer<S>(provider: &SdkTracerProvider, service_name: &'static str) -> impl Layer<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    tracing_opentelemetry::layer()
        .with_tracer(provider.tracer(service_name))
        .with_filter(filter_fn(|meta| {
            meta.target().starts_with("frameos") && *meta.level() <= Level::INFO
        }))
}

/// The OTLP/gRPC exporter to `endpoint`, else when `OTEL_EXPORTER_OTLP_ENDPOINT` is set (the
/// exporter reads it and the other `OTEL_EXPORTER_OTLP_*` variables), or why there is none.
fn otlp_exporter(
    endpoint: Option<&str>,
) -> (Option<opentelemetry_otlp::SpanExporter>, Option<String>) {
    if endpoint.is_none()
        && std::env::var_os("OTEL_EXPORTER_OTLP_ENDPOINT").is_none_or(|v| v.is_empty())
    {
        return (None, None);
    }
    // tonic spawns its connection on the current Tokio runtime.
    if tokio::runtime::Handle::try_current().is_err() {
        return (None, Some("no Tokio runtime at start-up".into()));
    }
    let mut builder = opentelemetry_otlp::SpanExporter::builder().with_tonic();
    if let Some(endpoint) = endpoint {
        builder = builder.with_endpoint(endpoint);
    }
    match builder.build() {
        Ok(exporter) => (Some(exporter), None),
        Err(error) => (None, Some(error.to_string())),
    }
}
