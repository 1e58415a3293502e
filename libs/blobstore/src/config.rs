//! How a service chooses its package store, from environment variables and flags (API.md §3).

use std::path::PathBuf;

use crate::{LocalStore, S3Config, S3Store, Store};

#[derive(Clone, Debug, clap::Args)]
pub struct StoreConfig {
    /// S3-compatible endpoint; absent → the local directory store.
    #[arg(long, env = "FRAMEOS_S3_ENDPOINT")]
    pub s3_endpoint: Option<String>,
    /// Bucket of the packages; setting it alone selects AWS S3 proper.
    #[arg(long, env = "FRAMEOS_S3_BUCKET")]
    pub s3_bucket: Option<String>,
    #[arg(long, env = "FRAMEOS_S3_REGION", default_value = "us-east-1")]
    pub s3_region: String,
    /// Path-style addressing (MinIO and most self-hosted stores need it).
    #[arg(long, env = "FRAMEOS_S3_PATH_STYLE", default_value_t = true, action = clap::ArgAction::Set)]
    pub s3_path_style: bool,
    #[arg(
        long,
        env = "AWS_ACCESS_KEY_ID",
        default_value = "",
        hide_env_values = true
    )]
    pub aws_access_key_id: String,
    #[arg(
        long,
        env = "AWS_SECRET_ACCESS_KEY",
        default_value = "",
        hide_env_values = true
    )]
    pub aws_secret_access_key: String,
    /// The local directory store, used when no S3 bucket is configured.
    #[arg(
        long,
        env = "FRAMEOS_PACKAGE_DIR",
        default_value = "./.frameos/packages"
    )]
    pub package_dir: PathBuf,
}

impl StoreConfig {
    pub fn build(&self) -> Store {
        match (&self.s3_endpoint, &self.s3_bucket) {
            (None, None) => Store::Local(LocalStore::new(&self.package_dir)),
            (endpoint, bucket) => Store::S3(S3Store::new(&S3Config {
                endpoint: endpoint.clone(),
                bucket: bucket
                    .clone()
                    .unwrap_or_else(|| "frameos-agents".to_string()),
                region: self.s3_region.clone(),
                access_key_id: self.aws_access_key_id.clone(),
                secret_access_key: self.aws_secret_access_key.clone(),
                path_style: self.s3_path_style,
            })),
        }
    }
}
