//! The relay's index holds only the rows waiting to be published (ADR 0033).
//!
//! `outbox_unsent` indexed `(sent_at, id)` for every row, so each published row left a dead
//! `(NULL, id)` entry behind until vacuum; the planner read the waiting rows through a bitmap
//! scan of all of them (a bitmap scan never marks an entry dead), so every relay pass got slower
//! with the traffic since the last vacuum. A partial index on `id` keeps only the waiting rows,
//! is read in order under `LIMIT` by a plain index scan, and that scan marks the entries of
//! published rows dead as it passes them.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name("outbox_waiting")
                    .table("outbox")
                    .col("id")
                    .and_where(Expr::col("sent_at").is_null())
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("outbox_unsent")
                    .table("outbox")
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name("outbox_unsent")
                    .table("outbox")
                    .col("sent_at")
                    .col("id")
                    .to_owned(),
            )
            .await?;
        manager
            .drop_index(
                Index::drop()
                    .name("outbox_waiting")
                    .table("outbox")
                    .to_owned(),
            )
            .await
    }
}
