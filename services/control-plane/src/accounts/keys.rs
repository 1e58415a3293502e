//! API keys: generation, hashing, storage and lookup.
//!
//! A key is `fos_` + 64 hex digits of randomness. We store only its SHA-256 (a fast hash is right
//! for 256-bit random secrets) and a public key id, the first 16 hex digits of that hash, to find
//! the row; the full hashes are then compared in constant time.
//!
//! Requests resolve their key through [`super::KeyCache`], which keeps what is read here for a
//! few seconds. `last_used_at` is written at most once a minute per key ([`TOUCH_EVERY`]), so a
//! busy key costs no write per request.

use chrono::{DateTime, Utc};
use frameos_core::{Error, ErrorCode, Role, Scopes};
use rand::RngCore;
use sea_orm::sea_query::{Condition, Expr};
use sea_orm::{
    ActiveModelTrait, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
    Set,
};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::auth::Principal;
use crate::db;
use crate::entity::{account, api_key};

/// `last_used_at` is written when it is at least this old.
pub const TOUCH_EVERY: chrono::TimeDelta = chrono::TimeDelta::seconds(60);

/// A fresh random key (shown to its owner once, never stored in clear).
pub fn generate() -> String {
    let mut secret = [0u8; 32];
    rand::rng().fill_bytes(&mut secret);
    format!("fos_{}", hex::encode(secret))
}

