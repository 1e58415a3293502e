//! A binary's `main`: one service, stopped by a signal, and an exit status that tells a
//! supervisor (Docker, Kubernetes, systemd) whether it stopped cleanly.

use std::fmt::Display;
use std::future::Future;
use std::process::ExitCode;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

/// Beyond its grace a stop is stuck: the process gives up on it rather than hang.
const STUCK_AFTER_GRACE: Duration = Duration::from_secs(30);

/// How a service ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Exit {
    /// Stopped as asked: exit status 0.
    Stopped,
    /// Failed (the reason was printed to stderr): exit status 1.
    Failed(String),
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> ExitCode {
        match exit {
            Exit::Stopped => ExitCode::SUCCESS,
            Exit::Failed(_) => ExitCode::FAILURE,
        }
    }
}

/// Runs `service` (its `run(config, shutdown)`) until SIGTERM or SIGINT, then lets it stop
/// within `grace`. A service that fails, panics or does not stop in time ends as
/// [`Exit::Failed`], with the reason on stderr and in the log.
pub async fn run_service<F, Fut, E>(service: &'static str, grace: Duration, start: F) -> Exit
where
    F: FnOnce(CancellationToken) -> Fut,
    Fut: Future<Output = Result<(), E>> + Send + 'static,
    E: Display + Send + 'static,
{
    let shutdown = CancellationToken::new();
    let signals = match crate::cancel_on_signal(shutdown.clone()) {
        Ok(signals) => signals,
        Err(error) => return failed(service, format!("cannot handle SIGTERM/SIGINT: {error}")),
    };
    let mut running = tokio::spawn(start(shutdown.clone()));
    let overdue = async {
        shutdown.cancelled().await;
        tokio::time::sleep(grace + STUCK_AFTER_GRACE).await;
    };
    let ended = tokio::select! {
        ended = &mut running => ended,
        () = overdue => {
            running.abort();
            signals.abort();
            return failed(service, format!("did not stop within its grace of {} s", grace.as_secs()));
        }
    };
    signals.abort();
    match ended {
        Ok(Ok(())) => {
            tracing::info!(service, "exiting");
            Exit::Stopped
        }
        Ok(Err(error)) => failed(service, error.to_string()),
        Err(join) => failed(service, format!("panicked: {join}")),
    }
}

fn failed(service: &'static str, reason: String) -> Exit {
    tracing::error!(service, %reason, "service failed");
    eprintln!("error: {service} failed: {reason}");
    Exit::Failed(reason)
}
