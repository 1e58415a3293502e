//! Webhooks (API.md §5.3, ADR 0046): an execution created with a `webhook_url` gets a delivery
//! row in the same statement as itself, `waiting`; once the execution has ended, a dispatcher
//! (every replica runs one; rows are leased, so each attempt is made by one) POSTs the
//! execution's JSON there, signed with the account's secret, until a 2xx answer or the end of
//! the retry window. The delivery's id is the event id: the same on every attempt.

mod dispatch;
pub mod secret;
mod service;
pub mod signature;
mod target;

use chrono::{DateTime, Utc};
use frameos_core::{Error, WebhookState};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, QueryOrder, Set};

pub use dispatch::Dispatcher;
pub use service::Webhooks;
pub use target::Guard;

use crate::db;
use crate::entity::webhook_delivery;

#[derive(Clone, Debug, clap::Args)]
pub struct WebhookConfig {
    /// Lets webhooks reach loopback addresses (127.0.0.0/8, ::1, localhost): development and
    /// tests only. Every other internal address stays refused.
    #[arg(long, env = "FRAMEOS_WEBHOOK_ALLOW_LOOPBACK", default_value_t = false, action = clap::ArgAction::Set)]
    pub webhook_allow_loopback: bool,
    /// The wait after the first failed attempt; it doubles after each (at most an hour), and
    /// each wait is drawn at random between its half and itself (jitter).
    #[arg(long, env = "FRAMEOS_WEBHOOK_RETRY_BASE_MS", default_value_t = 10_000)]
    pub webhook_retry_base_ms: u64,
    /// How long after the first attempt a webhook is retried before it is `failed`.
    #[arg(long, env = "FRAMEOS_WEBHOOK_RETRY_FOR_SECS", default_value_t = 86_400)]
    pub webhook_retry_for_secs: u64,
    /// Seconds one attempt may take (connect, redirects, answer).
    #[arg(long, env = "FRAMEOS_WEBHOOK_TIMEOUT_SECS", default_value_t = 10)]
    pub webhook_timeout_secs: u64,
    /// How often the dispatcher looks for due deliveries when nothing woke it.
    #[arg(long, env = "FRAMEOS_WEBHOOK_POLL_MS", default_value_t = 1_000)]
    pub webhook_poll_ms: u64,
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            webhook_allow_loopback: false,
            webhook_retry_base_ms: 10_000,
            webhook_retry_for_secs: 86_400,
            webhook_timeout_secs: 10,
            webhook_poll_ms: 1_000,
        }
    }
}

impl WebhookConfig {
    pub fn guard(&self) -> Guard {
        Guard {
            allow_loopback: self.webhook_allow_loopback,
        }
    }
}

/// The delivery row of a new execution's webhook, `waiting`; `None` without a URL. A URL the
/// guard refuses is the caller's mistake (422), and nothing is recorded.
pub fn waiting(
    guard: &Guard,
    url: &str,
    execution_id: &str,
    account_id: &str,
    now: DateTime<Utc>,
) -> Result<Option<webhook_delivery::ActiveModel>, Error> {
    let url = url.trim();
    if url.is_empty() {
        return Ok(None);
    }
    let url = guard.parse(url)?;
    Ok(Some(webhook_delivery::ActiveModel {
        id: Set(format!("evt_{}", uuid::Uuid::now_v7().simple())),
        execution_id: Set(execution_id.to_string()),
        account_id: Set(account_id.to_string()),
        url: Set(url.to_string()),
        state: Set(WebhookState::Waiting),
        attempts: Set(0),
        next_attempt_at: Set(now),
        first_attempt_at: Set(None),
        delivered_at: Set(None),
        last_status: Set(None),
        last_error: Set(None),
        created_at: Set(now),
    }))
}

/// The deliveries of one execution, oldest first.
pub async fn of_execution(
    db: &DatabaseConnection,
    execution_id: &str,
) -> Result<Vec<webhook_delivery::Model>, Error> {
    webhook_delivery::Entity::find()
        .filter(webhook_delivery::Column::ExecutionId.eq(execution_id))
        .order_by_asc(webhook_delivery::Column::CreatedAt)
        .all(db)
        .await
        .map_err(db::error)
}
