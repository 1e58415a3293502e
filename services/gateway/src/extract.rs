//! Request extractors whose every failure is the documented JSON error (axum's own answer in
//! plain text), and the bounded body reader shared by JSON bodies and package uploads.

use axum::body::Body;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Path, Query, Request};
use axum::http::HeaderMap;
use axum::http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use axum::http::request::Parts;
use bytes::{Bytes, BytesMut};
use frameos_core::ErrorCode;
use futures::StreamExt;
use serde::de::DeserializeOwned;

use crate::auth::ApiKey;
use crate::control_plane::ControlPlane;
use crate::error::ApiError;
use crate::routes::AppState;

/// Why a body could not be read.
#[derive(Debug)]
pub enum ReadError {
    /// Longer than the limit; reading stopped at the first byte past it.
    TooLarge,
    Broken(axum::Error),
}

/// Reads at most `limit` bytes. A larger body is refused by its Content-Length when it declares
/// one, and otherwise as soon as one byte more than `limit` has arrived.
pub async fn read_limited(headers: &HeaderMap, body: Body, limit: u64) -> Result<Bytes, ReadError> {
    let declared = headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit) {
        return Err(ReadError::TooLarge);
    }
    let capacity = usize::try_from(declared.unwrap_or(0).min(limit)).unwrap_or(0);
    let mut buffer = BytesMut::with_capacity(capacity);
    let mut stream = body.into_data_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(ReadError::Broken)?;
        if (buffer.len() + chunk.len()) as u64 > limit {
            return Err(ReadError::TooLarge);
        }
        buffer.extend_from_slice(&chunk);
    }
    Ok(buffer.freeze())
}

pub fn broken_body(error: &axum::Error) -> ApiError {
    ApiError::new(
        ErrorCode::InvalidRequest,
        format!("cannot read the request body: {error}"),
    )
}

/// A JSON request body. A malformed one is held, not answered at once: see [`JsonBody::parse`].
pub struct JsonBody<T>(Result<T, ApiError>);

impl<T> JsonBody<T> {
    /// The body, or why it is unusable. An invalid key wins over an invalid body, so that a
    /// caller without a valid key gets 401 whatever it sends.
    pub async fn parse(self, control_plane: &ControlPlane, key: &ApiKey) -> Result<T, ApiError> {
        match self.0 {
            Ok(value) => Ok(value),
            Err(error) => Err(control_plane.unless_unauthenticated(key, error).await),
        }
    }
}

impl<T: DeserializeOwned> FromRequest<AppState> for JsonBody<T> {
    /// Only an oversized body is refused outright: it is not even read.
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &AppState) -> Result<Self, ApiError> {
        let (parts, body) = request.into_parts();
        if !is_json(&parts.headers) {
            return Ok(JsonBody(Err(ApiError::new(
                ErrorCode::InvalidRequest,
                "expected `Content-Type: application/json`",
            ))));
        }
        let limit = state.limits.max_json_bytes;
        let bytes = match read_limited(&parts.headers, body, limit).await {
            Ok(bytes) => bytes,
            Err(ReadError::TooLarge) => {
                return Err(ApiError::new(
                    ErrorCode::PayloadTooLarge,
                    format!("the request body is larger than the limit of {limit} bytes"),
                ));
            }
            Err(ReadError::Broken(error)) => return Err(broken_body(&error)),
        };
        Ok(JsonBody(parse_json(&bytes)))
    }
}

/// serde's own message names the field, the expected type and the position.
pub fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(bytes).map_err(|error| {
        ApiError::new(
            ErrorCode::InvalidRequest,
            format!("invalid JSON body: {error}"),
        )
    })
}

fn is_json(headers: &HeaderMap) -> bool {
    let Some(mime) = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = mime
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    essence == "application/json"
        || (essence.starts_with("application/") && essence.ends_with("+json"))
}

/// Path parameters, with a JSON 400 when they do not decode.
pub struct PathArgs<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned + Send> FromRequestParts<S> for PathArgs<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Path::<T>::from_request_parts(parts, state)
            .await
            .map(|Path(value)| PathArgs(value))
            .map_err(|rejection: PathRejection| {
                ApiError::new(ErrorCode::InvalidRequest, rejection.body_text())
            })
    }
}

/// Query parameters, with a JSON 400 when they do not decode (e.g. `page_size=lots`).
pub struct QueryArgs<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for QueryArgs<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(value)| QueryArgs(value))
            .map_err(|rejection: QueryRejection| {
                ApiError::new(ErrorCode::InvalidRequest, rejection.body_text())
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.insert(*name, value.parse().unwrap());
        }
        headers
    }

    #[tokio::test]
    async fn bodies_stop_one_byte_past_the_limit() {
        let exact = read_limited(&HeaderMap::new(), Body::from(vec![7u8; 10]), 10).await;
        assert_eq!(exact.unwrap().len(), 10);
        let over = read_limited(&HeaderMap::new(), Body::from(vec![7u8; 11]), 10).await;
        assert!(matches!(over, Err(ReadError::TooLarge)));
        // A declared length over the limit is refused without reading.
        let declared = read_limited(&headers(&[("content-length", "11")]), Body::empty(), 10).await;
        assert!(matches!(declared, Err(ReadError::TooLarge)));
    }

    #[test]
    fn json_content_types() {
        assert!(is_json(&headers(&[("content-type", "application/json")])));
        assert!(is_json(&headers(&[(
            "content-type",
            "Application/JSON; charset=utf-8"
        )])));
        assert!(is_json(&headers(&[(
            "content-type",
            "application/merge-patch+json"
        )])));
        assert!(!is_json(&headers(&[("content-type", "text/plain")])));
        assert!(!is_json(&HeaderMap::new()));
    }
}
