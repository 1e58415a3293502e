//! The dispatcher: takes due deliveries (a lease, so two replicas never make the same attempt),
//! POSTs the execution's JSON, records the attempt, and plans the next one with exponential
//! back-off and jitter until the retry window closes. A replica killed mid-attempt leaves its
//! lease to expire: the attempt is made again, under the same event id (at least once).

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use frameos_core::{ExecutionStatus, WebhookState};
use sea_orm::sea_query::{Expr, LockBehavior, LockType};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    QueryOrder, QuerySelect, QueryTrait, Set, TransactionTrait,
};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::{Guard, WebhookConfig, signature, target::Vetted};
use crate::entity::{execution, webhook_attempt, webhook_delivery};

/// Deliveries taken at once.
const BATCH: u64 = 16;
/// Beyond the time an attempt may take, how long a taken delivery is left to its worker (for
/// reading the execution and recording the outcome) before another may take it.
const LEASE_MARGIN: chrono::TimeDelta = chrono::TimeDelta::seconds(10);
/// Redirects followed per attempt, each target checked again.
const MAX_REDIRECTS: usize = 3;
/// The longest wait between two attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(3600);

pub struct Dispatcher {
    db: DatabaseConnection,
    /// Opens the accounts' sealed secrets (FRAMEOS_SECRETS_KEY).
    keyring: Option<crate::secrets::Keyring>,
    config: WebhookConfig,
    guard: Guard,
    wake: Arc<Notify>,
}

/// How one attempt went.
struct Attempt {
    status: Option<u16>,
    error: Option<String>,
    took: Duration,
}

impl Dispatcher {
    /// `wake` is notified when an execution ends (the hub's endings).
    pub fn new(
        db: DatabaseConnection,
        keyring: Option<crate::secrets::Keyring>,
        config: WebhookConfig,
        wake: Arc<Notify>,
    ) -> Self {
        Dispatcher {
            guard: config.guard(),
            db,
            keyring,
            config,
            wake,
        }
    }

    /// How long a taken delivery is this worker's: twice the time an attempt may take, plus a
    /// margin. A worker that died (or hangs) past it loses the delivery to another, which makes
    /// the attempt again under the same event id.
    fn lease(&self) -> chrono::TimeDelta {
        let attempt = i64::try_from(self.config.webhook_timeout_secs).unwrap_or(i64::MAX / 4);
        chrono::TimeDelta::seconds(attempt.saturating_mul(2)) + LEASE_MARGIN
    }

