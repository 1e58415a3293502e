//! Delivery guarantees: fencing of stale attempts, redelivery after a node is killed, the
//! transactional outbox across a broker outage, and priorities.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::time::Duration;

use frameos_integration_tests::broker_proxy::BrokerProxy;
use frameos_integration_tests::{Backend, Mesh, amqp_url, packages};
use frameos_proto::v1::{self, execution_report::Report, node_service_client::NodeServiceClient};
use reqwest::Method;
use serde_json::{Value, json};

/// Presents a node token, as execution nodes do.
#[derive(Clone)]
struct Token(String);

impl tonic::service::Interceptor for Token {
    fn call(
        &mut self,
        mut request: tonic::Request<()>,
    ) -> Result<tonic::Request<()>, tonic::Status> {
        request.metadata_mut().insert(
            "authorization",
            format!("Bearer {}", self.0).parse().unwrap(),
        );
        Ok(request)
    }
}

type Nodes =
    NodeServiceClient<tonic::codegen::InterceptedService<tonic::transport::Channel, Token>>;

async fn nodes_with(mesh: &Mesh, token: &str) -> Nodes {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", mesh.grpc_addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    NodeServiceClient::with_interceptor(channel, Token(token.to_string()))
}

async fn nodes(mesh: &Mesh) -> Nodes {
    nodes_with(mesh, &mesh.node_token).await
}

fn report(id: &str, attempt: u32, body: Option<Report>) -> v1::ExecutionReport {
    v1::ExecutionReport {
        execution_id: id.to_string(),
        attempt,
        report: body,
    }
}

async fn claim(client: &mut Nodes, node: &str, id: &str) -> v1::ClaimExecutionResponse {
    client
        .claim_execution(v1::ClaimExecutionRequest {
            node_id: node.into(),
            execution_id: id.into(),
        })
        .await
        .unwrap()
        .into_inner()
}

