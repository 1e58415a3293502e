//! Counters the sandbox keeps for the node's `/metrics`: egress decisions and bytes, and the
//! latency of Docker API calls. Plain prometheus-client families (no HTTP here); the node
//! registers them (`frameos_egress_decisions_total{decision}`,
//! `frameos_egress_bytes_total{direction}`, `frameos_docker_request_duration_seconds{operation}`).

use std::fmt::Write;
use std::future::Future;
use std::time::Instant;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};

/// What the egress proxy did with one connection.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum EgressDecision {
    Allowed,
    /// The policy said no.
    Refused,
    /// Malformed, unresolvable, unreachable or over the connection limit: no policy decision.
    Failed,
}

/// Which way egress bytes went, seen from the agent.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum Direction {
    /// Agent → origin.
    Out,
    /// Origin → agent.
    In,
}

/// What a run found in the warm pool (ADR 0026).
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum PoolTake {
    /// Handed to a waiting container.
    Hit,
    /// None waiting for its class: the run went cold.
    Miss,
}

/// A Docker API call.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum DockerOperation {
    Create,
    Attach,
    Start,
    Kill,
    Inspect,
    Remove,
    List,
    InspectImage,
    /// A warm container takes the execution's name at hand-off.
    Rename,
}

impl EncodeLabelValue for EgressDecision {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        encoder.write_str(match self {
            EgressDecision::Allowed => "allowed",
            EgressDecision::Refused => "refused",
            EgressDecision::Failed => "failed",
        })
    }
}

impl EncodeLabelValue for Direction {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        encoder.write_str(match self {
            Direction::Out => "out",
            Direction::In => "in",
        })
    }
}

impl EncodeLabelValue for PoolTake {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        encoder.write_str(match self {
            PoolTake::Hit => "hit",
            PoolTake::Miss => "miss",
        })
    }
}

impl EncodeLabelValue for DockerOperation {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        encoder.write_str(match self {
            DockerOperation::Create => "create",
            DockerOperation::Attach => "attach",
            DockerOperation::Start => "start",
            DockerOperation::Kill => "kill",
            DockerOperation::Inspect => "inspect",
            DockerOperation::Remove => "remove",
            DockerOperation::List => "list",
            DockerOperation::InspectImage => "inspect_image",
            DockerOperation::Rename => "rename",
        })
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DecisionLabels {
    pub decision: EgressDecision,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct DirectionLabels {
    pub direction: Direction,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PoolTakeLabels {
    pub result: PoolTake,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct OperationLabels {
    pub operation: DockerOperation,
}

pub type DockerDurations = Family<OperationLabels, Histogram, fn() -> Histogram>;

/// The sandbox's families; clones share them. The default records into families nobody
/// registered (tests, tools).
#[derive(Clone, Debug)]
pub struct SandboxMetrics {
    pub egress_decisions: Family<DecisionLabels, Counter>,
    pub egress_bytes: Family<DirectionLabels, Counter>,
    pub docker_requests: DockerDurations,
    /// Runs the warm pool served (hit) or sent cold (miss); runs with egress never ask.
    pub pool_takes: Family<PoolTakeLabels, Counter>,
}

impl Default for SandboxMetrics {
    /// Every label value is there from the start: a family without samples is not exposed.
    fn default() -> Self {
        let metrics = SandboxMetrics {
            egress_decisions: Family::default(),
            egress_bytes: Family::default(),
            // 1 ms … ~16 s: from an inspect to a create that pulls nothing but is slow.
            docker_requests: Family::new_with_constructor(|| {
                Histogram::new(exponential_buckets(0.001, 2.0, 15))
            }),
            pool_takes: Family::default(),
        };
        for result in [PoolTake::Hit, PoolTake::Miss] {
            let _ = metrics.pool_takes.get_or_create(&PoolTakeLabels { result });
        }
        use EgressDecision as D;
        for decision in [D::Allowed, D::Refused, D::Failed] {
            let _ = metrics
                .egress_decisions
                .get_or_create(&DecisionLabels { decision });
        }
        for direction in [Direction::Out, Direction::In] {
            let _ = metrics
                .egress_bytes
                .get_or_create(&DirectionLabels { direction });
        }
        use DockerOperation as O;
        for operation in [
            O::Create,
            O::Attach,
            O::Start,
            O::Kill,
            O::Inspect,
            O::Remove,
            O::List,
            O::InspectImage,
            O::Rename,
        ] {
            let _ = metrics
                .docker_requests
                .get_or_create(&OperationLabels { operation });
        }
        metrics
    }
}

impl SandboxMetrics {
    pub(crate) fn decision(&self, decision: EgressDecision) {
        self.egress_decisions
            .get_or_create(&DecisionLabels { decision })
            .inc();
    }

    pub(crate) fn bytes(&self, direction: Direction, n: usize) {
        self.egress_bytes
            .get_or_create(&DirectionLabels { direction })
            .inc_by(n as u64);
    }

    pub(crate) fn pool_take(&self, result: PoolTake) {
        self.pool_takes
            .get_or_create(&PoolTakeLabels { result })
            .inc();
    }

    /// Awaits one Docker call, timing it.
    pub(crate) async fn docker<T>(
        &self,
        operation: DockerOperation,
        call: impl Future<Output = T>,
    ) -> T {
        let started = Instant::now();
        let result = call.await;
        self.docker_requests
            .get_or_create(&OperationLabels { operation })
            .observe(started.elapsed().as_secs_f64());
        result
    }
}
