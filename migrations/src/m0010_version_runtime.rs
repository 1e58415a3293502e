//! `agent_versions.runtime`: the manifest's runtime as a column, so the marketplace filters by
//! runtime in SQL instead of reading every manifest. Backfilled from the stored agent.json.

use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DatabaseBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // A default keeps the ALTER valid on SQLite; the backfill below overwrites it.
        manager
            .alter_table(
                Table::alter()
                    .table("agent_versions")
                    .add_column(ColumnDef::new("runtime").text().not_null().default("node"))
                    .to_owned(),
            )
            .await?;
        let backfill = match manager.get_database_backend() {
            DatabaseBackend::Postgres => {
                "UPDATE agent_versions SET runtime = (manifest::jsonb) ->> 'runtime'"
            }
            _ => "UPDATE agent_versions SET runtime = json_extract(manifest, '$.runtime')",
        };
        manager
            .get_connection()
            .execute_unprepared(backfill)
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .alter_table(
                Table::alter()
                    .table("agent_versions")
                    .drop_column("runtime")
                    .to_owned(),
            )
            .await?;
        Ok(())
    }
}
