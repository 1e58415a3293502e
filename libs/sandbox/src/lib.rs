//! Runs one agent execution in a fresh, locked-down container and reports what happened.
//!
//! The container speaks a line protocol on stdout (see [`frames`]); this crate turns it into
//! [`Event`]s and one [`Outcome`]. An agent's failure (a thrown error, a crash, a time-out, the
//! memory limit) is an `Outcome`; an [`Error`] is always a failure of the platform, which the
//! execution node may retry elsewhere.

mod calls;
mod docker;
mod drive;
mod egress;
mod frames;
mod local;
mod metrics;
mod pool;
mod redact;
mod secrets;
mod selection;

pub use calls::{Call, Calls, MAX_CONCURRENT_CALLS, Reply};
pub use docker::DockerSandbox;
pub use egress::{EgressPolicy, EgressProxy, Refusal, Resolver, SpecialPurpose, special_purpose};
/// Who wrote a log line: the agent (`Stdout`, `Stderr`) or the platform (`System`). What the
/// agent writes can only ever become one of its own two streams (see `frames::Pipe`).
pub use frameos_core::LogStream as Stream;
pub use local::LocalSandbox;
pub use metrics::{
    DecisionLabels, Direction, DirectionLabels, DockerDurations, DockerOperation, EgressDecision,
    OperationLabels, PoolTake, PoolTakeLabels, SandboxMetrics,
};
pub use pool::{PoolConfig, PoolStats, host_memory_mb};
pub use redact::MASK;
pub use secrets::Secrets;
pub use selection::{SandboxKind, Unavailable, UnknownSandboxKind};

use std::path::PathBuf;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub const DEFAULT_PIDS_LIMIT: u32 = 64;
pub const DEFAULT_TMP_SIZE_MB: u64 = 64;
pub const DEFAULT_LOG_LIMIT_BYTES: u64 = 1024 * 1024;
/// The largest result an agent may return, measured as serialized JSON.
pub const OUTPUT_LIMIT_BYTES: usize = 1024 * 1024;
/// Longer output lines are cut to this many bytes.
pub const LINE_LIMIT_BYTES: usize = 64 * 1024;

/// The language of an agent: the one vocabulary type of `frameos-core`.
pub use frameos_core::Runtime;

/// The program that runs a runtime's runner.
pub(crate) fn interpreter(runtime: Runtime) -> &'static str {
    match runtime {
        Runtime::Node => "node",
        Runtime::Python => "python3",
    }
}

/// The runtime images a node starts containers from (built by `runtime-images/build.sh`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Images {
    pub node: String,
    pub python: String,
}

impl Default for Images {
    fn default() -> Self {
        Images {
            node: "frameos/runtime-node:1".to_string(),
            python: "frameos/runtime-python:1".to_string(),
        }
    }
}

impl Images {
    pub fn for_runtime(&self, runtime: Runtime) -> &str {
        match runtime {
            Runtime::Node => &self.node,
            Runtime::Python => &self.python,
        }
    }
}

/// One execution. `Default` gives the platform's default limits; callers fill in the rest.
#[derive(Clone, Debug, PartialEq)]
pub struct Spec {
    /// Names the container, so it must be `[A-Za-z0-9][A-Za-z0-9_.-]*` (a UUID is).
    pub execution_id: String,
    pub runtime: Runtime,
    /// Host path of the unpacked package, mounted read-only at `/agent`.
    pub package_dir: PathBuf,
    /// Relative path inside the package.
    pub entrypoint: String,
    /// The inputs as JSON, written to the runner's stdin.
    pub inputs: Vec<u8>,
    pub cpu_cores: f64,
    pub memory_mb: u64,
    pub timeout: Duration,
    pub pids_limit: u32,
    pub tmp_size_mb: u64,
    pub log_limit_bytes: u64,
    /// The `http_request` capability's allow-list (`api.example.com`, `*.example.org`). Empty:
    /// no network at all. Otherwise requests go through a per-execution egress proxy.
    pub allow_domains: Vec<String>,
    /// Marked when the agent's code starts (its container or process started).
    pub started: StartSignal,
    /// Who answers the agent's `ctx.call`s; without it every call is refused.
    pub calls: Option<Calls>,
    /// The agent's secrets (`ctx.secrets`): written in the runner's stdin header, masked in
    /// every log line, progress message and error the run reports.
    pub secrets: Secrets,
}

