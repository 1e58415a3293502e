//! The warm pool itself (ADR 0026): a run really goes to a container started before it, no
//! container serves two runs, a dead one is never handed a run, and nothing outlives the pool.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::collections::HashMap;
use std::path::Path;
use std::time::Duration;

use bollard::models::ContainerSummary;
use bollard::query_parameters::{
    KillContainerOptionsBuilder, ListContainersOptionsBuilder, WaitContainerOptionsBuilder,
};
use common::*;
use frameos_sandbox::{Images, Outcome, PoolConfig, Runtime, Sandbox, Spec};
use serde_json::json;
use tokio_util::sync::CancellationToken;

/// A sandbox of its own node id (so that listing by node finds only this test's containers),
/// with a pool of at most `max` per class and slots under `slots`.
async fn pooled(node_id: &str, max: usize, slots: &Path) -> Sandbox {
    Sandbox::docker(None, Images::default(), node_id)
        .await
        .expect("these tests need a running Docker engine")
        .with_pool(PoolConfig {
            max_per_class: max,
            initial: 0,
            slot_dir: slots.to_path_buf(),
            ..PoolConfig::default()
        })
}

async fn containers_of_node(node_id: &str) -> Vec<ContainerSummary> {
    let filters = HashMap::from([("label".to_string(), vec![format!("frameos.node={node_id}")])]);
    let options = ListContainersOptionsBuilder::default()
        .all(true)
        .filters(&filters)
        .build();
    docker().await.list_containers(Some(options)).await.unwrap()
}

/// Waits for Docker to report the container removed (at once if it is already gone).
async fn removed(id: &str) {
    let options = WaitContainerOptionsBuilder::default()
        .condition("removed")
        .build();
    let mut waiting = docker().await.wait_container(id, Some(options));
    let _ = futures::StreamExt::next(&mut waiting).await;
    assert!(docker().await.inspect_container(id, None).await.is_err());
}

/// The agent says which container it ran in: Docker's host name is the id's first 12 chars.
fn hostname_agent() -> Agent {
    agent(
        Runtime::Node,
        "module.exports = async () => require('os').hostname();",
    )
}

fn ran_in(outcome: Outcome) -> String {
    match outcome {
        Outcome::Succeeded { output } => output.as_str().unwrap().to_string(),
        other => panic!("expected success, got {other:?}"),
    }
}

/// The one warm container of a pool that holds one.
async fn the_warm_container(node_id: &str) -> String {
    let warm = containers_of_node(node_id).await;
    assert_eq!(warm.len(), 1, "{warm:?}");
    let labels = warm[0].labels.clone().unwrap();
    assert!(labels.contains_key("frameos.pool"), "{labels:?}");
    warm[0].id.clone().unwrap()
}

#[tokio::test]
async fn a_run_goes_to_the_container_started_before_it() {
    let node_id = unique_id("pool-hit");
    let slots = tempfile::tempdir().unwrap();
    let sandbox = pooled(&node_id, 1, slots.path()).await;
    let agent = hostname_agent();
    let spec = spec(&agent, json!({}));
    assert!(sandbox.prewarm(&spec).await.unwrap());
    let warm = the_warm_container(&node_id).await;
    let state = docker()
        .await
        .inspect_container(&warm, None)
        .await
        .unwrap()
        .state
        .unwrap();
    assert_eq!(state.running, Some(true), "started before the hand-off");

    let (outcome, _) = run(&sandbox, spec).await;
    assert_eq!(ran_in(outcome), warm[..12]);
    let stats = sandbox.pool_stats().unwrap();
    assert_eq!((stats.hits, stats.misses), (1, 0), "{stats:?}");
    sandbox.shutdown().await;
    removed(&warm).await;
}

