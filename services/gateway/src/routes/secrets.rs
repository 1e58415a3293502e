//! `PUT`/`DELETE /v1/agents/{slug}/secrets/{name}`, `GET /v1/agents/{slug}/secrets` (API.md
//! §5.3): an agent's secrets, write-only. The control plane decides everything
//! (`SecretService`); this is the JSON. A value is never echoed, logged or returned.

use std::fmt;

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, put};
use axum::{Json, Router};
use frameos_proto::v1;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa::openapi::Object;
use utoipa::openapi::schema::{ObjectBuilder, Type};

use super::AppState;
use crate::auth::{self, ApiKey};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{JsonBody, PathArgs};
use crate::view::timestamp;

/// The routes of this file, merged into the API router.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/agents/{slug}/secrets", get(list_secrets))
        .route(
            "/v1/agents/{slug}/secrets/{name}",
            put(put_secret).delete(delete_secret),
        )
}

/// A secret's value. Its `Debug` never shows it.
#[derive(Deserialize, ToSchema)]
pub struct PutSecret {
    /// Write-only: 1 to 4096 bytes of UTF-8, never returned by any route.
    #[schema(schema_with = value_schema)]
    pub value: String,
}

impl fmt::Debug for PutSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PutSecret").finish_non_exhaustive()
    }
}

/// A secret as listed: its name and when it was last written, never its value.
#[derive(Debug, Serialize, ToSchema)]
pub struct SecretView {
    pub name: String,
    #[schema(format = DateTime)]
    pub updated_at: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SecretList {
    pub items: Vec<SecretView>,
}

impl From<v1::SecretInfo> for SecretView {
    fn from(s: v1::SecretInfo) -> Self {
        SecretView {
            updated_at: timestamp(s.updated_at.as_ref()),
            name: s.name,
        }
    }
}

fn value_schema() -> Object {
    // Bytes, not characters: JSON Schema's maxLength counts characters, so it is not stated.
    ObjectBuilder::new()
        .schema_type(Type::String)
        .min_length(Some(1))
        .description(Some(
            "Write-only: 1 to 4096 bytes of UTF-8. Encrypted at rest, delivered only to this \
             agent's runs, masked as `***` in their logs.",
        ))
        .build()
}

/// Sets one secret of your agent (owner only; not even an admin). Its runs read it as
/// `ctx.secrets.NAME`; the value is encrypted at rest, never returned, and masked as `***` in
/// every log line of the agent's runs. At most 100 secrets per agent.
#[utoipa::path(
    put,
    path = "/v1/agents/{slug}/secrets/{name}",
    tag = "agents",
    security(("api_key" = [])),
    params(
        ("slug" = String, Path, description = "The agent's slug"),
        ("name" = String, Path, pattern = "^[A-Z_][A-Z0-9_]{0,63}$",
            description = "Like an environment variable: A-Z, 0-9 and _, not starting with a \
                digit, 1 to 64 characters. The agent reads it as `ctx.secrets.NAME`"),
    ),
    request_body = PutSecret,
    responses(
        (status = 200, description = "Written; the value is not echoed", body = SecretView),
        (status = 400, description = "Malformed body", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 403, description = "Not a developer, the key lacks `publish`, or a visible agent of another developer (`permission_denied`)", body = ErrorBody),
        (status = 404, description = "No such agent that you may see", body = ErrorBody),
        (status = 413, description = "Body too large", body = ErrorBody),
        (status = 422, description = "`validation_failed`: a bad name, an empty or over-4096-byte value, or the agent's 101st secret", body = ErrorBody),
        (status = 503, description = "`unavailable`: also when the platform has no FRAMEOS_SECRETS_KEY to encrypt with", body = ErrorBody),
    )
)]
pub async fn put_secret(
    State(state): State<AppState>,
    key: ApiKey,
    PathArgs((agent_slug, name)): PathArgs<(String, String)>,
    body: JsonBody<PutSecret>,
) -> Result<Json<SecretView>, ApiError> {
    let body = body.parse(&state.control_plane, &key).await?;
    let message = v1::PutSecretRequest {
        agent_slug,
        name,
        value: body.value,
    };
    let reply = state
        .control_plane
        .secrets()
        .put_secret(auth::request(message, Some(&key)))
        .await?;
    let secret = reply.into_inner().secret.unwrap_or_default();
    Ok(Json(secret.into()))
}

