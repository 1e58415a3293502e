//! A control plane served inside the test process and probed the way Kubernetes probes it:
//! through the gRPC health protocol (`""` readiness, `liveness`, each service's name).

use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tonic::transport::Channel;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};

pub const SERVING: i32 = ServingStatus::Serving as i32;
pub const NOT_SERVING: i32 = ServingStatus::NotServing as i32;

/// The control plane of `frameos dev`: SQLite and packages in `dir`, any free port, migrated.
pub fn embedded_config(dir: &Path) -> frameos_control_plane::Config {
    let mut config = frameos_control_plane::Config::embedded();
    config.grpc_addr = "127.0.0.1:0".parse().expect("an address");
    config.migrate = true;
    config.database_url = format!("sqlite://{}/frameos.db", dir.display());
    config.store.package_dir = dir.join("packages");
    config
}

/// A bound control plane, serving until [`Served::stop`].
pub struct Served {
    pub addr: SocketAddr,
    shutdown: CancellationToken,
    running: JoinHandle<Result<(), frameos_control_plane::Error>>,
}

impl Served {
    pub fn start(server: frameos_control_plane::Server) -> Served {
        let addr = server.local_addr();
        let shutdown = CancellationToken::new();
        let running = tokio::spawn(server.run(shutdown.clone()));
        Served {
            addr,
            shutdown,
            running,
        }
    }

    /// A plain-HTTP/2 health client of its API port.
    pub async fn health(&self) -> HealthClient<Channel> {
        let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", self.addr))
            .expect("a URL")
            .connect()
            .await
            .expect("the control plane accepts connections");
        HealthClient::new(channel)
    }

    /// Stops it and expects a clean exit within 30 s. Drop open watches first: they would
    /// hold the graceful close until the grace runs out.
    pub async fn stop(self) {
        self.shutdown.cancel();
        tokio::time::timeout(Duration::from_secs(30), self.running)
            .await
            .expect("the control plane stopped within 30 s")
            .expect("the server task did not panic")
            .expect("the control plane stopped cleanly");
    }
}

/// A health watch of `name`; its first message is the current status.
pub async fn watch(
    health: &mut HealthClient<Channel>,
    name: &str,
) -> tonic::Streaming<HealthCheckResponse> {
    health
        .watch(HealthCheckRequest {
            service: name.to_string(),
        })
        .await
        .expect("a health watch")
        .into_inner()
}

/// The next status a health watch reports (the current one first).
pub async fn next_status(stream: &mut tonic::Streaming<HealthCheckResponse>) -> i32 {
    tokio::time::timeout(Duration::from_secs(30), stream.message())
        .await
        .expect("no health change within 30 s")
        .expect("the health watch failed")
        .expect("the health watch ended")
        .status
}

/// Whether `stream` stays quiet for a moment (a status that must not change).
pub async fn unchanged(stream: &mut tonic::Streaming<HealthCheckResponse>) -> bool {
    tokio::time::timeout(Duration::from_millis(100), stream.message())
        .await
        .is_err()
}

pub async fn check(health: &mut HealthClient<Channel>, name: &str) -> i32 {
    health
        .check(HealthCheckRequest {
            service: name.to_string(),
        })
        .await
        .expect("a health check")
        .into_inner()
        .status
}
