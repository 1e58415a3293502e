use frameos_core::ScheduleStatus;
use sea_orm::entity::prelude::*;

/// An agent run on a cron expression by the account that made it (API.md §5.3).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "schedules")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub account_id: String,
    pub agent_id: String,
    /// Empty: the latest published version at each run.
    pub version: String,
    pub cron: String,
    pub timezone: String,
    /// JSON text, as executions keep theirs.
    pub inputs: String,
    pub webhook_url: Option<String>,
    pub status: ScheduleStatus,
    pub next_run_at: DateTimeUtc,
    pub last_run_at: Option<DateTimeUtc>,
    pub last_execution_id: Option<String>,
    pub last_error: Option<String>,
    pub runs: i64,
    pub created_at: DateTimeUtc,
    pub mandate_id: Option<String>,
    pub mandate_max_amount_minor: Option<i64>,
    pub mandate_currency: Option<String>,
    pub mandate_expires_at: Option<DateTimeUtc>,
    pub mandate_kid: Option<String>,
    pub mandate_payload: Option<String>,
    pub mandate_signature: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
