//! One job, start to finish: claim (which fences), fetch and verify the package, run it in the
//! sandbox while streaming logs and progress, record the outcome, and only then ack.

use std::time::Duration;

use frameos_proto::v1::{self, execution_report::Report, report_reply::Reply};
use frameos_queue::Delivery;
use frameos_sandbox::{Event, Outcome, Runtime, Spec};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::Shared;
use crate::hand_back::{self, Stop};

/// Log lines sent in one report at most.
const BATCH_LINES: usize = 200;

/// Runs a job in a span `execution` that continues the trace of the REST call that queued it.
pub async fn handle(shared: &Shared, delivery: Delivery, stop: Stop) {
    let span = tracing::info_span!("execution", execution_id = %delivery.job.execution_id);
    frameos_telemetry::set_parent(&span, &delivery.job.headers);
    settle(shared, delivery, &stop).instrument(span).await;
}

async fn settle(shared: &Shared, delivery: Delivery, stop: &Stop) {
    let execution_id = delivery.job.execution_id.clone();
    // The node stopped taking jobs before this one started: another node runs it.
    let outcome = if stop.no_new_jobs.is_cancelled() {
        tracing::info!(%execution_id, "node stopping; job returned to the queue unstarted");
        Ok(Settle::Requeue)
    } else {
        run(shared, &delivery, stop).await
    };
    match outcome {
        Ok(Settle::Requeue) => {
            if let Err(e) = delivery.requeue().await {
                tracing::warn!(%execution_id, error = %e, "requeue failed; the job will be redelivered");
            }
        }
        Ok(Settle::Ack) => {
            if let Err(e) = delivery.ack().await {
                tracing::warn!(%execution_id, error = %e, "ack failed; the job will be redelivered");
            }
        }
        Ok(Settle::Retry(reason)) | Err(reason) => {
            tracing::warn!(%execution_id, %reason, "platform failure; retrying the job");
            if let Err(e) = delivery.retry(&reason).await {
                tracing::warn!(%execution_id, error = %e, "retry failed; the job will be redelivered");
            }
        }
    }
}

pub(crate) enum Settle {
    Ack,
    Retry(String),
    /// Back to the queue as it was, no retry counted (not started, or handed back).
    Requeue,
}

