//! Accounts: creation, the bootstrap admin, API keys ([`keys`]), resolving the caller of a request
//! ([`auth`], through a [`KeyCache`]) and what its key may do ([`scopes`]), the `AccountService`
//! gRPC endpoint ([`service`]) and the `ApiKeyService` one ([`key_service`]).

pub mod auth;
pub mod key_cache;
mod key_service;
pub mod keys;
pub mod scopes;
mod service;

use chrono::Utc;
use frameos_core::{Error, ErrorCode, Role};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter, Set,
    TransactionTrait,
};

use crate::db;
use crate::entity::{account, api_key};

pub use key_cache::KeyCache;
pub use key_service::ApiKeys;
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
        webhook_secret: Set(None),
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
    keys::store(&txn, &model.id, &key, keys::NewKey::full("default")).await?;
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
            // Revoked (or expired) since: the configuration still names it, so it works again.
            if reinstate_admin_key(db, key).await? {
                return Ok(None);
            }
            let admin = match admin {
                Some(admin) => admin,
                None => account::ActiveModel {
                    id: Set(uuid::Uuid::now_v7().to_string()),
                    name: Set("admin".to_string()),
                    role: Set(Role::Admin),
                    created_at: Set(Utc::now()),
                    webhook_secret: Set(None),
                }
                .insert(db)
                .await
                .map_err(db::error)?,
            };
            keys::store(db, &admin.id, key, keys::NewKey::full("bootstrap")).await?;
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

/// Makes the revoked or expired row of `key` valid again, with every scope of its role, when it
/// belongs to an admin; false when there is no such row.
async fn reinstate_admin_key(db: &DatabaseConnection, key: &str) -> Result<bool, Error> {
    let Some(row) = keys::find(db, key).await? else {
        return Ok(false);
    };
    let owner = account::Entity::find_by_id(&row.account_id)
        .one(db)
        .await
        .map_err(db::error)?;
    if owner.is_none_or(|a| a.role != Role::Admin) {
        return Ok(false);
    }
    let mut active: api_key::ActiveModel = row.into();
    active.revoked_at = Set(None);
    active.expires_at = Set(None);
    active.scopes = Set(None);
    let row = active.update(db).await.map_err(db::error)?;
    tracing::warn!(
        key_id = %row.id,
        "the bootstrap admin key had been revoked or had expired; FRAMEOS_BOOTSTRAP_ADMIN_KEY still names it, so it is valid again"
    );
    Ok(true)
}
