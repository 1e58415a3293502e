//! Agents: the catalog (creation, listing, visibility), their versions (publishing, the
//! scanner), the admin review, and the `AgentService` gRPC endpoint over them.

pub mod bans;
pub mod catalog;
pub mod dependencies;
pub mod package_files;
pub mod review_mode;
pub mod reviews;
mod service;
pub mod versions;

pub use service::Agents;
