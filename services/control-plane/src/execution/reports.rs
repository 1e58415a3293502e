//! One node's report stream for one execution attempt: logs, progress and the outcome, each
//! accepted only while the attempt is the current one (fencing). The control plane tells the
//! node to stop when the user cancels.

use chrono::{DateTime, Utc};
use frameos_core::{Error, ErrorCode, ExecutionStatus, LogStream};
use frameos_proto::ProtoEnum;
use frameos_proto::status::to_status;
use frameos_proto::v1::{self, report_execution_request::Report};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, Set, TransactionTrait};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::{Status, Streaming};
use tracing::Instrument;

use super::{Hub, MAX_STORED_LOG_BYTES, system_log};
use crate::db;
use crate::entity::{agent_version, execution, execution_log};

type Reply = Result<v1::ReportExecutionResponse, Status>;

/// Handles one report stream in a task owned by `tasks`.
pub fn spawn(
    tasks: &TaskTracker,
    db: DatabaseConnection,
    hub: Hub,
    billing: crate::billing::Billing,
    mut inbound: Streaming<v1::ReportExecutionRequest>,
    replies: mpsc::Sender<Reply>,
    shutdown: CancellationToken,
) {
    // In the call's SERVER span, so what the stream records (the settlement) is in its trace.
    tasks.spawn(async move {
        let first = match inbound.message().await {
            Ok(Some(first)) => first,
            Ok(None) => return,
            Err(status) => {
                tracing::debug!(%status, "report stream broke before its first message");
                return;
            }
        };
        let execution_id = first.execution_id.clone();
        let stream_attempt = first.attempt;
        let attempt = i32::try_from(stream_attempt).unwrap_or(i32::MAX);
        let mut subscription = hub.subscribe(&execution_id);
        // Covers changes made by another control plane replica, which the hub does not see.
        let mut recheck = tokio::time::interval(FENCE_RECHECK);
        recheck.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut cancel_sent = false;
        let mut next = Some(first);
        loop {
            if let Some(report) = next.take() {
                if report.execution_id != execution_id || report.attempt != stream_attempt {
                    let _ = replies
                        .send(Err(to_status(&Error::new(
                            ErrorCode::InvalidRequest,
                            "one report stream carries one execution attempt",
                        ))))
                        .await;
                    return;
                }
                let mark = subscription.mark();
                match handle(&db, &hub, &execution_id, attempt, report.report).await {
                    Ok(Some(recorded)) => {
                        // Capture or void now; if the rail is down, reconciliation finishes it.
                        if let Err(e) = crate::billing::settle(&db, &billing, &execution_id).await {
                            tracing::warn!(%execution_id, error = %e, "settlement failed; reconciliation will retry");
                        }
                        hub.ended(&execution_id);
                        // Its calls still running end with it; the reaper sweeps what fails here.
                        let ended = ExecutionStatus::from_proto(recorded.status).is_ok_and(|s| s.is_terminal());
                        if ended && let Err(e) = super::tree::cancel_children(&db, &hub, &billing, &execution_id).await {
                            tracing::warn!(%execution_id, error = %e, "canceling the children failed; the reaper retries");
                        }
                        let reply = v1::ReportExecutionResponse {
                            reply: Some(v1::report_execution_response::Reply::Recorded(recorded)),
                        };
                        let _ = replies.send(Ok(reply)).await;
                        return;
                    }
                    // The report's own touch needs no look at the fence; anyone else's does.
                    Ok(None) => {
                        if !cancel_sent
                            && subscription.others_changed(mark)
                            && !enforce_fence(&db, &execution_id, attempt, &replies, &mut cancel_sent).await
                        {
                            return;
                        }
                    }
                    Err(e) => {
                        if e.code == ErrorCode::StaleAttempt {
                            tracing::warn!(%execution_id, attempt, "report from a stale attempt refused");
                        }
                        let _ = replies.send(Err(to_status(&e))).await;
                        return;
                    }
                }
            }
            tokio::select! {
                message = inbound.message() => match message {
                    Ok(Some(report)) => next = Some(report),
                    Ok(None) | Err(_) => return,
                },
                () = changed(&mut subscription, &mut recheck), if !cancel_sent => {
                    if !enforce_fence(&db, &execution_id, attempt, &replies, &mut cancel_sent).await {
                        return;
                    }
                }
                () = shutdown.cancelled() => {
                    let _ = replies.send(Err(Status::unavailable("control plane shutting down"))).await;
                    return;
                }
            }
        }
    }.in_current_span());
}

