//! Accounts: creation, the bootstrap admin, API keys ([`keys`]), resolving the caller of a request
//! ([`auth`]), and the `AccountService` gRPC endpoint ([`service`]).

pub mod auth;
pub mod keys;
mod service;

use chrono::Utc;
use frameos_core::{Error, ErrorCode, Role};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, Set,
    TransactionTrait,
};

use crate::db;
use crate::entity::account;

pub use service::Accounts;

fn validate_name(name: &str) -> Result<String, Error> {
    let name = name.trim();
    if name.is_empty() || name.chars().count() > 128 || name.chars().any(char::is_control) {
        return Err(Error::new(
            ErrorCode::ValidationFailed,
            "name must be 1 to 128 printable characters",
        ));
    }
    Ok(name.to_string())
}

/// Creates an account with a fresh API key; returns the account and the key (shown once).
pub async fn create(
    db: &DatabaseConnection,
    name: &str,
    role: Role,
) -> Result<(account::Model, String), Error> {
    let name = validate_name(name)?;
    let key = keys::generate();
    let txn = db.begin().await.map_err(db::error)?;
    let model = account::ActiveModel {
        id: Set(uuid::Uuid::now_v7().to_string()),
        name: Set(name.clone()),
        role: Set(role),
        created_at: Set(Utc::now()),
    }
    .insert(&txn)
    .await
    .map_err(|e| {
        db::unique_or(
            e,
            ErrorCode::AccountExists,
            format!("an account named {name:?} exists already"),
        )
    })?;
    keys::store(&txn, &model.id, &key).await?;
    txn.commit().await.map_err(db::error)?;
    Ok((model, key))
}

/// Makes sure an admin can log in at start. With `key`, an admin account holding exactly that
/// key exists afterwards; without it, a first admin is created when there is none, and its
/// freshly generated key is returned so the caller can show it once.
pub async fn bootstrap_admin(
    db: &DatabaseConnection,
    key: Option<&str>,
) -> Result<Option<String>, Error> {
    let admin = account::Entity::find()
        .filter(account::Column::Role.eq(Role::Admin.as_str()))
        .one(db)
        .await
        .map_err(db::error)?;
    match (key, admin) {
        (Some(key), admin) => {
            let principal = match keys::resolve(db, key).await {
                Ok(principal) => Some(principal),
                Err(e) if e.code == ErrorCode::Unauthenticated => None,
                Err(e) => return Err(e),
            };
            if principal.is_some_and(|p| p.is_admin()) {
                return Ok(None);
            }
            let admin = match admin {
                Some(admin) => admin,
                None => account::ActiveModel {
                    id: Set(uuid::Uuid::now_v7().to_string()),
                    name: Set("admin".to_string()),
                    role: Set(Role::Admin),
                    created_at: Set(Utc::now()),
                }
                .insert(db)
                .await
                .map_err(db::error)?,
            };
            keys::store(db, &admin.id, key).await?;
            tracing::info!(account_id = %admin.id, "bootstrap admin key installed");
            Ok(None)
        }
        (None, Some(_)) => Ok(None),
        (None, None) => {
            let (admin, key) = create(db, "admin", Role::Admin).await?;
            tracing::info!(account_id = %admin.id, "created the first admin account");
            Ok(Some(key))
        }
    }
}