    /// Delivers until `shutdown`; an attempt under way when it fires is finished (it is short:
    /// FRAMEOS_WEBHOOK_TIMEOUT_SECS).
    pub async fn run(self, shutdown: CancellationToken) {
        let poll = Duration::from_millis(self.config.webhook_poll_ms.max(10));
        loop {
            let taken = match self.take().await {
                Ok(taken) => taken,
                Err(e) => {
                    tracing::warn!(error = %e, "webhook dispatcher cannot read its deliveries");
                    Vec::new()
                }
            };
            let full = taken.len() as u64 == BATCH;
            futures::future::join_all(taken.into_iter().map(|d| self.attempt(d))).await;
            if full && !shutdown.is_cancelled() {
                continue;
            }
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = self.wake.notified() => {}
                () = tokio::time::sleep(poll) => {}
            }
        }
    }

    /// Due deliveries of ended executions, leased to this worker.
    async fn take(&self) -> Result<Vec<webhook_delivery::Model>, sea_orm::DbErr> {
        let now = Utc::now();
        let txn = self.db.begin().await?;
        let ended = execution::Entity::find()
            .select_only()
            .column(execution::Column::Id)
            .filter(execution::Column::Status.is_in(ExecutionStatus::TERMINAL))
            .into_query();
        let mut select = webhook_delivery::Entity::find()
            .filter(
                webhook_delivery::Column::State
                    .is_in([WebhookState::Waiting, WebhookState::Retrying]),
            )
            .filter(webhook_delivery::Column::NextAttemptAt.lte(now))
            .filter(webhook_delivery::Column::ExecutionId.in_subquery(ended))
            .order_by_asc(webhook_delivery::Column::NextAttemptAt)
            .limit(BATCH);
        if txn.get_database_backend() == sea_orm::DbBackend::Postgres {
            select = select.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
        }
        let due = select.all(&txn).await?;
        if !due.is_empty() {
            webhook_delivery::Entity::update_many()
                .col_expr(
                    webhook_delivery::Column::NextAttemptAt,
                    Expr::value(now + self.lease()),
                )
                .filter(webhook_delivery::Column::Id.is_in(due.iter().map(|d| d.id.as_str())))
                .exec(&txn)
                .await?;
        }
        txn.commit().await?;
        Ok(due)
    }

    async fn attempt(&self, delivery: webhook_delivery::Model) {
        if let Err(e) = self.try_attempt(&delivery).await {
            // The lease runs out and another pass tries again.
            tracing::warn!(event_id = %delivery.id, error = %e, "webhook attempt not recorded");
        }
    }

    async fn try_attempt(
        &self,
        delivery: &webhook_delivery::Model,
    ) -> Result<(), frameos_core::Error> {
        let started_at = Utc::now();
        let number = delivery.attempts + 1;
        let body = self.body(&delivery.execution_id).await?;
        let secret =
            super::secret::secret(&self.db, self.keyring.as_ref(), &delivery.account_id).await?;
        let outcome = self.post(delivery, number, &body, &secret).await;
        let delivered = outcome.status.is_some_and(|s| (200..300).contains(&s));
        let first = delivery.first_attempt_at.unwrap_or(started_at);
        let now = Utc::now();
        let (state, next) = if delivered {
            (WebhookState::Delivered, now)
        } else {
            let wait = backoff(self.config.webhook_retry_base_ms, number);
            let next = now + chrono::TimeDelta::from_std(wait).unwrap_or(self.lease());
            let window = chrono::TimeDelta::seconds(
                i64::try_from(self.config.webhook_retry_for_secs).unwrap_or(i64::MAX / 2),
            );
            if next > first + window {
                (WebhookState::Failed, now)
            } else {
                (WebhookState::Retrying, next)
            }
        };
        let took_ms = i32::try_from(outcome.took.as_millis()).unwrap_or(i32::MAX);
        let txn = self.db.begin().await.map_err(crate::db::error)?;
        webhook_attempt::ActiveModel {
            id: Set(uuid::Uuid::now_v7().to_string()),
            delivery_id: Set(delivery.id.clone()),
            attempt: Set(number),
            started_at: Set(started_at),
            duration_ms: Set(took_ms),
            status: Set(outcome.status.map(i32::from)),
            error: Set(outcome.error.clone()),
        }
        .insert(&txn)
        .await
        .map_err(crate::db::error)?;
        webhook_delivery::Entity::update_many()
            .col_expr(webhook_delivery::Column::State, Expr::value(state))
            .col_expr(webhook_delivery::Column::Attempts, Expr::value(number))
            .col_expr(webhook_delivery::Column::NextAttemptAt, Expr::value(next))
            .col_expr(webhook_delivery::Column::FirstAttemptAt, Expr::value(first))
            .col_expr(
                webhook_delivery::Column::DeliveredAt,
                Expr::value(delivered.then_some(now)),
            )
            .col_expr(
                webhook_delivery::Column::LastStatus,
                Expr::value(outcome.status.map(i32::from)),
            )
            .col_expr(
                webhook_delivery::Column::LastError,
                Expr::value(outcome.error.clone()),
            )
            .filter(webhook_delivery::Column::Id.eq(&delivery.id))
            .exec(&txn)
            .await
            .map_err(crate::db::error)?;
        txn.commit().await.map_err(crate::db::error)?;
        tracing::info!(
            event_id = %delivery.id,
            execution_id = %delivery.execution_id,
            attempt = number,
            status = ?outcome.status,
            error = outcome.error.as_deref().unwrap_or(""),
            state = %state,
            took_ms,
            "webhook attempt"
        );
        Ok(())
    }

    /// The execution's JSON, exactly as `GET /v1/executions/{id}` shows it.
    async fn body(&self, execution_id: &str) -> Result<Vec<u8>, frameos_core::Error> {
        let found = crate::execution::full_view(&self.db, execution_id, |_| true)
            .await?
            .ok_or_else(|| frameos_core::Error::internal("a webhook's execution vanished"))?;
        let view = frameos_rest::view::ExecutionView::try_from(found)?;
        serde_json::to_vec(&view)
            .map_err(|e| frameos_core::Error::internal(format!("execution JSON: {e}")))
    }

    /// One attempt: every hop vetted, redirects followed (re-POSTing the body) up to a bound.
    async fn post(
        &self,
        delivery: &webhook_delivery::Model,
        number: i32,
        body: &[u8],
        secret: &str,
    ) -> Attempt {
        let started = Instant::now();
        let timeout = Duration::from_secs(self.config.webhook_timeout_secs.max(1));
        let signed = signature::sign(secret, Utc::now().timestamp(), body);
        let fail = |error: String| Attempt {
            status: None,
            error: Some(error),
            took: started.elapsed(),
        };
        let mut url = match reqwest::Url::parse(&delivery.url) {
            Ok(url) => url,
            Err(e) => return fail(format!("the stored URL does not parse: {e}")),
        };
        for _hop in 0..=MAX_REDIRECTS {
            let vetted = match self.guard.vet(&url).await {
                Ok(vetted) => vetted,
                Err(why) => return fail(format!("refused by the egress guard: {why}")),
            };
            let client = match client(&vetted, timeout) {
                Ok(client) => client,
                Err(e) => return fail(format!("no HTTP client: {e}")),
            };
            let sent = client
                .post(vetted.url.clone())
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .header(reqwest::header::USER_AGENT, "FrameOS-Webhooks/1")
                .header(signature::HEADER, &signed)
                .header("FrameOS-Event-Id", &delivery.id)
                .header("FrameOS-Delivery-Attempt", number.to_string())
                .body(body.to_vec())
                .send()
                .await;
            let response = match sent {
                Ok(response) => response,
                Err(e) => return fail(format!("no answer from {}: {e}", host_of(&vetted.url))),
            };
            let status = response.status();
            if status.is_redirection() {
                let next = response
                    .headers()
                    .get(reqwest::header::LOCATION)
                    .and_then(|l| l.to_str().ok())
                    .and_then(|l| vetted.url.join(l).ok());
                match next {
                    Some(next) => {
                        url = next;
                        continue;
                    }
                    None => {
                        return Attempt {
                            status: Some(status.as_u16()),
                            error: Some("a redirect without a usable Location".into()),
                            took: started.elapsed(),
                        };
                    }
                }
            }
            return Attempt {
                status: Some(status.as_u16()),
                error: (!status.is_success()).then(|| format!("the receiver answered {status}")),
                took: started.elapsed(),
            };
        }
        fail(format!("more than {MAX_REDIRECTS} redirects"))
    }
}

