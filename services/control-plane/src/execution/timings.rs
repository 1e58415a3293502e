//! An execution's phases (API.md §4.4, ADR 0025), from the moments stored on its row, all on
//! the control plane's clock: `created_at`, `claimed_at` (the current or last attempt's claim),
//! `running_at` (that attempt's code started) and `finished_at`. The API's `timings` and the
//! `frameos_execution_duration_seconds{phase}` histogram are both computed here, so they agree.

use chrono::{DateTime, TimeDelta, Utc};
use frameos_metrics::Phase;
use frameos_proto::v1;
use sea_orm::{DatabaseConnection, EntityTrait};

use crate::entity::execution;
use crate::metrics::Metrics;

/// Each phase whose two ends are known.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Phases {
    /// Created → claimed (by the attempt that ran last; earlier attempts are part of it).
    pub queue_wait: Option<TimeDelta>,
    /// Claimed → the agent's code running.
    pub start: Option<TimeDelta>,
    /// The agent's code running → its outcome.
    pub run: Option<TimeDelta>,
}

impl Phases {
    pub fn of(row: &execution::Model) -> Phases {
        // A canceled run may have started after the cancel was recorded (the node had not heard
        // of it yet): it ran for no time as far as the execution is concerned.
        let running = match (row.running_at, row.finished_at) {
            (Some(running), Some(finished)) => Some(running.min(finished)),
            (running, _) => running,
        };
        Phases {
            queue_wait: between(Some(row.created_at), row.claimed_at),
            start: between(row.claimed_at, running),
            run: between(running, row.finished_at),
        }
    }

    /// Into `frameos_execution_duration_seconds{phase}`, each known phase.
    pub fn observe(self, metrics: &Metrics) {
        let phases = [
            (Phase::QueueWait, self.queue_wait),
            (Phase::Start, self.start),
            (Phase::Run, self.run),
        ];
        for (phase, took) in phases {
            if let Some(took) = took {
                metrics.phase(phase, took);
            }
        }
    }

    /// `None` until a phase is known (a queued execution has no `timings` at all).
    pub fn to_proto(self) -> Option<v1::Timings> {
        let ms = |phase: Option<TimeDelta>| phase.map(|d| d.num_milliseconds().unsigned_abs());
        let timings = v1::Timings {
            queue_wait_ms: ms(self.queue_wait),
            start_ms: ms(self.start),
            run_ms: ms(self.run),
        };
        (timings != v1::Timings::default()).then_some(timings)
    }
}

/// Observes the phases of an execution that has just ended, once, as stored on its row (read
/// again here, after the outcome was written). A failed read only loses the observation.
pub async fn observe_ended(db: &DatabaseConnection, metrics: &Metrics, execution_id: &str) {
    match execution::Entity::find_by_id(execution_id).one(db).await {
        Ok(Some(row)) => Phases::of(&row).observe(metrics),
        Ok(None) => {}
        Err(e) => tracing::warn!(execution_id, error = %e, "execution timings not observed"),
    }
}

/// `to - from`, never negative (moments written by two control plane replicas may disagree
/// by their clocks' skew).
fn between(from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>) -> Option<TimeDelta> {
    Some((to? - from?).max(TimeDelta::zero()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ms: i64) -> DateTime<Utc> {
        DateTime::<Utc>::from_timestamp_millis(1_800_000_000_000 + ms).unwrap_or_default()
    }

    fn row() -> execution::Model {
        execution::Model {
            id: "e".into(),
            account_id: "a".into(),
            agent_id: "g".into(),
            version_id: "v".into(),
            status: frameos_core::ExecutionStatus::Queued,
            inputs: "{}".into(),
            output: None,
            error: None,
            exit_code: None,
            progress: None,
            progress_message: None,
            attempts: 0,
            priority: 1,
            idempotency_key: None,
            request_hash: None,
            node_id: None,
            log_seq: 0,
            log_bytes: 0,
            created_at: at(0),
            started_at: None,
            finished_at: None,
            claimed_at: None,
            running_at: None,
            parent_id: None,
            root_id: None,
            depth: 1,
        }
    }

    fn ms(queue_wait: Option<u64>, start: Option<u64>, run: Option<u64>) -> Option<v1::Timings> {
        Some(v1::Timings {
            queue_wait_ms: queue_wait,
            start_ms: start,
            run_ms: run,
        })
    }

    #[test]
    fn each_phase_appears_once_both_its_ends_are_known() {
        let mut row = row();
        assert_eq!(Phases::of(&row).to_proto(), None, "queued");
        row.claimed_at = Some(at(120));
        assert_eq!(Phases::of(&row).to_proto(), ms(Some(120), None, None));
        row.running_at = Some(at(1_870));
        assert_eq!(
            Phases::of(&row).to_proto(),
            ms(Some(120), Some(1_750), None)
        );
        row.finished_at = Some(at(2_000));
        let phases = Phases::of(&row);
        assert_eq!(phases.to_proto(), ms(Some(120), Some(1_750), Some(130)));
        let sum = [phases.queue_wait, phases.start, phases.run]
            .into_iter()
            .flatten()
            .sum::<TimeDelta>();
        assert_eq!(sum, TimeDelta::milliseconds(2_000));
    }

    #[test]
    fn what_never_happened_stays_absent() {
        // Canceled while queued: nothing to say.
        let mut row = row();
        row.finished_at = Some(at(500));
        assert_eq!(Phases::of(&row).to_proto(), None);
        // Canceled while its container was being created: it never ran.
        row.claimed_at = Some(at(100));
        assert_eq!(Phases::of(&row).to_proto(), ms(Some(100), None, None));
        // Its code started after the cancel was recorded: no negative run, no start past the end.
        row.running_at = Some(at(700));
        assert_eq!(
            Phases::of(&row).to_proto(),
            ms(Some(100), Some(400), Some(0))
        );
    }

    #[test]
    fn skewed_clocks_never_give_negative_phases() {
        let mut row = row();
        row.claimed_at = Some(at(-5));
        row.running_at = Some(at(-10));
        row.finished_at = Some(at(20));
        assert_eq!(Phases::of(&row).to_proto(), ms(Some(0), Some(0), Some(30)));
    }
}
