//! Packages unpacked by digest. A package is fetched by key, its SHA-256 checked against the
//! one recorded at upload, and extracted with the upload's safety rules; only then does it
//! appear under its digest, so a half-written or tampered package is never mounted.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use frameos_blobstore::Store;
use frameos_package::Limits;
use sha2::{Digest, Sha256};

use crate::metrics::{CacheResult, NodeMetrics};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("bad package digest {0:?}")]
    BadDigest(String),
    #[error("package {key} has SHA-256 {actual}, expected {expected}")]
    DigestMismatch {
        key: String,
        expected: String,
        actual: String,
    },
    #[error("fetching package {key}: {source}")]
    Fetch {
        key: String,
        source: frameos_blobstore::Error,
    },
    #[error("unpacking package {key}: {source}")]
    Unpack {
        key: String,
        source: frameos_package::Error,
    },
    #[error("package cache i/o: {0}")]
    Io(#[from] std::io::Error),
}

#[derive(Clone)]
pub struct Cache {
    dir: PathBuf,
    store: Store,
    limits: Limits,
    /// One fetch per digest at a time.
    locks: Arc<Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>>,
    metrics: Option<NodeMetrics>,
}

impl Cache {
    /// `dir` is created and made absolute (it is bind-mounted into containers).
    pub fn new(dir: &Path, store: Store, limits: Limits) -> Result<Cache, Error> {
        std::fs::create_dir_all(dir)?;
        Ok(Cache {
            dir: std::fs::canonicalize(dir)?,
            store,
            limits,
            locks: Arc::default(),
            metrics: None,
        })
    }

    /// Counts hits and misses in `metrics`.
    pub fn with_metrics(mut self, metrics: NodeMetrics) -> Cache {
        self.metrics = Some(metrics);
        self
    }

    fn count(&self, result: CacheResult) {
        if let Some(metrics) = &self.metrics {
            metrics.cache(result);
        }
    }

    pub async fn get(&self, key: &str, sha256: &str) -> Result<PathBuf, Error> {
        if sha256.len() != 64 || !sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(Error::BadDigest(sha256.to_string()));
        }
        let target = self.dir.join(sha256);
        if tokio::fs::try_exists(&target).await? {
            self.count(CacheResult::Hit);
            return Ok(target);
        }
        let lock = {
            let mut locks = self.locks.lock().unwrap_or_else(|e| e.into_inner());
            locks.entry(sha256.to_string()).or_default().clone()
        };
        let _guard = lock.lock().await;
        if tokio::fs::try_exists(&target).await? {
            self.count(CacheResult::Hit);
            return Ok(target);
        }
        let bytes = self
            .store
            .get(key, self.limits.max_compressed_bytes)
            .await
            .map_err(|source| Error::Fetch {
                key: key.to_string(),
                source,
            })?;
        let actual = hex::encode(Sha256::digest(&bytes));
        if !actual.eq_ignore_ascii_case(sha256) {
            return Err(Error::DigestMismatch {
                key: key.to_string(),
                expected: sha256.to_string(),
                actual,
            });
        }
        let staging = self
            .dir
            .join(format!(".tmp-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir(&staging)?;
        let limits = self.limits;
        let into = staging.clone();
        let unpacked = tokio::task::spawn_blocking(move || {
            frameos_package::archive::extract(&bytes, &into, &limits)
        })
        .await
        .map_err(|e| std::io::Error::other(e.to_string()))?;
        if let Err(source) = unpacked {
            let _ = std::fs::remove_dir_all(&staging);
            return Err(Error::Unpack {
                key: key.to_string(),
                source,
            });
        }
        // Readable by the container's unprivileged user, writable by nobody in it.
        set_mode(&staging, 0o755)?;
        tokio::fs::rename(&staging, &target).await?;
        self.count(CacheResult::Miss);
        tracing::info!(key, sha256, "package cached");
        Ok(target)
    }
}

fn set_mode(path: &Path, mode: u32) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tar_gz(files: &[(&str, &[u8])]) -> Vec<u8> {
        let encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        let mut builder = tar::Builder::new(encoder);
        for (path, contents) in files {
            let mut header = tar::Header::new_gnu();
            header.set_size(contents.len() as u64);
            header.set_mode(0o644);
            builder.append_data(&mut header, path, *contents).unwrap();
        }
        builder.into_inner().unwrap().finish().unwrap()
    }

    async fn cache_with(bytes: &[u8]) -> (tempfile::TempDir, Cache) {
        let root = tempfile::tempdir().unwrap();
        let store = Store::Local(frameos_blobstore::LocalStore::new(
            root.path().join("store"),
        ));
        store
            .put("agents/a/v1.0.0.tar.gz", bytes.to_vec().into())
            .await
            .unwrap();
        let cache = Cache::new(&root.path().join("cache"), store, Limits::default()).unwrap();
        (root, cache)
    }

    #[tokio::test]
    async fn unpacks_a_verified_package_once_under_its_digest() {
        let bytes = tar_gz(&[
            ("agent.json", b"{}"),
            ("lib/index.js", b"module.exports = 1;"),
        ]);
        let digest = hex::encode(Sha256::digest(&bytes));
        let (_root, cache) = cache_with(&bytes).await;
        let dir = cache.get("agents/a/v1.0.0.tar.gz", &digest).await.unwrap();
        assert!(dir.is_absolute());
        assert_eq!(
            std::fs::read(dir.join("lib/index.js")).unwrap(),
            b"module.exports = 1;"
        );
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(
            std::fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
            0o755
        );
        // A second get is served from the cache.
        assert_eq!(
            cache.get("agents/a/v1.0.0.tar.gz", &digest).await.unwrap(),
            dir
        );
    }

    #[tokio::test]
    async fn refuses_a_package_whose_digest_does_not_match() {
        let bytes = tar_gz(&[("agent.json", b"{}")]);
        let (root, cache) = cache_with(&bytes).await;
        let wrong = "0".repeat(64);
        let err = cache
            .get("agents/a/v1.0.0.tar.gz", &wrong)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::DigestMismatch { .. }), "{err}");
        assert!(!root.path().join("cache").join(&wrong).exists());
        let err = cache
            .get("agents/a/v1.0.0.tar.gz", "../../etc")
            .await
            .unwrap_err();
        assert!(matches!(err, Error::BadDigest(_)));
    }
}
