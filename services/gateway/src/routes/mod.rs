//! The REST API of API.md §2: the router, its middleware and the answers for unknown routes.

pub(crate) mod accounts;
pub(crate) mod agents;
pub(crate) mod billing;
pub(crate) mod executions;
pub(crate) mod keys;
pub(crate) mod ops;
pub(crate) mod packages;
pub(crate) mod reviews;
pub(crate) mod schedules;
pub(crate) mod secrets;
#[cfg(test)]
mod tests;
pub(crate) mod versions;
pub(crate) mod webhooks;

use std::time::Duration;

use axum::error_handling::HandleErrorLayer;
use axum::extract::{MatchedPath, Request};
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{BoxError, Json, Router, middleware};
use frameos_core::{Error, ErrorCode};
use tower::ServiceBuilder;
use tower::limit::GlobalConcurrencyLimitLayer;
use tower_http::LatencyUnit;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::{DefaultOnResponse, OnResponse, TraceLayer};
use tracing::Level;

use crate::Config;
use crate::control_plane::ControlPlane;
use crate::error::{ApiError, ErrorBody};
use crate::fair_use::{self, FairUse};
use crate::metrics::{self, Metrics};
use crate::streams::EventStreams;

/// What every handler shares.
#[derive(Clone, Debug)]
pub struct AppState {
    pub control_plane: ControlPlane,
    pub metrics: Metrics,
    pub limits: Limits,
    pub streams: EventStreams,
    /// Fires when the gateway starts to stop: `/readyz` answers 503 from then on.
    pub stopping: tokio_util::sync::CancellationToken,
    pub fair_use: FairUse,
}

#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_json_bytes: u64,
    pub max_package_bytes: u64,
}

impl AppState {
    /// With a registry of its own (tests).
    #[cfg(test)]
    pub fn new(config: &Config) -> Result<AppState, frameos_tls::Error> {
        Self::with_registry(config, frameos_metrics::Registry::new())
    }

    /// As [`AppState::new`], with the HTTP metrics in `registry`, which `/metrics` serves.
    pub fn with_registry(
        config: &Config,
        registry: frameos_metrics::Registry,
    ) -> Result<AppState, frameos_tls::Error> {
        let control_plane = ControlPlane::connect_lazy(
            &config.tls,
            &config.control_plane_url,
            config.control_plane_timeout(),
            config.max_package_bytes,
        )?;
        Ok(AppState {
            fair_use: FairUse::new(
                control_plane.clone(),
                config.rate_limit_per_sec,
                config.rate_limit_burst,
            ),
            control_plane,
            metrics: Metrics::new(registry),
            limits: Limits {
                max_json_bytes: config.max_json_bytes,
                max_package_bytes: config.max_package_bytes,
            },
            streams: EventStreams::new(config.max_streams_per_account, config.max_event_streams),
            stopping: tokio_util::sync::CancellationToken::new(),
        })
    }
}

