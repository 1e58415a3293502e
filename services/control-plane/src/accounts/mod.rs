//! Accounts: creation, the bootstrap admin, API keys, resolving the caller of a request, and
//! the `AccountService` gRPC endpoint.

pub mod auth;
mod service;

pub use service::{Accounts, bootstrap_admin};
