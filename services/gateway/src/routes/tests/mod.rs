//! The router end to end, in process: against a closed port (the gateway must answer without
//! the control plane) and against a fake control plane that checks what the gateway forwards.

mod billing;
mod executions;
mod fair_use;
mod forwarding;
mod offline;
mod readiness;

use axum::Router;
use axum::body::Body;
use axum::http::{Request, StatusCode, header};
use frameos_core::ErrorCode;
use serde_json::Value;
use tower::ServiceExt;

use super::{AppState, router};
use crate::Config;

pub fn app(config: &Config) -> Router {
    router(AppState::new(config).unwrap(), config)
}

/// A control plane URL nothing listens on: any call the gateway makes fails with 503.
pub fn closed_port() -> Config {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let mut config = Config::embedded();
    config.control_plane_url = format!("http://{addr}");
    config
}

pub async fn send(app: &Router, request: Request<Body>) -> (StatusCode, Value) {
    let response = app.clone().oneshot(request).await.unwrap();
    let status = response.status();
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 22)
        .await
        .unwrap();
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&bytes).into_owned()));
    (status, body)
}

pub fn get(path: &str) -> Request<Body> {
    Request::get(path).body(Body::empty()).unwrap()
}

pub fn post_json(path: &str, key: Option<&str>, body: &str) -> Request<Body> {
    let mut builder = Request::post(path).header(header::CONTENT_TYPE, "application/json");
    if let Some(key) = key {
        builder = builder.header(header::AUTHORIZATION, format!("Bearer {key}"));
    }
    builder.body(Body::from(body.to_string())).unwrap()
}

pub fn assert_error(status: StatusCode, body: &Value, code: ErrorCode) {
    assert_eq!(status.as_u16(), code.http_status(), "{body}");
    assert_eq!(body["error"]["code"], code.as_str(), "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
}
