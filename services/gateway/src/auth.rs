//! The caller's API key: taken from `Authorization: Bearer <key>` and forwarded to the control
//! plane, which resolves it, checks the role and the ownership. The gateway never decides who
//! may do what; it only refuses requests that carry no key at all.

use std::fmt;

use axum::extract::{FromRequestParts, OptionalFromRequestParts};
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use frameos_core::ErrorCode;
use tonic::metadata::AsciiMetadataValue;

use crate::error::ApiError;

/// A bearer key, already shaped as the gRPC `authorization` metadata value.
#[derive(Clone)]
pub struct ApiKey(AsciiMetadataValue);

// Keys are secrets: whatever prints an `ApiKey` must not print the key.
impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey(..)")
    }
}

impl ApiKey {
    /// `Ok(None)` when no Authorization header was sent; an error when one was sent but is not
    /// `Bearer <non-empty key>`.
    pub fn from_headers(headers: &HeaderMap) -> Result<Option<ApiKey>, ApiError> {
        let Some(value) = headers.get(AUTHORIZATION) else {
            return Ok(None);
        };
        let malformed = || {
            unauthenticated("malformed Authorization header: send `Authorization: Bearer <key>`")
        };
        let value = value.to_str().map_err(|_| malformed())?;
        let (scheme, key) = value.trim().split_once(' ').ok_or_else(malformed)?;
        let key = key.trim();
        // The scheme is case-insensitive (RFC 9110 §11.1); the control plane wants it canonical.
        if !scheme.eq_ignore_ascii_case("bearer") || key.is_empty() {
            return Err(malformed());
        }
        let metadata = format!("Bearer {key}")
            .parse::<AsciiMetadataValue>()
            .map_err(|_| malformed())?;
        Ok(Some(ApiKey(metadata)))
    }

    /// The header value's bytes, to fingerprint the key (never to log it).
    pub fn as_bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }

    /// Attaches the key to an outgoing gRPC request.
    pub fn authorize<T>(&self, request: &mut tonic::Request<T>) {
        request
            .metadata_mut()
            .insert(AUTHORIZATION.as_str(), self.0.clone());
    }
}

/// A gRPC request carrying the caller's key, if any.
pub fn request<T>(message: T, key: Option<&ApiKey>) -> tonic::Request<T> {
    let mut request = tonic::Request::new(message);
    if let Some(key) = key {
        key.authorize(&mut request);
    }
    request
}

fn unauthenticated(message: &str) -> ApiError {
    ApiError::new(ErrorCode::Unauthenticated, message)
}

/// A required key: a route taking `ApiKey` answers 401 without calling the control plane.
impl<S: Send + Sync> FromRequestParts<S> for ApiKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        ApiKey::from_headers(&parts.headers)?
            .ok_or_else(|| unauthenticated("missing API key: send `Authorization: Bearer <key>`"))
    }
}

/// An optional key (`Option<ApiKey>`), for public routes that show owners more.
impl<S: Send + Sync> OptionalFromRequestParts<S> for ApiKey {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Option<Self>, ApiError> {
        ApiKey::from_headers(&parts.headers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, value.parse().unwrap());
        headers
    }

    #[test]
    fn a_bearer_key_becomes_canonical_metadata() {
        let key = ApiKey::from_headers(&headers("bearer  fos_abc "))
            .unwrap()
            .unwrap();
        let mut request = tonic::Request::new(());
        key.authorize(&mut request);
        assert_eq!(
            request.metadata().get("authorization").unwrap(),
            "Bearer fos_abc"
        );
    }

    #[test]
    fn absent_and_malformed_headers_differ() {
        assert!(ApiKey::from_headers(&HeaderMap::new()).unwrap().is_none());
        for bad in ["Bearer", "Bearer   ", "Basic dXNlcjpwdw==", "fos_abc"] {
            let error = ApiKey::from_headers(&headers(bad)).unwrap_err();
            assert_eq!(error.code(), ErrorCode::Unauthenticated, "{bad}");
        }
    }

    #[test]
    fn debug_never_shows_the_key() {
        let key = ApiKey::from_headers(&headers("Bearer fos_secret"))
            .unwrap()
            .unwrap();
        assert!(!format!("{key:?}").contains("secret"));
    }
}
