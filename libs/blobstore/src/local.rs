//! A directory on the local disk, for `frameos dev`.

use std::path::{Path, PathBuf};

use bytes::Bytes;
use tokio::io::AsyncWriteExt;

use crate::Error;

#[derive(Clone, Debug)]
pub struct LocalStore {
    root: PathBuf,
}

impl LocalStore {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        LocalStore { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub(crate) async fn put(&self, key: &str, body: Bytes) -> Result<(), Error> {
        let path = self.root.join(key);
        let parent = path.parent().unwrap_or(&self.root);
        tokio::fs::create_dir_all(parent).await?;
        // Write beside the target and rename, so a reader never sees half an object.
        let tmp = parent.join(format!(".tmp-{}", uuid::Uuid::new_v4()));
        let mut file = tokio::fs::File::create(&tmp).await?;
        file.write_all(&body).await?;
        file.sync_all().await?;
        drop(file);
        tokio::fs::rename(&tmp, &path).await?;
        Ok(())
    }

    pub(crate) async fn get(&self, key: &str, limit: u64) -> Result<Bytes, Error> {
        let path = self.root.join(key);
        let meta = match tokio::fs::metadata(&path).await {
            Ok(meta) => meta,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(Error::NotFound {
                    key: key.to_string(),
                });
            }
            Err(e) => return Err(e.into()),
        };
        if meta.len() > limit {
            return Err(Error::TooLarge {
                key: key.to_string(),
                limit,
            });
        }
        Ok(Bytes::from(tokio::fs::read(&path).await?))
    }

    pub(crate) async fn check(&self) -> Result<(), Error> {
        tokio::fs::create_dir_all(&self.root).await?;
        Ok(())
    }
}
