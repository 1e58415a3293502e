//! Indexes for fair dispatch (ADR 0010): the relay counts, per account, the executions that are
//! out (published and not ended) and ranks each account's waiting outbox rows.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // "Was this execution published already?" for every live execution and waiting row.
        manager
            .create_index(
                Index::create()
                    .name("outbox_execution")
                    .table("outbox")
                    .col("execution_id")
                    .col("sent_at")
                    .to_owned(),
            )
            .await?;
        // The live (queued, running) executions by account.
        manager
            .create_index(
                Index::create()
                    .name("executions_status_account")
                    .table("executions")
                    .col("status")
                    .col("account_id")
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (name, table) in [
            ("executions_status_account", "executions"),
            ("outbox_execution", "outbox"),
        ] {
            manager
                .drop_index(Index::drop().name(name).table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
