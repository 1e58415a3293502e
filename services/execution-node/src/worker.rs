//! One job, start to finish: claim (which fences), fetch and verify the package, run it in the
//! sandbox while streaming logs and progress, record the outcome, and only then ack. A
//! duplicate of a job this node handles is acked at once; an attempt found stale stops its
//! container and acks; a platform failure hands the execution back, then retries the job.

use std::time::Duration;

use frameos_core::{ErrorCode, ExecutionStatus};
use frameos_proto::ProtoEnum;
use frameos_proto::v1::{self, report_execution_request::Report, report_execution_response::Reply};
use frameos_queue::Delivery;
use frameos_sandbox::{Event, Outcome, Runtime, Spec, Stream};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::Shared;
use crate::hand_back::{self, Stop};

/// Log lines sent in one report at most.
const BATCH_LINES: usize = 200;

/// Runs a job in the delivery's CONSUMER span (`process {queue}`), which continues the trace of
/// the REST call that queued it. The time the execution waited before it is a `queue_wait` span
/// under it, from the moment it was queued (the job's [`frameos_queue::QUEUED_AT_HEADER`]).
pub async fn handle(shared: &Shared, delivery: Delivery, stop: Stop) {
    let span = delivery.process_span();
    if let Some(queued_at) = queued_at(&delivery.job.headers) {
        frameos_telemetry::record_past_span(
            "queue_wait",
            &span,
            queued_at,
            std::time::SystemTime::now(),
            &[("execution_id", delivery.job.execution_id.clone())],
        );
    }
    settle(shared, delivery, &stop).instrument(span).await;
}

/// When the job's execution was queued, if its headers say.
fn queued_at(
    headers: &std::collections::BTreeMap<String, String>,
) -> Option<std::time::SystemTime> {
    let millis: u64 = headers.get(frameos_queue::QUEUED_AT_HEADER)?.parse().ok()?;
    std::time::UNIX_EPOCH.checked_add(Duration::from_millis(millis))
}

