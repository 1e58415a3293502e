//! The admin review: the queues (pending review, spot checks), approving and rejecting
//! versions, banning agents (API.md §5.2).

use axum::Json;
use axum::extract::State;
use frameos_core::{ErrorCode, VersionStatus};
use frameos_proto::{ProtoEnum, v1};
use serde::{Deserialize, Serialize};
use utoipa::openapi::Object;
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use crate::auth::{self, ApiKey};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{JsonBody, PathArgs, QueryArgs};
use crate::openapi::limits;
use crate::view::{AgentView, VersionList, VersionView};

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReviewsQuery {
    #[param(schema_with = review_status_schema)]
    pub status: Option<String>,
}

fn review_status_schema() -> Object {
    limits::one_of(
        &[
            "",
            "pending_review",
            "published",
            "rejected",
            "banned",
            SPOT_CHECK,
        ],
        "The versions' status, or `spot_check`: published versions waiting for their spot check; empty or absent: `pending_review`.",
    )
}

/// The `status` filter that lists the spot-check queue rather than a version status.
const SPOT_CHECK: &str = "spot_check";

/// Which versions `GET /v1/reviews` lists.
enum Queue {
    Status(VersionStatus),
    SpotCheck,
}

impl std::str::FromStr for Queue {
    type Err = frameos_core::Error;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            SPOT_CHECK => Ok(Queue::SpotCheck),
            status => status.parse().map(Queue::Status),
        }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct BanAgent {
    #[schema(schema_with = limits::reason)]
    pub reason: String,
}

/// What a ban did.
#[derive(Debug, Serialize, ToSchema)]
pub struct BannedAgent {
    /// The agent, with its `ban`.
    pub agent: AgentView,
    /// How many of its queued or running executions this request canceled (and voided).
    pub canceled_executions: u32,
}

impl TryFrom<v1::BanAgentResponse> for BannedAgent {
    type Error = frameos_core::Error;

    fn try_from(r: v1::BanAgentResponse) -> Result<Self, Self::Error> {
        Ok(BannedAgent {
            agent: r
                .agent
                .ok_or_else(|| frameos_core::Error::internal("the control plane sent no agent"))?
                .try_into()?,
            canceled_executions: r.canceled_executions,
        })
    }
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
    let queue = match query
        .status
        .as_deref()
        .filter(|s| !s.is_empty())
        .map(str::parse::<Queue>)
    {
        None => Queue::Status(VersionStatus::PendingReview),
        Some(Ok(queue)) => queue,
        Some(Err(e)) => {
            let error = ApiError::new(ErrorCode::ValidationFailed, e.message);
            return Err(state
                .control_plane
                .unless_unauthenticated(&key, error)
                .await);
        }
    };
    let request = match queue {
        Queue::Status(status) => v1::ListReviewsRequest {
            status: status.to_proto(),
            spot_check: false,
        },
        Queue::SpotCheck => v1::ListReviewsRequest {
            status: VersionStatus::Published.to_proto(),
            spot_check: true,
        },
    };
    let reply = state
        .control_plane
        .agents()
        .list_reviews(auth::request(request, Some(&key)))
        .await?;
    Ok(Json(reply.into_inner().try_into()?))
}

/// Bans an agent (admin): every version `banned`, so it is no longer listed, run, called or
/// given new versions; its queued and running executions are canceled and voided; its owner
/// sees the reason on the agent. Banning again keeps the first reason.
#[utoipa::path(
    post,
    path = "/v1/agents/{slug}/ban",
    tag = "reviews",
    security(("api_key" = [])),
    params(("slug" = String, Path, description = "The agent's slug")),
    request_body = BanAgent,
    responses(
        (status = 200, description = "The banned agent", body = BannedAgent),
        (status = 400, description = "Malformed body: not JSON, `reason` missing or not a string, or a Content-Type other than `application/json`", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 403, description = "Not an admin (`permission_denied`)", body = ErrorBody),
        (status = 404, description = "No such agent", body = ErrorBody),
        (status = 413, description = "Body too large (`payload_too_large`)", body = ErrorBody),
        (status = 422, description = "`validation_failed`: a blank reason, or one over 2000 characters", body = ErrorBody),
    )
)]
pub async fn ban_agent(
    State(state): State<AppState>,
    key: ApiKey,
    PathArgs(agent_slug): PathArgs<String>,
    body: JsonBody<BanAgent>,
) -> Result<Json<BannedAgent>, ApiError> {
    let body = body.parse(&state.control_plane, &key).await?;
    let request = v1::BanAgentRequest {
        agent_slug,
        reason: body.reason,
    };
    let reply = state
        .control_plane
        .agents()
        .ban_agent(auth::request(request, Some(&key)))
        .await?;
    Ok(Json(reply.into_inner().try_into()?))
}

/// Publishes a version waiting for review, or passes its spot check (admin).
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
        (status = 200, description = "The version, now `published` (a spot check: still published, out of the spot-check queue)", body = VersionView, links(
            ("CreateExecution" = (operation_id = "create_execution", parameters(("slug" = "$response.body#/agent")))),
        )),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 403, description = "Not an admin (`permission_denied`)", body = ErrorBody),
        (status = 404, description = "No such agent or version", body = ErrorBody),
        (status = 409, description = "Neither pending review nor waiting for a spot check (`conflict`)", body = ErrorBody),
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

/// Rejects a version waiting for review, or fails its spot check (which unpublishes it), with a
/// reason (admin).
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
        (status = 409, description = "Neither pending review nor waiting for a spot check (`conflict`)", body = ErrorBody),
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
