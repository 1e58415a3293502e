//! What a running job hears of the node's stop. Once the node stops taking jobs, a job not yet
//! claimed goes back to the queue unstarted; once the grace runs out, a running execution is
//! handed back: its container stopped, a `system` line in its log saying why, its claim
//! released so another node runs it at once as the next attempt, and its message acked (a
//! hand-back is not a failure: no retry is counted).

use std::time::Duration;

use frameos_core::ErrorCode;
use frameos_core::ExecutionStatus;
use frameos_proto::ProtoEnum;
use frameos_proto::v1::{self, report_execution_request::Report};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::Shared;
use crate::worker::Settle;

/// Bounds each control plane call of a hand-back; the hand-back stage bounds the whole.
const CALL_WITHIN: Duration = Duration::from_secs(3);

/// The node's stop, as one job sees it.
#[derive(Clone)]
pub struct Stop {
    /// The node stopped taking jobs.
    pub no_new_jobs: CancellationToken,
    /// The grace ran out: running executions are handed back.
    pub hand_back: CancellationToken,
}

/// Hands back `attempt` of `execution_id`, whose container is already stopped. Returns how to
/// settle the message: ack once the control plane took the execution back (or it is no longer
/// this attempt's), requeue when the control plane cannot be told.
pub async fn hand_back(
    shared: &Shared,
    execution_id: &str,
    attempt: u32,
    reports: mpsc::Sender<v1::ReportExecutionRequest>,
    mut replies: tonic::Streaming<v1::ReportExecutionResponse>,
) -> Settle {
    let line = format!(
        "node {} is shutting down: attempt {attempt} was stopped and the execution handed back to the queue",
        shared.node_id
    );
    let report = v1::ReportExecutionRequest {
        execution_id: execution_id.to_string(),
        attempt,
        report: Some(Report::Logs(v1::LogBatch {
            lines: vec![crate::worker::log_line(
                frameos_sandbox::Stream::System,
                line,
            )],
        })),
    };
    let _ = reports.send(report).await;
    drop(reports);
    // The control plane applies a stream's reports in order and ends its replies after the
    // last one: once they end, the line is stored, and the release cannot overtake it.
    let _ = tokio::time::timeout(CALL_WITHIN, async {
        while let Ok(Some(_)) = replies.message().await {}
    })
    .await;

    let request = v1::ReleaseExecutionRequest {
        node_id: shared.node_id.clone(),
        execution_id: execution_id.to_string(),
        attempt,
        reason: "node shutting down; the grace ran out".to_string(),
    };
    let released = tokio::time::timeout(
        CALL_WITHIN,
        shared.control_plane.nodes().release_execution(request),
    )
    .await;
    match released {
        Ok(Ok(reply)) => {
            let status = ExecutionStatus::from_proto(reply.into_inner().status);
            let status = status.map_or_else(|e| e.message, |s| s.to_string());
            tracing::info!(execution_id, attempt, %status, "execution handed back");
            Settle::Ack
        }
        Ok(Err(status)) => {
            let error = frameos_proto::status::from_status(&status);
            match error.code {
                // Another attempt owns it, or it is gone: nothing of ours to hand back.
                ErrorCode::StaleAttempt | ErrorCode::Conflict | ErrorCode::NotFound => {
                    tracing::info!(execution_id, attempt, %error, "nothing to hand back");
                    Settle::Ack
                }
                _ => {
                    tracing::warn!(execution_id, attempt, %error, "hand-back refused; the queue redelivers the job");
                    Settle::Requeue
                }
            }
        }
        Err(_) => {
            tracing::warn!(
                execution_id,
                attempt,
                "the control plane did not answer the hand-back; the queue redelivers the job"
            );
            Settle::Requeue
        }
    }
}
