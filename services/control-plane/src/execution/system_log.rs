//! Lines the platform itself writes into an execution's log (stream `system`, API.md §4.1):
//! why an attempt was lost, handed back or taken over. Nothing an agent prints lands here.

use chrono::Utc;
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ColumnTrait, ConnectionTrait, DbErr, EntityTrait, QueryFilter, Set};

use crate::entity::{execution, execution_log};

/// Longest system line stored; reasons come from nodes and errors, so they are cut.
const MAX_LINE: usize = 1_000;

/// Appends `line` to the execution's log as the next sequence number. Call it inside the
/// transaction that makes the change the line explains, so both commit or neither does.
pub async fn append<C: ConnectionTrait>(
    conn: &C,
    execution_id: &str,
    line: &str,
) -> Result<(), DbErr> {
    let line: String = line.chars().take(MAX_LINE).collect();
    let bytes = i64::try_from(line.len()).unwrap_or(i64::MAX);
    // Reserving the number locks the row, as node log batches do.
    execution::Entity::update_many()
        .col_expr(
            execution::Column::LogSeq,
            Expr::col(execution::Column::LogSeq).add(1),
        )
        .col_expr(
            execution::Column::LogBytes,
            Expr::col(execution::Column::LogBytes).add(bytes),
        )
        .filter(execution::Column::Id.eq(execution_id))
        .exec(conn)
        .await?;
    let seq = execution::Entity::find_by_id(execution_id)
        .one(conn)
        .await?
        .map(|row| row.log_seq)
        .ok_or_else(|| DbErr::RecordNotFound(format!("execution {execution_id}")))?;
    execution_log::Entity::insert(execution_log::ActiveModel {
        execution_id: Set(execution_id.to_string()),
        seq: Set(seq),
        stream: Set(frameos_core::LogStream::System),
        line: Set(line),
        ts: Set(Utc::now()),
    })
    .exec(conn)
    .await?;
    Ok(())
}
