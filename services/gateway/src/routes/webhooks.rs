//! Webhooks (API.md §5.3): the secret that signs the caller's webhooks, and the deliveries of an
//! execution's webhook with every attempt.

use axum::Json;
use axum::extract::State;
use frameos_core::{Error, WebhookState};
use frameos_proto::v1;
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use crate::auth::{self, ApiKey};
use crate::error::{ApiError, ErrorBody};
use crate::extract::PathArgs;
use crate::view::timestamp;

/// The key of `FrameOS-Signature: t=<unix>,v1=<hex HMAC-SHA256 of "t.body">`.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookSecret {
    pub secret: String,
}

/// The webhook of one execution.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookDeliveryView {
    /// The event id, sent as `FrameOS-Event-Id` with every attempt: the same on every retry,
    /// so a receiver de-duplicates by it.
    pub id: String,
    pub url: String,
    /// `waiting` (for the execution to end), `retrying`, `delivered` or `failed`.
    pub state: WebhookState,
    /// Every attempt, oldest first.
    pub attempts: Vec<WebhookAttemptView>,
    /// When the next attempt is due, while `waiting` or `retrying`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, format = DateTime)]
    pub next_attempt_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, format = DateTime)]
    pub delivered_at: Option<String>,
}

/// One POST of a webhook.
#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookAttemptView {
    /// 1 for the first.
    pub attempt: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, format = DateTime)]
    pub started_at: Option<String>,
    /// Redirects included.
    pub duration_ms: u32,
    /// The receiver's HTTP status; absent when no response came.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub status: Option<u32>,
    /// Why it failed; absent when it succeeded.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub error: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct WebhookDeliveryList {
    pub items: Vec<WebhookDeliveryView>,
}

impl TryFrom<v1::WebhookDelivery> for WebhookDeliveryView {
    type Error = Error;

    fn try_from(d: v1::WebhookDelivery) -> Result<Self, Error> {
        let state = d
            .state
            .parse()
            .map_err(|e: Error| Error::internal(format!("webhook delivery: {}", e.message)))?;
        Ok(WebhookDeliveryView {
            next_attempt_at: timestamp(d.next_attempt_at.as_ref()),
            delivered_at: timestamp(d.delivered_at.as_ref()),
            attempts: d
                .attempts
                .into_iter()
                .map(|a| WebhookAttemptView {
                    started_at: timestamp(a.started_at.as_ref()),
                    attempt: a.attempt,
                    duration_ms: a.duration_ms,
                    status: a.status,
                    error: (!a.error.is_empty()).then_some(a.error),
                })
                .collect(),
            state,
            id: d.id,
            url: d.url,
        })
    }
}

/// The secret the caller's webhooks are signed with (made on first use).
#[utoipa::path(
    get,
    path = "/v1/me/webhook-secret",
    tag = "webhooks",
    security(("api_key" = [])),
    responses(
        (status = 200, description = "The secret", body = WebhookSecret),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 403, description = "A key without the `run` scope", body = ErrorBody),
    )
)]
pub async fn get_webhook_secret(
    State(state): State<AppState>,
    key: ApiKey,
) -> Result<Json<WebhookSecret>, ApiError> {
    let reply = state
        .control_plane
        .webhooks()
        .get_webhook_secret(auth::request(v1::GetWebhookSecretRequest {}, Some(&key)))
        .await?
        .into_inner();
    Ok(Json(WebhookSecret {
        secret: reply.secret,
    }))
}

/// Replaces the caller's webhook secret by a new one (the old one leaked): every webhook sent
/// from now on, retries included, is signed with the new one.
#[utoipa::path(
    post,
    path = "/v1/me/webhook-secret/rotate",
    tag = "webhooks",
    security(("api_key" = [])),
    responses(
        (status = 200, description = "The new secret", body = WebhookSecret),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 403, description = "A key without the `run` scope", body = ErrorBody),
    )
)]
pub async fn rotate_webhook_secret(
    State(state): State<AppState>,
    key: ApiKey,
) -> Result<Json<WebhookSecret>, ApiError> {
    let reply = state
        .control_plane
        .webhooks()
        .rotate_webhook_secret(auth::request(v1::RotateWebhookSecretRequest {}, Some(&key)))
        .await?
        .into_inner();
    Ok(Json(WebhookSecret {
        secret: reply.secret,
    }))
}

/// The deliveries of an execution's webhook, with every attempt (its user or an admin).
#[utoipa::path(
    get,
    path = "/v1/executions/{id}/webhooks",
    tag = "webhooks",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "The execution's id")),
    responses(
        (status = 200, description = "The deliveries (none without a `webhook_url`)", body = WebhookDeliveryList),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 404, description = "No such execution visible to the caller", body = ErrorBody),
    )
)]
pub async fn list_webhook_deliveries(
    State(state): State<AppState>,
    key: ApiKey,
    PathArgs(execution_id): PathArgs<String>,
) -> Result<Json<WebhookDeliveryList>, ApiError> {
    let reply = state
        .control_plane
        .webhooks()
        .list_webhook_deliveries(auth::request(
            v1::ListWebhookDeliveriesRequest { execution_id },
            Some(&key),
        ))
        .await?
        .into_inner();
    let items = reply
        .items
        .into_iter()
        .map(WebhookDeliveryView::try_from)
        .collect::<Result<_, _>>()?;
    Ok(Json(WebhookDeliveryList { items }))
}
