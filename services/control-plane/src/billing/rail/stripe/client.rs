//! Requests to Stripe's REST API: form-encoded bodies, the secret key as a bearer token, an
//! `Idempotency-Key` on every POST, a pinned API version, a time limit on every request and a
//! size limit on every response body. What Stripe says is retried (5xx, 429, 409, transport
//! failures, or `Stripe-Should-Retry: true`) is tried again, with the same key, a bounded number
//! of times.

use std::time::Duration;

use frameos_billing::RailError;
use reqwest::{Method, StatusCode};
use serde::de::DeserializeOwned;

use super::intent::{ApiError, ErrorBody, ErrorCode, ErrorType};
use crate::billing::config::Secret;

/// The API version the response shapes above are read in (`latest_charge` exists since
/// 2022-11-15), whatever the account's default is.
const API_VERSION: &str = "2024-06-20";
/// A list page of 100 intents is about 200 KiB; anything far larger is not Stripe talking.
const MAX_BODY_BYTES: usize = 1024 * 1024;
/// Tries of one call, the first included.
const MAX_ATTEMPTS: u32 = 2;
const RETRY_BACKOFF: Duration = Duration::from_millis(300);

/// What a call to Stripe is for, in log lines.
#[derive(Clone, Copy, Debug)]
pub(super) enum Call {
    Authorize,
    Capture,
    Void,
    Get,
    List,
}

impl Call {
    fn as_str(self) -> &'static str {
        match self {
            Call::Authorize => "authorize",
            Call::Capture => "capture",
            Call::Void => "void",
            Call::Get => "get",
            Call::List => "list",
        }
    }
}

/// Why a call to Stripe did not return the object asked for.
#[derive(Debug)]
pub(super) enum StripeError {
    /// Stripe answered with its error object.
    Api { status: StatusCode, error: ApiError },
    /// Nothing usable came back: no connection, a time-out, a 5xx without an error object, an
    /// oversized or unreadable body. Retryable with the same key.
    Unavailable(String),
}

impl StripeError {
    pub(super) fn code(&self) -> Option<ErrorCode> {
        match self {
            StripeError::Api { error, .. } => error.code(),
            StripeError::Unavailable(_) => None,
        }
    }

    /// The rail's view: declines are final, outages retryable, the rest a bug of the caller.
    pub(super) fn into_rail_error(self) -> RailError {
        let (status, error) = match self {
            StripeError::Unavailable(reason) => return RailError::Failed { reason },
            StripeError::Api { status, error } => (status, error),
        };
        let message = error.message.clone().unwrap_or_default();
        let detail = error
            .decline_code
            .as_deref()
            .or(error.code.as_deref())
            .unwrap_or("no code");
        if error.kind == ErrorType::CardError || status == StatusCode::PAYMENT_REQUIRED {
            return RailError::Declined {
                reason: format!("{message} ({detail})"),
            };
        }
        if error.code() == Some(ErrorCode::ResourceMissing) && status == StatusCode::NOT_FOUND {
            return RailError::NotFound;
        }
        if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
            // Our configuration, not the request: the same call succeeds once the key is fixed.
            return RailError::Failed {
                reason: format!("stripe refused the secret key ({status})"),
            };
        }
        if retryable_status(status) {
            return RailError::Failed {
                reason: format!("stripe answered {status}: {message}"),
            };
        }
        RailError::Invalid {
            reason: format!("stripe refused the request ({status}, {detail}): {message}"),
        }
    }
}

fn retryable_status(status: StatusCode) -> bool {
    status.is_server_error()
        || status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::CONFLICT
}

#[derive(Clone)]
pub(super) struct Client {
    http: reqwest::Client,
    base: String,
    secret: Secret,
}

