//! Running agents: `POST /v1/agents/{slug}/executions`, `GET /v1/executions`, and under
//! `/v1/executions/{id}` the execution, its logs, its live events and cancelling it.

use std::convert::Infallible;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::header::LOCATION;
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use frameos_core::{Error, ErrorCode, ExecutionStatus};
use frameos_proto::v1::watch_execution_response::Event as WatchEvent;
use frameos_proto::{ProtoEnum, v1};
use futures::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use utoipa::openapi::Object;
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use crate::auth::{self, ApiKey};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{JsonBody, PathArgs, QueryArgs};
use crate::fair_use::Caller;
use crate::openapi::limits;
use crate::streams::{Credential, StreamSlot};
use crate::view::{ExecutionList, ExecutionView, LogLineView, LogPage, ProgressView};

const IDEMPOTENCY_KEY: &str = "idempotency-key";
const MAX_IDEMPOTENCY_KEY: usize = 255;
const LAST_EVENT_ID: &str = "last-event-id";
/// A comment line this often keeps proxies and clients from closing a quiet stream.
const KEEP_ALIVE: Duration = Duration::from_secs(15);
/// The reconnection delay `event: end` asks for: a client that ignores `end` (an EventSource
/// that is not closed) comes back a day later, not every few seconds, to hear the same end.
const AFTER_END_RETRY: Duration = Duration::from_secs(24 * 60 * 60);

#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateExecution {
    /// Any JSON value; it must match the version's `inputs` JSON Schema.
    #[schema(example = json!({"text": "the quick brown fox"}))]
    pub inputs: serde_json::Value,
    /// A published version, e.g. `1.2.0`; the highest published one when absent.
    #[serde(default)]
    pub version: Option<String>,
    /// Where to POST the execution's JSON when it ends, signed with `FrameOS-Signature`
    /// (API.md §5.3): an http(s) URL of at most 2048 bytes, without credentials, that does not
    /// point at an internal address.
    #[serde(default)]
    #[schema(max_length = 2048)]
    pub webhook_url: Option<String>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListExecutionsQuery {
    /// Only executions of this agent (its slug).
    pub agent: Option<String>,
    #[param(schema_with = execution_status_schema)]
    pub status: Option<String>,
    /// `next_page_token` of the previous page.
    pub page_token: Option<String>,
    #[param(schema_with = limits::page_size)]
    pub page_size: Option<u32>,
}

