//! The control plane's metrics (API.md §4.3). Counters and histograms are recorded where the
//! event happens; the gauges of the database's state (queue depth, outbox, stuck executions,
//! node heartbeats, overdue schedules) are read at scrape time ([`Metrics::refresh`]), so they cost nothing while
//! nobody scrapes and are never staler than the scrape.

use std::fmt::Write;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use chrono::Utc;
use frameos_core::{ChargeStatus, ExecutionStatus, ScheduleStatus};
use frameos_metrics::{Phase, PhaseDurations, Registry};
use prometheus_client::encoding::{EncodeLabelSet, EncodeLabelValue, LabelValueEncoder};
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use sea_orm::{
    ColumnTrait, DatabaseConnection, DbErr, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect,
};

use crate::entity::{execution, execution_claim, node, outbox, schedule};

/// The end of an execution: a terminal status as a label value (its contract string).
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
struct Outcome(ExecutionStatus);

impl EncodeLabelValue for Outcome {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        encoder.write_str(self.0.as_str())
    }
}

/// Where a charge went: the vocabulary's status as a label value (its contract string).
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
struct ChargeLabel(ChargeStatus);

impl EncodeLabelValue for ChargeLabel {
    fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
        encoder.write_str(self.0.as_str())
    }
}

/// What a reconciliation fixed.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum Fix {
    /// An open charge of an ended execution settled (billing reconciler).
    Settled,
    /// A hold at the rail no execution was recorded for, released (billing reconciler).
    Released,
    /// A claim whose node stopped renewing it, taken back and queued again (reaper).
    DeadClaim,
    /// A dispatched job the queue lost, queued again (reaper).
    LostJob,
    /// A child execution still live under a parent that ended, canceled (reaper, ADR 0040).
    OrphanedChild,
}

impl Fix {
    const ALL: [Fix; 5] = [
        Fix::Settled,
        Fix::Released,
        Fix::DeadClaim,
        Fix::LostJob,
        Fix::OrphanedChild,
    ];
}

/// What became of a schedule's tick.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum Tick {
    /// Its run was made.
    Run,
    /// No run: the owner's to fix (recorded as the schedule's `last_error`).
    Refused,
    /// The standing mandate expired: the schedule stopped.
    Expired,
    /// The database or the rail was unavailable: retried on the next pass.
    Postponed,
}

impl Tick {
    const ALL: [Tick; 4] = [Tick::Run, Tick::Refused, Tick::Expired, Tick::Postponed];
}

/// Which reconciliation loop ran.
#[derive(Clone, Copy, Debug, Hash, PartialEq, Eq)]
pub enum Reconciler {
    Billing,
    Reaper,
}

impl Reconciler {
    const ALL: [Reconciler; 2] = [Reconciler::Billing, Reconciler::Reaper];
}

macro_rules! label_value {
    ($type:ty { $($variant:ident => $text:literal),+ $(,)? }) => {
        impl EncodeLabelValue for $type {
            fn encode(&self, encoder: &mut LabelValueEncoder) -> Result<(), std::fmt::Error> {
                encoder.write_str(match self {
                    $(<$type>::$variant => $text),+
                })
            }
        }
    };
}