/// The names of an agent's secrets (its owner, or an admin), never their values.
#[utoipa::path(
    get,
    path = "/v1/agents/{slug}/secrets",
    tag = "agents",
    security(("api_key" = [])),
    params(("slug" = String, Path, description = "The agent's slug")),
    responses(
        (status = 200, description = "Names in order, with when each was last written", body = SecretList),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 403, description = "Not a developer, or a visible agent of another developer (`permission_denied`)", body = ErrorBody),
        (status = 404, description = "No such agent that you may see", body = ErrorBody),
    )
)]
pub async fn list_secrets(
    State(state): State<AppState>,
    key: ApiKey,
    PathArgs(agent_slug): PathArgs<String>,
) -> Result<Json<SecretList>, ApiError> {
    let reply = state
        .control_plane
        .secrets()
        .list_secrets(auth::request(
            v1::ListSecretsRequest { agent_slug },
            Some(&key),
        ))
        .await?;
    let items = reply.into_inner().items.into_iter().map(SecretView::from);
    Ok(Json(SecretList {
        items: items.collect(),
    }))
}

/// Deletes one secret of your agent (owner only). Runs that start afterwards no longer get it.
#[utoipa::path(
    delete,
    path = "/v1/agents/{slug}/secrets/{name}",
    tag = "agents",
    security(("api_key" = [])),
    params(
        ("slug" = String, Path, description = "The agent's slug"),
        ("name" = String, Path, description = "The secret's name"),
    ),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 403, description = "Not a developer, the key lacks `publish`, or a visible agent of another developer (`permission_denied`)", body = ErrorBody),
        (status = 404, description = "No such agent that you may see, or no such secret", body = ErrorBody),
    )
)]
pub async fn delete_secret(
    State(state): State<AppState>,
    key: ApiKey,
    PathArgs((agent_slug, name)): PathArgs<(String, String)>,
) -> Result<StatusCode, ApiError> {
    state
        .control_plane
        .secrets()
        .delete_secret(auth::request(
            v1::DeleteSecretRequest { agent_slug, name },
            Some(&key),
        ))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// Exactly the names the control plane accepts: the document's `name` parameter.
    const NAME_PATTERN: &str = "^[A-Z_][A-Z0-9_]{0,63}$";

    #[test]
    fn a_value_never_shows_and_a_listed_secret_has_no_value() {
        let body: PutSecret = serde_json::from_value(json!({"value": "hunter2"})).unwrap();
        assert!(!format!("{body:?}").contains("hunter2"));
        let listed = serde_json::to_value(SecretView::from(v1::SecretInfo {
            name: "API_TOKEN".into(),
            updated_at: Some(prost_types::Timestamp {
                seconds: 0,
                nanos: 0,
            }),
        }))
        .unwrap();
        assert_eq!(
            listed,
            json!({"name": "API_TOKEN", "updated_at": "1970-01-01T00:00:00Z"})
        );
        assert!(serde_json::from_value::<PutSecret>(json!({"value": 7})).is_err());
    }

    #[test]
    fn the_documented_name_pattern_is_the_rule() {
        let pattern = regex::Regex::new(NAME_PATTERN).unwrap();
        for good in ["A", "_", "API_TOKEN", "X9", &"A".repeat(64)] {
            assert!(pattern.is_match(good), "{good}");
        }
        for bad in ["", "9A", "api", "A-B", "É", &"A".repeat(65)] {
            assert!(!pattern.is_match(bad), "{bad}");
        }
        let doc = crate::openapi::document();
        let put = &doc["paths"]["/v1/agents/{slug}/secrets/{name}"]["put"];
        let name = put["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == "name")
            .unwrap();
        assert_eq!(name["schema"]["pattern"], NAME_PATTERN, "{name}");
    }
}
