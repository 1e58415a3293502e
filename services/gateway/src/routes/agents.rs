//! `POST /v1/agents`, `GET /v1/agents`, `GET /v1/agents/{slug}`, `PATCH /v1/agents/{slug}`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use frameos_proto::v1;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use crate::auth::{self, ApiKey};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{JsonBody, PathArgs, QueryArgs};
use crate::openapi::limits;
use crate::pricing::Pricing;
use crate::view::{AgentList, AgentView};

#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateAgent {
    #[schema(schema_with = limits::new_slug)]
    pub slug: String,
    #[schema(schema_with = limits::agent_name, example = "Word count")]
    pub name: String,
    #[serde(default)]
    #[schema(schema_with = limits::description)]
    pub description: Option<String>,
    pub pricing: Pricing,
}

/// What `PATCH /v1/agents/{slug}` changes: the pricing, for executions created from then on.
#[derive(Debug, Deserialize, ToSchema)]
pub struct UpdateAgent {
    pub pricing: Pricing,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListAgentsQuery {
    #[param(schema_with = limits::search_query)]
    pub q: Option<String>,
    #[param(schema_with = limits::page_size)]
    pub page_size: Option<u32>,
    /// `next_page_token` of the previous page.
    pub page_token: Option<String>,
    #[param(schema_with = runtime_schema)]
    pub runtime: Option<String>,
    #[param(schema_with = pricing_model_schema)]
    pub pricing_model: Option<String>,
    /// Only agents costing at most this many minor units per execution (free ones included).
    #[param(minimum = 1)]
    pub max_price_minor: Option<i64>,
    /// `true`: the caller's own agents (a developer's key), published or not, instead of the
    /// marketplace.
    pub mine: Option<bool>,
}

fn runtime_schema() -> utoipa::openapi::Object {
    limits::one_of(
        &["", "node", "python"],
        "Only agents with a published version for this runtime; empty or absent: any.",
    )
}

fn pricing_model_schema() -> utoipa::openapi::Object {
    limits::one_of(
        &["", "free", "per_execution"],
        "Only agents with this pricing model; empty or absent: any.",
    )
}

/// Creates an agent (developer); the caller becomes its owner.
#[utoipa::path(
    post,
    path = "/v1/agents",
    tag = "agents",
    security(("api_key" = [])),
    request_body = CreateAgent,
    responses(
        (status = 201, description = "The new agent", body = AgentView, links(
            ("GetAgent" = (operation_id = "get_agent", parameters(("slug" = "$response.body#/slug")))),
            ("PublishVersion" = (operation_id = "publish_version", parameters(("slug" = "$response.body#/slug")))),
            ("ListVersions" = (operation_id = "list_versions", parameters(("slug" = "$response.body#/slug")))),
        )),
        (status = 400, description = "Malformed body: not JSON, a field missing or of the wrong type (e.g. a price that is not an integer), or a Content-Type other than `application/json`", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 403, description = "Not a developer (`permission_denied`)", body = ErrorBody),
        (status = 409, description = "The slug is taken (`slug_taken`)", body = ErrorBody),
        (status = 413, description = "Body too large (`payload_too_large`)", body = ErrorBody),
        (status = 422, description = "`validation_failed`: an invalid slug, name or description, or a price below the least the payment rail's fee allows in that currency (the minimum depends on the currency and the platform's fee schedule)", body = ErrorBody),
    )
)]
pub async fn create_agent(
    State(state): State<AppState>,
    key: ApiKey,
    body: JsonBody<CreateAgent>,
) -> Result<(StatusCode, Json<AgentView>), ApiError> {
    let body = body.parse(&state.control_plane, &key).await?;
    let request = v1::CreateAgentRequest {
        slug: body.slug,
        name: body.name,
        description: body.description.unwrap_or_default(),
        pricing: Some(body.pricing.into()),
    };
    let reply = state
        .control_plane
        .agents()
        .create_agent(auth::request(request, Some(&key)))
        .await?;
    Ok((StatusCode::CREATED, Json(reply.into_inner().try_into()?)))
}

