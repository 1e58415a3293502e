//! A tower layer for tonic servers: `frameos_grpc_requests_total{method,code}` and
//! `frameos_grpc_request_duration_seconds{method}`; on a client channel (a node's calls to the
//! control plane) the same as `frameos_grpc_client_requests_total` and
//! `frameos_grpc_client_request_duration_seconds`.
//!
//! The code is the call's `grpc-status`: from the response head when the call failed before
//! answering (a trailers-only response), else from the trailers at the end of the body. So a
//! call is counted when it ends, a streaming call included (its duration is the stream's
//! life); a body dropped before its trailers (the client went away) counts as `CANCELLED`.
//! A method the server does not know (`UNIMPLEMENTED`) is labelled `unknown`, so arbitrary
//! paths cannot grow the label set.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

use futures::future::BoxFuture;
use http::{HeaderMap, Request, Response};
use http_body::{Body, Frame, SizeHint};
use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;

use crate::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CallLabels {
    method: String,
    code: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MethodLabels {
    method: String,
}

type Durations = Family<MethodLabels, Histogram, fn() -> Histogram>;

/// Records every call of the server it wraps.
#[derive(Clone, Debug)]
pub struct GrpcLayer {
    requests: Family<CallLabels, Counter>,
    durations: Durations,
}

impl GrpcLayer {
    /// For a server: registers the families of the calls it serves in `registry`.
    pub fn new(registry: &Registry) -> Self {
        Self::register(
            registry,
            [
                "frameos_grpc_requests",
                "gRPC calls served, by method and status code",
            ],
            [
                "frameos_grpc_request_duration",
                "Time from a gRPC call's request to its status (a stream's whole life), by method",
            ],
        )
    }

    /// For a client channel: registers the families of the calls it makes in `registry`.
    pub fn client(registry: &Registry) -> Self {
        Self::register(
            registry,
            [
                "frameos_grpc_client_requests",
                "gRPC calls made, by method and status code",
            ],
            [
                "frameos_grpc_client_request_duration",
                "Time from a gRPC call made to its status (a stream's whole life), by method",
            ],
        )
    }

    /// `inner` (a server's routes or a client channel) with its calls recorded.
    pub fn wrap<S>(&self, inner: S) -> GrpcService<S> {
        tower::Layer::layer(self, inner)
    }

    fn register(registry: &Registry, requests_name: [&str; 2], durations_name: [&str; 2]) -> Self {
        let requests = Family::<CallLabels, Counter>::default();
        let durations: Durations =
            Family::new_with_constructor(|| Histogram::new(crate::duration_buckets()));
        registry.register(requests_name[0], requests_name[1], requests.clone());
        registry.register_seconds(durations_name[0], durations_name[1], durations.clone());
        GrpcLayer {
            requests,
            durations,
        }
    }
}

impl<S> tower::Layer<S> for GrpcLayer {
    type Service = GrpcService<S>;

    fn layer(&self, inner: S) -> GrpcService<S> {
        GrpcService {
            inner,
            layer: self.clone(),
        }
    }
}

#[derive(Clone, Debug)]
pub struct GrpcService<S> {
    inner: S,
    layer: GrpcLayer,
}

impl<S, ReqBody, ResBody> tower::Service<Request<ReqBody>> for GrpcService<S>
where
    S: tower::Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Future: Send + 'static,
{
    type Response = Response<RecordedBody<ResBody>>;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, S::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        let call = Call {
            layer: self.layer.clone(),
            method: request.uri().path().to_string(),
            started: Instant::now(),
            code: None,
        };
        let response = self.inner.call(request);
        Box::pin(async move {
            let mut call = call;
            match response.await {
                Ok(response) => {
                    // Trailers-only: the call failed before answering.
                    call.code = status_of(response.headers());
                    let (parts, body) = response.into_parts();
                    let pending = call.code.is_none().then_some(call);
                    Ok(Response::from_parts(
                        parts,
                        RecordedBody {
                            inner: body,
                            call: pending,
                        },
                    ))
                }
                Err(e) => {
                    call.code = Some(UNKNOWN);
                    Err(e)
                }
            }
        })
    }
}

/// One call being measured; recorded when dropped (its status known, or not).
struct Call {
    layer: GrpcLayer,
    method: String,
    started: Instant,
    code: Option<i32>,
}

const UNKNOWN: i32 = 2;
const CANCELLED: i32 = 1;
const UNIMPLEMENTED: i32 = 12;

impl Drop for Call {
    fn drop(&mut self) {
        let code = self.code.unwrap_or(CANCELLED);
        let method = if code == UNIMPLEMENTED {
            "unknown".to_string()
        } else {
            std::mem::take(&mut self.method)
        };
        self.layer
            .durations
            .get_or_create(&MethodLabels {
                method: method.clone(),
            })
            .observe(self.started.elapsed().as_secs_f64());
        self.layer
            .requests
            .get_or_create(&CallLabels {
                method,
                code: code_name(code),
            })
            .inc();
    }
}

