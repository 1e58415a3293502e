//! Resolved API keys kept for a few seconds, so that a request costs no key lookup in the
//! database (ADR 0027).
//!
//! What is kept, per key, is the caller its key resolved to, the key's own expiry and when its
//! use was last recorded; entries are found by the SHA-256 of the key, never the key itself.
//! The bound: a key revoked, or an account whose role changed, on another replica is seen here
//! within the TTL (at most [`MAX_TTL`]); a key revoked through this replica is forgotten at
//! once; a key's expiry is checked on every request, so it is refused exactly at `expires_at`.
//!
//! Only valid keys are kept: an unknown, revoked or expired key is looked up every time, so a
//! flood of made-up keys neither grows the cache nor pushes the callers' keys out of it. The
//! cache holds at most `capacity` keys; stale ones go first, then any one.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use frameos_core::Error;
use sea_orm::DatabaseConnection;

use super::auth::Principal;
use super::keys::{self, Resolved};

/// The longest a replica may keep a key it did not see revoked.
pub const MAX_TTL: Duration = Duration::from_secs(10);
/// Keys kept at most.
pub const CAPACITY: usize = 10_000;

struct Entry {
    resolved: Resolved,
    fetched: Instant,
}

/// Keys resolved within the last `ttl`, shared by the auth layer and the key service.
#[derive(Clone)]
pub struct KeyCache {
    inner: Arc<Inner>,
}

struct Inner {
    ttl: Duration,
    capacity: usize,
    /// By the key's hash (hex, as stored in `api_key.key_hash`).
    entries: Mutex<HashMap<String, Entry>>,
    /// Bumped by every eviction: a lookup that started before one must not store its answer,
    /// which may predate the revocation.
    evictions: AtomicU64,
}

impl KeyCache {
    /// `ttl` zero: nothing is kept, every request looks its key up.
    pub fn new(ttl: Duration, capacity: usize) -> KeyCache {
        KeyCache {
            inner: Arc::new(Inner {
                ttl,
                capacity,
                entries: Mutex::default(),
                evictions: AtomicU64::new(0),
            }),
        }
    }

    /// The caller holding `key`; unknown, revoked and expired keys are `UNAUTHENTICATED`.
    pub async fn resolve(&self, db: &DatabaseConnection, key: &str) -> Result<Principal, Error> {
        let hash = keys::digest(key);
        let now = Utc::now();
        if let Some((principal, touch)) = self.hit(&hash, now)? {
            if touch {
                keys::touch(db, &principal.key_id, now).await;
            }
            return Ok(principal);
        }
        let evictions = self.inner.evictions.load(Ordering::Acquire);
        let resolved = keys::resolve_hashed(db, &hash, now).await?;
        let principal = resolved.principal.clone();
        if !self.inner.ttl.is_zero() {
            self.insert(hash, resolved, evictions);
        }
        Ok(principal)
    }

    /// Forgets the key whose hash is `key_hash` (it was revoked).
    pub fn evict(&self, key_hash: &str) {
        let mut entries = self.lock();
        self.inner.evictions.fetch_add(1, Ordering::AcqRel);
        entries.remove(key_hash);
    }

    /// A fresh entry's caller, and whether its use is due to be recorded; an error when the
    /// key expired meanwhile.
    fn hit(&self, hash: &str, now: DateTime<Utc>) -> Result<Option<(Principal, bool)>, Error> {
        let mut entries = self.lock();
        let Some(entry) = entries.get_mut(hash) else {
            return Ok(None);
        };
        if entry.fetched.elapsed() >= self.inner.ttl {
            entries.remove(hash);
            return Ok(None);
        }
        if let Some(expires_at) = entry.resolved.expires_at.filter(|at| *at <= now) {
            entries.remove(hash);
            return Err(keys::expired(expires_at));
        }
        // Whoever finds the use due records it; the others see it recorded already.
        let touch = keys::touch_due(entry.resolved.last_used_at, now);
        if touch {
            entry.resolved.last_used_at = Some(now);
        }
        Ok(Some((entry.resolved.principal.clone(), touch)))
    }

