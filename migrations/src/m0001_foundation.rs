//! Accounts, API keys, agents, versions and their reviews.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("accounts")
                    .col(string_len("id", 36).primary_key())
                    .col(string_len_uniq("name", 128))
                    .col(string_len("role", 16))
                    .col(timestamp_with_time_zone("created_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("api_keys")
                    // The public key id embedded in the key; the secret part is never stored.
                    .col(string_len("id", 32).primary_key())
                    .col(string_len("account_id", 36))
                    // Lowercase hex SHA-256 of the whole key.
                    .col(string_len("key_hash", 64))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone_null("revoked_at"))
                    .foreign_key(
                        ForeignKey::create()
                            .from("api_keys", "account_id")
                            .to("accounts", "id"),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("agents")
                    .col(string_len("id", 36).primary_key())
                    .col(string_len_uniq("slug", 64))
                    .col(string_len("name", 128))
                    .col(text("description"))
                    .col(string_len("owner_id", 36))
                    // "free" | "per_execution"
                    .col(string_len("pricing_model", 32))
                    .col(big_integer_null("price_minor"))
                    .col(string_len_null("currency", 3))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .foreign_key(
                        ForeignKey::create()
                            .from("agents", "owner_id")
                            .to("accounts", "id"),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("agent_versions")
                    .col(string_len("id", 36).primary_key())
                    .col(string_len("agent_id", 36))
                    .col(string_len("version", 128))
                    // "pending_review" | "published" | "rejected"
                    .col(string_len("status", 32))
                    .col(string_len("sha256", 64))
                    .col(big_integer("size_bytes"))
                    .col(string_len("package_key", 512))
                    .col(text("manifest"))
                    .col(text("scan"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone_null("published_at"))
                    .foreign_key(
                        ForeignKey::create()
                            .from("agent_versions", "agent_id")
                            .to("agents", "id"),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("agent_versions_agent_version")
                    .table("agent_versions")
                    .col("agent_id")
                    .col("version")
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("agent_versions_status")
                    .table("agent_versions")
                    .col("status")
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("reviews")
                    .col(string_len("id", 36).primary_key())
                    .col(string_len("version_id", 36))
                    // "approved" | "rejected"
                    .col(string_len("decision", 16))
                    // An admin's account id, or "scanner".
                    .col(string_len("reviewer", 36))
                    .col(text("reason"))
                    .col(timestamp_with_time_zone("created_at"))
                    .foreign_key(
                        ForeignKey::create()
                            .from("reviews", "version_id")
                            .to("agent_versions", "id"),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("reviews_version")
                    .table("reviews")
                    .col("version_id")
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            "reviews",
            "agent_versions",
            "agents",
            "api_keys",
            "accounts",
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