/// When the agent's code started running: the end of an execution's `start` phase and the
/// beginning of its `run` phase (API.md §4.4), and the moment its `timeout` starts counting.
/// Clones share it.
#[derive(Clone, Debug, Default)]
pub struct StartSignal(std::sync::Arc<StartState>);

#[derive(Debug, Default)]
struct StartState {
    at: std::sync::OnceLock<std::time::Instant>,
    marked: tokio::sync::Notify,
}

impl StartSignal {
    /// When the agent's code started, if it did.
    pub fn at(&self) -> Option<std::time::Instant> {
        self.0.at.get().copied()
    }

    /// Waits until the agent's code has started (forever, if it never does).
    pub async fn started(&self) -> std::time::Instant {
        loop {
            let marked = self.0.marked.notified();
            tokio::pin!(marked);
            // Registered before looking, so a mark in between is not missed.
            marked.as_mut().enable();
            if let Some(at) = self.at() {
                return at;
            }
            marked.await;
        }
    }

    pub(crate) fn mark(&self) {
        if self.0.at.set(std::time::Instant::now()).is_ok() {
            self.0.marked.notify_waiters();
        }
    }
}

/// Not part of what a spec asks for: every two signals compare equal.
impl PartialEq for StartSignal {
    fn eq(&self, _: &StartSignal) -> bool {
        true
    }
}

impl Default for Spec {
    fn default() -> Self {
        Spec {
            execution_id: String::new(),
            runtime: Runtime::Node,
            package_dir: PathBuf::new(),
            entrypoint: String::new(),
            inputs: b"{}".to_vec(),
            cpu_cores: 1.0,
            memory_mb: 256,
            timeout: Duration::from_secs(60),
            pids_limit: DEFAULT_PIDS_LIMIT,
            tmp_size_mb: DEFAULT_TMP_SIZE_MB,
            log_limit_bytes: DEFAULT_LOG_LIMIT_BYTES,
            allow_domains: Vec::new(),
            started: StartSignal::default(),
            calls: None,
            secrets: Secrets::default(),
        }
    }
}

impl Spec {
    /// The package and manifest were validated upstream; this guards what reaches Docker.
    fn validate(&self) -> Result<(), Error> {
        let id = &self.execution_id;
        let id_ok = !id.is_empty()
            && id.len() <= 128
            && id.starts_with(|c: char| c.is_ascii_alphanumeric())
            && id
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !id_ok {
            return Err(Error::InvalidSpec(format!("bad execution id {id:?}")));
        }
        let entry = std::path::Path::new(&self.entrypoint);
        let entry_ok = !self.entrypoint.is_empty()
            && !self.entrypoint.contains('\0')
            && entry
                .components()
                .all(|c| matches!(c, std::path::Component::Normal(_)));
        if !entry_ok {
            return Err(Error::InvalidSpec(format!(
                "bad entrypoint {:?}",
                self.entrypoint
            )));
        }
        if !self.package_dir.is_absolute() {
            return Err(Error::InvalidSpec(format!(
                "package dir {} is not absolute",
                self.package_dir.display()
            )));
        }
        if !(self.cpu_cores.is_finite() && self.cpu_cores >= 0.01) {
            return Err(Error::InvalidSpec(format!(
                "bad cpu_cores {}",
                self.cpu_cores
            )));
        }
        // Docker refuses a memory limit below 6 MB.
        if self.memory_mb < 6 || self.pids_limit == 0 || self.tmp_size_mb == 0 {
            return Err(Error::InvalidSpec(
                "memory_mb, pids_limit and tmp_size_mb must be set".to_string(),
            ));
        }
        if let Some(bad) = self
            .allow_domains
            .iter()
            .find(|d| !egress::is_valid_pattern(d))
        {
            return Err(Error::InvalidSpec(format!("bad allowed domain {bad:?}")));
        }
        Ok(())
    }
}

/// Something the agent reported while running, in the order it reported it.
#[derive(Clone, Debug, PartialEq)]
pub enum Event {
    Log { stream: Stream, line: String },
    Progress { fraction: f64, message: String },
}

