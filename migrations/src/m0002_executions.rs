//! Executions, their logs, the transactional outbox of queue messages, and execution nodes.

use sea_orm_migration::{prelude::*, schema::*};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table("executions")
                    .col(string_len("id", 36).primary_key())
                    .col(string_len("account_id", 36))
                    .col(string_len("agent_id", 36))
                    .col(string_len("version_id", 36))
                    // queued | running | succeeded | failed | timed_out | canceled
                    .col(string_len("status", 16))
                    .col(text("inputs"))
                    .col(text_null("output"))
                    .col(text_null("error"))
                    .col(integer_null("exit_code"))
                    .col(double_null("progress"))
                    .col(text_null("progress_message"))
                    // Claims so far; a report must carry the latest (fencing).
                    .col(integer("attempts").default(0))
                    .col(small_integer("priority"))
                    .col(string_len_null("idempotency_key", 255))
                    // SHA-256 of the request an Idempotency-Key was first used with.
                    .col(string_len_null("request_hash", 64))
                    .col(string_len_null("node_id", 128))
                    // Highest log sequence number handed out.
                    .col(big_integer("log_seq").default(0))
                    .col(big_integer("log_bytes").default(0))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone_null("started_at"))
                    .col(timestamp_with_time_zone_null("finished_at"))
                    .foreign_key(
                        ForeignKey::create()
                            .from("executions", "account_id")
                            .to("accounts", "id"),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .from("executions", "version_id")
                            .to("agent_versions", "id"),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("executions_idempotency")
                    .table("executions")
                    .col("account_id")
                    .col("idempotency_key")
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("executions_account_created")
                    .table("executions")
                    .col("account_id")
                    .col("created_at")
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("execution_logs")
                    .col(string_len("execution_id", 36))
                    .col(big_integer("seq"))
                    // stdout | stderr
                    .col(string_len("stream", 8))
                    .col(text("line"))
                    .col(timestamp_with_time_zone("ts"))
                    .primary_key(Index::create().col("execution_id").col("seq"))
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table("outbox")
                    .col(big_pk_auto("id"))
                    .col(string_len("execution_id", 36))
                    .col(small_integer("priority"))
                    // W3C trace context of the request that queued the job (JSON object).
                    .col(text("headers"))
                    .col(timestamp_with_time_zone("created_at"))
                    .col(timestamp_with_time_zone_null("sent_at"))
                    .to_owned(),
            )
            .await?;
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
            .create_table(
                Table::create()
                    .table("nodes")
                    .col(string_len("id", 128).primary_key())
                    .col(integer("concurrency"))
                    .col(timestamp_with_time_zone("registered_at"))
                    .col(timestamp_with_time_zone("last_heartbeat_at"))
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in ["nodes", "outbox", "execution_logs", "executions"] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        Ok(())
    }
}
