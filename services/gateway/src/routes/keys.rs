//! `POST /v1/me/keys`, `GET /v1/me/keys`, `DELETE /v1/me/keys/{id}` (API.md §4.5): the caller's
//! named API keys. The control plane decides everything (`ApiKeyService`); this is the JSON.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{delete, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use frameos_core::{Error, ErrorCode, Scope, Scopes};
use frameos_proto::v1;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa::openapi::schema::{ArrayBuilder, ObjectBuilder, Type};

use super::AppState;
use crate::auth::{self, ApiKey};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{JsonBody, PathArgs};
use crate::view::timestamp;

/// The routes of this file, merged into the API router.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/me/keys", post(create_key).get(list_keys))
        .route("/v1/me/keys/{id}", delete(revoke_key))
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateKey {
    /// Your name for the key: 1 to 128 printable characters.
    #[schema(schema_with = crate::openapi::limits::key_name, example = "ci-runner")]
    pub name: String,
    /// What the key may do; absent: everything your role allows. Never beyond your role, and
    /// never beyond the scopes of the key that creates it.
    #[serde(default)]
    #[schema(schema_with = scope_list_schema)]
    pub scopes: Option<Vec<Scope>>,
    /// When the key stops working (RFC 3339, in the future); absent or null: never.
    #[serde(default)]
    #[schema(format = DateTime, example = "2030-01-31T00:00:00Z")]
    pub expires_at: Option<String>,
}

/// A new key; `api_key` is shown this once.
#[derive(Debug, Serialize, ToSchema)]
pub struct NewKeyView {
    pub id: String,
    pub name: String,
    #[schema(schema_with = scope_list_schema)]
    pub scopes: Vec<&'static str>,
    /// Null: the key never expires.
    #[schema(format = DateTime, required = true)]
    pub expires_at: Option<String>,
    /// The secret: send it as `Authorization: Bearer <api_key>`.
    pub api_key: String,
}

/// A key as listed: never its secret.
#[derive(Debug, Serialize, ToSchema)]
pub struct KeyView {
    /// Pass it to `DELETE /v1/me/keys/{id}`.
    pub id: String,
    pub name: String,
    #[schema(schema_with = scope_list_schema)]
    pub scopes: Vec<&'static str>,
    #[schema(format = DateTime)]
    pub created_at: Option<String>,
    /// To the minute; null: not used yet.
    #[schema(format = DateTime, required = true)]
    pub last_used_at: Option<String>,
    /// Null: the key never expires.
    #[schema(format = DateTime, required = true)]
    pub expires_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct KeyList {
    pub items: Vec<KeyView>,
}

/// The scope names of a wire value, in the order read, run, publish, admin.
fn scope_names(wire: &[i32]) -> Vec<&'static str> {
    // The control plane sends only valid values; an unknown one would be dropped, not guessed.
    let scopes: Scopes = wire
        .iter()
        .filter_map(|value| frameos_proto::scope::from_wire(&[*value]).ok())
        .flat_map(Scopes::iter)
        .collect();
    scopes.iter().map(Scope::as_str).collect()
}

impl From<v1::ApiKey> for KeyView {
    fn from(k: v1::ApiKey) -> Self {
        KeyView {
            scopes: scope_names(&k.scopes),
            created_at: timestamp(k.created_at.as_ref()),
            last_used_at: timestamp(k.last_used_at.as_ref()),
            expires_at: timestamp(k.expires_at.as_ref()),
            id: k.id,
            name: k.name,
        }
    }
}

impl From<v1::CreateApiKeyResponse> for NewKeyView {
    fn from(r: v1::CreateApiKeyResponse) -> Self {
        let key = KeyView::from(r.key.unwrap_or_default());
        NewKeyView {
            id: key.id,
            name: key.name,
            scopes: key.scopes,
            expires_at: key.expires_at,
            api_key: r.api_key,
        }
    }
}

/// Scopes are an enum in the document.
fn scope_list_schema() -> ArrayBuilder {
    // null is taken as absent; an empty list is refused (a key that may do nothing).
    ArrayBuilder::new()
        .schema_type(utoipa::openapi::schema::SchemaType::from_iter([
            Type::Array,
            Type::Null,
        ]))
        .min_items(Some(1))
        .items(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some(Scope::ALL.iter().map(|s| s.as_str()))),
        )
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::from(Error::new(ErrorCode::ValidationFailed, message))
}

/// The request as the control plane takes it.
fn request(body: CreateKey) -> Result<v1::CreateApiKeyRequest, ApiError> {
    let scopes = match body.scopes {
        Some(list) if list.is_empty() => {
            return Err(invalid(
                "scopes must not be empty; leave it out for everything your role allows",
            ));
        }
        Some(list) => frameos_proto::scope::to_wire(list.iter().collect()),
        // Empty on the wire: the role's default.
        None => Vec::new(),
    };
    let expires_at = match body.expires_at {
        Some(text) => {
            let at = DateTime::parse_from_rfc3339(&text)
                .map_err(|e| invalid(format!("expires_at is not an RFC 3339 timestamp: {e}")))?
                .with_timezone(&Utc);
            Some(prost_types::Timestamp {
                seconds: at.timestamp(),
                nanos: i32::try_from(at.timestamp_subsec_nanos()).unwrap_or(0),
            })
        }
        None => None,
    };
    Ok(v1::CreateApiKeyRequest {
        name: body.name,
        scopes,
        expires_at,
    })
}

