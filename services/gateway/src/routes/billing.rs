//! Money: `GET /v1/accounts/{id}/balance`, `GET /v1/billing/mandate-keys`,
//! `GET /v1/executions/{id}/mandate` (the envelope, or a compact JWS) and the mandate keys as a
//! JWKS at `/.well-known/jwks.json`.

use axum::Json;
use axum::extract::State;
use frameos_proto::v1;
use serde::Deserialize;
use utoipa::{IntoParams, ToSchema};

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

/// How a mandate is shown: the envelope of API.md §2, or a compact JWS.
#[derive(Debug, Clone, Copy, Default, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum MandateFormat {
    #[default]
    Envelope,
    Jws,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MandateQuery {
    /// `envelope` (the default): `{payload, signature, kid}`; `jws`: `{jws}`, a compact JWS
    /// (RFC 7515, `alg` EdDSA) any JOSE library verifies with `/.well-known/jwks.json`.
    pub format: Option<MandateFormat>,
}

/// A mandate in the form the request asked for.
#[derive(Debug, serde::Serialize, ToSchema)]
#[serde(untagged)]
pub enum MandateBody {
    Envelope(MandateView),
    Jws(MandateJws),
}

/// A mandate as a compact JWS.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct MandateJws {
    /// `header.payload.signature`, base64url: the header names `alg` EdDSA and the `kid`; the
    /// payload is the mandate's exact signed bytes.
    pub jws: String,
}

/// The signed mandate of a paid execution (its user or an admin). Anyone can verify it offline
/// with the mandate key of its `kid`, or, as a JWS, with the JWKS.
#[utoipa::path(
    get,
    path = "/v1/executions/{id}/mandate",
    tag = "billing",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "The execution's id"), MandateQuery),
    responses(
        (status = 200, description = "The mandate", body = MandateBody),
        (status = 400, description = "Malformed query (an unknown format)", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 404, description = "No such execution visible to the caller, or it has no mandate (a free agent)", body = ErrorBody),
    )
)]
pub async fn get_mandate(
    State(state): State<AppState>,
    key: ApiKey,
    PathArgs(id): PathArgs<String>,
    QueryArgs(query): QueryArgs<MandateQuery>,
) -> Result<Json<MandateBody>, ApiError> {
    let reply = state
        .control_plane
        .executions()
        .get_mandate(auth::request(v1::GetMandateRequest { id }, Some(&key)))
        .await?
        .into_inner();
    Ok(Json(match query.format.unwrap_or_default() {
        MandateFormat::Envelope => MandateBody::Envelope(reply.try_into()?),
        MandateFormat::Jws => MandateBody::Jws(MandateJws {
            jws: crate::view::wrapped(reply.mandate, "mandate")?.jws,
        }),
    }))
}

/// One key of the JWKS (RFC 7517, OKP/Ed25519 per RFC 8037).
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct Jwk {
    /// `OKP`.
    pub kty: String,
    /// `Ed25519`.
    pub crv: String,
    /// The raw public key, base64url without padding.
    pub x: String,
    pub kid: String,
    /// `EdDSA`.
    pub alg: String,
    /// `sig`.
    #[serde(rename = "use")]
    pub key_use: String,
}

#[derive(Debug, serde::Serialize, ToSchema)]
pub struct Jwks {
    pub keys: Vec<Jwk>,
}

/// The mandate keys as a JWK Set: what verifies `GET /v1/executions/{id}/mandate?format=jws`.
/// No key needed.
#[utoipa::path(
    get,
    path = "/.well-known/jwks.json",
    tag = "billing",
    responses(
        (status = 200, description = "Every mandate key as an OKP/Ed25519 JWK", body = Jwks),
        (status = 401, description = "An API key was sent but is invalid", body = ErrorBody),
    )
)]
pub async fn jwks(
    State(state): State<AppState>,
    key: Option<ApiKey>,
) -> Result<Json<Jwks>, ApiError> {
    use base64::Engine;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let reply = state
        .control_plane
        .billing()
        .list_mandate_keys(auth::request(v1::ListMandateKeysRequest {}, key.as_ref()))
        .await?;
    let keys = reply
        .into_inner()
        .keys
        .into_iter()
        .map(|k| Jwk {
            kty: "OKP".into(),
            crv: "Ed25519".into(),
            x: URL_SAFE_NO_PAD.encode(&k.public_key),
            kid: k.kid,
            alg: "EdDSA".into(),
            key_use: "sig".into(),
        })
        .collect();
    Ok(Json(Jwks { keys }))
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
