//! Docker backend: one fresh, locked-down container per execution, always removed afterwards.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use bollard::container::LogOutput;
use bollard::errors::Error as BollardError;
use bollard::models::{ContainerCreateBody, HostConfig, HostConfigLogConfig, Mount, MountType};
use bollard::query_parameters::{
    AttachContainerOptionsBuilder, CreateContainerOptionsBuilder, KillContainerOptionsBuilder,
    ListContainersOptionsBuilder, RemoveContainerOptionsBuilder, WaitContainerOptionsBuilder,
};
use bollard::{API_DEFAULT_VERSION, Docker};
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::drive::{Ended, decide, drive, out_of_memory, runner_command};
use crate::egress::{self, EgressPolicy, EgressProxy};
use crate::frames::{Pipe, Pump};
use crate::metrics::{DockerOperation as Op, SandboxMetrics};
use crate::{Error, Event, Images, Outcome, Runtime, Spec};

/// Seconds bollard waits for a response's headers.
const REQUEST_TIMEOUT_SECS: u64 = 60;
/// How long a killed container may take to be reported stopped.
const STOP_WAIT: Duration = Duration::from_secs(10);
/// How often, and how far apart, an exit by SIGKILL is re-inspected for the OOM flag.
const OOM_RECHECKS: u32 = 10;
const OOM_RECHECK_INTERVAL: Duration = Duration::from_millis(50);
/// The runtime images run the runner as this (non-root) user.
const USER: &str = "10001:10001";

