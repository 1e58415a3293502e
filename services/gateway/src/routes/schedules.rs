//! `POST /v1/agents/{slug}/schedules`, `GET /v1/schedules`, `GET`/`DELETE /v1/schedules/{id}`
//! (API.md §5.3): an agent run on a cron expression, paid by the account that made the schedule.
//! The control plane decides everything (`ScheduleService`); this is the JSON.

use axum::extract::State;
use axum::http::header::LOCATION;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use chrono::{DateTime, Utc};
use frameos_core::{Error, ErrorCode};
use frameos_proto::v1;
use serde::Deserialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use super::AppState;
use crate::auth::{self, ApiKey};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{JsonBody, PathArgs};

mod view;

pub use view::{ScheduleList, ScheduleView, StandingMandateView};

/// The routes of this file, merged into the API router.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/agents/{slug}/schedules", post(create_schedule))
        .route("/v1/schedules", get(list_schedules))
        .route(
            "/v1/schedules/{id}",
            get(get_schedule).delete(delete_schedule),
        )
}

#[derive(Debug, Deserialize, ToSchema)]
pub struct CreateSchedule {
    /// Five fields: minute hour day-of-month month day-of-week (`*`, lists, ranges, steps,
    /// month and weekday names), or a macro such as `@hourly`. One run a minute at most.
    #[schema(example = "*/5 * * * *", min_length = 7, max_length = 128)]
    pub cron: String,
    /// The inputs of every run, a JSON object matching the version's `inputs` JSON Schema;
    /// absent: `{}`.
    #[serde(default)]
    #[schema(value_type = Object, example = json!({"text": "the quick brown fox"}))]
    pub inputs: Map<String, Value>,
    /// The IANA time zone the expression is read in; absent: `UTC`.
    #[serde(default)]
    #[schema(example = "Europe/Paris", max_length = 64)]
    pub timezone: Option<String>,
    /// A published version to pin, e.g. `1.2.0`; absent: the highest published one at each run.
    #[serde(default)]
    pub version: Option<String>,
    /// Where each run's result is POSTed, as the `webhook_url` of an execution: an http(s) URL
    /// of at most 2048 bytes, without credentials, that does not point at an internal address.
    #[serde(default)]
    #[schema(max_length = 2048)]
    pub webhook_url: Option<String>,
    /// Required for a paid agent: what each run may cost.
    #[serde(default)]
    pub mandate: Option<StandingMandateTerms>,
}

/// What the payer allows each run of the schedule to cost.
#[derive(Debug, Deserialize, ToSchema)]
pub struct StandingMandateTerms {
    /// The most one run (with the agents it calls) may cost, in minor units of the agent's
    /// currency; at least the agent's price.
    #[schema(minimum = 1, example = 500)]
    pub max_amount_minor: i64,
    /// When the mandate ends (RFC 3339), at most a year ahead; absent: 90 days from now.
    #[serde(default)]
    #[schema(format = DateTime, example = "2030-01-31T00:00:00Z")]
    pub expires_at: Option<String>,
}

/// The schedule of a reply, which the control plane always sends.
fn schedule_view(schedule: Option<v1::Schedule>) -> Result<ScheduleView, ApiError> {
    let schedule = schedule.ok_or_else(|| Error::internal("a reply without its schedule"))?;
    Ok(ScheduleView::try_from(schedule)?)
}

fn invalid(message: impl Into<String>) -> ApiError {
    ApiError::new(ErrorCode::ValidationFailed, message)
}

/// An RFC 3339 time as the control plane takes it.
fn proto_time(text: &str, field: &str) -> Result<prost_types::Timestamp, ApiError> {
    let at = DateTime::parse_from_rfc3339(text)
        .map_err(|e| invalid(format!("{field} is not an RFC 3339 timestamp: {e}")))?
        .with_timezone(&Utc);
    Ok(prost_types::Timestamp {
        seconds: at.timestamp(),
        nanos: i32::try_from(at.timestamp_subsec_nanos()).unwrap_or(0),
    })
}

/// The request as the control plane takes it.
fn request(slug: String, body: CreateSchedule) -> Result<v1::CreateScheduleRequest, ApiError> {
    let mandate = match body.mandate {
        Some(terms) if terms.max_amount_minor < 1 => {
            return Err(invalid("mandate.max_amount_minor must be at least 1"));
        }
        Some(terms) => Some(v1::StandingMandateTerms {
            max_amount_minor: terms.max_amount_minor,
            expires_at: match terms.expires_at {
                Some(text) => Some(proto_time(&text, "mandate.expires_at")?),
                None => None,
            },
        }),
        None => None,
    };
    Ok(v1::CreateScheduleRequest {
        agent_slug: slug,
        version: body.version.unwrap_or_default(),
        cron: body.cron,
        timezone: body.timezone.unwrap_or_default(),
        inputs_json: Value::Object(body.inputs).to_string(),
        webhook_url: body.webhook_url.unwrap_or_default(),
        mandate,
    })
}

