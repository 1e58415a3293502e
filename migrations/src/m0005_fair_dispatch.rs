//! Fair dispatch (ADR 0010): `executions.dispatched_at`, stamped by the outbox relay when it
//! first publishes the execution, and the partial index that counts, per account, the
//! executions that are out (published and not ended).

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("executions")
                    .add_column(timestamp_with_time_zone_null("dispatched_at"))
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        // Executions published before this migration hold their place too.
        db.execute_unprepared(
            "UPDATE executions SET dispatched_at = created_at WHERE EXISTS \
             (SELECT 1 FROM outbox s WHERE s.execution_id = executions.id AND s.sent_at IS NOT NULL)",
        )
        .await?;
        // Partial (the same syntax on PostgreSQL and SQLite): it holds only what is out, a few
        // rows per account, however long the history.
        db.execute_unprepared(
            "CREATE INDEX executions_out ON executions (account_id) \
             WHERE dispatched_at IS NOT NULL AND status IN ('queued', 'running')",
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("executions_out")
                    .table("executions")
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table("executions")
                    .drop_column("dispatched_at")
                    .to_owned(),
            )
            .await?;
        Ok(())
    }
}
