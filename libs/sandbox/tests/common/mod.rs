//! Helpers for the Docker tests. They need a running engine and the runtime images
//! (`runtime-images/build.sh`); without them they fail, never skip.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::HashMap;
use std::os::unix::fs::PermissionsExt;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bollard::Docker;
use bollard::query_parameters::ListContainersOptionsBuilder;
use frameos_sandbox::{Event, Images, Outcome, Runtime, Sandbox, Spec, Stream};
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

/// Runs to the end, collecting every event, and checks the container is gone.
pub async fn run(sandbox: &Sandbox, spec: Spec) -> (Outcome, Vec<Event>) {
    run_with_cancel(sandbox, spec, CancellationToken::new()).await
}

pub async fn run_with_cancel(
    sandbox: &Sandbox,
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
    let outcome = sandbox.run(spec, tx, cancel).await.expect("platform error");
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
    let left = docker().await.list_containers(Some(options)).await.unwrap();
    assert!(
        left.is_empty(),
        "containers left for {execution_id}: {left:?}"
    );
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
