//! Intake: the executions that concurrent requests accept, written to the database together
//! (ADR 0033).
//!
//! On PostgreSQL one writer task takes every record waiting when it is free (up to [`MAX_BATCH`])
//! and writes them in one statement: the executions, their charges (and webhooks) and their outbox messages as
//! multi-row inserts in data-modifying `WITH` clauses, so one commit and one round trip serve the
//! batch. At most [`WRITES_IN_FLIGHT`] batches are written at once. Nothing waits for a batch to
//! fill: an idle intake writes a lone record at once, and batches grow only while the database
//! is busy. A batch that fails (an idempotency key raced, a constraint) is written again one
//! record at a time, so every request gets its own outcome and no record fails for another's;
//! a batch that found the database unavailable fails whole at once (each request answers
//! `unavailable`), rather than waiting for the database once per record.
//!
//! SQLite (`frameos dev`) has no data-modifying `WITH`; there each record is one transaction.

use std::sync::Arc;

use sea_orm::sea_query::{Alias, CommonTableExpression, WithClause};
use sea_orm::{
    ConnectionTrait, DatabaseConnection, DbBackend, DbErr, EntityTrait, QueryTrait, RuntimeErr,
    TransactionTrait,
};
use tokio::sync::{Semaphore, mpsc, oneshot};
use tokio_util::task::TaskTracker;

use crate::entity::{charge, execution, outbox, webhook_delivery};

/// Records in one statement: ~40 bind parameters each, far below PostgreSQL's 65,535.
const MAX_BATCH: usize = 32;
/// Batches written at once: the pool serves other requests too.
const WRITES_IN_FLIGHT: usize = 2;
/// Records waiting for the writer; a full queue makes requests wait as a full pool would.
const QUEUE: usize = 1024;

/// One accepted execution: written whole or not at all.
pub struct Record {
    pub execution: execution::ActiveModel,
    /// A paid execution's held charge.
    pub charge: Option<charge::ActiveModel>,
    /// The delivery of its webhook, waiting for its end (API.md §5.3).
    pub webhook: Option<webhook_delivery::ActiveModel>,
    pub message: outbox::ActiveModel,
}

/// What a new execution is made of; everything else starts empty.
pub struct Queued<'a> {
    pub id: &'a str,
    pub account_id: &'a str,
    pub agent_id: &'a str,
    pub version_id: &'a str,
    pub inputs: &'a serde_json::Value,
    pub priority: i16,
    /// The idempotency key and the hash of the request it names.
    pub idempotency: Option<(String, String)>,
    /// A child's parent and root (ADR 0040), and its depth.
    pub parent: Option<(&'a str, &'a str)>,
    pub depth: i16,
    pub now: chrono::DateTime<chrono::Utc>,
}

impl Queued<'_> {
    /// The execution row, queued, and its outbox message, which carries the current span's
    /// trace context: the publish span (and so the node's) continues the caller's trace.
    pub fn rows(self) -> (execution::ActiveModel, outbox::ActiveModel) {
        use frameos_core::ExecutionStatus;
        use sea_orm::Set;
        let (idempotency_key, request_hash) = self.idempotency.unzip();
        let headers = frameos_telemetry::inject(&tracing::Span::current());
        let execution = execution::ActiveModel {
            id: Set(self.id.to_string()),
            account_id: Set(self.account_id.to_string()),
            agent_id: Set(self.agent_id.to_string()),
            version_id: Set(self.version_id.to_string()),
            status: Set(ExecutionStatus::Queued),
            inputs: Set(self.inputs.to_string()),
            output: Set(None),
            error: Set(None),
            exit_code: Set(None),
            progress: Set(None),
            progress_message: Set(None),
            attempts: Set(0),
            priority: Set(self.priority),
            idempotency_key: Set(idempotency_key),
            request_hash: Set(request_hash),
            node_id: Set(None),
            log_seq: Set(0),
            log_bytes: Set(0),
            created_at: Set(self.now),
            started_at: Set(None),
            finished_at: Set(None),
            claimed_at: Set(None),
            running_at: Set(None),
            parent_id: Set(self.parent.map(|(parent, _)| parent.to_string())),
            root_id: Set(self.parent.map(|(_, root)| root.to_string())),
            depth: Set(self.depth),
        };
        let message = outbox::ActiveModel {
            execution_id: Set(self.id.to_string()),
            priority: Set(self.priority),
            headers: Set(serde_json::to_string(&headers).unwrap_or_else(|_| "{}".into())),
            created_at: Set(self.now),
            sent_at: Set(None),
            ..Default::default()
        };
        (execution, message)
    }
}

struct Pending {
    record: Record,
    written: oneshot::Sender<Result<(), DbErr>>,
}

#[derive(Clone)]
pub struct Intake {
    db: DatabaseConnection,
    /// `None` on SQLite: each request writes its own record.
    writer: Option<mpsc::Sender<Pending>>,
}

