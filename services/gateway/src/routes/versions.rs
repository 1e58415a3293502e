//! `POST /v1/agents/{slug}/versions` (the package upload), `GET /v1/agents/{slug}/versions`.

use axum::Json;
use axum::body::Body;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use frameos_core::ErrorCode;
use frameos_proto::v1;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, Schema, SchemaFormat, Type};
use utoipa::{PartialSchema, ToSchema};

use super::AppState;
use crate::auth::{self, ApiKey};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{PathArgs, ReadError, broken_body, read_limited};
use crate::view::{VersionList, VersionView};

/// `application/gzip` is the documented type; the others are what common clients send for a
/// `.tar.gz` file.
const PACKAGE_TYPES: [&str; 3] = [
    "application/gzip",
    "application/x-gzip",
    "application/octet-stream",
];

/// An agent package: a gzip-compressed tar whose root holds `agent.json` and the agent's code
/// (API.md §1), sent as the raw request body.
pub struct Package;

impl PartialSchema for Package {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary)))
            .description(Some(
                "A gzip-compressed tar whose root holds `agent.json` and the agent's code",
            ))
            .into()
    }
}

impl ToSchema for Package {}

/// Publishes a version (owner): the body is the package, a gzip-compressed tar (API.md §1).
/// The scanner runs at once: the version is `pending_review`, or `rejected` with its findings.
#[utoipa::path(
    post,
    path = "/v1/agents/{slug}/versions",
    tag = "versions",
    security(("api_key" = [])),
    params(("slug" = String, Path, description = "The agent's slug")),
    request_body(
        description = "The package bytes, a gzip-compressed tar (API.md §1). The server also \
            accepts them as `application/x-gzip` and `application/octet-stream` (what common \
            clients send for a `.tar.gz` file); one media type here keeps generated clients simple",
        content((Package = "application/gzip")),
    ),
    responses(
        (status = 201, description = "The new version with the scanner's report", body = VersionView, links(
            ("ApproveVersion" = (operation_id = "approve_version", parameters(("slug" = "$response.body#/agent"), ("version" = "$response.body#/version")))),
            ("RejectVersion" = (operation_id = "reject_version", parameters(("slug" = "$response.body#/agent"), ("version" = "$response.body#/version")))),
        )),
        (status = 400, description = "A Content-Type other than `application/gzip`, `application/x-gzip` or `application/octet-stream`", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 403, description = "Not the owner of this published agent (`permission_denied`)", body = ErrorBody),
        (status = 404, description = "No such agent visible to the caller", body = ErrorBody),
        (status = 409, description = "This version exists (`version_exists`)", body = ErrorBody),
        (status = 413, description = "Package over the size limit (`package_too_large`)", body = ErrorBody),
        (status = 422, description = "`invalid_package`, `unsafe_archive`, `invalid_manifest` or `version_not_greater`", body = ErrorBody),
    )
)]
pub async fn publish_version(
    State(state): State<AppState>,
    key: ApiKey,
    PathArgs(slug): PathArgs<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<(StatusCode, Json<VersionView>), ApiError> {
    if !is_package_type(&headers) {
        let error = ApiError::new(
            ErrorCode::InvalidRequest,
            "expected `Content-Type: application/gzip` (the package is a gzip-compressed tar)",
        );
        return Err(state
            .control_plane
            .unless_unauthenticated(&key, error)
            .await);
    }
    let limit = state.limits.max_package_bytes;
    let package = match read_limited(&headers, body, limit).await {
        Ok(package) => package,
        Err(ReadError::TooLarge) => {
            return Err(ApiError::new(
                ErrorCode::PackageTooLarge,
                format!("the package is larger than the limit of {limit} bytes"),
            ));
        }
        Err(ReadError::Broken(error)) => return Err(broken_body(&error)),
    };
    let request = v1::PublishVersionRequest {
        agent_slug: slug,
        package: Vec::from(package),
    };
    let reply = state
        .control_plane
        .agents()
        .publish_version(auth::request(request, Some(&key)))
        .await?;
    Ok((StatusCode::CREATED, Json(reply.into_inner().try_into()?)))
}

fn is_package_type(headers: &HeaderMap) -> bool {
    let Some(mime) = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = mime.split(';').next().unwrap_or("").trim();
    PACKAGE_TYPES
        .iter()
        .any(|t| essence.eq_ignore_ascii_case(t))
}

/// Every version of an agent, newest first, whatever its status (owner or admin).
#[utoipa::path(
    get,
    path = "/v1/agents/{slug}/versions",
    tag = "versions",
    security(("api_key" = [])),
    params(("slug" = String, Path, description = "The agent's slug")),
    responses(
        (status = 200, description = "The versions", body = VersionList),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 403, description = "Neither the owner nor an admin", body = ErrorBody),
        (status = 404, description = "No such agent visible to the caller", body = ErrorBody),
    )
)]
pub async fn list_versions(
    State(state): State<AppState>,
    key: ApiKey,
    PathArgs(slug): PathArgs<String>,
) -> Result<Json<VersionList>, ApiError> {
    let request = v1::ListVersionsRequest { agent_slug: slug };
    let reply = state
        .control_plane
        .agents()
        .list_versions(auth::request(request, Some(&key)))
        .await?;
    Ok(Json(reply.into_inner().try_into()?))
}

/// The release history of a published agent: its published versions, highest first, each with
/// its manifest (changelog, examples) and when it was published. No key needed.
#[utoipa::path(
    get,
    path = "/v1/agents/{slug}/releases",
    tag = "versions",
    params(("slug" = String, Path, description = "The agent's slug")),
    responses(
        (status = 200, description = "The published versions (at most 100), without their reviews", body = VersionList),
        (status = 401, description = "An API key was sent but is invalid", body = ErrorBody),
        (status = 404, description = "No such agent visible to the caller", body = ErrorBody),
    )
)]
pub async fn list_releases(
    State(state): State<AppState>,
    key: Option<ApiKey>,
    PathArgs(slug): PathArgs<String>,
) -> Result<Json<VersionList>, ApiError> {
    let request = v1::ListReleasesRequest { agent_slug: slug };
    let reply = state
        .control_plane
        .agents()
        .list_releases(auth::request(request, key.as_ref()))
        .await?;
    Ok(Json(reply.into_inner().try_into()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn package_content_types() {
        let with = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(CONTENT_TYPE, value.parse().unwrap());
            is_package_type(&headers)
        };
        assert!(with("application/gzip"));
        assert!(with("Application/X-Gzip"));
        assert!(with("application/octet-stream; charset=binary"));
        assert!(!with("application/json"));
        assert!(!is_package_type(&HeaderMap::new()));
    }
}
