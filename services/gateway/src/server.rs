//! Binding and serving the REST API until the shutdown token fires.

use std::net::SocketAddr;

use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::Config;
use crate::routes::{self, AppState};
use crate::streams::EventStreams;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("invalid control plane URL {url:?}: {source}")]
    ControlPlaneUrl {
        url: String,
        source: tonic::transport::Error,
    },
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("http server failed: {0}")]
    Serve(#[source] std::io::Error),
}

/// A gateway that is bound and ready to serve.
pub struct Gateway {
    config: Config,
    listener: TcpListener,
    app: Router,
    streams: EventStreams,
}

impl Gateway {
    /// Builds the API and binds the listener. The control plane is not contacted: the channel
    /// connects on first use, so the gateway starts whether or not the control plane is up.
    pub async fn bind(config: Config) -> Result<Gateway, Error> {
        let state = AppState::new(&config).map_err(|source| Error::ControlPlaneUrl {
            url: config.control_plane_url.clone(),
            source,
        })?;
        let streams = state.streams.clone();
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
        })
    }

    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or(self.config.http_addr)
    }

    /// Serves until `shutdown` fires, then lets requests in flight finish. Event streams end
    /// at once: they could last as long as an execution, and their clients resume elsewhere.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), Error> {
        let addr = self.local_addr();
        tracing::info!(%addr, control_plane = %self.config.control_plane_url, "gateway serving");
        let streams = self.streams;
        // The client's address keys the limits of callers without a valid key.
        let app = self.app.into_make_service_with_connect_info::<SocketAddr>();
        axum::serve(self.listener, app)
            .with_graceful_shutdown(async move {
                shutdown.cancelled().await;
                streams.close_all();
            })
            .await
            .map_err(Error::Serve)?;
        tracing::info!("gateway stopped");
        Ok(())
    }
}