fn execution_status_schema() -> Object {
    limits::one_of(
        &[
            "",
            "queued",
            "running",
            "succeeded",
            "failed",
            "timed_out",
            "canceled",
        ],
        "Only executions in this status; empty or absent: any status.",
    )
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LogsQuery {
    /// Only lines after this `seq`; pass the previous page's `next_page_token`.
    pub after_seq: Option<u64>,
    /// Lines per page: 0 or absent 500, at most 1000 (a larger value reads as 1000).
    pub page_size: Option<u32>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Only log lines after this `seq`. A `Last-Event-ID` header takes precedence.
    pub after_seq: Option<u64>,
    /// A stream token of this execution (`POST /v1/executions/{id}/stream-token`), instead of
    /// the `Authorization` header, for clients that cannot send one (a browser's EventSource).
    pub access_token: Option<String>,
}

/// A stream token: it opens this execution's `/events` (as `?access_token=`) until
/// `expires_at`, and nothing else.
#[derive(Debug, Serialize, ToSchema)]
pub struct StreamTokenView {
    /// A bearer secret, URL-safe; keep it out of logs.
    pub token: String,
    /// RFC 3339, at most 5 minutes ahead. A stream opened before goes on after it.
    #[schema(format = DateTime)]
    pub expires_at: String,
}

/// Runs an agent (user): the inputs are validated and the execution is queued. Retrying with
/// the same `Idempotency-Key` and body answers with the same execution.
#[utoipa::path(
    post,
    path = "/v1/agents/{slug}/executions",
    tag = "executions",
    security(("api_key" = [])),
    params(
        ("slug" = String, Path, description = "The agent's slug"),
        ("Idempotency-Key" = Option<String>, Header, nullable = false,
            pattern = r"^[ \t]*[!-~](?:[ -~\t]{0,253}[!-~])?[ \t]*$",
            description = "1 to 255 visible ASCII characters, sent once; a retry with the same key and body returns the first execution, with another body it is refused (422 `idempotency_key_reused`)"),
        ("traceparent" = Option<String>, Header,
            description = "W3C trace context, carried to the node that runs the execution"),
    ),
    request_body = CreateExecution,
    responses(
        (status = 202, description = "The execution, `queued`", body = ExecutionView,
            headers(("Location" = String, description = "The execution's URL")),
            links(
                ("GetExecution" = (operation_id = "get_execution", parameters(("id" = "$response.body#/id")))),
                ("ListLogs" = (operation_id = "list_logs", parameters(("id" = "$response.body#/id")))),
                ("CancelExecution" = (operation_id = "cancel_execution", parameters(("id" = "$response.body#/id")))),
            )),
        (status = 400, description = "Malformed body (not JSON, `inputs` missing, a Content-Type other than `application/json`) or Idempotency-Key", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 402, description = "The payment rail declined the hold for a paid agent (`payment_declined`); nothing was queued", body = ErrorBody),
        (status = 404, description = "No such published agent or version", body = ErrorBody),
        (status = 409, description = "`agent_banned`: an admin banned the agent; `conflict`: a paid agent whose price cannot be charged until its developer sets a valid one", body = ErrorBody),
        (status = 413, description = "Body too large (`payload_too_large`)", body = ErrorBody),
        (status = 422, description = "`invalid_inputs` (the inputs do not match the version's `inputs` JSON Schema), `validation_failed` (a `webhook_url` that is not an http(s) URL or points at an internal address), or `idempotency_key_reused` with a different body", body = ErrorBody),
    )
)]
pub async fn create_execution(
    State(state): State<AppState>,
    key: ApiKey,
    PathArgs(slug): PathArgs<String>,
    headers: HeaderMap,
    body: JsonBody<CreateExecution>,
) -> Result<(StatusCode, HeaderMap, Json<ExecutionView>), ApiError> {
    let idempotency_key = match idempotency_key(&headers) {
        Ok(idempotency_key) => idempotency_key,
        Err(error) => {
            return Err(state
                .control_plane
                .unless_unauthenticated(&key, error)
                .await);
        }
    };
    let body = body.parse(&state.control_plane, &key).await?;
    let request = v1::CreateExecutionRequest {
        agent_slug: slug,
        version: body.version.unwrap_or_default(),
        inputs_json: body.inputs.to_string(),
        // The trace context goes in the call's metadata (the gRPC client's span layer): every
        // execution is one trace, a child of this request (and of the caller's trace).
        idempotency_key: idempotency_key.unwrap_or_default(),
        webhook_url: body.webhook_url.unwrap_or_default(),
    };
    let reply = state
        .control_plane
        .executions()
        .create_execution(auth::request(request, Some(&key)))
        .await?;
    let execution = ExecutionView::try_from(reply.into_inner())?;
    let mut reply_headers = HeaderMap::new();
    if let Ok(location) = HeaderValue::from_str(&format!("/v1/executions/{}", execution.id)) {
        reply_headers.insert(LOCATION, location);
    }
    Ok((StatusCode::ACCEPTED, reply_headers, Json(execution)))
}

/// The `?status=` filter of a listing: absent or empty means any; an unknown word is refused
/// (422).
fn status_filter(status: Option<&str>) -> Result<i32, ApiError> {
    let Some(status) = status.filter(|s| !s.is_empty()) else {
        return Ok(0);
    };
    let status: ExecutionStatus = status
        .parse()
        .map_err(|e: Error| ApiError::new(ErrorCode::ValidationFailed, e.message))?;
    Ok(status.to_proto())
}