/// The SHA-256 of `key` in hex, as stored in `api_key.key_hash`.
pub(super) fn digest(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

fn key_id(hash: &str) -> &str {
    &hash[..16]
}

/// What a new key is, besides its secret.
#[derive(Debug, Clone)]
pub struct NewKey {
    pub name: String,
    /// None: every scope of the account's role, whatever it is.
    pub scopes: Option<Scopes>,
    pub expires_at: Option<DateTime<Utc>>,
}

impl NewKey {
    /// A key with every scope of its account's role and no expiry.
    pub fn full(name: &str) -> NewKey {
        NewKey {
            name: name.to_string(),
            scopes: None,
            expires_at: None,
        }
    }
}

/// Stores a new key for `account_id`; returns its row (nothing secret).
pub async fn store<C: ConnectionTrait>(
    db: &C,
    account_id: &str,
    key: &str,
    new: NewKey,
) -> Result<api_key::Model, Error> {
    let hash = digest(key);
    api_key::ActiveModel {
        id: Set(key_id(&hash).to_string()),
        account_id: Set(account_id.to_string()),
        key_hash: Set(hash.clone()),
        created_at: Set(Utc::now()),
        revoked_at: Set(None),
        name: Set(new.name),
        scopes: Set(new.scopes.map(Scopes::to_list)),
        expires_at: Set(new.expires_at),
        last_used_at: Set(None),
    }
    .insert(db)
    .await
    .map_err(|e| db::unique_or(e, ErrorCode::Conflict, "this API key is already in use"))
}

/// The row of `key`, revoked or not; None when no row holds it.
pub async fn find<C: ConnectionTrait>(db: &C, key: &str) -> Result<Option<api_key::Model>, Error> {
    find_hashed(db, &digest(key)).await
}

async fn find_hashed<C: ConnectionTrait>(
    db: &C,
    hash: &str,
) -> Result<Option<api_key::Model>, Error> {
    let row = api_key::Entity::find_by_id(key_id(hash))
        .one(db)
        .await
        .map_err(db::error)?;
    Ok(row.filter(|r| bool::from(r.key_hash.as_bytes().ct_eq(hash.as_bytes()))))
}

/// What a key may do: its stored scopes within what its account's role allows now.
pub fn scopes_of(row: &api_key::Model, role: Role) -> Result<Scopes, Error> {
    let allowed = Scopes::of_role(role);
    match &row.scopes {
        None => Ok(allowed),
        Some(list) => Scopes::parse_list(list)
            .map(|scopes| scopes.intersection(allowed))
            .map_err(|_| Error::internal(format!("API key {} has unknown scopes", row.id))),
    }
}

/// The caller holding `key`, read from the database; unknown, revoked and expired keys are
/// `UNAUTHENTICATED`. Requests go through [`super::KeyCache`] instead.
pub async fn resolve(db: &DatabaseConnection, key: &str) -> Result<Principal, Error> {
    resolve_hashed(db, &digest(key), Utc::now())
        .await
        .map(|resolved| resolved.principal)
}

/// What a valid key resolved to, with what decides how long that holds.
#[derive(Clone, Debug)]
pub struct Resolved {
    pub principal: Principal,
    pub expires_at: Option<DateTime<Utc>>,
    /// As recorded after this resolution.
    pub last_used_at: Option<DateTime<Utc>>,
}

/// Resolves the key whose SHA-256 (hex) is `hash` at `now`, and records its use when due.
pub(super) async fn resolve_hashed(
    db: &DatabaseConnection,
    hash: &str,
    now: DateTime<Utc>,
) -> Result<Resolved, Error> {
    let Some(row) = find_hashed(db, hash)
        .await?
        .filter(|r| r.revoked_at.is_none())
    else {
        return Err(invalid_key());
    };
    if let Some(expires_at) = row.expires_at.filter(|at| *at <= now) {
        return Err(expired(expires_at));
    }
    let account = account::Entity::find_by_id(&row.account_id)
        .one(db)
        .await
        .map_err(db::error)?
        .ok_or_else(invalid_key)?;
    let role = account.role;
    let scopes = scopes_of(&row, role)?;
    let mut last_used_at = row.last_used_at;
    if touch_due(last_used_at, now) {
        touch(db, &row.id, now).await;
        last_used_at = Some(now);
    }
    Ok(Resolved {
        principal: Principal {
            account_id: account.id,
            role,
            key_id: row.id,
            scopes,
        },
        expires_at: row.expires_at,
        last_used_at,
    })
}

pub(super) fn expired(expires_at: DateTime<Utc>) -> Error {
    Error::new(
        ErrorCode::Unauthenticated,
        format!(
            "this API key expired at {}",
            expires_at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
        ),
    )
}

/// Whether a key last used at `last_used_at` is due to have its use recorded at `now`.
pub(super) fn touch_due(last_used_at: Option<DateTime<Utc>>, now: DateTime<Utc>) -> bool {
    last_used_at.is_none_or(|at| at <= now - TOUCH_EVERY)
}

/// Records that the key `key_id` was used, unless that was done within the last
/// [`TOUCH_EVERY`]. The condition is checked in the update, so replicas racing on one key
/// write once.
pub(super) async fn touch(db: &DatabaseConnection, key_id: &str, now: DateTime<Utc>) {
    let stale_before = now - TOUCH_EVERY;
    let written = api_key::Entity::update_many()
        .col_expr(api_key::Column::LastUsedAt, Expr::value(now))
        .filter(api_key::Column::Id.eq(key_id))
        .filter(
            Condition::any()
                .add(api_key::Column::LastUsedAt.is_null())
                .add(api_key::Column::LastUsedAt.lte(stale_before)),
        )
        .exec(db)
        .await;
    // The request goes on: when a key was last used is worth no refusal.
    if let Err(error) = written {
        tracing::warn!(%key_id, %error, "cannot record when the API key was used");
    }
}

pub(super) fn invalid_key() -> Error {
    Error::new(ErrorCode::Unauthenticated, "invalid API key")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_random_and_hash_to_a_stable_id() {
        let a = generate();
        let b = generate();
        assert_ne!(a, b);
        assert!(a.starts_with("fos_") && a.len() == 68);
        assert_eq!(key_id(&digest(&a)), key_id(&digest(&a)));
        assert_ne!(digest(&a), digest(&b));
    }

    #[tokio::test]
    async fn expired_keys_are_refused_and_use_is_recorded_once_a_minute() {
        let db = crate::db::connect("sqlite::memory:").await.unwrap();
        crate::db::migrate(&db).await.unwrap();
        let (account, _) = super::super::create(&db, "ann", Role::User).await.unwrap();

        let key = generate();
        let past = NewKey {
            expires_at: Some(Utc::now() - chrono::TimeDelta::seconds(1)),
            ..NewKey::full("old")
        };
        store(&db, &account.id, &key, past).await.unwrap();
        let refused = resolve(&db, &key).await.unwrap_err();
        assert_eq!(refused.code, ErrorCode::Unauthenticated);
        assert!(refused.message.contains("expired"), "{refused:?}");

        let key = generate();
        let row = store(&db, &account.id, &key, NewKey::full("hot"))
            .await
            .unwrap();
        assert_eq!(row.last_used_at, None);
        let principal = resolve(&db, &key).await.unwrap();
        // A user's key without stored scopes has all the user role allows.
        assert_eq!(principal.scopes, Scopes::of_role(Role::User));
        let first = find(&db, &key).await.unwrap().unwrap().last_used_at;
        assert!(first.is_some());
        resolve(&db, &key).await.unwrap();
        let second = find(&db, &key).await.unwrap().unwrap().last_used_at;
        assert_eq!(first, second, "written again within the minute");
    }
}
