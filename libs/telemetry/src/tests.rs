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
fn a_tracestate_over_the_bound_is_dropped_and_the_trace_goes_on() {
    // Three members (a value may hold at most 256 characters), 8 characters of keys and commas.
    let of_length = |n: usize| {
        let value = (n - 8) / 3;
        let first = "v".repeat(n - 8 - 2 * value);
        format!("a={first},b={v},c={v}", v = "v".repeat(value))
    };
    let at_bound = of_length(MAX_TRACESTATE);
    let over = of_length(MAX_TRACESTATE + 1);
    assert_eq!(
        (at_bound.len(), over.len()),
        (MAX_TRACESTATE, MAX_TRACESTATE + 1)
    );
    traced(|| {
        let kept = info_span!("kept");
        assert!(set_parent(
            &kept,
            &carrier(&[("traceparent", PARENT), ("tracestate", &at_bound)])
        ));
        assert_eq!(inject(&kept)["tracestate"], at_bound);

        let dropped = info_span!("dropped");
        assert!(set_parent(
            &dropped,
            &carrier(&[("traceparent", PARENT), ("tracestate", &over)])
        ));
        assert_eq!(trace_id(&dropped).as_deref(), Some(TRACE));
        assert!(!inject(&dropped).contains_key("tracestate"));
    });
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

mod grpc_layers {
    use std::convert::Infallible;
    use std::future::Future;
    use std::pin::Pin;
    use std::task::{Context, Poll, Waker};

    use opentelemetry::trace::{SpanKind, Status};
    use tower::{Layer, Service, ServiceExt};

    use super::*;
    use crate::grpc::{ClientSpans, ServerSpans};

    fn attribute(span: &SpanData, key: &str) -> Option<String> {
        span.attributes
            .iter()
            .find(|kv| kv.key.as_str() == key)
            .map(|kv| kv.value.to_string())
    }

    /// A gRPC response body: one message, then its trailers, if any.
    struct Trailers(Option<bytes::Bytes>, Option<http::HeaderMap>);

    impl http_body::Body for Trailers {
        type Data = bytes::Bytes;
        type Error = Infallible;

        fn poll_frame(
            mut self: Pin<&mut Self>,
            _: &mut Context<'_>,
        ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Infallible>>> {
            if let Some(message) = self.0.take() {
                return Poll::Ready(Some(Ok(http_body::Frame::data(message))));
            }
            Poll::Ready(self.1.take().map(|t| Ok(http_body::Frame::trailers(t))))
        }
    }

    /// Where a handler puts its status.
    #[derive(Clone, Copy)]
    enum In {
        Head,
        Trailers,
    }

    /// Answers `code` in the head (as tonic answers an error before any message) or in the
    /// trailers, and echoes the `traceparent` it got.
    fn answering(
        code: u16,
        place: In,
    ) -> impl Service<
        http::Request<()>,
        Response = http::Response<Trailers>,
        Error = Infallible,
        Future = std::future::Ready<Result<http::Response<Trailers>, Infallible>>,
    > + Clone {
        tower::service_fn(move |request: http::Request<()>| {
            let mut status = http::HeaderMap::new();
            status.insert("grpc-status", code.to_string().parse().unwrap());
            let mut response = match place {
                In::Head => http::Response::new(Trailers(None, None)),
                In::Trailers => http::Response::new(Trailers(
                    Some(bytes::Bytes::from_static(b"\0\0\0\0\0")),
                    Some(status.clone()),
                )),
            };
            if let In::Head = place {
                response.headers_mut().extend(status);
            }
            if let Some(traceparent) = request.headers().get("traceparent") {
                response
                    .headers_mut()
                    .insert("x-seen-traceparent", traceparent.clone());
            }
            std::future::ready(Ok(response))
        })
    }

    /// Calls `service` and reads the response to its end; returns its head.
    fn call<S, RB>(service: S, path: &str, headers: &[(&'static str, &str)]) -> http::HeaderMap
    where
        S: Service<http::Request<()>, Response = http::Response<RB>>,
        S::Error: std::fmt::Debug,
        RB: http_body::Body + Unpin,
        RB::Error: std::fmt::Debug,
    {
        let mut request = http::Request::builder().uri(path);
        for (name, value) in headers {
            request = request.header(*name, *value);
        }
        let response = now(service.oneshot(request.body(()).unwrap())).unwrap();
        let (head, mut body) = response.into_parts();
        while let Some(frame) = now(std::future::poll_fn(|cx| {
            Pin::new(&mut body).poll_frame(cx)
        })) {
            frame.unwrap();
        }
        head.headers
    }

    /// Polls a future that is ready at once (the services here never wait).
    fn now<F: Future>(future: F) -> F::Output {
        let mut future = std::pin::pin!(future);
        match future
            .as_mut()
            .poll(&mut Context::from_waker(Waker::noop()))
        {
            Poll::Ready(output) => output,
            Poll::Pending => panic!("the call did not finish at once"),
        }
    }

    #[test]
    fn a_call_is_a_client_span_then_a_server_span_in_one_trace() {
        let mut forwarded = None;
        let spans = traced(|| {
            let outer = info_span!("caller");
            outer.in_scope(|| {
                // The client writes its span's context in the metadata; the server reads it.
                let server = ServerSpans.layer(answering(0, In::Trailers));
                let client =
                    ClientSpans.layer(tower::service_fn(move |request: http::Request<()>| {
                        server.clone().oneshot(request)
                    }));
                let head = call(client, "/frameos.v1.ExecutionService/CreateExecution", &[]);
                forwarded = Some(head["x-seen-traceparent"].clone());
            });
        });
        let client = spans
            .iter()
            .find(|s| s.span_kind == SpanKind::Client)
            .unwrap();
        let server = spans
            .iter()
            .find(|s| s.span_kind == SpanKind::Server)
            .unwrap();
        let caller = exported(&spans, "caller");
        for span in [client, server] {
            assert_eq!(span.name, "frameos.v1.ExecutionService/CreateExecution");
            assert_eq!(attribute(span, "rpc.system").as_deref(), Some("grpc"));
            assert_eq!(
                attribute(span, "rpc.service").as_deref(),
                Some("frameos.v1.ExecutionService")
            );
            assert_eq!(
                attribute(span, "rpc.method").as_deref(),
                Some("CreateExecution")
            );
            assert_eq!(
                attribute(span, "rpc.grpc.status_code").as_deref(),
                Some("0")
            );
            assert_eq!(span.status, Status::Unset);
            assert_eq!(span.span_context.trace_id(), caller.span_context.trace_id());
        }
        assert_eq!(client.parent_span_id, caller.span_context.span_id());
        assert_eq!(server.parent_span_id, client.span_context.span_id());
        assert!(server.parent_span_is_remote);
        let forwarded = forwarded.unwrap();
        let forwarded = parts(forwarded.to_str().unwrap());
        assert_eq!(forwarded[2], client.span_context.span_id().to_string());
    }

    #[test]
    fn a_server_owns_internal_errors_not_its_callers_mistakes() {
        let spans = traced(|| {
            let server = ServerSpans.layer(answering(3, In::Head));
            call(
                server,
                "/frameos.v1.AgentService/GetAgent",
                &[("traceparent", PARENT)],
            );
            // A stream that fails after its messages: the status is in the trailers.
            let server = ServerSpans.layer(answering(13, In::Trailers));
            call(server, "/frameos.v1.AgentService/ListAgents", &[]);
            let client = ClientSpans.layer(answering(3, In::Head));
            call(client, "/frameos.v1.AgentService/GetAgent", &[]);
            // Probes are not traced.
            let server = ServerSpans.layer(answering(0, In::Head));
            call(server, "/grpc.health.v1.Health/Check", &[]);
        });
        assert_eq!(spans.len(), 3, "{spans:#?}");
        let invalid = spans
            .iter()
            .find(|s| s.span_kind == SpanKind::Server && s.name.ends_with("GetAgent"))
            .unwrap();
        assert_eq!(
            attribute(invalid, "rpc.grpc.status_code").as_deref(),
            Some("3")
        );
        assert_eq!(invalid.status, Status::Unset);
        assert_eq!(invalid.span_context.trace_id().to_string(), TRACE);
        assert_eq!(invalid.parent_span_id.to_string(), PARENT_SPAN);
        let internal = exported(&spans, "frameos.v1.AgentService/ListAgents");
        assert_eq!(
            attribute(internal, "rpc.grpc.status_code").as_deref(),
            Some("13")
        );
        assert!(matches!(internal.status, Status::Error { .. }));
        let client = spans
            .iter()
            .find(|s| s.span_kind == SpanKind::Client)
            .unwrap();
        assert!(matches!(client.status, Status::Error { .. }));
    }
}
