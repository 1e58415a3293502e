use frameos_core::ExecutionStatus;
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "executions")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: String,
    pub account_id: String,
    pub agent_id: String,
    pub version_id: String,
    pub status: ExecutionStatus,
    pub inputs: String,
    pub output: Option<String>,
    pub error: Option<String>,
    pub exit_code: Option<i32>,
    pub progress: Option<f64>,
    pub progress_message: Option<String>,
    pub attempts: i32,
    pub priority: i16,
    pub idempotency_key: Option<String>,
    pub request_hash: Option<String>,
    pub node_id: Option<String>,
    pub log_seq: i64,
    pub log_bytes: i64,
    pub created_at: DateTimeUtc,
    pub started_at: Option<DateTimeUtc>,
    pub finished_at: Option<DateTimeUtc>,
    /// When the current (or last) attempt was claimed; cleared when it gives the execution back.
    pub claimed_at: Option<DateTimeUtc>,
    /// When that attempt's agent code started running (the node's `Started` report).
    pub running_at: Option<DateTimeUtc>,
    /// The execution whose `ctx.call` started this one (API.md §5.1); `None` for a root.
    pub parent_id: Option<String>,
    /// The first execution of the call tree; `None` for a root.
    pub root_id: Option<String>,
    /// Executions from the root down to this one, itself included: a root is 1.
    pub depth: i16,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
