//! The reaper (ADR 0008): the database is the source of truth, the broker only a delivery
//! mechanism. Every pass queues again, through a new outbox row, what nobody will run:
//!
//! * running executions whose claim is dead (the node stopped renewing it, restarted, or is
//!   unknown): back to `queued` with the attempt number kept, so the dead attempt stays
//!   fenced — its late reports are refused as `stale_attempt`;
//! * queued executions whose job the queue lost (the in-process queue after a crash, a purged
//!   or deleted RabbitMQ queue): when the queue holds fewer jobs than there are dispatched,
//!   unclaimed executions, those dispatched longer than `dead_after` ago are dispatched again.
//!   A duplicate job is harmless (a live claim is never taken over), a lost one is not.
//!
//! And it cancels what nobody waits for any more: child executions (`ctx.call`, ADR 0040) still
//! queued or running under a parent that ended — its end cancels them unless a crash came
//! between the two.
//!
//! One pass runs at a time across control plane replicas (a transaction-scoped advisory lock
//! on PostgreSQL); every change comes with a `system` log line saying why.

use frameos_core::ExecutionStatus;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use frameos_core::Error;
use frameos_queue::Queue;
use sea_orm::sea_query::{Expr, ExprTrait, Query};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DatabaseConnection, DatabaseTransaction, DbBackend, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Statement, TransactionTrait,
};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::claims::{self, Liveness, Verdict};
use super::relay::QueueSource;
use super::{Hub, requeue};
use crate::db;
use crate::entity::{execution, execution_claim, node, outbox};
use crate::metrics::{Fix, Reconciler};

/// Executions read at once; lost jobs beyond it wait for the next pass.
const BATCH: u64 = 500;
/// Key of the advisory lock that makes one reaper run at a time ("frameos reaper").
const LOCK_KEY: i64 = 0x6672_616d_6572_6170;

pub struct Reaper {
    pub db: DatabaseConnection,
    pub hub: Hub,
    pub source: QueueSource,
    pub liveness: Liveness,
    pub interval: Duration,
    /// Wakes the outbox relay when jobs were queued again.
    pub outbox: Arc<Notify>,
    /// Settles (voids) the orphaned children it cancels.
    pub billing: crate::billing::Billing,
}

/// What one pass did.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Pass {
    pub dead_claims: usize,
    pub lost_jobs: usize,
    pub orphaned_children: usize,
}

/// Runs a pass every `interval` until `shutdown`.
pub async fn run(reaper: Reaper, shutdown: CancellationToken) {
    let mut queue: Option<Queue> = None;
    loop {
        tokio::select! {
            () = tokio::time::sleep(reaper.interval) => {}
            () = shutdown.cancelled() => break,
        }
        let broker = match backlog(&reaper.source, &mut queue).await {
            Ok(backlog) => Some(backlog),
            Err(e) => {
                // Dead claims are still reaped; lost jobs wait until the queue answers.
                tracing::warn!(error = %e, "reaper cannot look at the queue");
                queue = None;
                None
            }
        };
        let done = pass(&reaper, broker).await;
        if let Ok(done) = &done {
            reaper.hub.metrics().reconciled(
                Reconciler::Reaper,
                &[
                    (Fix::DeadClaim, done.dead_claims),
                    (Fix::LostJob, done.lost_jobs),
                    (Fix::OrphanedChild, done.orphaned_children),
                ],
            );
        }
        match done {
            Ok(done) if done != Pass::default() => {
                tracing::warn!(
                    dead_claims = done.dead_claims,
                    lost_jobs = done.lost_jobs,
                    orphaned_children = done.orphaned_children,
                    "reaper queued or canceled executions"
                );
                reaper.outbox.notify_one();
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "reaper pass failed"),
        }
    }
    if let Some(queue) = queue
        && matches!(reaper.source, QueueSource::Amqp { .. })
    {
        queue.close().await;
    }
    tracing::info!("reaper stopped");
}

/// What the queue holds when the pass starts; `None` when its job queue was gone (it is
/// declared again here, empty).
struct Backlog {
    waiting: Option<u32>,
    at: DateTime<Utc>,
    /// The in-process queue: it was empty when this process started.
    dies_with_process: bool,
}

async fn backlog(
    source: &QueueSource,
    queue: &mut Option<Queue>,
) -> Result<Backlog, frameos_queue::Error> {
    let current = match queue {
        Some(q) => q.clone(),
        None => {
            let q = source.connect().await?;
            *queue = Some(q.clone());
            q
        }
    };
    let at = Utc::now();
    let waiting = current.backlog().await?;
    if waiting.is_none() {
        tracing::warn!(queue = %current.describe(), "the job queue is gone; declaring it again");
        current.redeclare().await?;
    }
    Ok(Backlog {
        waiting,
        at,
        dies_with_process: matches!(source, QueueSource::Shared(_)),
    })
}

