//! Prometheus metrics of the FrameOS services (API.md §4.3): one [`Registry`] per service (or
//! one shared by every service of a process, `frameos dev`), its exposition in the format the
//! scrape asks for ([`Format`]), a `/metrics` server ([`serve`]) and a tower layer counting gRPC
//! requests ([`GrpcLayer`]).

mod execution;
mod exposition;
mod grpc;
mod server;

use std::future::Future;
use std::sync::{Arc, Mutex, OnceLock, RwLock};
use std::time::Duration;

use futures::future::BoxFuture;
use prometheus_client::registry::{Metric, Unit};

pub use execution::{Phase, PhaseDurations};
pub use exposition::Format;
pub use grpc::{GrpcLayer, GrpcService, RecordedBody};
pub use server::{Error, bind, respond, router, serve};

/// Buckets of a duration histogram in seconds: 5 ms … ~20 s, doubling.
pub fn duration_buckets() -> impl Iterator<Item = f64> {
    prometheus_client::metrics::histogram::exponential_buckets(0.005, 2.0, 13)
}

/// Buckets of a long duration in seconds (queue waits, runs): 50 ms … ~30 min, tripling.
pub fn long_duration_buckets() -> impl Iterator<Item = f64> {
    prometheus_client::metrics::histogram::exponential_buckets(0.05, 3.0, 13)
}

/// How long the refreshers of one scrape may take before the scrape answers with what it has.
pub const REFRESH_LIMIT: Duration = Duration::from_secs(2);

type Refresh = Arc<dyn Fn() -> BoxFuture<'static, ()> + Send + Sync>;

/// A handle on one set of metric families; clones share it. Families registered by several
/// services of one process appear in one exposition.
#[derive(Clone, Default)]
pub struct Registry {
    inner: Arc<Inner>,
}

#[derive(Default)]
struct Inner {
    families: RwLock<prometheus_client::registry::Registry>,
    refreshers: Mutex<Vec<Refresh>>,
    phases: OnceLock<PhaseDurations>,
}

impl std::fmt::Debug for Registry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Registry").finish_non_exhaustive()
    }
}

impl Registry {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a family under its full name; a counter's name has no `_total` (the
    /// exposition adds it).
    pub fn register(&self, name: &str, help: &str, metric: impl Metric) {
        self.inner
            .families
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .register(name, help, metric);
    }

    /// Registers a family measured in seconds: its name gets the `_seconds` suffix.
    pub fn register_seconds(&self, name: &str, help: &str, metric: impl Metric) {
        self.inner
            .families
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .register_with_unit(name, help, Unit::Seconds, metric);
    }

    /// `frameos_execution_duration_seconds{phase}`, registered on first use (the control
    /// plane records it; ADR 0025).
    pub fn execution_durations(&self) -> PhaseDurations {
        self.inner
            .phases
            .get_or_init(|| {
                let durations = PhaseDurations::new();
                self.register_seconds(
                    "frameos_execution_duration",
                    "Time executions spent in each phase: queue_wait (created to claimed), start (claimed to the agent's code running), run (running to its outcome)",
                    durations.family(),
                );
                durations
            })
            .clone()
    }

    /// Runs `refresh` before each scrape (all of them concurrently, within [`REFRESH_LIMIT`]):
    /// for gauges read from elsewhere (a database) only when someone looks.
    pub fn on_scrape<F, Fut>(&self, refresh: F)
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let refresh: Refresh = Arc::new(move || Box::pin(refresh()));
        self.inner
            .refreshers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(refresh);
    }

    /// Refreshes the scrape-time gauges, then encodes every family in `format`.
    pub async fn scrape(&self, format: Format) -> Result<String, std::fmt::Error> {
        let refreshers: Vec<Refresh> = self
            .inner
            .refreshers
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        if !refreshers.is_empty() {
            let all = futures::future::join_all(refreshers.iter().map(|refresh| refresh()));
            if tokio::time::timeout(REFRESH_LIMIT, all).await.is_err() {
                tracing::warn!(
                    limit_ms = REFRESH_LIMIT.as_millis() as u64,
                    "metrics refresh too slow; answering with the last values"
                );
            }
        }
        self.encode(format)
    }

    /// Encodes every family in `format` as it is now.
    pub fn encode(&self, format: Format) -> Result<String, std::fmt::Error> {
        let families = self
            .inner
            .families
            .read()
            .unwrap_or_else(|e| e.into_inner());
        exposition::encode(&families, format)
    }
}