async fn settle(shared: &Shared, delivery: Delivery, stop: &Stop) {
    let execution_id = delivery.job.execution_id.clone();
    // The node stopped taking jobs before this one started: another node runs it.
    if stop.no_new_jobs.is_cancelled() {
        tracing::info!(%execution_id, "node stopping; job returned to the queue unstarted");
        if let Err(e) = delivery.requeue().await {
            tracing::warn!(%execution_id, error = %e, "requeue failed; the job will be redelivered");
        }
        return;
    }
    let Some(handling) = shared.in_flight.begin(&execution_id) else {
        // Claiming would take over our own running attempt: the run in progress settles it.
        tracing::info!(%execution_id, "duplicate delivery of an execution this node is handling; acked");
        if let Err(e) = delivery.ack().await {
            tracing::warn!(%execution_id, error = %e, "ack of a duplicate failed");
        }
        return;
    };
    let settle = run(shared, &delivery, stop).await;
    // Our own retry of this job may come back here: from now on it is a job like any other.
    drop(handling);
    match settle {
        Settle::Requeue => {
            if let Err(e) = delivery.requeue().await {
                tracing::warn!(%execution_id, error = %e, "requeue failed; the job will be redelivered");
            }
        }
        Settle::Ack => {
            if let Err(e) = delivery.ack().await {
                tracing::warn!(%execution_id, error = %e, "ack failed; the job will be redelivered");
            }
        }
        Settle::Retry(reason) => {
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
    /// Back to the queue as it was, no retry counted (the node stops and could not hand back).
    Requeue,
}

/// Why an attempt ended without a recorded outcome.
enum Failure {
    /// The platform failed here (package, sandbox): hand the execution back, retry the job.
    Platform(String),
    /// The report stream is gone (the control plane is unreachable): retry the job.
    Disconnected(String),
    /// Another attempt owns the execution now (ADR 0008): ack the job, never re-queue it.
    Stale(String),
    /// The node's grace ran out and the run was stopped: release it to another node (ADR 0009).
    ShuttingDown,
}

/// Whether the control plane refused this attempt as stale (`stale_attempt`), as opposed to
/// any other failure that shares its gRPC code.
fn is_stale(status: &tonic::Status) -> bool {
    frameos_proto::status::from_status(status).code == ErrorCode::StaleAttempt
}

fn stream_failure(status: &tonic::Status, what: &str) -> Failure {
    if is_stale(status) {
        Failure::Stale(status.message().to_string())
    } else {
        Failure::Disconnected(format!("{what}: {}", status.message()))
    }
}

async fn run(shared: &Shared, delivery: &Delivery, stop: &Stop) -> Settle {
    let execution_id = &delivery.job.execution_id;
    let claim = shared
        .control_plane
        .nodes()
        .claim_execution(v1::ClaimExecutionRequest {
            node_id: shared.node_id.clone(),
            execution_id: execution_id.clone(),
            instance_id: shared.instance_id.clone(),
        })
        .await;
    let claim = match claim {
        Ok(claim) => claim.into_inner(),
        Err(status) => return Settle::Retry(format!("claim failed: {}", status.message())),
    };
    if claim.decision != v1::ClaimDecision::Run as i32 {
        tracing::info!(%execution_id, "execution ended or runs elsewhere; skipping");
        return Settle::Ack;
    }
    let attempt = claim.attempt;
    // Once per run, to find the job's trace from its log lines.
    let trace_id = frameos_telemetry::trace_id(&tracing::Span::current()).unwrap_or_default();
    tracing::info!(%execution_id, attempt, trace_id, "running");

    // Open the report stream first: it is how a cancel reaches us, even while fetching.
    let (reports, outgoing) = mpsc::channel::<v1::ReportExecutionRequest>(32);
    let report = Reporter {
        execution_id: execution_id.clone(),
        attempt,
    };
    if reports.send(report.make(None)).await.is_err() {
        return Settle::Retry("report stream closed".into());
    }
    let replies = shared
        .control_plane
        .nodes()
        .report_execution(ReceiverStream::new(outgoing))
        .await;
    let mut replies = match replies {
        Ok(replies) => replies.into_inner(),
        Err(status) => {
            return Settle::Retry(format!("report stream refused: {}", status.message()));
        }
    };
    match execute(shared, claim, stop, &report, &reports, &mut replies).await {
        Ok(()) => Settle::Ack,
        Err(Failure::ShuttingDown) => {
            hand_back::hand_back(shared, execution_id, attempt, reports, replies).await
        }
        Err(Failure::Stale(why)) => {
            tracing::warn!(%execution_id, attempt, %why, "this attempt is stale; container stopped, job acked");
            Settle::Ack
        }
        Err(Failure::Disconnected(reason)) => Settle::Retry(reason),
        Err(Failure::Platform(reason)) => {
            hand_back(&report, &reports, &mut replies, &reason).await;
            Settle::Retry(reason)
        }
    }
}

/// Builds this attempt's reports.
struct Reporter {
    execution_id: String,
    attempt: u32,
}

impl Reporter {
    fn make(&self, body: Option<Report>) -> v1::ReportExecutionRequest {
        v1::ReportExecutionRequest {
            execution_id: self.execution_id.clone(),
            attempt: self.attempt,
            report: body,
        }
    }
}

/// Gives the execution back (it is queued again at once, with `reason` in its log) before the
/// job is retried, so whichever node gets the retry can claim it.
async fn hand_back(
    report: &Reporter,
    reports: &mpsc::Sender<v1::ReportExecutionRequest>,
    replies: &mut tonic::Streaming<v1::ReportExecutionResponse>,
    reason: &str,
) {
    let back = Report::HandBack(v1::HandBack {
        reason: reason.to_string(),
    });
    if reports.send(report.make(Some(back))).await.is_err() {
        tracing::warn!(execution_id = %report.execution_id, "cannot hand the execution back; its claim expires instead");
        return;
    }
    loop {
        match replies.message().await {
            Ok(Some(v1::ReportExecutionResponse {
                reply: Some(Reply::Recorded(_)),
            })) => {
                tracing::info!(execution_id = %report.execution_id, attempt = report.attempt, "execution handed back");
                return;
            }
            Ok(Some(_)) => {}
            Ok(None) | Err(_) => {
                tracing::warn!(execution_id = %report.execution_id, "hand-back not confirmed; its claim expires instead");
                return;
            }
        }
    }
}

/// Fetches, runs and reports one attempt until its outcome is recorded.
async fn execute(
    shared: &Shared,
    claim: v1::ClaimExecutionResponse,
    stop: &Stop,
    report: &Reporter,
    reports: &mpsc::Sender<v1::ReportExecutionRequest>,
    replies: &mut tonic::Streaming<v1::ReportExecutionResponse>,
) -> Result<(), Failure> {
    let execution_id = &report.execution_id;
    let attempt = report.attempt;
    let fetching = tracing::info_span!(
        "package_fetch",
        package.sha256 = %claim.package_sha256,
        package.size = claim.package_size,
        otel.status_code = tracing::field::Empty,
    );
    let package_dir = tokio::select! {
        fetched = shared.cache.get(&claim.package_key, &claim.package_sha256).instrument(fetching.clone()) => {
            fetched.map_err(|e| {
                fetching.record("otel.status_code", "error");
                Failure::Platform(e.to_string())
            })?
        }
        () = stop.hand_back.cancelled() => return Err(Failure::ShuttingDown),
    };
    drop(fetching);
    let resources = claim.resources.unwrap_or_default();
    let runtime = Runtime::from_proto(claim.runtime)
        .map_err(|e| Failure::Platform(format!("the claim's runtime: {}", e.message)))?;
    let spec = Spec {
        execution_id: execution_id.clone(),
        runtime,
        package_dir,
        entrypoint: claim.entrypoint.clone(),
        inputs: claim.inputs_json.into_bytes(),
        cpu_cores: resources.cpu_cores,
        memory_mb: resources.memory_mb,
        // The sandbox counts it from the moment the agent's code starts (`Spec::started`): the
        // package fetch and the container's creation above never eat into it (API.md §4.4).
        timeout: Duration::from_millis(resources.timeout_ms),
        log_limit_bytes: shared.log_limit_bytes,
        allow_domains: claim.allow_domains,
        // On the runner's stdin only, masked in everything the run reports (ADR 0045).
        secrets: frameos_sandbox::Secrets::new(
            claim.secrets.into_iter().map(|s| (s.name, s.value)),
        ),
        calls: Some(crate::calls::handler(crate::calls::Caller {
            control_plane: shared.control_plane.clone(),
            node_id: shared.node_id.clone(),
            execution_id: execution_id.clone(),
            attempt,
            waits: shared.waiting.run(),
        })),
        ..Spec::default()
    };
    let timeout_ms = resources.timeout_ms;
    let started = spec.started.clone();

    let cancel = CancellationToken::new();
    // Dropped unfinished (the node's last stop stage gave up on it): the container stops too.
    let _stop_container = cancel.clone().drop_guard();
    let (events, mut event_rx) = mpsc::channel::<Event>(256);
    let sandbox = shared.sandbox.clone();
    let running = tokio::spawn({
        let cancel = cancel.clone();
        async move { sandbox.run(spec, events, cancel).await }.in_current_span()
    });
    // Set once this attempt can no longer record anything; the agent is stopped then.
    let mut stopped: Option<Failure> = None;
    let mut user_canceled = false;
    let mut handing_back = false;
    // Whether the control plane heard that the agent's code runs (the end of the start phase).
    let mut started_sent = false;
    // Forward events until the sandbox closes its side (the run ended).
    loop {
        tokio::select! {
            _ = started.started(), if !started_sent => {
                announce_start(report, reports, &mut started_sent, &mut stopped, &cancel).await;
            }
            event = event_rx.recv() => match event {
                Some(event) => {
                    // Whatever the agent reported, it reported while running: the start first.
                    if started.at().is_some() {
                        announce_start(report, reports, &mut started_sent, &mut stopped, &cancel).await;
                    }
                    let mut next = Some(event);
                    while let Some(event) = next.take() {
                        let (body, rest) = batch(event, &mut event_rx);
                        if reports.send(report.make(Some(body))).await.is_err() && stopped.is_none() {
                            stopped = Some(Failure::Disconnected("report stream closed".into()));
                            cancel.cancel();
                        }
                        next = rest;
                    }
                }
                None => break,
            },
            reply = replies.message(), if stopped.is_none() => match reply {
                Ok(Some(v1::ReportExecutionResponse { reply: Some(Reply::Cancel(_)) })) => {
                    tracing::info!(%execution_id, "canceled by its user");
                    user_canceled = true;
                    cancel.cancel();
                }
                Ok(_) => {}
                Err(status) => {
                    // Fenced off (a newer attempt owns it) or the control plane went away:
                    // stop the agent; the outcome cannot be recorded by this attempt.
                    tracing::warn!(%execution_id, %status, "report stream ended; stopping");
                    stopped = Some(stream_failure(&status, "the report stream failed"));
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
        .map_err(|e| Failure::Platform(format!("sandbox task failed: {e}")));
    if let Some(failure) = stopped {
        return Err(failure);
    }
    let outcome = outcome?.map_err(|e| Failure::Platform(e.to_string()))?;
    // A run that ended on its own meanwhile, or that its user canceled, reports as usual.
    if handing_back && !user_canceled && matches!(outcome, Outcome::Canceled) {
        return Err(Failure::ShuttingDown);
    }
    // A run so short that it ended before the loop above heard of its start.
    if !started_sent && started.at().is_some() && !send_started(report, reports).await {
        return Err(Failure::Disconnected(
            "report stream closed before the outcome".into(),
        ));
    }
    tracing::info!(%execution_id, attempt, outcome = outcome.label(), "run ended");
    let body = Report::Outcome(to_proto(outcome, timeout_ms));
    if reports.send(report.make(Some(body))).await.is_err() {
        return Err(Failure::Disconnected(
            "report stream closed before the outcome".into(),
        ));
    }
    loop {
        match replies.message().await {
            Ok(Some(v1::ReportExecutionResponse {
                reply: Some(Reply::Recorded(recorded)),
            })) => {
                let status = ExecutionStatus::from_proto(recorded.status);
                let status = status.map_or("unknown", ExecutionStatus::as_str);
                tracing::info!(%execution_id, status, "outcome recorded");
                return Ok(());
            }
            Ok(Some(_)) => {}
            Ok(None) => {
                return Err(Failure::Disconnected(
                    "the outcome was not acknowledged".into(),
                ));
            }
            Err(status) => return Err(stream_failure(&status, "recording the outcome failed")),
        }
    }
}

/// Sends `Started` once; a closed report stream stops the run, as any failed report does.
async fn announce_start(
    report: &Reporter,
    reports: &mpsc::Sender<v1::ReportExecutionRequest>,
    sent: &mut bool,
    stopped: &mut Option<Failure>,
    cancel: &CancellationToken,
) {
    if *sent {
        return;
    }
    *sent = true;
    if !send_started(report, reports).await && stopped.is_none() {
        *stopped = Some(Failure::Disconnected("report stream closed".into()));
        cancel.cancel();
    }
}

/// Tells the control plane that the agent's code runs. It records the moment it hears of it on
/// its own clock, as it does the claim and the outcome (ADR 0025), so the node's clock, however
/// skewed, never enters the timings. False when the report stream is gone.
async fn send_started(
    report: &Reporter,
    reports: &mpsc::Sender<v1::ReportExecutionRequest>,
) -> bool {
    let started = Report::Started(v1::Started {});
    reports.send(report.make(Some(started))).await.is_ok()
}

/// The event plus any log lines already waiting behind it, as one report, and the event that
/// ended the batch (a progress update goes out on its own, keeping the agent's order).
fn batch(first: Event, rx: &mut mpsc::Receiver<Event>) -> (Report, Option<Event>) {
    match first {
        Event::Progress { fraction, message } => {
            (Report::Progress(v1::Progress { fraction, message }), None)
        }
        Event::Log { stream, line } => {
            let mut lines = vec![log_line(stream, line)];
            let mut rest = None;
            while lines.len() < BATCH_LINES {
                match rx.try_recv() {
                    Ok(Event::Log { stream, line }) => lines.push(log_line(stream, line)),
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

pub(crate) fn log_line(stream: Stream, line: String) -> v1::NodeLogLine {
    let now = chrono::Utc::now();
    v1::NodeLogLine {
        stream: stream.to_proto(),
        line,
        ts: Some(prost_types::Timestamp {
            seconds: now.timestamp(),
            nanos: i32::try_from(now.timestamp_subsec_nanos()).unwrap_or(0),
        }),
    }
}

fn to_proto(outcome: Outcome, timeout_ms: u64) -> v1::Outcome {
    let (status, output_json, error, exit_code) = match outcome {
        Outcome::Succeeded { output } => (
            ExecutionStatus::Succeeded,
            Some(output.to_string()),
            None,
            None,
        ),
        Outcome::Failed { error, exit_code } => (
            ExecutionStatus::Failed,
            None,
            Some(error),
            exit_code.and_then(|c| i32::try_from(c).ok()),
        ),
        Outcome::TimedOut => (
            ExecutionStatus::TimedOut,
            None,
            Some(format!("timed out after {timeout_ms} ms")),
            None,
        ),
        Outcome::OutOfMemory => (
            ExecutionStatus::Failed,
            None,
            Some("out of memory".to_string()),
            None,
        ),
        Outcome::Canceled => (ExecutionStatus::Canceled, None, None, None),
    };
    v1::Outcome {
        status: status.to_proto(),
        output_json,
        error,
        exit_code,
    }
}