/// The marketplace: agents with a published version, filtered by search text, runtime and
/// price. No key needed. With `mine=true` and a developer's key: the caller's own agents,
/// published or not.
#[utoipa::path(
    get,
    path = "/v1/agents",
    tag = "agents",
    params(ListAgentsQuery),
    responses(
        (status = 200, description = "A page of published agents", body = AgentList),
        (status = 400, description = "Malformed query, e.g. a non-numeric page_size", body = ErrorBody),
        (status = 401, description = "An API key was sent but is invalid, or `mine=true` without a key", body = ErrorBody),
        (status = 422, description = "`validation_failed`: page_size over 100, q over 200 characters, an unknown runtime or pricing model, or a max_price_minor below 1", body = ErrorBody),
    )
)]
pub async fn list_agents(
    State(state): State<AppState>,
    key: Option<ApiKey>,
    QueryArgs(query): QueryArgs<ListAgentsQuery>,
) -> Result<Json<AgentList>, ApiError> {
    let request = v1::ListAgentsRequest {
        query: query.q.unwrap_or_default(),
        page_size: query.page_size.unwrap_or_default(),
        page_token: query.page_token.unwrap_or_default(),
        runtime: query.runtime.unwrap_or_default(),
        pricing_model: query.pricing_model.unwrap_or_default(),
        max_price_minor: query.max_price_minor,
        mine: query.mine.unwrap_or_default(),
    };
    let reply = state
        .control_plane
        .agents()
        .list_agents(auth::request(request, key.as_ref()))
        .await?;
    Ok(Json(reply.into_inner().try_into()?))
}

/// One agent with its latest published version. Anyone sees a published agent; its owner and
/// admins also see it before publication (send the key).
#[utoipa::path(
    get,
    path = "/v1/agents/{slug}",
    tag = "agents",
    params(("slug" = String, Path, description = "The agent's slug")),
    responses(
        (status = 200, description = "The agent", body = AgentView),
        (status = 401, description = "An API key was sent but is invalid", body = ErrorBody),
        (status = 404, description = "No such agent visible to the caller", body = ErrorBody),
    )
)]
pub async fn get_agent(
    State(state): State<AppState>,
    key: Option<ApiKey>,
    PathArgs(slug): PathArgs<String>,
) -> Result<Json<AgentView>, ApiError> {
    let reply = state
        .control_plane
        .agents()
        .get_agent(auth::request(v1::GetAgentRequest { slug }, key.as_ref()))
        .await?;
    Ok(Json(reply.into_inner().try_into()?))
}

/// Changes the pricing of an agent (its owner only). Executions created from then on pay the
/// new price; those already created keep theirs.
#[utoipa::path(
    patch,
    path = "/v1/agents/{slug}",
    tag = "agents",
    security(("api_key" = [])),
    params(("slug" = String, Path, description = "The agent's slug")),
    request_body = UpdateAgent,
    responses(
        (status = 200, description = "The agent with its new pricing", body = AgentView),
        (status = 400, description = "Malformed body, e.g. a price that is not an integer", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 403, description = "Not a developer, or the agent belongs to another developer", body = ErrorBody),
        (status = 404, description = "No such agent visible to the caller", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 422, description = "Invalid price or currency", body = ErrorBody),
    )
)]
pub async fn update_agent(
    State(state): State<AppState>,
    key: ApiKey,
    PathArgs(slug): PathArgs<String>,
    body: JsonBody<UpdateAgent>,
) -> Result<Json<AgentView>, ApiError> {
    let body = body.parse(&state.control_plane, &key).await?;
    let request = v1::UpdateAgentRequest {
        slug,
        pricing: Some(body.pricing.into()),
    };
    let reply = state
        .control_plane
        .agents()
        .update_agent(auth::request(request, Some(&key)))
        .await?;
    Ok(Json(reply.into_inner().try_into()?))
}
