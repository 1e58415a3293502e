//! The sandbox rail's request log: every authorize, capture and void it received, with its
//! idempotency key and outcome, as a processor logs requests. A second capture of one hold
//! shows here even though the hold itself only ever reads `captured`.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("sandbox_rail_calls")
                    .col(big_pk_auto("id"))
                    // authorize | capture | void
                    .col(string_len("operation", 16))
                    .col(string_len("idempotency_key", 255))
                    .col(string_len_null("authorization_id", 64))
                    .col(big_integer_null("amount_minor"))
                    // authorized | captured | voided | replayed | declined | failed | not_found
                    // | invalid_state | invalid
                    .col(string_len("outcome", 16))
                    .col(timestamp_with_time_zone("created_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("sandbox_rail_calls_authorization")
                    .table("sandbox_rail_calls")
                    .col("authorization_id")
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("sandbox_rail_calls").to_owned())
            .await
    }
}
