//! Billing: purchase intents, signed mandates, charges (one per paid execution), the
//! append-only double-entry ledger, mandate verification keys, and the sandbox rail's records.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("mandate_keys")
                    .col(string_len("kid", 64).primary_key())
                    // The 32 raw Ed25519 public key bytes, hex.
                    .col(string_len("public_key", 64))
                    .col(timestamp_with_time_zone("created_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("charges")
                    // One charge per paid execution.
                    .col(string_len("execution_id", 36).primary_key())
                    .col(string_len("intent_id", 36))
                    .col(string_len("mandate_id", 36))
                    .col(string_len("payer_account", 36))
                    .col(string_len("payee_account", 36))
                    .col(big_integer("amount_minor"))
                    .col(string_len("currency", 3))
                    .col(string_len("kid", 64))
                    // The exact signed bytes (UTF-8 JSON) and the signature, hex.
                    .col(text("mandate_payload"))
                    .col(string_len("mandate_signature", 128))
                    .col(string_len_uniq("nonce", 64))
                    .col(timestamp_with_time_zone("expires_at"))
                    .col(string_len("authorization_id", 64))
                    // authorized | captured | voided
                    .col(string_len("status", 16))
                    .col(boolean("orchestrated").default(false))
                    .col(big_integer_null("developer_minor"))
                    .col(big_integer_null("orchestrator_minor"))
                    .col(big_integer_null("platform_minor"))
                    .col(big_integer_null("rail_fee_minor"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone_null("settled_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("charges_status")
                    .table("charges")
                    .col("status")
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("ledger_transactions")
                    .col(string_len("id", 36).primary_key())
                    // capture
                    .col(string_len("kind", 16))
                    // Exactly one capture transaction per execution.
                    .col(string_len_uniq("execution_id", 36))
                    .col(timestamp_with_time_zone("created_at"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("ledger_entries")
                    .col(big_pk_auto("id"))
                    .col(string_len("transaction_id", 36))
                    // e.g. user:<account id>, developer:<account id>, platform, orchestrator, rail_fees
                    .col(string_len("account", 80))
                    // debit | credit
                    .col(string_len("direction", 6))
                    .col(big_integer("amount_minor"))
                    .col(string_len("currency", 3))
                    .col(timestamp_with_time_zone("created_at"))
                    .foreign_key(
                        ForeignKey::create()
                            .from("ledger_entries", "transaction_id")
                            .to("ledger_transactions", "id"),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("ledger_entries_account")
                    .table("ledger_entries")
                    .col("account")
                    .col("id")
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("sandbox_rail_authorizations")
                    // The simulated processor's own records (they outlive control plane crashes).
                    .col(string_len("id", 64).primary_key())
                    .col(text("record"))
                    .col(timestamp_with_time_zone("updated_at"))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            "sandbox_rail_authorizations",
            "ledger_entries",
            "ledger_transactions",
            "charges",
            "mandate_keys",
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
