//! Call trees (API.md §5.1, ADR 0040): an execution started by another one's `ctx.call` names
//! its `parent_id` and the tree's `root_id`, and its `depth` (a root is 1, at most 5). A child's
//! charge names the developer of the calling agent, who earns the orchestrator share.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // One column per statement: SQLite alters one column at a time.
        for column in [string_null("parent_id"), string_null("root_id")] {
            manager
                .alter_table(
                    Table::alter()
                        .table("executions")
                        .add_column(column)
                        .to_owned(),
                )
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table("executions")
                    .add_column(small_integer("depth").default(1))
                    .to_owned(),
            )
            .await?;
        manager
            .alter_table(
                Table::alter()
                    .table("charges")
                    .add_column(string_null("orchestrator_account"))
                    .to_owned(),
            )
            .await?;
        // A parent's children, and the charges of a whole tree (the budget), by index.
        for (name, table, column) in [
            ("executions_parent", "executions", "parent_id"),
            ("executions_root", "executions", "root_id"),
            // An orchestrator's earnings read its calls' charges only.
            ("charges_orchestrator", "charges", "orchestrator_account"),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(table)
                        .col(column)
                        .to_owned(),
                )
                .await?;
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for (name, table) in [
            ("charges_orchestrator", "charges"),
            ("executions_root", "executions"),
            ("executions_parent", "executions"),
        ] {
            manager
                .drop_index(Index::drop().name(name).table(table).to_owned())
                .await?;
        }
        manager
            .alter_table(
                Table::alter()
                    .table("charges")
                    .drop_column("orchestrator_account")
                    .to_owned(),
            )
            .await?;
        for column in ["depth", "root_id", "parent_id"] {
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
