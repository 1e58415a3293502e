//! Fair dispatch: which outbox rows the relay may publish now (ADR 0010).
//!
//! An account holds a place from the first publication of one of its executions until that
//! execution ends (a job in the queue, or claimed and running). It may hold `cap` places; its
//! other rows stay in the outbox, in order — the database is the backlog — and go out as places
//! free up. So one account flooding the queue never sits in front of another account's job:
//! the queue holds at most `cap` jobs of each account.
//!
//! A row needs no place when its execution holds one already (a re-dispatch of a lost job),
//! has ended (the node skips it), or is gone. The outbox row stays the unit of dispatch.
//!
//! With several replicas, the count and the pick are one statement, and rows another relay
//! has locked are skipped (`SKIP LOCKED`) but keep their place in the order: two relays pick
//! from the same prefix of each account's backlog, never a place each. A row committed as sent
//! between one relay's snapshot and its lock is re-checked under the lock and left out.

use sea_orm::{ConnectionTrait, DbBackend, DbErr, EntityTrait, Statement};

use crate::entity::{execution, outbox};

/// Up to `limit` unsent rows that may be published now, oldest first, locked on PostgreSQL
/// (rows locked by another relay are skipped). `cap` 0: every unsent row, as without fairness.
pub async fn next_batch<C: ConnectionTrait>(
    db: &C,
    cap: u32,
    limit: u64,
) -> Result<Vec<outbox::Model>, DbErr> {
    let backend = db.get_database_backend();
    outbox::Entity::find()
        .from_raw_sql(Statement::from_string(backend, sql(backend, cap, limit)))
        .all(db)
        .await
}

/// The statement holds only our own constants and numbers; nothing from a request.
fn sql(backend: DbBackend, cap: u32, limit: u64) -> String {
    let live = format!("('{}', '{}')", execution::QUEUED, execution::RUNNING);
    // The execution of `e` was published before: it holds a place until it ends.
    let holds = "EXISTS (SELECT 1 FROM outbox s \
                 WHERE s.execution_id = e.id AND s.sent_at IS NOT NULL)";
    let which = if cap == 0 {
        String::new()
    } else {
        format!(
            "AND (o.id IN ( \
                 SELECT f.id FROM outbox f LEFT JOIN executions e ON e.id = f.execution_id \
                 WHERE f.sent_at IS NULL \
                   AND (e.id IS NULL OR e.status NOT IN {live} OR {holds})) \
               OR o.id IN ( \
                 SELECT w.id FROM ( \
                   SELECT p.id, e.account_id, \
                          ROW_NUMBER() OVER (PARTITION BY e.account_id ORDER BY p.id) AS place \
                   FROM outbox p JOIN executions e ON e.id = p.execution_id \
                   WHERE p.sent_at IS NULL AND e.status IN {live} AND NOT {holds}) w \
                 LEFT JOIN ( \
                   SELECT e.account_id, COUNT(*) AS held FROM executions e \
                   WHERE e.status IN {live} AND {holds} \
                   GROUP BY e.account_id) h ON h.account_id = w.account_id \
                 WHERE w.place <= {cap} - COALESCE(h.held, 0)))"
        )
    };
    let lock = match backend {
        DbBackend::Postgres => "FOR UPDATE SKIP LOCKED",
        _ => "",
    };
    format!(
        "SELECT o.id, o.execution_id, o.priority, o.headers, o.created_at, o.sent_at \
         FROM outbox o WHERE o.sent_at IS NULL {which} ORDER BY o.id LIMIT {limit} {lock}"
    )
}

#[cfg(test)]
mod tests;
