//! Schedules (API.md §5.3, ADR 0047): an agent run on a cron expression by the account that made
//! the schedule, as if it had created each execution itself. Every replica runs a [`Ticker`]; a
//! due schedule is taken under `FOR UPDATE SKIP LOCKED`, so one replica handles each tick, and
//! its run carries the idempotency key `schedule:<id>:<tick>`, so a replica that dies between
//! creating the run and advancing the schedule does not make a second one. After a tick the next
//! one is computed from now: ticks missed while no control plane ran make one run, not many.
//!
//! A paid agent's schedule keeps a standing mandate the payer gave when creating it (the most a
//! run may cost, until a date), signed like a run's mandate; each run's mandate names it, and a
//! run it no longer covers is not created (the schedule records why).

mod book;
mod service;
mod ticker;
mod timetable;

pub use service::Schedules;
pub use ticker::Ticker;
pub use timetable::Timetable;

#[derive(Clone, Debug, clap::Args)]
pub struct ScheduleConfig {
    /// How often each replica looks for due schedules. Ticks are whole minutes, so a second
    /// is precise enough.
    #[arg(long, env = "FRAMEOS_SCHEDULE_POLL_MS", default_value_t = 1_000)]
    pub schedule_poll_ms: u64,
    /// Schedules one account may hold; more are refused (`rate_limited`) until one is deleted.
    #[arg(long, env = "FRAMEOS_SCHEDULES_PER_ACCOUNT", default_value_t = 100)]
    pub schedules_per_account: u32,
}

impl Default for ScheduleConfig {
    fn default() -> Self {
        ScheduleConfig {
            schedule_poll_ms: 1_000,
            schedules_per_account: 100,
        }
    }
}

/// The idempotency key of the run a schedule makes for the tick due at `tick`: its stored time
/// to the microsecond (what PostgreSQL keeps), so two ticks never share a key, even ticks made
/// due by hand within one second.
fn run_key(schedule_id: &str, tick: chrono::DateTime<chrono::Utc>) -> String {
    format!("schedule:{schedule_id}:{}", tick.timestamp_micros())
}