/// How often a report stream checks its fence without being woken.
const FENCE_RECHECK: std::time::Duration = std::time::Duration::from_secs(5);

/// Waits for a change of the execution (or the periodic recheck).
async fn changed(subscription: &mut super::hub::Subscription, recheck: &mut tokio::time::Interval) {
    tokio::select! {
        () = subscription.changed() => {}
        _ = recheck.tick() => {}
    }
}

/// Tells the node to stop when the user canceled or its attempt was taken away. False: the
/// stream ends (the attempt is stale, or nobody listens any more).
async fn enforce_fence(
    db: &DatabaseConnection,
    execution_id: &str,
    attempt: i32,
    replies: &mpsc::Sender<Reply>,
    cancel_sent: &mut bool,
) -> bool {
    match fence(db, execution_id, attempt).await {
        Fence::Current => true,
        Fence::Canceled => {
            *cancel_sent = true;
            let reply = v1::ReportExecutionResponse {
                reply: Some(v1::report_execution_response::Reply::Cancel(v1::Cancel {})),
            };
            replies.send(Ok(reply)).await.is_ok()
        }
        // Taken back (reaper) or taken over: tell the node now, not at its next report.
        Fence::Stale(e) => {
            tracing::warn!(%execution_id, attempt, "stale attempt told to stop");
            let _ = replies.send(Err(to_status(&e))).await;
            false
        }
    }
}

/// Where a running attempt stands.
enum Fence {
    Current,
    Canceled,
    Stale(Error),
}

async fn fence(db: &DatabaseConnection, execution_id: &str, attempt: i32) -> Fence {
    match execution::Entity::find_by_id(execution_id).one(db).await {
        Ok(Some(row)) if row.status == ExecutionStatus::Canceled => Fence::Canceled,
        Ok(Some(row)) if row.attempts != attempt || row.status == ExecutionStatus::Queued => {
            Fence::Stale(stale(attempt, &row))
        }
        _ => Fence::Current,
    }
}

fn stale(attempt: i32, row: &execution::Model) -> Error {
    let message = if row.attempts != attempt {
        format!(
            "attempt {attempt} is stale; attempt {} owns this execution",
            row.attempts
        )
    } else {
        format!("attempt {attempt} was taken back; the execution is queued again")
    };
    Error::new(ErrorCode::StaleAttempt, message)
}

/// Applies one report; `Some` once the outcome is recorded.
async fn handle(
    db: &DatabaseConnection,
    hub: &Hub,
    execution_id: &str,
    attempt: i32,
    report: Option<Report>,
) -> Result<Option<v1::Recorded>, Error> {
    let result = match report {
        // The opening message only announces the attempt: check that it is current.
        None => match execution::Entity::find_by_id(execution_id).one(db).await {
            Ok(Some(row)) if row.attempts == attempt && row.status != ExecutionStatus::Queued => {
                Ok(None)
            }
            Ok(_) => Err(refused(db, execution_id, attempt).await),
            Err(e) => Err(db::error(e)),
        },
        Some(Report::Logs(batch)) => append_logs(db, execution_id, attempt, batch.lines)
            .await
            .map(|()| None),
        Some(Report::Progress(progress)) => record_progress(db, execution_id, attempt, progress)
            .await
            .map(|()| None),
        Some(Report::Outcome(outcome)) => record_outcome(db, hub, execution_id, attempt, outcome)
            .await
            .map(Some),
        Some(Report::HandBack(back)) => hand_back(db, execution_id, attempt, &back.reason)
            .await
            .map(Some),
        Some(Report::Started(v1::Started {})) => record_started(db, execution_id, attempt)
            .await
            .map(|()| None),
    };
    hub.touch(execution_id);
    result
}

