//! Webhooks (API.md §5.3, ADR 0046): an account's signing secret, and one delivery per
//! execution created with a `webhook_url` (its id is the event id a receiver de-duplicates
//! by), with every attempt kept.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("accounts")
                    .add_column(text_null("webhook_secret"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("webhook_deliveries")
                    .col(string_len("id", 64).primary_key())
                    .col(string_len("execution_id", 36).unique_key())
                    .col(string_len("account_id", 36))
                    .col(text("url"))
                    // waiting (for the execution's end), retrying, delivered, failed
                    .col(string_len("state", 16))
                    .col(integer("attempts").default(0))
                    // When a worker may take it next; a worker's lease while it delivers.
                    .col(timestamp_with_time_zone("next_attempt_at"))
                    .col(timestamp_with_time_zone_null("first_attempt_at"))
                    .col(timestamp_with_time_zone_null("delivered_at"))
                    .col(integer_null("last_status"))
                    .col(text_null("last_error"))
                    .col(timestamp_with_time_zone("created_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("webhook_deliveries_due")
                    .table("webhook_deliveries")
                    .col("state")
                    .col("next_attempt_at")
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("webhook_attempts")
                    .col(string_len("id", 36).primary_key())
                    .col(string_len("delivery_id", 64))
                    .col(integer("attempt"))
                    .col(timestamp_with_time_zone("started_at"))
                    .col(integer("duration_ms"))
                    // The receiver's HTTP status, absent when no response came.
                    .col(integer_null("status"))
                    .col(text_null("error"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("webhook_attempts_delivery")
                    .table("webhook_attempts")
                    .col("delivery_id")
                    .col("attempt")
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in ["webhook_attempts", "webhook_deliveries"] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table("accounts")
                    .drop_column("webhook_secret")
                    .to_owned(),
            )
            .await?;
        Ok(())
    }
}
