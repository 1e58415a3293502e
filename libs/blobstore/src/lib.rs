//! Where agent packages live: an S3-compatible bucket in production (R2, MinIO, AWS) or a local
//! directory for the embedded default. Objects are written once and never modified.

mod config;
mod credentials;
mod local;
mod s3;

pub use config::StoreConfig;
pub use local::LocalStore;
pub use s3::{S3Config, S3Store};

use bytes::Bytes;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("object {key:?} not found")]
    NotFound { key: String },
    #[error("invalid object key {key:?}")]
    InvalidKey { key: String },
    #[error("object {key:?} is larger than the limit of {limit} bytes")]
    TooLarge { key: String, limit: u64 },
    #[error("package store i/o failed: {0}")]
    Io(#[from] std::io::Error),
    #[error("s3 request failed: {0}")]
    S3(String),
}

/// The package store. An enum rather than a trait object: there are exactly two real backends.
#[derive(Clone, Debug)]
pub enum Store {
    S3(S3Store),
    Local(LocalStore),
}

impl Store {
    pub async fn put(&self, key: &str, body: Bytes) -> Result<(), Error> {
        check_key(key)?;
        match self {
            Store::S3(s) => s.put(key, body).await,
            Store::Local(l) => l.put(key, body).await,
        }
    }

    /// Reads a whole object, refusing one larger than `limit` bytes.
    pub async fn get(&self, key: &str, limit: u64) -> Result<Bytes, Error> {
        check_key(key)?;
        match self {
            Store::S3(s) => s.get(key, limit).await,
            Store::Local(l) => l.get(key, limit).await,
        }
    }

    /// Whether the store answers (bucket reachable / directory writable).
    pub async fn check(&self) -> Result<(), Error> {
        match self {
            Store::S3(s) => s.check().await,
            Store::Local(l) => l.check().await,
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Store::S3(s) => format!("s3 bucket {}", s.bucket()),
            Store::Local(l) => format!("local directory {}", l.root().display()),
        }
    }
}

/// Keys are ours (`agents/{id}/v{version}.tar.gz`), but a bug must never turn into a path escape.
fn check_key(key: &str) -> Result<(), Error> {
    let ok = !key.is_empty()
        && key.len() <= 512
        && !key.starts_with('/')
        && key
            .split('/')
            .all(|part| !part.is_empty() && part != "." && part != "..")
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '/' | '.' | '-' | '_' | '+'));
    if ok {
        Ok(())
    } else {
        Err(Error::InvalidKey {
            key: key.to_string(),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn keys_cannot_escape() {
        for bad in [
            "",
            "/etc/passwd",
            "a/../b",
            "../x",
            "a//b",
            "a/./b",
            "a b",
            "a\\b",
        ] {
            assert!(check_key(bad).is_err(), "{bad:?}");
        }
        check_key("agents/0192/v1.0.0-rc.1+build.tar.gz").unwrap();
    }

    #[tokio::test]
    async fn local_store_round_trips_and_bounds_reads() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::Local(LocalStore::new(dir.path()));
        store.check().await.unwrap();
        store
            .put("agents/a/v1.0.0.tar.gz", Bytes::from_static(b"hello"))
            .await
            .unwrap();
        let got = store.get("agents/a/v1.0.0.tar.gz", 5).await.unwrap();
        assert_eq!(&got[..], b"hello");
        assert!(matches!(
            store.get("agents/a/v1.0.0.tar.gz", 4).await,
            Err(Error::TooLarge { .. })
        ));
        assert!(matches!(
            store.get("agents/a/v2.0.0.tar.gz", 10).await,
            Err(Error::NotFound { .. })
        ));
    }
}
