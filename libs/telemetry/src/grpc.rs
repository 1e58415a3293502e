//! gRPC spans as tower layers, with the OpenTelemetry RPC conventions: a SERVER span per call
//! on the server ([`ServerSpans`], continuing the trace in the call's `traceparent` metadata) and
//! a CLIENT span per call on the client ([`ClientSpans`], which writes that metadata).
//!
//! A span lasts until the response body ends, so a stream's span covers the whole stream. The
//! status is `grpc-status` of the response head (how tonic answers an error before any message)
//! or else of the trailers; a body dropped before its trailers (a caller that went away) leaves
//! the status unset.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tower::{Layer, Service};
use tracing::{Instrument, Span, field::Empty};

use crate::propagation::{inject_http, set_parent_from_http};

/// Server side: one SERVER span per call, the child of the caller's span when it sent one.
#[derive(Clone, Copy, Debug, Default)]
pub struct ServerSpans;

/// Client side: one CLIENT span per call, the child of the current span, whose context goes to
/// the server in the `traceparent`/`tracestate` metadata.
#[derive(Clone, Copy, Debug, Default)]
pub struct ClientSpans;

impl<S> Layer<S> for ServerSpans {
    type Service = Traced<S, Server>;

    fn layer(&self, inner: S) -> Self::Service {
        Traced {
            inner,
            side: Server,
        }
    }
}

impl<S> Layer<S> for ClientSpans {
    type Service = Traced<S, Client>;

    fn layer(&self, inner: S) -> Self::Service {
        Traced {
            inner,
            side: Client,
        }
    }
}

/// A gRPC service (or channel) whose calls each get a span.
#[derive(Clone, Debug)]
pub struct Traced<S, Side> {
    inner: S,
    side: Side,
}

/// A client channel `S` with a CLIENT span around each call.
pub type TracedClient<S> = Traced<S, Client>;

impl<S> Traced<S, Client> {
    /// `channel` with a CLIENT span around each call.
    pub fn client(channel: S) -> Self {
        ClientSpans.layer(channel)
    }
}

#[derive(Clone, Copy, Debug)]
pub struct Server;

#[derive(Clone, Copy, Debug)]
pub struct Client;

/// Which end of the call a span stands for.
pub trait Side: Clone + Send + 'static {
    /// The span of a call to `path` (`/package.Service/Method`).
    fn span(&self, path: &str, headers: &mut http::HeaderMap) -> Span;
    /// Whether `code` is an error for this end (a server does not own its callers' mistakes).
    fn is_error(code: u16) -> bool;
}

impl Side for Server {
    fn span(&self, path: &str, headers: &mut http::HeaderMap) -> Span {
        // Health checks and reflection: probes every few seconds, noise in a trace.
        if path.starts_with("/grpc.") {
            return Span::none();
        }
        let (service, method, name) = split(path);
        let span = tracing::info_span!(
            "grpc_server",
            otel.name = name,
            otel.kind = "server",
            otel.status_code = Empty,
            rpc.system = "grpc",
            rpc.service = service,
            rpc.method = method,
            rpc.grpc.status_code = Empty,
        );
        set_parent_from_http(&span, headers);
        span
    }

    fn is_error(code: u16) -> bool {
        // UNKNOWN, DEADLINE_EXCEEDED, UNIMPLEMENTED, INTERNAL, UNAVAILABLE, DATA_LOSS.
        matches!(code, 2 | 4 | 12 | 13 | 14 | 15)
    }
}

impl Side for Client {
    fn span(&self, path: &str, headers: &mut http::HeaderMap) -> Span {
        let (service, method, name) = split(path);
        let span = tracing::info_span!(
            "grpc_client",
            otel.name = name,
            otel.kind = "client",
            otel.status_code = Empty,
            rpc.system = "grpc",
            rpc.service = service,
            rpc.method = method,
            rpc.grpc.status_code = Empty,
        );
        inject_http(&span, headers);
        span
    }

    fn is_error(code: u16) -> bool {
        code != 0
    }
}

/// Service, method and span name (`service/method`) of a gRPC path.
fn split(path: &str) -> (&str, &str, &str) {
    let name = path.strip_prefix('/').unwrap_or(path);
    let (service, method) = name.split_once('/').unwrap_or((name, ""));
    (service, method, name)
}

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;

impl<S, Sd, B, RB> Service<http::Request<B>> for Traced<S, Sd>
where
    S: Service<http::Request<B>, Response = http::Response<RB>>,
    S::Future: Send + 'static,
    S::Error: 'static,
    RB: 'static,
    Sd: Side,
{
    type Response = http::Response<TracedBody<RB>>;
    type Error = S::Error;
    type Future = BoxFuture<Result<Self::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        let path = request.uri().path().to_owned();
        let span = self.side.span(&path, request.headers_mut());
        // Entered while the call starts, too: a server's handler may spawn work in its span.
        let future = span.in_scope(|| self.inner.call(request));
        let recorded = span.clone();
        Box::pin(
            async move {
                match future.await {
                    Ok(response) => {
                        // An error before any message comes in the head; else in the trailers.
                        let open = match status(response.headers()) {
                            Some(code) => {
                                record::<Sd>(&recorded, code);
                                None
                            }
                            None => Some(recorded),
                        };
                        Ok(response.map(|inner| TracedBody {
                            inner,
                            span: open,
                            is_error: Sd::is_error,
                        }))
                    }
                    // The transport failed: no status came back at all.
                    Err(error) => {
                        recorded.record("otel.status_code", "error");
                        Err(error)
                    }
                }
            }
            .instrument(span),
        )
    }
}

fn status(headers: &http::HeaderMap) -> Option<u16> {
    headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

fn record<Sd: Side>(span: &Span, code: u16) {
    record_code(span, code, Sd::is_error);
}

fn record_code(span: &Span, code: u16, is_error: fn(u16) -> bool) {
    span.record("rpc.grpc.status_code", code);
    if is_error(code) {
        span.record("otel.status_code", "error");
    }
}

pin_project_lite::pin_project! {
    /// A response body that keeps its call's span open until its trailers, and records the
    /// status they carry.
    pub struct TracedBody<B> {
        #[pin]
        inner: B,
        span: Option<Span>,
        is_error: fn(u16) -> bool,
    }
}

/// An empty body without a span (what tonic's interceptors answer with when they refuse).
impl<B: Default> Default for TracedBody<B> {
    fn default() -> Self {
        TracedBody {
            inner: B::default(),
            span: None,
            is_error: Client::is_error,
        }
    }
}

impl<B: http_body::Body> http_body::Body for TracedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<B::Data>, B::Error>>> {
        let this = self.project();
        let frame = std::task::ready!(this.inner.poll_frame(cx));
        match &frame {
            Some(Ok(frame)) => {
                if let Some(trailers) = frame.trailers_ref()
                    && let Some(span) = this.span.take()
                {
                    record_code(&span, status(trailers).unwrap_or(0), *this.is_error);
                }
            }
            Some(Err(_)) => {
                if let Some(span) = this.span.take() {
                    span.record("otel.status_code", "error");
                }
            }
            None => {
                this.span.take();
            }
        }
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