    fn insert(&self, hash: String, resolved: Resolved, evictions: u64) {
        let mut entries = self.lock();
        if self.inner.evictions.load(Ordering::Acquire) != evictions {
            return;
        }
        if entries.len() >= self.inner.capacity && !entries.contains_key(&hash) {
            let ttl = self.inner.ttl;
            entries.retain(|_, entry| entry.fetched.elapsed() < ttl);
            if entries.len() >= self.inner.capacity {
                let any = entries.keys().next().cloned();
                if let Some(any) = any {
                    entries.remove(&any);
                }
            }
        }
        if self.inner.capacity > 0 {
            let fetched = Instant::now();
            entries.insert(hash, Entry { resolved, fetched });
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        self.inner.entries.lock().unwrap_or_else(|e| e.into_inner())
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use frameos_core::{ErrorCode, Role};
    use sea_orm::sea_query::Expr;
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter};

    use super::*;
    use crate::entity::{account, api_key};

    const LONG: Duration = Duration::from_secs(3600);

    async fn database() -> (DatabaseConnection, String) {
        let db = crate::db::connect("sqlite::memory:").await.unwrap();
        crate::db::migrate(&db).await.unwrap();
        let (account, _) = super::super::create(&db, "dev", Role::Developer)
            .await
            .unwrap();
        (db, account.id)
    }

    async fn new_key(db: &DatabaseConnection, account_id: &str, new: keys::NewKey) -> String {
        let key = keys::generate();
        keys::store(db, account_id, &key, new).await.unwrap();
        key
    }

    /// Revokes `key` in the database only, as another replica would.
    async fn revoke_elsewhere(db: &DatabaseConnection, key: &str) {
        let row = keys::find(db, key).await.unwrap().unwrap();
        api_key::Entity::update_many()
            .col_expr(api_key::Column::RevokedAt, Expr::value(Utc::now()))
            .filter(api_key::Column::Id.eq(&row.id))
            .exec(db)
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_kept_key_outlives_a_revocation_elsewhere_until_evicted_here() {
        let (db, account_id) = database().await;
        let key = new_key(&db, &account_id, keys::NewKey::full("k")).await;
        let cache = KeyCache::new(LONG, CAPACITY);
        let principal = cache.resolve(&db, &key).await.unwrap();
        assert_eq!(principal.role, Role::Developer);

        // Another replica's revocation is not seen while the entry is fresh: the TTL is the bound.
        revoke_elsewhere(&db, &key).await;
        assert!(cache.resolve(&db, &key).await.is_ok());

        // Revoked through this replica: forgotten at once, and the database says revoked.
        cache.evict(&keys::digest(&key));
        let refused = cache.resolve(&db, &key).await.unwrap_err();
        assert_eq!(refused.code, ErrorCode::Unauthenticated);
        assert_eq!(cache.len(), 0);
    }

    #[tokio::test]
    async fn without_a_ttl_every_request_reads_the_database() {
        let (db, account_id) = database().await;
        let key = new_key(&db, &account_id, keys::NewKey::full("k")).await;
        let cache = KeyCache::new(Duration::ZERO, CAPACITY);
        cache.resolve(&db, &key).await.unwrap();
        assert_eq!(cache.len(), 0);
        account::Entity::update_many()
            .col_expr(account::Column::Role, Expr::value(Role::User.as_str()))
            .exec(&db)
            .await
            .unwrap();
        assert_eq!(cache.resolve(&db, &key).await.unwrap().role, Role::User);
        revoke_elsewhere(&db, &key).await;
        assert!(cache.resolve(&db, &key).await.is_err());
    }

    #[tokio::test]
    async fn a_kept_key_is_refused_exactly_at_its_expiry() {
        let (db, account_id) = database().await;
        let expires_at = Utc::now() + chrono::TimeDelta::milliseconds(300);
        let new = keys::NewKey {
            expires_at: Some(expires_at),
            ..keys::NewKey::full("short")
        };
        let key = new_key(&db, &account_id, new).await;
        let cache = KeyCache::new(LONG, CAPACITY);
        cache.resolve(&db, &key).await.unwrap();
        assert_eq!(cache.len(), 1);
        // Time itself is the event: wait until just past the expiry.
        let left = (expires_at - Utc::now()).to_std().unwrap_or_default();
        tokio::time::sleep(left + Duration::from_millis(10)).await;
        let refused = cache.resolve(&db, &key).await.unwrap_err();
        assert!(refused.message.contains("expired"), "{refused:?}");
    }

    #[tokio::test]
    async fn unknown_keys_are_not_kept_and_the_cache_is_bounded() {
        let (db, account_id) = database().await;
        let cache = KeyCache::new(LONG, 2);
        for _ in 0..50 {
            let refused = cache.resolve(&db, &keys::generate()).await.unwrap_err();
            assert_eq!(refused.code, ErrorCode::Unauthenticated);
        }
        assert_eq!(cache.len(), 0);
        let mut held = Vec::new();
        for n in 0..3 {
            let key = new_key(&db, &account_id, keys::NewKey::full(&format!("k{n}"))).await;
            cache.resolve(&db, &key).await.unwrap();
            held.push(key);
        }
        assert_eq!(cache.len(), 2);
        // Pushed out is not refused: it is looked up again.
        for key in &held {
            cache.resolve(&db, key).await.unwrap();
        }
    }

    #[tokio::test]
    async fn use_is_recorded_once_a_minute_from_kept_keys_too() {
        let (db, account_id) = database().await;
        let key = new_key(&db, &account_id, keys::NewKey::full("k")).await;
        let cache = KeyCache::new(LONG, CAPACITY);
        cache.resolve(&db, &key).await.unwrap();
        let first = keys::find(&db, &key).await.unwrap().unwrap().last_used_at;
        assert!(first.is_some());
        cache.resolve(&db, &key).await.unwrap();
        let again = keys::find(&db, &key).await.unwrap().unwrap().last_used_at;
        assert_eq!(first, again, "written again within the minute");

        // A minute on, for the database and for the kept entry: the next request records it.
        let old = Utc::now() - chrono::TimeDelta::seconds(120);
        api_key::Entity::update_many()
            .col_expr(api_key::Column::LastUsedAt, Expr::value(old))
            .exec(&db)
            .await
            .unwrap();
        cache
            .lock()
            .get_mut(&keys::digest(&key))
            .unwrap()
            .resolved
            .last_used_at = Some(old);
        cache.resolve(&db, &key).await.unwrap();
        let touched = keys::find(&db, &key).await.unwrap().unwrap().last_used_at;
        assert!(touched.unwrap() > old);
    }
}
