//! One service lifecycle for every FrameOS binary (API.md §4.3, ADR 0009).
//!
//! - [`Signals`]: SIGTERM and SIGINT alike start a graceful stop (what `docker stop`, Kubernetes
//!   and Ctrl-C send); a second signal ends the process at once.
//! - [`Supervisor`]: every background task has an owner ([`tokio_util::task::TaskTracker`]); a
//!   component that fails (returns an error, panics, or ends before the stop) stops the whole
//!   service, so a process is never left half-alive.
//! - [`StopSequence`]: the stop runs in named stages, in order, each within its own time limit
//!   (stop accepting → nodes drain or hand back running executions → the outbox relay flushes →
//!   servers close).
//! - [`run_service`]: a binary's `main` — the service runs until a signal, then stops; exit 0
//!   after a clean stop, 1 with the reason on stderr when it failed.
//!
//! `FRAMEOS_SHUTDOWN_GRACE_SECS` bounds the stop: [`NODE_GRACE_SECS`] for execution nodes
//! (the longest agent timeout plus room to report), [`SERVICE_GRACE_SECS`] otherwise.

mod process;
mod signal;
mod stages;
mod supervisor;

#[cfg(test)]
mod tests;

pub use process::{Exit, run_service};
pub use signal::{Signal, Signals, cancel_on_signal};
pub use stages::StopSequence;
pub use supervisor::{Failure, Supervisor};

/// Default `FRAMEOS_SHUTDOWN_GRACE_SECS` of an execution node: the platform's longest agent
/// timeout (300 s) plus 30 s to report and hand back.
pub const NODE_GRACE_SECS: u64 = 330;
/// Default `FRAMEOS_SHUTDOWN_GRACE_SECS` of the control plane and the gateway.
pub const SERVICE_GRACE_SECS: u64 = 30;
