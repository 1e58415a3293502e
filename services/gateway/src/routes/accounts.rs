//! `POST /v1/accounts`, `GET /v1/me`.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use frameos_core::Role;
use frameos_proto::{ProtoEnum, v1};
use serde::Deserialize;
use utoipa::ToSchema;
use utoipa::openapi::Object;

use super::AppState;
use crate::auth::{self, ApiKey};
use crate::error::{ApiError, ErrorBody};
use crate::extract::JsonBody;
use crate::openapi::limits;
use crate::view::{AccountView, NewAccountView};

#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateAccount {
    #[schema(schema_with = limits::account_name, example = "dev-ada")]
    pub name: String,
    #[schema(schema_with = role_schema, example = "developer")]
    pub role: String,
}

fn role_schema() -> Object {
    limits::one_of(&["user", "developer", "admin"], "The account's role.")
}

/// Creates an account (admin only). Its API key is in this response and nowhere else.
#[utoipa::path(
    post,
    path = "/v1/accounts",
    tag = "accounts",
    security(("api_key" = [])),
    request_body = CreateAccount,
    responses(
        (status = 201, description = "The account and its API key, shown once", body = NewAccountView),
        (status = 400, description = "Malformed body: not JSON, a field missing or of the wrong type, or a Content-Type other than `application/json`", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 403, description = "Not an admin (`permission_denied`)", body = ErrorBody),
        (status = 409, description = "An account with this name exists (`account_exists`)", body = ErrorBody),
        (status = 413, description = "Body too large (`payload_too_large`)", body = ErrorBody),
        (status = 422, description = "`validation_failed`: unknown role, or a name that is blank, too long or holds control characters", body = ErrorBody),
    )
)]
pub async fn create_account(
    State(state): State<AppState>,
    key: ApiKey,
    body: JsonBody<CreateAccount>,
) -> Result<(StatusCode, Json<NewAccountView>), ApiError> {
    let body = body.parse(&state.control_plane, &key).await?;
    // An unknown role is `validation_failed` (422), unless the key is invalid (401).
    let role = match body.role.parse::<Role>() {
        Ok(role) => role,
        Err(error) => {
            let error = ApiError::from(error);
            return Err(state
                .control_plane
                .unless_unauthenticated(&key, error)
                .await);
        }
    };
    let request = v1::CreateAccountRequest {
        name: body.name,
        role: role.to_proto(),
    };
    let reply = state
        .control_plane
        .accounts()
        .create_account(auth::request(request, Some(&key)))
        .await?;
    Ok((StatusCode::CREATED, Json(reply.into_inner().try_into()?)))
}

/// The account the presented key belongs to.
#[utoipa::path(
    get,
    path = "/v1/me",
    tag = "accounts",
    security(("api_key" = [])),
    responses(
        (status = 200, description = "The caller's account", body = AccountView),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
    )
)]
pub async fn me(State(state): State<AppState>, key: ApiKey) -> Result<Json<AccountView>, ApiError> {
    let reply = state
        .control_plane
        .accounts()
        .who_am_i(auth::request(v1::WhoAmIRequest {}, Some(&key)))
        .await?;
    Ok(Json(reply.into_inner().try_into()?))
}
