//! One service lifecycle (API.md §4.3), with real processes and real signals: SIGTERM lets a
//! node finish its run, or hand it back when the grace runs out; the control plane and the
//! gateway stop with exit status 0; readiness turns off first.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::time::Duration;

use frameos_integration_tests::processes::ServiceProcess;
use frameos_integration_tests::{Backend, Mesh, TestDatabase, packages};
use reqwest::Method;
use serde_json::{Value, json};

const STARTUP: Duration = Duration::from_secs(60);

/// Prints `attempt started`, reports progress (so the test knows it runs), sleeps, returns.
fn sleeper(millis: u64) -> String {
    format!(
        "module.exports = async (inputs, ctx) => {{ console.log('attempt started'); ctx.progress(0.5, 'halfway'); await new Promise(r => setTimeout(r, {millis})); return {{ done: true }}; }};"
    )
}

async fn execution(mesh: &Mesh, key: &str, id: &str) -> Value {
    mesh.request(Method::GET, &format!("/v1/executions/{id}"), Some(key))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

/// The execution's stored log lines, `(stream, line)`.
async fn logs(mesh: &Mesh, key: &str, id: &str) -> Vec<(String, String)> {
    mesh.log_lines(key, id)
        .await
        .unwrap()
        .iter()
        .map(|l| {
            (
                l["stream"].as_str().unwrap().to_string(),
                l["line"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// Containers Docker still has for a node (running or not).
fn containers_of_node(node_id: &str) -> Vec<String> {
    let output = std::process::Command::new("docker")
        .args([
            "ps",
            "-aq",
            "--filter",
            &format!("label=frameos.node={node_id}"),
            // Executions' containers; not the warm pool's waiting ones (ADR 0026).
            "--filter",
            "name=^frameos-exec-",
        ])
        .output()
        .expect("docker ps");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}

/// A mesh on PostgreSQL, S3 and RabbitMQ (no node yet) with the approved agent `sleeper`
/// running `millis`, and the key of a user who may run it.
async fn mesh_with_sleeper(millis: u64) -> (Mesh, String) {
    let mesh = Mesh::with_queue(Backend::PostgresS3, |_| {}).await.unwrap();
    let dev = mesh.account("dev", "developer").await.unwrap();
    let user = mesh.account("uma", "user").await.unwrap();
    mesh.publish_approved(
        &dev,
        "sleeper",
        packages::node_agent_with("sleeper", &sleeper(millis), 60_000, 128),
        None,
    )
    .await
    .unwrap();
    (mesh, user)
}

/// A node id no other run uses (leftover containers are found by it).
fn unique_node_id(prefix: &str) -> String {
    format!(
        "{prefix}-{}",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
}

fn node_process(
    mesh: &Mesh,
    cache: &std::path::Path,
    node_id: &str,
    extra: &[(&str, &str)],
) -> ServiceProcess {
    let mut env = mesh.node_env(cache);
    env.push(("FRAMEOS_NODE_ID".into(), node_id.into()));
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    ServiceProcess::spawn(node_id, env!("CARGO_BIN_EXE_frameos-test-node"), &env).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_mid_run_lets_the_execution_finish_once_and_the_node_exit_0() {
    let (mut mesh, user) = mesh_with_sleeper(3000).await;
    let cache = tempfile::tempdir().unwrap();
    let node_id = unique_node_id("draining");
    // The default grace (330 s): plenty for a 3 s run.
    let mut node = node_process(&mesh, cache.path(), &node_id, &[]);

    let accepted = mesh.execute(&user, "sleeper", json!({})).await.unwrap();
    let id = accepted["id"].as_str().unwrap().to_string();
    mesh.wait_for_event(&user, &id, "progress").await.unwrap();
    node.signal("TERM").unwrap();
    node.wait_for_log("shutdown requested; stopping gracefully", STARTUP)
        .await
        .unwrap();
    // Queued after the signal: a stopping node takes no new job.
    let later = mesh.execute(&user, "sleeper", json!({})).await.unwrap();
    let later = later["id"].as_str().unwrap().to_string();

    let status = node.exit_status(Duration::from_secs(60)).await.unwrap();
    assert_eq!(status.code(), Some(0), "{:?}", node.messages());
    let done = execution(&mesh, &user, &id).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["attempts"], 1, "{done}");
    assert_eq!(done["output"], json!({"done": true}));
    let lines = logs(&mesh, &user, &id).await;
    assert_eq!(
        lines,
        [("stdout".to_string(), "attempt started".to_string())],
        "one attempt, nothing handed back"
    );
    assert!(containers_of_node(&node_id).is_empty());
    // The job queued after the signal waited for another node, and runs there as attempt 1.
    let waiting = execution(&mesh, &user, &later).await;
    assert_eq!(waiting["status"], "queued", "{waiting}");
    mesh.start_node(1).await.unwrap();
    let (_, done) = mesh.follow(&user, &later).await.unwrap();
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["attempts"], 1, "{done}");
    mesh.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn sigterm_with_a_short_grace_hands_the_run_back_to_another_node() {
    // Far longer than the grace: the first node cannot finish it.
    let (mut mesh, user) = mesh_with_sleeper(8000).await;
    let cache = tempfile::tempdir().unwrap();
    let node_id = unique_node_id("handing-back");
    let mut node = node_process(
        &mesh,
        cache.path(),
        &node_id,
        &[("FRAMEOS_SHUTDOWN_GRACE_SECS", "1")],
    );

    let accepted = mesh.execute(&user, "sleeper", json!({})).await.unwrap();
    let id = accepted["id"].as_str().unwrap().to_string();
    mesh.wait_for_event(&user, &id, "progress").await.unwrap();
    assert_eq!(containers_of_node(&node_id).len(), 1);
    node.signal("TERM").unwrap();
    let status = node.exit_status(Duration::from_secs(30)).await.unwrap();
    assert_eq!(status.code(), Some(0), "{:?}", node.messages());
    assert!(
        node.messages().iter().any(|m| m == "execution handed back"),
        "{:?}",
        node.messages()
    );
    // Its container is gone with it, and the execution waits for another node.
    assert_eq!(containers_of_node(&node_id), Vec::<String>::new());
    let handed_back = execution(&mesh, &user, &id).await;
    assert_eq!(handed_back["status"], "queued", "{handed_back}");
    assert_eq!(handed_back["attempts"], 1, "{handed_back}");

    mesh.start_node(1).await.unwrap();
    let (_, done) = mesh.follow(&user, &id).await.unwrap();
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["attempts"], 2, "{done}");
    assert_eq!(done["output"], json!({"done": true}));
    // The log says where one attempt ended and the next began.
    let lines = logs(&mesh, &user, &id).await;
    let started = ("stdout".to_string(), "attempt started".to_string());
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert_eq!(lines[0], started);
    assert_eq!(lines[1].0, "system", "{lines:?}");
    assert!(
        lines[1].1.contains(&node_id) && lines[1].1.contains("handed back"),
        "{lines:?}"
    );
    // The claim of attempt 2 says which node runs it (ADR 0008).
    assert_eq!(lines[2].0, "system", "{lines:?}");
    assert!(
        lines[2].1.starts_with("attempt 2 runs on node "),
        "{lines:?}"
    );
    assert_eq!(lines[3], started);
    assert!(frameos_integration_tests::flows::containers_of(&id).is_empty());
    mesh.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_stops_a_control_plane_process_and_a_gateway_process_with_exit_0() {
    let database = TestDatabase::create().await.unwrap();
    let packages_dir = tempfile::tempdir().unwrap();
    let admin_key = frameos_control_plane::generate_api_key();
    let env = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let mut control_plane = ServiceProcess::spawn(
        "control plane",
        env!("CARGO_BIN_EXE_frameos-test-control-plane"),
        &env(&[
            ("FRAMEOS_DATABASE_URL", &database.url),
            ("FRAMEOS_MIGRATE", "true"),
            ("FRAMEOS_GRPC_ADDR", "127.0.0.1:0"),
            ("FRAMEOS_BOOTSTRAP_ADMIN_KEY", &admin_key),
            (
                "FRAMEOS_PACKAGE_DIR",
                &packages_dir.path().display().to_string(),
            ),
        ]),
    )
    .unwrap();
    let serving = control_plane
        .wait_for_log("control plane serving", STARTUP)
        .await
        .unwrap();
    let grpc_addr = serving["addr"].as_str().unwrap().to_string();
    let mut gateway = ServiceProcess::spawn(
        "gateway",
        env!("CARGO_BIN_EXE_frameos-test-gateway"),
        &env(&[
            ("FRAMEOS_HTTP_ADDR", "127.0.0.1:0"),
            ("FRAMEOS_CONTROL_PLANE_URL", &format!("http://{grpc_addr}")),
        ]),
    )
    .unwrap();
    let serving = gateway
        .wait_for_log("gateway serving", STARTUP)
        .await
        .unwrap();
    let http_addr = serving["addr"].as_str().unwrap().to_string();
    let ready = reqwest::get(format!("http://{http_addr}/readyz"))
        .await
        .unwrap();
    assert_eq!(ready.status(), 200, "the mesh is up before it is stopped");

    // Each stops well within its default grace of 30 s, and says it stopped.
    let within = Duration::from_secs(35);
    gateway.signal("TERM").unwrap();
    let status = gateway.exit_status(within).await.unwrap();
    assert_eq!(status.code(), Some(0), "{:?}", gateway.messages());
    assert!(
        gateway.messages().iter().any(|m| m == "stopped"),
        "{:?}",
        gateway.messages()
    );

    control_plane.signal("TERM").unwrap();
    let status = control_plane.exit_status(within).await.unwrap();
    assert_eq!(status.code(), Some(0), "{:?}", control_plane.messages());
    let messages = control_plane.messages();
    // Readiness went off first, and the outbox relay stopped before the server closed.
    let position = |what: &str| {
        messages
            .iter()
            .position(|m| m == what)
            .unwrap_or_else(|| panic!("no {what:?} in {messages:?}"))
    };
    assert!(position("readiness off: NOT_SERVING") < position("outbox relay stopped"));
    assert!(position("outbox relay stopped") < position("stopped"));
    database.drop_database().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_control_plane_reports_not_serving_before_it_stops_serving() {
    use frameos_integration_tests::health::{
        NOT_SERVING, SERVING, Served, embedded_config, next_status, watch,
    };

    let dir = tempfile::tempdir().unwrap();
    let not_ready = tokio_util::sync::CancellationToken::new();
    let server = frameos_control_plane::Server::bind(embedded_config(dir.path()))
        .await
        .unwrap()
        .not_ready_on(not_ready.clone());
    let served = Served::start(server);
    let mut health = served.health().await;
    let mut readiness = watch(&mut health, "").await;
    assert_eq!(next_status(&mut readiness).await, SERVING);

    // `frameos dev` turns readiness off first and keeps serving while its node drains.
    not_ready.cancel();
    // It answered that (the watch is a call it serves): not ready, yet still serving until its
    // own shutdown.
    assert_eq!(next_status(&mut readiness).await, NOT_SERVING);
    drop((readiness, health));
    served.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hand_back_is_fenced_by_the_attempt_and_queues_the_job_again() {
    use frameos_core::ExecutionStatus;
    use frameos_proto::{ProtoEnum, v1};

    let (mesh, user) = mesh_with_sleeper(10).await;
    let id = mesh.execute(&user, "sleeper", json!({})).await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let probe = frameos_queue::Queue::amqp(
        &frameos_integration_tests::amqp_url(),
        mesh.queue_topology(),
    )
    .await
    .unwrap();
    let depth_reaches = |n: u32| {
        let probe = probe.clone();
        async move {
            let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
            while probe.depth().await.unwrap() < n {
                assert!(
                    tokio::time::Instant::now() < deadline,
                    "depth never reached {n}"
                );
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    };
    depth_reaches(1).await;

    let mut nodes = mesh.node_client().await.unwrap();
    let claim = |node: &'static str| v1::ClaimExecutionRequest {
        node_id: node.into(),
        execution_id: id.clone(),
        instance_id: format!("{node}-1"),
    };
    let release = |attempt: u32| v1::ReleaseExecutionRequest {
        node_id: "node-a".into(),
        execution_id: id.clone(),
        attempt,
        reason: "test".into(),
    };
    assert_eq!(
        nodes
            .claim_execution(claim("node-a"))
            .await
            .unwrap()
            .into_inner()
            .attempt,
        1
    );
    // node-a restarts (a new registration): its claim is dead, so node-b takes over.
    nodes
        .register_node(v1::RegisterNodeRequest {
            node_id: "node-a".into(),
            concurrency: 1,
            instance_id: "node-a-2".into(),
        })
        .await
        .unwrap();
    assert_eq!(
        nodes
            .claim_execution(claim("node-b"))
            .await
            .unwrap()
            .into_inner()
            .attempt,
        2
    );

    // Attempt 1 no longer owns the execution: its hand-back changes nothing.
    let stale = nodes.release_execution(release(1)).await.unwrap_err();
    assert_eq!(stale.code(), tonic::Code::FailedPrecondition, "{stale:?}");
    let error = frameos_proto::status::from_status(&stale);
    assert_eq!(error.code.as_str(), "stale_attempt", "{error}");
    let running = execution(&mesh, &user, &id).await;
    assert_eq!(
        (running["status"].as_str(), running["attempts"].as_u64()),
        (Some("running"), Some(2))
    );

    // The current attempt's hand-back queues it again, with a new message for the next node.
    let released = nodes
        .release_execution(release(2))
        .await
        .unwrap()
        .into_inner();
    assert_eq!(released.status, ExecutionStatus::Queued.to_proto());
    let queued = execution(&mesh, &user, &id).await;
    assert_eq!(
        (queued["status"].as_str(), queued["attempts"].as_u64()),
        (Some("queued"), Some(2))
    );
    depth_reaches(2).await;
    // Twice is refused: attempt 2 no longer runs it.
    let again = nodes.release_execution(release(2)).await.unwrap_err();
    assert_eq!(
        frameos_proto::status::from_status(&again).code.as_str(),
        "stale_attempt"
    );
    probe.close().await;
    mesh.shutdown().await.unwrap();
}
