//! Fair dispatch: which outbox rows the relay may publish now (ADR 0010).
//!
//! An account holds a place from the first publication of one of its executions until that
//! execution ends (a job in the queue, or claimed and running): the relay stamps the
//! execution's `dispatched_at` when it publishes it. An account may hold `cap` places; its other
//! rows stay in the outbox, in order — the database is the backlog — and go out as places free
//! up. So one account flooding the queue never sits in front of another account's job: the
//! queue holds at most `cap` jobs of each account.
//!
//! A row needs no place when its execution holds one already (a re-dispatch of a lost job),
//! has ended (the node skips it), or is gone. A child execution (`ctx.call`, ADR 0040) rides
//! the place of its root: the root waits for it, so making it wait for a place the root holds
//! would deadlock the tree; its count is bounded by the root's own calls. The outbox row stays
//! the unit of dispatch.
//!
//! With several replicas: the pick (one statement: the count and the ranking) ignores locks,
//! then the picked rows are locked with `SKIP LOCKED` and re-checked for `sent_at IS NULL`. So
//! a row another relay is publishing is skipped but keeps its place in the order: two relays
//! pick from the same prefix of each account's backlog, never a place each, and a row another
//! relay committed as sent after the pick is left out.
//!
//! The pick reads the waiting rows once (accounts at their cap are left out before the sort)
//! and the executions that are out through a partial index; the lock goes by primary key. The
//! cost follows the backlog, never the history of the outbox.

use chrono::{DateTime, Utc};
use frameos_core::ExecutionStatus;
use sea_orm::sea_query::{Alias, Expr, ExprTrait, LockBehavior, LockType, Query};
use sea_orm::{
    ColumnTrait, ConnectionTrait, DbBackend, DbErr, EntityTrait, QueryFilter, QueryOrder,
    QuerySelect, Statement,
};

use crate::entity::outbox;

/// Up to `limit` unsent rows that may be published now, oldest first, locked on PostgreSQL
/// (rows locked by another relay are skipped). `cap` 0: every unsent row, as without fairness.
pub async fn next_batch<C: ConnectionTrait>(
    db: &C,
    cap: u32,
    limit: u64,
) -> Result<Vec<outbox::Model>, DbErr> {
    let mut select = outbox::Entity::find().filter(outbox::Column::SentAt.is_null());
    if cap > 0 {
        // The pick, then the lock by primary key: the lock never walks the outbox's history.
        let backend = db.get_database_backend();
        let rows = db
            .query_all_raw(Statement::from_string(backend, eligible(cap, limit)))
            .await?;
        let ids = rows
            .iter()
            .map(|row| row.try_get::<i64>("", "id"))
            .collect::<Result<Vec<_>, _>>()?;
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        select = select.filter(outbox::Column::Id.is_in(ids));
    }
    let mut select = select.order_by_asc(outbox::Column::Id).limit(limit);
    if db.get_database_backend() == DbBackend::Postgres {
        select = select.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
    }
    select.all(db).await
}

/// The executions hold a place from now until they end (a no-op for one that holds one
/// already). One statement for a whole published batch.
pub async fn mark_dispatched<C: ConnectionTrait>(
    db: &C,
    execution_ids: &[String],
    now: DateTime<Utc>,
) -> Result<(), DbErr> {
    if execution_ids.is_empty() {
        return Ok(());
    }
    let dispatched_at = Alias::new("dispatched_at");
    let update = Query::update()
        .table(Alias::new("executions"))
        .value(dispatched_at.clone(), now)
        .and_where(Expr::col(Alias::new("id")).is_in(execution_ids.iter().cloned()))
        .and_where(Expr::col(dispatched_at).is_null())
        .to_owned();
    db.execute(&update).await.map(drop)
}

/// The ids of the rows fair dispatch allows now, oldest first. Only our own constants and
/// numbers are in it; nothing from a request.
fn eligible(cap: u32, limit: u64) -> String {
    let live = format!(
        "('{}', '{}')",
        ExecutionStatus::Queued,
        ExecutionStatus::Running
    );
    format!(
        "WITH held AS ( \
           SELECT e.account_id, COUNT(*) AS n FROM executions e \
           WHERE e.dispatched_at IS NOT NULL AND e.status IN {live} AND e.parent_id IS NULL \
           GROUP BY e.account_id), \
         waiting AS ( \
           SELECT p.id, e.account_id, \
                  (e.id IS NULL OR e.dispatched_at IS NOT NULL OR e.parent_id IS NOT NULL) AS free \
           FROM outbox p LEFT JOIN executions e ON e.id = p.execution_id AND e.status IN {live} \
           WHERE p.sent_at IS NULL), \
         ranked AS ( \
           SELECT w.id, w.account_id, \
                  ROW_NUMBER() OVER (PARTITION BY w.account_id ORDER BY w.id) AS place \
           FROM waiting w \
           WHERE NOT w.free \
             AND w.account_id NOT IN (SELECT account_id FROM held WHERE n >= {cap})) \
         SELECT id FROM waiting WHERE free \
         UNION ALL \
         SELECT r.id FROM ranked r LEFT JOIN held h ON h.account_id = r.account_id \
         WHERE r.place <= {cap} - COALESCE(h.n, 0) \
         ORDER BY id LIMIT {limit}"
    )
}

#[cfg(test)]
mod tests;
