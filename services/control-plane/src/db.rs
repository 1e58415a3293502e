//! Connecting, migrating, and turning database failures into public errors.

use frameos_core::{Error, ErrorCode};
use frameos_migrations::{Migrator, MigratorTrait};
use sea_orm::{ConnectOptions, Database, DatabaseConnection, DbErr, SqlErr};

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
    let mut options = ConnectOptions::new(url);
    options.sqlx_logging(false);
    Database::connect(options).await
}

pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    Migrator::up(db, None).await
}

/// A database failure as the caller sees it. Unique violations are the caller's business and
/// are mapped by the call site; everything else is ours.
pub fn error(e: DbErr) -> Error {
    match e {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => {
            tracing::warn!(error = %e, "database unavailable");
            Error::unavailable("the database is unavailable; try again")
        }
        e => {
            tracing::error!(error = %e, "database error");
            Error::internal("database error")
        }
    }
}

/// Maps a unique-constraint violation to `code`, anything else through [`error`].
pub fn unique_or(e: DbErr, code: ErrorCode, message: impl Into<String>) -> Error {
    match e.sql_err() {
        Some(SqlErr::UniqueConstraintViolation(_)) => Error::new(code, message),
        _ => error(e),
    }
}
