//! Money: `GET /v1/accounts/{id}/balance`, `GET /v1/billing/mandate-keys` and
//! `GET /v1/executions/{id}/mandate`.

use axum::Json;
use axum::extract::State;
use frameos_proto::v1;
use serde::Deserialize;
use utoipa::IntoParams;

use super::AppState;
use crate::auth::{self, ApiKey};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{PathArgs, QueryArgs};
use crate::openapi::limits;
use crate::view::{BalanceView, MandateKeyList, MandateView};

/// The currency of a balance when the request names none (API.md §2).
const DEFAULT_CURRENCY: &str = "INR";

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BalanceQuery {
    #[param(schema_with = limits::currency_or_default)]
    pub currency: Option<String>,
}

/// An account's balance in one currency, with the ledger entries behind it (that account or
/// an admin).
#[utoipa::path(
    get,
    path = "/v1/accounts/{id}/balance",
    tag = "billing",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "The account's id"), BalanceQuery),
    responses(
        (status = 200, description = "The balance and its ledger entries", body = BalanceView),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 400, description = "Malformed query", body = ErrorBody),
        (status = 404, description = "Another account's balance (only admins see every account's)", body = ErrorBody),
        (status = 422, description = "`validation_failed`: not a circulating ISO 4217 currency", body = ErrorBody),
    )
)]
pub async fn get_balance(
    State(state): State<AppState>,
    key: ApiKey,
    PathArgs(account_id): PathArgs<String>,
    QueryArgs(query): QueryArgs<BalanceQuery>,
) -> Result<Json<BalanceView>, ApiError> {
    let request = v1::GetBalanceRequest {
        account_id,
        currency: query
            .currency
            .unwrap_or_else(|| DEFAULT_CURRENCY.to_string()),
    };
    let reply = state
        .control_plane
        .billing()
        .get_balance(auth::request(request, Some(&key)))
        .await?;
    Ok(Json(reply.into_inner().try_into()?))
}

/// The public keys that verify mandates, retired ones included. No key needed.
#[utoipa::path(
    get,
    path = "/v1/billing/mandate-keys",
    tag = "billing",
    responses(
        (status = 200, description = "Every mandate key by `kid`", body = MandateKeyList),
        (status = 401, description = "An API key was sent but is invalid", body = ErrorBody),
    )
)]
pub async fn list_mandate_keys(
    State(state): State<AppState>,
    key: Option<ApiKey>,
) -> Result<Json<MandateKeyList>, ApiError> {
    let reply = state
        .control_plane
        .billing()
        .list_mandate_keys(auth::request(v1::ListMandateKeysRequest {}, key.as_ref()))
        .await?;
    Ok(Json(reply.into_inner().into()))
}

/// The signed mandate of a paid execution (its user or an admin). Anyone can verify it offline
/// with the mandate key of its `kid`.
#[utoipa::path(
    get,
    path = "/v1/executions/{id}/mandate",
    tag = "billing",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "The execution's id")),
    responses(
        (status = 200, description = "The mandate", body = MandateView),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 404, description = "No such execution visible to the caller, or it has no mandate (a free agent)", body = ErrorBody),
    )
)]
pub async fn get_mandate(
    State(state): State<AppState>,
    key: ApiKey,
    PathArgs(id): PathArgs<String>,
) -> Result<Json<MandateView>, ApiError> {
    let reply = state
        .control_plane
        .executions()
        .get_mandate(auth::request(v1::GetMandateRequest { id }, Some(&key)))
        .await?;
    Ok(Json(reply.into_inner().try_into()?))
}

/// What one agent has earned its developer in one currency.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct AgentEarningsView {
    /// The agent's slug.
    pub agent: String,
    /// The agent's display name.
    pub agent_name: String,
    /// ISO 4217 code.
    pub currency: String,
    /// Paid executions whose charge was captured.
    pub paid_executions: u64,
    /// The developer's share of those charges, in minor units.
    pub earned_minor: i64,
    /// Captured charges of agents this agent called (`ctx.call`).
    pub paid_calls: u64,
    /// The developer's orchestrator share (10 %) of those charges, in minor units.
    pub orchestrator_minor: i64,
}

#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct EarningsList {
    /// One row per agent and currency, highest earnings first; agents that earned nothing are
    /// left out.
    pub items: Vec<AgentEarningsView>,
}

/// The caller's earnings per agent (a developer): their share of every captured charge, and
/// their orchestrator share of the agents each agent called.
#[utoipa::path(
    get,
    path = "/v1/me/earnings",
    tag = "billing",
    security(("api_key" = [])),
    responses(
        (status = 200, description = "Earnings per agent and currency", body = EarningsList),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 403, description = "Not a developer", body = ErrorBody),
    )
)]
pub async fn list_earnings(
    State(state): State<AppState>,
    key: ApiKey,
) -> Result<Json<EarningsList>, ApiError> {
    let request = v1::ListEarningsRequest::default();
    let reply = state
        .control_plane
        .billing()
        .list_earnings(auth::request(request, Some(&key)))
        .await?;
    let items = reply
        .into_inner()
        .items
        .into_iter()
        .map(|e| AgentEarningsView {
            agent: e.agent_slug,
            agent_name: e.agent_name,
            currency: e.currency,
            paid_executions: e.paid_executions,
            earned_minor: e.earned_minor,
            paid_calls: e.paid_calls,
            orchestrator_minor: e.orchestrator_minor,
        })
        .collect();
    Ok(Json(EarningsList { items }))
}
