//! The outbox relay: the control plane's way into the queue (the dead-letter consumer is its
//! way out). It reconnects on its own when the broker goes away.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use frameos_queue::{Job, Queue, Topology};
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, TransactionTrait};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::dispatch;
use crate::entity::outbox;
use crate::metrics::Metrics;

const BATCH: u64 = 100;
const IDLE_POLL: Duration = Duration::from_secs(1);
pub(super) const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Where the queue comes from: a broker to (re)connect to, or one shared in-process.
#[derive(Clone)]
pub enum QueueSource {
    Amqp { url: String, topology: Topology },
    Shared(Queue),
}

impl QueueSource {
    pub async fn connect(&self) -> Result<Queue, frameos_queue::Error> {
        match self {
            QueueSource::Amqp { url, topology } => Queue::amqp(url, topology.clone()).await,
            QueueSource::Shared(queue) => Ok(queue.clone()),
        }
    }
}

/// Sleeps for the back-off unless shutdown comes first; `false` on shutdown.
pub(super) async fn pause(backoff: &mut Duration, shutdown: &CancellationToken) -> bool {
    let wait = *backoff;
    *backoff = (*backoff * 2).min(MAX_BACKOFF);
    tokio::select! {
        () = tokio::time::sleep(wait) => true,
        () = shutdown.cancelled() => false,
    }
}

/// Publishes committed outbox rows, oldest batch first, each confirmed by the broker before it
/// is marked sent. A crash between the two publishes the row again; claiming is idempotent. Each
/// account has at most `account_max_running` executions out at once (0: no cap); its others
/// wait in the outbox, and `wake` fires when one ends ([`super::dispatch`]).
pub async fn run_relay(
    db: DatabaseConnection,
    account_max_running: u32,
    source: QueueSource,
    wake: Arc<Notify>,
    metrics: Metrics,
    shutdown: CancellationToken,
) {
    let mut queue: Option<Queue> = None;
    let mut backoff = MIN_BACKOFF;
    while !shutdown.is_cancelled() {
        let current = match &queue {
            Some(q) => q.clone(),
            None => match source.connect().await {
                Ok(q) => {
                    tracing::info!(queue = %q.describe(), "outbox relay connected");
                    queue = Some(q.clone());
                    q
                }
                Err(e) => {
                    tracing::warn!(error = %e, "outbox relay cannot reach the queue; retrying");
                    if !pause(&mut backoff, &shutdown).await {
                        break;
                    }
                    continue;
                }
            },
        };
        let (published, failure) =
            match publish_batch(&db, &current, account_max_running, &metrics).await {
                Ok(outcome) => outcome,
                Err(e) => {
                    tracing::warn!(error = %e, "outbox relay cannot read or mark the outbox");
                    if !pause(&mut backoff, &shutdown).await {
                        break;
                    }
                    continue;
                }
            };
        let published_all = failure.is_none();
        if let Some(e) = failure {
            tracing::warn!(error = %e, "publish failed; will retry");
            if e.is_transient() {
                queue = None;
            }
        }
        if !published_all {
            if !pause(&mut backoff, &shutdown).await {
                break;
            }
            continue;
        }
        backoff = MIN_BACKOFF;
        if published as u64 == BATCH {
            continue;
        }
        tokio::select! {
            () = wake.notified() => {}
            () = tokio::time::sleep(IDLE_POLL) => {}
            () = shutdown.cancelled() => break,
        }
    }
    if let Some(queue) = queue {
        flush(&db, &queue, account_max_running, &metrics).await;
    }
    tracing::info!("outbox relay stopped");
}

/// On the way out: publishes what was committed until now, so a job does not wait for the
/// next relay to start. The stop stage bounds how long this may take.
async fn flush(
    db: &DatabaseConnection,
    queue: &Queue,
    account_max_running: u32,
    metrics: &Metrics,
) {
    loop {
        match publish_batch(db, queue, account_max_running, metrics).await {
            Ok((published, None)) => {
                tracing::info!(published, "outbox flushed before stopping");
                if published as u64 != BATCH {
                    return;
                }
            }
            Ok((_, Some(e))) => {
                tracing::warn!(error = %e, "outbox flush failed; the rows wait for the next relay");
                return;
            }
            Err(e) => {
                tracing::warn!(error = %e, "outbox flush cannot read the outbox");
                return;
            }
        }
    }
}

/// Publishes up to a batch of unsent rows that fair dispatch allows, oldest first, and marks
/// the published ones sent in the same transaction. On PostgreSQL the rows are locked with
/// SKIP LOCKED, so relays of several control plane replicas never publish the same row twice.
/// Returns how many were published and the first publish error, if any (the rows that failed
/// stay unsent for the next attempt).
async fn publish_batch(
    db: &DatabaseConnection,
    queue: &Queue,
    account_max_running: u32,
    metrics: &Metrics,
) -> Result<(usize, Option<frameos_queue::Error>), sea_orm::DbErr> {
    let txn = db.begin().await?;
    let rows = dispatch::next_batch(&txn, account_max_running, BATCH).await?;
    // Published together, confirmed together: a batch costs the broker's round trip once,
    // not once per row. Order within a batch is not a promise (fair dispatch chose the batch).
    let outcomes = futures::future::join_all(rows.iter().map(|row| async move {
        let mut headers: BTreeMap<String, String> =
            serde_json::from_str(&row.headers).unwrap_or_default();
        headers.insert(
            frameos_queue::QUEUED_AT_HEADER.into(),
            row.created_at.timestamp_millis().to_string(),
        );
        let job = Job {
            execution_id: row.execution_id.clone(),
            priority: u8::try_from(row.priority).unwrap_or(0),
            attempt: 1,
            headers,
        };
        let started = std::time::Instant::now();
        let outcome = queue.publish(&job).await;
        (row, outcome, started.elapsed())
    }))
    .await;
    let mut sent = Vec::with_capacity(rows.len());
    let mut failure = None;
    for (row, outcome, elapsed) in outcomes {
        match outcome {
            Ok(()) => {
                metrics.published(elapsed);
                tracing::debug!(execution_id = %row.execution_id, "job published");
                sent.push(row);
            }
            // The first failure is reported; the rows that failed stay unsent for the retry.
            Err(e) => {
                failure.get_or_insert(e);
            }
        }
    }
    // The confirmed rows marked in two statements, not two per row.
    let published = sent.len();
    if !sent.is_empty() {
        let now = Utc::now();
        outbox::Entity::update_many()
            .col_expr(outbox::Column::SentAt, Expr::value(now))
            .filter(outbox::Column::Id.is_in(sent.iter().map(|row| row.id)))
            .exec(&txn)
            .await?;
        let executions: Vec<String> = sent.iter().map(|row| row.execution_id.clone()).collect();
        dispatch::mark_dispatched(&txn, &executions, now).await?;
    }
    // A crash before this commit publishes the batch again; claims make that harmless.
    txn.commit().await?;
    Ok((published, failure))
}
