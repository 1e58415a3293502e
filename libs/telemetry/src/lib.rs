//! Logs and traces for every binary. `RUST_LOG` filters the log lines (on stderr) and
//! `FRAMEOS_LOG_FORMAT=json` makes them machine-readable. The INFO-and-above spans of our own
//! crates are also OpenTelemetry spans, so one trace follows an execution from the REST call to
//! the node (W3C trace context: [`inject`], [`set_parent`]). They are exported over OTLP/gRPC
//! only when `OTEL_EXPORTER_OTLP_ENDPOINT` is set; without it they still get ids and propagate.

mod propagation;
#[cfg(test)]
mod tests;

use std::sync::OnceLock;

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing::{Level, Subscriber};
use tracing_subscriber::filter::filter_fn;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

pub use propagation::{inject, set_parent, set_parent_from_http, trace_id};

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

/// Exports the spans still buffered and stops exporting.
pub fn shutdown() {
    if let Some(provider) = PROVIDER.get()
        && let Err(error) = provider.shutdown()
    {
        tracing::warn!(%error, "could not flush the last spans");
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Output {
    Stderr,
    Test,
}

fn install(service_name: &'static str, output: Output) {
    if PROVIDER.get().is_some() {
        return;
    }
    let (exporter, exporter_error) = match output {
        Output::Stderr => otlp_exporter(),
        Output::Test => (None, None),
    };
    let mut builder = SdkTracerProvider::builder()
        .with_resource(Resource::builder().with_service_name(service_name).build());
    if let Some(exporter) = exporter {
        builder = builder.with_batch_exporter(exporter);
    }
    let provider = builder.build();

    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = std::env::var("FRAMEOS_LOG_FORMAT").is_ok_and(|v| v == "json");
    let fmt = tracing_subscriber::fmt::layer().with_target(true);
    // Logs go to stderr so that stdout stays for what a command prints for its user.
    let fmt: Box<dyn Layer<Registry> + Send + Sync> = match output {
        Output::Test => fmt.with_test_writer().with_ansi(false).boxed(),
        Output::Stderr if json => fmt.json().with_writer(std::io::stderr).boxed(),
        Output::Stderr => fmt
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

/// The OTLP/gRPC exporter when `OTEL_EXPORTER_OTLP_ENDPOINT` is set (the exporter reads it and
/// the other `OTEL_EXPORTER_OTLP_*` variables), or why there is none.
fn otlp_exporter() -> (Option<opentelemetry_otlp::SpanExporter>, Option<String>) {
    if std::env::var_os("OTEL_EXPORTER_OTLP_ENDPOINT").is_none_or(|v| v.is_empty()) {
        return (None, None);
    }
    // tonic spawns its connection on the current Tokio runtime.
    if tokio::runtime::Handle::try_current().is_err() {
        return (None, Some("no Tokio runtime at start-up".into()));
    }
    match opentelemetry_otlp::SpanExporter::builder()
        .with_tonic()
        .build()
    {
        Ok(exporter) => (Some(exporter), None),
        Err(error) => (None, Some(error.to_string())),
    }
}
