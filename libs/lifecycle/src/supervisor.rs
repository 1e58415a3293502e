//! Owners for background tasks, and the rule that one failing component stops the service.

use std::any::Any;
use std::fmt::Display;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use futures::FutureExt;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// The first component that failed, and why.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{component} failed: {reason}")]
pub struct Failure {
    pub component: &'static str,
    pub reason: String,
}

/// Tracks a service's tasks. Its [`stopping`](Supervisor::stopping) token fires when the
/// caller's shutdown token does, or when a component fails; the service then runs its stop
/// stages and reports the [`failure`](Supervisor::failure), if any.
#[derive(Clone)]
pub struct Supervisor {
    inner: Arc<Inner>,
}

struct Inner {
    stopping: CancellationToken,
    tracker: TaskTracker,
    failure: OnceLock<Failure>,
}

impl Supervisor {
    /// A supervisor whose stop starts with `shutdown` (a child token: a failure stops this
    /// service, not its caller's other services directly).
    pub fn new(shutdown: &CancellationToken) -> Supervisor {
        Supervisor {
            inner: Arc::new(Inner {
                stopping: shutdown.child_token(),
                tracker: TaskTracker::new(),
                failure: OnceLock::new(),
            }),
        }
    }

    /// Fires when the stop begins: a shutdown request or a failed component.
    pub fn stopping(&self) -> CancellationToken {
        self.inner.stopping.clone()
    }

    /// The tracker, for short-lived tasks (one per stream): the stop waits for them too.
    pub fn tracker(&self) -> TaskTracker {
        self.inner.tracker.clone()
    }

    /// Spawns a long-lived component. If it returns an error, panics, or ends before the stop
    /// began, the failure is recorded and the service stops. The handle lets a stop stage wait
    /// for this one component (or abort it when its stage runs out of time).
    pub fn component<F, E>(&self, component: &'static str, work: F) -> JoinHandle<()>
    where
        F: Future<Output = Result<(), E>> + Send + 'static,
        E: Display,
    {
        let supervisor = self.clone();
        self.inner.tracker.spawn(async move {
            let reason = match AssertUnwindSafe(work).catch_unwind().await {
                Ok(Ok(())) if supervisor.inner.stopping.is_cancelled() => return,
                Ok(Ok(())) => "it ended on its own while the service was running".to_string(),
                Ok(Err(error)) => error.to_string(),
                Err(panic) => format!("panicked: {}", panic_message(panic.as_ref())),
            };
            supervisor.fail(component, reason);
        })
    }

    /// Records `component`'s failure (the first one wins) and starts the stop.
    pub fn fail(&self, component: &'static str, reason: String) {
        tracing::error!(component, %reason, "component failed; stopping the service");
        let _ = self.inner.failure.set(Failure { component, reason });
        self.inner.stopping.cancel();
    }

    /// The first failure, if a component failed.
    pub fn failure(&self) -> Option<Failure> {
        self.inner.failure.get().cloned()
    }

    /// Takes no more tasks and waits up to `limit` for the tracked ones; `false` if some were
    /// still running then.
    pub async fn wait(&self, limit: Duration) -> bool {
        self.inner.tracker.close();
        let waited = tokio::time::timeout(limit, self.inner.tracker.wait()).await;
        if waited.is_err() {
            tracing::warn!(
                still_running = self.inner.tracker.len(),
                "background tasks did not end in time"
            );
        }
        waited.is_ok()
    }
}

fn panic_message(panic: &(dyn Any + Send)) -> String {
    if let Some(message) = panic.downcast_ref::<&str>() {
        (*message).to_string()
    } else if let Some(message) = panic.downcast_ref::<String>() {
        message.clone()
    } else {
        "(no message)".to_string()
    }
}