/// The `Idempotency-Key` header, if sent: once, 1 to 255 visible ASCII characters.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let mut values = headers.get_all(IDEMPOTENCY_KEY).iter();
    let Some(value) = values.next() else {
        return Ok(None);
    };
    let invalid = |why: String| {
        ApiError::new(
            ErrorCode::InvalidRequest,
            format!("invalid Idempotency-Key header: {why}"),
        )
    };
    if values.next().is_some() {
        return Err(invalid("send it once".into()));
    }
    let key = value
        .to_str()
        .map_err(|_| invalid("it must be visible ASCII".into()))?
        .trim();
    if key.is_empty() {
        return Err(invalid("it is empty".into()));
    }
    if key.len() > MAX_IDEMPOTENCY_KEY {
        return Err(invalid(format!(
            "it is {} characters long, the limit is {MAX_IDEMPOTENCY_KEY}",
            key.len()
        )));
    }
    Ok(Some(key.to_string()))
}

/// One execution (its user or an admin).
#[utoipa::path(
    get,
    path = "/v1/executions/{id}",
    tag = "executions",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "The execution's id")),
    responses(
        (status = 200, description = "The execution", body = ExecutionView),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 404, description = "No such execution visible to the caller", body = ErrorBody),
    )
)]
pub async fn get_execution(
    State(state): State<AppState>,
    key: ApiKey,
    PathArgs(id): PathArgs<String>,
) -> Result<Json<ExecutionView>, ApiError> {
    let reply = state
        .control_plane
        .executions()
        .get_execution(auth::request(v1::GetExecutionRequest { id }, Some(&key)))
        .await?;
    Ok(Json(reply.into_inner().try_into()?))
}

/// Stops a queued or running execution (its user or an admin). An execution that has ended
/// already is returned unchanged.
#[utoipa::path(
    post,
    path = "/v1/executions/{id}/cancel",
    tag = "executions",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "The execution's id")),
    responses(
        (status = 200, description = "The execution, `canceled` unless it had ended", body = ExecutionView),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 404, description = "No such execution visible to the caller", body = ErrorBody),
    )
)]
pub async fn cancel_execution(
    State(state): State<AppState>,
    key: ApiKey,
    PathArgs(id): PathArgs<String>,
) -> Result<Json<ExecutionView>, ApiError> {
    let reply = state
        .control_plane
        .executions()
        .cancel_execution(auth::request(v1::CancelExecutionRequest { id }, Some(&key)))
        .await?;
    Ok(Json(reply.into_inner().try_into()?))
}

/// The caller's own executions, newest first.
#[utoipa::path(
    get,
    path = "/v1/executions",
    tag = "executions",
    security(("api_key" = [])),
    params(ListExecutionsQuery),
    responses(
        (status = 200, description = "A page of executions", body = ExecutionList),
        (status = 400, description = "Malformed query, e.g. a non-numeric page_size", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 422, description = "`validation_failed`: an unknown status, or page_size over 100", body = ErrorBody),
    )
)]
pub async fn list_executions(
    State(state): State<AppState>,
    key: ApiKey,
    QueryArgs(query): QueryArgs<ListExecutionsQuery>,
) -> Result<Json<ExecutionList>, ApiError> {
    // An unknown status is `validation_failed` (422), unless the key is invalid (401).
    let status = match status_filter(query.status.as_deref()) {
        Ok(status) => status,
        Err(error) => {
            return Err(state
                .control_plane
                .unless_unauthenticated(&key, error)
                .await);
        }
    };
    let request = v1::ListExecutionsRequest {
        agent_slug: query.agent.unwrap_or_default(),
        status,
        page_token: query.page_token.unwrap_or_default(),
        page_size: query.page_size.unwrap_or_default(),
    };
    let reply = state
        .control_plane
        .executions()
        .list_executions(auth::request(request, Some(&key)))
        .await?;
    Ok(Json(reply.into_inner().try_into()?))
}

