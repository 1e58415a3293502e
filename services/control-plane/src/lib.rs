//! The FrameOS control plane: accounts and API keys, agents, versions, the scanner and the
//! admin review, served over gRPC. It is the only writer of the database.

mod accounts;
mod agents;
pub mod billing;
pub mod config;
mod db;
mod entity;
mod execution;
#[cfg(feature = "fault-injection")]
pub mod faults;
pub mod health;
mod metrics;
mod node_auth;
mod paging;
pub mod schedules;
mod secrets;
mod server;
mod view;
pub mod webhooks;

pub use accounts::keys::generate as generate_api_key;
pub use agents::review_mode::{ReviewConfig, ReviewMode};
pub use config::Config;
/// The pool the control plane runs on (its size and pings), for tools that must match it.
pub use db::connect as connect_database;
pub use execution::StreamTokens;
pub use secrets::{Keyring, KeyringError, Rotation, SecretsConfig};
pub use server::{Error, Server};

use tokio_util::sync::CancellationToken;

/// Runs the control plane until `shutdown` fires.
pub async fn run(config: Config, shutdown: CancellationToken) -> Result<(), Error> {
    let mut server = Server::bind(config).await?;
    if let Some(key) = server.take_generated_admin_key() {
        // Printed, never logged: logs are shipped and kept, this key must not be.
        println!("first admin account created; its API key (shown once): {key}");
    }
    server.run(shutdown).await
}

/// Checks the ledger's invariants on the database at `url` (`frameos ledger verify`).
pub async fn verify_ledger(url: &str) -> Result<billing::ledger::Verification, Error> {
    let db = db::connect(url).await.map_err(Error::Database)?;
    let report = billing::ledger::verify(&db)
        .await
        .map_err(Error::Bootstrap)?;
    let _ = db.close().await;
    Ok(report)
}

/// Applies pending migrations to the database at `url` (`frameos migrate`).
pub async fn migrate(url: &str) -> Result<(), Error> {
    let db = db::connect(url).await.map_err(Error::Database)?;
    db::migrate(&db).await.map_err(Error::Migrate)?;
    let _ = db.close().await;
    Ok(())
}

/// Re-seals every agent secret of the database at `url` under the active key of `keyring`
/// (`frameos secrets rotate`, ADR 0045); afterwards the other keys may leave the keyring.
pub async fn rotate_secrets(url: &str, keyring: &Keyring) -> Result<Rotation, Error> {
    let db = db::connect(url).await.map_err(Error::Database)?;
    let rotation = secrets::store::rotate(&db, keyring)
        .await
        .map_err(Error::Secrets)?;
    let _ = db.close().await;
    Ok(rotation)
}