#[derive(Clone, Debug)]
pub struct DockerSandbox {
    docker: Docker,
    images: Images,
    node_id: String,
    /// Holds one egress socket directory per running execution that may use the network.
    egress_base: PathBuf,
    metrics: SandboxMetrics,
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
        })
    }

    pub(crate) fn with_metrics(mut self, metrics: SandboxMetrics) -> Self {
        self.metrics = metrics;
        self
    }

    pub(crate) async fn check_images(&self) -> Result<(), Error> {
        for image in [&self.images.node, &self.images.python] {
            let inspected = self
                .metrics
                .docker(Op::InspectImage, self.docker.inspect_image(image))
                .await;
            if let Err(e) = inspected {
                return Err(match status(&e) {
                    Some(404) => Error::ImageMissing {
                        image: image.clone(),
                    },
                    _ => docker_err("inspect image", e),
                });
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
                Some(EgressProxy::start(&self.egress_base, name, policy, events, metrics).await?)
            };
            let egress_dir = proxy.as_ref().map(|p| p.dir().to_path_buf());
            let result = self
                .run_in_container(spec, events, cancel, egress_dir.as_deref())
                .await;
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
        let name = format!("frameos-exec-{}", spec.execution_id);
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
            let attach = AttachContainerOptionsBuilder::default()
                .stdin(true)
                .stdout(true)
                .stderr(true)
                .stream(true)
                .build();
            let io = self
                .metrics
                .docker(
                    Op::Attach,
                    self.docker.attach_container(&name, Some(attach)),
                )
                .await
                .map_err(|e| docker_err("attach to container", e))?;
            self.metrics
                .docker(Op::Start, self.docker.start_container(&name, None))
                .await
                .map_err(|e| docker_err("start container", e))?;
            spec.started.mark();
            tracing::debug!("container started");
            Ok::<_, Error>(io)
        }
        .instrument(starting.clone())
        .await
        .inspect_err(|_| failed(&starting))?;
        drop(starting);
        let running = tracing::info_span!(
            "container_run",
            container.name = %name,
            outcome = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
        );
        let outcome = async {
            let chunks = io.output.filter_map(|item| async move {
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
            let mut waiting = self.docker.wait_container(&name, Some(wait));
            // A non-zero exit arrives as an Err from bollard; either way the container has stopped.
            let exited = async move {
                let _ = waiting.next().await;
            };
            let mut pump = Pump::new(events, spec.log_limit_bytes);
            let ended = drive(
                Box::pin(chunks),
                io.input,
                &spec.inputs,
                exited,
                &mut pump,
                spec.timeout,
                &cancel,
            )
            .await;

            let outcome = match ended {
                Ended::TimedOut | Ended::Canceled => {
                    self.kill(&name).await;
                    if ended == Ended::TimedOut {
                        Outcome::TimedOut
                    } else {
                        Outcome::Canceled
                    }
                }
                Ended::Exited | Ended::Lingered => {
                    if ended == Ended::Lingered {
                        tracing::info!("agent did not exit after its terminal frame; killing it");
                        self.kill(&name).await;
                    }
                    let (exit_code, oom_killed) = self.final_state(&name).await?;
                    let oom = out_of_memory(oom_killed, &pump, exit_code);
                    decide(pump.into_terminal(), exit_code, oom)
                }
            };
            Ok::<_, Error>(outcome)
        }
        .instrument(running.clone())
        .await
        .inspect_err(|_| failed(&running))?;
        let removed = self
            .metrics
            .docker(Op::Remove, remove(&self.docker, &name))
            .await;
        if let Err(e) = removed {
            // The outcome stands; `remove_stale` sweeps the container at the next start.
            tracing::warn!(container = %name, error = %e, "removing container failed");
        }
        guard.docker = None;
        running.record("outcome", outcome.label());
        tracing::info!(outcome = outcome.label(), "execution ended");
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
        let mut body = container_body(spec, &image, &self.node_id);
        if let Some(dir) = egress_dir {
            egress::add_to_container(&mut body, dir);
        }
        let mut result = self
            .metrics
            .docker(
                Op::Create,
                self.docker
                    .create_container(Some(options.clone()), body.clone()),
            )
            .await;
        if let Err(e) = &result
            && status(e) == Some(409)
        {
            // A redelivered execution can meet the container of an attempt that died with us.
            tracing::warn!(container = name, "container exists; replacing it");
            remove(&self.docker, name)
                .await
                .map_err(|e| docker_err("remove old container", e))?;
            result = self.docker.create_container(Some(options), body).await;
        }
        match result {
            Ok(_) => Ok(()),
            Err(e) if status(&e) == Some(404) => Err(Error::ImageMissing { image }),
            Err(e) => Err(docker_err("create container", e)),
        }
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

fn container_body(spec: &Spec, image: &str, node_id: &str) -> ContainerCreateBody {
    let runner = match spec.runtime {
        Runtime::Node => "/opt/frameos/runner.js",
        Runtime::Python => "/opt/frameos/runner.py",
    };
    let labels = HashMap::from([
        ("frameos.managed".to_string(), "true".to_string()),
        ("frameos.node".to_string(), node_id.to_string()),
        ("frameos.execution".to_string(), spec.execution_id.clone()),
    ]);
    let memory = i64::try_from(spec.memory_mb.saturating_mul(1024 * 1024)).unwrap_or(i64::MAX);
    let tmp = format!("rw,noexec,nosuid,size={}m,mode=1777", spec.tmp_size_mb);
    let host_config = HostConfig {
        network_mode: Some("none".to_string()),
        readonly_rootfs: Some(true),
        tmpfs: Some(HashMap::from([("/tmp".to_string(), tmp)])),
        nano_cpus: Some((spec.cpu_cores * 1e9).round() as i64),
        memory: Some(memory),
        // Equal to `memory`: no swap, so the limit is real and a hog is OOM-killed.
        memory_swap: Some(memory),
        pids_limit: Some(i64::from(spec.pids_limit)),
        cap_drop: Some(vec!["ALL".to_string()]),
        security_opt: Some(vec!["no-new-privileges".to_string()]),
        init: Some(true),
        mounts: Some(vec![Mount {
            target: Some("/agent".to_string()),
            source: Some(spec.package_dir.to_string_lossy().into_owned()),
            typ: Some(MountType::BIND),
            read_only: Some(true),
            ..Default::default()
        }]),
        // Output is streamed through attach; a log driver would only copy it to the host's disk.
        log_config: Some(HostConfigLogConfig {
            typ: Some("none".to_string()),
            config: None,
        }),
        ..Default::default()
    };
    ContainerCreateBody {
        image: Some(image.to_string()),
        cmd: Some(runner_command(spec.runtime, runner, spec.memory_mb)),
        env: Some(vec![
            format!("FRAMEOS_ENTRYPOINT={}", spec.entrypoint),
            format!("FRAMEOS_EXECUTION_ID={}", spec.execution_id),
        ]),
        working_dir: Some("/agent".to_string()),
        user: Some(USER.to_string()),
        attach_stdin: Some(true),
        attach_stdout: Some(true),
        attach_stderr: Some(true),
        open_stdin: Some(true),
        stdin_once: Some(true),
        tty: Some(false),
        labels: Some(labels),
        host_config: Some(host_config),
        ..Default::default()
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
                handle.spawn(async move {
                    if let Err(e) = remove(&docker, &name).await {
                        tracing::warn!(container = %name, error = %e, "removing container failed");
                    }
                });
            }
            Err(_) => {
                tracing::warn!(container = %name, "no runtime to remove container; left for remove_stale")
            }
        }
    }
}

async fn remove(docker: &Docker, name: &str) -> Result<(), BollardError> {
    let options = RemoveContainerOptionsBuilder::default()
        .force(true)
        .v(true)
        .build();
    match docker.remove_container(name, Some(options)).await {
        Err(e) if status(&e) == Some(404) => Ok(()),
        other => other,
    }
}

fn status(e: &BollardError) -> Option<u16> {
    match e {
        BollardError::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

fn docker_err(action: &'static str, e: BollardError) -> Error {
    Error::Docker {
        action,
        message: e.to_string(),
    }
}

/// Marks a phase span failed.
fn failed(span: &tracing::Span) {
    span.record("otel.status_code", "error");
}