/// The row of this execution while `attempt` owns it and it runs: the fence of every write.
pub(super) fn current_attempt(execution_id: &str, attempt: i32) -> sea_orm::Condition {
    sea_orm::Condition::all()
        .add(execution::Column::Id.eq(execution_id))
        .add(execution::Column::Attempts.eq(attempt))
        .add(execution::Column::Status.eq(ExecutionStatus::Running))
}

/// Explains a guarded update that changed nothing.
pub(super) async fn refused(db: &DatabaseConnection, execution_id: &str, attempt: i32) -> Error {
    match execution::Entity::find_by_id(execution_id).one(db).await {
        Ok(Some(row)) if row.attempts != attempt || row.status == ExecutionStatus::Queued => {
            stale(attempt, &row)
        }
        Ok(Some(row)) => Error::new(
            ErrorCode::Conflict,
            format!("the execution is {}", row.status),
        ),
        Ok(None) => Error::not_found(format!("execution {execution_id:?}")),
        Err(e) => db::error(e),
    }
}

async fn append_logs(
    db: &DatabaseConnection,
    execution_id: &str,
    attempt: i32,
    lines: Vec<v1::NodeLogLine>,
) -> Result<(), Error> {
    if lines.is_empty() {
        return Ok(());
    }
    // A whole batch or nothing: a line of an unknown stream is the node's mistake.
    let streams = streams_of(&lines)?;
    let count = i64::try_from(lines.len()).unwrap_or(i64::MAX);
    let bytes: i64 = lines.iter().map(|l| l.line.len() as i64).sum();
    let txn = db.begin().await.map_err(db::error)?;
    // Reserving the sequence numbers locks the row, so concurrent batches cannot interleave.
    let changed = execution::Entity::update_many()
        .col_expr(
            execution::Column::LogSeq,
            Expr::col(execution::Column::LogSeq).add(count),
        )
        .col_expr(
            execution::Column::LogBytes,
            Expr::col(execution::Column::LogBytes).add(bytes),
        )
        .filter(current_attempt(execution_id, attempt))
        .exec(&txn)
        .await
        .map_err(db::error)?
        .rows_affected;
    if changed == 0 {
        drop(txn);
        return Err(refused(db, execution_id, attempt).await);
    }
    let row = execution::Entity::find_by_id(execution_id)
        .one(&txn)
        .await
        .map_err(db::error)?
        .ok_or_else(|| Error::internal("execution vanished"))?;
    if row.log_bytes - bytes > MAX_STORED_LOG_BYTES {
        // The node caps logs; this only guards the database against a misbehaving node.
        txn.commit().await.map_err(db::error)?;
        return Ok(());
    }
    let first = row.log_seq - count + 1;
    let rows = lines
        .into_iter()
        .zip(streams)
        .zip(first..)
        .map(|((line, stream), seq)| {
            let ts = line
                .ts
                .and_then(|t| {
                    DateTime::<Utc>::from_timestamp(t.seconds, u32::try_from(t.nanos).unwrap_or(0))
                })
                .unwrap_or_else(Utc::now);
            execution_log::ActiveModel {
                execution_id: Set(execution_id.to_string()),
                seq: Set(seq),
                stream: Set(stream),
                line: Set(line.line),
                ts: Set(ts),
            }
        });
    execution_log::Entity::insert_many(rows)
        .exec(&txn)
        .await
        .map_err(db::error)?;
    txn.commit().await.map_err(db::error)?;
    Ok(())
}

