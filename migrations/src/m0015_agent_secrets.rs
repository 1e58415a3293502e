//! Secrets of agents (API.md §5.3, ADR 0045): one row per agent and name, the value sealed with
//! AES-256-GCM under the key `key_id` of FRAMEOS_SECRETS_KEY. Never a value in clear.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("agent_secrets")
                    .col(string_len("agent_id", 36))
                    // `[A-Z_][A-Z0-9_]{0,63}`
                    .col(string_len("name", 64))
                    // Which key of FRAMEOS_SECRETS_KEY sealed it: rotation finds the others.
                    .col(string_len("key_id", 32))
                    // 96 random bits, new for every sealing.
                    .col(blob("nonce"))
                    // The sealed value and its 16-byte tag; the associated data binds it to
                    // its agent and name.
                    .col(blob("ciphertext"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .primary_key(Index::create().col("agent_id").col("name"))
                    .foreign_key(
                        ForeignKey::create()
                            .from("agent_secrets", "agent_id")
                            .to("agents", "id"),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table("agent_secrets").to_owned())
            .await
    }
}