/// How an execution ended. Every agent failure is an outcome, never an [`Error`].
#[derive(Clone, Debug, PartialEq)]
pub enum Outcome {
    Succeeded {
        output: serde_json::Value,
    },
    Failed {
        error: String,
        exit_code: Option<i64>,
    },
    TimedOut,
    OutOfMemory,
    Canceled,
}

impl Outcome {
    /// A short name for logs and metrics.
    pub fn label(&self) -> &'static str {
        match self {
            Outcome::Succeeded { .. } => "succeeded",
            Outcome::Failed { .. } => "failed",
            Outcome::TimedOut => "timed_out",
            Outcome::OutOfMemory => "out_of_memory",
            Outcome::Canceled => "canceled",
        }
    }
}

/// A failure of the platform, not of the agent: the node may retry the execution.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("docker at {host} is unreachable: {message}")]
    Unreachable { host: String, message: String },
    #[error("image {image} is missing on this node; run runtime-images/build.sh")]
    ImageMissing { image: String },
    #[error("docker failed to {action}: {message}")]
    Docker {
        action: &'static str,
        message: String,
    },
    #[error("runner {path} is missing")]
    RunnerMissing { path: PathBuf },
    #[error("could not start {program}: {source}")]
    Spawn {
        program: &'static str,
        source: std::io::Error,
    },
    #[error("invalid execution spec: {0}")]
    InvalidSpec(String),
    #[error("sandbox pool could not {action}: {source}")]
    Pool {
        action: &'static str,
        source: std::io::Error,
    },
    #[error("egress proxy could not {action}: {source}")]
    Egress {
        action: &'static str,
        source: std::io::Error,
    },
}

/// Where executions run. An enum rather than a trait object: there are exactly two backends,
/// plus the stand-in for a Docker that `frameos dev` could not reach.
#[derive(Clone, Debug)]
pub enum Sandbox {
    /// Boxed: its pool and metrics handles make it far larger than the other two.
    Docker(Box<DockerSandbox>),
    Local(LocalSandbox),
    Unavailable(Unavailable),
}

impl Sandbox {
    /// Connects to Docker (`host`: a unix socket path or `unix://`/`tcp://`/`http://` URL; `None`
    /// = the local default), negotiates the API version down to the engine's, and pings it.
    pub async fn docker(
        host: Option<&str>,
        images: Images,
        node_id: &str,
    ) -> Result<Sandbox, Error> {
        Ok(Sandbox::Docker(Box::new(
            DockerSandbox::connect(host, images, node_id).await?,
        )))
    }

    /// Development only: runs the runner as a plain local process, with no isolation at all.
    pub fn local_unisolated(node_id: &str) -> Sandbox {
        Sandbox::Local(LocalSandbox::new(
            node_id,
            LocalSandbox::default_runner_dir(),
        ))
    }

    /// Records egress decisions and bytes and Docker call latencies in `metrics`.
    pub fn with_metrics(self, metrics: SandboxMetrics) -> Sandbox {
        match self {
            Sandbox::Docker(d) => Sandbox::Docker(Box::new(d.with_metrics(metrics))),
            other => other,
        }
    }

    /// Keeps warm containers for Docker runs (ADR 0026); not warmed until [`Sandbox::warm_pool`].
    /// `max_per_class == 0` keeps every run cold. Call it after `with_metrics`.
    pub fn with_pool(self, config: PoolConfig) -> Sandbox {
        match self {
            Sandbox::Docker(d) => Sandbox::Docker(Box::new(d.with_pool(config))),
            other => other,
        }
    }

    /// Starts the pool's first warm containers in the background. Call it after
    /// `remove_stale`, which would remove them.
    pub fn warm_pool(&self) {
        if let Sandbox::Docker(d) = self {
            d.warm_pool();
        }
    }

    /// Waits until a warm container of `spec`'s class is ready. False when there is no pool
    /// or the pool never serves such a spec (one with an egress allow-list).
    pub async fn prewarm(&self, spec: &Spec) -> Result<bool, Error> {
        match self {
            Sandbox::Docker(d) => d.prewarm(spec).await,
            Sandbox::Local(_) | Sandbox::Unavailable(_) => Ok(false),
        }
    }

