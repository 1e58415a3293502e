//! Connecting, migrating, and turning database failures into public errors.

use std::time::Duration;

use frameos_core::{Error, ErrorCode};
use frameos_migrations::{Migrator, MigratorTrait};
use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr, RuntimeErr, SqlErr};

/// How long a request waits for a connection to a networked database. While the database is
/// down, sqlx retries connecting until then (30 s by default): the request then gets a clear
/// `unavailable` in seconds instead of hanging.
const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(5);
/// A pooled connection idle this long is pinged before use; a busy one is not (the default
/// pings on every acquire: one more round trip per query). A connection that died while in use
/// fails its statement, which is `unavailable` ([`is_unavailable`]) like a failed ping.
const PING_IF_IDLE_FOR: Duration = Duration::from_secs(10);

/// Connections in the pool: enough for each core to have requests in flight while others wait
/// on the database, bounded because every replica's pool counts against the server's
/// `max_connections`.
fn pool_size() -> (u32, u32) {
    let cores = std::thread::available_parallelism()
        .map_or(1, |n| u32::try_from(n.get()).unwrap_or(u32::MAX));
    ((4 * cores).clamp(10, 32), cores.min(4))
}

pub async fn connect(url: &str) -> Result<DatabaseConnection, DbErr> {
    if let Some(path) = url
        .strip_prefix("sqlite://")
        .map(|rest| rest.split('?').next().unwrap_or(rest))
        .filter(|p| !p.is_empty() && *p != ":memory:")
    {
        // SQLite does not create parent directories of its file.
        if let Some(parent) = std::path::Path::new(path).parent() {
            std::fs::create_dir_all(parent).map_err(|e| DbErr::Custom(e.to_string()))?;
        }
    }
    let url = if url.starts_with("sqlite://") && !url.contains('?') {
        format!("{url}?mode=rwc")
    } else {
        url.to_string()
    };
    let networked = !url.starts_with("sqlite:");
    let mut options = ConnectOptions::new(url);
    options.sqlx_logging(false);
    if networked {
        let (max, min) = pool_size();
        options
            .acquire_timeout(ACQUIRE_TIMEOUT)
            .max_connections(max)
            .min_connections(min);
        options.test_before_acquire_if_idle_for(PING_IF_IDLE_FOR);
    }
    Database::connect(options).await
}

pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    Migrator::up(db, None).await
}

/// A database failure as the caller sees it. Unique violations are the caller's business and
/// are mapped by the call site; everything else is ours.
pub fn error(e: DbErr) -> Error {
    if is_unavailable(&e) {
        tracing::warn!(error = %e, "database unavailable");
        Error::unavailable("the database is unavailable; try again")
    } else {
        tracing::error!(error = %e, "database error");
        Error::internal("database error")
    }
}

/// Whether the database could not be reached or went away mid-statement (a restart, a
/// failover): the request may succeed when retried, and is not a bug of ours.
pub fn is_unavailable(e: &DbErr) -> bool {
    use sea_orm::sqlx::Error as Sqlx;
    match e {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
        DbErr::Exec(RuntimeErr::SqlxError(e)) | DbErr::Query(RuntimeErr::SqlxError(e)) => {
            match e.as_ref() {
                Sqlx::Io(_) | Sqlx::PoolTimedOut | Sqlx::PoolClosed | Sqlx::WorkerCrashed => true,
                // admin_shutdown, crash_shutdown, cannot_connect_now (starting up)
                Sqlx::Database(db) => {
                    matches!(db.code().as_deref(), Some("57P01" | "57P02" | "57P03"))
                }
                _ => false,
            }
        }
        _ => false,
    }
}

/// Maps a unique-constraint violation to `code`, anything else through [`error`].
pub fn unique_or(e: DbErr, code: ErrorCode, message: impl Into<String>) -> Error {
    match e.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(_)) => Error::new(code, message),
        _ => error(e),
    }
}