/// The execution's log, oldest line first (its user or an admin).
#[utoipa::path(
    get,
    path = "/v1/executions/{id}/logs",
    tag = "executions",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "The execution's id"), LogsQuery),
    responses(
        (status = 200, description = "A page of log lines", body = LogPage),
        (status = 400, description = "Malformed query, e.g. a non-numeric after_seq", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 404, description = "No such execution visible to the caller", body = ErrorBody),
    )
)]
pub async fn list_logs(
    State(state): State<AppState>,
    key: ApiKey,
    PathArgs(execution_id): PathArgs<String>,
    QueryArgs(query): QueryArgs<LogsQuery>,
) -> Result<Json<LogPage>, ApiError> {
    let request = v1::ListLogsRequest {
        execution_id,
        after_seq: query.after_seq.unwrap_or_default(),
        page_size: query.page_size.unwrap_or_default(),
    };
    let reply = state
        .control_plane
        .executions()
        .list_logs(auth::request(request, Some(&key)))
        .await?;
    Ok(Json(reply.into_inner().try_into()?))
}

/// Live events of an execution as Server-Sent Events (its user or an admin), until it ends:
///
/// * `log`: a log line (`LogLineView`); the event's `id` is its `seq`, so a reconnecting
///   client sends it back as `Last-Event-ID` and misses nothing;
/// * `progress`: `{fraction, message}` (`ProgressView`);
/// * `status`: the whole execution (`ExecutionView`) each time its status changes, first on
///   connecting; the stream ends after the one with a final status (`succeeded`, `failed`,
///   `timed_out`, `canceled`);
/// * `end`: `{status}`, the final status, right after the last `status` event; the stream then
///   closes. An EventSource should be closed on it (`es.close()`): reconnecting to an ended
///   execution replays what follows `Last-Event-ID`, then `end` again. It carries `retry:` of a
///   day, so a client that ignores it does not come back every few seconds;
/// * `error`: `{code, message}` (`ErrorDetail`) when the stream broke; it ends the stream.
///
/// A comment line every 15 s keeps a quiet stream open. A stream that ends without `end`
/// (the gateway restarting) should be resumed with `Last-Event-ID`. A browser, which cannot
/// send `Authorization` on an EventSource, passes `?access_token=` from
/// `POST /v1/executions/{id}/stream-token` instead.
#[utoipa::path(
    get,
    path = "/v1/executions/{id}/events",
    tag = "executions",
    security(("api_key" = [])),
    params(
        ("id" = String, Path, description = "The execution's id"),
        EventsQuery,
        ("Last-Event-ID" = Option<String>, Header, nullable = false, pattern = "^[0-9]{0,19}$",
            description = "The `id` of the last `log` event received: resume after it"),
    ),
    responses(
        (status = 200, description = "The event stream: `log`, `progress` and `status` events, then `end` (each event's fields are the `SseEvent` schema)", content_type = "text/event-stream", body = String),
        (status = 400, description = "Malformed after_seq or Last-Event-ID, or both an API key and an access_token", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key; or an access_token that is expired, altered, or of another execution", body = ErrorBody),
        (status = 404, description = "No such execution visible to the caller", body = ErrorBody),
        (status = 429, description = "`rate_limited`: this account has as many streams open as it may, or sends requests too fast", body = ErrorBody),
        (status = 503, description = "The gateway holds as many streams as it can, or the control plane is unavailable", body = ErrorBody),
    )
)]
pub async fn watch_execution(
    State(state): State<AppState>,
    caller: Caller,
    key: Option<ApiKey>,
    PathArgs(id): PathArgs<String>,
    QueryArgs(query): QueryArgs<EventsQuery>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let credential = Credential::of(key, query.access_token)?;
    let after_seq = match (resume_after(&headers, query.after_seq), &credential) {
        (Ok(after_seq), _) => after_seq,
        (Err(error), Credential::Key(key)) => {
            return Err(state.control_plane.unless_unauthenticated(key, error).await);
        }
        (Err(error), Credential::Token(_)) => return Err(error),
    };
    let slot = state.streams.open(&caller)?;
    let request = v1::WatchExecutionRequest { id, after_seq };
    // An error before the stream starts (a missing key, someone else's execution) is the
    // usual JSON error; after, it can only be an event.
    let events = state
        .control_plane
        .execution_events()
        .watch_execution(credential.request(request))
        .await?
        .into_inner();
    let sse = Sse::new(sse_events(events, slot)).keep_alive(KeepAlive::new().interval(KEEP_ALIVE));
    // Buffering proxies (nginx) would hold the events back.
    let no_buffering = [(
        HeaderName::from_static("x-accel-buffering"),
        HeaderValue::from_static("no"),
    )];
    Ok((no_buffering, sse).into_response())
}

