//! The control plane's configuration: environment variables (API.md §3), each also a flag.

use std::net::SocketAddr;

use frameos_blobstore::StoreConfig;
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

    /// RabbitMQ URL; absent → an in-process queue (only useful with an in-process node).
    #[arg(long, env = "FRAMEOS_AMQP_URL", hide_env_values = true)]
    pub amqp_url: Option<String>,

    /// Name of the job queue (and the prefix of its retry and dead-letter queues).
    #[arg(long, env = "FRAMEOS_QUEUE_NAME", default_value = "frameos.jobs")]
    pub queue_name: String,

    /// Deliveries of a job (the first included) before a platform failure is final.
    #[arg(long, env = "FRAMEOS_JOB_MAX_ATTEMPTS", default_value_t = 5)]
    pub job_max_attempts: u32,

    /// Back-off before the second delivery; doubles for each later one (at most 60 s).
    #[arg(long, env = "FRAMEOS_JOB_RETRY_BASE_MS", default_value_t = 1000)]
    pub job_retry_base_ms: u64,

    /// Shared secret execution nodes present on every NodeService call. Absent → a random one
    /// per start, which only in-process nodes (`frameos dev`) know.
    #[arg(long, env = "FRAMEOS_NODE_TOKEN", hide_env_values = true)]
    pub node_token: Option<String>,

    /// Key of the stream tokens that open one execution's events (API.md §4.3, ADR 0023): 64
    /// hex digits, the same on every replica. Absent → derived from FRAMEOS_MANDATE_SIGNING_KEY
    /// when that is set, else random per start (tokens then work on this replica only).
    #[arg(long, env = "FRAMEOS_STREAM_TOKEN_KEY", hide_env_values = true)]
    pub stream_token_key: Option<String>,

    /// Seconds a stop may take after SIGTERM/SIGINT (API.md §4.3): readiness off, the outbox
    /// flushed, requests in flight finished.
    #[arg(long, env = "FRAMEOS_SHUTDOWN_GRACE_SECS", default_value_t = frameos_lifecycle::SERVICE_GRACE_SECS)]
    pub shutdown_grace_secs: u64,

    /// If set, an admin account with exactly this API key exists at start.
    #[arg(long, env = "FRAMEOS_BOOTSTRAP_ADMIN_KEY", hide_env_values = true)]
    pub bootstrap_admin_key: Option<String>,

    /// Seconds a resolved API key is kept (0 to 10; 0: every request reads the database). A key
    /// revoked, or a role changed, through another replica is honoured here within this bound
    /// (ADR 0027); through this replica and at a key's expiry, at once.
    #[arg(long, env = "FRAMEOS_KEY_CACHE_TTL_SECS", default_value_t = 5,
          value_parser = clap::value_parser!(u64).range(0..=10))]
    pub key_cache_ttl_secs: u64,

    /// Where `/metrics` is served (Prometheus text, OpenMetrics when asked); absent → off.
    #[arg(long, env = "FRAMEOS_METRICS_ADDR")]
    pub metrics_addr: Option<SocketAddr>,

    /// Milliseconds between two reads of a watched execution without a wake-up: the safety net
    /// behind the live events of ADR 0028. Default 5000; 500 on PostgreSQL with
    /// FRAMEOS_WATCH_NOTIFY=false.
    #[arg(long, env = "FRAMEOS_WATCH_POLL_MS")]
    pub watch_poll_ms: Option<u64>,

    /// On PostgreSQL, replicas wake each other's watchers with LISTEN/NOTIFY (ADR 0028). Turn it
    /// off where LISTEN does not work (a PgBouncer in transaction mode): watchers then poll.
    #[arg(long, env = "FRAMEOS_WATCH_NOTIFY", default_value_t = true, action = clap::ArgAction::Set)]
    pub watch_notify: bool,

    #[command(flatten)]
    pub store: StoreConfig,

    #[command(flatten)]
    pub limits: LimitsConfig,

    #[command(flatten)]
    pub billing: crate::billing::BillingConfig,

    /// FRAMEOS_SECRETS_KEY: the keys agent secrets are sealed with (API.md §5.3, ADR 0045).
    #[command(flatten)]
    pub secrets: crate::secrets::SecretsConfig,

    /// Webhook delivery (API.md §5.3).
    #[command(flatten)]
    pub webhooks: crate::webhooks::WebhookConfig,

    /// Schedules (API.md §5.3): how often ticks are looked for, how many an account holds.
    #[command(flatten)]
    pub schedules: crate::schedules::ScheduleConfig,

    /// FRAMEOS_REVIEW_MODE and its spot checks (API.md §5.2).
    #[command(flatten)]
    pub review: crate::agents::review_mode::ReviewConfig,

    #[command(flatten)]
    pub fair_use: FairUseConfig,

    #[command(flatten)]
    pub recovery: RecoveryConfig,

    /// gRPC TLS and node mTLS (FRAMEOS_TLS_CERT, FRAMEOS_TLS_KEY, FRAMEOS_TLS_CLIENT_CA).
    #[command(flatten)]
    pub tls: frameos_tls::ServerTlsConfig,

    /// A second listener serving only gRPC health, always plain HTTP/2: for probes that do not
    /// speak TLS (the kubelet's gRPC probe) while FRAMEOS_GRPC_ADDR serves TLS. Off when unset.
    #[arg(long, env = "FRAMEOS_GRPC_HEALTH_ADDR")]
    pub grpc_health_addr: Option<SocketAddr>,
}

