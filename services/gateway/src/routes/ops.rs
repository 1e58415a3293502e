//! Liveness, readiness, metrics and the OpenAPI document.

use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::response::Response;
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use crate::error::{ApiError, ErrorBody};

/// A probe should get an answer, not a timeout of its own, even when the control plane hangs.
const READY_WITHIN: Duration = Duration::from_secs(2);

#[derive(Debug, Serialize, ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    pub status: &'static str,
}

/// Liveness: the process serves HTTP.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    responses((status = 200, description = "Alive", body = Health))
)]
pub async fn healthz() -> Json<Health> {
    Json(Health { status: "ok" })
}

/// Readiness: the gateway is not stopping and the control plane answers its gRPC health check
/// with SERVING.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses(
        (status = 200, description = "Ready", body = Health),
        (status = 503, description = "The gateway is stopping, or the control plane is unreachable or not serving", body = ErrorBody),
    )
)]
pub async fn readyz(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    if state.stopping.is_cancelled() {
        return Err(ApiError::new(
            frameos_core::ErrorCode::Unavailable,
            "the gateway is stopping",
        ));
    }
    state.control_plane.check_ready(READY_WITHIN).await?;
    Ok(Json(Health { status: "ok" }))
}

/// Prometheus metrics (API.md §4.3): Prometheus text 0.0.4, or OpenMetrics when `Accept`
/// asks for `application/openmetrics-text`.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    responses((status = 200, description = "Prometheus text (OpenMetrics when asked for)", content_type = "text/plain", body = String))
)]
pub async fn metrics(State(state): State<AppState>, headers: axum::http::HeaderMap) -> Response {
    crate::metrics::scrape(&state.metrics, &headers).await
}

/// This document.
#[utoipa::path(
    get,
    path = "/openapi.json",
    tag = "operations",
    responses((status = 200, description = "The OpenAPI 3 document", body = Object))
)]
pub async fn openapi() -> Json<&'static serde_json::Value> {
    Json(crate::openapi::document())
}