/// Each line's stream, or the refusal of the first unspecified or unknown one.
fn streams_of(lines: &[v1::NodeLogLine]) -> Result<Vec<LogStream>, Error> {
    lines
        .iter()
        .map(|line| LogStream::from_proto(line.stream))
        .collect()
}

async fn record_progress(
    db: &DatabaseConnection,
    execution_id: &str,
    attempt: i32,
    progress: v1::Progress,
) -> Result<(), Error> {
    if !progress.fraction.is_finite() || !(0.0..=1.0).contains(&progress.fraction) {
        return Err(Error::new(
            ErrorCode::InvalidRequest,
            "progress must be between 0 and 1",
        ));
    }
    let message: String = progress.message.chars().take(500).collect();
    let changed = execution::Entity::update_many()
        .col_expr(execution::Column::Progress, Expr::value(progress.fraction))
        .col_expr(execution::Column::ProgressMessage, Expr::value(message))
        .filter(current_attempt(execution_id, attempt))
        .exec(db)
        .await
        .map_err(db::error)?
        .rows_affected;
    if changed == 0 {
        return Err(refused(db, execution_id, attempt).await);
    }
    Ok(())
}

/// The attempt's agent code started running: the moment of receipt, on this clock (ADR 0025).
/// Only the first report of an attempt counts; a repeated one changes nothing, and one that
/// comes after the execution ended (canceled meanwhile) is ignored: it never ran as far as the
/// execution is concerned.
async fn record_started(
    db: &DatabaseConnection,
    execution_id: &str,
    attempt: i32,
) -> Result<(), Error> {
    let changed = execution::Entity::update_many()
        .col_expr(execution::Column::RunningAt, Expr::value(Utc::now()))
        .filter(current_attempt(execution_id, attempt))
        .filter(execution::Column::RunningAt.is_null())
        .exec(db)
        .await
        .map_err(db::error)?
        .rows_affected;
    if changed == 0 {
        match execution::Entity::find_by_id(execution_id).one(db).await {
            Ok(Some(row))
                if row.attempts == attempt
                    && (row.running_at.is_some() || row.status.is_terminal()) => {}
            _ => return Err(refused(db, execution_id, attempt).await),
        }
    }
    tracing::debug!(execution_id, attempt, "agent code running");
    Ok(())
}

async fn record_outcome(
    db: &DatabaseConnection,
    hub: &Hub,
    execution_id: &str,
    attempt: i32,
    outcome: v1::Outcome,
) -> Result<v1::Recorded, Error> {
    let mut status = ExecutionStatus::from_proto(outcome.status)?;
    if !status.is_terminal() {
        return Err(Error::new(
            ErrorCode::InvalidRequest,
            format!("an outcome must be a terminal status, not {status}"),
        ));
    }
    let (mut output, mut error) = (outcome.output_json, outcome.error);
    if status == ExecutionStatus::Succeeded
        && let Err(reason) = check_output(db, execution_id, output.as_deref()).await?
    {
        status = ExecutionStatus::Failed;
        error = Some(format!(
            "the output does not match the agent's output schema: {reason}"
        ));
        output = None;
    }
    let before = execution::Entity::find_by_id(execution_id)
        .one(db)
        .await
        .map_err(db::error)?;
    let now = Utc::now();
    let changed = execution::Entity::update_many()
        .col_expr(execution::Column::Status, Expr::value(status))
        .col_expr(execution::Column::Output, Expr::value(output))
        .col_expr(execution::Column::Error, Expr::value(error))
        .col_expr(execution::Column::ExitCode, Expr::value(outcome.exit_code))
        .col_expr(execution::Column::FinishedAt, Expr::value(now))
        .filter(current_attempt(execution_id, attempt))
        .exec(db)
        .await
        .map_err(db::error)?
        .rows_affected;
    if changed == 0 {
        // Already ended for this very attempt (a canceled execution, or a repeated report
        // after a lost reply): the stored outcome stands and the node may ack.
        if let Ok(Some(row)) = execution::Entity::find_by_id(execution_id).one(db).await
            && row.attempts == attempt
            && row.status.is_terminal()
        {
            return Ok(v1::Recorded {
                status: row.status.to_proto(),
            });
        }
        return Err(refused(db, execution_id, attempt).await);
    }
    hub.metrics().ended(status);
    // From the row as read before the write: no more reads between the outcome and its
    // settlement. Its claim and start are this attempt's (its reports come in order).
    if let Some(mut row) = before {
        row.finished_at = Some(now);
        super::timings::Phases::of(&row).observe(hub.metrics());
    }
    tracing::info!(execution_id, attempt, %status, "execution finished");
    Ok(v1::Recorded {
        status: status.to_proto(),
    })
}