label_value!(Fix { Settled => "settled", Released => "released", DeadClaim => "dead_claim", LostJob => "lost_job", OrphanedChild => "orphaned_child" });
label_value!(Reconciler { Billing => "billing", Reaper => "reaper" });
label_value!(Tick { Run => "run", Refused => "refused", Expired => "expired", Postponed => "postponed" });

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct TickLabels {
    outcome: Tick,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OutcomeLabels {
    outcome: Outcome,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ChargeLabels {
    status: ChargeLabel,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct FixLabels {
    kind: Fix,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RunLabels {
    reconciler: Reconciler,
}

type SecondsGauge = Gauge<f64, AtomicU64>;

/// Handles on the control plane's families; clones share them.
#[derive(Clone, Debug)]
pub struct Metrics {
    executions: Family<OutcomeLabels, Counter>,
    phases: PhaseDurations,
    charges: Family<ChargeLabels, Counter>,
    reconcile_runs: Family<RunLabels, Counter>,
    reconcile_fixes: Family<FixLabels, Counter>,
    ticks: Family<TickLabels, Counter>,
    schedules_overdue: SecondsGauge,
    publish: Histogram,
    queue_depth: Gauge,
    outbox_pending: Gauge,
    outbox_oldest_age: SecondsGauge,
    stuck: Gauge,
    heartbeat_age: SecondsGauge,
}

impl Default for Metrics {
    /// Families in a registry of their own (nobody scrapes them): for tests.
    fn default() -> Self {
        Metrics::new(&Registry::new())
    }
}

impl Metrics {
    /// Registers the control plane's families in `registry`.
    pub fn new(registry: &Registry) -> Self {
        let metrics = Metrics {
            executions: Family::default(),
            phases: registry.execution_durations(),
            charges: Family::default(),
            reconcile_runs: Family::default(),
            reconcile_fixes: Family::default(),
            ticks: Family::default(),
            schedules_overdue: SecondsGauge::default(),
            publish: Histogram::new(frameos_metrics::duration_buckets()),
            queue_depth: Gauge::default(),
            outbox_pending: Gauge::default(),
            outbox_oldest_age: SecondsGauge::default(),
            stuck: Gauge::default(),
            heartbeat_age: SecondsGauge::default(),
        };
        // Every label value from the start: a family without samples is left out of the
        // exposition, and an alert on a missing series never fires.
        for outcome in ExecutionStatus::TERMINAL.map(Outcome) {
            let _ = metrics.executions.get_or_create(&OutcomeLabels { outcome });
        }
        for status in ChargeStatus::ALL {
            let status = ChargeLabel(*status);
            let _ = metrics.charges.get_or_create(&ChargeLabels { status });
        }
        for reconciler in Reconciler::ALL {
            let _ = metrics
                .reconcile_runs
                .get_or_create(&RunLabels { reconciler });
        }
        for kind in Fix::ALL {
            let _ = metrics.reconcile_fixes.get_or_create(&FixLabels { kind });
        }
        for outcome in Tick::ALL {
            let _ = metrics.ticks.get_or_create(&TickLabels { outcome });
        }
        for phase in [Phase::QueueWait, Phase::Start, Phase::Run] {
            metrics.phases.declare(phase);
        }
        let m = metrics.clone();
        registry.register(
            "frameos_executions",
            "Executions ended, by outcome",
            m.executions,
        );
        registry.register(
            "frameos_charges",
            "Charges of paid executions by what happened to them: authorized, captured, voided",
            m.charges,
        );
        registry.register(
            "frameos_reconcile_runs",
            "Passes of the reconciliation loops (billing reconciler, reaper)",
            m.reconcile_runs,
        );
        registry.register(
            "frameos_reconcile_fixes",
            "Things the reconciliation loops found wrong and fixed, by kind",
            m.reconcile_fixes,
        );
        registry.register(
            "frameos_schedule_ticks",
            "Schedule ticks handled, by outcome: run, refused (the owner's to fix), expired, postponed",
            m.ticks,
        );
        registry.register_seconds(
            "frameos_schedules_overdue",
            "How late the oldest due tick of an active schedule is (0 when none is due): the tickers are not keeping up",
            m.schedules_overdue,
        );
        registry.register_seconds(
            "frameos_amqp_publish_duration",
            "Time to publish one job to the queue, its broker confirm included",
            m.publish,
        );
        registry.register(
            "frameos_queue_depth",
            "Executions waiting for a node: queued, not claimed",
            m.queue_depth,
        );
        registry.register(
            "frameos_outbox_pending",
            "Outbox rows not yet published to the queue",
            m.outbox_pending,
        );
        registry.register_seconds(
            "frameos_outbox_oldest_age",
            "Age of the oldest outbox row not yet published (0 when none)",
            m.outbox_oldest_age,
        );
        registry.register(
            "frameos_executions_stuck",
            "Running executions whose node stopped renewing the claim (the reaper should take them back)",
            m.stuck,
        );
        registry.register_seconds(
            "frameos_node_heartbeat_age",
            "Oldest last heartbeat among the nodes heard from in the last hour (0 when none)",
            m.heartbeat_age,
        );
        metrics
    }

    /// A schedule's tick was handled.
    pub fn tick(&self, outcome: Tick) {
        self.ticks.get_or_create(&TickLabels { outcome }).inc();
    }

    /// An execution ended with `status`; other statuses (a hand-back) are not counted.
    pub fn ended(&self, status: ExecutionStatus) {
        if status.is_terminal() {
            let outcome = Outcome(status);
            self.executions
                .get_or_create(&OutcomeLabels { outcome })
                .inc();
        }
    }

    /// One phase of an execution that ended (API.md §4.4): observed once per execution, from
    /// the same stored moments as its `timings`.
    pub fn phase(&self, phase: Phase, took: chrono::TimeDelta) {
        self.phases
            .observe(phase, took.to_std().unwrap_or_default());
    }

    pub fn charge(&self, status: ChargeStatus) {
        let status = ChargeLabel(status);
        self.charges.get_or_create(&ChargeLabels { status }).inc();
    }

    pub fn reconciled(&self, reconciler: Reconciler, fixes: &[(Fix, usize)]) {
        self.reconcile_runs
            .get_or_create(&RunLabels { reconciler })
            .inc();
        for &(kind, count) in fixes {
            if count > 0 {
                self.reconcile_fixes
                    .get_or_create(&FixLabels { kind })
                    .inc_by(count as u64);
            }
        }
    }

    pub fn published(&self, took: Duration) {
        self.publish.observe(took.as_secs_f64());
    }

    /// Reads the gauges of the database's state; on a failure they keep their last values.
    pub async fn refresh(&self, db: &DatabaseConnection, dead_after: Duration) {
        if let Err(e) = self.read_gauges(db, dead_after).await {
            tracing::warn!(error = %e, "metrics: cannot read the queue and outbox gauges");
        }
    }

    async fn read_gauges(
        &self,
        db: &DatabaseConnection,
        dead_after: Duration,
    ) -> Result<(), DbErr> {
        let now = Utc::now();
        let queued = execution::Entity::find()
            .filter(execution::Column::Status.eq(ExecutionStatus::Queued))
            .count(db)
            .await?;
        self.queue_depth.set(gauge(queued));

        let pending = outbox::Entity::find().filter(outbox::Column::SentAt.is_null());
        self.outbox_pending
            .set(gauge(pending.clone().count(db).await?));
        let oldest = pending
            .order_by_asc(outbox::Column::Id)
            .one(db)
            .await?
            .map_or(0.0, |row| seconds(now - row.created_at));
        self.outbox_oldest_age.set(oldest);

        let running: Vec<String> = execution::Entity::find()
            .select_only()
            .column(execution::Column::Id)
            .filter(execution::Column::Status.eq(ExecutionStatus::Running))
            .into_tuple()
            .all(db)
            .await?;
        let cutoff = now - chrono::Duration::from_std(dead_after).unwrap_or(chrono::Duration::MAX);
        let stuck = if running.is_empty() {
            0
        } else {
            execution_claim::Entity::find()
                .filter(execution_claim::Column::ExecutionId.is_in(running))
                .filter(execution_claim::Column::RenewedAt.lt(cutoff))
                .count(db)
                .await?
        };
        self.stuck.set(gauge(stuck));

        let recent = now - chrono::Duration::hours(1);
        let stalest = node::Entity::find()
            .filter(node::Column::LastHeartbeatAt.gt(recent))
            .order_by_asc(node::Column::LastHeartbeatAt)
            .one(db)
            .await?
            .map_or(0.0, |row| seconds(now - row.last_heartbeat_at));
        self.heartbeat_age.set(stalest);

        let overdue = schedule::Entity::find()
            .filter(schedule::Column::Status.eq(ScheduleStatus::Active))
            .filter(schedule::Column::NextRunAt.lte(now))
            .order_by_asc(schedule::Column::NextRunAt)
            .one(db)
            .await?
            .map_or(0.0, |row| seconds(now - row.next_run_at));
        self.schedules_overdue.set(overdue);
        Ok(())
    }
}

fn gauge(count: u64) -> i64 {
    i64::try_from(count).unwrap_or(i64::MAX)
}

fn seconds(age: chrono::TimeDelta) -> f64 {
    age.to_std().unwrap_or_default().as_secs_f64()
}
