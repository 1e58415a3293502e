//! The `NodeService` gRPC endpoint: node registration and heartbeats (which renew the claims of
//! what a node still runs), claiming an execution (which hands out the attempt number that
//! fences every later report), and the report stream.

use std::pin::Pin;
use std::sync::Arc;

use frameos_core::{Error, ErrorCode, Runtime, VersionStatus};
use frameos_proto::ProtoEnum;
use frameos_proto::status::to_status;
use frameos_proto::v1::{self, node_service_server::NodeService};
use sea_orm::{DatabaseConnection, EntityTrait};
use tokio::sync::{Notify, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::{Request, Response, Status, Streaming};
use tracing::Instrument;

use super::claims::{self, Claimant, Decision, Liveness};
use super::{Hub, calls, release, reports};
use crate::db;
use crate::entity::agent_version;

pub struct Nodes {
    db: DatabaseConnection,
    hub: Hub,
    billing: crate::billing::Billing,
    liveness: Liveness,
    shutdown: CancellationToken,
    /// Owns the report stream tasks: the stop waits for them.
    tasks: TaskTracker,
    /// Wakes the outbox relay when a handed-back execution was queued again.
    relay: Arc<Notify>,
    /// Opens the secrets of a claimed run's agent (ADR 0045); `None`: FRAMEOS_SECRETS_KEY unset.
    keyring: Option<crate::secrets::Keyring>,
}

impl Nodes {
    pub fn new(
        db: DatabaseConnection,
        hub: Hub,
        billing: crate::billing::Billing,
        liveness: Liveness,
        shutdown: CancellationToken,
        tasks: TaskTracker,
        relay: Arc<Notify>,
    ) -> Self {
        Nodes {
            db,
            hub,
            billing,
            liveness,
            shutdown,
            tasks,
            relay,
            keyring: None,
        }
    }

    /// Claims carry the opened secrets of the run's agent (API.md §5.3).
    pub fn with_secrets(mut self, keyring: Option<crate::secrets::Keyring>) -> Self {
        self.keyring = keyring;
        self
    }
}

fn check_node_id(node_id: &str) -> Result<(), Error> {
    if node_id.is_empty() || node_id.len() > 128 {
        return Err(Error::new(
            ErrorCode::InvalidRequest,
            "node_id must be 1 to 128 characters",
        ));
    }
    Ok(())
}

fn claimant<'a>(node_id: &'a str, instance_id: &'a str) -> Result<Claimant<'a>, Error> {
    check_node_id(node_id)?;
    if instance_id.len() > 64 {
        return Err(Error::new(
            ErrorCode::InvalidRequest,
            "instance_id must be at most 64 characters",
        ));
    }
    Ok(Claimant {
        node_id,
        instance_id,
    })
}

/// Hands the execution to a node (see [`claims::claim`]) with what it needs to run it.
pub async fn claim(
    db: &DatabaseConnection,
    hub: &Hub,
    billing: &crate::billing::Billing,
    claimant: Claimant<'_>,
    execution_id: &str,
    liveness: Liveness,
    keyring: Option<&crate::secrets::Keyring>,
) -> Result<v1::ClaimExecutionResponse, Error> {
    let (row, attempt) = match claims::claim(db, hub, claimant, execution_id, liveness).await? {
        Decision::Run { row, attempt } => (row, attempt),
        Decision::Skip => {
            return Ok(v1::ClaimExecutionResponse {
                decision: v1::ClaimDecision::Skip as i32,
                ..Default::default()
            });
        }
    };
    let version = agent_version::Entity::find_by_id(&row.version_id)
        .one(db)
        .await
        .map_err(db::error)?
        .ok_or_else(|| Error::internal("the execution's version vanished"))?;
    if version.status == VersionStatus::Banned {
        // Queued while a ban was being committed: it never runs (ADR 0044).
        let why = "canceled: the agent was banned";
        super::tree::end_canceled(db, hub, billing, &row.id, Some(why)).await?;
        tracing::info!(execution_id = %row.id, "claim of a banned agent's execution; canceled");
        return Ok(v1::ClaimExecutionResponse {
            decision: v1::ClaimDecision::Skip as i32,
            ..Default::default()
        });
    }
    let manifest = version.manifest_json()?;
    let resources = &manifest["resources"];
    // Validated at upload: a stored manifest without a known runtime is our bug.
    let runtime: Runtime = manifest["runtime"]
        .as_str()
        .unwrap_or_default()
        .parse()
        .map_err(|e: Error| {
            Error::internal(format!("stored manifest of {}: {}", version.id, e.message))
        })?;
    let allow_domains = manifest["capabilities"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["type"] == "http_request")
        .flat_map(|c| c["allow_domains"].as_array().cloned().unwrap_or_default())
        .filter_map(|d| d.as_str().map(str::to_string))
        .collect();
    // Its own agent's only: a `ctx.call` child is an execution of the called agent.
    let secrets = crate::secrets::store::for_run(db, keyring, &row.agent_id).await?;
    Ok(v1::ClaimExecutionResponse {
        decision: v1::ClaimDecision::Run as i32,
        attempt: u32::try_from(attempt).unwrap_or(0),
        package_key: version.package_key.clone(),
        package_sha256: version.sha256.clone(),
        package_size: u64::try_from(version.size_bytes).unwrap_or(0),
        runtime: runtime.to_proto(),
        entrypoint: manifest["entrypoint"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
        resources: Some(v1::Resources {
            cpu_cores: resources["cpu_cores"].as_f64().unwrap_or(1.0),
            memory_mb: resources["memory_mb"].as_u64().unwrap_or(256),
            timeout_ms: resources["timeout_ms"].as_u64().unwrap_or(60_000),
        }),
        inputs_json: row.inputs,
        allow_domains,
        secrets,
    })
}

type ReplyStream =
    Pin<Box<dyn tokio_stream::Stream<Item = Result<v1::ReportExecutionResponse, Status>> + Send>>;
type CallStream =
    Pin<Box<dyn tokio_stream::Stream<Item = Result<v1::CallAgentResponse, Status>> + Send>>;

/// A call's refusal is the agent's outcome (an `ended` with the error); a failure of the
/// platform or a stale attempt is the node's to handle (a gRPC error).
fn refusal(error: &Error) -> Option<v1::CallEnded> {
    if matches!(
        error.code,
        ErrorCode::Internal | ErrorCode::Unavailable | ErrorCode::StaleAttempt
    ) {
        return None;
    }
    Some(v1::CallEnded {
        child_id: None,
        result: Some(v1::call_ended::Result::Error(v1::CallError {
            code: error.code.as_str().to_string(),
            message: error.message.clone(),
            status: None,
        })),
    })
}

#[tonic::async_trait]
impl NodeService for Nodes {
    async fn register_node(
        &self,
        request: Request<v1::RegisterNodeRequest>,
    ) -> Result<Response<v1::RegisterNodeResponse>, Status> {
        let body = request.into_inner();
        let result = async {
            let node = claimant(&body.node_id, &body.instance_id)?;
            claims::register(&self.db, node, Some(body.concurrency)).await?;
            tracing::info!(node_id = %body.node_id, instance_id = %body.instance_id, concurrency = body.concurrency, "node registered");
            let interval = self.liveness.heartbeat_interval().as_millis();
            Ok::<_, Error>(v1::RegisterNodeResponse {
                heartbeat_interval_ms: u32::try_from(interval).unwrap_or(u32::MAX),
            })
        }
        .await;
        result.map(Response::new).map_err(|e| to_status(&e))
    }

    async fn heartbeat(
        &self,
        request: Request<v1::HeartbeatRequest>,
    ) -> Result<Response<v1::HeartbeatResponse>, Status> {
        let body = request.into_inner();
        let result = async {
            let node = claimant(&body.node_id, &body.instance_id)?;
            claims::register(&self.db, node, None).await?;
            claims::renew(&self.db, node, &body.running_execution_ids).await
        }
        .await;
        result
            .map(|()| Response::new(v1::HeartbeatResponse {}))
            .map_err(|e| to_status(&e))
    }

    async fn claim_execution(
        &self,
        request: Request<v1::ClaimExecutionRequest>,
    ) -> Result<Response<v1::ClaimExecutionResponse>, Status> {
        let body = request.into_inner();
        let result = async {
            let node = claimant(&body.node_id, &body.instance_id)?;
            claim(
                &self.db,
                &self.hub,
                &self.billing,
                node,
                &body.execution_id,
                self.liveness,
                self.keyring.as_ref(),
            )
            .await
        }
        .await;
        result.map(Response::new).map_err(|e| to_status(&e))
    }

    type ReportExecutionStream = ReplyStream;

    async fn report_execution(
        &self,
        request: Request<Streaming<v1::ReportExecutionRequest>>,
    ) -> Result<Response<Self::ReportExecutionStream>, Status> {
        let inbound = request.into_inner();
        let (sender, receiver) = mpsc::channel(8);
        reports::spawn(
            &self.tasks,
            self.db.clone(),
            self.hub.clone(),
            self.billing.clone(),
            inbound,
            sender,
            self.shutdown.clone(),
        );
        Ok(Response::new(Box::pin(ReceiverStream::new(receiver))))
    }

    type CallAgentStream = CallStream;

    async fn call_agent(
        &self,
        request: Request<v1::CallAgentRequest>,
    ) -> Result<Response<Self::CallAgentStream>, Status> {
        let body = request.into_inner();
        check_node_id(&body.node_id).map_err(|e| to_status(&e))?;
        let (sender, receiver) = mpsc::channel(2);
        let (db, hub, billing) = (self.db.clone(), self.hub.clone(), self.billing.clone());
        let (relay, shutdown) = (self.relay.clone(), self.shutdown.clone());
        // Owned by the server's tracker: a stop ends the wait (the node calls again elsewhere).
        self.tasks.spawn(
            async move {
                let ended = match calls::start(&db, &billing, &body).await {
                    Ok(child_id) => {
                        relay.notify_one();
                        // The parent's live log shows the call's `system` line.
                        hub.touch(&body.execution_id);
                        let started = v1::CallAgentResponse {
                            event: Some(v1::call_agent_response::Event::Started(
                                v1::CallStarted {
                                    child_id: child_id.clone(),
                                },
                            )),
                        };
                        if sender.send(Ok(started)).await.is_err() {
                            return;
                        }
                        tokio::select! {
                            ended = calls::wait(&db, &hub, &billing, &child_id) => ended,
                            () = shutdown.cancelled() => Err(Error::unavailable("the control plane is stopping; call again")),
                            () = sender.closed() => return,
                        }
                    }
                    Err(e) => refusal(&e).ok_or(e),
                };
                let message = ended
                    .map(|ended| v1::CallAgentResponse {
                        event: Some(v1::call_agent_response::Event::Ended(ended)),
                    })
                    .map_err(|e| to_status(&e));
                let _ = sender.send(message).await;
            }
            .in_current_span(),
        );
        Ok(Response::new(Box::pin(ReceiverStream::new(receiver))))
    }

    async fn release_execution(
        &self,
        request: Request<v1::ReleaseExecutionRequest>,
    ) -> Result<Response<v1::ReleaseExecutionResponse>, Status> {
        let body = request.into_inner();
        let result = async {
            check_node_id(&body.node_id)?;
            release::release(&self.db, &self.hub, &self.relay, body).await
        }
        .await;
        result.map(Response::new).map_err(|e| to_status(&e))
    }
}
