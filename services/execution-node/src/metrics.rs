//! The node's metrics (API.md §4.3): executions running here, package cache hits, and the
//! sandbox's egress and Docker families. The phases of executions
//! (`frameos_execution_duration_seconds{phase}`) are the control plane's: it holds the moments
//! they are computed from (ADR 0025).

use std::fmt::Write;

use frameos_metrics::Registry;
use frameos_sandbox::SandboxMetrics;
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;

use crate::in_flight::InFlight;

/// Whether a package was already unpacked here.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum CacheResult {
    Hit,
    Miss,
}

impl EncodeLabelValue for CacheResult {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        encoder.write_str(match self {
            CacheResult::Hit => "hit",
            CacheResult::Miss => "miss",
        })
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CacheLabels {
    result: CacheResult,
}

/// Handles on the node's families; clones share them.
#[derive(Clone, Debug)]
pub struct NodeMetrics {
    cache: Family<CacheLabels, Counter>,
}

impl NodeMetrics {
    /// Registers the node's families, the sandbox's among them, in `registry`; the running
    /// gauge is read from `in_flight` at scrape time.
    pub fn new(registry: &Registry, sandbox: &SandboxMetrics, in_flight: &InFlight) -> Self {
        let metrics = NodeMetrics {
            cache: Family::default(),
        };
        // Every label value from the start (a family without samples is not exposed at all).
        for result in [CacheResult::Hit, CacheResult::Miss] {
            let _ = metrics.cache.get_or_create(&CacheLabels { result });
        }
        registry.register(
            "frameos_package_cache_requests",
            "Package lookups in the node's cache, by result (hit: already unpacked here)",
            metrics.cache.clone(),
        );
        let running = Gauge::<i64>::default();
        registry.register(
            "frameos_node_running_executions",
            "Executions this node handles right now (claimed and not yet ended)",
            running.clone(),
        );
        let in_flight = in_flight.clone();
        registry.on_scrape(move || {
            running.set(i64::try_from(in_flight.ids().len()).unwrap_or(i64::MAX));
            std::future::ready(())
        });
        registry.register(
            "frameos_egress_decisions",
            "Connections through the egress proxy, by decision: allowed, refused (policy), failed (malformed, unreachable, over the limit)",
            sandbox.egress_decisions.clone(),
        );
        registry.register(
            "frameos_egress_bytes",
            "Bytes through the egress proxy, by direction seen from the agent (out, in)",
            sandbox.egress_bytes.clone(),
        );
        registry.register_seconds(
            "frameos_docker_request_duration",
            "Time of Docker API calls, by operation",
            sandbox.docker_requests.clone(),
        );
        registry.register(
            "frameos_sandbox_pool_takes",
            "Runs handed to a warm sandbox container (hit) or run cold for want of one (miss)",
            sandbox.pool_takes.clone(),
        );
        metrics
    }

    pub fn cache(&self, result: CacheResult) {
        self.cache.get_or_create(&CacheLabels { result }).inc();
    }
}
