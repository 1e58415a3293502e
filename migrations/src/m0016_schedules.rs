//! Schedules (API.md §5.3, ADR 0047): an agent run on a cron expression by the account that
//! made it; a paid agent's schedule keeps the payer's standing mandate, which each run names.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("schedules")
                    .col(string_len("id", 36).primary_key())
                    .col(string_len("account_id", 36))
                    .col(string_len("agent_id", 36))
                    // Empty: the latest published version at each run.
                    .col(string_len("version", 64))
                    .col(string_len("cron", 128))
                    .col(string_len("timezone", 64))
                    .col(text("inputs"))
                    .col(text_null("webhook_url"))
                    // active, expired
                    .col(string_len("status", 16))
                    // The tick that is due next; a replica takes it under FOR UPDATE SKIP LOCKED.
                    .col(timestamp_with_time_zone("next_run_at"))
                    .col(timestamp_with_time_zone_null("last_run_at"))
                    .col(string_len_null("last_execution_id", 36))
                    .col(text_null("last_error"))
                    .col(big_integer("runs").default(0))
                    .col(timestamp_with_time_zone("created_at"))
                    // The standing mandate of a paid agent's schedule, as signed.
                    .col(string_len_null("mandate_id", 36))
                    .col(big_integer_null("mandate_max_amount_minor"))
                    .col(string_len_null("mandate_currency", 3))
                    .col(timestamp_with_time_zone_null("mandate_expires_at"))
                    .col(string_len_null("mandate_kid", 64))
                    .col(text_null("mandate_payload"))
                    .col(string_len_null("mandate_signature", 128))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("schedules_due")
                    .table("schedules")
                    .col("status")
                    .col("next_run_at")
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("schedules_account")
                    .table("schedules")
                    .col("account_id")
                    .col("created_at")
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("schedules").to_owned())
            .await
    }
}
