//! `charges_payee`: a developer's earnings (`GET /v1/me/earnings`) read that developer's
//! captured charges only, not every charge of the platform.

use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_index(
                Index::create()
                    .name("charges_payee")
                    .table("charges")
                    .col("payee_account")
                    .col("status")
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_index(
                Index::drop()
                    .name("charges_payee")
                    .table("charges")
                    .to_owned(),
            )
            .await
    }
}
