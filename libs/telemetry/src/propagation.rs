//! W3C trace context in and out of a span, through the globally set propagator.

use std::collections::BTreeMap;

use opentelemetry::propagation::{Extractor, Injector};
use opentelemetry::trace::TraceContextExt;
use tracing::Span;
use tracing_opentelemetry::OpenTelemetrySpanExt;

/// The longest `tracestate` taken from a caller. W3C Trace Context asks a platform to pass on
/// at least 512 characters and lets it drop the rest; a longer one is dropped whole (the trace
/// goes on through `traceparent`). So whatever a caller sends, each hop's copy stays small,
/// down to the queue's AMQP headers, whose frame is 16 KiB (ADR 0030).
pub const MAX_TRACESTATE: usize = 512;

/// The trace context of `span` (`traceparent`, and `tracestate` if any), for the next hop.
/// Empty when tracing is not set up.
pub fn inject(span: &Span) -> BTreeMap<String, String> {
    let cx = span.context();
    let mut headers = BTreeMap::new();
    opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.inject_context(&cx, &mut Writer(&mut headers));
    });
    headers
}

/// Makes `span` a child of the trace context in `headers` when they carry a valid one, else
/// leaves it alone. It must be called before the span is first entered. Returns whether it did.
pub fn set_parent(span: &Span, headers: &BTreeMap<String, String>) -> bool {
    let cx = opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.extract(&Reader(headers))
    });
    // An invalid context would make the span a new root, cutting it from its local parent.
    cx.span().span_context().is_valid() && span.set_parent(cx).is_ok()
}

/// [`set_parent`] from HTTP headers. A repeated header is joined with commas, as W3C Trace
/// Context asks: `tracestate` stays whole and a repeated `traceparent` is rejected.
pub fn set_parent_from_http(span: &Span, headers: &http::HeaderMap) -> bool {
    let names: Vec<String> = opentelemetry::global::get_text_map_propagator(|propagator| {
        propagator.fields().map(str::to_owned).collect()
    });
    let mut carried = BTreeMap::new();
    for name in names {
        let values: Option<Vec<&str>> = headers
            .get_all(name.as_str())
            .iter()
            .map(|v| v.to_str().ok())
            .collect();
        if let Some(values) = values.filter(|v| !v.is_empty()) {
            carried.insert(name, values.join(","));
        }
    }
    set_parent(span, &carried)
}

/// Writes the trace context of `span` into HTTP (or gRPC metadata) `headers`, replacing any
/// the caller set. Writes nothing when tracing is not set up.
pub fn inject_http(span: &Span, headers: &mut http::HeaderMap) {
    for (name, value) in inject(span) {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::try_from(name),
            http::HeaderValue::try_from(value),
        ) {
            headers.insert(name, value);
        }
    }
}

/// The trace id of `span` (32 hex digits), for log lines; `None` when tracing is not set up.
pub fn trace_id(span: &Span) -> Option<String> {
    let cx = span.context();
    let context = cx.span().span_context().clone();
    context.is_valid().then(|| context.trace_id().to_string())
}

struct Reader<'a>(&'a BTreeMap<String, String>);

impl Extractor for Reader<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        let value = self.0.get(key).map(String::as_str)?;
        (key != "tracestate" || value.len() <= MAX_TRACESTATE).then_some(value)
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(String::as_str).collect()
    }
}

struct Writer<'a>(&'a mut BTreeMap<String, String>);

impl Injector for Writer<'_> {
    fn set(&mut self, key: &str, value: String) {
        // The propagator writes an empty `tracestate` too; W3C lets us leave it out.
        if !value.is_empty() {
            self.0.insert(key.to_owned(), value);
        }
    }
}