    /// What the pool has done, if there is one.
    pub fn pool_stats(&self) -> Option<PoolStats> {
        match self {
            Sandbox::Docker(d) => d.pool_stats(),
            Sandbox::Local(_) | Sandbox::Unavailable(_) => None,
        }
    }

    /// Removes the pool's waiting containers and slots and waits for its background work
    /// (starts in flight, removals of finished runs). Runs still going are not touched.
    pub async fn shutdown(&self) {
        if let Sandbox::Docker(d) = self {
            d.shutdown().await;
        }
    }

    /// False for the local-process runner, which production must refuse. An unavailable
    /// sandbox runs nothing at all, so nothing runs unisolated.
    pub fn is_isolated(&self) -> bool {
        !matches!(self, Sandbox::Local(_))
    }

    /// Fails naming the first missing runtime image (or runner file).
    pub async fn check_images(&self) -> Result<(), Error> {
        match self {
            Sandbox::Docker(d) => d.check_images().await,
            Sandbox::Local(l) => l.check_runners(),
            Sandbox::Unavailable(_) => Ok(()),
        }
    }

    /// Force-removes every container this node left behind (labelled `frameos.node=<node_id>`).
    pub async fn remove_stale(&self) -> Result<usize, Error> {
        match self {
            Sandbox::Docker(d) => d.remove_stale().await,
            Sandbox::Local(_) | Sandbox::Unavailable(_) => Ok(0),
        }
    }

    /// Runs one execution. Events go to `events`; when the receiver is slow, reading from the
    /// agent pauses (back-pressure). Returns once the agent has ended and its container is gone.
    pub async fn run(
        &self,
        spec: Spec,
        events: mpsc::Sender<Event>,
        cancel: CancellationToken,
    ) -> Result<Outcome, Error> {
        spec.validate()?;
        match self {
            Sandbox::Docker(d) => d.run(spec, events, cancel).await,
            Sandbox::Local(l) => l.run(spec, events, cancel).await,
            Sandbox::Unavailable(u) => Ok(u.outcome()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> Spec {
        Spec {
            execution_id: "0192f1a2-7c3d-7e4f-8a9b-0c1d2e3f4a5b".to_string(),
            package_dir: PathBuf::from("/tmp/pkg"),
            entrypoint: "src/index.js".to_string(),
            ..Spec::default()
        }
    }

    #[tokio::test]
    async fn a_start_is_heard_by_whoever_waits_for_it() {
        let signal = StartSignal::default();
        let waiting = tokio::spawn({
            let signal = signal.clone();
            async move { signal.started().await }
        });
        tokio::task::yield_now().await;
        assert!(signal.at().is_none());
        signal.mark();
        let at = waiting.await.expect("waiter");
        assert_eq!(signal.at(), Some(at));
        // Marked once: a second mark changes nothing, and a late waiter returns at once.
        signal.mark();
        assert_eq!(signal.started().await, at);
    }

    #[test]
    fn spec_validation_guards_what_reaches_docker() {
        assert!(spec().validate().is_ok());
        for id in ["", "-x", "a b", "a/b", "a:b"] {
            let s = Spec {
                execution_id: id.to_string(),
                ..spec()
            };
            assert!(s.validate().is_err(), "{id:?}");
        }
        for entry in ["", "/etc/passwd", "../x", "a/../b", "./a"] {
            let s = Spec {
                entrypoint: entry.to_string(),
                ..spec()
            };
            assert!(s.validate().is_err(), "{entry:?}");
        }
        let relative = Spec {
            package_dir: PathBuf::from("pkg"),
            ..spec()
        };
        assert!(relative.validate().is_err());
        let no_cpu = Spec {
            cpu_cores: f64::NAN,
            ..spec()
        };
        assert!(no_cpu.validate().is_err());
        let tiny = Spec {
            memory_mb: 1,
            ..spec()
        };
        assert!(tiny.validate().is_err());
        for domain in ["127.0.0.1", "*", "a b", "*.1", ""] {
            let s = Spec {
                allow_domains: vec![domain.to_string()],
                ..spec()
            };
            assert!(s.validate().is_err(), "{domain:?}");
        }
        let allowed = Spec {
            allow_domains: vec!["api.example.com".into(), "*.example.org".into()],
            ..spec()
        };
        assert!(allowed.validate().is_ok());
    }
}
