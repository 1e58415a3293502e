//! gRPC spans as tower layers, with the OpenTelemetry RPC conventions: a SERVER span per call
//! on the server ([`ServerSpans`], continuing the trace in the call's `traceparent` metadata) and
//! a CLIENT span per call on the client ([`ClientSpans`], which writes that metadata).
//!
//! The status is `grpc-status` in the response head (how tonic answers every error of a unary
//! call) or 0 when it is not there: for a stream, the span ends with the response head, so an
//! error in its trailers is not seen.

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
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<Result<S::Response, S::Error>>;

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
                let result = future.await;
                match &result {
                    Ok(response) => {
                        let code = response
                            .headers()
                            .get("grpc-status")
                            .and_then(|v| v.to_str().ok())
                            .and_then(|v| v.parse::<u16>().ok())
                            .unwrap_or(0);
                        recorded.record("rpc.grpc.status_code", code);
                        if Sd::is_error(code) {
                            recorded.record("otel.status_code", "error");
                        }
                    }
                    // The transport failed: no status came back at all.
                    Err(_) => {
                        recorded.record("otel.status_code", "error");
                    }
                }
                result
            }
            .instrument(span),
        )
    }
}
