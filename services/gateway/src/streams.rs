//! The bounds on open execution event streams (`GET /v1/executions/{id}/events`).
//!
//! A stream outlives its request: the API's deadline and concurrency limit end with the response
//! head, and the events flow for as long as the execution runs. So open streams are counted here,
//! by a slot that the response body holds until the stream ends or the client goes away. Each
//! caller (an account, or the address of a caller without a valid key) has a bound of its own,
//! so one caller at its bound never takes the places of others; the total is the backstop.
//! Streams also end when the gateway stops: a graceful shutdown waits for open responses, and
//! one stream could hold it up for a whole execution. Their clients resume with `Last-Event-ID`.
//!
//! A stream opens with the caller's API key or with a stream token (`?access_token=`, API.md
//! §4.3, ADR 0023) for clients that cannot send headers (`EventSource`). The gateway only
//! carries the token to the control plane, which checks it; every other route refuses one
//! ([`refuse_access_token`]), and no log line holds it (the request span logs the path only).

use std::fmt;

use axum::extract::Request;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use frameos_core::ErrorCode;
use frameos_core::slots::{KeyedSlots, Refused, Slot};
use tokio_util::sync::CancellationToken;
use tonic::metadata::AsciiMetadataValue;

use crate::auth::ApiKey;
use crate::error::ApiError;
use crate::fair_use::Caller;

/// The query parameter of a stream token.
pub const ACCESS_TOKEN: &str = "access_token";
/// The gRPC metadata the control plane reads a stream token from.
const TOKEN_METADATA: &str = "frameos-stream-token";
/// Longer than any token the control plane issues.
const MAX_TOKEN_LEN: usize = 512;

/// What opens a stream: the caller's API key, or a stream token of the execution.
pub enum Credential {
    Key(ApiKey),
    Token(AsciiMetadataValue),
}

// Both are secrets: whatever prints a `Credential` prints neither.
impl fmt::Debug for Credential {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Credential::Key(_) => f.write_str("Credential::Key(..)"),
            Credential::Token(_) => f.write_str("Credential::Token(..)"),
        }
    }
}

impl Credential {
    /// The key of the `Authorization` header or the `?access_token=`: one of them, not both.
    pub fn of(key: Option<ApiKey>, access_token: Option<String>) -> Result<Credential, ApiError> {
        match (key, access_token) {
            (Some(key), None) => Ok(Credential::Key(key)),
            (None, Some(token)) => {
                let token = token.trim();
                token
                    .parse::<AsciiMetadataValue>()
                    .ok()
                    .filter(|_| {
                        !token.is_empty()
                            && token.len() <= MAX_TOKEN_LEN
                            && token.bytes().all(|b| b.is_ascii_graphic())
                    })
                    .map(Credential::Token)
                    .ok_or_else(|| {
                        ApiError::new(
                            ErrorCode::Unauthenticated,
                            "invalid stream token: it is not one this platform issued",
                        )
                    })
            }
            (Some(_), Some(_)) => Err(ApiError::new(
                ErrorCode::InvalidRequest,
                "send an API key (Authorization header) or a stream token (access_token), not both",
            )),
            (None, None) => Err(ApiError::new(
                ErrorCode::Unauthenticated,
                "missing API key: send `Authorization: Bearer <key>`, or `?access_token=` with a token from POST /v1/executions/{id}/stream-token",
            )),
        }
    }

    /// A gRPC request carrying this credential.
    pub fn request<T>(&self, message: T) -> tonic::Request<T> {
        match self {
            Credential::Key(key) => crate::auth::request(message, Some(key)),
            Credential::Token(token) => {
                let mut request = tonic::Request::new(message);
                request.metadata_mut().insert(TOKEN_METADATA, token.clone());
                request
            }
        }
    }
}

/// Refuses a stream token on the routes it does not open (all but `/events`): 401, so that a
/// client never mistakes it for a key that happens to be ignored.
pub async fn refuse_access_token(request: Request, next: Next) -> Response {
    if has_access_token(request.uri().query()) {
        return ApiError::new(
            ErrorCode::Unauthenticated,
            "a stream token (access_token) opens only GET /v1/executions/{id}/events of its execution; send `Authorization: Bearer <key>` here",
        )
        .into_response();
    }
    next.run(request).await
}

fn has_access_token(query: Option<&str>) -> bool {
    query.is_some_and(|query| {
        query
            .split('&')
            .any(|pair| pair.split('=').next() == Some(ACCESS_TOKEN))
    })
}

#[derive(Clone, Debug)]
pub struct EventStreams {
    slots: KeyedSlots<Caller>,
    closing: CancellationToken,
}

/// One open stream's place; dropping it frees the place.
#[derive(Debug)]
pub struct StreamSlot {
    _slot: Slot<Caller>,
    closing: CancellationToken,
}

impl EventStreams {
    /// At most `per_caller` streams per caller (0: no bound of its own) and `total` in all.
    pub fn new(per_caller: usize, total: usize) -> Self {
        EventStreams {
            slots: KeyedSlots::new((per_caller > 0).then_some(per_caller), Some(total)),
            closing: CancellationToken::new(),
        }
    }

