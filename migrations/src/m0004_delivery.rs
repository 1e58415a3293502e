//! Delivery after a crash: the claim of each running execution (which node registration runs
//! which attempt, renewed by that node's heartbeats) and the node's current registration, so
//! the reaper can tell a live claim from a dead one; indexes for the reaper's scans.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("execution_claims")
                    // One row per execution: the latest claim; `attempt` says which.
                    .col(string_len("execution_id", 36).primary_key())
                    .col(integer("attempt"))
                    .col(string_len("node_id", 128))
                    // The instance id the node process registered with.
                    .col(string_len("registration", 64))
                    .col(timestamp_with_time_zone("claimed_at"))
                    // Last heartbeat of the node that listed this execution as running.
                    .col(timestamp_with_time_zone("renewed_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("execution_claims_node")
                    .table("execution_claims")
                    .col("node_id")
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table("nodes")
                    .add_column(string_len("registration", 64).default(""))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("outbox_execution")
                    .table("outbox")
                    .col("execution_id")
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("executions_status")
                    .table("executions")
                    .col("status")
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (index, table) in [
            ("executions_status", "executions"),
            ("outbox_execution", "outbox"),
        ] {
            manager
                .drop_index(Index::drop().name(index).table(table).to_owned())
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table("nodes")
                    .drop_column("registration")
                    .to_owned(),
            )
            .await?;
        manager
            .drop_table(Table::drop().table("execution_claims").to_owned())
            .await?;
        Ok(())
    }
}
