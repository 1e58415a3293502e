//! The per-execution egress proxy of the `http_request` capability (ARCHITECTURE.md, "Egress").
//!
//! The container keeps `--network=none`. This proxy listens on a Unix socket in a fresh host
//! directory that is bind-mounted at `/run/frameos`; the runner inside pipes
//! `127.0.0.1:3128` to it. Every request is checked against [`EgressPolicy`] and every decision
//! lands in the execution's log as a `system` line, which nothing the agent prints can be.

mod conn;
mod head;
mod policy;
mod special;

pub(crate) use policy::is_valid_pattern;
pub use policy::{EgressPolicy, Refusal, Resolver};
pub use special::{Reason as SpecialPurpose, special_purpose};

use std::os::unix::fs::{DirBuilderExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

use bollard::models::{ContainerCreateBody, Mount, MountType};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::mpsc;
use tokio::task::{JoinHandle, JoinSet};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::metrics::{EgressDecision, SandboxMetrics};
use crate::{Error, Event, Secrets, Stream};
use conn::Decision;

/// Where the socket's directory is mounted in the container.
pub const CONTAINER_DIR: &str = "/run/frameos";
pub const SOCKET_NAME: &str = "egress.sock";
/// The runner's in-container listener, which the proxy variables point at.
pub const RUNNER_PROXY_URL: &str = "http://127.0.0.1:3128";
const MAX_CONNECTIONS: usize = 16;
/// Decisions logged per execution; the log must stay bounded however many requests are made.
const LOG_LIMIT: u32 = 1000;

/// A running proxy. Stop it with [`EgressProxy::stop`]; dropping it also stops it.
#[derive(Debug)]
pub struct EgressProxy {
    dir: PathBuf,
    stop: CancellationToken,
    task: Option<JoinHandle<()>>,
}

impl EgressProxy {
    /// Creates `<base>/<name>-…/egress.sock` and serves it until stopped. `base` is created
    /// (0700) when missing and must not be writable by others.
    pub async fn start(
        base: &Path,
        name: &str,
        policy: EgressPolicy,
        events: mpsc::Sender<Event>,
        metrics: SandboxMetrics,
        secrets: Secrets,
    ) -> Result<EgressProxy, Error> {
        let dir = fresh_dir(base, name)?;
        // From here on the directory is removed whatever happens.
        let mut proxy = EgressProxy {
            dir,
            stop: CancellationToken::new(),
            task: None,
        };
        let socket = proxy.socket_path();
        let listener = UnixListener::bind(&socket).map_err(egress_err("bind the socket"))?;
        // The agent runs as uid 10001, not as us.
        std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o666))
            .map_err(egress_err("open the socket to the agent"))?;
        let log = Log {
            events,
            logged: Arc::new(AtomicU32::new(0)),
            metrics,
            secrets,
        };
        let serving = serve(listener, Arc::new(policy), log, proxy.stop.clone());
        proxy.task = Some(tokio::spawn(serving.in_current_span()));
        tracing::debug!(dir = %proxy.dir.display(), "egress proxy started");
        Ok(proxy)
    }

    /// The host directory to bind-mount at [`CONTAINER_DIR`].
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    pub fn socket_path(&self) -> PathBuf {
        self.dir.join(SOCKET_NAME)
    }

    /// Closes every connection, waits for them to end and removes the directory.
    pub async fn stop(mut self) {
        self.stop.cancel();
        if let Some(task) = self.task.take()
            && let Err(e) = task.await
        {
            tracing::warn!(error = %e, "egress proxy task failed");
        }
        // Drop removes the directory.
    }
}

impl Drop for EgressProxy {
    fn drop(&mut self) {
        self.stop.cancel();
        match std::fs::remove_dir_all(&self.dir) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => {
                tracing::warn!(dir = %self.dir.display(), error = %e, "removing the egress directory failed")
            }
        }
    }
}

async fn serve(
    listener: UnixListener,
    policy: Arc<EgressPolicy>,
    log: Log,
    stop: CancellationToken,
) {
    let mut conns = JoinSet::new();
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => break,
            Some(_) = conns.join_next(), if !conns.is_empty() => continue,
            accepted = listener.accept() => accepted,
        };
        let stream = match accepted {
            Ok((stream, _)) => stream,
            Err(e) => {
                // EMFILE and the like: back off instead of spinning.
                tracing::warn!(error = %e, "egress accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                continue;
            }
        };
        while conns.try_join_next().is_some() {}
        if conns.len() >= MAX_CONNECTIONS {
            refuse_busy(&stream, &log);
            continue;
        }
        let (policy, log) = (policy.clone(), log.clone());
        conns.spawn(
            async move {
                let (decision, then) = conn::handle(stream, &policy).await;
                log.record(&decision).await;
                if let Err(e) = then.run(&log.metrics).await {
                    tracing::debug!(error = %e, "egress tunnel ended with an error");
                }
            }
            .in_current_span(),
        );
    }
    // Aborts the connections still open.
    conns.shutdown().await;
}

/// Never blocks the accept loop: one non-blocking write, one non-blocking log line.
fn refuse_busy(stream: &UnixStream, log: &Log) {
    let reason = format!("more than {MAX_CONNECTIONS} concurrent connections");
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reason}\n",
        reason.len() + 1
    );
    let _ = stream.try_write(response.as_bytes());
    log.metrics.decision(EgressDecision::Failed);
    if let Some(line) = log.line(&Decision::Failed {
        method: "-".to_string(),
        target: "-".to_string(),
        reason,
    }) {
        let _ = log.events.try_send(line);
    }
}

