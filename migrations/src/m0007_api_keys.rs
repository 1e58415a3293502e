//! Named API keys (API.md §4.5): a name, scopes, an optional expiry and when each key was last
//! used. Keys made before keep working with every scope of their account's role (`scopes` is
//! NULL for them) under the name `default`.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one thing at a time.
        for column in [
            string_len("name", 128).default("default").to_owned(),
            // Comma-separated scope names (`read,run`); NULL: every scope of the role.
            string_len_null("scopes", 64),
            timestamp_with_time_zone_null("expires_at"),
            // Written at most once a minute per key.
            timestamp_with_time_zone_null("last_used_at"),
        ] {
            manager
                .alter_table(
                    Table::alter()
                        .table("api_keys")
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        // An account's keys are listed by account.
        manager
            .create_index(
                Index::create()
                    .name("api_keys_account")
                    .table("api_keys")
                    .col("account_id")
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("api_keys_account")
                    .table("api_keys")
                    .to_owned(),
            )
            .await?;
        for column in ["last_used_at", "expires_at", "scopes", "name"] {
            manager
                .alter_table(
                    Table::alter()
                        .table("api_keys")
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
