//! gRPC health (`grpc.health.v1.Health`): what probes and load balancers ask (ADR 0018).
//!
//! - `""`, readiness: the database answers and the stop has not begun;
//! - each full service name (`frameos.v1.AgentService`, …): SERVING until the stop begins, then
//!   NOT_SERVING at once: send no new calls here;
//! - `"liveness"`: SERVING while the process runs. It never looks at the database: a database
//!   outage makes every replica unready, it does not get them restarted.

use std::time::Duration;

use frameos_proto::v1::{
    account_service_server, agent_service_server, api_key_service_server, billing_service_server,
    execution_service_server, node_service_server, secret_service_server,
};
use sea_orm::DatabaseConnection;
use tokio_util::sync::CancellationToken;
use tonic_health::ServingStatus;
use tonic_health::server::HealthReporter;

/// The health name of liveness.
pub const LIVENESS: &str = "liveness";

/// The services of this server, by the full names health answers for.
pub const SERVICES: [&str; 7] = [
    account_service_server::SERVICE_NAME,
    api_key_service_server::SERVICE_NAME,
    agent_service_server::SERVICE_NAME,
    billing_service_server::SERVICE_NAME,
    execution_service_server::SERVICE_NAME,
    node_service_server::SERVICE_NAME,
    secret_service_server::SERVICE_NAME,
];

const CHECK_EVERY: Duration = Duration::from_secs(5);
/// A database that takes longer than this to answer a ping is not there, for readiness.
const PING_WITHIN: Duration = Duration::from_secs(3);

/// Every name SERVING: the server is about to serve.
pub async fn serving(reporter: &HealthReporter) {
    for name in ["", LIVENESS].into_iter().chain(SERVICES) {
        reporter
            .set_service_status(name, ServingStatus::Serving)
            .await;
    }
}

/// Readiness follows the database until `unready` fires; from then on readiness and every
/// service are NOT_SERVING for good (the stop began). Liveness is left alone. The only writer of
/// the health statuses once serving.
pub async fn follow(db: DatabaseConnection, reporter: HealthReporter, unready: CancellationToken) {
    let mut ready = true;
    loop {
        let ok = tokio::select! {
            () = unready.cancelled() => break,
            ok = async {
                tokio::time::sleep(CHECK_EVERY).await;
                matches!(tokio::time::timeout(PING_WITHIN, db.ping()).await, Ok(Ok(())))
            } => ok,
        };
        if ok != ready {
            ready = ok;
            tracing::warn!(serving = ok, "database health changed");
            reporter.set_service_status("", status(ok)).await;
        }
    }
    reporter
        .set_service_status("", ServingStatus::NotServing)
        .await;
    for name in SERVICES {
        reporter
            .set_service_status(name, ServingStatus::NotServing)
            .await;
    }
    tracing::info!("readiness off: NOT_SERVING");
}

fn status(serving: bool) -> ServingStatus {
    if serving {
        ServingStatus::Serving
    } else {
        ServingStatus::NotServing
    }
}