pub fn router(state: AppState, config: &Config) -> Router {
    let timeout = config.request_timeout();
    let slots = GlobalConcurrencyLimitLayer::new(config.max_concurrent_requests);
    // Outermost on the API and the streams: a caller over its rate never takes a slot.
    let fair_use = middleware::from_fn_with_state(state.fair_use.clone(), fair_use::enforce);
    // The API proper: bounded in time and in concurrency. Waiting for a slot counts against the
    // deadline, so a flood ends in 503s rather than an ever-growing queue.
    let api = Router::new()
        .route("/v1/accounts", post(accounts::create_account))
        .route("/v1/me", get(accounts::me))
        .route("/v1/accounts/{id}/balance", get(billing::get_balance))
        .route("/v1/billing/mandate-keys", get(billing::list_mandate_keys))
        .route("/.well-known/jwks.json", get(billing::jwks))
        .route(
            "/v1/agents",
            post(agents::create_agent).get(agents::list_agents),
        )
        .route(
            "/v1/agents/{slug}",
            get(agents::get_agent).patch(agents::update_agent),
        )
        .route(
            "/v1/agents/{slug}/versions",
            post(versions::publish_version).get(versions::list_versions),
        )
        .route(
            "/v1/agents/{slug}/versions/{version}/approve",
            post(reviews::approve_version),
        )
        .route(
            "/v1/agents/{slug}/versions/{version}/reject",
            post(reviews::reject_version),
        )
        .route("/v1/reviews", get(reviews::list_reviews))
        .route("/v1/agents/{slug}/ban", post(reviews::ban_agent))
        .route("/v1/agents/{slug}/releases", get(versions::list_releases))
        .route(
            "/v1/agents/{slug}/versions/{version}/files",
            get(packages::list_files),
        )
        .route(
            "/v1/agents/{slug}/versions/{version}/files/{*path}",
            get(packages::get_file),
        )
        .route("/v1/me/earnings", get(billing::list_earnings))
        .route("/v1/me/webhook-secret", get(webhooks::get_webhook_secret))
        .route(
            "/v1/me/webhook-secret/rotate",
            post(webhooks::rotate_webhook_secret),
        )
        .route(
            "/v1/executions/{id}/webhooks",
            get(webhooks::list_webhook_deliveries),
        )
        .route(
            "/v1/agents/{slug}/executions",
            post(executions::create_execution),
        )
        .route("/v1/executions", get(executions::list_executions))
        .route("/v1/executions/{id}", get(executions::get_execution))
        .route("/v1/executions/{id}/logs", get(executions::list_logs))
        .route("/v1/executions/{id}/mandate", get(billing::get_mandate))
        .route(
            "/v1/executions/{id}/cancel",
            post(executions::cancel_execution),
        )
        .merge(keys::routes())
        .merge(secrets::routes())
        .merge(schedules::routes())
        .route(
            "/v1/executions/{id}/stream-token",
            post(executions::create_stream_token),
        )
        .method_not_allowed_fallback(method_not_allowed)
        .route_layer(middleware::from_fn(crate::streams::refuse_access_token))
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(move |error: BoxError| async move {
                    overloaded(&error, timeout)
                }))
                .timeout(timeout)
                .layer(slots.clone()),
        )
        .layer(fair_use.clone());
    // Event streams last as long as their execution, so no deadline. Starting one takes one of
    // the API's slots but never queues for it (a saturated gateway answers 503 at once); the
    // open streams have a bound of their own (`EventStreams`).
    let streams = Router::new()
        .route(
            "/v1/executions/{id}/events",
            get(executions::watch_execution),
        )
        .method_not_allowed_fallback(method_not_allowed)
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(move |error: BoxError| async move {
                    overloaded(&error, timeout)
                }))
                .load_shed()
                .layer(slots.clone()),
        )
        .layer(fair_use.clone());
    // MCP (API.md §5.4): a tools/call lasts as long as its execution, so it is limited like
    // the event streams, not by the API's deadline.
    let mcp_service = crate::mcp::service(
        state.control_plane.clone(),
        usize::try_from(config.max_json_bytes).unwrap_or(usize::MAX),
        tokio_util::sync::CancellationToken::new(),
    );
    let mcp = Router::new()
        .route_service("/mcp", mcp_service)
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(move |error: BoxError| async move {
                    overloaded(&error, timeout)
                }))
                .load_shed()
                .layer(slots),
        )
        .layer(fair_use);
    // Probes and scrapes stay outside the limits: a busy gateway is still alive.
    let ops = Router::new()
        .route("/healthz", get(ops::healthz))
        .route("/readyz", get(ops::readyz))
        .route("/metrics", get(ops::metrics))
        .route("/openapi.json", get(ops::openapi))
        .method_not_allowed_fallback(method_not_allowed)
        .route_layer(middleware::from_fn(crate::streams::refuse_access_token));

    api.merge(streams)
        .merge(mcp)
        .merge(ops)
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(
            state.metrics.clone(),
            metrics::record,
        ))
        .layer(
            ServiceBuilder::new()
                .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
                .layer(
                    // Method, route and path only: headers carry keys and bodies carry packages.
                    TraceLayer::new_for_http()
                        .make_span_with(request_span)
                        .on_response(RecordStatus(
                            DefaultOnResponse::new()
                                .level(Level::INFO)
                                .latency_unit(LatencyUnit::Millis),
                        )),
                )
                .layer(PropagateRequestIdLayer::x_request_id()),
        )
        // Outermost: a browser's preflight is answered before anything counts or routes it.
        .layer(tower::util::option_layer(crate::cors::layer(
            &config.cors_origins,
        )))
        .with_state(state)
}

fn request_span(request: &Request) -> tracing::Span {
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or("unmatched", MatchedPath::as_str);
    let request_id = request
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    // A SERVER span with the HTTP conventions; `otel.name` is `{method} {route}`.
    let span = tracing::info_span!(
        "http_request",
        otel.name = format!("{} {route}", request.method()),
        otel.kind = "server",
        otel.status_code = tracing::field::Empty,
        http.request.method = %request.method(),
        http.route = route,
        http.response.status_code = tracing::field::Empty,
        url.path = %request.uri().path(),
        url.scheme = "http",
        request_id,
        trace_id = tracing::field::Empty,
    );
    // The caller's trace, if it sent one; the id lets a log line be matched to the trace.
    frameos_telemetry::set_parent_from_http(&span, request.headers());
    if let Some(trace_id) = frameos_telemetry::trace_id(&span) {
        span.record("trace_id", trace_id);
    }
    span
}

/// Logs the response as `DefaultOnResponse` does and records its status on the request span
/// (a 5xx is an error of the server; a 4xx is the client's).
#[derive(Clone)]
struct RecordStatus(DefaultOnResponse);

impl<B> OnResponse<B> for RecordStatus {
    fn on_response(self, response: &Response<B>, latency: Duration, span: &tracing::Span) {
        let status = response.status();
        span.record("http.response.status_code", status.as_u16());
        if status.is_server_error() {
            span.record("otel.status_code", "error");
        }
        self.0.on_response(response, latency, span);
    }
}

fn overloaded(error: &BoxError, timeout: Duration) -> ApiError {
    if error.is::<tower::timeout::error::Elapsed>() {
        ApiError::new(
            ErrorCode::Unavailable,
            format!("the request took longer than {}s", timeout.as_secs()),
        )
    } else if error.is::<tower::load_shed::error::Overloaded>() {
        ApiError::new(
            ErrorCode::Unavailable,
            "the gateway is serving as many requests as it can; retry later",
        )
    } else {
        tracing::error!(%error, "middleware failed");
        ApiError::new(ErrorCode::Internal, "internal error")
    }
}

async fn not_found(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        ErrorCode::NotFound,
        format!("no route for {method} {}", uri.path()),
    )
}

/// 405 keeps its HTTP meaning (and the Allow header axum sets); the body has the usual shape.
async fn method_not_allowed(method: Method, uri: Uri) -> Response {
    let error = Error::new(
        ErrorCode::InvalidRequest,
        format!("{method} is not allowed on {}", uri.path()),
    );
    (StatusCode::METHOD_NOT_ALLOWED, Json(ErrorBody::from(error))).into_response()
}