/// Decisions go to the execution's log (bounded) and to tracing, the run's secret values
/// masked in both (a URL may carry a token).
#[derive(Clone)]
struct Log {
    events: mpsc::Sender<Event>,
    logged: Arc<AtomicU32>,
    metrics: SandboxMetrics,
    secrets: Secrets,
}

impl Log {
    async fn record(&self, decision: &Decision) {
        self.metrics.decision(match decision {
            Decision::Allowed { .. } => EgressDecision::Allowed,
            Decision::Refused { .. } => EgressDecision::Refused,
            Decision::Failed { .. } => EgressDecision::Failed,
        });
        if let Some(event) = self.line(decision) {
            // A receiver that is gone means the run is ending; nothing left to tell.
            let _ = self.events.send(event).await;
        }
    }

    /// Traces the decision and returns the log event, while under the limit.
    fn line(&self, decision: &Decision) -> Option<Event> {
        let mask = |text: &str| self.secrets.redact(text).into_owned();
        let text = match decision {
            Decision::Allowed { method, host, port } => {
                let (method, host) = (mask(method), mask(host));
                tracing::info!(method, host, port, decision = "allowed", "egress decision");
                format!("allowed {method} {host}:{port}")
            }
            Decision::Refused {
                method,
                target,
                reason,
            } => {
                let (method, target, reason) = (mask(method), mask(target), mask(reason));
                tracing::info!(
                    method,
                    target,
                    reason,
                    decision = "refused",
                    "egress decision"
                );
                format!("refused {method} {target}: {reason}")
            }
            Decision::Failed {
                method,
                target,
                reason,
            } => {
                let (method, target, reason) = (mask(method), mask(target), mask(reason));
                tracing::info!(
                    method,
                    target,
                    reason,
                    decision = "failed",
                    "egress decision"
                );
                format!("failed {method} {target}: {reason}")
            }
        };
        let n = self.logged.fetch_add(1, Ordering::Relaxed);
        let line = match n {
            n if n < LOG_LIMIT => format!("egress {text}"),
            LOG_LIMIT => format!("egress: decisions after the first {LOG_LIMIT} are not logged"),
            _ => return None,
        };
        Some(Event::Log {
            stream: Stream::System,
            line,
        })
    }
}

/// Removes the per-execution directories of processes that no longer exist (a node killed
/// with SIGKILL never ran its cleanup). Directories of live processes are left alone, so
/// nodes sharing a host do not disturb each other. Returns how many were removed.
pub fn sweep_orphans(base: &Path) -> usize {
    let Ok(entries) = std::fs::read_dir(base) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = owner_pid(&name.to_string_lossy()) else {
            continue;
        };
        if Path::new("/proc").join(pid.to_string()).exists() {
            continue;
        }
        if std::fs::remove_dir_all(entry.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

/// The pid in `<name>-<pid>-<n>-<nanos>` (see [`fresh_dir`]).
fn owner_pid(dir_name: &str) -> Option<u32> {
    let mut parts = dir_name.rsplitn(4, '-');
    let (_nanos, _n, pid) = (parts.next()?, parts.next()?, parts.next()?);
    parts.next()?;
    pid.parse().ok()
}

/// A new directory (0755, so uid 10001 can reach the socket) under a base only we can write.
fn fresh_dir(base: &Path, name: &str) -> Result<PathBuf, Error> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(base)
        .map_err(egress_err("create the base directory"))?;
    let meta = std::fs::symlink_metadata(base).map_err(egress_err("inspect the base directory"))?;
    if !meta.is_dir() || meta.permissions().mode() & 0o022 != 0 {
        return Err(Error::Egress {
            action: "use the base directory",
            source: std::io::Error::other(format!(
                "{} is not a directory only its owner can write",
                base.display()
            )),
        });
    }
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let dir = base.join(format!("{name}-{}-{n}-{nanos}", std::process::id()));
    // Not recursive: fails if it exists, so the directory is really ours and fresh.
    std::fs::DirBuilder::new()
        .mode(0o755)
        .create(&dir)
        .map_err(egress_err("create the execution directory"))?;
    if let Err(e) = std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)) {
        let _ = std::fs::remove_dir(&dir);
        return Err(Error::Egress {
            action: "open the execution directory",
            source: e,
        });
    }
    Ok(dir)
}

/// The proxy's socket directory at `/run/frameos` and the variables that point clients at the
/// runner's in-container listener. `NetworkMode` stays `none`.
pub(crate) fn add_to_container(body: &mut ContainerCreateBody, dir: &Path) {
    let socket = format!("{}/{}", CONTAINER_DIR, SOCKET_NAME);
    let proxy = RUNNER_PROXY_URL;
    // The runner listens on 127.0.0.1: the engine's "none" network brings loopback up.
    body.network_disabled = None;
    if let Some(env) = body.env.as_mut() {
        env.push(format!("FRAMEOS_EGRESS_SOCKET={socket}"));
        for var in ["HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"] {
            env.push(format!("{var}={proxy}"));
        }
        // Nothing bypasses the proxy; there would be no route anyway.
        env.extend(["NO_PROXY=".to_string(), "no_proxy=".to_string()]);
    }
    if let Some(mounts) = body.host_config.as_mut().and_then(|h| h.mounts.as_mut()) {
        mounts.push(Mount {
            target: Some(CONTAINER_DIR.to_string()),
            source: Some(dir.to_string_lossy().into_owned()),
            typ: Some(MountType::BIND),
            // Connecting to a socket needs no write access to its file system.
            read_only: Some(true),
            ..Default::default()
        });
    }
}

fn egress_err(action: &'static str) -> impl Fn(std::io::Error) -> Error {
    move |source| Error::Egress { action, source }
}

#[cfg(test)]
mod tests;
