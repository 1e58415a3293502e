//! SIGTERM and SIGINT, alike: what `docker stop`, Kubernetes and Ctrl-C send. Installing a
//! handler also matters for PID 1 in a container, which ignores any signal it has none for.

use tokio::signal::unix::{self, SignalKind};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Signal {
    Terminate,
    Interrupt,
}

impl Signal {
    pub fn name(self) -> &'static str {
        match self {
            Signal::Terminate => "SIGTERM",
            Signal::Interrupt => "SIGINT",
        }
    }

    /// The conventional exit status of a process ended by this signal.
    fn exit_status(self) -> i32 {
        match self {
            Signal::Terminate => 128 + 15,
            Signal::Interrupt => 128 + 2,
        }
    }
}

/// Both handlers. From [`Signals::install`] on, neither signal ends the process by itself.
pub struct Signals {
    terminate: unix::Signal,
    interrupt: unix::Signal,
}

impl Signals {
    /// Installs the handlers now (not on first poll), so a signal that arrives before anyone
    /// waits is still seen.
    pub fn install() -> std::io::Result<Signals> {
        Ok(Signals {
            terminate: unix::signal(SignalKind::terminate())?,
            interrupt: unix::signal(SignalKind::interrupt())?,
        })
    }

    /// The next SIGTERM or SIGINT.
    pub async fn recv(&mut self) -> Signal {
        loop {
            tokio::select! {
                Some(()) = self.terminate.recv() => return Signal::Terminate,
                Some(()) = self.interrupt.recv() => return Signal::Interrupt,
                // Both streams closed: only possible while the runtime shuts down.
                else => std::future::pending::<()>().await,
            }
        }
    }
}

/// Cancels `shutdown` on the first signal. A second one ends the process at once, without a
/// graceful stop: the operator asked twice.
pub fn cancel_on_signal(shutdown: CancellationToken) -> std::io::Result<JoinHandle<()>> {
    let mut signals = Signals::install()?;
    Ok(tokio::spawn(async move {
        let first = signals.recv().await;
        tracing::info!(
            signal = first.name(),
            "shutdown requested; stopping gracefully"
        );
        shutdown.cancel();
        let second = signals.recv().await;
        tracing::warn!(
            signal = second.name(),
            "second signal; exiting now without a graceful stop"
        );
        eprintln!("{} received twice: exiting now", second.name());
        std::process::exit(second.exit_status());
    }))
}
