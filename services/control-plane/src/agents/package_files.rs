//! The files inside a stored package, for the people who must read them before it runs: its
//! developer and the reviewing admins. Read from the exact bytes that were uploaded and
//! scanned, through the same archive checks as the upload.

use bytes::Bytes;
use frameos_blobstore::Store;
use frameos_core::Error;
use frameos_package::Limits;
use frameos_proto::v1;
use sea_orm::{ColumnTrait, DatabaseConnection, EntityTrait, QueryFilter};

use crate::accounts::auth::Principal;
use crate::agents::catalog;
use crate::db;
use crate::entity::agent_version;

/// The most of one file returned at once: enough for any source file a reviewer reads, small
/// enough for one gRPC message and one page.
pub const MAX_FILE_BYTES: usize = 256 * 1024;

pub struct PackageFiles {
    pub db: DatabaseConnection,
    pub store: Store,
    pub limits: Limits,
}

impl PackageFiles {
    /// Every regular file of the package of `slug`@`version`, by path.
    pub async fn list(
        &self,
        caller: &Principal,
        slug: &str,
        version: &str,
    ) -> Result<Vec<v1::PackageFile>, Error> {
        let archive = self.open(caller, slug, version).await?;
        let mut items: Vec<v1::PackageFile> = archive
            .files
            .iter()
            .map(|f| v1::PackageFile {
                path: f.path.clone(),
                size_bytes: f.contents.len() as u64,
            })
            .collect();
        items.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(items)
    }

    /// One file of the package, cut at [`MAX_FILE_BYTES`].
    pub async fn get(
        &self,
        caller: &Principal,
        slug: &str,
        version: &str,
        path: &str,
    ) -> Result<v1::GetPackageFileResponse, Error> {
        let archive = self.open(caller, slug, version).await?;
        let file = archive
            .get(path)
            .ok_or_else(|| Error::not_found(format!("file {path:?} in {slug}@{version}")))?;
        let truncated = file.contents.len() > MAX_FILE_BYTES;
        let contents = file.contents[..file.contents.len().min(MAX_FILE_BYTES)].to_vec();
        Ok(v1::GetPackageFileResponse {
            file: Some(v1::PackageFile {
                path: file.path.clone(),
                size_bytes: file.contents.len() as u64,
            }),
            contents,
            truncated,
        })
    }

    async fn open(
        &self,
        caller: &Principal,
        slug: &str,
        version: &str,
    ) -> Result<frameos_package::archive::Archive, Error> {
        let agent = catalog::owned(&self.db, slug, caller, true).await?;
        let row = agent_version::Entity::find()
            .filter(agent_version::Column::AgentId.eq(&agent.id))
            .filter(agent_version::Column::Version.eq(version))
            .one(&self.db)
            .await
            .map_err(db::error)?
            .ok_or_else(|| Error::not_found(format!("version {version:?} of {slug}")))?;
        let bytes: Bytes = self
            .store
            .get(&row.package_key, self.limits.max_compressed_bytes)
            .await
            .map_err(|e| {
                tracing::error!(error = %e, key = %row.package_key, "package store read failed");
                Error::unavailable("the package store is unavailable; try again")
            })?;
        let limits = self.limits;
        // Decompression is CPU work: off the async workers, as on upload.
        tokio::task::spawn_blocking(move || frameos_package::archive::inspect(&bytes, &limits))
            .await
            .map_err(|e| Error::internal(format!("package inspection panicked: {e}")))?
            .map_err(|e| {
                // The bytes passed these checks on upload; failing now means they changed.
                Error::internal(format!(
                    "the stored package of {slug}@{version} no longer opens: {e}"
                ))
            })
    }
}
