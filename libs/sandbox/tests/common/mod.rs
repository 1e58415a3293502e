//! Helpers for the Docker tests. They need a running engine and the runtime images
//! (`runtime-images/build.sh`); without them they fail, never skip.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bollard::Docker;
use bollard::query_parameters::ListContainersOptionsBuilder;
use frameos_sandbox::{Error, Event, Images, Outcome, Runtime, Sandbox, Spec, Stream};
use futures::StreamExt;
use tempfile::TempDir;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

pub const NODE_ID: &str = "sandbox-tests";

pub async fn sandbox() -> Sandbox {
    let sandbox = Sandbox::docker(None, Images::default(), NODE_ID)
        .await
        .expect("these tests need a running Docker engine");
    sandbox
        .check_images()
        .await
        .expect("these tests need the runtime images");
    sandbox
}

pub async fn docker() -> Docker {
    Docker::connect_with_local_defaults()
        .expect("docker socket")
        .negotiate_version()
        .await
        .expect("docker version")
}

/// A package directory holding one entrypoint, readable by the container's user (10001).
pub struct Agent {
    pub dir: TempDir,
    pub runtime: Runtime,
    pub entrypoint: String,
}

pub fn agent(runtime: Runtime, code: &str) -> Agent {
    let dir = tempfile::tempdir().unwrap();
    let entrypoint = match runtime {
        Runtime::Node => "index.js",
        Runtime::Python => "main.py",
    };
    let file = dir.path().join(entrypoint);
    std::fs::write(&file, code).unwrap();
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    Agent {
        dir,
        runtime,
        entrypoint: entrypoint.to_string(),
    }
}

pub fn unique_id(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .subsec_nanos();
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    format!("{prefix}-{}-{nanos}-{n}", std::process::id())
}

pub fn spec(agent: &Agent, inputs: serde_json::Value) -> Spec {
    Spec {
        execution_id: unique_id("t"),
        runtime: agent.runtime,
        package_dir: agent.dir.path().to_path_buf(),
        entrypoint: agent.entrypoint.clone(),
        inputs: serde_json::to_vec(&inputs).unwrap(),
        timeout: Duration::from_secs(30),
        ..Spec::default()
    }
}

/// What the shared test bodies run on: a plain sandbox, or [`warm::WarmSandbox`].
pub trait Runs: Sync {
    fn execute(
        &self,
        spec: Spec,
        events: mpsc::Sender<Event>,
        cancel: CancellationToken,
    ) -> impl std::future::Future<Output = Result<Outcome, Error>> + Send;
}

impl Runs for Sandbox {
    fn execute(
        &self,
        spec: Spec,
        events: mpsc::Sender<Event>,
        cancel: CancellationToken,
    ) -> impl std::future::Future<Output = Result<Outcome, Error>> + Send {
        self.run(spec, events, cancel)
    }
}

/// The cold path: a fresh container per run.
pub mod cold {
    use std::collections::HashMap;

    #[allow(unused_imports)]
    pub use super::sandbox;

    pub fn assert_execution_label(labels: &HashMap<String, String>, execution_id: &str) {
        assert_eq!(labels["frameos.execution"], execution_id);
        assert!(!labels.contains_key("frameos.pool"), "{labels:?}");
    }
}

/// The warm path: each run is handed to a pool container started before it (ADR 0026).
pub mod warm {
    use std::collections::HashMap;

    use frameos_sandbox::{Error, Event, Outcome, PoolConfig, Sandbox, Spec};
    use tokio::sync::mpsc;
    use tokio_util::sync::CancellationToken;

    /// Before each run, a pool of its own is warmed for the run's class and holds one started
    /// container; after it, the run must have been a pool hit (unless the spec has an egress
    /// allow-list, which the pool never serves), and the pool is shut down.
    #[derive(Clone)]
    pub struct WarmSandbox {
        cold: Sandbox,
    }

    pub async fn sandbox() -> WarmSandbox {
        WarmSandbox {
            cold: super::sandbox().await,
        }
    }

