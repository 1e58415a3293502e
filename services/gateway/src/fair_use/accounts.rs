//! Which account a key belongs to, so that limits follow the account and not the key (an
//! account may hold several). The control plane knows (`WhoAmI`); answers are kept for a minute.
//!
//! This is only about whom to charge a request to. Whether the key is valid is decided, as
//! always, by the control plane on the call the request makes: a revoked key that is still
//! remembered here is refused there all the same.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use frameos_proto::v1::WhoAmIRequest;
use sha2::{Digest, Sha256};

use crate::auth::{self, ApiKey};
use crate::control_plane::ControlPlane;

/// How long an answer is kept.
const TTL: Duration = Duration::from_secs(60);
/// Keys remembered at most; expired ones go first when it is reached.
const MAX_KEYS: usize = 100_000;
/// A request waits this long at most to learn its account; then it counts as anonymous.
const RESOLVE_TIMEOUT: Duration = Duration::from_secs(2);

/// SHA-256 of the key: the map never holds a key itself.
type Fingerprint = [u8; 32];
/// Each key's account and when it was learnt.
type Known = HashMap<Fingerprint, (Arc<str>, Instant)>;

#[derive(Clone, Debug)]
pub struct Accounts {
    control_plane: ControlPlane,
    known: Arc<Mutex<Known>>,
}

impl Accounts {
    pub fn new(control_plane: ControlPlane) -> Self {
        Accounts {
            control_plane,
            known: Arc::default(),
        }
    }

    /// The account of `key`, if it was learnt within the last minute.
    pub fn cached(&self, key: &ApiKey) -> Option<Arc<str>> {
        let known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        known
            .get(&fingerprint(key))
            .filter(|(_, learnt)| learnt.elapsed() < TTL)
            .map(|(account, _)| account.clone())
    }

    /// Asks the control plane; `None` for an invalid key or no answer in time.
    pub async fn resolve(&self, key: &ApiKey) -> Option<Arc<str>> {
        let mut client = self.control_plane.accounts();
        let call = client.who_am_i(auth::request(WhoAmIRequest {}, Some(key)));
        let account: Arc<str> = match tokio::time::timeout(RESOLVE_TIMEOUT, call).await {
            Ok(Ok(reply)) => match reply.into_inner().account {
                Some(account) => account.id.into(),
                None => return None,
            },
            Ok(Err(status)) => {
                tracing::debug!(code = ?status.code(), "caller's key not resolved");
                return None;
            }
            Err(_) => {
                tracing::debug!("caller's key not resolved in time");
                return None;
            }
        };
        self.remember(fingerprint(key), account.clone(), Instant::now());
        Some(account)
    }

    fn remember(&self, key: Fingerprint, account: Arc<str>, learnt: Instant) {
        let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        if known.len() >= MAX_KEYS {
            known.retain(|_, (_, learnt)| learnt.elapsed() < TTL);
            if known.len() >= MAX_KEYS {
                // All fresh: forget them all rather than grow; they are learnt again.
                known.clear();
            }
        }
        known.insert(key, (account, learnt));
    }
}

fn fingerprint(key: &ApiKey) -> Fingerprint {
    Sha256::digest(key.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderMap;

    use super::*;

    fn key(secret: &str) -> ApiKey {
        let mut headers = HeaderMap::new();
        headers.insert("authorization", format!("Bearer {secret}").parse().unwrap());
        ApiKey::from_headers(&headers).unwrap().unwrap()
    }

    fn accounts() -> Accounts {
        let control_plane = ControlPlane::connect_lazy(
            &Default::default(),
            "http://127.0.0.1:9",
            Duration::from_secs(1),
            1024,
        )
        .unwrap();
        Accounts::new(control_plane)
    }

    /// A minute ago, when answers learnt then have just expired.
    fn a_minute_ago() -> Instant {
        Instant::now().checked_sub(TTL).unwrap()
    }

    #[tokio::test]
    async fn answers_are_kept_for_a_minute_by_fingerprint() {
        let accounts = accounts();
        accounts.remember(fingerprint(&key("fos_a")), "acc-a".into(), Instant::now());
        assert_eq!(accounts.cached(&key("fos_a")).as_deref(), Some("acc-a"));
        assert_eq!(accounts.cached(&key("fos_b")), None);
        accounts.remember(fingerprint(&key("fos_a")), "acc-a".into(), a_minute_ago());
        assert_eq!(accounts.cached(&key("fos_a")), None);
    }

    #[tokio::test]
    async fn an_unreachable_control_plane_resolves_nothing() {
        assert_eq!(accounts().resolve(&key("fos_a")).await, None);
    }

    #[tokio::test]
    async fn the_map_stays_bounded() {
        let accounts = accounts();
        let expired = a_minute_ago();
        for i in 0..MAX_KEYS {
            let mut fingerprint = [0u8; 32];
            fingerprint[..8].copy_from_slice(&(i as u64).to_le_bytes());
            accounts.remember(fingerprint, "acc".into(), expired);
        }
        assert_eq!(accounts.known.lock().unwrap().len(), MAX_KEYS);
        accounts.remember([0xff; 32], "acc".into(), Instant::now());
        // The expired ones made room.
        assert_eq!(accounts.known.lock().unwrap().len(), 1);
    }
}
