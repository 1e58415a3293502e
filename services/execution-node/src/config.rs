//! The execution node's configuration (API.md §3 names), each also a flag.

use std::path::PathBuf;

use frameos_blobstore::StoreConfig;

#[derive(Clone, Debug, clap::Args)]
pub struct Config {
    #[arg(
        long,
        env = "FRAMEOS_CONTROL_PLANE_URL",
        default_value = "http://127.0.0.1:50051"
    )]
    pub control_plane_url: String,

    /// RabbitMQ URL. Required by the standalone node; `frameos dev` shares an in-process queue.
    #[arg(long, env = "FRAMEOS_AMQP_URL", hide_env_values = true)]
    pub amqp_url: Option<String>,

    #[arg(long, env = "FRAMEOS_QUEUE_NAME", default_value = "frameos.jobs")]
    pub queue_name: String,

    /// Deliveries of a job (the first included) before a platform failure is final.
    #[arg(long, env = "FRAMEOS_JOB_MAX_ATTEMPTS", default_value_t = 5)]
    pub job_max_attempts: u32,

    /// Back-off before the second delivery; doubles for each later one (at most 60 s).
    #[arg(long, env = "FRAMEOS_JOB_RETRY_BASE_MS", default_value_t = 1000)]
    pub job_retry_base_ms: u64,

    /// The shared secret the control plane expects from nodes.
    #[arg(long, env = "FRAMEOS_NODE_TOKEN", hide_env_values = true)]
    pub node_token: Option<String>,

    /// Unique per node and Docker host; defaults to the host name.
    #[arg(long, env = "FRAMEOS_NODE_ID")]
    pub node_id: Option<String>,

    /// Executions run at once (and the queue prefetch); defaults to the number of cores.
    #[arg(long, env = "FRAMEOS_NODE_CONCURRENCY")]
    pub concurrency: Option<u16>,

    /// Docker socket or URL; the local socket when absent.
    #[arg(long, env = "FRAMEOS_DOCKER_HOST")]
    pub docker_host: Option<String>,

    /// Unpacked packages, by digest.
    #[arg(
        long,
        env = "FRAMEOS_PACKAGE_CACHE",
        default_value = "./.frameos/cache"
    )]
    pub cache_dir: PathBuf,

    /// Log bytes kept per execution; the rest is dropped with a marker line.
    #[arg(long, env = "FRAMEOS_LOG_LIMIT_BYTES", default_value_t = 1024 * 1024)]
    pub log_limit_bytes: u64,

    /// Seconds a stop may take after SIGTERM/SIGINT (API.md §4.3): running executions finish,
    /// and those still running when it runs out are handed back to the queue.
    #[arg(long, env = "FRAMEOS_SHUTDOWN_GRACE_SECS", default_value_t = frameos_lifecycle::NODE_GRACE_SECS)]
    pub shutdown_grace_secs: u64,

    #[command(flatten)]
    pub store: StoreConfig,
}

impl Config {
    /// The configured id, else the host name: stable across restarts, so a restarted node
    /// removes the containers its crashed predecessor left behind. Run one node per Docker
    /// host (a DaemonSet), or give each its own id.
    pub fn node_id(&self) -> String {
        self.node_id
            .clone()
            .or_else(|| {
                std::fs::read_to_string("/etc/hostname")
                    .ok()
                    .map(|h| h.trim().to_string())
                    .filter(|h| !h.is_empty() && h.len() <= 64)
            })
            .unwrap_or_else(|| format!("node-{}", &uuid::Uuid::new_v4().simple().to_string()[..12]))
    }

    pub fn shutdown_grace(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.shutdown_grace_secs)
    }

    pub fn concurrency(&self) -> u16 {
        self.concurrency.filter(|c| *c > 0).unwrap_or_else(|| {
            std::thread::available_parallelism()
                .map(|n| u16::try_from(n.get()).unwrap_or(u16::MAX))
                .unwrap_or(1)
        })
    }

    pub fn topology(&self) -> frameos_queue::Topology {
        frameos_queue::Topology::configured(
            &self.queue_name,
            self.job_max_attempts,
            self.job_retry_base_ms,
        )
    }

    /// Defaults (environment still applies), as `frameos dev` and tests start from.
    pub fn embedded() -> Self {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Wrapper {
            #[command(flatten)]
            config: Config,
        }
        Wrapper::parse_from(["execution-node"]).config
    }
}
