//! Messaging spans with the OpenTelemetry conventions: PRODUCER for a publish (its context goes
//! on in the message's headers) and CONSUMER for the processing of a delivery.

use tracing::Span;
use tracing::field::Empty;

use crate::Job;

/// `messaging.system` of each backend.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum System {
    Rabbitmq,
    InProcess,
}

impl System {
    fn as_str(self) -> &'static str {
        match self {
            System::Rabbitmq => "rabbitmq",
            System::InProcess => "frameos_in_process",
        }
    }
}

/// The span of publishing `job` to `queue`: a child of the trace context in the job's headers
/// when they carry one (the request that created the execution), else of the current span.
pub(crate) fn publish(system: System, queue: &str, job: &Job) -> Span {
    let span = tracing::info_span!(
        "amqp_publish",
        otel.name = format!("publish {queue}"),
        otel.kind = "producer",
        otel.status_code = Empty,
        messaging.system = system.as_str(),
        messaging.operation.type = "publish",
        messaging.operation.name = "publish",
        messaging.destination.name = queue,
        messaging.message.id = %job.execution_id,
        execution_id = %job.execution_id,
        attempt = job.attempt,
    );
    frameos_telemetry::set_parent(&span, &job.headers);
    span
}

/// `job` with the trace context of `span` in its headers, for its consumer.
pub(crate) fn carried(job: &Job, span: &Span) -> Job {
    let mut job = job.clone();
    let context = frameos_telemetry::inject(span);
    if !context.is_empty() {
        job.headers.retain(|name, _| name != "tracestate");
        job.headers.extend(context);
    }
    job
}

/// The span of processing a delivery of `job` from `queue`: a child of its publish span.
pub(crate) fn process(system: System, queue: &str, job: &Job, redelivered: bool) -> Span {
    let span = tracing::info_span!(
        "amqp_process",
        otel.name = format!("process {queue}"),
        otel.kind = "consumer",
        otel.status_code = Empty,
        messaging.system = system.as_str(),
        messaging.operation.type = "process",
        messaging.operation.name = "process",
        messaging.destination.name = queue,
        messaging.message.id = %job.execution_id,
        execution_id = %job.execution_id,
        attempt = job.attempt,
        redelivered,
    );
    frameos_telemetry::set_parent(&span, &job.headers);
    span
}
