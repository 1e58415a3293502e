//! The node's side of `ctx.call` (API.md §5.1, ADR 0040): each call of a running agent goes to
//! the control plane's `CallAgent`, and how it ended comes back as the reply the runner reads.
//! The container never talks to anyone; this process does, with the node's own credentials.

use std::time::Duration;

use frameos_core::ErrorCode;
use frameos_proto::ProtoEnum;
use frameos_proto::v1::{self, call_agent_response::Event, call_ended};
use frameos_sandbox::{Call, Calls, Reply};

use crate::ControlPlane;

/// The first wait before calling again after the control plane was unreachable.
const FIRST_RETRY: Duration = Duration::from_millis(200);
const MAX_RETRY: Duration = Duration::from_secs(5);

/// Whose calls these are: the attempt that runs the execution now (the control plane fences
/// on it, as on reports).
#[derive(Clone)]
pub struct Caller {
    pub control_plane: ControlPlane,
    pub node_id: String,
    pub execution_id: String,
    pub attempt: u32,
    /// While a call waits, the run's slot is lent (ADR 0041).
    pub waits: crate::lending::RunWaits,
}

/// The calls of one run, answered through the control plane.
pub fn handler(caller: Caller) -> Calls {
    Calls::new(move |call| {
        let caller = caller.clone();
        Box::pin(async move {
            let _waiting = caller.waits.begin();
            forward(&caller, call).await
        })
    })
}

/// Calls until the control plane says how the call ended. Calling again is safe (the child is
/// found by the call's number), so an unreachable or restarted control plane only delays the
/// reply; the run's own timeout bounds the wait, since a run that ends drops its calls.
async fn forward(caller: &Caller, call: Call) -> Reply {
    let request = v1::CallAgentRequest {
        node_id: caller.node_id.clone(),
        execution_id: caller.execution_id.clone(),
        attempt: caller.attempt,
        call_id: call.call_id,
        agent_slug: call.agent.clone(),
        inputs_json: call.inputs.to_string(),
        max_amount_minor: call.max_amount_minor,
    };
    let mut delay = FIRST_RETRY;
    loop {
        match once(caller, request.clone()).await {
            Ok(ended) => return reply(ended),
            Err(status) if retryable(&status) => {
                tracing::info!(execution_id = %caller.execution_id, call_id = call.call_id, %status, "call interrupted; calling again");
                tokio::time::sleep(delay).await;
                delay = (delay * 2).min(MAX_RETRY);
            }
            Err(status) => {
                let error = frameos_proto::status::from_status(&status);
                return Reply::error(error.code.as_str(), error.message);
            }
        }
    }
}

/// One `CallAgent` stream, to its end.
async fn once(
    caller: &Caller,
    request: v1::CallAgentRequest,
) -> Result<v1::CallEnded, tonic::Status> {
    let mut stream = caller
        .control_plane
        .nodes()
        .call_agent(request)
        .await?
        .into_inner();
    while let Some(message) = stream.message().await? {
        match message.event {
            Some(Event::Started(started)) => {
                tracing::info!(execution_id = %caller.execution_id, child_id = %started.child_id, "child execution started");
            }
            Some(Event::Ended(ended)) => return Ok(ended),
            None => {}
        }
    }
    Err(tonic::Status::unavailable(
        "the call's stream ended without its outcome",
    ))
}

/// Failures of the link, not of the call: the same call again finds the same child.
fn retryable(status: &tonic::Status) -> bool {
    matches!(
        status.code(),
        tonic::Code::Unavailable | tonic::Code::Unknown | tonic::Code::Cancelled
    ) || (status.code() == tonic::Code::Internal
        && frameos_proto::status::from_status(status).code != ErrorCode::Internal)
}

fn reply(ended: v1::CallEnded) -> Reply {
    match ended.result {
        Some(call_ended::Result::OutputJson(output)) => match serde_json::from_str(&output) {
            Ok(output) => Reply::Output(output),
            Err(e) => Reply::error(
                ErrorCode::Internal.as_str(),
                format!("the child's output is not JSON: {e}"),
            ),
        },
        Some(call_ended::Result::Error(error)) => Reply::Error {
            code: error.code,
            message: error.message,
            status: error
                .status
                .and_then(|s| frameos_core::ExecutionStatus::from_proto(s).ok())
                .map(|s| s.to_string()),
        },
        None => Reply::error(
            ErrorCode::Internal.as_str(),
            "the call ended without a result",
        ),
    }
}
