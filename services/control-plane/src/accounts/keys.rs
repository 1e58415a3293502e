//! API keys: generation, hashing, storage and lookup.
//!
//! A key is `fos_` + 64 hex digits of randomness. We store only its SHA-256 (a fast hash is right
//! for 256-bit random secrets) and a public key id, the first 16 hex digits of that hash, to find
//! the row; the full hashes are then compared in constant time.

use chrono::Utc;
use frameos_core::{Error, ErrorCode};
use rand::RngCore;
use sea_orm::{ActiveModelTrait, ConnectionTrait, DatabaseConnection, EntityTrait, Set};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::auth::Principal;
use crate::db;
use crate::entity::{account, api_key};

/// A fresh random key (shown to its owner once, never stored in clear).
pub fn generate() -> String {
    let mut secret = [0u8; 32];
    rand::rng().fill_bytes(&mut secret);
    format!("fos_{}", hex::encode(secret))
}

fn digest(key: &str) -> String {
    hex::encode(Sha256::digest(key.as_bytes()))
}

fn key_id(hash: &str) -> &str {
    &hash[..16]
}

/// Stores a new key for `account_id`; returns nothing secret.
pub async fn store<C: ConnectionTrait>(db: &C, account_id: &str, key: &str) -> Result<(), Error> {
    let hash = digest(key);
    api_key::ActiveModel {
        id: Set(key_id(&hash).to_string()),
        account_id: Set(account_id.to_string()),
        key_hash: Set(hash.clone()),
        created_at: Set(Utc::now()),
        revoked_at: Set(None),
    }
    .insert(db)
    .await
    .map_err(|e| db::unique_or(e, ErrorCode::Conflict, "this API key is already in use"))?;
    Ok(())
}

/// The account holding `key`; unknown and revoked keys are `UNAUTHENTICATED`.
pub async fn resolve(db: &DatabaseConnection, key: &str) -> Result<Principal, Error> {
    let hash = digest(key);
    let row = api_key::Entity::find_by_id(key_id(&hash))
        .one(db)
        .await
        .map_err(db::error)?;
    let Some(row) = row.filter(|r| r.revoked_at.is_none()) else {
        return Err(invalid_key());
    };
    if !bool::from(row.key_hash.as_bytes().ct_eq(hash.as_bytes())) {
        return Err(invalid_key());
    }
    let account = account::Entity::find_by_id(&row.account_id)
        .one(db)
        .await
        .map_err(db::error)?
        .ok_or_else(invalid_key)?;
    Ok(Principal {
        account_id: account.id,
        role: account.role,
    })
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
}
