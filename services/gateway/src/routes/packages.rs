//! The files inside a version's package, for its developer and the reviewing admins:
//! `GET /v1/agents/{slug}/versions/{version}/files[/{path}]`.

use axum::Json;
use axum::extract::State;
use base64::Engine;
use frameos_proto::v1;
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;
use crate::auth::{self, ApiKey};
use crate::error::{ApiError, ErrorBody};
use crate::extract::PathArgs;

/// One file inside a package.
#[derive(Debug, Serialize, ToSchema)]
pub struct PackageFileView {
    /// The path inside the archive, e.g. `src/index.js`.
    pub path: String,
    /// Its size uncompressed.
    pub size_bytes: u64,
}

impl From<v1::PackageFile> for PackageFileView {
    fn from(f: v1::PackageFile) -> Self {
        PackageFileView {
            path: f.path,
            size_bytes: f.size_bytes,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PackageFileList {
    /// Every regular file, by path.
    pub items: Vec<PackageFileView>,
}

/// How `content` is spelled: the text itself when the file is UTF-8, else base64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ContentEncoding {
    Utf8,
    Base64,
}

/// One file with its contents.
#[derive(Debug, Serialize, ToSchema)]
pub struct PackageFileContent {
    pub path: String,
    pub size_bytes: u64,
    pub encoding: ContentEncoding,
    /// The file's contents (at most its first 256 KiB; see `truncated`).
    pub content: String,
    /// The file is larger than what `content` holds.
    pub truncated: bool,
}

impl From<v1::GetPackageFileResponse> for PackageFileContent {
    fn from(r: v1::GetPackageFileResponse) -> Self {
        let file = r.file.unwrap_or_default();
        let (encoding, content) = match String::from_utf8(r.contents) {
            Ok(text) => (ContentEncoding::Utf8, text),
            // A cut may split a character: a truncated text file is still shown as text.
            Err(e) if r.truncated && e.utf8_error().error_len().is_none() => {
                let valid = e.utf8_error().valid_up_to();
                let mut bytes = e.into_bytes();
                bytes.truncate(valid);
                (
                    ContentEncoding::Utf8,
                    String::from_utf8(bytes).unwrap_or_default(),
                )
            }
            Err(e) => (
                ContentEncoding::Base64,
                base64::engine::general_purpose::STANDARD.encode(e.into_bytes()),
            ),
        };
        PackageFileContent {
            path: file.path,
            size_bytes: file.size_bytes,
            encoding,
            content,
            truncated: r.truncated,
        }
    }
}

/// The files of a version's package (owner or admin), so a reviewer reads what will run.
#[utoipa::path(
    get,
    path = "/v1/agents/{slug}/versions/{version}/files",
    tag = "versions",
    security(("api_key" = [])),
    params(
        ("slug" = String, Path, description = "The agent's slug"),
        ("version" = String, Path, description = "The version"),
    ),
    responses(
        (status = 200, description = "The package's files", body = PackageFileList),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 403, description = "Neither the owner nor an admin", body = ErrorBody),
        (status = 404, description = "No such agent or version visible to the caller", body = ErrorBody),
        (status = 503, description = "The package store is unavailable", body = ErrorBody),
    )
)]
pub async fn list_files(
    State(state): State<AppState>,
    key: ApiKey,
    PathArgs((agent_slug, version)): PathArgs<(String, String)>,
) -> Result<Json<PackageFileList>, ApiError> {
    let request = v1::ListPackageFilesRequest {
        agent_slug,
        version,
    };
    let reply = state
        .control_plane
        .agents()
        .list_package_files(auth::request(request, Some(&key)))
        .await?;
    let items = reply
        .into_inner()
        .items
        .into_iter()
        .map(Into::into)
        .collect();
    Ok(Json(PackageFileList { items }))
}

/// One file of a version's package (owner or admin).
#[utoipa::path(
    get,
    path = "/v1/agents/{slug}/versions/{version}/files/{path}",
    tag = "versions",
    security(("api_key" = [])),
    params(
        ("slug" = String, Path, description = "The agent's slug"),
        ("version" = String, Path, description = "The version"),
        ("path" = String, Path, description = "The file's path as the listing names it; may contain `/`"),
    ),
    responses(
        (status = 200, description = "The file", body = PackageFileContent),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 403, description = "Neither the owner nor an admin", body = ErrorBody),
        (status = 404, description = "No such agent, version or file visible to the caller", body = ErrorBody),
        (status = 503, description = "The package store is unavailable", body = ErrorBody),
    )
)]
pub async fn get_file(
    State(state): State<AppState>,
    key: ApiKey,
    PathArgs((agent_slug, version, path)): PathArgs<(String, String, String)>,
) -> Result<Json<PackageFileContent>, ApiError> {
    let request = v1::GetPackageFileRequest {
        agent_slug,
        version,
        path,
    };
    let reply = state
        .control_plane
        .agents()
        .get_package_file(auth::request(request, Some(&key)))
        .await?;
    Ok(Json(reply.into_inner().into()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn content(bytes: &[u8], truncated: bool) -> PackageFileContent {
        PackageFileContent::from(v1::GetPackageFileResponse {
            file: Some(v1::PackageFile {
                path: "a".into(),
                size_bytes: 9,
            }),
            contents: bytes.to_vec(),
            truncated,
        })
    }

    #[test]
    fn text_is_text_and_anything_else_base64() {
        let text = content("héllo".as_bytes(), false);
        assert_eq!(
            (text.encoding, text.content.as_str()),
            (ContentEncoding::Utf8, "héllo")
        );
        let binary = content(&[0xff, 0x00, 0x41], false);
        assert_eq!(binary.encoding, ContentEncoding::Base64);
        assert_eq!(binary.content, "/wBB");
        // A cut through "é" (two bytes) leaves text, one character short.
        let cut = content(&"hé".as_bytes()[..2], true);
        assert_eq!(
            (cut.encoding, cut.content.as_str()),
            (ContentEncoding::Utf8, "h")
        );
        // An invalid byte before the cut is binary.
        let bad = content(&[0x41, 0xff, 0x41, 0xc3], true);
        assert_eq!(bad.encoding, ContentEncoding::Base64);
    }
}