/// Creates an API key for your account. Its secret is in this response and nowhere else.
#[utoipa::path(
    post,
    path = "/v1/me/keys",
    tag = "accounts",
    security(("api_key" = [])),
    request_body = CreateKey,
    responses(
        (status = 201, description = "The key and its secret, shown once", body = NewKeyView),
        (status = 400, description = "Malformed body (e.g. an unknown scope)", body = ErrorBody),
        (status = 401, description = "Missing, invalid, revoked or expired API key", body = ErrorBody),
        (status = 403, description = "Scopes beyond your role, or beyond the calling key's scopes (`permission_denied`, naming the scope)", body = ErrorBody),
        (status = 409, description = "The account holds the most keys it may (`conflict`); revoke one first", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 422, description = "Invalid name, empty scopes, or an expiry not in the future (`validation_failed`)", body = ErrorBody),
    )
)]
pub async fn create_key(
    State(state): State<AppState>,
    key: ApiKey,
    body: JsonBody<CreateKey>,
) -> Result<(StatusCode, Json<NewKeyView>), ApiError> {
    let body = body.parse(&state.control_plane, &key).await?;
    let message = match request(body) {
        Ok(message) => message,
        Err(error) => {
            return Err(state
                .control_plane
                .unless_unauthenticated(&key, error)
                .await);
        }
    };
    let reply = state
        .control_plane
        .api_keys()
        .create_api_key(auth::request(message, Some(&key)))
        .await?;
    Ok((StatusCode::CREATED, Json(reply.into_inner().into())))
}

/// Your account's API keys that are not revoked (expired ones included), oldest first. Never a
/// secret.
#[utoipa::path(
    get,
    path = "/v1/me/keys",
    tag = "accounts",
    security(("api_key" = [])),
    responses(
        (status = 200, description = "The keys", body = KeyList),
        (status = 401, description = "Missing, invalid, revoked or expired API key", body = ErrorBody),
        (status = 403, description = "The key lacks the `read` scope", body = ErrorBody),
    )
)]
pub async fn list_keys(
    State(state): State<AppState>,
    key: ApiKey,
) -> Result<Json<KeyList>, ApiError> {
    let reply = state
        .control_plane
        .api_keys()
        .list_api_keys(auth::request(v1::ListApiKeysRequest {}, Some(&key)))
        .await?;
    let items = reply.into_inner().keys.into_iter().map(KeyView::from);
    Ok(Json(KeyList {
        items: items.collect(),
    }))
}

/// Revokes one of your API keys: every replica refuses it within seconds, on REST and gRPC.
#[utoipa::path(
    delete,
    path = "/v1/me/keys/{id}",
    tag = "accounts",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "The key's id")),
    responses(
        (status = 204, description = "Revoked"),
        (status = 401, description = "Missing, invalid, revoked or expired API key", body = ErrorBody),
        (status = 403, description = "The calling key lacks a scope the revoked key has (`permission_denied`, naming it)", body = ErrorBody),
        (status = 404, description = "No such key among your account's keys", body = ErrorBody),
    )
)]
pub async fn revoke_key(
    State(state): State<AppState>,
    key: ApiKey,
    PathArgs(id): PathArgs<String>,
) -> Result<StatusCode, ApiError> {
    state
        .control_plane
        .api_keys()
        .revoke_api_key(auth::request(v1::RevokeApiKeyRequest { id }, Some(&key)))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn body(value: serde_json::Value) -> CreateKey {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn requests_keep_the_default_apart_from_an_empty_list() {
        let default = request(body(json!({"name": "a"}))).unwrap();
        assert!(default.scopes.is_empty() && default.expires_at.is_none());
        let some = request(body(json!({"name": "a", "scopes": ["run", "read", "run"]}))).unwrap();
        assert_eq!(scope_names(&some.scopes), ["read", "run"]);
        let empty = request(body(json!({"name": "a", "scopes": []}))).unwrap_err();
        assert_eq!(empty.code(), ErrorCode::ValidationFailed);
        let late = request(body(json!({"name": "a", "expires_at": "tomorrow"}))).unwrap_err();
        assert_eq!(late.code(), ErrorCode::ValidationFailed);
        let at = request(body(
            json!({"name": "a", "expires_at": "2030-01-01T00:00:00+01:00"}),
        ))
        .unwrap()
        .expires_at
        .unwrap();
        assert_eq!(at.seconds, 1_893_452_400);
        assert!(
            serde_json::from_value::<CreateKey>(json!({"name": "a", "scopes": ["root"]})).is_err()
        );
    }

    #[test]
    fn listed_keys_have_every_field_and_no_secret() {
        let listed = serde_json::to_value(KeyView::from(v1::ApiKey {
            id: "0123456789abcdef".into(),
            name: "ci".into(),
            scopes: vec![v1::Scope::Run as i32, v1::Scope::Read as i32],
            created_at: Some(prost_types::Timestamp {
                seconds: 0,
                nanos: 0,
            }),
            last_used_at: None,
            expires_at: None,
        }))
        .unwrap();
        assert_eq!(
            listed,
            json!({
                "id": "0123456789abcdef",
                "name": "ci",
                "scopes": ["read", "run"],
                "created_at": "1970-01-01T00:00:00Z",
                "last_used_at": null,
                "expires_at": null,
            })
        );
    }
}
