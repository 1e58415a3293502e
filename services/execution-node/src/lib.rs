//! The FrameOS execution node: stateless (no database, only a package cache). It consumes jobs
//! with manual acks and prefetch = its concurrency, claims each execution from the control
//! plane, runs it in a locked-down container and streams logs, progress and the outcome back.

mod cache;
mod calls;
pub mod config;
mod hand_back;
mod in_flight;
mod lending;
mod metrics;
mod worker;

use std::time::Duration;

pub use config::Config;
use frameos_lifecycle::{StopSequence, Supervisor};
use frameos_proto::v1::node_service_client::NodeServiceClient;
use frameos_proto::v1::{HeartbeatRequest, RegisterNodeRequest};
use frameos_queue::Queue;
use frameos_sandbox::Sandbox;
use frameos_telemetry::grpc::TracedClient;
use hand_back::Stop;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tonic::codegen::InterceptedService;
use tonic::transport::Channel;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("the sandbox is unusable: {0}")]
    Sandbox(#[from] frameos_sandbox::Error),
    #[error("package cache: {0}")]
    Cache(#[from] cache::Error),
    /// A bad control plane URL, or bad TLS files (`FRAMEOS_CONTROL_PLANE_CA`, …).
    #[error(transparent)]
    ControlPlane(#[from] frameos_tls::Error),
    #[error("no queue: set FRAMEOS_AMQP_URL")]
    NoQueue,
    #[error("FRAMEOS_NODE_TOKEN is not a valid header value")]
    NodeToken,
    #[error("{0}")]
    Metrics(#[from] frameos_metrics::Error),
    #[error("{0}")]
    Component(#[from] frameos_lifecycle::Failure),
}

/// The gRPC connection to the control plane.
#[derive(Clone)]
pub struct ControlPlane {
    /// Counts every call (`frameos_grpc_client_requests_total`).
    channel: frameos_metrics::GrpcService<Channel>,
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

type Client = NodeServiceClient<
    InterceptedService<TracedClient<frameos_metrics::GrpcService<Channel>>, NodeToken>,
>;

impl ControlPlane {
    fn connect_lazy(
        tls: &frameos_tls::ClientTlsConfig,
        url: &str,
        token: Option<&str>,
        calls: &frameos_metrics::GrpcLayer,
    ) -> Result<ControlPlane, Error> {
        let channel = tls
            .endpoint(url)?
            .connect_timeout(Duration::from_secs(5))
            .tcp_nodelay(true)
            .connect_lazy();
        let channel = calls.wrap(channel);
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
        // A CLIENT span per call, its trace context in the call's metadata.
        NodeServiceClient::with_interceptor(
            TracedClient::client(self.channel.clone()),
            self.token.clone(),
        )
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
    /// Runs waiting on a call: their slots are lent (ADR 0041).
    pub(crate) waiting: lending::Waiting,
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
    grace: Duration,
    registry: frameos_metrics::Registry,
    /// `FRAMEOS_METRICS_ADDR`, bound.
    metrics_listener: Option<tokio::net::TcpListener>,
}

impl Node {
    /// A production node: Docker (images checked, stale containers removed) and RabbitMQ.
    pub async fn start(config: Config) -> Result<Node, Error> {
        Self::start_with_registry(config, frameos_metrics::Registry::new()).await
    }

    /// As [`Node::start`], with the metrics in `registry` (shared by the services of one
    /// process).
    pub async fn start_with_registry(
        config: Config,
        registry: frameos_metrics::Registry,
    ) -> Result<Node, Error> {
        let node_id = config.node_id();
        let sandbox = config.sandbox(&node_id).await?;
        let url = config.amqp_url.clone().ok_or(Error::NoQueue)?;
        let source = Source::Amqp {
            url,
            topology: config.topology(),
        };
        Self::assemble(config, node_id, sandbox, source, registry).await
    }

    /// A node on a given sandbox and a queue shared in-process (`frameos dev`, tests).
    pub async fn start_with(config: Config, sandbox: Sandbox, queue: Queue) -> Result<Node, Error> {
        Self::start_sharing(config, sandbox, queue, frameos_metrics::Registry::new()).await
    }

    /// As [`Node::start_with`], with the metrics in `registry` (`frameos dev`).
    pub async fn start_sharing(
        config: Config,
        sandbox: Sandbox,
        queue: Queue,
        registry: frameos_metrics::Registry,
    ) -> Result<Node, Error> {
        let node_id = config.node_id();
        Self::assemble(config, node_id, sandbox, Source::Shared(queue), registry).await
    }

    async fn assemble(
        config: Config,
        node_id: String,
        sandbox: Sandbox,
        source: Source,
        registry: frameos_metrics::Registry,
    ) -> Result<Node, Error> {
        // Bad TLS files are reported before any container is touched.
        let control_plane = ControlPlane::connect_lazy(
            &config.tls,
            &config.control_plane_url,
            config.node_token.as_deref(),
            &frameos_metrics::GrpcLayer::client(&registry),
        )?;
        let sandbox_metrics = frameos_sandbox::SandboxMetrics::default();
        // The pool after the metrics, so that its Docker calls are counted too.
        let sandbox = sandbox
            .with_metrics(sandbox_metrics.clone())
            .with_pool(config.pool());
        let in_flight = in_flight::InFlight::default();
        let metrics = metrics::NodeMetrics::new(&registry, &sandbox_metrics, &in_flight);
        let metrics_listener = match config.metrics_addr {
            Some(addr) => Some(frameos_metrics::bind(addr).await?),
            None => None,
        };
        sandbox.check_images().await?;
        let removed = sandbox.remove_stale().await?;
        if removed > 0 {
            tracing::warn!(removed, "removed containers left by an earlier crash");
        }
        // After `remove_stale`, which would remove them.
        sandbox.warm_pool();
        let cache = cache::Cache::new(
            &config.cache_dir,
            config.store.build(),
            frameos_package::Limits::default(),
        )?
        .with_metrics(metrics);
        let shared = Shared {
            node_id,
            instance_id: uuid::Uuid::new_v4().simple().to_string(),
            waiting: lending::Waiting::new(),
            in_flight,
            control_plane,
            sandbox,
            cache,
            log_limit_bytes: config.log_limit_bytes,
        };
        Ok(Node {
            shared: std::sync::Arc::new(shared),
            source,
            concurrency: config.concurrency(),
            grace: config.shutdown_grace(),
            registry,
            metrics_listener,
        })
    }

    /// Where `/metrics` is served (`FRAMEOS_METRICS_ADDR`), if anywhere.
    pub fn metrics_addr(&self) -> Option<std::net::SocketAddr> {
        self.metrics_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
    }

    pub fn node_id(&self) -> &str {
        &self.shared.node_id
    }

    /// Consumes until `shutdown` (or a failed component), then stops in stages within
    /// `FRAMEOS_SHUTDOWN_GRACE_SECS`: stop taking jobs (those the broker had already sent go
    /// back unstarted) → running executions finish → when the grace is nearly over, those still
    /// running are handed back → heartbeats and the queue connection end.
    pub async fn run(mut self, shutdown: CancellationToken) -> Result<(), Error> {
        let supervisor = Supervisor::new(&shutdown);
        // Scrapes go on while executions drain; the server ends with the heartbeats.
        let metrics_stop = CancellationToken::new();
        if let Some(listener) = self.metrics_listener.take() {
            supervisor.component(
                "metrics server",
                frameos_metrics::serve(listener, self.registry.clone(), metrics_stop.clone()),
            );
        }
        // Heartbeats go on while executions drain: the node still owns them.
        let heartbeat_stop = CancellationToken::new();
        supervisor.component(
            "heartbeat",
            ended(heartbeat(
                self.shared.clone(),
                self.concurrency,
                heartbeat_stop.clone(),
            )),
        );
        let stop = Stop {
            no_new_jobs: supervisor.stopping(),
            hand_back: CancellationToken::new(),
        };
        let mut running = JoinSet::new();
        let consuming = self.consume(&stop, &mut running).await;

        let sequence = StopSequence::begin("execution node", self.grace);
        if let Some(consumer) = consuming.consumer {
            sequence
                .stage("stop accepting", STAGE_LIMIT, async {
                    match consumer.cancel().await {
                        Ok(returned) => tracing::info!(returned, "stopped taking jobs"),
                        Err(e) => tracing::warn!(error = %e, "canceling the consumer failed; the broker returns its jobs when the connection closes"),
                    }
                })
                .await;
        }
        // The hand-back must fit in the grace too, unless the grace is tiny.
        let drain_limit = sequence
            .left()
            .saturating_sub(HAND_BACK_LIMIT.min(self.grace / 2));
        tracing::info!(running = running.len(), "draining running executions");
        let drained = sequence
            .stage(
                "running executions finish",
                drain_limit,
                join_all(&mut running),
            )
            .await
            .is_some();
        if !drained {
            tracing::warn!(
                running = running.len(),
                "grace over; handing back the executions still running"
            );
            stop.hand_back.cancel();
            let handed_back = sequence
                .stage("hand back", HAND_BACK_LIMIT, join_all(&mut running))
                .await;
            if handed_back.is_none() {
                // Their containers stop with them; the broker redelivers their jobs.
                running.abort_all();
                sequence
                    .stage("remove containers", STAGE_LIMIT, async {
                        join_all(&mut running).await;
                        if let Err(e) = self.shared.sandbox.remove_stale().await {
                            tracing::warn!(error = %e, "removing this node's containers failed");
                        }
                    })
                    .await;
            }
        }
        sequence
            .stage(
                "warm sandbox pool removed",
                STAGE_LIMIT,
                self.shared.sandbox.shutdown(),
            )
            .await;
        heartbeat_stop.cancel();
        metrics_stop.cancel();
        if let Some(queue) = consuming.owned_queue {
            sequence
                .stage("queue connection closes", STAGE_LIMIT, queue.close())
                .await;
        }
        sequence
            .stage(
                "background tasks end",
                STAGE_LIMIT,
                supervisor.wait(STAGE_LIMIT),
            )
            .await;
        sequence.finish();
        match supervisor.failure() {
            Some(failure) => Err(Error::Component(failure)),
            None => Ok(()),
        }
    }

    /// Takes jobs, each in its own task in `running`, until the node stops taking them.
    async fn consume(&self, stop: &Stop, running: &mut JoinSet<()>) -> Consuming {
        let mut backoff = Duration::from_millis(100);
        'connect: while !stop.no_new_jobs.is_cancelled() {
            let queue = match &self.source {
                Source::Shared(queue) => Ok(queue.clone()),
                Source::Amqp { url, topology } => Queue::amqp(url, topology.clone()).await,
            };
            let owned_queue = match (&queue, &self.source) {
                (Ok(queue), Source::Amqp { .. }) => Some(queue.clone()),
                _ => None,
            };
            let current = queue.as_ref().ok().cloned();
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
                        () = stop.no_new_jobs.cancelled() => break,
                    }
                    backoff = (backoff * 2).min(Duration::from_secs(5));
                    continue;
                }
            };
            backoff = Duration::from_millis(100);
            tracing::info!(node_id = %self.shared.node_id, concurrency = self.concurrency, "consuming jobs");
            let (mut lender, mut lent) = lending::Lender::new(self.concurrency);
            let mut waiting = self.shared.waiting.subscribe();
            waiting.mark_changed();
            loop {
                tokio::select! {
                    () = stop.no_new_jobs.cancelled() => {
                        lender.stop().await;
                        // Forwarded by a lent consumer but never started: back, unstarted.
                        while let Ok(delivery) = lent.try_recv() {
                            if let Err(e) = delivery.requeue().await {
                                tracing::warn!(error = %e, "requeue failed; the job will be redelivered");
                            }
                        }
                        return Consuming { consumer: Some(consumer), owned_queue };
                    }
                    next = consumer.next() => match next {
                        Some(Ok(delivery)) => self.spawn_job(delivery, stop, running),
                        Some(Err(e)) => {
                            tracing::warn!(error = %e, "job consumer failed; reconnecting");
                            lender.stop().await;
                            continue 'connect;
                        }
                        None => {
                            lender.stop().await;
                            continue 'connect;
                        }
                    },
                    Some(delivery) = lent.recv() => self.spawn_job(delivery, stop, running),
                    Ok(()) = waiting.changed() => {
                        let now = *waiting.borrow_and_update();
                        if let Some(queue) = &current {
                            lender.balance(queue, &self.shared.node_id, now).await;
                        }
                    }
                    Some(joined) = running.join_next(), if !running.is_empty() => log_ended(joined),
                }
            }
        }
        Consuming {
            consumer: None,
            owned_queue: None,
        }
    }

    /// Runs one delivered job in its own task in `running`.
    fn spawn_job(&self, delivery: frameos_queue::Delivery, stop: &Stop, running: &mut JoinSet<()>) {
        let shared = self.shared.clone();
        let stop = stop.clone();
        running.spawn(async move { worker::handle(&shared, delivery, stop).await });
    }
}

/// Where the stop finds the node's consumption.
struct Consuming {
    consumer: Option<frameos_queue::Consumer>,
    /// The broker connection this node opened (never the in-process queue it shares).
    owned_queue: Option<Queue>,
}

/// Limit of each short stop stage.
const STAGE_LIMIT: Duration = Duration::from_secs(5);
/// Time kept at the end of the grace to hand back what still runs.
const HAND_BACK_LIMIT: Duration = Duration::from_secs(10);

async fn join_all(running: &mut JoinSet<()>) {
    while let Some(joined) = running.join_next().await {
        log_ended(joined);
    }
}

fn log_ended(joined: Result<(), tokio::task::JoinError>) {
    if let Err(e) = joined
        && e.is_panic()
    {
        // The job's message was dropped unsettled: the broker redelivers it.
        tracing::error!(error = %e, "a job handler panicked");
    }
}

/// A background loop that only ends when told to, as a component.
async fn ended(
    work: impl std::future::Future<Output = ()>,
) -> Result<(), std::convert::Infallible> {
    work.await;
    Ok(())
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
