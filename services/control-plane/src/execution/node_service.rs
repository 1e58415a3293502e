//! The `NodeService` gRPC endpoint: node registration and heartbeats, claiming an execution
//! (which hands out the attempt number that fences every later report), and the report stream.

use std::pin::Pin;
use std::sync::Arc;

use chrono::Utc;
use frameos_core::{Error, ErrorCode};
use frameos_proto::status::to_status;
use frameos_proto::v1::{self, node_service_server::NodeService};
use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, Set};
use tokio::sync::{Notify, mpsc};
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tonic::{Request, Response, Status, Streaming};

use super::{Hub, release, reports};
use crate::db;
use crate::entity::{agent_version, execution, node};

pub const HEARTBEAT_INTERVAL_MS: u32 = 5_000;

pub struct Nodes {
    db: DatabaseConnection,
    hub: Hub,
    billing: crate::billing::Billing,
    shutdown: CancellationToken,
    /// Owns the report stream tasks: the stop waits for them.
    tasks: TaskTracker,
    /// Wakes the outbox relay when a handed-back execution was queued again.
    relay: Arc<Notify>,
}

impl Nodes {
    pub fn new(
        db: DatabaseConnection,
        hub: Hub,
        billing: crate::billing::Billing,
        shutdown: CancellationToken,
        tasks: TaskTracker,
        relay: Arc<Notify>,
    ) -> Self {
        Nodes {
            db,
            hub,
            billing,
            shutdown,
            tasks,
            relay,
        }
    }

    async fn touch_node(&self, node_id: &str, concurrency: Option<u32>) -> Result<(), Error> {
        let now = Utc::now();
        let row = node::ActiveModel {
            id: Set(node_id.to_string()),
            concurrency: Set(concurrency.and_then(|c| i32::try_from(c).ok()).unwrap_or(0)),
            registered_at: Set(now),
            last_heartbeat_at: Set(now),
        };
        let mut on_conflict = OnConflict::column(node::Column::Id);
        on_conflict.update_column(node::Column::LastHeartbeatAt);
        if concurrency.is_some() {
            on_conflict.update_columns([node::Column::Concurrency, node::Column::RegisteredAt]);
        }
        node::Entity::insert(row)
            .on_conflict(on_conflict)
            .exec(&self.db)
            .await
            .map_err(db::error)?;
        Ok(())
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

/// Hands the execution to a node: a guarded transition to `running` that increments the
/// attempt number. An execution that already ended is skipped (its message is acked).
pub async fn claim(
    db: &DatabaseConnection,
    hub: &Hub,
    node_id: &str,
    execution_id: &str,
) -> Result<v1::ClaimExecutionResponse, Error> {
    let skip = v1::ClaimExecutionResponse {
        decision: v1::ClaimDecision::Skip as i32,
        ..Default::default()
    };
    let Some(row) = execution::Entity::find_by_id(execution_id)
        .one(db)
        .await
        .map_err(db::error)?
    else {
        // A message for an execution this database does not know: nothing to run.
        tracing::warn!(execution_id, "claim of an unknown execution");
        return Ok(skip);
    };
    if execution::is_terminal(&row.status) {
        return Ok(skip);
    }
    let attempt = row.attempts + 1;
    let now = Utc::now();
    let changed = execution::Entity::update_many()
        .col_expr(execution::Column::Attempts, Expr::value(attempt))
        .col_expr(execution::Column::Status, Expr::value(execution::RUNNING))
        .col_expr(execution::Column::NodeId, Expr::value(node_id))
        .col_expr(
            execution::Column::StartedAt,
            Expr::value(row.started_at.unwrap_or(now)),
        )
        .filter(execution::Column::Id.eq(execution_id))
        .filter(execution::Column::Attempts.eq(row.attempts))
        .filter(execution::Column::Status.is_in([execution::QUEUED, execution::RUNNING]))
        .exec(db)
        .await
        .map_err(db::error)?
        .rows_affected;
    if changed == 0 {
        return Err(Error::new(
            ErrorCode::Conflict,
            "the execution changed while it was being claimed; try again",
        ));
    }
    hub.touch(execution_id);
    let version = agent_version::Entity::find_by_id(&row.version_id)
        .one(db)
        .await
        .map_err(db::error)?
        .ok_or_else(|| Error::internal("the execution's version vanished"))?;
    let manifest = version.manifest_json()?;
    let resources = &manifest["resources"];
    let allow_domains = manifest["capabilities"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|c| c["type"] == "http_request")
        .flat_map(|c| c["allow_domains"].as_array().cloned().unwrap_or_default())
        .filter_map(|d| d.as_str().map(str::to_string))
        .collect();
    tracing::info!(execution_id, node_id, attempt, "execution claimed");
    Ok(v1::ClaimExecutionResponse {
        decision: v1::ClaimDecision::Run as i32,
        attempt: u32::try_from(attempt).unwrap_or(0),
        package_key: version.package_key.clone(),
        package_sha256: version.sha256.clone(),
        package_size: u64::try_from(version.size_bytes).unwrap_or(0),
        runtime: manifest["runtime"].as_str().unwrap_or_default().to_string(),
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
    })
}

type ReplyStream =
    Pin<Box<dyn tokio_stream::Stream<Item = Result<v1::ReportReply, Status>> + Send>>;

#[tonic::async_trait]
impl NodeService for Nodes {
    async fn register_node(
        &self,
        request: Request<v1::RegisterNodeRequest>,
    ) -> Result<Response<v1::RegisterNodeResponse>, Status> {
        let body = request.into_inner();
        let result = async {
            check_node_id(&body.node_id)?;
            self.touch_node(&body.node_id, Some(body.concurrency)).await?;
            tracing::info!(node_id = %body.node_id, concurrency = body.concurrency, "node registered");
            Ok::<_, Error>(v1::RegisterNodeResponse {
                heartbeat_interval_ms: HEARTBEAT_INTERVAL_MS,
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
            check_node_id(&body.node_id)?;
            self.touch_node(&body.node_id, None).await
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
            check_node_id(&body.node_id)?;
            claim(&self.db, &self.hub, &body.node_id, &body.execution_id).await
        }
        .await;
        result.map(Response::new).map_err(|e| to_status(&e))
    }

    type ReportExecutionStream = ReplyStream;

    async fn report_execution(
        &self,
        request: Request<Streaming<v1::ExecutionReport>>,
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
