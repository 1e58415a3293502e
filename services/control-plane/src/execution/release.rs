//! Handing an execution back: a node that stops before a run ends gives up its attempt's claim,
//! and the execution is queued again at once — through a new outbox row committed with the
//! status change — so another node runs it as the next attempt. Fenced like every report.

use frameos_core::ExecutionStatus;
use frameos_proto::ProtoEnum;
use std::sync::Arc;

use frameos_core::{Error, ErrorCode};
use frameos_proto::v1;
use sea_orm::{DatabaseConnection, EntityTrait, TransactionTrait};
use tokio::sync::Notify;

use super::reports::refused;
use super::{Hub, requeue};
use crate::db;
use crate::entity::execution;

/// Longest reason kept for the log.
const MAX_REASON_CHARS: usize = 200;

pub async fn release(
    db: &DatabaseConnection,
    hub: &Hub,
    relay: &Arc<Notify>,
    request: v1::ReleaseExecutionRequest,
) -> Result<v1::ReleaseExecutionResponse, Error> {
    let execution_id = request.execution_id.as_str();
    let attempt = i32::try_from(request.attempt)
        .ok()
        .filter(|a| *a > 0)
        .ok_or_else(|| Error::new(ErrorCode::InvalidRequest, "attempt must be at least 1"))?;
    let reason: String = request.reason.chars().take(MAX_REASON_CHARS).collect();

    let txn = db.begin().await.map_err(db::error)?;
    if !requeue::to_queue(&txn, execution_id, attempt)
        .await
        .map_err(db::error)?
    {
        drop(txn);
        // Ended meanwhile under this very attempt (e.g. canceled): nothing to hand back.
        if let Ok(Some(row)) = execution::Entity::find_by_id(execution_id).one(db).await
            && row.attempts == attempt
            && row.status.is_terminal()
        {
            return Ok(v1::ReleaseExecutionResponse {
                status: row.status.to_proto(),
            });
        }
        return Err(refused(db, execution_id, attempt).await);
    }
    let row = execution::Entity::find_by_id(execution_id)
        .one(&txn)
        .await
        .map_err(db::error)?
        .ok_or_else(|| Error::internal("execution vanished"))?;
    // The node wrote its own `system` line before releasing.
    requeue::dispatch_again(&txn, &row, None)
        .await
        .map_err(db::error)?;
    txn.commit().await.map_err(db::error)?;
    relay.notify_one();
    hub.touch(execution_id);
    tracing::info!(
        execution_id,
        node_id = %request.node_id,
        attempt,
        %reason,
        "execution handed back; queued again"
    );
    Ok(v1::ReleaseExecutionResponse {
        status: ExecutionStatus::Queued.to_proto(),
    })
}