/// A stream token for this execution's `/events` (its user or an admin): a browser's
/// EventSource cannot send `Authorization`, so it passes `?access_token=<token>` instead. The
/// token opens nothing else and expires within 5 minutes; a stream opened before goes on.
#[utoipa::path(
    post,
    path = "/v1/executions/{id}/stream-token",
    tag = "executions",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "The execution's id")),
    responses(
        (status = 200, description = "The token and when it expires", body = StreamTokenView),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 404, description = "No such execution visible to the caller", body = ErrorBody),
    )
)]
pub async fn create_stream_token(
    State(state): State<AppState>,
    key: ApiKey,
    PathArgs(execution_id): PathArgs<String>,
) -> Result<Json<StreamTokenView>, ApiError> {
    let reply = state
        .control_plane
        .executions()
        .create_stream_token(auth::request(
            v1::CreateStreamTokenRequest { execution_id },
            Some(&key),
        ))
        .await?
        .into_inner();
    let expires_at = crate::view::timestamp(reply.expires_at.as_ref()).ok_or_else(|| {
        tracing::error!("the control plane sent a stream token without its expiry");
        ApiError::new(ErrorCode::Internal, "internal error")
    })?;
    Ok(Json(StreamTokenView {
        token: reply.token,
        expires_at,
    }))
}

/// Where a stream starts: after `Last-Event-ID` (which EventSource sends when it reconnects,
/// to the URL it first used), else after `?after_seq=`, else at the first line.
fn resume_after(headers: &HeaderMap, after_seq: Option<u64>) -> Result<u64, ApiError> {
    let last_event_id = match headers.get(LAST_EVENT_ID).map(HeaderValue::to_str) {
        None => None,
        Some(Ok(value)) => Some(value.trim()).filter(|v| !v.is_empty()),
        Some(Err(_)) => Some("?"),
    };
    match last_event_id {
        None => Ok(after_seq.unwrap_or_default()),
        Some(id) => id.parse().map_err(|_| {
            ApiError::new(
                ErrorCode::InvalidRequest,
                "Last-Event-ID must be the `id` of a `log` event (a log line's seq)",
            )
        }),
    }
}

/// Whether the stream goes on after an event.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Flow {
    Continue,
    /// The final status was sent: `end` follows, then the stream closes.
    Finished(ExecutionStatus),
    /// An error event was sent; the stream closes without `end` (the client may resume).
    Broken,
}

/// Where an event stream is.
enum StreamState<S> {
    Open(S, StreamSlot),
    /// `end`, still to send.
    Ending(Event),
    Closed,
}

/// The events of a `WatchExecution` stream as SSE. It ends after a final status (with `end`),
/// after an error, when the gateway stops, or when the control plane ends it; the slot is held
/// until then.
fn sse_events<S>(events: S, slot: StreamSlot) -> impl Stream<Item = Result<Event, Infallible>>
where
    S: Stream<Item = Result<v1::WatchExecutionResponse, tonic::Status>> + Unpin,
{
    futures::stream::unfold(StreamState::Open(events, slot), |progress| async move {
        let (mut events, slot) = match progress {
            StreamState::Open(events, slot) => (events, slot),
            StreamState::Ending(end) => return Some((Ok(end), StreamState::Closed)),
            StreamState::Closed => return None,
        };
        loop {
            let item = tokio::select! {
                item = events.next() => item,
                () = slot.closed() => None,
            };
            match sse_event(item?) {
                Some((event, Flow::Continue)) => {
                    return Some((Ok(event), StreamState::Open(events, slot)));
                }
                Some((event, Flow::Finished(status))) => {
                    return Some((Ok(event), StreamState::Ending(end_event(&status))));
                }
                Some((event, Flow::Broken)) => return Some((Ok(event), StreamState::Closed)),
                None => {}
            }
        }
    })
}

