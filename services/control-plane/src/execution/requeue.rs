//! Putting a running execution back in the queue, the one transition behind a node's hand-back
//! (a platform failure, or a node stopping), a released claim and the reaper's recovery of a
//! dead claim. Guarded by the attempt fence: only the attempt that runs it can be given back,
//! and that attempt's later reports are refused (its status is no longer `running`).

use chrono::Utc;
use frameos_core::ExecutionStatus;
use sea_orm::sea_query::Expr;
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, QueryOrder,
    Set,
};

use super::reports::current_attempt;
use super::system_log;
use crate::entity::{execution, execution_claim, outbox};

/// `running` under `attempt` → `queued`, its node, progress, claim and timings cleared. False when the
/// execution is not running under that attempt (then nothing changed).
pub async fn to_queue<C: ConnectionTrait>(
    conn: &C,
    execution_id: &str,
    attempt: i32,
) -> Result<bool, DbErr> {
    let changed = execution::Entity::update_many()
        .col_expr(
            execution::Column::Status,
            Expr::value(ExecutionStatus::Queued),
        )
        .col_expr(
            execution::Column::NodeId,
            Expr::value(Option::<String>::None),
        )
        .col_expr(
            execution::Column::Progress,
            Expr::value(Option::<f64>::None),
        )
        .col_expr(
            execution::Column::ProgressMessage,
            Expr::value(Option::<String>::None),
        )
        // Queued again: no timings until the next attempt is claimed (ADR 0025).
        .col_expr(
            execution::Column::ClaimedAt,
            Expr::value(Option::<chrono::DateTime<Utc>>::None),
        )
        .col_expr(
            execution::Column::RunningAt,
            Expr::value(Option::<chrono::DateTime<Utc>>::None),
        )
        .filter(current_attempt(execution_id, attempt))
        .exec(conn)
        .await?
        .rows_affected;
    if changed == 0 {
        return Ok(false);
    }
    execution_claim::Entity::delete_many()
        .filter(execution_claim::Column::ExecutionId.eq(execution_id))
        .exec(conn)
        .await?;
    Ok(true)
}

/// A new outbox row for the execution (with the trace context of its first one, so the new
/// message continues the trace of the request that queued it), and the `system` line saying
/// why when there is one, in the caller's transaction.
pub async fn dispatch_again<C: ConnectionTrait>(
    conn: &C,
    row: &execution::Model,
    line: Option<&str>,
) -> Result<(), DbErr> {
    let headers = outbox::Entity::find()
        .filter(outbox::Column::ExecutionId.eq(&row.id))
        .order_by_asc(outbox::Column::Id)
        .one(conn)
        .await?
        .map_or_else(|| "{}".to_string(), |first| first.headers);
    outbox::ActiveModel {
        execution_id: Set(row.id.clone()),
        priority: Set(row.priority),
        headers: Set(headers),
        created_at: Set(Utc::now()),
        sent_at: Set(None),
        ..Default::default()
    }
    .insert(conn)
    .await?;
    match line {
        Some(line) => system_log::append(conn, &row.id, line).await,
        None => Ok(()),
    }
}
