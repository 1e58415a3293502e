//! Docker backend: one fresh, locked-down container per execution, always removed afterwards.

pub(crate) mod body;
pub(crate) mod snapshot;
mod warm;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bollard::container::LogOutput;
use bollard::errors::Error as BollardError;
use bollard::query_parameters::{
    AttachContainerOptionsBuilder, CreateContainerOptionsBuilder, KillContainerOptionsBuilder,
    ListContainersOptionsBuilder, RemoveContainerOptionsBuilder, WaitContainerOptionsBuilder,
};
use bollard::{API_DEFAULT_VERSION, Docker};
use futures::{Stream, StreamExt};
use tokio::io::AsyncWrite;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use self::body::{Class, Tenant, container_body};
use self::snapshot::Snapshots;
use crate::drive::{Ended, decide, drive, out_of_memory};
use crate::egress::{self, EgressPolicy, EgressProxy};
use crate::frames::{Pipe, Pump};
use crate::metrics::{DockerOperation as Op, SandboxMetrics};
use crate::pool::{Pool, PoolConfig, PoolStats};
use crate::{Error, Event, Images, Outcome, Spec};

/// Seconds bollard waits for a response's headers.
const REQUEST_TIMEOUT_SECS: u64 = 60;
/// How long a killed container may take to be reported stopped.
const STOP_WAIT: Duration = Duration::from_secs(10);
/// How often, and how far apart, an exit by SIGKILL is re-inspected for the OOM flag.
const OOM_RECHECKS: u32 = 10;
const OOM_RECHECK_INTERVAL: Duration = Duration::from_millis(50);

#[derive(Clone, Debug)]
pub struct DockerSandbox {
    docker: Docker,
    images: Images,
    node_id: String,
    /// Holds one egress socket directory per running execution that may use the network.
    egress_base: PathBuf,
    metrics: SandboxMetrics,
    /// Warm containers waiting for executions (ADR 0026); `None`: every run is cold.
    pool: Option<Pool>,
    /// The node image's runner snapshots, learnt by `check_images` (ADR 0034).
    snapshots: Snapshots,
}

impl DockerSandbox {
    pub(crate) async fn connect(
        host: Option<&str>,
        images: Images,
        node_id: &str,
    ) -> Result<Self, Error> {
        let shown = host.unwrap_or("the local socket").to_string();
        let unreachable = |e: BollardError| Error::Unreachable {
            host: shown.clone(),
            message: e.to_string(),
        };
        let docker = match host {
            None => Docker::connect_with_local_defaults(),
            Some(h) if h.starts_with("tcp://") || h.starts_with("http://") => {
                Docker::connect_with_http(h, REQUEST_TIMEOUT_SECS, API_DEFAULT_VERSION)
            }
            Some(h) => Docker::connect_with_unix(h, REQUEST_TIMEOUT_SECS, API_DEFAULT_VERSION),
        }
        .map_err(unreachable)?;
        // bollard speaks a newer API than Debian's engine (1.41): step down to the engine's.
        let docker = docker.negotiate_version().await.map_err(unreachable)?;
        docker.ping().await.map_err(unreachable)?;
        let version = docker.client_version();
        tracing::info!(host = %shown, api = %version, node_id, "connected to docker");
        Ok(DockerSandbox {
            docker,
            images,
            node_id: node_id.to_string(),
            // The daemon bind-mounts from here, so it must be local to the daemon's host.
            egress_base: std::env::temp_dir().join("frameos-egress"),
            metrics: SandboxMetrics::default(),
            pool: None,
            snapshots: Snapshots::default(),
        })
    }

    pub(crate) fn with_metrics(mut self, metrics: SandboxMetrics) -> Self {
        self.metrics = metrics;
        self
    }

    /// Sets up (but does not warm) a pool; `max_per_class == 0` turns it off. Call it after
    /// `with_metrics`, so that the pool's Docker calls are counted too.
    pub(crate) fn with_pool(mut self, config: PoolConfig) -> Self {
        self.pool = (config.max_per_class > 0).then(|| {
            let (docker, images) = (self.docker.clone(), self.images.clone());
            let snapshots = self.snapshots.clone();
            Pool::new(
                docker,
                images,
                snapshots,
                &self.node_id,
                self.metrics.clone(),
                config,
            )
        });
        self
    }

