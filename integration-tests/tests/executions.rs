//! Running agents end to end: REST → control plane → outbox → RabbitMQ → execution node →
//! Docker → results, logs and progress back over gRPC and Server-Sent Events. Real PostgreSQL,
//! RabbitMQ, Docker and S3 protocol server; nothing mocked.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use frameos_integration_tests::flows::containers_of;
use frameos_integration_tests::{Backend, Mesh, packages};
use reqwest::Method;
use serde_json::{Value, json};

async fn get(mesh: &Mesh, key: &str, path: &str) -> (u16, Value) {
    let response = mesh
        .request(Method::GET, path, Some(key))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn example_agents_run_with_live_logs_and_progress() {
    let mesh = Mesh::with_node(Backend::PostgresS3).await.unwrap();
    let dev = mesh.account("dev", "developer").await.unwrap();
    let user = mesh.account("uma", "user").await.unwrap();
    mesh.publish_approved(&dev, "word-count", packages::example("word-count"), None)
        .await
        .unwrap();
    mesh.publish_approved(&dev, "sentiment", packages::example("sentiment"), None)
        .await
        .unwrap();

    // Node.js: output, a log line and progress, in order, streamed before the end.
    let (events, done) = mesh
        .run(
            &user,
            "word-count",
            json!({"text": "the cat and the hat", "top_n": 1}),
        )
        .await
        .unwrap();
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["output"]["words"], 5);
    assert_eq!(
        done["output"]["top_words"],
        json!([{"word": "the", "count": 2}])
    );
    assert_eq!(done["attempts"], 1);
    assert!(done["duration_ms"].as_u64().is_some());
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds.first(), Some(&"status"), "{kinds:?}");
    assert_eq!(kinds.last(), Some(&"status"));
    assert!(
        kinds.contains(&"log") && kinds.contains(&"progress"),
        "{kinds:?}"
    );
    let id = done["id"].as_str().unwrap();
    assert!(containers_of(id).is_empty(), "a container was left behind");

    // The logs route pages the same lines by seq.
    let (status, logs) = get(&mesh, &user, &format!("/v1/executions/{id}/logs")).await;
    assert_eq!(status, 200);
    let lines = logs["items"].as_array().unwrap();
    assert!(!lines.is_empty());
    assert_eq!(lines[0]["seq"], 1);
    assert_eq!(lines[0]["stream"], "stdout");

    // Python.
    let (_, done) = mesh
        .run(
            &user,
            "sentiment",
            json!({"text": "I love this, it is wonderful"}),
        )
        .await
        .unwrap();
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["output"]["label"], "positive", "{done}");

    // Another user cannot see it; the list holds the user's own, newest first.
    let other = mesh.account("ola", "user").await.unwrap();
    let (status, _) = get(&mesh, &other, &format!("/v1/executions/{id}")).await;
    assert_eq!(status, 404);
    let (_, list) = get(&mesh, &user, "/v1/executions").await;
    let agents: Vec<&str> = list["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["agent"].as_str().unwrap())
        .collect();
    assert_eq!(agents, vec!["sentiment", "word-count"]);
    let (_, none) = get(&mesh, &other, "/v1/executions").await;
    assert_eq!(none["items"].as_array().unwrap().len(), 0);
    mesh.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn agent_failures_are_final_and_leave_nothing_behind() {
    let mesh = Mesh::with_node(Backend::PostgresS3).await.unwrap();
    let dev = mesh.account("dev", "developer").await.unwrap();
    let cases: Vec<(&str, Vec<u8>, &str, &str)> = vec![
        (
            "throws",
            packages::node_agent_with(
                "throws",
                "module.exports = async () => { throw new Error('no such city'); };",
                20_000,
                128,
            ),
            "failed",
            "no such city",
        ),
        (
            "exits",
            packages::node_agent_with(
                "exits",
                "module.exports = async () => { process.exit(3); };",
                20_000,
                128,
            ),
            "failed",
            "3",
        ),
        (
            "loops",
            packages::node_agent_with(
                "loops",
                "module.exports = async () => { for (;;) {} };",
                1_500,
                128,
            ),
            "timed_out",
            "timed out",
        ),
        (
            "hog",
            packages::node_agent_with(
                "hog",
                "module.exports = async () => { const a = []; for (;;) a.push(Buffer.alloc(1 << 20, 1)); };",
                20_000,
                64,
            ),
            "failed",
            "out of memory",
        ),
        (
            "py-raises",
            packages::python_agent(
                "py-raises",
                "1.0.0",
                "def run(inputs, ctx):\n    raise ValueError('bad input shape')\n",
                20_000,
                128,
            ),
            "failed",
            "bad input shape",
        ),
    ];
    let user = mesh.account("uma", "user").await.unwrap();
    for (slug, package, _, _) in &cases {
        mesh.publish_approved(&dev, slug, package.clone(), None)
            .await
            .unwrap();
    }
    let mut started = Vec::new();
    for (slug, _, status, needle) in &cases {
        let accepted = mesh.execute(&user, slug, json!({})).await.unwrap();
        started.push((
            accepted["id"].as_str().unwrap().to_string(),
            *slug,
            *status,
            *needle,
        ));
    }
    for (id, slug, status, needle) in started {
        let (_, done) = mesh.follow(&user, &id).await.unwrap();
        assert_eq!(done["status"], status, "{slug}: {done}");
        let error = done["error"].as_str().unwrap_or_default();
        let exit = done["exit_code"].to_string();
        assert!(error.contains(needle) || exit == needle, "{slug}: {done}");
        // Agent failures are not retried.
        assert_eq!(done["attempts"], 1, "{slug}: {done}");
        assert!(
            containers_of(&id).is_empty(),
            "{slug} left a container behind"
        );
    }
    mesh.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_sandbox_holds_through_the_whole_mesh() {
    let mesh = Mesh::with_node(Backend::PostgresS3).await.unwrap();
    let dev = mesh.account("dev", "developer").await.unwrap();
    let user = mesh.account("uma", "user").await.unwrap();
    // The socket import is hidden from the scanner (python.raw_socket rejects it) the way a
    // hostile developer would hide it: the container must hold anyway.
    let probe = r#"
import os, importlib
net = importlib.import_module("so" + "cket")
def attempt(f):
    try:
        f()
        return "allowed"
    except Exception as e:
        return type(e).__name__ + ": " + str(e)
def write_root():
    with open("/agent/x", "w") as f:
        f.write("x")
def fill_tmp():
    with open("/tmp/big", "wb") as f:
        for _ in range(200):
            f.write(b"\0" * (1 << 20))
def connect():
    s = net.create_connection(("1.1.1.1", 53), timeout=2)
    s.close()
def run(inputs, ctx):
    print("x" * 1000 + "\n", end="")
    return {"root": attempt(write_root), "tmp": attempt(fill_tmp), "net": attempt(connect), "uid": os.getuid()}
"#;
    mesh.publish_approved(
        &dev,
        "probe",
        packages::python_agent("probe", "1.0.0", probe, 30_000, 256),
        None,
    )
    .await
    .unwrap();
    let (_, done) = mesh.run(&user, "probe", json!({})).await.unwrap();
    assert_eq!(done["status"], "succeeded", "{done}");
    let out = &done["output"];
    assert!(out["root"].as_str().unwrap().contains("Read-only"), "{out}");
    assert!(
        out["tmp"].as_str().unwrap().contains("No space left"),
        "{out}"
    );
    assert_ne!(out["net"], "allowed", "{out}");
    assert_ne!(out["uid"], 0, "{out}");

    // A log flood is capped; the node stays healthy and runs the next execution.
    let flood = "def run(inputs, ctx):\n    line = 'y' * 1023\n    for _ in range(10 * 1024):\n        print(line)\n    return 'flooded'\n";
    mesh.publish_approved(
        &dev,
        "flood",
        packages::python_agent("flood", "1.0.0", flood, 60_000, 128),
        None,
    )
    .await
    .unwrap();
    let (_, done) = mesh.run(&user, "flood", json!({})).await.unwrap();
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["output"], "flooded");
    let id = done["id"].as_str().unwrap();
    let mut stored = 0usize;
    let mut after = 0u64;
    let mut marker = false;
    loop {
        let (_, page) = get(
            &mesh,
            &user,
            &format!("/v1/executions/{id}/logs?after_seq={after}&page_size=1000"),
        )
        .await;
        let items = page["items"].as_array().unwrap().clone();
        if items.is_empty() {
            break;
        }
        for item in &items {
            let line = item["line"].as_str().unwrap();
            stored += line.len();
            marker |= line.contains("log limit");
            after = item["seq"].as_u64().unwrap();
        }
    }
    assert!(marker, "no log-limit marker line");
    assert!(
        stored <= 1024 * 1024 + 2048,
        "{stored} bytes of logs stored"
    );
    let (_, again) = mesh.run(&user, "probe", json!({})).await.unwrap();
    assert_eq!(again["status"], "succeeded");
    mesh.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn inputs_idempotency_and_cancel() {
    let mesh = Mesh::with_node(Backend::PostgresS3).await.unwrap();
    let dev = mesh.account("dev", "developer").await.unwrap();
    let user = mesh.account("uma", "user").await.unwrap();
    mesh.publish_approved(&dev, "word-count", packages::example("word-count"), None)
        .await
        .unwrap();

    // Inputs are checked against the schema before anything is queued.
    let response = mesh
        .request(
            Method::POST,
            "/v1/agents/word-count/executions",
            Some(&user),
        )
        .json(&json!({"inputs": {"text": 42}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_inputs");
    assert!(
        body["error"]["message"].as_str().unwrap().contains("/text"),
        "{body}"
    );
    let (_, list) = get(&mesh, &user, "/v1/executions").await;
    assert_eq!(list["items"].as_array().unwrap().len(), 0);

    // The same Idempotency-Key and body: the same execution. Another body: 422.
    let send = |inputs: Value| {
        mesh.request(
            Method::POST,
            "/v1/agents/word-count/executions",
            Some(&user),
        )
        .header("idempotency-key", "order-17")
        .json(&json!({"inputs": inputs}))
        .send()
    };
    let first: Value = send(json!({"text": "a b"}))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let second = send(json!({"text": "a b"})).await.unwrap();
    assert_eq!(second.status(), 202);
    let second: Value = second.json().await.unwrap();
    assert_eq!(first["id"], second["id"]);
    let third = send(json!({"text": "c"})).await.unwrap();
    assert_eq!(third.status(), 422);
    let third: Value = third.json().await.unwrap();
    assert_eq!(third["error"]["code"], "idempotency_key_reused");

    // Cancel a running execution: it stops within a second and its container is gone.
    let slow = "module.exports = async (inputs, ctx) => { ctx.progress(0.1, 'started'); await new Promise(r => setTimeout(r, 60000)); };";
    mesh.publish_approved(
        &dev,
        "slow",
        packages::node_agent_with("slow", slow, 120_000, 128),
        None,
    )
    .await
    .unwrap();
    let accepted = mesh.execute(&user, "slow", json!({})).await.unwrap();
    let id = accepted["id"].as_str().unwrap().to_string();
    // Wait (by events) until the agent reported progress, i.e. it is really running.
    mesh.wait_for_event(&user, &id, "progress").await.unwrap();
    let started = std::time::Instant::now();
    let canceled = mesh
        .request(
            Method::POST,
            &format!("/v1/executions/{id}/cancel"),
            Some(&user),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(canceled.status(), 200);
    let (_, done) = mesh.follow(&user, &id).await.unwrap();
    assert_eq!(done["status"], "canceled", "{done}");
    // The node reports once the container is gone.
    while !containers_of(&id).is_empty() {
        assert!(
            started.elapsed() < std::time::Duration::from_secs(3),
            "container still there"
        );
        tokio::task::yield_now().await;
    }
    mesh.shutdown().await.unwrap();
}

/// Which version a run takes, on both databases (each records an execution its own way: one
/// statement on PostgreSQL, a transaction on SQLite): without `version`, the highest published
/// one by SemVer precedence (1.10.0 over 1.9.0, an unreviewed 2.0.0 never); with it, exactly
/// that one; a version or agent that is not published is 404 and records nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_run_takes_the_highest_published_version_or_the_one_named() {
    for backend in [Backend::PostgresS3, Backend::Embedded] {
        let mesh = Mesh::start(backend).await.unwrap();
        let dev = mesh.account("dev", "developer").await.unwrap();
        let user = mesh.account("uma", "user").await.unwrap();
        let other = mesh.account("otto", "user").await.unwrap();
        let code = "module.exports = async () => ({});";
        let slug = "semver-pick";
        mesh.publish_approved(&dev, slug, packages::node_agent(slug, "1.9.0", code), None)
            .await
            .unwrap();
        for (version, approve) in [("1.10.0", true), ("2.0.0", false)] {
            let uploaded = mesh
                .request(
                    Method::POST,
                    &format!("/v1/agents/{slug}/versions"),
                    Some(&dev),
                )
                .header("content-type", "application/gzip")
                .body(packages::node_agent(slug, version, code))
                .send()
                .await
                .unwrap();
            assert_eq!(uploaded.status(), 201, "{}", uploaded.text().await.unwrap());
            if approve {
                let path = format!("/v1/agents/{slug}/versions/{version}/approve");
                let approved = mesh
                    .request(Method::POST, &path, Some(&mesh.admin_key))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(approved.status(), 200);
            }
        }
        let run = |body: Value| {
            mesh.request(
                Method::POST,
                &format!("/v1/agents/{slug}/executions"),
                Some(&user),
            )
            .json(&body)
            .send()
        };

        for (body, expected) in [
            (json!({"inputs": {}}), "1.10.0"),
            (json!({"inputs": {}, "version": "1.9.0"}), "1.9.0"),
        ] {
            let accepted = run(body.clone()).await.unwrap();
            assert_eq!(accepted.status(), 202, "{body}");
            let accepted: Value = accepted.json().await.unwrap();
            assert_eq!(accepted["version"], expected, "{accepted}");
            // Read back: the recorded execution, with its names, no charge (a free agent).
            let id = accepted["id"].as_str().unwrap();
            let (status, stored) = get(&mesh, &user, &format!("/v1/executions/{id}")).await;
            assert_eq!(status, 200, "{stored}");
            assert_eq!(stored["agent"], slug, "{stored}");
            assert_eq!(stored["version"], expected, "{stored}");
            assert_eq!(stored["status"], "queued", "{stored}");
            // The 202 is built without reading the row back: it must say what the row says.
            assert_eq!(stored["created_at"], accepted["created_at"], "{stored}");
            assert!(stored.get("charge").is_none_or(Value::is_null), "{stored}");
            // Another user's execution is not found, not forbidden.
            let (status, _) = get(&mesh, &other, &format!("/v1/executions/{id}")).await;
            assert_eq!(status, 404);
        }

        for (path, body, names) in [
            (slug, json!({"inputs": {}, "version": "2.0.0"}), "2.0.0"),
            (slug, json!({"inputs": {}, "version": "3.0.0"}), "3.0.0"),
            ("no-such-agent", json!({"inputs": {}}), "no-such-agent"),
        ] {
            let refused = mesh
                .request(
                    Method::POST,
                    &format!("/v1/agents/{path}/executions"),
                    Some(&user),
                )
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(refused.status(), 404, "{body}");
            let refused: Value = refused.json().await.unwrap();
            assert_eq!(refused["error"]["code"], "not_found", "{refused}");
            assert!(
                refused["error"]["message"]
                    .as_str()
                    .unwrap()
                    .contains(names),
                "{refused}"
            );
        }
        let (_, list) = get(&mesh, &user, "/v1/executions").await;
        assert_eq!(list["items"].as_array().unwrap().len(), 2, "{list}");
        mesh.shutdown().await.unwrap();
    }
}
