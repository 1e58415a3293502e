//! The execution node's configuration (API.md §3 names), each also a flag.

use std::path::PathBuf;

use frameos_blobstore::StoreConfig;
use frameos_sandbox::{Images, PoolConfig, Sandbox, SandboxKind};

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

    /// Executions run at once (and the queue prefetch); defaults to the number of cores, fewer
    /// when the host's memory cannot hold that many default executions besides the warm pool.
    #[arg(long, env = "FRAMEOS_NODE_CONCURRENCY")]
    pub concurrency: Option<u16>,

    /// Warm sandbox containers kept per resource class (ADR 0026); 0 runs every execution cold.
    #[arg(long, env = "FRAMEOS_SANDBOX_POOL", default_value_t = 2)]
    pub sandbox_pool: usize,

    /// The warm containers' memory limits together stay within this percentage of the host's
    /// memory.
    #[arg(long, env = "FRAMEOS_SANDBOX_POOL_MEMORY_PERCENT", default_value_t = 25,
          value_parser = clap::value_parser!(u8).range(0..=100))]
    pub sandbox_pool_memory_percent: u8,

    /// Seconds a pool class may go without a run before it shrinks back (its runtime's
    /// default class to `FRAMEOS_SANDBOX_POOL`, others to none); 0: never.
    #[arg(long, env = "FRAMEOS_SANDBOX_POOL_IDLE_SECS", default_value_t = 600)]
    pub sandbox_pool_idle_secs: u64,

    /// Where warm containers' package slots live (on the Docker host); defaults to a
    /// `frameos-slots` directory next to the package cache, so packages are hard-linked.
    #[arg(long, env = "FRAMEOS_SANDBOX_POOL_SLOTS")]
    pub sandbox_pool_slots: Option<PathBuf>,

    /// Docker socket or URL; the local socket when absent.
    #[arg(long, env = "FRAMEOS_DOCKER_HOST")]
    pub docker_host: Option<String>,

    /// `docker`, or `local` to run agents as plain processes: NOT ISOLATED, development only.
    #[arg(long, env = "FRAMEOS_SANDBOX", default_value_t = SandboxKind::Docker)]
    pub sandbox: SandboxKind,

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

    /// Where `/metrics` is served (Prometheus text, OpenMetrics when asked); absent → off.
    #[arg(long, env = "FRAMEOS_METRICS_ADDR")]
    pub metrics_addr: Option<std::net::SocketAddr>,

    #[command(flatten)]
    pub store: StoreConfig,

    /// TLS towards an https:// control plane, and the node's client certificate for node mTLS
    /// (FRAMEOS_CONTROL_PLANE_CA, FRAMEOS_TLS_CLIENT_CERT, FRAMEOS_TLS_CLIENT_KEY).
    #[command(flatten)]
    pub tls: frameos_tls::ClientTlsConfig,
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

    /// The sandbox `FRAMEOS_SANDBOX` selects. Docker that does not answer is an error naming
    /// it: a node without an engine must not take jobs, and never falls back to local processes.
    pub async fn sandbox(&self, node_id: &str) -> Result<Sandbox, frameos_sandbox::Error> {
        if self.sandbox == SandboxKind::Local {
            tracing::warn!(
                node_id,
                "FRAMEOS_SANDBOX=local: agents run as local processes, NOT ISOLATED; development only"
            );
        }
        Sandbox::select(
            self.sandbox,
            self.docker_host.as_deref(),
            Images::default(),
            node_id,
        )
        .await
    }

    /// The warm pool as configured: slots next to the package cache unless set.
    pub fn pool(&self) -> PoolConfig {
        let beside_cache = || {
            let cache = std::path::absolute(&self.cache_dir).unwrap_or(self.cache_dir.clone());
            cache.parent().map_or_else(
                || PoolConfig::default().slot_dir,
                |parent| parent.join("frameos-slots"),
            )
        };
        PoolConfig {
            max_per_class: self.sandbox_pool,
            initial: self.sandbox_pool,
            memory_percent: self.sandbox_pool_memory_percent,
            idle_after: std::time::Duration::from_secs(self.sandbox_pool_idle_secs),
            slot_dir: self.sandbox_pool_slots.clone().unwrap_or_else(beside_cache),
        }
    }

    pub fn shutdown_grace(&self) -> std::time::Duration {
        std::time::Duration::from_secs(self.shutdown_grace_secs)
    }

    pub fn concurrency(&self) -> u16 {
        self.concurrency.filter(|c| *c > 0).unwrap_or_else(|| {
            let cores = std::thread::available_parallelism()
                .map(|n| u16::try_from(n.get()).unwrap_or(u16::MAX))
                .unwrap_or(1);
            let pool = self.pool();
            concurrency_for(
                cores,
                frameos_sandbox::host_memory_mb(),
                pool.memory_percent,
                pool.max_per_class > 0,
            )
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

/// Default executions at once: the cores (API.md §3), lowered only when the memory left
/// besides the warm pool's share cannot hold that many executions of the default size.
fn concurrency_for(cores: u16, host_mb: u64, pool_percent: u8, pool_on: bool) -> u16 {
    let pool_mb = if pool_on {
        host_mb * u64::from(pool_percent) / 100
    } else {
        0
    };
    let per_execution = frameos_sandbox::Spec::default().memory_mb.max(1);
    let fits = host_mb.saturating_sub(pool_mb) / per_execution;
    cores.min(u16::try_from(fits).unwrap_or(u16::MAX)).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Config {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Wrapper {
            #[command(flatten)]
            config: Config,
        }
        Wrapper::try_parse_from(std::iter::once("execution-node").chain(args.iter().copied()))
            .map(|w| w.config)
            .unwrap_or_else(|e| panic!("{e}"))
    }

    #[test]
    fn the_sandbox_is_docker_unless_local_is_named() {
        assert_eq!(parse(&[]).sandbox, SandboxKind::Docker);
        assert_eq!(parse(&["--sandbox", "local"]).sandbox, SandboxKind::Local);
        use clap::Parser;
        #[derive(clap::Parser, Debug)]
        struct Wrapper {
            #[command(flatten)]
            _config: Config,
        }
        let err = Wrapper::try_parse_from(["execution-node", "--sandbox", "process"]).unwrap_err();
        assert!(err.to_string().contains("FRAMEOS_SANDBOX"), "{err}");
    }

    #[test]
    fn pool_flags_and_the_concurrency_default() {
        let config = parse(&["--sandbox-pool", "0", "--sandbox-pool-slots", "/srv/slots"]);
        let pool = config.pool();
        assert_eq!(pool.max_per_class, 0);
        assert_eq!(pool.slot_dir, PathBuf::from("/srv/slots"));
        let default = parse(&["--cache-dir", "/var/cache/frameos/packages"]).pool();
        assert_eq!(default.max_per_class, 2);
        assert_eq!(default.memory_percent, 25);
        assert_eq!(
            default.slot_dir,
            PathBuf::from("/var/cache/frameos/frameos-slots")
        );
        // The cores bound it; memory lowers it only when short.
        assert_eq!(concurrency_for(8, 64 * 1024, 25, true), 8);
        assert_eq!(concurrency_for(8, 1024, 25, true), 3);
        assert_eq!(concurrency_for(8, 1024, 25, false), 4);
        assert_eq!(concurrency_for(8, 100, 25, true), 1);
    }

    /// A node whose Docker does not answer must not take jobs it cannot run, and must not run
    /// them as local processes: it refuses to start, naming the engine.
    #[tokio::test]
    async fn a_node_without_an_engine_refuses_to_start_naming_it() {
        let host = "unix:///nonexistent/frameos-node-test.sock";
        let mut config = parse(&["--docker-host", host, "--node-id", "n1"]);
        config.amqp_url = Some("amqp://127.0.0.1:1/%2f".to_string());
        let err = match crate::Node::start(config).await {
            Ok(_) => panic!("a node started without its sandbox"),
            Err(e) => e,
        };
        assert!(
            matches!(
                err,
                crate::Error::Sandbox(frameos_sandbox::Error::Unreachable { .. })
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains(host), "{err}");
    }
}