async fn pass(reaper: &Reaper, broker: Option<Backlog>) -> Result<Pass, Error> {
    let txn = reaper.db.begin().await.map_err(db::error)?;
    if !locked(&txn).await.map_err(db::error)? {
        tracing::debug!("another replica's reaper is running");
        return Ok(Pass::default());
    }
    let mut touched = Vec::new();
    let dead_claims = reap_dead_claims(&txn, reaper.liveness, &mut touched)
        .await
        .map_err(db::error)?;
    let lost_jobs = match broker {
        Some(backlog) => redispatch_lost(&txn, &backlog, reaper.liveness, &mut touched)
            .await
            .map_err(db::error)?,
        None => 0,
    };
    txn.commit().await.map_err(db::error)?;
    // A dead attempt that still runs somewhere hears on its report stream that it is stale.
    for id in &touched {
        reaper.hub.touch(id);
    }
    let orphaned_children = cancel_orphans(reaper).await?;
    Ok(Pass {
        dead_claims,
        lost_jobs,
        orphaned_children,
    })
}

/// Cancels child executions still queued or running under a parent that ended.
async fn cancel_orphans(reaper: &Reaper) -> Result<usize, Error> {
    let live = [ExecutionStatus::Queued, ExecutionStatus::Running];
    let children = execution::Entity::find()
        .filter(execution::Column::ParentId.is_not_null())
        .filter(execution::Column::Status.is_in(live))
        .limit(BATCH)
        .all(&reaper.db)
        .await
        .map_err(db::error)?;
    if children.is_empty() {
        return Ok(0);
    }
    let parents: HashMap<String, ExecutionStatus> = execution::Entity::find()
        .select_only()
        .column(execution::Column::Id)
        .column(execution::Column::Status)
        .filter(execution::Column::Id.is_in(children.iter().filter_map(|c| c.parent_id.clone())))
        .into_tuple::<(String, ExecutionStatus)>()
        .all(&reaper.db)
        .await
        .map_err(db::error)?
        .into_iter()
        .collect();
    let mut canceled = 0;
    for child in children {
        let parent = child.parent_id.as_deref().unwrap_or_default();
        if !parents.get(parent).is_some_and(|s| s.is_terminal()) {
            continue;
        }
        if super::tree::end_canceled(&reaper.db, &reaper.hub, &reaper.billing, &child.id, None)
            .await?
        {
            tracing::warn!(execution_id = %child.id, parent_id = %parent, "orphaned child canceled");
            let line = format!("canceled: its parent {parent} ended");
            if let Err(e) = super::system_log::append(&reaper.db, &child.id, &line).await {
                tracing::warn!(execution_id = %child.id, error = %e, "the cancel's reason was not logged");
            }
            canceled += 1;
        }
    }
    Ok(canceled)
}

/// The pass's lock on PostgreSQL, released with its transaction; SQLite has one writer anyway.
async fn locked(txn: &DatabaseTransaction) -> Result<bool, sea_orm::DbErr> {
    if txn.get_database_backend() != DbBackend::Postgres {
        return Ok(true);
    }
    let row = txn
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            "SELECT pg_try_advisory_xact_lock($1) AS locked",
            [LOCK_KEY.into()],
        ))
        .await?;
    match row {
        Some(row) => row.try_get::<bool>("", "locked"),
        None => Ok(false),
    }
}

/// Running executions whose claim is dead go back to `queued`, attempt kept (the fence).
/// Every running execution is looked at, a page at a time: they are bounded by the nodes'
/// concurrency.
async fn reap_dead_claims(
    txn: &DatabaseTransaction,
    liveness: Liveness,
    touched: &mut Vec<String>,
) -> Result<usize, sea_orm::DbErr> {
    let mut reaped = 0;
    let mut after = String::new();
    loop {
        let running = execution::Entity::find()
            .filter(execution::Column::Status.eq(ExecutionStatus::Running))
            .filter(execution::Column::Id.gt(after.as_str()))
            .order_by_asc(execution::Column::Id)
            .limit(BATCH)
            .all(txn)
            .await?;
        let Some(last) = running.last() else {
            return Ok(reaped);
        };
        after = last.id.clone();
        reaped += reap_page(txn, &running, liveness, touched).await?;
    }
}