/// The attempt gives the execution back without an outcome (the node retries the job): it is
/// queued again with a `system` line saying why, and this attempt's later reports are refused.
async fn hand_back(
    db: &DatabaseConnection,
    execution_id: &str,
    attempt: i32,
    reason: &str,
) -> Result<v1::Recorded, Error> {
    let txn = db.begin().await.map_err(db::error)?;
    if !super::requeue::to_queue(&txn, execution_id, attempt)
        .await
        .map_err(db::error)?
    {
        drop(txn);
        return Err(refused(db, execution_id, attempt).await);
    }
    let line = format!("attempt {attempt} was handed back by its node: {reason}");
    system_log::append(&txn, execution_id, &line)
        .await
        .map_err(db::error)?;
    txn.commit().await.map_err(db::error)?;
    tracing::info!(execution_id, attempt, %reason, "attempt handed back; execution queued again");
    Ok(v1::Recorded {
        status: ExecutionStatus::Queued.to_proto(),
    })
}

/// `Ok(Err(reason))` when the output is not JSON or violates the version's `outputs` schema.
async fn check_output(
    db: &DatabaseConnection,
    execution_id: &str,
    output: Option<&str>,
) -> Result<Result<(), String>, Error> {
    let value: serde_json::Value = match output.map(serde_json::from_str).transpose() {
        Ok(value) => value.unwrap_or(serde_json::Value::Null),
        Err(e) => return Ok(Err(format!("not JSON: {e}"))),
    };
    let row = execution::Entity::find_by_id(execution_id)
        .one(db)
        .await
        .map_err(db::error)?
        .ok_or_else(|| Error::not_found(format!("execution {execution_id:?}")))?;
    let version = agent_version::Entity::find_by_id(&row.version_id)
        .one(db)
        .await
        .map_err(db::error)?
        .ok_or_else(|| Error::internal("the execution's version vanished"))?;
    let manifest = version.manifest_json()?;
    match manifest.get("outputs") {
        Some(schema) if !schema.is_null() => {
            Ok(frameos_package::manifest::validate_json(schema, &value))
        }
        _ => Ok(Ok(())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(stream: i32) -> v1::NodeLogLine {
        v1::NodeLogLine {
            stream,
            line: "x".to_string(),
            ts: None,
        }
    }

    #[test]
    fn only_the_known_streams_are_recorded() {
        let known: Vec<_> = LogStream::ALL.iter().map(|s| line(s.to_proto())).collect();
        assert_eq!(
            streams_of(&known),
            Ok(vec![
                LogStream::Stdout,
                LogStream::Stderr,
                LogStream::System
            ])
        );
        // Unspecified or unknown: the whole batch is refused, as the node's mistake.
        for bad in [0, 4, -1] {
            let batch = [line(LogStream::Stdout.to_proto()), line(bad)];
            let refused = streams_of(&batch).unwrap_err();
            assert_eq!(refused.code, ErrorCode::InvalidRequest, "{bad:?}");
            assert!(refused.message.contains("log stream"), "{refused:?}");
        }
    }
}
