//! Executions: creation (validated, idempotent, queued through the outbox), queries, cancel,
//! live watching, the node protocol (claim with fencing, reports), the outbox relay, the
//! dead-letter consumer and the reaper.

mod calls;
mod claims;
mod create;
pub mod dead_letters;
mod dispatch;
mod hub;
mod intake;
pub mod live;
mod node_service;
mod query;
pub mod reaper;
pub mod relay;
mod release;
mod reports;
mod requeue;
mod service;
pub mod stream_token;
mod system_log;
mod timings;
mod tree;
mod view;
mod watch;

pub use claims::Liveness;
pub(crate) use create::{Origin, check_inputs, create, runnable};
pub use hub::Hub;
pub(crate) use intake::Intake;
pub use node_service::Nodes;
pub use query::{cancel_agent_runs, full as full_view, owned};
pub use service::Executions;
pub use stream_token::StreamTokens;
pub(crate) use tree::descendants_budget;

/// Priorities of queue messages: paid executions run before free ones.
pub const PRIORITY_PAID: i16 = 5;
pub const PRIORITY_FREE: i16 = 1;

/// Bytes of log lines stored per execution; the node caps logs at 1 MiB, this is the backstop.
pub const MAX_STORED_LOG_BYTES: i64 = 2 * 1024 * 1024;