impl Client {
    pub(super) fn new(
        base: &str,
        secret: Secret,
        timeout: Duration,
    ) -> Result<Client, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .user_agent(concat!("frameos-control-plane/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Client {
            http,
            base: base.trim_end_matches('/').to_string(),
            secret,
        })
    }

    /// A POST with `form` as its body, under `key`.
    pub(super) async fn post<T: DeserializeOwned>(
        &self,
        call: Call,
        path: &str,
        key: &str,
        form: &[(&str, String)],
    ) -> Result<T, StripeError> {
        self.send(call, Method::POST, path, Some(key), form).await
    }

    pub(super) async fn get<T: DeserializeOwned>(
        &self,
        call: Call,
        path: &str,
        query: &[(&str, String)],
    ) -> Result<T, StripeError> {
        self.send(call, Method::GET, path, None, query).await
    }

    async fn send<T: DeserializeOwned>(
        &self,
        call: Call,
        method: Method,
        path: &str,
        key: Option<&str>,
        params: &[(&str, String)],
    ) -> Result<T, StripeError> {
        let url = format!("{}{path}", self.base);
        let mut attempt = 1;
        loop {
            let mut request = self
                .http
                .request(method.clone(), &url)
                .bearer_auth(self.secret.expose())
                .header("Stripe-Version", API_VERSION);
            request = match key {
                // Always a form body on a POST, even an empty one: what Stripe's libraries send.
                Some(key) => request.header("Idempotency-Key", key).form(params),
                None => request.query(params),
            };
            let (error, retry) = match self.exchange(request).await {
                Ok(Reply::Object(body)) => {
                    return serde_json::from_slice(&body).map_err(|e| {
                        StripeError::Unavailable(format!("unreadable stripe response: {e}"))
                    });
                }
                Ok(Reply::Error {
                    error,
                    should_retry,
                    request_id,
                }) => {
                    let retry = should_retry.unwrap_or_else(|| match &error {
                        StripeError::Api { status, .. } => retryable_status(*status),
                        StripeError::Unavailable(_) => true,
                    });
                    tracing::debug!(call = call.as_str(), attempt, request_id = ?request_id, error = ?error, "stripe answered an error");
                    (error, retry)
                }
                Err(reason) => (StripeError::Unavailable(self.redact(&reason)), true),
            };
            if !retry || attempt >= MAX_ATTEMPTS {
                return Err(error);
            }
            tracing::warn!(
                call = call.as_str(),
                attempt,
                error = ?error,
                "stripe call failed; retrying with the same idempotency key"
            );
            tokio::time::sleep(RETRY_BACKOFF * attempt).await;
            attempt += 1;
        }
    }

    /// One request and its whole (bounded) response. `Err` is a transport failure.
    async fn exchange(&self, request: reqwest::RequestBuilder) -> Result<Reply, String> {
        let mut response = request
            .send()
            .await
            .map_err(|e| format!("stripe unreachable: {e}"))?;
        let status = response.status();
        let should_retry = response
            .headers()
            .get("stripe-should-retry")
            .and_then(|v| v.to_str().ok())
            .map(|v| v.eq_ignore_ascii_case("true"));
        let request_id = response
            .headers()
            .get("request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        if response
            .content_length()
            .is_some_and(|n| n > MAX_BODY_BYTES as u64)
        {
            return Err(format!("stripe response over {MAX_BODY_BYTES} bytes"));
        }
        let mut body = Vec::new();
        while let Some(chunk) = response
            .chunk()
            .await
            .map_err(|e| format!("stripe response cut short: {e}"))?
        {
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(format!("stripe response over {MAX_BODY_BYTES} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        if status.is_success() {
            return Ok(Reply::Object(body));
        }
        let error = match serde_json::from_slice::<ErrorBody>(&body) {
            Ok(ErrorBody { mut error }) => {
                error.message = error.message.map(|m| self.redact(&m));
                StripeError::Api { status, error }
            }
            Err(_) => StripeError::Unavailable(format!("stripe answered {status}")),
        };
        Ok(Reply::Error {
            error,
            should_retry,
            request_id,
        })
    }

    /// Stripe masks keys in its messages; this makes sure no text we keep carries ours.
    fn redact(&self, text: &str) -> String {
        let secret = self.secret.expose();
        if secret.is_empty() {
            return text.to_string();
        }
        text.replace(secret, "<redacted>")
    }
}

enum Reply {
    Object(Vec<u8>),
    Error {
        error: StripeError,
        /// `Stripe-Should-Retry`, when Stripe said.
        should_retry: Option<bool>,
        request_id: Option<String>,
    },
}
