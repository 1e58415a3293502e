//! The admin review: the queue, approving and rejecting versions.

use axum::Json;
use axum::extract::State;
use frameos_core::{ErrorCode, VersionStatus};
use frameos_proto::{ProtoEnum, v1};
use serde::Deserialize;
use utoipa::openapi::Object;
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use crate::auth::{self, ApiKey};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{JsonBody, PathArgs, QueryArgs};
use crate::openapi::limits;
use crate::view::{VersionList, VersionView};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReviewsQuery {
    #[param(schema_with = review_status_schema)]
    pub status: Option<String>,
}

fn review_status_schema() -> Object {
    limits::one_of(
        &["", "pending_review", "published", "rejected"],
        "The versions' status; empty or absent: `pending_review`.",
    )
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct RejectVersion {
    #[schema(schema_with = limits::reason)]
    pub reason: String,
}

/// Versions in a review status, by default those waiting for review (admin).
#[utoipa::path(
    get,
    path = "/v1/reviews",
    tag = "reviews",
    security(("api_key" = [])),
    params(ReviewsQuery),
    responses(
        (status = 200, description = "The versions", body = VersionList),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 400, description = "Malformed query", body = ErrorBody),
        (status = 403, description = "Not an admin (`permission_denied`)", body = ErrorBody),
        (status = 422, description = "`validation_failed`: an unknown status", body = ErrorBody),
    )
)]
pub async fn list_reviews(
    State(state): State<AppState>,
    key: ApiKey,
    QueryArgs(query): QueryArgs<ReviewsQuery>,
) -> Result<Json<VersionList>, ApiError> {
    // An unknown status is `validation_failed` (422), unless the key is invalid (401).
    let status = match query
        .status
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(str::parse::<VersionStatus>)
    {
        None => VersionStatus::PendingReview,
        Some(Ok(status)) => status,
        Some(Err(e)) => {
            let error = ApiError::new(ErrorCode::ValidationFailed, e.message);
            return Err(state
                .control_plane
                .unless_unauthenticated(&key, error)
                .await);
        }
    };
    let request = v1::ListReviewsRequest {
        status: status.to_proto(),
    };
    let reply = state
        .control_plane
        .agents()
        .list_reviews(auth::request(request, Some(&key)))
        .await?;
    Ok(Json(reply.into_inner().try_into()?))
}

/// Publishes a version waiting for review (admin).
#[utoipa::path(
    post,
    path = "/v1/agents/{slug}/versions/{version}/approve",
    tag = "reviews",
    security(("api_key" = [])),
    params(
        ("slug" = String, Path, description = "The agent's slug"),
        ("version" = String, Path, description = "The version, e.g. `1.2.0`"),
    ),
    responses(
        (status = 200, description = "The version, now `published`", body = VersionView, links(
            ("CreateExecution" = (operation_id = "create_execution", parameters(("slug" = "$response.body#/agent")))),
        )),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 403, description = "Not an admin (`permission_denied`)", body = ErrorBody),
        (status = 404, description = "No such agent or version", body = ErrorBody),
        (status = 409, description = "Already decided (`conflict`)", body = ErrorBody),
    )
)]
pub async fn approve_version(
    State(state): State<AppState>,
    key: ApiKey,
    PathArgs((agent_slug, version)): PathArgs<(String, String)>,
) -> Result<Json<VersionView>, ApiError> {
    let request = v1::ApproveVersionRequest {
        agent_slug,
        version,
    };
    let reply = state
        .control_plane
        .agents()
        .approve_version(auth::request(request, Some(&key)))
        .await?;
    Ok(Json(reply.into_inner().try_into()?))
}

/// Rejects a version waiting for review, with a reason (admin).
#[utoipa::path(
    post,
    path = "/v1/agents/{slug}/versions/{version}/reject",
    tag = "reviews",
    security(("api_key" = [])),
    params(
        ("slug" = String, Path, description = "The agent's slug"),
        ("version" = String, Path, description = "The version, e.g. `1.2.0`"),
    ),
    request_body = RejectVersion,
    responses(
        (status = 200, description = "The version, now `rejected`", body = VersionView),
        (status = 400, description = "Malformed body: not JSON, `reason` missing or not a string, or a Content-Type other than `application/json`", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 403, description = "Not an admin (`permission_denied`)", body = ErrorBody),
        (status = 404, description = "No such agent or version", body = ErrorBody),
        (status = 409, description = "Already decided (`conflict`)", body = ErrorBody),
        (status = 413, description = "Body too large (`payload_too_large`)", body = ErrorBody),
        (status = 422, description = "`validation_failed`: a blank reason, or one over 2000 characters", body = ErrorBody),
    )
)]
pub async fn reject_version(
    State(state): State<AppState>,
    key: ApiKey,
    PathArgs((agent_slug, version)): PathArgs<(String, String)>,
    body: JsonBody<RejectVersion>,
) -> Result<Json<VersionView>, ApiError> {
    let body = body.parse(&state.control_plane, &key).await?;
    let request = v1::RejectVersionRequest {
        agent_slug,
        version,
        reason: body.reason,
    };
    let reply = state
        .control_plane
        .agents()
        .reject_version(auth::request(request, Some(&key)))
        .await?;
    Ok(Json(reply.into_inner().try_into()?))
}
