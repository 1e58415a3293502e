//! Table models (sea-orm). Ids are UUIDv7 strings; timestamps are UTC.

pub mod account;
pub mod agent;
pub mod agent_secret;
pub mod agent_version;
pub mod api_key;
pub mod charge;
pub mod execution;
pub mod execution_claim;
pub mod execution_log;
pub mod ledger_entry;
pub mod ledger_transaction;
pub mod mandate_key;
pub mod node;
pub mod outbox;
pub mod review;
pub mod sandbox_rail_authorization;
pub mod sandbox_rail_call;
pub mod schedule;
pub mod webhook_attempt;
pub mod webhook_delivery;
