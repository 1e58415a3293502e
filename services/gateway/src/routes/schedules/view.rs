//! The JSON of a schedule, as the control plane's `Schedule` becomes it.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use frameos_core::{Error, ScheduleStatus};
use frameos_proto::v1;
use serde::Serialize;
use serde_json::{Map, Value};
use utoipa::ToSchema;

use crate::view::timestamp;

/// An agent run on a cron expression.
#[derive(Debug, Serialize, ToSchema)]
pub struct ScheduleView {
    /// Pass it to `GET`/`DELETE /v1/schedules/{id}`.
    pub id: String,
    /// The agent's slug.
    pub agent: String,
    /// The pinned version; absent: the highest published one at each run.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub version: Option<String>,
    pub cron: String,
    /// The IANA time zone the expression is read in.
    pub timezone: String,
    /// The inputs of every run.
    #[schema(value_type = Object)]
    pub inputs: Map<String, Value>,
    /// Where each run's result is POSTed.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub webhook_url: Option<String>,
    /// `active`, or `expired` once its standing mandate has (nothing more runs).
    pub status: ScheduleStatus,
    /// When the next run is due, while `active`.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, format = DateTime)]
    pub next_run_at: Option<String>,
    /// When the last tick was handled.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false, format = DateTime)]
    pub last_run_at: Option<String>,
    /// The execution the last tick created; absent when it created none.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub last_execution_id: Option<String>,
    /// Why the last tick created no execution (`code: message`).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub last_error: Option<String>,
    /// How many executions the schedule has created.
    #[schema(minimum = 0)]
    pub runs: i64,
    #[schema(format = DateTime)]
    pub created_at: String,
    /// The payer's standing mandate, for a paid agent.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(nullable = false)]
    pub mandate: Option<StandingMandateView>,
}

/// The payer's consent, signed by the platform, to pay up to `max_amount_minor` per run of one
/// schedule until `expires_at`. Each run's own mandate names it (`standing_mandate_id`).
#[derive(Debug, Serialize, ToSchema)]
pub struct StandingMandateView {
    pub mandate_id: String,
    /// The most one run may cost, in minor units of `currency`.
    pub max_amount_minor: i64,
    /// ISO 4217.
    #[schema(example = "EUR")]
    pub currency: String,
    #[schema(format = DateTime)]
    pub expires_at: String,
    /// The key it is signed with (see `/.well-known/jwks.json`).
    pub kid: String,
    /// The exact signed bytes, standard base64 (as an execution's mandate): they decode to a
    /// UTF-8 JSON object with `"type": "frameos.standing_mandate.v1"`, `schedule_id`,
    /// `payer_account`, `max_amount_minor`, `currency` and `expires_at`.
    #[schema(format = Byte)]
    pub payload: String,
    /// The 64-byte Ed25519 signature of the decoded `payload`, standard base64.
    #[schema(format = Byte)]
    pub signature: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ScheduleList {
    /// Newest first.
    pub items: Vec<ScheduleView>,
}

fn present(text: String) -> Option<String> {
    (!text.is_empty()).then_some(text)
}

impl TryFrom<v1::Schedule> for ScheduleView {
    type Error = Error;

    fn try_from(s: v1::Schedule) -> Result<Self, Error> {
        let bug = |what: &str| Error::internal(format!("schedule {}: {what}", s.id));
        let status = s.status.parse().map_err(|e: Error| bug(&e.message))?;
        let inputs = match s.inputs_json.as_str() {
            "" => Map::new(),
            text => serde_json::from_str(text).map_err(|e| bug(&format!("inputs_json: {e}")))?,
        };
        let created_at = timestamp(s.created_at.as_ref()).ok_or_else(|| bug("no created_at"))?;
        let mandate = match s.mandate {
            Some(m) => Some(StandingMandateView {
                expires_at: timestamp(m.expires_at.as_ref())
                    .ok_or_else(|| bug("a mandate without expires_at"))?,
                mandate_id: m.mandate_id,
                max_amount_minor: m.max_amount_minor,
                currency: m.currency,
                kid: m.kid,
                payload: STANDARD.encode(&m.payload),
                signature: STANDARD.encode(&m.signature),
            }),
            None => None,
        };
        Ok(ScheduleView {
            next_run_at: timestamp(s.next_run_at.as_ref()),
            last_run_at: timestamp(s.last_run_at.as_ref()),
            version: present(s.version),
            webhook_url: present(s.webhook_url),
            last_execution_id: present(s.last_execution_id),
            last_error: present(s.last_error),
            id: s.id,
            agent: s.agent_slug,
            cron: s.cron,
            timezone: s.timezone,
            inputs,
            status,
            runs: s.runs,
            created_at,
            mandate,
        })
    }
}
