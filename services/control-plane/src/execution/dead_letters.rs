//! The dead-letter consumer: jobs that exhausted their deliveries end here, and their
//! executions fail rather than silently vanish — unless a live claim still runs them (a
//! duplicate message gave up, not the execution; ADR 0008).

use chrono::Utc;
use frameos_core::ExecutionStatus;
use sea_orm::sea_query::Expr;
use sea_orm::{ColumnTrait, DatabaseConnection, DbErr, EntityTrait, QueryFilter, TransactionTrait};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::claims::{self, Liveness, Verdict};
use super::relay::{MIN_BACKOFF, QueueSource, pause};
use super::{Hub, system_log};
use crate::entity::execution;

const GAVE_UP: &str = "the platform could not run this execution after several attempts";

pub async fn run(
    db: DatabaseConnection,
    hub: Hub,
    billing: crate::billing::Billing,
    source: QueueSource,
    liveness: Liveness,
    shutdown: CancellationToken,
) {
    let mut backoff = MIN_BACKOFF;
    while !shutdown.is_cancelled() {
        let consumer = match source.connect().await {
            Ok(queue) => {
                queue
                    .consume_dead_letters("control-plane-dead-letters")
                    .await
            }
            Err(e) => Err(e),
        };
        let mut consumer = match consumer {
            Ok(consumer) => consumer,
            Err(e) => {
                tracing::warn!(error = %e, "dead-letter consumer cannot reach the queue; retrying");
                if !pause(&mut backoff, &shutdown).await {
                    break;
                }
                continue;
            }
        };
        backoff = MIN_BACKOFF;
        loop {
            let delivery = tokio::select! {
                next = consumer.next() => next,
                () = shutdown.cancelled() => return,
            };
            let delivery = match delivery {
                Some(Ok(delivery)) => delivery,
                Some(Err(e)) => {
                    tracing::warn!(error = %e, "dead-letter consumer failed; reconnecting");
                    break;
                }
                None => break,
            };
            let id = delivery.job.execution_id.clone();
            let reason = delivery.death_reason.clone().unwrap_or_default();
            // A CONSUMER span in the execution's trace: its failure and settlement end it.
            let span = delivery.process_span();
            let handled = async {
                match give_up(&db, &id, &reason, liveness).await {
                    Ok(failed) => {
                        if failed {
                            tracing::warn!(execution_id = %id, %reason, "execution dead-lettered and failed");
                            hub.metrics().ended(ExecutionStatus::Failed);
                            hub.ended(&id);
                            if let Err(e) = crate::billing::settle(&db, &billing, &id).await {
                                tracing::warn!(execution_id = %id, error = %e, "settlement after dead letter failed");
                            }
                            super::timings::observe_ended(&db, hub.metrics(), &id).await;
                            hub.touch(&id);
                        }
                        if let Err(e) = delivery.ack().await {
                            tracing::warn!(error = %e, "cannot ack a dead letter");
                            return false;
                        }
                        true
                    }
                    // Not acked: it stays in the dead-letter queue for the next try.
                    Err(e) => {
                        tracing::warn!(error = %e, execution_id = %id, "cannot fail a dead-lettered execution");
                        false
                    }
                }
            }
            .instrument(span)
            .await;
            if !handled {
                break;
            }
        }
        if !pause(&mut backoff, &shutdown).await {
            break;
        }
    }
}

/// Fails the execution of a dead letter if nobody runs it: it is queued, or its claim is dead.
/// `false` when it was left alone (ended already, unknown, or running under a live claim).
async fn give_up(
    db: &DatabaseConnection,
    id: &str,
    reason: &str,
    liveness: Liveness,
) -> Result<bool, DbErr> {
    let Some(row) = execution::Entity::find_by_id(id).one(db).await? else {
        return Ok(false);
    };
    match row.status {
        ExecutionStatus::Queued => {}
        ExecutionStatus::Running => {
            if claims::judge(db, &row, liveness).await? == Verdict::Live {
                tracing::info!(
                    execution_id = id,
                    attempt = row.attempts,
                    "dead letter of an execution running under a live claim; left to run"
                );
                return Ok(false);
            }
        }
        _ => return Ok(false),
    }
    let txn = db.begin().await?;
    // Guarded by what was judged: a claim or the reaper moving the row meanwhile wins.
    let failed = execution::Entity::update_many()
        .col_expr(
            execution::Column::Status,
            Expr::value(ExecutionStatus::Failed),
        )
        .col_expr(execution::Column::Error, Expr::value(GAVE_UP))
        .col_expr(execution::Column::FinishedAt, Expr::value(Utc::now()))
        .filter(execution::Column::Id.eq(id))
        .filter(execution::Column::Status.eq(row.status))
        .filter(execution::Column::Attempts.eq(row.attempts))
        .exec(&txn)
        .await?
        .rows_affected;
    if failed == 0 {
        return Ok(false);
    }
    let line = if reason.is_empty() {
        GAVE_UP.to_string()
    } else {
        format!("{GAVE_UP}: {reason}")
    };
    system_log::append(&txn, id, &line).await?;
    txn.commit().await?;
    Ok(true)
}