/// Shares of the platform one account may hold, so that no account starves the others.
#[derive(Clone, Debug, clap::Args)]
pub struct FairUseConfig {
    /// Executions of one account dispatched to the queue and not yet ended; the account's
    /// others wait in the outbox, in order (never refused). 0: no cap.
    #[arg(long, env = "FRAMEOS_ACCOUNT_MAX_RUNNING", default_value_t = 4)]
    pub account_max_running: u32,

    /// `WatchExecution` streams one account may hold open at once (gateway streams included);
    /// more are refused with RESOURCE_EXHAUSTED `rate_limited`. 0: only the total applies.
    #[arg(long, env = "FRAMEOS_MAX_STREAMS_PER_ACCOUNT", default_value_t = 16)]
    pub max_streams_per_account: usize,

    /// `WatchExecution` streams open at once on this control plane; more are refused with
    /// UNAVAILABLE.
    #[arg(long, env = "FRAMEOS_MAX_EVENT_STREAMS", default_value_t = 1024)]
    pub max_event_streams: usize,
}

/// Finding executions the queue or a node lost (the reaper) and telling live claims from dead.
#[derive(Clone, Debug, clap::Args)]
pub struct RecoveryConfig {
    /// Seconds between two passes of the reaper.
    #[arg(long, env = "FRAMEOS_REAPER_INTERVAL_SECS", default_value_t = 10)]
    pub reaper_interval_secs: u64,
    /// A claim its node has not renewed (heartbeat) for this long is dead, and a dispatched
    /// job the queue does not account for after this long is lost: both are queued again.
    #[arg(long, env = "FRAMEOS_NODE_DEAD_AFTER_SECS", default_value_t = 30)]
    pub node_dead_after_secs: u64,
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
    /// The API keys resolved by this replica, kept for at most FRAMEOS_KEY_CACHE_TTL_SECS.
    pub fn key_cache(&self) -> crate::accounts::KeyCache {
        let ttl = std::time::Duration::from_secs(self.key_cache_ttl_secs)
            .min(crate::accounts::key_cache::MAX_TTL);
        crate::accounts::KeyCache::new(ttl, crate::accounts::key_cache::CAPACITY)
    }

    pub fn shutdown_grace(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.shutdown_grace_secs)
    }

    pub fn topology(&self) -> frameos_queue::Topology {
        frameos_queue::Topology::configured(
            &self.queue_name,
            self.job_max_attempts,
            self.job_retry_base_ms,
        )
    }

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
