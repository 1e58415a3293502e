//! The control plane's configuration: environment variables (API.md §3), each also a flag.

use std::net::SocketAddr;
use std::path::PathBuf;

use frameos_blobstore::{LocalStore, S3Config, S3Store, Store};
use frameos_package::{Limits, PlatformMaxima};

#[derive(Clone, Debug, clap::Args)]
pub struct Config {
    /// `postgres://…` or `sqlite://…`.
    #[arg(
        long,
        env = "FRAMEOS_DATABASE_URL",
        default_value = "sqlite://./.frameos/frameos.db"
    )]
    pub database_url: String,

    /// Where the gRPC server listens.
    #[arg(long, env = "FRAMEOS_GRPC_ADDR", default_value = "127.0.0.1:50051")]
    pub grpc_addr: SocketAddr,

    /// Run pending migrations at start (always on in `frameos dev`).
    #[arg(long, env = "FRAMEOS_MIGRATE", default_value_t = false)]
    pub migrate: bool,

    /// If set, an admin account with exactly this API key exists at start.
    #[arg(long, env = "FRAMEOS_BOOTSTRAP_ADMIN_KEY", hide_env_values = true)]
    pub bootstrap_admin_key: Option<String>,

    #[command(flatten)]
    pub store: StoreConfig,

    #[command(flatten)]
    pub limits: LimitsConfig,
}

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

/// Package limits and platform maxima for agent resources.
#[derive(Clone, Debug, clap::Args)]
pub struct LimitsConfig {
    #[arg(long, env = "FRAMEOS_MAX_PACKAGE_BYTES", default_value_t = 10 * 1024 * 1024)]
    pub max_package_bytes: u64,
    #[arg(long, env = "FRAMEOS_MAX_UNPACKED_BYTES", default_value_t = 50 * 1024 * 1024)]
    pub max_unpacked_bytes: u64,
    #[arg(long, env = "FRAMEOS_MAX_PACKAGE_ENTRIES", default_value_t = 2_000)]
    pub max_package_entries: usize,
    #[arg(long, env = "FRAMEOS_MAX_CPU_CORES", default_value_t = 2.0)]
    pub max_cpu_cores: f64,
    #[arg(long, env = "FRAMEOS_MAX_MEMORY_MB", default_value_t = 2048)]
    pub max_memory_mb: u64,
    #[arg(long, env = "FRAMEOS_MAX_TIMEOUT_MS", default_value_t = 300_000)]
    pub max_timeout_ms: u64,
}

impl LimitsConfig {
    pub fn package_limits(&self) -> Limits {
        Limits {
            max_compressed_bytes: self.max_package_bytes,
            max_uncompressed_bytes: self.max_unpacked_bytes,
            max_entries: self.max_package_entries,
        }
    }

    pub fn platform_maxima(&self) -> PlatformMaxima {
        PlatformMaxima {
            cpu_cores: self.max_cpu_cores,
            memory_mb: self.max_memory_mb,
            timeout_ms: self.max_timeout_ms,
        }
    }
}

impl Config {
    /// The embedded defaults, as `frameos dev` and tests start from.
    pub fn embedded() -> Self {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Wrapper {
            #[command(flatten)]
            config: Config,
        }
        // Parsing no arguments yields the documented defaults (environment still applies).
        Wrapper::parse_from(["control-plane"]).config
    }
}