fn status_of(headers: &HeaderMap) -> Option<i32> {
    headers
        .get("grpc-status")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse().ok())
}

/// The canonical name of a gRPC status code.
fn code_name(code: i32) -> &'static str {
    match code {
        0 => "OK",
        1 => "CANCELLED",
        2 => "UNKNOWN",
        3 => "INVALID_ARGUMENT",
        4 => "DEADLINE_EXCEEDED",
        5 => "NOT_FOUND",
        6 => "ALREADY_EXISTS",
        7 => "PERMISSION_DENIED",
        8 => "RESOURCE_EXHAUSTED",
        9 => "FAILED_PRECONDITION",
        10 => "ABORTED",
        11 => "OUT_OF_RANGE",
        12 => "UNIMPLEMENTED",
        13 => "INTERNAL",
        14 => "UNAVAILABLE",
        15 => "DATA_LOSS",
        16 => "UNAUTHENTICATED",
        _ => "UNKNOWN",
    }
}

pin_project_lite::pin_project! {
    /// A response body that records its call when its trailers pass (or when it is dropped).
    pub struct RecordedBody<B> {
        #[pin]
        inner: B,
        call: Option<Call>,
    }
}

/// An empty body of no call (what tonic's interceptors answer with when they refuse a call
/// before it is made).
impl<B: Default> Default for RecordedBody<B> {
    fn default() -> Self {
        RecordedBody {
            inner: B::default(),
            call: None,
        }
    }
}

impl<B: Body> Body for RecordedBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let polled = this.inner.poll_frame(cx);
        match &polled {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(trailers) = frame.trailers_ref()
                    && let Some(mut call) = this.call.take()
                {
                    call.code = Some(status_of(trailers).unwrap_or(UNKNOWN));
                }
            }
            Poll::Ready(Some(Err(_))) | Poll::Ready(None) => {
                if let Some(mut call) = this.call.take() {
                    call.code = Some(UNKNOWN);
                }
            }
            Poll::Pending => {}
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use http_body_util::{BodyExt, StreamBody};
    use tower::{Layer, Service, ServiceExt};

    use super::*;
    use crate::Format;

    type Frames = futures::stream::Iter<std::vec::IntoIter<Result<Frame<Bytes>, std::io::Error>>>;

    fn frames(trailer: Option<&str>) -> StreamBody<Frames> {
        let mut frames = vec![Ok(Frame::data(Bytes::from_static(b"x")))];
        if let Some(code) = trailer {
            let mut trailers = HeaderMap::new();
            trailers.insert("grpc-status", code.parse().unwrap());
            frames.push(Ok(Frame::trailers(trailers)));
        }
        StreamBody::new(futures::stream::iter(frames))
    }

    async fn call(layer: &GrpcLayer, path: &str, head: Option<&str>, trailer: Option<&str>) {
        let head = head.map(str::to_string);
        let trailer = trailer.map(str::to_string);
        let mut service = layer.layer(tower::service_fn(move |_: Request<()>| {
            let mut response = Response::new(frames(trailer.as_deref()));
            if let Some(code) = &head {
                response
                    .headers_mut()
                    .insert("grpc-status", code.parse().unwrap());
            }
            async move { Ok::<_, std::convert::Infallible>(response) }
        }));
        let request = Request::builder().uri(path).body(()).unwrap();
        let response = service.ready().await.unwrap().call(request).await.unwrap();
        let _ = response.into_body().collect().await;
    }

    #[tokio::test]
    async fn calls_are_counted_with_the_status_of_their_head_or_trailers() {
        let registry = Registry::new();
        let layer = GrpcLayer::new(&registry);
        call(&layer, "/frameos.v1.X/Ok", None, Some("0")).await;
        call(&layer, "/frameos.v1.X/Ok", None, Some("0")).await;
        call(&layer, "/frameos.v1.X/Missing", Some("5"), None).await;
        call(&layer, "/no.such/Thing", Some("12"), None).await;
        call(&layer, "/frameos.v1.X/Broken", None, None).await;
        let text = registry.encode(Format::Prometheus).unwrap();
        for expected in [
            r#"frameos_grpc_requests_total{method="/frameos.v1.X/Ok",code="OK"} 2"#,
            r#"frameos_grpc_requests_total{method="/frameos.v1.X/Missing",code="NOT_FOUND"} 1"#,
            r#"frameos_grpc_requests_total{method="unknown",code="UNIMPLEMENTED"} 1"#,
            r#"frameos_grpc_requests_total{method="/frameos.v1.X/Broken",code="UNKNOWN"} 1"#,
            r#"frameos_grpc_request_duration_seconds_count{method="/frameos.v1.X/Ok"} 2"#,
        ] {
            assert!(text.contains(expected), "{expected} missing from\n{text}");
        }
    }
}
