//! The FrameOS execution node: stateless (no database, only a package cache). It consumes jobs
//! with manual acks and prefetch = its concurrency, claims each execution from the control
//! plane, runs it in a locked-down container and streams logs, progress and the outcome back.

mod cache;
pub mod config;
mod in_flight;
mod worker;

use std::time::Duration;

pub use config::Config;
use frameos_proto::v1::node_service_client::NodeServiceClient;
use frameos_proto::v1::{HeartbeatRequest, RegisterNodeRequest};
use frameos_queue::Queue;
use frameos_sandbox::{Images, Sandbox};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tonic::codegen::InterceptedService;
use tonic::transport::{Channel, Endpoint};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the sandbox is unusable: {0}")]
    Sandbox(#[from] frameos_sandbox::Error),
    #[error("package cache: {0}")]
    Cache(#[from] cache::Error),
    #[error("bad control plane URL: {0}")]
    ControlPlaneUrl(#[source] tonic::transport::Error),
    #[error("no queue: set FRAMEOS_AMQP_URL")]
    NoQueue,
    #[error("FRAMEOS_NODE_TOKEN is not a valid header value")]
    NodeToken,
}

/// The gRPC connection to the control plane.
#[derive(Clone)]
pub struct ControlPlane {
    channel: Channel,
    token: NodeToken,
}

/// Adds the node token (`FRAMEOS_NODE_TOKEN`) to every call.
#[derive(Clone)]
pub struct NodeToken(Option<tonic::metadata::MetadataValue<tonic::metadata::Ascii>>);

impl tonic::service::Interceptor for NodeToken {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        if let Some(value) = &self.0 {
            request
                .metadata_mut()
                .insert("authorization", value.clone());
        }
        Ok(request)
    }
}

type Client = NodeServiceClient<InterceptedService<Channel, NodeToken>>;

impl ControlPlane {
    fn connect_lazy(url: &str, token: Option<&str>) -> Result<ControlPlane, Error> {
        let channel = Endpoint::from_shared(url.to_string())
            .map_err(Error::ControlPlaneUrl)?
            .connect_timeout(Duration::from_secs(5))
            .tcp_nodelay(true)
            .connect_lazy();
        let token = match token {
            Some(token) => Some(
                format!("Bearer {token}")
                    .parse()
                    .map_err(|_| Error::NodeToken)?,
            ),
            None => None,
        };
        Ok(ControlPlane {
            channel,
            token: NodeToken(token),
        })
    }

    pub fn nodes(&self) -> Client {
        NodeServiceClient::with_interceptor(self.channel.clone(), self.token.clone())
    }
}

/// What every job handler shares.
pub struct Shared {
    pub node_id: String,
    /// Random per process: restarted under the same node id, this is a new registration.
    pub instance_id: String,
    /// Executions handled by this process right now.
    pub(crate) in_flight: in_flight::InFlight,
    pub control_plane: ControlPlane,
    pub sandbox: Sandbox,
    cache: cache::Cache,
    pub log_limit_bytes: u64,
}

/// Where jobs come from: a broker to (re)connect to, or a queue shared in-process.
enum Source {
    Amqp {
        url: String,
        topology: frameos_queue::Topology,
    },
    Shared(Queue),
}

pub struct Node {
    shared: std::sync::Arc<Shared>,
    source: Source,
    concurrency: u16,
}

impl Node {
    /// A production node: Docker (images checked, stale containers removed) and RabbitMQ.
    pub async fn start(config: Config) -> Result<Node, Error> {
        let node_id = config.node_id();
        let sandbox =
            Sandbox::docker(config.docker_host.as_deref(), Images::default(), &node_id).await?;
        let url = config.amqp_url.clone().ok_or(Error::NoQueue)?;
        let source = Source::Amqp {
            url,
            topology: config.topology(),
        };
        Self::assemble(config, node_id, sandbox, source).await
    }

    /// A node on a given sandbox and a queue shared in-process (`frameos dev`, tests).
    pub async fn start_with(config: Config, sandbox: Sandbox, queue: Queue) -> Result<Node, Error> {
        let node_id = config.node_id();
        Self::assemble(config, node_id, sandbox, Source::Shared(queue)).await
    }

    async fn assemble(
        config: Config,
        node_id: String,
        sandbox: Sandbox,
        source: Source,
    ) -> Result<Node, Error> {
        sandbox.check_images().await?;
        let removed = sandbox.remove_stale().await?;
        if removed > 0 {
            tracing::warn!(removed, "removed containers left by an earlier crash");
        }
        let cache = cache::Cache::new(
            &config.cache_dir,
            config.store.build(),
            frameos_package::Limits::default(),
        )?;
        let shared = Shared {
            node_id,
            instance_id: uuid::Uuid::new_v4().simple().to_string(),
            in_flight: in_flight::InFlight::default(),
            control_plane: ControlPlane::connect_lazy(
                &config.control_plane_url,
                config.node_token.as_deref(),
            )?,
            sandbox,
            cache,
            log_limit_bytes: config.log_limit_bytes,
        };
        Ok(Node {
            shared: std::sync::Arc::new(shared),
            source,
            concurrency: config.concurrency(),
        })
    }

    pub fn node_id(&self) -> &str {
        &self.shared.node_id
    }

    /// Consumes until `shutdown`, then stops taking jobs and waits for the running ones.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), Error> {
        let heartbeat = tokio::spawn(heartbeat(
            self.shared.clone(),
            self.concurrency,
            shutdown.clone(),
        ));
        let mut running = JoinSet::new();
        let mut backoff = Duration::from_millis(100);
        'connect: while !shutdown.is_cancelled() {
            let queue = match &self.source {
                Source::Shared(queue) => Ok(queue.clone()),
                Source::Amqp { url, topology } => Queue::amqp(url, topology.clone()).await,
            };
            let consumer = match queue {
                Ok(queue) => queue.consume(&self.shared.node_id, self.concurrency).await,
                Err(e) => Err(e),
            };
            let mut consumer = match consumer {
                Ok(consumer) => consumer,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot consume jobs; retrying");
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        () = shutdown.cancelled() => break,
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            };
            backoff = Duration::from_millis(100);
            tracing::info!(node_id = %self.shared.node_id, concurrency = self.concurrency, "consuming jobs");
            loop {
                tokio::select! {
                    () = shutdown.cancelled() => break 'connect,
                    next = consumer.next() => match next {
                        Some(Ok(delivery)) => {
                            let shared = self.shared.clone();
                            running.spawn(async move { worker::handle(&shared, delivery).await });
                        }
                        Some(Err(e)) => {
                            tracing::warn!(error = %e, "job consumer failed; reconnecting");
                            continue 'connect;
                        }
                        None => continue 'connect,
                    },
                    Some(_) = running.join_next(), if !running.is_empty() => {}
                }
            }
        }
        tracing::info!(running = running.len(), "draining running executions");
        while running.join_next().await.is_some() {}
        let _ = heartbeat.await;
        tracing::info!("execution node stopped");
        Ok(())
    }
}