    /// A place for one more stream of `caller`, or at once 429 (this caller has enough open) or
    /// 503 (the gateway is full): a stream waiting for a place could wait for as long as
    /// another execution runs.
    pub fn open(&self, caller: &Caller) -> Result<StreamSlot, ApiError> {
        if self.closing.is_cancelled() {
            return Err(ApiError::new(
                ErrorCode::Unavailable,
                "the gateway is stopping; retry on another instance",
            ));
        }
        let slot = self.slots.acquire(caller).map_err(|refused| match refused {
            Refused::PerOwner { limit } => {
                tracing::info!(caller = %caller, limit, "event stream refused: caller at its limit");
                ApiError::new(
                    ErrorCode::RateLimited,
                    format!(
                        "you have {limit} event streams open, the most one account may; close one and retry"
                    ),
                )
            }
            Refused::Total { limit } => {
                tracing::warn!(limit, "event stream refused: the gateway is full");
                ApiError::new(
                    ErrorCode::Unavailable,
                    format!("too many event streams are open (at most {limit}); retry later"),
                )
            }
        })?;
        Ok(StreamSlot {
            _slot: slot,
            closing: self.closing.clone(),
        })
    }

    /// Ends every open stream and refuses new ones.
    pub fn close_all(&self) {
        self.closing.cancel();
    }
}

impl StreamSlot {
    /// Resolves when the gateway stops.
    pub async fn closed(&self) {
        self.closing.cancelled().await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_tokens_are_found_among_the_query_parameters() {
        assert!(has_access_token(Some("access_token=fst1.a.b")));
        assert!(has_access_token(Some("after_seq=3&access_token=")));
        assert!(has_access_token(Some("access_token")));
        assert!(!has_access_token(None));
        assert!(!has_access_token(Some("my_access_token=1&q=access_token")));
    }

    #[test]
    fn a_stream_takes_a_key_or_a_token_never_both_and_never_prints_them() {
        let mut headers = axum::http::HeaderMap::new();
        headers.insert("authorization", "Bearer fos_secret".parse().unwrap());
        let key = || ApiKey::from_headers(&headers).unwrap();
        let token = Some("fst1.secret.mac".to_string());

        let both = Credential::of(key(), token.clone()).unwrap_err();
        assert_eq!(both.code(), ErrorCode::InvalidRequest);
        let neither = Credential::of(None, None).unwrap_err();
        assert_eq!(neither.code(), ErrorCode::Unauthenticated);
        assert!(neither.0.message.contains("access_token"), "{neither:?}");
        for bad in ["", "  ", "caf\u{e9}\n", &"t".repeat(513)] {
            let error = Credential::of(None, Some(bad.to_string())).unwrap_err();
            assert_eq!(error.code(), ErrorCode::Unauthenticated, "{bad:?}");
        }

        let credential = Credential::of(None, token).unwrap();
        assert!(!format!("{credential:?}").contains("secret"));
        let request = credential.request(());
        assert_eq!(
            request.metadata().get(TOKEN_METADATA).unwrap(),
            "fst1.secret.mac"
        );
        assert!(request.metadata().get("authorization").is_none());

        let credential = Credential::of(key(), None).unwrap();
        assert!(!format!("{credential:?}").contains("secret"));
        let request = credential.request(());
        assert_eq!(
            request.metadata().get("authorization").unwrap(),
            "Bearer fos_secret"
        );
        assert!(request.metadata().get(TOKEN_METADATA).is_none());
    }

    fn account(id: &str) -> Caller {
        Caller::Account(id.into())
    }

    #[tokio::test]
    async fn slots_are_bounded_per_caller_and_in_total_freed_on_drop_and_closed_together() {
        let streams = EventStreams::new(2, 3);
        let first = streams.open(&account("a")).unwrap();
        let second = streams.open(&account("a")).unwrap();
        // A caller at its own bound is told to slow down, not that the gateway is down.
        let refused = streams.open(&account("a")).unwrap_err();
        assert_eq!(refused.code(), ErrorCode::RateLimited);
        assert!(refused.0.message.contains("2 event streams"), "{refused:?}");
        // Another caller still gets a place; then the gateway is full for everyone.
        let third = streams.open(&account("b")).unwrap();
        let full = streams.open(&account("c")).unwrap_err();
        assert_eq!(full.code(), ErrorCode::Unavailable);
        assert!(full.0.message.contains("at most 3"), "{full:?}");
        drop(first);
        let fourth = streams.open(&account("c")).unwrap();

        streams.close_all();
        // Every open stream hears of it; new ones are refused.
        tokio::time::timeout(std::time::Duration::from_secs(1), async {
            second.closed().await;
            third.closed().await;
            fourth.closed().await;
        })
        .await
        .unwrap();
        drop((second, third, fourth));
        assert_eq!(
            streams.open(&account("d")).unwrap_err().code(),
            ErrorCode::Unavailable
        );
    }
}
