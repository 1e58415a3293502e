//! Execution timings (API.md §4.4, ADR 0025): `executions.claimed_at`, when the attempt that
//! runs it now (or ran it last) was claimed, and `executions.running_at`, when that attempt's
//! agent code started running. Both are cleared when an attempt gives the execution back, and
//! set again by the next one. `started_at` keeps its meaning (the first claim).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one column at a time.
        for column in ["claimed_at", "running_at"] {
            manager
                .alter_table(
                    Table::alter()
                        .table("executions")
                        .add_column(timestamp_with_time_zone_null(column))
                        .to_owned(),
                )
                .await?;
        }
        // Executions claimed before this migration: their first claim is the best known one
        // (exact unless retried). When their code started is unknown, so start_ms and run_ms
        // stay absent for them.
        manager
            .get_connection()
            .execute_unprepared(
                "UPDATE executions SET claimed_at = started_at WHERE started_at IS NOT NULL",
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for column in ["running_at", "claimed_at"] {
            manager
                .alter_table(
                    Table::alter()
                        .table("executions")
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