    impl WarmSandbox {
        pub async fn run(
            &self,
            spec: Spec,
            events: mpsc::Sender<Event>,
            cancel: CancellationToken,
        ) -> Result<Outcome, Error> {
            let pooled = self.cold.clone().with_pool(PoolConfig {
                max_per_class: 1,
                initial: 0,
                ..PoolConfig::default()
            });
            let served = pooled.prewarm(&spec).await.expect("warming the pool");
            assert_eq!(served, spec.allow_domains.is_empty());
            let result = pooled.run(spec, events, cancel).await;
            let stats = pooled.pool_stats().expect("a pool");
            pooled.shutdown().await;
            assert_eq!(
                stats.hits,
                u64::from(served),
                "the run took the warm path: {stats:?}"
            );
            result
        }
    }

    impl super::Runs for WarmSandbox {
        fn execute(
            &self,
            spec: Spec,
            events: mpsc::Sender<Event>,
            cancel: CancellationToken,
        ) -> impl std::future::Future<Output = Result<Outcome, Error>> + Send {
            self.run(spec, events, cancel)
        }
    }

    /// Labels are fixed at creation, before the execution is known: a warm container carries
    /// the pool's label and takes the execution's name instead (the tests find it by name).
    pub fn assert_execution_label(labels: &HashMap<String, String>, _execution_id: &str) {
        assert!(
            labels["frameos.pool"].starts_with("frameos-warm-"),
            "{labels:?}"
        );
        assert!(!labels.contains_key("frameos.execution"), "{labels:?}");
    }
}

/// Runs to the end, collecting every event, and checks the container is gone.
pub async fn run(sandbox: &impl Runs, spec: Spec) -> (Outcome, Vec<Event>) {
    run_with_cancel(sandbox, spec, CancellationToken::new()).await
}

pub async fn run_with_cancel(
    sandbox: &impl Runs,
    spec: Spec,
    cancel: CancellationToken,
) -> (Outcome, Vec<Event>) {
    let id = spec.execution_id.clone();
    let (tx, mut rx) = mpsc::channel(64);
    let collector = tokio::spawn(async move {
        let mut events = Vec::new();
        while let Some(e) = rx.recv().await {
            events.push(e);
        }
        events
    });
    let outcome = sandbox
        .execute(spec, tx, cancel)
        .await
        .expect("platform error");
    let events = collector.await.unwrap();
    assert_no_container(&id).await;
    (outcome, events)
}

pub async fn assert_no_container(execution_id: &str) {
    let filters = HashMap::from([(
        "label".to_string(),
        vec![format!("frameos.execution={execution_id}")],
    )]);
    let options = ListContainersOptionsBuilder::default()
        .all(true)
        .filters(&filters)
        .build();
    let docker = docker().await;
    let left = docker.list_containers(Some(options)).await.unwrap();
    assert!(
        left.is_empty(),
        "containers left for {execution_id}: {left:?}"
    );
    // A warm container carries the execution's name, not its label, and is removed off the
    // run's critical path: wait for Docker to report it removed (at once if it is gone).
    let name = format!("frameos-exec-{execution_id}");
    let removed = bollard::query_parameters::WaitContainerOptionsBuilder::default()
        .condition("removed")
        .build();
    let mut waiting = docker.wait_container(&name, Some(removed));
    let waited = tokio::time::timeout(Duration::from_secs(30), waiting.next()).await;
    assert!(waited.is_ok(), "container {name} was not removed");
    match docker.inspect_container(&name, None).await {
        Err(bollard::errors::Error::DockerResponseServerError {
            status_code: 404, ..
        }) => {}
        other => panic!("container {name} is still there: {other:?}"),
    }
}

pub fn logs(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Log { line, .. } => Some(line.clone()),
            Event::Progress { .. } => None,
        })
        .collect()
}

/// The lines the platform wrote (`system`), never anything the agent printed.
pub fn system_lines(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .filter_map(|e| match e {
            Event::Log {
                stream: Stream::System,
                line,
            } => Some(line.clone()),
            _ => None,
        })
        .collect()
}

/// The agent's own output as JSON, or a panic showing what happened instead.
pub fn output(outcome: Outcome, events: &[Event]) -> serde_json::Value {
    match outcome {
        Outcome::Succeeded { output } => output,
        other => panic!("expected success, got {other:?}; logs: {:?}", logs(events)),
    }
}
