use std::collections::BTreeMap;

use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{InMemorySpanExporter, SdkTracerProvider, SpanData};
use tracing::info_span;
use tracing_subscriber::layer::SubscriberExt;

use super::*;

const PARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
const TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_SPAN: &str = "00f067aa0ba902b7";

/// Runs `f` under a subscriber of its own and returns the spans it ended.
fn traced(f: impl FnOnce()) -> Vec<SpanData> {
    opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
    let exporter = InMemorySpanExporter::default();
    let provider = SdkTracerProvider::builder()
        .with_simple_exporter(exporter.clone())
        .build();
    let subscriber = tracing_subscriber::registry().with(otel_layer(&provider, "test"));
    tracing::subscriber::with_default(subscriber, f);
    exporter.get_finished_spans().unwrap()
}

fn carrier(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn parts(traceparent: &str) -> Vec<&str> {
    traceparent.split('-').collect()
}

fn exported<'a>(spans: &'a [SpanData], name: &str) -> &'a SpanData {
    spans.iter().find(|s| s.name == name).unwrap()
}

#[test]
fn a_trace_goes_through_inject_and_set_parent() {
    let mut hop = BTreeMap::new();
    let spans = traced(|| {
        let incoming = info_span!("incoming");
        let headers = carrier(&[("traceparent", PARENT), ("tracestate", "rojo=1")]);
        assert!(set_parent(&incoming, &headers));
        assert_eq!(trace_id(&incoming).as_deref(), Some(TRACE));

        let child = incoming.in_scope(|| info_span!("child"));
        hop = inject(&child);
        let traceparent = parts(&hop["traceparent"]);
        assert_eq!(traceparent.len(), 4);
        assert_eq!(traceparent[1], TRACE);
        assert_ne!(traceparent[2], PARENT_SPAN);
        assert_eq!(traceparent[3], "01");
        assert_eq!(hop["tracestate"], "rojo=1");

        // The next service: a root span joins the trace through the carried headers.
        let root = info_span!("root");
        assert_eq!(inject(&root).keys().collect::<Vec<_>>(), ["traceparent"]);

        let next = info_span!("next");
        assert!(set_parent(&next, &hop));
        assert_eq!(trace_id(&next).as_deref(), Some(TRACE));
    });
    let (incoming, child, next) = (
        exported(&spans, "incoming"),
        exported(&spans, "child"),
        exported(&spans, "next"),
    );
    assert_eq!(incoming.parent_span_id.to_string(), PARENT_SPAN);
    assert_eq!(child.parent_span_id, incoming.span_context.span_id());
    assert_eq!(
        child.span_context.span_id().to_string(),
        parts(&hop["traceparent"])[2]
    );
    assert_eq!(next.parent_span_id, child.span_context.span_id());
    assert!(next.parent_span_is_remote);
    for span in [incoming, child, next] {
        assert_eq!(span.span_context.trace_id().to_string(), TRACE);
    }
}

#[test]
fn an_invalid_traceparent_is_ignored() {
    traced(|| {
        let local = info_span!("local");
        let local_trace = trace_id(&local).unwrap();
        assert_ne!(local_trace, TRACE);
        for bad in [
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "garbage",
        ] {
            // A bad parent leaves the span where it was: under its local parent.
            let span = local.in_scope(|| info_span!("bad"));
            assert!(
                !set_parent(&span, &carrier(&[("traceparent", bad)])),
                "{bad}"
            );
            assert_eq!(trace_id(&span).as_ref(), Some(&local_trace), "{bad}");
        }
        let future = "01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-future";
        assert!(set_parent(
            &info_span!("future"),
            &carrier(&[("traceparent", future)])
        ));
    });
}

#[test]
fn http_headers_are_read_as_w3c_asks() {
    fn headers(pairs: &[(&'static str, &str)]) -> http::HeaderMap {
        let mut headers = http::HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, value.parse().unwrap());
        }
        headers
    }
    traced(|| {
        let span = info_span!("request");
        let sent = headers(&[
            ("traceparent", PARENT),
            ("tracestate", "rojo=1"),
            ("tracestate", "congo=2"),
        ]);
        assert!(set_parent_from_http(&span, &sent));
        assert_eq!(inject(&span)["tracestate"], "rojo=1,congo=2");
        assert_eq!(trace_id(&span).as_deref(), Some(TRACE));

        let twice = headers(&[("traceparent", PARENT), ("traceparent", PARENT)]);
        let span = info_span!("request");
        assert!(!set_parent_from_http(&span, &twice));
        assert_ne!(trace_id(&span).as_deref(), Some(TRACE));
    });
}

#[test]
fn only_our_spans_are_traced() {
    traced(|| {
        let ours = info_span!("ours");
        assert!(trace_id(&ours).is_some());
        assert!(trace_id(&tracing::debug_span!("verbose")).is_none());
        assert!(trace_id(&info_span!(target: "h2", "dependency")).is_none());
    });
    // Without the layer there is nothing to carry.
    tracing::subscriber::with_default(tracing_subscriber::registry(), || {
        let span = info_span!("untraced");
        assert!(inject(&span).is_empty());
        assert!(!set_parent(&span, &carrier(&[("traceparent", PARENT)])));
    });
}