#[tokio::test]
async fn a_warm_container_serves_one_run_and_is_removed() {
    let node_id = unique_id("pool-once");
    let slots = tempfile::tempdir().unwrap();
    let sandbox = pooled(&node_id, 1, slots.path()).await;
    let agent = hostname_agent();
    let mut seen = Vec::new();
    for _ in 0..2 {
        let spec = spec(&agent, json!({}));
        assert!(sandbox.prewarm(&spec).await.unwrap());
        let (outcome, _) = run(&sandbox, spec).await;
        seen.push(ran_in(outcome));
    }
    assert_ne!(seen[0], seen[1], "a container ran two executions");
    // The first is removed after its run, without anyone asking.
    removed(&seen[0]).await;
    assert_eq!(sandbox.pool_stats().unwrap().hits, 2);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn a_dead_warm_container_is_not_handed_a_run() {
    let node_id = unique_id("pool-dead");
    let slots = tempfile::tempdir().unwrap();
    let sandbox = pooled(&node_id, 1, slots.path()).await;
    let agent = hostname_agent();
    let spec = spec(&agent, json!({}));
    assert!(sandbox.prewarm(&spec).await.unwrap());
    let dead = the_warm_container(&node_id).await;
    let docker = docker().await;
    let kill = KillContainerOptionsBuilder::default()
        .signal("SIGKILL")
        .build();
    docker.kill_container(&dead, Some(kill)).await.unwrap();
    let stopped = WaitContainerOptionsBuilder::default()
        .condition("not-running")
        .build();
    let _ = futures::StreamExt::next(&mut docker.wait_container(&dead, Some(stopped))).await;

    let (outcome, _) = run(&sandbox, spec).await;
    assert_ne!(ran_in(outcome), dead[..12], "handed to the dead container");
    let stats = sandbox.pool_stats().unwrap();
    assert_eq!(stats.dropped, 1, "{stats:?}");
    removed(&dead).await;
    sandbox.shutdown().await;
}

#[tokio::test]
async fn shutdown_removes_the_pools_containers_and_slots() {
    let node_id = unique_id("pool-shutdown");
    let slots = tempfile::tempdir().unwrap();
    let sandbox = pooled(&node_id, 2, slots.path()).await;
    sandbox.warm_pool();
    for runtime in [Runtime::Node, Runtime::Python] {
        let spec = Spec {
            runtime,
            ..Spec::default()
        };
        assert!(sandbox.prewarm(&spec).await.unwrap());
    }
    assert!(!containers_of_node(&node_id).await.is_empty());
    sandbox.shutdown().await;
    assert_eq!(containers_of_node(&node_id).await.len(), 0);
    let left: Vec<_> = walk(slots.path());
    assert!(left.is_empty(), "slots left: {left:?}");
}

#[tokio::test]
async fn remove_stale_removes_the_pool_of_a_dead_node() {
    let node_id = unique_id("pool-crashed");
    let slots = tempfile::tempdir().unwrap();
    // The node's "process": its own runtime, gone with all its tasks, without a drop of the
    // sandbox or a shutdown.
    let (crashed_node, dir) = (node_id.clone(), slots.path().to_path_buf());
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async {
            let crashed = pooled(&crashed_node, 1, &dir).await;
            assert!(crashed.prewarm(&Spec::default()).await.unwrap());
            std::mem::forget(crashed);
        });
    })
    .join()
    .unwrap();
    assert_eq!(containers_of_node(&node_id).await.len(), 1);

    let restarted = pooled(&node_id, 1, slots.path()).await;
    assert_eq!(restarted.remove_stale().await.unwrap(), 1);
    assert_eq!(containers_of_node(&node_id).await.len(), 0);
    let left: Vec<_> = walk(slots.path());
    assert!(left.is_empty(), "slots left: {left:?}");
}

#[tokio::test]
async fn the_timeout_counts_from_the_hand_off() {
    let node_id = unique_id("pool-timeout");
    let slots = tempfile::tempdir().unwrap();
    let sandbox = pooled(&node_id, 1, slots.path()).await;
    let agent = agent(
        Runtime::Node,
        "module.exports = async () => { for (;;) {} };",
    );
    let mut spec = spec(&agent, json!({}));
    spec.timeout = Duration::from_millis(1500);
    let started = spec.started.clone();
    assert!(sandbox.prewarm(&spec).await.unwrap());
    let warmed = std::time::Instant::now();
    let (outcome, _) = run_with_cancel(&sandbox, spec, CancellationToken::new()).await;
    let ended = std::time::Instant::now();
    assert_eq!(outcome, Outcome::TimedOut);
    assert_eq!(sandbox.pool_stats().unwrap().hits, 1);
    // The start is the hand-off, after the container had long been running, and the whole
    // timeout passed after it.
    let at = started.at().expect("the start was marked");
    assert!(at >= warmed, "start marked before the hand-off");
    assert!(ended - at >= Duration::from_millis(1500));
    sandbox.shutdown().await;
}

/// Every path under `dir` (the node's slot directory may stay; no slot may).
fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            let inner = walk(&path);
            if inner.is_empty() && path.parent() == Some(dir) {
                continue; // <slots>/<node id>, empty
            }
            found.extend(inner);
        }
        found.push(path);
    }
    found
}

/// A class no run takes from for `idle_after` shrinks to nothing: its waiting container is
/// removed (its memory back to the host) and the next run of the class is a miss again.
#[tokio::test]
async fn an_idle_class_gives_its_waiting_container_back() {
    let node_id = unique_id("pool-idle");
    let slots = tempfile::tempdir().unwrap();
    let sandbox = Sandbox::docker(None, Images::default(), &node_id)
        .await
        .expect("these tests need a running Docker engine")
        .with_pool(PoolConfig {
            max_per_class: 2,
            initial: 0,
            slot_dir: slots.path().to_path_buf(),
            idle_after: Duration::from_secs(1),
            ..PoolConfig::default()
        });
    let agent = hostname_agent();
    // The first run is a miss: the class grows to one and a container is warmed after it.
    let (outcome, _) = run(&sandbox, spec(&agent, json!({}))).await;
    let cold = ran_in(outcome);
    assert!(sandbox.prewarm(&spec(&agent, json!({}))).await.unwrap());
    removed(&cold).await;

    // Nobody runs the class: within a second or so the pool removes its container by itself
    // (perhaps already, on a slow machine). The deadline only turns a hang into a failure.
    let waiting: Vec<String> = containers_of_node(&node_id)
        .await
        .into_iter()
        .filter_map(|c| c.id)
        .collect();
    assert!(waiting.len() <= 1, "{waiting:?}");
    for id in &waiting {
        tokio::time::timeout(Duration::from_secs(60), removed(id))
            .await
            .expect("the idle container was never removed");
    }
    assert!(containers_of_node(&node_id).await.is_empty());
    assert_eq!(sandbox.pool_stats().unwrap().ready, 0);

    // The class starts over: the next run misses (and grows it again).
    let misses = sandbox.pool_stats().unwrap().misses;
    let (outcome, _) = run(&sandbox, spec(&agent, json!({}))).await;
    ran_in(outcome);
    assert_eq!(sandbox.pool_stats().unwrap().misses, misses + 1);
    sandbox.shutdown().await;
}
