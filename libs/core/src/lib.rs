//! Vocabulary shared by every FrameOS service.
//!
//! The one error-code enum lives here so that the control plane (gRPC) and the gateway (REST)
//! agree on what a failure means and how it is reported on each protocol; so do the fixed sets
//! of words of the API (statuses, roles, runtimes...), each defined once in [`vocab`].

pub mod error;
pub mod log_stream;
pub mod role;
pub mod scope;
pub mod slots;
pub mod vocab;

pub use error::{Error, ErrorCode};
pub use log_stream::LogStream;
pub use role::Role;
pub use scope::{Scope, Scopes};
pub use vocab::{
    ChargeStatus, ExecutionStatus, PricingModel, ReviewDecision, Runtime, ScheduleStatus,
    VersionStatus, WebhookState,
};
