//! Binding and serving the control plane's gRPC API until the shutdown token fires.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use frameos_lifecycle::{StopSequence, Supervisor};
use frameos_proto::v1::account_service_server::AccountServiceServer;
use frameos_proto::v1::agent_service_server::AgentServiceServer;
use frameos_proto::v1::api_key_service_server::ApiKeyServiceServer;
use frameos_proto::v1::billing_service_server::BillingServiceServer;
use frameos_proto::v1::execution_service_server::ExecutionServiceServer;
use frameos_proto::v1::node_service_server::NodeServiceServer;
use frameos_proto::v1::schedule_service_server::ScheduleServiceServer;
use frameos_proto::v1::secret_service_server::SecretServiceServer;
use frameos_proto::v1::webhook_service_server::WebhookServiceServer;
use sea_orm::DatabaseConnection;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tokio_util::sync::CancellationToken;

use crate::accounts::{self, Accounts};
use crate::agents::Agents;
use crate::agents::versions::Publisher;
use crate::billing::Billing;
use crate::execution::relay::{self, QueueSource};
use crate::execution::{
    Executions, Hub, Liveness, Nodes, StreamTokens, dead_letters, live, reaper,
};
use crate::metrics::Metrics;
use crate::{Config, db};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot open the database: {0}")]
    Database(#[source] sea_orm::DbErr),
    #[error("migrations failed: {0}")]
    Migrate(#[source] sea_orm::DbErr),
    #[error("bootstrap of the admin account failed: {0}")]
    Bootstrap(#[source] frameos_core::Error),
    #[error("billing cannot start: {0}")]
    Billing(#[source] frameos_core::Error),
    #[error("stream tokens: {0}")]
    StreamTokens(#[source] frameos_core::Error),
    #[error("agent secrets: {0}")]
    Secrets(#[source] frameos_core::Error),
    #[error("the package store is unusable: {0}")]
    Store(#[source] frameos_blobstore::Error),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("reflection service: {0}")]
    Reflection(#[source] tonic_reflection::server::Error),
    #[error("grpc server failed: {0}")]
    Serve(#[source] tonic::transport::Error),
    #[error("{0}")]
    Metrics(#[from] frameos_metrics::Error),
    #[error("{0}")]
    Component(#[from] frameos_lifecycle::Failure),
    #[error(transparent)]
    Tls(#[from] frameos_tls::Error),
}

/// A control plane that is bound and ready to serve.
pub struct Server {
    config: Config,
    db: DatabaseConnection,
    listener: TcpListener,
    generated_admin_key: Option<String>,
    shared_queue: Option<frameos_queue::Queue>,
    billing: Billing,
    node_token: String,
    /// Issues and checks the stream tokens of `/events` (ADR 0023).
    stream_tokens: StreamTokens,
    /// TLS of the gRPC server (`FRAMEOS_TLS_*`); None: plain HTTP/2.
    tls: Option<frameos_tls::ServerTls>,
    /// `FRAMEOS_GRPC_HEALTH_ADDR`: health only, plain HTTP/2, for probes.
    health_listener: Option<TcpListener>,
    /// Fires before `shutdown` when readiness must go first (`frameos dev`).
    not_ready: Option<CancellationToken>,
    registry: frameos_metrics::Registry,
    metrics: Metrics,
    /// `FRAMEOS_METRICS_ADDR`, bound.
    metrics_listener: Option<TcpListener>,
}

impl Server {
    /// Connects to the database (migrating if asked), checks the package store, makes sure an
    /// admin exists and binds the listener. Nothing is served yet.
    pub async fn bind(config: Config) -> Result<Server, Error> {
        Self::bind_with(config, None, frameos_metrics::Registry::new()).await
    }

    /// As [`Server::bind`], with the metrics in `registry`: shared, one scrape shows every
    /// service of the process (`frameos dev`).
    pub async fn bind_with_registry(
        config: Config,
        registry: frameos_metrics::Registry,
    ) -> Result<Server, Error> {
        Self::bind_with(config, None, registry).await
    }

    /// As [`Server::bind`], serving on a listener the caller bound: a restart in the same
    /// process keeps its socket instead of releasing the port and binding it again.
    pub async fn bind_to(config: Config, listener: TcpListener) -> Result<Server, Error> {
        Self::bind_with(config, Some(listener), frameos_metrics::Registry::new()).await
    }

    async fn bind_with(
        config: Config,
        listener: Option<TcpListener>,
        registry: frameos_metrics::Registry,
    ) -> Result<Server, Error> {
        // Bad TLS files fail the start before anything else is touched.
        let tls = config.tls.load()?;
        let health_listener = match config.grpc_health_addr {
            Some(addr) => Some(
                TcpListener::bind(addr)
                    .await
                    .map_err(|source| Error::Bind { addr, source })?,
            ),
            None => None,
        };
        let db = db::connect(&config.database_url)
            .await
            .map_err(Error::Database)?;
        if config.migrate {
            db::migrate(&db).await.map_err(Error::Migrate)?;
        }
        config.store.build().check().await.map_err(Error::Store)?;
        let generated_admin_key =
            accounts::bootstrap_admin(&db, config.bootstrap_admin_key.as_deref())
                .await
                .map_err(Error::Bootstrap)?;
        let metrics = Metrics::new(&registry);
        let billing = Billing::start(&db, &config.billing)
            .await
            .map_err(Error::Billing)?
            .with_metrics(metrics.clone());
        let node_token = match &config.node_token {
            Some(token) if !token.is_empty() => token.clone(),
            _ => {
                tracing::warn!(
                    "no FRAMEOS_NODE_TOKEN: generated one; only in-process nodes can connect"
                );
                crate::accounts::keys::generate()
            }
        };
        let stream_tokens = stream_tokens(&config)?;
        match &config.secrets.secrets_key {
            Some(keyring) => tracing::info!(
                active_key = keyring.active_id(),
                keys = keyring.ids().count(),
                "agent secrets sealed with FRAMEOS_SECRETS_KEY"
            ),
            None => tracing::warn!(
                "no FRAMEOS_SECRETS_KEY: agent secrets cannot be written, nor runs of agents that have some started"
            ),
        }
        let listener = match listener {
            Some(listener) => listener,
            None => TcpListener::bind(config.grpc_addr)
                .await
                .map_err(|source| Error::Bind {
                    addr: config.grpc_addr,
                    source,
                })?,
        };
        let metrics_listener = match config.metrics_addr {
            Some(addr) => Some(frameos_metrics::bind(addr).await?),
            None => None,
        };
        Ok(Server {
            config,
            db,
            listener,
            generated_admin_key,
            shared_queue: None,
            billing,
            node_token,
            stream_tokens,
            tls,
            health_listener,
            not_ready: None,
            registry,
            metrics,
            metrics_listener,
        })
    }

    /// Uses `queue` (an in-process queue shared with an in-process node) instead of
    /// connecting to `FRAMEOS_AMQP_URL`.
    pub fn with_queue(mut self, queue: frameos_queue::Queue) -> Self {
        self.shared_queue = Some(queue);
        self
    }

    /// Turns readiness off (NOT_SERVING) when `token` fires, even while the server still
    /// serves: `frameos dev` keeps it serving until its node has drained.
    pub fn not_ready_on(mut self, token: CancellationToken) -> Self {
        self.not_ready = Some(token);
        self
    }

    /// Starts with test-only faults (feature `fault-injection`, integration tests only).
    #[cfg(feature = "fault-injection")]
    pub fn with_faults(mut self, faults: crate::faults::Faults) -> Self {
        self.billing.set_faults(faults);
        self
    }

    fn queue_source(&self) -> QueueSource {
        match (&self.shared_queue, &self.config.amqp_url) {
            (Some(queue), _) => QueueSource::Shared(queue.clone()),
            (None, Some(url)) => QueueSource::Amqp {
                url: url.clone(),
                topology: self.config.topology(),
            },
            (None, None) => {
                tracing::warn!("no FRAMEOS_AMQP_URL: jobs stay in this process's in-memory queue");
                QueueSource::Shared(frameos_queue::Queue::in_process(self.config.topology()))
            }
        }
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or(self.config.grpc_addr)
    }

    /// Where the plain health-only listener listens, if one was asked for.
    pub fn health_addr(&self) -> Option<SocketAddr> {
        self.health_listener
            .as_ref()
            .and_then(|listener| listener.local_addr().ok())
    }

    /// Where `/metrics` is served (`FRAMEOS_METRICS_ADDR`), if anywhere.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_listener
            .as_ref()
            .and_then(|l| l.local_addr().ok())
    }

    /// The token execution nodes must present (`FRAMEOS_NODE_TOKEN`, or the generated one).
    pub fn node_token(&self) -> &str {
        &self.node_token
    }

    /// The key of an admin account created at this start, if one was. Show it to the operator
    /// once; it is not stored anywhere in clear.
    pub fn take_generated_admin_key(&mut self) -> Option<String> {
        self.generated_admin_key.take()
    }

    /// Serves until `shutdown` fires (or a background task fails), then stops in stages within
    /// `FRAMEOS_SHUTDOWN_GRACE_SECS`: readiness flips to NOT_SERVING → the outbox relay
    /// publishes what was committed → the gRPC server closes (report and watch streams end) →
    /// the background tasks end.
    pub async fn run(mut self, shutdown: CancellationToken) -> Result<(), Error> {
        let supervisor = Supervisor::new(&shutdown);
        let stopping = supervisor.stopping();
        // Each part stops in its stage, on its own token.
        let unready = stopping.child_token();
        let relay_stop = CancellationToken::new();
        let serve_stop = CancellationToken::new();

        let limits = &self.config.limits;
        let publisher = Publisher {
            db: self.db.clone(),
            store: self.config.store.build(),
            limits: limits.package_limits(),
            maxima: limits.platform_maxima(),
            review: crate::agents::review_mode::ReviewPolicy::new(self.config.review.clone()),
        };
        // A package travels in one message; allow it plus room for the envelope.
        let max_message = usize::try_from(limits.max_package_bytes)
            .unwrap_or(usize::MAX)
            .saturating_add(64 * 1024);

        // Both reflection versions: grpcurl speaks v1, many stock clients (grpcio's Python
        // reflection client among them) still only v1alpha.
        let reflection = || {
            tonic_reflection::server::Builder::configure()
                .register_encoded_file_descriptor_set(frameos_proto::FILE_DESCRIPTOR_SET)
                .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
        };
        let reflection_v1alpha = reflection().build_v1alpha().map_err(Error::Reflection)?;
        let reflection = reflection().build_v1().map_err(Error::Reflection)?;
        let (health_reporter, health_service) = tonic_health::server::health_reporter();
        crate::health::serving(&health_reporter).await;
        if let Some(not_ready) = self.not_ready.clone() {
            let unready = unready.clone();
            supervisor.tracker().spawn(async move {
                tokio::select! {
                    () = not_ready.cancelled() => unready.cancel(),
                    () = unready.cancelled() => {}
                }
            });
        }
        let mut health_task = supervisor.tracker().spawn(crate::health::follow(
            self.db.clone(),
            health_reporter,
            unready.clone(),
        ));

        let outbox = std::sync::Arc::new(tokio::sync::Notify::new());
        let hub = live::between_replicas(
            Hub::new(outbox.clone(), self.metrics.clone()),
            &self.db,
            &self.config.database_url,
            live::LiveEvents {
                notify: self.config.watch_notify,
                poll_ms: self.config.watch_poll_ms,
            },
            &supervisor,
            serve_stop.clone(),
        );
        let executions = Executions::new(
            self.db.clone(),
            hub.clone(),
            self.billing.clone(),
            outbox.clone(),
            serve_stop.clone(),
            supervisor.tracker(),
        )
        .with_stream_limits(&self.config.fair_use)
        .with_stream_tokens(self.stream_tokens.clone())
        .with_webhook_guard(self.config.webhooks.guard());
        let recovery = &self.config.recovery;
        let liveness = Liveness::new(Duration::from_secs(recovery.node_dead_after_secs));
        let nodes = Nodes::new(
            self.db.clone(),
            hub.clone(),
            self.billing.clone(),
            liveness,
            serve_stop.clone(),
            supervisor.tracker(),
            outbox.clone(),
        )
        .with_secrets(self.config.secrets.secrets_key.clone());
        supervisor.component(
            "schedule ticker",
            ended(
                crate::schedules::Ticker {
                    db: self.db.clone(),
                    intake: executions.intake(),
                    billing: self.billing.clone(),
                    webhooks: self.config.webhooks.guard(),
                    outbox: outbox.clone(),
                    metrics: self.metrics.clone(),
                    poll: Duration::from_millis(self.config.schedules.schedule_poll_ms),
                }
                .run(serve_stop.clone()),
            ),
        );
        supervisor.component(
            "webhook dispatcher",
            ended(
                crate::webhooks::Dispatcher::new(
                    self.db.clone(),
                    self.config.secrets.secrets_key.clone(),
                    self.config.webhooks.clone(),
                    hub.endings(),
                )
                .run(serve_stop.clone()),
            ),
        );
        supervisor.component(
            "billing reconciler",
            ended(crate::billing::run_reconciler(
                self.db.clone(),
                self.billing.clone(),
                Duration::from_secs(self.config.billing.reconcile_interval_secs.max(1)),
                serve_stop.clone(),
            )),
        );
        let source = self.queue_source();
        let mut relay_task = supervisor.component(
            "outbox relay",
            ended(relay::run_relay(
                self.db.clone(),
                self.config.fair_use.account_max_running,
                source.clone(),
                outbox.clone(),
                self.metrics.clone(),
                relay_stop.clone(),
            )),
        );
        supervisor.component(
            "dead-letter consumer",
            ended(dead_letters::run(
                self.db.clone(),
                hub.clone(),
                self.billing.clone(),
                source.clone(),
                liveness,
                serve_stop.clone(),
            )),
        );
        supervisor.component(
            "reaper",
            ended(reaper::run(
                reaper::Reaper {
                    db: self.db.clone(),
                    hub: hub.clone(),
                    source,
                    liveness,
                    interval: Duration::from_secs(recovery.reaper_interval_secs.max(1)),
                    outbox: outbox.clone(),
                    billing: self.billing.clone(),
                },
                serve_stop.clone(),
            )),
        );

        // The database's gauges are read when scraped, within the scrape's refresh limit.
        let (db, metrics) = (self.db.clone(), self.metrics.clone());
        let dead_after = Duration::from_secs(recovery.node_dead_after_secs);
        self.registry.on_scrape(move || {
            let (db, metrics) = (db.clone(), metrics.clone());
            async move { metrics.refresh(&db, dead_after).await }
        });
        if let Some(listener) = self.metrics_listener.take() {
            supervisor.component(
                "metrics server",
                frameos_metrics::serve(listener, self.registry.clone(), serve_stop.clone()),
            );
        }

        let addr = self.local_addr();
        tracing::info!(%addr, store = %publisher.store.describe(), tls = self.tls.is_some(), "control plane serving");
        let node_auth = crate::node_auth::NodeToken::new(&self.node_token)
            .requiring_client_certificate(
                self.tls
                    .as_ref()
                    .is_some_and(frameos_tls::ServerTls::requires_node_certificates),
            );
        let key_cache = self.config.key_cache();
        let server = frameos_tls::server_builder(self.tls.as_ref())?
            .timeout(Duration::from_secs(60))
            .layer(frameos_metrics::GrpcLayer::new(&self.registry))
            .layer(crate::accounts::auth::AuthLayer::new(
                self.db.clone(),
                key_cache.clone(),
            ))
            // A SERVER span per call, continuing the caller's trace from the call's metadata.
            .layer(frameos_telemetry::grpc::ServerSpans)
            .add_service(health_service.clone())
            .add_service(reflection)
            .add_service(reflection_v1alpha)
            .add_service(AccountServiceServer::new(Accounts::new(self.db.clone())))
            .add_service(ApiKeyServiceServer::new(accounts::ApiKeys::new(
                self.db.clone(),
                key_cache,
            )))
            .add_service(BillingServiceServer::new(
                crate::billing::service::BillingApi::new(self.db.clone()),
            ))
            .add_service(
                AgentServiceServer::new(Agents::new(publisher, self.billing.clone(), hub.clone()))
                    .max_decoding_message_size(max_message),
            )
            .add_service(ExecutionServiceServer::new(executions))
            .add_service(ScheduleServiceServer::new(
                crate::schedules::Schedules::new(
                    self.db.clone(),
                    self.billing.clone(),
                    self.config.webhooks.guard(),
                    self.config.schedules.clone(),
                ),
            ))
            .add_service(WebhookServiceServer::new(crate::webhooks::Webhooks::new(
                self.db.clone(),
                self.config.secrets.secrets_key.clone(),
            )))
            .add_service(SecretServiceServer::new(crate::secrets::Secrets::new(
                self.db.clone(),
                self.config.secrets.secrets_key.clone(),
            )))
            .add_service(NodeServiceServer::with_interceptor(nodes, node_auth))
            .serve_with_incoming_shutdown(
                TcpListenerStream::new(self.listener),
                serve_stop.clone().cancelled_owned(),
            );
        if let Some(listener) = self.health_listener {
            let probes = tonic::transport::Server::builder()
                .add_service(health_service)
                .serve_with_incoming_shutdown(
                    TcpListenerStream::new(listener),
                    serve_stop.clone().cancelled_owned(),
                );
            supervisor.component("grpc health listener", async move {
                probes.await.map_err(Error::Serve)
            });
        }
        let mut server_task =
            supervisor.component(
                "grpc server",
                async move { server.await.map_err(Error::Serve) },
            );

        stopping.cancelled().await;
        let stop = StopSequence::begin("control plane", self.config.shutdown_grace());
        stop.stage("stop accepting", STAGE_LIMIT, async {
            unready.cancel();
            let _ = (&mut health_task).await;
        })
        .await;
        relay_stop.cancel();
        if stop
            .stage("outbox relay flushes", STAGE_LIMIT, &mut relay_task)
            .await
            .is_none()
        {
            relay_task.abort();
        }
        serve_stop.cancel();
        let close_limit = stop.left().saturating_sub(STAGE_LIMIT).max(STAGE_LIMIT);
        if stop
            .stage("servers close", close_limit, &mut server_task)
            .await
            .is_none()
        {
            server_task.abort();
        }
        stop.stage(
            "background tasks end",
            STAGE_LIMIT,
            supervisor.wait(STAGE_LIMIT),
        )
        .await;
        let _ = self.db.close().await;
        stop.finish();
        match supervisor.failure() {
            Some(failure) => Err(Error::Component(failure)),
            None => Ok(()),
        }
    }
}

/// Limit of each short stop stage (the server's close gets what is left of the grace).
const STAGE_LIMIT: Duration = Duration::from_secs(5);

/// A background loop that only ends when told to, as a component.
async fn ended(work: impl Future<Output = ()>) -> Result<(), Infallible> {
    work.await;
    Ok(())
}

/// The stream token key of `FRAMEOS_STREAM_TOKEN_KEY`, else derived from the mandate signing
/// key, else random (said once: tokens then work on this replica only).
fn stream_tokens(config: &Config) -> Result<StreamTokens, Error> {
    use crate::execution::stream_token::KeySource;
    let (tokens, source) = StreamTokens::from_config(
        config.stream_token_key.as_deref(),
        config.billing.mandate_signing_key.as_deref(),
    )
    .map_err(Error::StreamTokens)?;
    match source {
        KeySource::Configured => {}
        KeySource::DerivedFromMandateKey => {
            tracing::info!("stream token key derived from FRAMEOS_MANDATE_SIGNING_KEY")
        }
        KeySource::Random => tracing::warn!(
            "no FRAMEOS_STREAM_TOKEN_KEY nor FRAMEOS_MANDATE_SIGNING_KEY: stream tokens work on this replica only"
        ),
    }
    Ok(tokens)
}
