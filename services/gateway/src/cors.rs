//! Cross-origin calls from browsers (`FRAMEOS_CORS_ORIGINS`, API.md §4.3): only the origins
//! the operator named, none by default. Preflights are answered here, before fair use, limits
//! or routing see them.

use std::time::Duration;

use axum::http::{HeaderName, HeaderValue, Method, Uri, header};
use tower_http::cors::{AllowOrigin, CorsLayer};

/// Parses one origin (`scheme://host[:port]`, as browsers send it in `Origin`).
pub fn parse_origin(text: &str) -> Result<HeaderValue, String> {
    let text = text.trim();
    let uri: Uri = text
        .parse()
        .map_err(|e| format!("{text:?} is not an origin: {e}"))?;
    let origin_only = uri.path_and_query().is_none_or(|p| p.as_str() == "/")
        && !text.ends_with('/')
        && uri.authority().is_some_and(|a| !a.as_str().contains('@'));
    match uri.scheme_str() {
        Some("http" | "https") if origin_only => {
            HeaderValue::from_str(text).map_err(|e| format!("{text:?}: {e}"))
        }
        _ => Err(format!(
            "{text:?} is not an origin: expected scheme://host[:port], like https://app.example.com"
        )),
    }
}

/// The layer for `origins`; `None` (no CORS headers at all) when there are none.
pub fn layer(origins: &[HeaderValue]) -> Option<CorsLayer> {
    if origins.is_empty() {
        return None;
    }
    Some(
        CorsLayer::new()
            .allow_origin(AllowOrigin::list(origins.iter().cloned()))
            .allow_methods([Method::GET, Method::POST, Method::DELETE])
            .allow_headers([
                header::AUTHORIZATION,
                header::CONTENT_TYPE,
                HeaderName::from_static("idempotency-key"),
                HeaderName::from_static("last-event-id"),
            ])
            .expose_headers([header::RETRY_AFTER, HeaderName::from_static("x-request-id")])
            .max_age(Duration::from_secs(600)),
    )
}
