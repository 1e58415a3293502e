//! Review modes and bans (API.md §5.2, ADR 0044): an agent an admin banned keeps why and when
//! (its owner sees them); a version the auto review mode published and sampled waits for its
//! spot check.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one column at a time.
        for column in [
            timestamp_with_time_zone_null("banned_at"),
            text_null("ban_reason"),
            string_null("banned_by"),
        ] {
            manager
                .alter_table(Table::alter().table("agents").add_column(column).to_owned())
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table("agent_versions")
                    .add_column(boolean("spot_check").default(false))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("agent_versions")
                    .drop_column("spot_check")
                    .to_owned(),
            )
            .await?;
        for column in ["banned_by", "ban_reason", "banned_at"] {
            manager
                .alter_table(
                    Table::alter()
                        .table("agents")
                        .drop_column(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }
}
