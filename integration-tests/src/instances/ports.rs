//! Ports for servers that run in another process.
//!
//! Such a server has to bind the port itself, so the harness cannot keep the socket: it asks
//! the OS for a free port, releases it and hands over the number. Another process can take the
//! port in between; the server then fails to listen, which [`Launch::PortTaken`] reports and the
//! caller answers by picking new ports (see [`with_free_ports`]). A restart reuses the port its
//! clients were configured with, so there a collision is an error, never a silent new port.

use std::net::TcpListener;

/// Why a server process did not become ready.
pub(crate) enum Launch {
    /// Another process holds one of its ports.
    PortTaken(anyhow::Error),
    Failed(anyhow::Error),
}

impl From<anyhow::Error> for Launch {
    fn from(e: anyhow::Error) -> Self {
        Launch::Failed(e)
    }
}

impl Launch {
    pub(crate) fn into_error(self) -> anyhow::Error {
        match self {
            Launch::PortTaken(e) => e.context("a port was taken by another process"),
            Launch::Failed(e) => e,
        }
    }
}

/// Collisions tolerated before giving up.
const ATTEMPTS: usize = 5;

/// `n` distinct ports the OS reports free on 127.0.0.1 (all bound at once, then released).
pub(crate) fn os_free_ports(n: usize) -> anyhow::Result<Vec<u16>> {
    let listeners = (0..n)
        .map(|_| TcpListener::bind("127.0.0.1:0"))
        .collect::<std::io::Result<Vec<_>>>()?;
    Ok(listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect::<std::io::Result<Vec<_>>>()?)
}

/// Runs `launch` with `n` fresh ports until it does not collide with another process.
pub(crate) async fn with_free_ports(
    n: usize,
    mut launch: impl AsyncFnMut(Vec<u16>) -> Result<(), Launch>,
) -> anyhow::Result<Vec<u16>> {
    let mut last = None;
    for _ in 0..ATTEMPTS {
        let ports = os_free_ports(n)?;
        match launch(ports.clone()).await {
            Ok(()) => return Ok(ports),
            Err(Launch::PortTaken(e)) => {
                eprintln!("[instances] ports {ports:?} collided, picking others: {e:#}");
                last = Some(e);
            }
            Err(Launch::Failed(e)) => return Err(e),
        }
    }
    Err(last
        .unwrap_or_else(|| anyhow::anyhow!("no attempt made"))
        .context(format!("ports collided {ATTEMPTS} times")))
}
