//! The FrameOS REST gateway (API.md §2): JSON over HTTP in front of the control plane's gRPC API.
//! It holds no data and makes no access decisions; it forwards the caller's API key, translates
//! messages and errors, and adds the operational endpoints.

mod auth;
pub mod config;
mod connections;
mod control_plane;
mod cors;
mod error;
mod extract;
mod fair_use;
mod mcp;
mod metrics;
mod openapi;
pub use frameos_rest::pricing;
mod routes;
mod server;
mod streams;
pub use frameos_rest::view;

pub use config::Config;
pub use server::{Error, Gateway};

use tokio_util::sync::CancellationToken;

/// Runs the gateway until `shutdown` fires.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<(), Error> {
    Gateway::bind(config).await?.run(shutdown).await
}
