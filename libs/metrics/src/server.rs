//! `GET /metrics` for the services without an HTTP API of their own (control plane, node), on
//! `FRAMEOS_METRICS_ADDR`; the gateway mounts [`respond`] on its own router.

use std::net::SocketAddr;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::{Format, Registry};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot listen on {addr} for metrics: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("metrics server failed: {0}")]
    Serve(#[source] std::io::Error),
}

/// The answer to a scrape with these request headers: the format its `Accept` prefers.
pub async fn respond(registry: &Registry, headers: &HeaderMap) -> Response {
    let accept = headers
        .get(header::ACCEPT)
        .and_then(|value| value.to_str().ok());
    let format = Format::negotiate(accept);
    match registry.scrape(format).await {
        Ok(text) => ([(header::CONTENT_TYPE, format.content_type())], text).into_response(),
        Err(_) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            "cannot encode the metrics\n",
        )
            .into_response(),
    }
}

async fn metrics(State(registry): State<Registry>, headers: HeaderMap) -> Response {
    respond(&registry, &headers).await
}

/// A router answering `GET /metrics` (and nothing else).
pub fn router(registry: Registry) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .with_state(registry)
}

/// Binds the metrics listener (at start, so a taken address fails the start, not a scrape).
pub async fn bind(addr: SocketAddr) -> Result<TcpListener, Error> {
    TcpListener::bind(addr)
        .await
        .map_err(|source| Error::Bind { addr, source })
}

/// Serves `/metrics` on `listener` until `shutdown` fires: a component of the service's
/// supervisor.
pub async fn serve(
    listener: TcpListener,
    registry: Registry,
    shutdown: CancellationToken,
) -> Result<(), Error> {
    if let Ok(addr) = listener.local_addr() {
        tracing::info!(%addr, "metrics serving");
    }
    axum::serve(listener, router(registry))
        .with_graceful_shutdown(shutdown.cancelled_owned())
        .await
        .map_err(Error::Serve)
}