/// Registers (until the control plane answers) and then heart-beats.
async fn heartbeat(shared: std::sync::Arc<Shared>, concurrency: u16, shutdown: CancellationToken) {
    let mut interval = Duration::from_secs(1);
    loop {
        let registered = shared
            .control_plane
            .nodes()
            .register_node(RegisterNodeRequest {
                node_id: shared.node_id.clone(),
                concurrency: u32::from(concurrency),
                instance_id: shared.instance_id.clone(),
            })
            .await;
        match registered {
            Ok(reply) => {
                interval = Duration::from_millis(u64::from(
                    reply.into_inner().heartbeat_interval_ms.max(500),
                ));
                break;
            }
            Err(status) => {
                tracing::warn!(%status, "cannot register with the control plane; retrying")
            }
        }
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = shutdown.cancelled() => return,
        }
    }
    loop {
        tokio::select! {
            () = tokio::time::sleep(interval) => {}
            () = shutdown.cancelled() => return,
        }
        let beat = shared
            .control_plane
            .nodes()
            .heartbeat(HeartbeatRequest {
                node_id: shared.node_id.clone(),
                running_execution_ids: shared.in_flight.ids(),
                instance_id: shared.instance_id.clone(),
            })
            .await;
        if let Err(status) = beat {
            tracing::warn!(%status, "heartbeat failed");
        }
    }
}

/// Runs a production node until `shutdown`.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<(), Error> {
    Node::start(config).await?.run(shutdown).await
}
