//! The gateway's configuration: environment variables (API.md §3), each also a flag.

use std::net::SocketAddr;
use std::time::Duration;

#[derive(Clone, Debug, clap::Args)]
pub struct Config {
    /// Where the REST API listens.
    #[arg(long, env = "FRAMEOS_HTTP_ADDR", default_value = "127.0.0.1:8080")]
    pub http_addr: SocketAddr,

    /// The control plane's gRPC endpoint.
    #[arg(
        long,
        env = "FRAMEOS_CONTROL_PLANE_URL",
        default_value = "http://127.0.0.1:50051"
    )]
    pub control_plane_url: String,

    /// Largest package upload accepted; bigger bodies are refused before they are read.
    #[arg(long, env = "FRAMEOS_MAX_PACKAGE_BYTES", default_value_t = 10 * 1024 * 1024)]
    pub max_package_bytes: u64,

    /// Largest JSON request body.
    #[arg(long, env = "FRAMEOS_MAX_JSON_BYTES", default_value_t = 1024 * 1024)]
    pub max_json_bytes: u64,

    /// Whole-request deadline of the REST API, in seconds.
    #[arg(long, env = "FRAMEOS_REQUEST_TIMEOUT_SECS", default_value_t = 60)]
    pub request_timeout_secs: u64,

    /// Deadline of one gRPC call to the control plane, in seconds.
    #[arg(long, env = "FRAMEOS_CONTROL_PLANE_TIMEOUT_SECS", default_value_t = 30)]
    pub control_plane_timeout_secs: u64,

    /// API requests served at once; more wait for a slot (until the request deadline).
    #[arg(long, env = "FRAMEOS_MAX_CONCURRENT_REQUESTS", default_value_t = 512)]
    pub max_concurrent_requests: usize,

    /// Execution event streams (Server-Sent Events) open at once; more are refused with 503.
    /// A stream lasts as long as its execution, so these are counted apart from requests.
    #[arg(long, env = "FRAMEOS_MAX_EVENT_STREAMS", default_value_t = 1024)]
    pub max_event_streams: usize,

    /// Seconds a stop may take after SIGTERM/SIGINT (API.md §4.3): requests in flight finish.
    #[arg(long, env = "FRAMEOS_SHUTDOWN_GRACE_SECS", default_value_t = frameos_lifecycle::SERVICE_GRACE_SECS)]
    pub shutdown_grace_secs: u64,
    /// Event streams one account (or one address without a key) may hold open at once; more
    /// are refused with 429 `rate_limited`. 0: only the total bound applies.
    #[arg(long, env = "FRAMEOS_MAX_STREAMS_PER_ACCOUNT", default_value_t = 16)]
    pub max_streams_per_account: usize,

    /// API requests a second per account (or per address without a key); over it, 429
    /// `rate_limited` with `Retry-After`. 0: no limit.
    #[arg(long, env = "FRAMEOS_RATE_LIMIT_PER_SEC", default_value_t = 50)]
    pub rate_limit_per_sec: u32,

    /// Requests an account may send at once above its rate, after a quiet spell.
    #[arg(long, env = "FRAMEOS_RATE_LIMIT_BURST", default_value_t = 100)]
    pub rate_limit_burst: u32,

    /// Origins allowed to call the REST API from a browser, comma-separated
    /// (`https://app.example.com,http://localhost:3000`); none by default.
    #[arg(
        long,
        env = "FRAMEOS_CORS_ORIGINS",
        value_delimiter = ',',
        value_parser = crate::cors::parse_origin
    )]
    pub cors_origins: Vec<axum::http::HeaderValue>,

    /// TLS towards an https:// control plane (FRAMEOS_CONTROL_PLANE_CA, FRAMEOS_TLS_CLIENT_*).
    #[command(flatten)]
    pub tls: frameos_tls::ClientTlsConfig,
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
        Wrapper::parse_from(["gateway"]).config
    }

    pub fn request_timeout(&self) -> Duration {
        Duration::from_secs(self.request_timeout_secs)
    }

    pub fn shutdown_grace(&self) -> Duration {
        Duration::from_secs(self.shutdown_grace_secs)
    }

    pub fn control_plane_timeout(&self) -> Duration {
        Duration::from_secs(self.control_plane_timeout_secs)
    }
}
