//! The REST API's connections: accepted here and served by hyper's HTTP/1.1 server.
//!
//! Not `axum::serve`: it first reads every connection for HTTP/2's preface, and the bytes it
//! hands back made hyper grow each connection's read buffer to 16 KiB. An open event stream
//! holds its connection, and that buffer, for as long as its execution runs (ADR 0030). The
//! gateway speaks HTTP/1.1; a proxy or load balancer in front terminates TLS and HTTP/2.

use std::io;
use std::pin::pin;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt as _;

/// How long a client may take to send a request's head (hyper's default once it has a timer):
/// a connection that trickles its head in holds a slot of the server for no more than this.
const HEAD_TIMEOUT: Duration = Duration::from_secs(30);

/// How long accepting pauses after an error that is not one connection's (e.g. out of file
/// descriptors): retrying at once would spin.
const ACCEPT_PAUSE: Duration = Duration::from_secs(1);

/// Serves `app` on `listener` until `close` fires, then stops accepting, lets every connection
/// finish the request it is serving (idle keep-alive connections close at once) and returns
/// when the last one has. The client's address reaches handlers as `ConnectInfo<SocketAddr>`.
pub async fn serve(listener: TcpListener, app: Router, close: CancellationToken) {
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(HEAD_TIMEOUT);
    let connections = TaskTracker::new();
    loop {
        let accepted = tokio::select! {
            () = close.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(error) if concerns_one_connection(&error) => continue,
            Err(error) => {
                tracing::error!(%error, "cannot accept connections; pausing");
                tokio::select! {
                    () = close.cancelled() => break,
                    () = tokio::time::sleep(ACCEPT_PAUSE) => continue,
                }
            }
        };
        // Event stream lines are small writes that must go out at once.
        if let Err(error) = stream.set_nodelay(true) {
            tracing::debug!(%peer, %error, "cannot set TCP_NODELAY");
        }
        let service = app
            .clone()
            .map_request(move |mut request: http::Request<Incoming>| {
                request.extensions_mut().insert(ConnectInfo(peer));
                request
            });
        let http = http.clone();
        let close = close.clone();
        connections.spawn(async move {
            let connection =
                http.serve_connection(TokioIo::new(stream), TowerToHyperService::new(service));
            let mut connection = pin!(connection);
            let result = tokio::select! {
                result = connection.as_mut() => result,
                () = close.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(error) = result {
                tracing::debug!(%peer, %error, "connection ended with an error");
            }
        });
    }
    drop(listener);
    connections.close();
    connections.wait().await;
}

/// An accept error about one connection (it was reset before we took it): accept the next.
fn concerns_one_connection(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

#[cfg(test)]
mod tests;
