//! Readiness turns off the moment the gateway starts to stop, before anything else: a load
//! balancer stops sending it requests while the control plane is still healthy.

use axum::http::StatusCode;
use frameos_core::ErrorCode;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use super::{assert_error, get, send};
use crate::Config;
use crate::routes::{AppState, router};

/// A control plane whose gRPC health check answers SERVING.
async fn serving_control_plane(shutdown: CancellationToken) -> Config {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (reporter, health) = tonic_health::server::health_reporter();
    reporter
        .set_service_status("", tonic_health::ServingStatus::Serving)
        .await;
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(health)
            .serve_with_incoming_shutdown(
                tokio_stream::wrappers::TcpListenerStream::new(listener),
                shutdown.cancelled_owned(),
            ),
    );
    let mut config = Config::embedded();
    config.control_plane_url = format!("http://{addr}");
    config
}

#[tokio::test]
async fn readyz_answers_503_once_the_gateway_is_stopping() {
    let shutdown = CancellationToken::new();
    let config = serving_control_plane(shutdown.clone()).await;
    let state = AppState::new(&config).unwrap();
    let stopping = state.stopping.clone();
    let app = router(state, &config);
    let (status, body) = send(&app, get("/readyz")).await;
    assert_eq!((status, body), (StatusCode::OK, json!({"status": "ok"})));

    stopping.cancel();
    let (status, body) = send(&app, get("/readyz")).await;
    assert_error(status, &body, ErrorCode::Unavailable);
    assert_eq!(
        body["error"]["message"], "the gateway is stopping",
        "{body}"
    );
    // Still alive: liveness is not readiness.
    let (status, _) = send(&app, get("/healthz")).await;
    assert_eq!(status, StatusCode::OK);
    shutdown.cancel();
}