/// A client that connects only to the vetted address and follows no redirect by itself.
fn client(vetted: &Vetted, timeout: Duration) -> reqwest::Result<reqwest::Client> {
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .timeout(timeout);
    if let Some((host, addr)) = &vetted.pinned {
        builder = builder.resolve(host, *addr);
    }
    builder.build()
}

fn host_of(url: &reqwest::Url) -> String {
    url.host_str().unwrap_or("?").to_string()
}

/// The wait after failed attempt `n` (1 for the first): `base · 2^(n-1)`, at most an hour,
/// drawn uniformly between its half and itself.
fn backoff(base_ms: u64, n: i32) -> Duration {
    let exponent = u32::try_from(n.saturating_sub(1)).unwrap_or(0).min(30);
    let full = Duration::from_millis(base_ms.saturating_mul(1u64 << exponent)).min(MAX_BACKOFF);
    let half = full / 2;
    half + full.saturating_sub(half).mul_f64(rand::random::<f64>())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_double_with_jitter_up_to_an_hour() {
        for n in 1..=40 {
            let full = Duration::from_millis(10_000u64.saturating_mul(1 << (n - 1).min(30)))
                .min(MAX_BACKOFF);
            let wait = backoff(10_000, n);
            assert!(
                wait >= full / 2 && wait <= full,
                "attempt {n}: {wait:?} of {full:?}"
            );
        }
        // Jitter: a thousand first waits are not all the same.
        let waits: std::collections::HashSet<_> = (0..1000).map(|_| backoff(10_000, 1)).collect();
        assert!(waits.len() > 900);
    }
}
