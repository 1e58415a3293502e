//! Bounded logs, missing images and leftovers of a crashed node.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::collections::HashMap;
use std::time::Duration;

use bollard::models::ContainerCreateBody;
use bollard::query_parameters::{CreateContainerOptionsBuilder, ListContainersOptionsBuilder};
use common::*;
use frameos_sandbox::{DEFAULT_LOG_LIMIT_BYTES, Error, Event, Images, Runtime, Sandbox, Stream};
use serde_json::json;

#[tokio::test]
async fn ten_mib_of_output_is_capped_at_the_log_limit() {
    let sandbox = sandbox().await;
    let agent = agent(
        Runtime::Node,
        r#"module.exports = async () => {
            const line = "x".repeat(99);
            for (let i = 0; i < 10 * 1024 * 1024 / 100; i++) console.log(line);
            return "done";
        };"#,
    );
    let (outcome, events) = run(&sandbox, spec(&agent, json!({}))).await;
    assert_eq!(output(outcome, &events), json!("done"));
    let marker = Event::Log {
        stream: Stream::System,
        line: format!(
            "log limit of {DEFAULT_LOG_LIMIT_BYTES} bytes reached; further output dropped"
        ),
    };
    assert_eq!(events.last(), Some(&marker));
    assert_eq!(events.iter().filter(|e| **e == marker).count(), 1);
    let logged: usize = logs(&events[..events.len() - 1])
        .iter()
        .map(|l| l.len())
        .sum();
    assert!(logged as u64 <= DEFAULT_LOG_LIMIT_BYTES, "{logged}");
    assert_eq!(events.len(), DEFAULT_LOG_LIMIT_BYTES as usize / 99 + 1);
}

#[tokio::test]
async fn a_dropped_run_still_removes_its_container() {
    let sandbox = sandbox().await;
    let agent = agent(
        Runtime::Node,
        "module.exports = async () => new Promise(() => setInterval(() => {}, 1000));",
    );
    let spec = spec(&agent, json!({}));
    let id = spec.execution_id.clone();
    let (tx, _rx) = tokio::sync::mpsc::channel(1);
    let run = sandbox.run(spec, tx, Default::default());
    // Abandon the run mid-flight, as a panicking or aborted caller would.
    let dropped = tokio::time::timeout(Duration::from_secs(2), run).await;
    assert!(dropped.is_err(), "{dropped:?}");
    for _ in 0..50 {
        if containers_of(&id).await == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_no_container(&id).await;
}

async fn containers_of(execution_id: &str) -> usize {
    let filters = HashMap::from([(
        "label".to_string(),
        vec![format!("frameos.execution={execution_id}")],
    )]);
    let options = ListContainersOptionsBuilder::default()
        .all(true)
        .filters(&filters)
        .build();
    docker()
        .await
        .list_containers(Some(options))
        .await
        .unwrap()
        .len()
}

#[tokio::test]
async fn a_missing_image_is_named() {
    let images = Images {
        node: "frameos/no-such-runtime:0".to_string(),
        ..Images::default()
    };
    let sandbox = Sandbox::docker(None, images, NODE_ID)
        .await
        .expect("these tests need a running Docker engine");
    let err = sandbox.check_images().await.unwrap_err();
    assert!(matches!(err, Error::ImageMissing { .. }), "{err:?}");
    let message = err.to_string();
    assert!(message.contains("frameos/no-such-runtime:0"), "{message}");
    assert!(message.contains("runtime-images/build.sh"), "{message}");

    // Running on it is a platform error too, not an outcome.
    let agent = agent(Runtime::Node, "module.exports = async () => 1;");
    let spec = spec(&agent, json!({}));
    let id = spec.execution_id.clone();
    let (tx, _rx) = tokio::sync::mpsc::channel(1);
    let err = sandbox.run(spec, tx, Default::default()).await.unwrap_err();
    assert!(matches!(err, Error::ImageMissing { .. }), "{err:?}");
    assert_no_container(&id).await;
}

#[tokio::test]
async fn remove_stale_removes_this_nodes_leftovers_only() {
    let node_id = unique_id("stale-node");
    let sandbox = Sandbox::docker(None, Images::default(), &node_id)
        .await
        .expect("these tests need a running Docker engine");
    let docker = docker().await;
    let create = |name: String, node: String| {
        let docker = docker.clone();
        async move {
            let labels = HashMap::from([
                ("frameos.managed".to_string(), "true".to_string()),
                ("frameos.node".to_string(), node),
            ]);
            let body = ContainerCreateBody {
                image: Some(Images::default().node),
                cmd: Some(vec!["true".to_string()]),
                labels: Some(labels),
                ..Default::default()
            };
            let options = CreateContainerOptionsBuilder::default().name(&name).build();
            docker.create_container(Some(options), body).await.unwrap();
        }
    };
    let mine = unique_id("frameos-exec-left");
    let other = unique_id("frameos-exec-other");
    create(mine.clone(), node_id.clone()).await;
    create(other.clone(), format!("{node_id}-other")).await;

    assert_eq!(sandbox.remove_stale().await.unwrap(), 1);
    assert_eq!(sandbox.remove_stale().await.unwrap(), 0);

    let options = ListContainersOptionsBuilder::default().all(true).build();
    let names: Vec<String> = docker
        .list_containers(Some(options))
        .await
        .unwrap()
        .into_iter()
        .flat_map(|c| c.names.unwrap_or_default())
        .collect();
    assert!(!names.contains(&format!("/{mine}")), "{names:?}");
    assert!(names.contains(&format!("/{other}")), "{names:?}");
    docker
        .remove_container(&other, None)
        .await
        .expect("cleaning up");
}

#[tokio::test]
async fn connects_by_socket_path_or_url_and_names_an_unreachable_host() {
    for host in ["/var/run/docker.sock", "unix:///var/run/docker.sock"] {
        let sandbox = Sandbox::docker(Some(host), Images::default(), NODE_ID)
            .await
            .unwrap_or_else(|e| panic!("{host}: {e}"));
        assert!(sandbox.is_isolated());
    }
    for host in ["/nonexistent/docker.sock", "tcp://127.0.0.1:1"] {
        let err = Sandbox::docker(Some(host), Images::default(), NODE_ID)
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Unreachable { .. }), "{err:?}");
        assert!(err.to_string().contains(host), "{err}");
    }
}
