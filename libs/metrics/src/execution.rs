//! `frameos_execution_duration_seconds{phase}` (API.md §4.4): the control plane observes every
//! phase of an execution once it ends, from the moments stored on it (ADR 0025).

use std::fmt::Write;

use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::histogram::Histogram;

/// A phase of an execution (API.md §4.4).
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum Phase {
    /// Created → claimed by a node.
    QueueWait,
    /// Claimed → the agent's code runs.
    Start,
    /// The agent's code runs → its outcome.
    Run,
}

impl Phase {
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::QueueWait => "queue_wait",
            Phase::Start => "start",
            Phase::Run => "run",
        }
    }
}

impl EncodeLabelValue for Phase {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        encoder.write_str(self.as_str())
    }
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhaseLabels {
    pub phase: Phase,
}

/// `frameos_execution_duration_seconds{phase}`.
#[derive(Clone, Debug)]
pub struct PhaseDurations(Family<PhaseLabels, Histogram, fn() -> Histogram>);

impl PhaseDurations {
    pub(crate) fn new() -> Self {
        PhaseDurations(Family::new_with_constructor(|| {
            Histogram::new(crate::long_duration_buckets())
        }))
    }

    pub(crate) fn family(&self) -> Family<PhaseLabels, Histogram, fn() -> Histogram> {
        self.0.clone()
    }

    /// Makes `phase` appear (with no observations) before its first one: a family without
    /// samples is left out of the exposition, and a missing series is not a zero.
    pub fn declare(&self, phase: Phase) {
        let _ = self.0.get_or_create(&PhaseLabels { phase });
    }

    pub fn observe(&self, phase: Phase, duration: std::time::Duration) {
        self.0
            .get_or_create(&PhaseLabels { phase })
            .observe(duration.as_secs_f64());
    }
}