async fn reap_page(
    txn: &DatabaseTransaction,
    running: &[execution::Model],
    liveness: Liveness,
    touched: &mut Vec<String>,
) -> Result<usize, sea_orm::DbErr> {
    let claims: HashMap<String, execution_claim::Model> = execution_claim::Entity::find()
        .filter(execution_claim::Column::ExecutionId.is_in(running.iter().map(|r| r.id.clone())))
        .all(txn)
        .await?
        .into_iter()
        .map(|c| (c.execution_id.clone(), c))
        .collect();
    let nodes: HashMap<String, node::Model> = node::Entity::find()
        .filter(node::Column::Id.is_in(claims.values().map(|c| c.node_id.clone())))
        .all(txn)
        .await?
        .into_iter()
        .map(|n| (n.id.clone(), n))
        .collect();
    let now = Utc::now();
    let mut reaped = 0;
    for row in running {
        let claim = claims.get(&row.id);
        let node = claim.and_then(|c| nodes.get(&c.node_id));
        let Verdict::Dead(why) = claims::verdict(claim, node, row.attempts, now, liveness) else {
            continue;
        };
        if let Some(claim) = claim {
            // Exactly the claim judged: a heartbeat that renewed it meanwhile wins.
            let deleted = execution_claim::Entity::delete_many()
                .filter(execution_claim::Column::ExecutionId.eq(&row.id))
                .filter(execution_claim::Column::Attempt.eq(claim.attempt))
                .filter(execution_claim::Column::RenewedAt.eq(claim.renewed_at))
                .exec(txn)
                .await?
                .rows_affected;
            if deleted == 0 && claim.attempt == row.attempts {
                continue;
            }
        }
        let requeued = requeue::to_queue(txn, &row.id, row.attempts).await?;
        if !requeued {
            continue;
        }
        let line = format!(
            "attempt {} was lost ({why}); the execution is queued again",
            row.attempts
        );
        requeue::dispatch_again(txn, row, Some(&line)).await?;
        tracing::warn!(execution_id = %row.id, attempt = row.attempts, %why, "dead claim reaped");
        touched.push(row.id.clone());
        reaped += 1;
    }
    Ok(reaped)
}

/// Queued executions whose job the queue no longer holds are dispatched again.
async fn redispatch_lost(
    txn: &DatabaseTransaction,
    backlog: &Backlog,
    liveness: Liveness,
    touched: &mut Vec<String>,
) -> Result<usize, sea_orm::DbErr> {
    // Only jobs published before the queue was looked at can be in what it showed.
    let total = u32::try_from(
        execution::Entity::find()
            .filter(dispatched_before(backlog.at))
            .count(txn)
            .await?,
    )
    .unwrap_or(u32::MAX);
    let why = match backlog.waiting {
        None => "the job queue had been deleted".to_string(),
        Some(waiting) if waiting < total => format!(
            "the queue held {waiting} jobs for {total} dispatched executions waiting to run"
        ),
        Some(_) => return Ok(0),
    };
    // Younger ones are probably on their way to a node; a later pass looks at them again.
    let lost_after =
        chrono::Duration::from_std(liveness.dead_after).unwrap_or(chrono::Duration::MAX);
    let mut cutoff = backlog.at - lost_after;
    if backlog.dies_with_process {
        // An in-process queue started empty with this process: all it had before is lost.
        cutoff = Ord::max(cutoff, liveness.since);
    }
    let lost = execution::Entity::find()
        .filter(dispatched_before(cutoff))
        .order_by_asc(execution::Column::CreatedAt)
        .limit(BATCH)
        .all(txn)
        .await?;
    let mut redispatched = 0;
    for row in &lost {
        // Guarded: a claim meanwhile means the job was not lost after all.
        let still = execution::Entity::update_many()
            .col_expr(execution::Column::Attempts, Expr::value(row.attempts))
            .filter(execution::Column::Id.eq(&row.id))
            .filter(execution::Column::Attempts.eq(row.attempts))
            .filter(execution::Column::Status.eq(ExecutionStatus::Queued))
            .exec(txn)
            .await?
            .rows_affected;
        if still == 0 {
            continue;
        }
        let line = format!("the queue lost this execution's job ({why}); it is queued again");
        requeue::dispatch_again(txn, row, Some(&line)).await?;
        tracing::warn!(execution_id = %row.id, %why, "lost job dispatched again");
        touched.push(row.id.clone());
        redispatched += 1;
    }
    Ok(redispatched)
}

/// Queued executions whose every outbox row was published before `at`: their job is in the
/// queue (or a node is about to claim it) unless the queue lost it.
fn dispatched_before(at: DateTime<Utc>) -> sea_orm::Condition {
    let pending = Query::select()
        .expr(Expr::val(1))
        .from(outbox::Entity)
        .and_where(
            Expr::col((outbox::Entity, outbox::Column::ExecutionId))
                .equals((execution::Entity, execution::Column::Id)),
        )
        .cond_where(
            sea_orm::Condition::any()
                .add(Expr::col((outbox::Entity, outbox::Column::SentAt)).is_null())
                .add(Expr::col((outbox::Entity, outbox::Column::SentAt)).gte(at)),
        )
        .to_owned();
    sea_orm::Condition::all()
        .add(execution::Column::Status.eq(ExecutionStatus::Queued))
        .add(Expr::exists(pending).not())
}