/// Sends `reports` on one stream; returns the first reply (or the error).
async fn send(
    client: &mut Nodes,
    reports: Vec<v1::ExecutionReport>,
) -> Result<v1::ReportReply, tonic::Status> {
    let mut replies = client
        .report_execution(tokio_stream::iter(reports))
        .await?
        .into_inner();
    match replies.message().await? {
        Some(reply) => Ok(reply),
        None => Err(tonic::Status::aborted("stream ended without a reply")),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reports_from_a_stale_attempt_are_refused() {
    let mesh = Mesh::with_queue(Backend::PostgresS3, |_| {}).await.unwrap();
    let dev = mesh.account("dev", "developer").await.unwrap();
    let user = mesh.account("uma", "user").await.unwrap();
    mesh.publish_approved(&dev, "word-count", packages::example("word-count"), None)
        .await
        .unwrap();
    let accepted = mesh
        .execute(&user, "word-count", json!({"text": "a"}))
        .await
        .unwrap();
    let id = accepted["id"].as_str().unwrap();

    // Without the node token nobody may claim or report.
    let mut impostor = nodes_with(&mesh, "not-the-token").await;
    let refused = impostor
        .claim_execution(v1::ClaimExecutionRequest {
            node_id: "evil".into(),
            execution_id: id.into(),
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    assert!(
        send(&mut impostor, vec![report(id, 1, None)])
            .await
            .is_err()
    );

    let mut client = nodes(&mesh).await;
    let first = claim(&mut client, "node-a", id).await;
    assert_eq!(first.decision, v1::ClaimDecision::Run as i32);
    assert_eq!(first.attempt, 1);
    assert_eq!(first.runtime, "node");
    // The job is redelivered to another node: attempt 2 now owns the execution.
    let second = claim(&mut client, "node-b", id).await;
    assert_eq!(second.attempt, 2);

    // The old attempt is refused, as soon as it speaks.
    let stale = send(&mut client, vec![report(id, 1, None)])
        .await
        .unwrap_err();
    assert_eq!(stale.code(), tonic::Code::FailedPrecondition, "{stale:?}");
    let outcome = v1::Outcome {
        status: "succeeded".into(),
        output_json: Some("\"old\"".into()),
        ..Default::default()
    };
    let stale = send(
        &mut client,
        vec![report(id, 1, Some(Report::Outcome(outcome)))],
    )
    .await
    .unwrap_err();
    assert_eq!(stale.code(), tonic::Code::FailedPrecondition);

    // The current attempt records the one result.
    let output = json!({"words": 1, "lines": 1, "characters": 1, "top_words": []});
    let outcome = v1::Outcome {
        status: "succeeded".into(),
        output_json: Some(output.to_string()),
        ..Default::default()
    };
    let reply = send(
        &mut client,
        vec![
            report(id, 2, None),
            report(id, 2, Some(Report::Outcome(outcome))),
        ],
    )
    .await
    .unwrap();
    assert!(
        matches!(reply.reply, Some(v1::report_reply::Reply::Recorded(ref r)) if r.status == "succeeded"),
        "{reply:?}"
    );

    // A late report of attempt 1 cannot overwrite it, and a claim now skips.
    let outcome = v1::Outcome {
        status: "failed".into(),
        error: Some("late".into()),
        ..Default::default()
    };
    assert!(
        send(
            &mut client,
            vec![report(id, 1, Some(Report::Outcome(outcome)))]
        )
        .await
        .is_err()
    );
    assert_eq!(
        claim(&mut client, "node-c", id).await.decision,
        v1::ClaimDecision::Skip as i32
    );
    let done: Value = mesh
        .request(Method::GET, &format!("/v1/executions/{id}"), Some(&user))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(done["status"], "succeeded");
    assert_eq!(done["attempts"], 2);
    assert_eq!(done["output"], output);
    mesh.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_killed_node_leads_to_redelivery_and_exactly_one_result() {
    let mut mesh = Mesh::with_queue(Backend::PostgresS3, |_| {}).await.unwrap();
    let dev = mesh.account("dev", "developer").await.unwrap();
    let user = mesh.account("uma", "user").await.unwrap();
    let slow = "module.exports = async (inputs, ctx) => { ctx.progress(0.5, 'halfway'); await new Promise(r => setTimeout(r, 1500)); return { done: true }; };";
    mesh.publish_approved(
        &dev,
        "slow",
        packages::node_agent_with("slow", slow, 60_000, 128),
        None,
    )
    .await
    .unwrap();

    let cache = tempfile::tempdir().unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_frameos-test-node"))
        .envs(mesh.node_env(cache.path()))
        .env("FRAMEOS_NODE_ID", "doomed-node")
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let accepted = mesh.execute(&user, "slow", json!({})).await.unwrap();
    let id = accepted["id"].as_str().unwrap().to_string();

    // Once the first attempt is running (it reported progress), kill its node outright.
    mesh.wait_for_event(&user, &id, "progress").await.unwrap();
    child.start_kill().unwrap();
    child.wait().await.unwrap();

    // The broker redelivers the unacked job to a healthy node: attempt 2, one result.
    mesh.start_node(1).await.unwrap();
    let (_, done) = mesh.follow(&user, &id).await.unwrap();
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["attempts"], 2, "{done}");
    assert_eq!(done["output"], json!({"done": true}));
    assert!(frameos_integration_tests::flows::containers_of(&id).is_empty());
    mesh.shutdown().await.unwrap();
}

/// Waits (bounded; the broker offers no event for it) until the job queue holds `n` messages.
async fn wait_for_depth(probe: &frameos_queue::Queue, n: u32, within: Duration, what: &str) {
    let deadline = std::time::Instant::now() + within;
    while probe.depth().await.unwrap() < n {
        assert!(std::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_outbox_publishes_what_was_committed_while_the_broker_was_down() {
    // The control plane reaches the broker only through a proxy that is "down" for now.
    let proxy = BrokerProxy::start(&amqp_url(), false).await.unwrap();
    let url = proxy.url().to_string();
    let mut mesh = Mesh::with_queue(Backend::PostgresS3, |config| config.amqp_url = Some(url))
        .await
        .unwrap();
    let dev = mesh.account("dev", "developer").await.unwrap();
    let user = mesh.account("uma", "user").await.unwrap();
    mesh.publish_approved(&dev, "word-count", packages::example("word-count"), None)
        .await
        .unwrap();

    // Accepted and committed although the broker is unreachable.
    let accepted = mesh
        .execute(&user, "word-count", json!({"text": "still here"}))
        .await
        .unwrap();
    let id = accepted["id"].as_str().unwrap().to_string();
    assert_eq!(accepted["status"], "queued");
    // A node connected straight to RabbitMQ sees nothing yet.
    mesh.start_node_with(1, |node| node.amqp_url = Some(amqp_url()))
        .await
        .unwrap();
    let probe = frameos_queue::Queue::amqp(&amqp_url(), mesh.queue_topology())
        .await
        .unwrap();
    assert_eq!(probe.depth().await.unwrap(), 0);
    let (_, status) = (
        0,
        mesh.request(Method::GET, &format!("/v1/executions/{id}"), Some(&user))
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap(),
    );
    assert_eq!(status["status"], "queued");

    // The broker comes back: the relay reconnects, publishes, and the execution runs.
    proxy.set_up(true);
    let (_, done) = tokio::time::timeout(Duration::from_secs(30), mesh.follow(&user, &id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["output"]["words"], 2);
    probe.close().await;
    mesh.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn paid_jobs_run_before_a_backlog_of_free_ones() {
    let mut mesh = Mesh::with_queue(Backend::PostgresS3, |_| {}).await.unwrap();
    let dev = mesh.account("dev", "developer").await.unwrap();
    let user = mesh.account("uma", "user").await.unwrap();
    let code = "module.exports = async () => 'ok';";
    mesh.publish_approved(
        &dev,
        "free-agent",
        packages::node_agent_with("free-agent", code, 20_000, 128),
        None,
    )
    .await
    .unwrap();
    mesh.publish_approved(
        &dev,
        "paid-agent",
        packages::node_agent_with("paid-agent", code, 20_000, 128),
        Some(5000),
    )
    .await
    .unwrap();

    // No node yet: a backlog of free jobs, then one paid job.
    let mut ids = Vec::new();
    for _ in 0..3 {
        ids.push(
            mesh.execute(&user, "free-agent", json!({})).await.unwrap()["id"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    let paid = mesh.execute(&user, "paid-agent", json!({})).await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    // Wait for the relay to have published all four (bounded; no event exists for this).
    let probe = frameos_queue::Queue::amqp(&amqp_url(), mesh.queue_topology())
        .await
        .unwrap();
    wait_for_depth(
        &probe,
        4,
        Duration::from_secs(10),
        "jobs were not published",
    )
    .await;
    probe.close().await;

    // One node, one job at a time: the paid job goes first.
    mesh.start_node(1).await.unwrap();
    let mut started = Vec::new();
    for id in ids.iter().chain(std::iter::once(&paid)) {
        let (_, done) = mesh.follow(&user, id).await.unwrap();
        assert_eq!(done["status"], "succeeded", "{done}");
        started.push((done["started_at"].as_str().unwrap().to_string(), id.clone()));
    }
    started.sort();
    assert_eq!(started[0].1, paid, "order: {started:?}");
    mesh.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn platform_failures_are_retried_then_dead_lettered_never_dropped() {
    let mut mesh = Mesh::with_queue(Backend::PostgresS3, |config| {
        config.job_max_attempts = 2;
        config.job_retry_base_ms = 200;
    })
    .await
    .unwrap();
    let dev = mesh.account("dev", "developer").await.unwrap();
    let user = mesh.account("uma", "user").await.unwrap();
    mesh.publish_approved(&dev, "word-count", packages::example("word-count"), None)
        .await
        .unwrap();
    // The stored package is tampered with after review: its digest no longer matches, so every
    // node refuses to run it. That is the platform's failure, not the agent's.
    let (_, agent) = (
        0,
        mesh.request(Method::GET, "/v1/agents/word-count", None)
            .send()
            .await
            .unwrap()
            .json::<Value>()
            .await
            .unwrap(),
    );
    let key = format!("agents/{}/v1.0.0.tar.gz", agent["id"].as_str().unwrap());
    mesh.store
        .put(&key, bytes::Bytes::from_static(b"tampered"))
        .await
        .unwrap();
    mesh.start_node(1).await.unwrap();

    let accepted = mesh
        .execute(&user, "word-count", json!({"text": "a"}))
        .await
        .unwrap();
    let id = accepted["id"].as_str().unwrap().to_string();
    let (_, done) = tokio::time::timeout(Duration::from_secs(30), mesh.follow(&user, &id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(done["status"], "failed", "{done}");
    assert!(
        done["error"].as_str().unwrap().contains("platform"),
        "{done}"
    );
    // Both deliveries claimed it: the retry happened before the job was dead-lettered.
    assert_eq!(done["attempts"], 2, "{done}");
    mesh.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_relay_skips_outbox_rows_another_replica_is_publishing() {
    use sea_orm::{ConnectionTrait, Database, TransactionTrait};
    // The broker is unreachable while the backlog is created.
    let proxy = BrokerProxy::start(&amqp_url(), false).await.unwrap();
    let url = proxy.url().to_string();
    let mesh = Mesh::with_queue(Backend::PostgresS3, |config| config.amqp_url = Some(url))
        .await
        .unwrap();
    let dev = mesh.account("dev", "developer").await.unwrap();
    let user = mesh.account("uma", "user").await.unwrap();
    mesh.publish_approved(&dev, "word-count", packages::example("word-count"), None)
        .await
        .unwrap();
    let mut ids = Vec::new();
    for i in 0..3 {
        let accepted = mesh
            .execute(&user, "word-count", json!({"text": format!("job {i}")}))
            .await
            .unwrap();
        ids.push(accepted["id"].as_str().unwrap().to_string());
    }

    // Another replica's relay holds the first row (it locked it for its own batch).
    let db = Database::connect(mesh.database_url()).await.unwrap();
    let other_replica = db.begin().await.unwrap();
    other_replica
        .execute_unprepared(&format!(
            "SELECT id FROM outbox WHERE execution_id = '{}' FOR UPDATE",
            ids[0]
        ))
        .await
        .unwrap();

    proxy.set_up(true);
    let probe = frameos_queue::Queue::amqp(&amqp_url(), mesh.queue_topology())
        .await
        .unwrap();
    wait_for_depth(
        &probe,
        2,
        Duration::from_secs(20),
        "the unlocked rows were not published",
    )
    .await;
    // The locked row is left to its holder: only the two others were published.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        probe.depth().await.unwrap(),
        2,
        "a row locked by another relay was published"
    );

    // Once the other replica lets go without publishing, this relay picks the row up.
    other_replica.rollback().await.unwrap();
    wait_for_depth(
        &probe,
        3,
        Duration::from_secs(20),
        "the released row was not published",
    )
    .await;
    probe.close().await;
    db.close().await.unwrap();
    mesh.shutdown().await.unwrap();
}