impl Intake {
    /// An intake whose writer (PostgreSQL) is owned by `tasks`; it ends once every clone of the
    /// intake is dropped and the records it was handed are written.
    pub fn start(db: DatabaseConnection, tasks: &TaskTracker) -> Intake {
        if db.get_database_backend() != DbBackend::Postgres {
            return Intake { db, writer: None };
        }
        let (sender, receiver) = mpsc::channel(QUEUE);
        tasks.spawn(run(db.clone(), receiver, tasks.clone()));
        Intake {
            db,
            writer: Some(sender),
        }
    }

    /// Writes `record`; returns once it is committed (or failed).
    pub async fn record(&self, record: Record) -> Result<(), DbErr> {
        let Some(writer) = &self.writer else {
            return write_one(&self.db, &record).await;
        };
        let (written, outcome) = oneshot::channel();
        writer
            .send(Pending { record, written })
            .await
            .map_err(|_| stopped())?;
        outcome.await.map_err(|_| stopped())?
    }
}

fn stopped() -> DbErr {
    DbErr::Custom("the execution intake has stopped".into())
}

async fn run(db: DatabaseConnection, mut receiver: mpsc::Receiver<Pending>, tasks: TaskTracker) {
    let slots = Arc::new(Semaphore::new(WRITES_IN_FLIGHT));
    loop {
        // A slot first: records keep arriving while both writes are out, and the next batch
        // takes all of them.
        let Ok(slot) = slots.clone().acquire_owned().await else {
            return;
        };
        let mut batch = Vec::with_capacity(MAX_BATCH);
        if receiver.recv_many(&mut batch, MAX_BATCH).await == 0 {
            return;
        }
        let db = db.clone();
        tasks.spawn(async move {
            write_batch(&db, batch).await;
            drop(slot);
        });
    }
}

async fn write_batch(db: &DatabaseConnection, batch: Vec<Pending>) {
    let records: Vec<&Record> = batch.iter().map(|pending| &pending.record).collect();
    let outcome = write_many(db, &records).await;
    match outcome {
        Ok(()) => {
            tracing::debug!(records = batch.len(), "executions written");
            for pending in batch {
                let _ = pending.written.send(Ok(()));
            }
        }
        Err(e) if batch.len() == 1 => {
            let _ = batch.into_iter().next().map(|p| p.written.send(Err(e)));
        }
        // The database is away: writing each record alone would wait for it once per record.
        Err(e) if crate::db::is_unavailable(&e) => {
            let reason = e.to_string();
            for pending in batch {
                let error = DbErr::Conn(RuntimeErr::Internal(reason.clone()));
                let _ = pending.written.send(Err(error));
            }
        }
        Err(e) => {
            tracing::debug!(records = batch.len(), error = %e, "batch refused; writing its records one by one");
            for pending in batch {
                let outcome = write_one(db, &pending.record).await;
                let _ = pending.written.send(outcome);
            }
        }
    }
}

/// The records in one statement: `WITH executions, charges INSERT outbox`, each a multi-row
/// insert (one row for a lone record).
async fn write_many(db: &DatabaseConnection, records: &[&Record]) -> Result<(), DbErr> {
    let mut with = WithClause::new();
    with.cte(
        CommonTableExpression::new()
            .query(
                execution::Entity::insert_many(records.iter().map(|r| r.execution.clone()))
                    .into_query(),
            )
            .table_name(Alias::new("queued_executions"))
            .to_owned(),
    );
    let charges: Vec<charge::ActiveModel> =
        records.iter().filter_map(|r| r.charge.clone()).collect();
    if !charges.is_empty() {
        with.cte(
            CommonTableExpression::new()
                .query(charge::Entity::insert_many(charges).into_query())
                .table_name(Alias::new("held_charges"))
                .to_owned(),
        );
    }
    let webhooks: Vec<webhook_delivery::ActiveModel> =
        records.iter().filter_map(|r| r.webhook.clone()).collect();
    if !webhooks.is_empty() {
        with.cte(
            CommonTableExpression::new()
                .query(webhook_delivery::Entity::insert_many(webhooks).into_query())
                .table_name(Alias::new("waiting_webhooks"))
                .to_owned(),
        );
    }
    let statement = outbox::Entity::insert_many(records.iter().map(|r| r.message.clone()))
        .into_query()
        .with(with);
    db.execute(&statement).await.map(drop)
}

/// One record: on PostgreSQL one statement instead of `BEGIN`, two or three inserts and `COMMIT`.
async fn write_one(db: &DatabaseConnection, record: &Record) -> Result<(), DbErr> {
    if db.get_database_backend() == DbBackend::Postgres {
        return write_many(db, &[record]).await;
    }
    let txn = db.begin().await?;
    execution::Entity::insert(record.execution.clone())
        .exec_without_returning(&txn)
        .await?;
    if let Some(charge) = &record.charge {
        charge::Entity::insert(charge.clone())
            .exec_without_returning(&txn)
            .await?;
    }
    if let Some(webhook) = &record.webhook {
        webhook_delivery::Entity::insert(webhook.clone())
            .exec_without_returning(&txn)
            .await?;
    }
    outbox::Entity::insert(record.message.clone())
        .exec_without_returning(&txn)
        .await?;
    txn.commit().await
}

#[cfg(test)]
mod tests;
