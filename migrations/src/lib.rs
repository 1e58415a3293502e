//! The schema of FrameOS, one migration set for PostgreSQL (production) and SQLite (`frameos dev`).

pub use sea_orm_migration::prelude::*;

mod m0001_foundation;
mod m0002_executions;
mod m0003_billing;
mod m0004_delivery;
mod m0005_fair_dispatch;
mod m0006_billing_holds;
mod m0007_api_keys;
mod m0008_execution_timings;
mod m0009_outbox_waiting;
mod m0010_version_runtime;
mod m0011_charges_by_payee;
mod m0012_call_trees;
mod m0013_bans;
mod m0014_webhooks;
mod m0015_agent_secrets;
mod m0016_schedules;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m0001_foundation::Migration),
            Box::new(m0002_executions::Migration),
            Box::new(m0003_billing::Migration),
            Box::new(m0004_delivery::Migration),
            Box::new(m0005_fair_dispatch::Migration),
            Box::new(m0006_billing_holds::Migration),
            Box::new(m0007_api_keys::Migration),
            Box::new(m0008_execution_timings::Migration),
            Box::new(m0009_outbox_waiting::Migration),
            Box::new(m0010_version_runtime::Migration),
            Box::new(m0011_charges_by_payee::Migration),
            Box::new(m0012_call_trees::Migration),
            Box::new(m0013_bans::Migration),
            Box::new(m0014_webhooks::Migration),
            Box::new(m0015_agent_secrets::Migration),
            Box::new(m0016_schedules::Migration),
        ]
    }
}
