//! Test-only faults, compiled only with the `fault-injection` feature, which only the
//! integration tests enable (through their dev-dependency). Production binaries have neither
//! this code nor any flag or variable that could reach it.

use std::io::Write;

/// The line a control plane prints on stdout when it stops right after the rail's capture.
pub const CAPTURED_MARKER: &str = "frameos-fault: captured";

/// The line a control plane prints on stdout when it stops right after a schedule's tick made
/// its run, before the schedule is advanced.
pub const SCHEDULED_MARKER: &str = "frameos-fault: scheduled";

/// Faults a test control plane can be started with ([`crate::Server::with_faults`]).
#[derive(Clone, Copy, Debug, Default)]
pub struct Faults {
    /// After the rail captured a charge and before the ledger commit, print
    /// `CAPTURED_MARKER <execution id>` on stdout and block for ever, so the test can SIGKILL
    /// the process exactly there.
    pub block_after_capture: bool,
    /// After a schedule's tick created its run and before the schedule's row is advanced (its
    /// lock still held), print `SCHEDULED_MARKER <schedule id> <execution id>` and block.
    pub block_after_scheduled_run: bool,
}

/// Announces the capture and never returns.
pub(crate) async fn block_after_capture(execution_id: &str) {
    tracing::error!(
        execution_id,
        "fault injected: blocking after the rail's capture"
    );
    {
        let mut out = std::io::stdout().lock();
        // If stdout is gone the test is gone too; blocking is all that is left either way.
        let _ = writeln!(out, "{CAPTURED_MARKER} {execution_id}");
        let _ = out.flush();
    }
    std::future::pending::<()>().await;
}

/// Announces the scheduled run and never returns.
pub(crate) async fn block_after_scheduled_run(schedule_id: &str, execution_id: &str) {
    tracing::error!(
        schedule_id,
        execution_id,
        "fault injected: blocking after a scheduled run"
    );
    {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "{SCHEDULED_MARKER} {schedule_id} {execution_id}");
        let _ = out.flush();
    }
    std::future::pending::<()>().await;
}