async fn run(shared: &Shared, delivery: &Delivery, stop: &Stop) -> Result<Settle, String> {
    let execution_id = &delivery.job.execution_id;
    let claim = shared
        .control_plane
        .nodes()
        .claim_execution(v1::ClaimExecutionRequest {
            node_id: shared.node_id.clone(),
            execution_id: execution_id.clone(),
        })
        .await
        .map_err(|s| format!("claim failed: {}", s.message()))?
        .into_inner();
    if claim.decision != v1::ClaimDecision::Run as i32 {
        tracing::info!(%execution_id, "execution already ended; skipping");
        return Ok(Settle::Ack);
    }
    let attempt = claim.attempt;
    // Once per run, to find the job's trace from its log lines.
    let trace_id = frameos_telemetry::trace_id(&tracing::Span::current()).unwrap_or_default();
    tracing::info!(%execution_id, attempt, trace_id, "running");

    // Open the report stream first: it is how a cancel reaches us, even while fetching.
    let (reports, outgoing) = mpsc::channel::<v1::ExecutionReport>(32);
    let report = |body: Option<Report>| v1::ExecutionReport {
        execution_id: execution_id.clone(),
        attempt,
        report: body,
    };
    reports
        .send(report(None))
        .await
        .map_err(|_| "report stream closed".to_string())?;
    let mut replies = shared
        .control_plane
        .nodes()
        .report_execution(ReceiverStream::new(outgoing))
        .await
        .map_err(|s| format!("report stream refused: {}", s.message()))?
        .into_inner();

    let package_dir = tokio::select! {
        fetched = shared.cache.get(&claim.package_key, &claim.package_sha256) => {
            fetched.map_err(|e| e.to_string())?
        }
        () = stop.hand_back.cancelled() => {
            return Ok(hand_back::hand_back(shared, execution_id, attempt, reports, replies).await);
        }
    };
    let resources = claim.resources.unwrap_or_default();
    let spec = Spec {
        execution_id: execution_id.clone(),
        runtime: if claim.runtime == "python" {
            Runtime::Python
        } else {
            Runtime::Node
        },
        package_dir,
        entrypoint: claim.entrypoint.clone(),
        inputs: claim.inputs_json.into_bytes(),
        cpu_cores: resources.cpu_cores,
        memory_mb: resources.memory_mb,
        timeout: Duration::from_millis(resources.timeout_ms),
        log_limit_bytes: shared.log_limit_bytes,
        allow_domains: claim.allow_domains,
        ..Spec::default()
    };
    let timeout_ms = resources.timeout_ms;

    let cancel = CancellationToken::new();
    // Dropped unfinished (the node's last stop stage gave up on it): the container stops too.
    let _stop_container = cancel.clone().drop_guard();
    let (events, mut event_rx) = mpsc::channel::<Event>(256);
    let sandbox = shared.sandbox.clone();
    let running = tokio::spawn({
        let cancel = cancel.clone();
        async move { sandbox.run(spec, events, cancel).await }.in_current_span()
    });
    let mut stale = false;
    let mut user_canceled = false;
    let mut handing_back = false;
    // Forward events until the sandbox closes its side (the run ended).
    loop {
        tokio::select! {
            event = event_rx.recv() => match event {
                Some(event) => {
                    let mut next = Some(event);
                    while let Some(event) = next.take() {
                        let (body, rest) = batch(event, &mut event_rx);
                        if reports.send(report(Some(body))).await.is_err() {
                            cancel.cancel();
                        }
                        next = rest;
                    }
                }
                None => break,
            },
            reply = replies.message(), if !stale => match reply {
                Ok(Some(v1::ReportReply { reply: Some(Reply::Cancel(_)) })) => {
                    tracing::info!(%execution_id, "canceled by its user");
                    user_canceled = true;
                    cancel.cancel();
                }
                Ok(_) => {}
                Err(status) => {
                    // Fenced off (a newer attempt owns it) or the control plane went away:
                    // stop the agent; the outcome cannot be recorded by this attempt.
                    tracing::warn!(%execution_id, %status, "report stream ended; stopping");
                    stale = true;
                    cancel.cancel();
                }
            },
            () = stop.hand_back.cancelled(), if !handing_back => {
                tracing::info!(%execution_id, attempt, "grace over; stopping the run to hand it back");
                handing_back = true;
                cancel.cancel();
            }
        }
    }
    let outcome = running
        .await
        .map_err(|e| format!("sandbox task failed: {e}"))?
        .map_err(|e| e.to_string())?;
    if stale {
        return Ok(Settle::Retry(
            "the control plane refused this attempt's reports".into(),
        ));
    }
    // A run that ended on its own meanwhile, or that its user canceled, reports as usual.
    if handing_back && !user_canceled && matches!(outcome, Outcome::Canceled) {
        return Ok(hand_back::hand_back(shared, execution_id, attempt, reports, replies).await);
    }
    tracing::info!(%execution_id, attempt, outcome = outcome.label(), "run ended");
    reports
        .send(report(Some(Report::Outcome(to_proto(outcome, timeout_ms)))))
        .await
        .map_err(|_| "report stream closed before the outcome".to_string())?;
    drop(reports);
    loop {
        match replies.message().await {
            Ok(Some(v1::ReportReply {
                reply: Some(Reply::Recorded(recorded)),
            })) => {
                tracing::info!(%execution_id, status = %recorded.status, "outcome recorded");
                return Ok(Settle::Ack);
            }
            Ok(Some(_)) => {}
            Ok(None) => return Ok(Settle::Retry("the outcome was not acknowledged".into())),
            Err(status) => {
                return Ok(Settle::Retry(format!(
                    "recording the outcome failed: {}",
                    status.message()
                )));
            }
        }
    }
}

/// The event plus any log lines already waiting behind it, as one report, and the event that
/// ended the batch (a progress update goes out on its own, keeping the agent's order).
fn batch(first: Event, rx: &mut mpsc::Receiver<Event>) -> (Report, Option<Event>) {
    match first {
        Event::Progress { fraction, message } => {
            (Report::Progress(v1::Progress { fraction, message }), None)
        }
        Event::Log { stream, line } => {
            let mut lines = vec![log_line(stream.as_str(), line)];
            let mut rest = None;
            while lines.len() < BATCH_LINES {
                match rx.try_recv() {
                    Ok(Event::Log { stream, line }) => {
                        lines.push(log_line(stream.as_str(), line));
                    }
                    Ok(other) => {
                        rest = Some(other);
                        break;
                    }
                    Err(_) => break,
                }
            }
            (Report::Logs(v1::LogBatch { lines }), rest)
        }
    }
}

pub(crate) fn log_line(stream: &str, line: String) -> v1::NodeLogLine {
    let now = chrono::Utc::now();
    v1::NodeLogLine {
        stream: stream.to_string(),
        line,
        ts: Some(prost_types::Timestamp {
            seconds: now.timestamp(),
            nanos: i32::try_from(now.timestamp_subsec_nanos()).unwrap_or(0),
        }),
    }
}

fn to_proto(outcome: Outcome, timeout_ms: u64) -> v1::Outcome {
    let (status, output_json, error, exit_code) = match outcome {
        Outcome::Succeeded { output } => ("succeeded", Some(output.to_string()), None, None),
        Outcome::Failed { error, exit_code } => (
            "failed",
            None,
            Some(error),
            exit_code.and_then(|c| i32::try_from(c).ok()),
        ),
        Outcome::TimedOut => (
            "timed_out",
            None,
            Some(format!("timed out after {timeout_ms} ms")),
            None,
        ),
        Outcome::OutOfMemory => ("failed", None, Some("out of memory".to_string()), None),
        Outcome::Canceled => ("canceled", None, None, None),
    };
    v1::Outcome {
        status: status.to_string(),
        output_json,
        error,
        exit_code,
    }
}