/// One SSE event, or none for an event this gateway does not know (a newer control plane).
fn sse_event(item: Result<v1::WatchExecutionResponse, tonic::Status>) -> Option<(Event, Flow)> {
    let event = match item {
        Ok(v1::WatchExecutionResponse { event }) => event?,
        Err(status) => return Some((error_event(&ApiError::from(status)), Flow::Broken)),
    };
    let (event, flow) = match event {
        WatchEvent::Log(line) => {
            let id = line.seq.to_string();
            let event = LogLineView::try_from(line)
                .map_err(ApiError::from)
                .and_then(|line| json_event("log", &line))
                .map(|e| e.id(id));
            (event, Flow::Continue)
        }
        WatchEvent::Progress(progress) => (
            json_event("progress", &ProgressView::from(progress)),
            Flow::Continue,
        ),
        // After a terminal status the execution changes no more, and its event stream ends.
        WatchEvent::Status(execution) => match ExecutionView::try_from(execution) {
            Ok(execution) if execution.status.is_terminal() => {
                let status = execution.status;
                (json_event("status", &execution), Flow::Finished(status))
            }
            Ok(execution) => (json_event("status", &execution), Flow::Continue),
            Err(error) => (Err(ApiError::from(error)), Flow::Broken),
        },
    };
    Some(match event {
        Ok(event) => (event, flow),
        Err(error) => (error_event(&error), Flow::Broken),
    })
}

/// `event: end` with `{status}`: nothing follows, and a reconnection would only hear it again.
fn end_event(status: &ExecutionStatus) -> Event {
    let data = serde_json::json!({ "status": status });
    Event::default()
        .event("end")
        .data(data.to_string())
        .retry(AFTER_END_RETRY)
}

fn json_event(name: &'static str, data: &impl Serialize) -> Result<Event, ApiError> {
    let data = serde_json::to_string(data).map_err(|error| {
        tracing::error!(%error, event = name, "cannot serialize an event");
        ApiError::new(ErrorCode::Internal, "internal error")
    })?;
    Ok(Event::default().event(name).data(data))
}

/// `event: error` with `{code, message}`, the `error` object of an error response.
fn error_event(error: &ApiError) -> Event {
    let data = serde_json::json!({"code": error.code().as_str(), "message": error.0.message});
    Event::default().event("error").data(data.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, value.parse().unwrap());
        }
        headers
    }

    #[test]
    fn idempotency_keys() {
        assert_eq!(idempotency_key(&HeaderMap::new()).unwrap(), None);
        let key = idempotency_key(&headers(&[("idempotency-key", " order-17 ")])).unwrap();
        assert_eq!(key.as_deref(), Some("order-17"));
        let longest = "k".repeat(255);
        let key = idempotency_key(&headers(&[("idempotency-key", &longest)])).unwrap();
        assert_eq!(key, Some(longest));
        let too_long = "k".repeat(256);
        for bad in [
            headers(&[("idempotency-key", &too_long)]),
            headers(&[("idempotency-key", "  ")]),
            headers(&[("idempotency-key", "a"), ("idempotency-key", "b")]),
        ] {
            let error = idempotency_key(&bad).unwrap_err();
            assert_eq!(error.code(), ErrorCode::InvalidRequest, "{bad:?}");
        }
    }

    #[test]
    fn streams_resume_after_last_event_id_then_after_seq() {
        assert_eq!(resume_after(&HeaderMap::new(), None).unwrap(), 0);
        assert_eq!(resume_after(&HeaderMap::new(), Some(4)).unwrap(), 4);
        let resumed = headers(&[("last-event-id", "9")]);
        assert_eq!(resume_after(&resumed, Some(4)).unwrap(), 9);
        assert_eq!(
            resume_after(&headers(&[("last-event-id", "")]), Some(4)).unwrap(),
            4
        );
        let error = resume_after(&headers(&[("last-event-id", "abc")]), None).unwrap_err();
        assert_eq!(error.code(), ErrorCode::InvalidRequest);
    }
}
