//! Binding and serving the REST API until the shutdown token fires.

use std::net::SocketAddr;
use std::time::Duration;

use axum::Router;
use frameos_lifecycle::{StopSequence, Supervisor};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::Config;
use crate::routes::{self, AppState};
use crate::streams::EventStreams;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A bad control plane URL, or bad TLS files (`FRAMEOS_CONTROL_PLANE_CA`, …).
    #[error(transparent)]
    ControlPlane(#[from] frameos_tls::Error),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("{0}")]
    Component(#[from] frameos_lifecycle::Failure),
}

/// A gateway that is bound and ready to serve.
pub struct Gateway {
    config: Config,
    listener: TcpListener,
    app: Router,
    streams: EventStreams,
    /// `AppState::stopping`: readiness.
    unready: CancellationToken,
}

impl Gateway {
    /// Builds the API and binds the listener. The control plane is not contacted: the channel
    /// connects on first use, so the gateway starts whether or not the control plane is up.
    pub async fn bind(config: Config) -> Result<Gateway, Error> {
        Self::bind_with_registry(config, frameos_metrics::Registry::new()).await
    }

    /// As [`Gateway::bind`], with `/metrics` serving `registry`: shared, it shows the families of
    /// every service of the process (`frameos dev`).
    pub async fn bind_with_registry(
        config: Config,
        registry: frameos_metrics::Registry,
    ) -> Result<Gateway, Error> {
        let state = AppState::with_registry(&config, registry)?;
        let streams = state.streams.clone();
        let unready = state.stopping.clone();
        let app = routes::router(state, &config);
        let listener = TcpListener::bind(config.http_addr)
            .await
            .map_err(|source| Error::Bind {
                addr: config.http_addr,
                source,
            })?;
        Ok(Gateway {
            config,
            listener,
            app,
            streams,
            unready,
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or(self.config.http_addr)
    }

    /// Serves until `shutdown` fires (or the server fails), then stops within
    /// `FRAMEOS_SHUTDOWN_GRACE_SECS`: readiness off, no new connections and event streams ended
    /// at once (they could last as long as an execution; their clients resume elsewhere), then
    /// requests in flight finish.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), Error> {
        let supervisor = Supervisor::new(&shutdown);
        let stopping = supervisor.stopping();
        let addr = self.local_addr();
        tracing::info!(%addr, control_plane = %self.config.control_plane_url, "gateway serving");
        let close = CancellationToken::new();
        // Handlers get the client's address: it keys the limits of callers without a valid key.
        let server = crate::connections::serve(self.listener, self.app, close.clone());
        let mut server_task = supervisor.component("http server", async move {
            server.await;
            Ok::<(), Error>(())
        });

        stopping.cancelled().await;
        let stop = StopSequence::begin("gateway", self.config.shutdown_grace());
        stop.stage("stop accepting", STAGE_LIMIT, async {
            self.unready.cancel();
            self.streams.close_all();
            close.cancel();
        })
        .await;
        if stop
            .stage(
                "servers close",
                stop.left().max(STAGE_LIMIT),
                &mut server_task,
            )
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
        stop.finish();
        match supervisor.failure() {
            Some(failure) => Err(Error::Component(failure)),
            None => Ok(()),
        }
    }
}

/// Limit of each short stop stage (requests in flight get what is left of the grace).
const STAGE_LIMIT: Duration = Duration::from_secs(5);