/// Runs an agent on a cron expression (a key with the `run` scope). Each run is an execution
/// of the caller's, paid as if it had created it; a paid agent needs a standing `mandate`, the
/// most each run may cost. At most a per-account number of schedules.
#[utoipa::path(
    post,
    path = "/v1/agents/{slug}/schedules",
    tag = "schedules",
    security(("api_key" = [])),
    params(("slug" = String, Path, description = "The agent's slug")),
    request_body = CreateSchedule,
    responses(
        (status = 201, description = "The schedule, `active`", body = ScheduleView,
            headers(("Location" = String, description = "The schedule's URL")),
            links(
                ("GetSchedule" = (operation_id = "get_schedule", parameters(("id" = "$response.body#/id")))),
                ("DeleteSchedule" = (operation_id = "delete_schedule", parameters(("id" = "$response.body#/id")))),
            )),
        (status = 400, description = "Malformed body (not JSON, `cron` missing, `inputs` not an object, a wrong type, a Content-Type other than `application/json`)", body = ErrorBody),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 402, description = "`budget_exceeded`: the mandate's `max_amount_minor` is below the price of a run", body = ErrorBody),
        (status = 403, description = "A key without the `run` scope (`permission_denied`)", body = ErrorBody),
        (status = 404, description = "No such published agent or version", body = ErrorBody),
        (status = 409, description = "`agent_banned`: an admin banned the agent", body = ErrorBody),
        (status = 413, description = "Body too large (`payload_too_large`)", body = ErrorBody),
        (status = 422, description = "`validation_failed`: a bad cron expression, an unknown time zone, a paid agent without a mandate, a mandate whose currency does not match or whose expiry is malformed or out of range (in the past, or over a year ahead), a `max_amount_minor` below 1, or a refused `webhook_url`; `invalid_inputs`: the inputs do not match the version's `inputs` JSON Schema", body = ErrorBody),
        (status = 429, description = "`rate_limited`: the account holds as many schedules as it may (delete one first), or the caller is over its request rate",
            body = ErrorBody,
            headers(("Retry-After" = u32, description = "Seconds to wait before retrying (sent when the request rate is over the limit)"))),
    )
)]
pub async fn create_schedule(
    State(state): State<AppState>,
    key: ApiKey,
    PathArgs(slug): PathArgs<String>,
    body: JsonBody<CreateSchedule>,
) -> Result<(StatusCode, HeaderMap, Json<ScheduleView>), ApiError> {
    let body = body.parse(&state.control_plane, &key).await?;
    let message = match request(slug, body) {
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
        .schedules()
        .create_schedule(auth::request(message, Some(&key)))
        .await?;
    let schedule = schedule_view(reply.into_inner().schedule)?;
    let mut headers = HeaderMap::new();
    if let Ok(location) = HeaderValue::from_str(&format!("/v1/schedules/{}", schedule.id)) {
        headers.insert(LOCATION, location);
    }
    Ok((StatusCode::CREATED, headers, Json(schedule)))
}

/// The caller's own schedules, newest first.
#[utoipa::path(
    get,
    path = "/v1/schedules",
    tag = "schedules",
    security(("api_key" = [])),
    responses(
        (status = 200, description = "Every schedule of the caller", body = ScheduleList),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
    )
)]
pub async fn list_schedules(
    State(state): State<AppState>,
    key: ApiKey,
) -> Result<Json<ScheduleList>, ApiError> {
    let reply = state
        .control_plane
        .schedules()
        .list_schedules(auth::request(v1::ListSchedulesRequest {}, Some(&key)))
        .await?;
    let items = reply.into_inner().items.into_iter();
    let items = items
        .map(ScheduleView::try_from)
        .collect::<Result<_, _>>()?;
    Ok(Json(ScheduleList { items }))
}

/// One schedule of the caller's.
#[utoipa::path(
    get,
    path = "/v1/schedules/{id}",
    tag = "schedules",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "The schedule's id")),
    responses(
        (status = 200, description = "The schedule", body = ScheduleView),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 404, description = "No such schedule of the caller's", body = ErrorBody),
    )
)]
pub async fn get_schedule(
    State(state): State<AppState>,
    key: ApiKey,
    PathArgs(id): PathArgs<String>,
) -> Result<Json<ScheduleView>, ApiError> {
    let reply = state
        .control_plane
        .schedules()
        .get_schedule(auth::request(v1::GetScheduleRequest { id }, Some(&key)))
        .await?;
    Ok(Json(schedule_view(reply.into_inner().schedule)?))
}

/// Deletes a schedule of the caller's: it runs no more; executions it created already are not
/// touched.
#[utoipa::path(
    delete,
    path = "/v1/schedules/{id}",
    tag = "schedules",
    security(("api_key" = [])),
    params(("id" = String, Path, description = "The schedule's id")),
    responses(
        (status = 204, description = "Deleted"),
        (status = 401, description = "Missing or invalid API key", body = ErrorBody),
        (status = 404, description = "No such schedule of the caller's", body = ErrorBody),
    )
)]
pub async fn delete_schedule(
    State(state): State<AppState>,
    key: ApiKey,
    PathArgs(id): PathArgs<String>,
) -> Result<StatusCode, ApiError> {
    state
        .control_plane
        .schedules()
        .delete_schedule(auth::request(v1::DeleteScheduleRequest { id }, Some(&key)))
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests;