    pub(crate) fn warm_pool(&self) {
        if let Some(pool) = &self.pool {
            pool.warm_defaults();
        }
    }

    /// Waits until a warm container of `spec`'s class is ready. False: there is no pool, or
    /// the spec is one the pool never serves (an egress allow-list).
    pub(crate) async fn prewarm(&self, spec: &Spec) -> Result<bool, Error> {
        match &self.pool {
            Some(pool) if spec.allow_domains.is_empty() => {
                pool.prewarm(&Class::of(spec)).await?;
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    pub(crate) fn pool_stats(&self) -> Option<PoolStats> {
        self.pool.as_ref().map(Pool::stats)
    }

    pub(crate) async fn shutdown(&self) {
        if let Some(pool) = &self.pool {
            pool.shutdown().await;
        }
    }

    /// Both images are there; learns the node image's runner snapshots from its label.
    pub(crate) async fn check_images(&self) -> Result<(), Error> {
        for image in [&self.images.node, &self.images.python] {
            let inspected = self
                .metrics
                .docker(Op::InspectImage, self.docker.inspect_image(image))
                .await
                .map_err(|e| match status(&e) {
                    Some(404) => Error::ImageMissing {
                        image: image.clone(),
                    },
                    _ => docker_err("inspect image", e),
                })?;
            if image == &self.images.node {
                let label = inspected
                    .config
                    .as_ref()
                    .and_then(|config| config.labels.as_ref())
                    .and_then(|labels| labels.get(snapshot::LABEL));
                let heaps = self.snapshots.learn(label.map(String::as_str));
                tracing::info!(image = %image, heaps, "node runner snapshots");
            }
        }
        Ok(())
    }

    pub(crate) async fn remove_stale(&self) -> Result<usize, Error> {
        let filters = HashMap::from([(
            "label".to_string(),
            vec![format!("frameos.node={}", self.node_id)],
        )]);
        let options = ListContainersOptionsBuilder::default()
            .all(true)
            .filters(&filters)
            .build();
        let stale = self
            .metrics
            .docker(Op::List, self.docker.list_containers(Some(options)))
            .await
            .map_err(|e| docker_err("list containers", e))?;
        let mut removed = 0;
        for id in stale.into_iter().filter_map(|c| c.id) {
            match remove(&self.docker, &id).await {
                Ok(()) => removed += 1,
                Err(e) => return Err(docker_err("remove stale container", e)),
            }
        }
        tracing::info!(node_id = %self.node_id, removed, "removed stale containers");
        if let Some(pool) = &self.pool {
            let slots = crate::pool::sweep_slots(pool.slot_base());
            tracing::info!(slots, "removed stale pool slots");
        }
        let swept = crate::egress::sweep_orphans(&self.egress_base);
        if swept > 0 {
            tracing::info!(swept, "removed egress directories of dead processes");
        }
        Ok(removed)
    }

    pub(crate) async fn run(
        &self,
        spec: Spec,
        events: mpsc::Sender<Event>,
        cancel: CancellationToken,
    ) -> Result<Outcome, Error> {
        let span = tracing::info_span!(
            "sandbox_run",
            execution_id = %spec.execution_id,
            runtime = %spec.runtime,
        );
        async move {
            // The container never gets a network; an allow-list gets it a proxy socket instead.
            let proxy = if spec.allow_domains.is_empty() {
                None
            } else {
                let policy = EgressPolicy::new(&spec.allow_domains);
                let name = &spec.execution_id;
                let events = events.clone();
                let metrics = self.metrics.clone();
                let secrets = spec.secrets.clone();
                let base = &self.egress_base;
                Some(EgressProxy::start(base, name, policy, events, metrics, secrets).await?)
            };
            let egress_dir = proxy.as_ref().map(|p| p.dir().to_path_buf());
            // A run with egress keeps the cold path: its container needs the proxy's socket.
            let warm = match (&self.pool, &proxy) {
                (Some(pool), None) => pool.take(&Class::of(&spec)).map(|w| (pool, w)),
                _ => None,
            };
            let result = match warm {
                Some((pool, warm)) => self.run_warm(pool, warm, spec, events, cancel).await,
                None => {
                    self.run_in_container(spec, events, cancel, egress_dir.as_deref())
                        .await
                }
            };
            if let Some(proxy) = proxy {
                proxy.stop().await;
            }
            result
        }
        .instrument(span)
        .await
    }

    async fn run_in_container(
        &self,
        spec: Spec,
        events: mpsc::Sender<Event>,
        cancel: CancellationToken,
        egress_dir: Option<&Path>,
    ) -> Result<Outcome, Error> {
        let name = container_name(&spec.execution_id);
        // Phase spans: `container_start` (create, attach, start), then `container_run`.
        let starting = tracing::info_span!(
            "container_start",
            container.name = %name,
            container.image.name = %self.images.for_runtime(spec.runtime),
            otel.status_code = tracing::field::Empty,
        );
        let created = self
            .create(&name, &spec, egress_dir)
            .instrument(starting.clone())
            .await;
        created.inspect_err(|_| failed(&starting))?;
        // From here on the container is removed whatever happens, even if this future is dropped.
        let mut guard = RemoveOnDrop {
            docker: Some(self.docker.clone()),
            name: name.clone(),
        };

        let io = async {
            let io = attach_and_start(&self.docker, &self.metrics, &name).await?;
            spec.started.mark();
            tracing::debug!("container started");
            Ok::<_, Error>(io)
        }
        .instrument(starting.clone())
        .await
        .inspect_err(|_| failed(&starting))?;
        drop(starting);
        let pump = Pump::new(events, spec.log_limit_bytes).redacting(&spec.secrets);
        let outcome = self
            .drive_container(
                &name,
                io.output,
                io.input,
                &crate::drive::first_lines(&spec, false),
                &spec,
                pump,
                &cancel,
            )
            .await?;
        let removed = self
            .metrics
            .docker(Op::Remove, remove(&self.docker, &name))
            .await;
        if let Err(e) = removed {
            // The outcome stands; `remove_stale` sweeps the container at the next start.
            tracing::warn!(container = %name, error = %e, "removing container failed");
        }
        guard.docker = None;
        tracing::info!(outcome = outcome.label(), "execution ended");
        Ok(outcome)
    }

    /// The run phase both paths share: feed `stdin`, pump the output, stop at the deadline or
    /// on cancel, and decide the outcome. The container is left for the caller to remove.
    #[allow(clippy::too_many_arguments)]
    async fn drive_container<S, W>(
        &self,
        name: &str,
        output: S,
        input: W,
        stdin: &[u8],
        spec: &Spec,
        mut pump: Pump,
        cancel: &CancellationToken,
    ) -> Result<Outcome, Error>
    where
        S: Stream<Item = Result<LogOutput, BollardError>> + Send + Unpin,
        W: AsyncWrite + Unpin,
    {
        let running = tracing::info_span!(
            "container_run",
            container.name = %name,
            outcome = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
        );
        let outcome = async {
            let chunks = output.filter_map(|item| async move {
                match item {
                    Ok(LogOutput::StdErr { message }) => Some((Pipe::Stderr, message)),
                    Ok(LogOutput::StdOut { message } | LogOutput::Console { message }) => {
                        Some((Pipe::Stdout, message))
                    }
                    Ok(LogOutput::StdIn { .. }) => None,
                    Err(e) => {
                        tracing::warn!(error = %e, "reading container output failed");
                        None
                    }
                }
            });
            let wait = WaitContainerOptionsBuilder::default()
                .condition("not-running")
                .build();
            let mut waiting = self.docker.wait_container(name, Some(wait));
            // A non-zero exit arrives as an Err from bollard; either way the container has stopped.
            let exited = async move {
                let _ = waiting.next().await;
            };
            let ended = drive(
                Box::pin(chunks),
                input,
                stdin,
                spec.calls.as_ref(),
                exited,
                &mut pump,
                spec.timeout,
                cancel,
            )
            .await;

            let outcome = match ended {
                Ended::TimedOut | Ended::Canceled => {
                    self.kill(name).await;
                    if ended == Ended::TimedOut {
                        Outcome::TimedOut
                    } else {
                        Outcome::Canceled
                    }
                }
                // The result is the outcome; the container's removal stops what is left of it.
                Ended::Settled => decide(pump.into_terminal(), None, false),
                Ended::Exited | Ended::Lingered => {
                    if ended == Ended::Lingered {
                        tracing::info!("agent did not exit after its terminal frame; killing it");
                        self.kill(name).await;
                    }
                    let (exit_code, oom_killed) = self.final_state(name).await?;
                    let oom = out_of_memory(oom_killed, &pump, exit_code);
                    decide(pump.into_terminal(), exit_code, oom)
                }
            };
            Ok::<_, Error>(outcome)
        }
        .instrument(running.clone())
        .await
        .inspect_err(|_| failed(&running))?;
        running.record("outcome", outcome.label());
        Ok(outcome)
    }

    async fn create(
        &self,
        name: &str,
        spec: &Spec,
        egress_dir: Option<&Path>,
    ) -> Result<(), Error> {
        let image = self.images.for_runtime(spec.runtime).to_string();
        let options = CreateContainerOptionsBuilder::default().name(name).build();
        let tenant = Tenant::Execution {
            execution_id: &spec.execution_id,
            entrypoint: &spec.entrypoint,
        };
        let class = Class::of(spec);
        let mut body = container_body(
            &class,
            &image,
            &self.node_id,
            &spec.package_dir,
            tenant,
            &self.snapshots,
        );
        if let Some(dir) = egress_dir {
            egress::add_to_container(&mut body, dir);
        }
        let result = self
            .claim_name(name, || {
                self.metrics.docker(
                    Op::Create,
                    self.docker
                        .create_container(Some(options.clone()), body.clone()),
                )
            })
            .await?;
        match result {
            Ok(_) => Ok(()),
            Err(e) if status(&e) == Some(404) => Err(Error::ImageMissing { image }),
            Err(e) => Err(docker_err("create container", e)),
        }
    }

    /// Runs `claim` (a create or rename to `name`); when the name is taken, which is how a
    /// redelivered execution meets the container of an attempt that died with us, removes that
    /// container and claims once more. The answer is the last claim's.
    pub(crate) async fn claim_name<T, Claim, Fut>(
        &self,
        name: &str,
        mut claim: Claim,
    ) -> Result<Result<T, BollardError>, Error>
    where
        Claim: FnMut() -> Fut,
        Fut: Future<Output = Result<T, BollardError>>,
    {
        let first = claim().await;
        if !matches!(&first, Err(e) if status(e) == Some(409)) {
            return Ok(first);
        }
        tracing::warn!(container = name, "container exists; replacing it");
        remove(&self.docker, name)
            .await
            .map_err(|e| docker_err("remove old container", e))?;
        Ok(claim().await)
    }

    /// Kills the container; one that has already stopped is fine.
    async fn kill(&self, name: &str) {
        let options = KillContainerOptionsBuilder::default()
            .signal("SIGKILL")
            .build();
        let killed = self
            .metrics
            .docker(Op::Kill, self.docker.kill_container(name, Some(options)))
            .await;
        match killed {
            Ok(()) => {}
            Err(e) if matches!(status(&e), Some(404 | 409)) => {}
            Err(e) => tracing::warn!(container = name, error = %e, "kill failed"),
        }
    }

    /// Exit code and whether the kernel killed it for memory, once it has stopped.
    async fn final_state(&self, name: &str) -> Result<(Option<i64>, bool), Error> {
        let wait = WaitContainerOptionsBuilder::default()
            .condition("not-running")
            .build();
        let mut waiting = self.docker.wait_container(name, Some(wait));
        if tokio::time::timeout(STOP_WAIT, waiting.next())
            .await
            .is_err()
        {
            tracing::warn!(container = name, "container did not stop in time");
        }
        let mut state = self.inspect_state(name).await?;
        // Docker records `OOMKilled` from the cgroup's OOM notification, which it handles
        // asynchronously (cgroup v1): a container killed by the OOM killer can be seen exited
        // with 137 a moment before the flag is set. Docker offers nothing to await for that
        // flag on an exited container, so look again briefly before calling it a plain kill.
        for _ in 0..OOM_RECHECKS {
            if state.exit_code != Some(137) || state.oom_killed.unwrap_or(false) {
                break;
            }
            tokio::time::sleep(OOM_RECHECK_INTERVAL).await;
            state = self.inspect_state(name).await?;
            if state.oom_killed.unwrap_or(false) {
                tracing::debug!(container = name, "oom flag appeared after the exit");
            }
        }
        Ok((state.exit_code, state.oom_killed.unwrap_or(false)))
    }

    async fn inspect_state(&self, name: &str) -> Result<bollard::models::ContainerState, Error> {
        let info = self
            .metrics
            .docker(Op::Inspect, self.docker.inspect_container(name, None))
            .await
            .map_err(|e| docker_err("inspect container", e))?;
        Ok(info.state.unwrap_or_default())
    }
}

/// Removes the container when a run ends early: an error, a panic, or a dropped future.
struct RemoveOnDrop {
    docker: Option<Docker>,
    name: String,
}

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let Some(docker) = self.docker.take() else {
            return;
        };
        let name = std::mem::take(&mut self.name);
        match tokio::runtime::Handle::try_current() {
            Ok(handle) => {
                // Patiently: the run may have failed because the engine is restarting.
                handle.spawn(async move {
                    let never = CancellationToken::new();
                    remove_patiently(&docker, &name, None, &never).await;
                });
            }
            Err(_) => {
                tracing::warn!(container = %name, "no runtime to remove container; left for remove_stale")
            }
        }
    }
}

/// Removing a container the engine may not be able to remove yet: attempts, and the back-off
/// between them (about two minutes in all, enough for an engine restart).
const REMOVE_ATTEMPTS: u32 = 30;
const REMOVE_BACKOFF_FIRST: Duration = Duration::from_millis(100);
const REMOVE_BACKOFF_MAX: Duration = Duration::from_secs(5);

/// Removes a container, trying again with back-off while removing fails: a container stopped by
/// an engine restart can only be removed once the engine is back. Gives up after about two
/// minutes, or at once after `stop` (`remove_stale` sweeps what is left at the next start).
pub(crate) async fn remove_patiently(
    docker: &Docker,
    name: &str,
    metrics: Option<&SandboxMetrics>,
    stop: &CancellationToken,
) {
    let mut backoff = REMOVE_BACKOFF_FIRST;
    for attempt in 1..=REMOVE_ATTEMPTS {
        let removed = match metrics {
            Some(metrics) => metrics.docker(Op::Remove, remove(docker, name)).await,
            None => remove(docker, name).await,
        };
        let Err(e) = removed else {
            return;
        };
        if attempt == REMOVE_ATTEMPTS || stop.is_cancelled() {
            tracing::warn!(container = %name, error = %e, attempt, "removing container failed");
            return;
        }
        tracing::debug!(container = %name, error = %e, attempt, "removing container failed; trying again");
        tokio::select! {
            () = tokio::time::sleep(backoff) => {}
            () = stop.cancelled() => {}
        }
        backoff = (backoff * 2).min(REMOVE_BACKOFF_MAX);
    }
}

/// The name of an execution's container, cold or warm after its hand-off: what everything that
/// finds containers by execution looks for.
pub(crate) fn container_name(execution_id: &str) -> String {
    format!("frameos-exec-{execution_id}")
}

pub(crate) async fn remove(docker: &Docker, name: &str) -> Result<(), BollardError> {
    let options = RemoveContainerOptionsBuilder::default()
        .force(true)
        .v(true)
        .build();
    match docker.remove_container(name, Some(options)).await {
        Err(e) if status(&e) == Some(404) => Ok(()),
        other => other,
    }
}

pub(crate) fn status(e: &BollardError) -> Option<u16> {
    match e {
        BollardError::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

pub(crate) fn docker_err(action: &'static str, e: BollardError) -> Error {
    Error::Docker {
        action,
        message: e.to_string(),
    }
}

/// Marks a phase span failed.
fn failed(span: &tracing::Span) {
    span.record("otel.status_code", "error");
}

/// Attaches to a created container's stdin, stdout and stderr, then starts it: attaching
/// first is what guarantees no output is lost.
pub(crate) async fn attach_and_start(
    docker: &Docker,
    metrics: &SandboxMetrics,
    name: &str,
) -> Result<bollard::container::AttachContainerResults, Error> {
    let options = AttachContainerOptionsBuilder::default()
        .stdin(true)
        .stdout(true)
        .stderr(true)
        .stream(true)
        .build();
    let io = metrics
        .docker(Op::Attach, docker.attach_container(name, Some(options)))
        .await
        .map_err(|e| docker_err("attach to container", e))?;
    metrics
        .docker(Op::Start, docker.start_container(name, None))
        .await
        .map_err(|e| docker_err("start container", e))?;
    Ok(io)
}
