//! Another control plane replica on a mesh's database, behind a gateway of its own, and a node
//! speaking the report protocol by hand: what a client attached to another replica than the
//! node reports to sees (ADR 0028).

use std::net::SocketAddr;

use anyhow::{Context, ensure};
use frameos_proto::v1::{self, report_execution_request::Report, report_execution_response};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_stream::wrappers::ReceiverStream;
use tokio_util::sync::CancellationToken;

use crate::Mesh;
use crate::flows::EventStream;

/// A control plane replica and its gateway, stopped by [`Replica::stop`] (or with the test).
pub struct Replica {
    pub grpc_addr: SocketAddr,
    /// Its gateway.
    pub base_url: String,
    stop: CancellationToken,
    tasks: Vec<JoinHandle<()>>,
}

impl Mesh {
    /// Starts another replica of this mesh's control plane (its database, store and key; an
    /// address, and no metrics, of its own), with a chance to adjust its configuration, and a
    /// gateway in front of it.
    pub async fn replica(
        &self,
        adjust: impl FnOnce(&mut frameos_control_plane::Config),
    ) -> anyhow::Result<Replica> {
        let mut config = self.control_plane_config();
        config.grpc_addr = "127.0.0.1:0".parse()?;
        config.migrate = false;
        config.metrics_addr = None;
        config.grpc_health_addr = None;
        adjust(&mut config);
        let stop = CancellationToken::new();
        let server = frameos_control_plane::Server::bind(config)
            .await
            .context("replica start")?;
        let grpc_addr = server.local_addr();
        let token = stop.clone();
        let mut tasks = vec![tokio::spawn(async move {
            if let Err(e) = server.run(token).await {
                panic!("replica failed: {e}");
            }
        })];
        let mut gateway_config = frameos_gateway::Config::embedded();
        gateway_config.http_addr = "127.0.0.1:0".parse()?;
        gateway_config.control_plane_url = format!("http://{grpc_addr}");
        let gateway = frameos_gateway::Gateway::bind(gateway_config)
            .await
            .context("replica gateway start")?;
        let base_url = format!("http://{}", gateway.local_addr());
        let token = stop.clone();
        tasks.push(tokio::spawn(async move {
            if let Err(e) = gateway.run(token).await {
                panic!("replica gateway failed: {e}");
            }
        }));
        Ok(Replica {
            grpc_addr,
            base_url,
            stop,
            tasks,
        })
    }

    /// Claims `execution_id` as a node named `node_id` would, opens its report stream on this
    /// mesh's control plane and reports the agent code started.
    pub async fn run_by_hand(&self, node_id: &str, execution_id: &str) -> anyhow::Result<HandRun> {
        let mut node = self.node_client().await?;
        let claim = node
            .claim_execution(v1::ClaimExecutionRequest {
                node_id: node_id.into(),
                execution_id: execution_id.into(),
                instance_id: format!("{node_id}-1"),
            })
            .await?
            .into_inner();
        ensure!(
            claim.decision == v1::ClaimDecision::Run as i32,
            "not claimed: {claim:?}"
        );
        let (reports, outgoing) = mpsc::channel(64);
        let replies = node
            .report_execution(ReceiverStream::new(outgoing))
            .await?
            .into_inner();
        let run = HandRun {
            execution_id: execution_id.into(),
            attempt: claim.attempt,
            reports,
            replies,
        };
        run.send(None).await?;
        run.send(Some(Report::Started(v1::Started {}))).await?;
        Ok(run)
    }
}

impl Replica {
    /// Opens the `/events` of `execution_id` on this replica's gateway as `key`.
    pub async fn events(&self, key: &str, execution_id: &str) -> anyhow::Result<EventStream> {
        let url = format!("{}/v1/executions/{execution_id}/events", self.base_url);
        EventStream::open(reqwest::Client::new().get(url).bearer_auth(key)).await
    }

    /// Stops the gateway and the replica, and waits for both.
    pub async fn stop(self) -> anyhow::Result<()> {
        self.stop.cancel();
        for task in self.tasks {
            task.await.context("replica task")?;
        }
        Ok(())
    }
}

/// One attempt of an execution, reported by hand.
pub struct HandRun {
    execution_id: String,
    attempt: u32,
    reports: mpsc::Sender<v1::ReportExecutionRequest>,
    replies: tonic::Streaming<v1::ReportExecutionResponse>,
}

impl HandRun {
    async fn send(&self, report: Option<Report>) -> anyhow::Result<()> {
        self.reports
            .send(v1::ReportExecutionRequest {
                execution_id: self.execution_id.clone(),
                attempt: self.attempt,
                report,
            })
            .await
            .context("the report stream is closed")
    }

    /// Reports `lines` on stdout, in one batch.
    pub async fn log(&self, lines: &[&str]) -> anyhow::Result<()> {
        let lines = lines
            .iter()
            .map(|line| v1::NodeLogLine {
                stream: v1::LogStream::Stdout as i32,
                line: (*line).to_string(),
                ts: None,
            })
            .collect();
        self.send(Some(Report::Logs(v1::LogBatch { lines }))).await
    }

    /// Reports success with `output` (JSON text); returns the status the control plane
    /// recorded.
    pub async fn succeed(mut self, output: &str) -> anyhow::Result<v1::ExecutionStatus> {
        let outcome = v1::Outcome {
            status: v1::ExecutionStatus::Succeeded as i32,
            output_json: Some(output.into()),
            error: None,
            exit_code: None,
        };
        self.send(Some(Report::Outcome(outcome))).await?;
        let reply = self
            .replies
            .message()
            .await?
            .context("the report stream ended without a reply")?;
        match reply.reply {
            Some(report_execution_response::Reply::Recorded(recorded)) => Ok(recorded.status()),
            other => anyhow::bail!("not recorded: {other:?}"),
        }
    }
}
