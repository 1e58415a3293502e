//! Delivery guarantees: fencing of stale attempts, duplicated jobs that never steal a live
//! claim, hand-backs, the transactional outbox across a broker outage and a control plane
//! restart, priorities, retries and dead letters. (Lost jobs and dead nodes: `recovery.rs`.)

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::time::Duration;

use frameos_core::{ExecutionStatus, Runtime};
use frameos_integration_tests::broker_proxy::BrokerProxy;
use frameos_integration_tests::{Backend, Mesh, amqp_url, packages};
use frameos_proto::ProtoEnum;
use frameos_proto::v1::{
    self, node_service_client::NodeServiceClient, report_execution_request::Report,
};
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

fn report(id: &str, attempt: u32, body: Option<Report>) -> v1::ReportExecutionRequest {
    v1::ReportExecutionRequest {
        execution_id: id.to_string(),
        attempt,
        report: body,
    }
}

/// Claims as the process `instance` of node `node`.
async fn claim(
    client: &mut Nodes,
    node: &str,
    instance: &str,
    id: &str,
) -> v1::ClaimExecutionResponse {
    client
        .claim_execution(v1::ClaimExecutionRequest {
            node_id: node.into(),
            execution_id: id.into(),
            instance_id: instance.into(),
        })
        .await
        .unwrap()
        .into_inner()
}

/// The public error code a status carries in its metadata (`""` when it carries none).
fn error_code(status: &tonic::Status) -> String {
    status
        .metadata()
        .get("frameos-error-code")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string()
}

/// Sends `reports` on one stream; returns the first reply (or the error).
async fn send(
    client: &mut Nodes,
    reports: Vec<v1::ReportExecutionRequest>,
) -> Result<v1::ReportExecutionResponse, tonic::Status> {
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
            instance_id: "i1".into(),
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
    let first = claim(&mut client, "node-a", "a-1", id).await;
    assert_eq!(first.decision, v1::ClaimDecision::Run as i32);
    assert_eq!(first.attempt, 1);
    assert_eq!(first.runtime, Runtime::Node.to_proto());
    // A duplicate message reaches node-b while node-a's claim lives: nothing is taken over.
    let duplicate = claim(&mut client, "node-b", "b-1", id).await;
    assert_eq!(duplicate.decision, v1::ClaimDecision::Skip as i32);
    // node-a restarts under the same node id: its old claim dies with its old registration,
    // and the redelivered job is claimed by node-b as attempt 2.
    client
        .register_node(v1::RegisterNodeRequest {
            node_id: "node-a".into(),
            concurrency: 1,
            instance_id: "a-2".into(),
        })
        .await
        .unwrap();
    let second = claim(&mut client, "node-b", "b-1", id).await;
    assert_eq!(second.decision, v1::ClaimDecision::Run as i32);
    assert_eq!(second.attempt, 2);

    // The old attempt is refused as stale, as soon as it speaks — with the public code that
    // tells a node to ack and stop, not any other failed precondition.
    let stale = send(&mut client, vec![report(id, 1, None)])
        .await
        .unwrap_err();
    assert_eq!(stale.code(), tonic::Code::FailedPrecondition, "{stale:?}");
    assert_eq!(error_code(&stale), "stale_attempt", "{stale:?}");
    let outcome = v1::Outcome {
        status: ExecutionStatus::Succeeded.to_proto(),
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
    assert_eq!(error_code(&stale), "stale_attempt", "{stale:?}");

    // The current attempt records the one result.
    let output = json!({"words": 1, "lines": 1, "characters": 1, "top_words": []});
    let outcome = v1::Outcome {
        status: ExecutionStatus::Succeeded.to_proto(),
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
        matches!(reply.reply, Some(v1::report_execution_response::Reply::Recorded(ref r)) if r.status == ExecutionStatus::Succeeded.to_proto()),
        "{reply:?}"
    );

    // A late report of attempt 1 cannot overwrite it, and a claim now skips.
    let outcome = v1::Outcome {
        status: ExecutionStatus::Failed.to_proto(),
        error: Some("late".into()),
        ..Default::default()
    };
    let late = send(
        &mut client,
        vec![report(id, 1, Some(Report::Outcome(outcome)))],
    )
    .await
    .unwrap_err();
    assert_eq!(error_code(&late), "stale_attempt", "{late:?}");
    assert_eq!(
        claim(&mut client, "node-c", "c-1", id).await.decision,
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

    // The control plane restarts during the outage: the job lives on only in its database.
    mesh.restart_control_plane(|_| {}).await.unwrap();
    let status: Value = mesh
        .request(Method::GET, &format!("/v1/executions/{id}"), Some(&user))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["status"], "queued", "{status}");
    // Nothing consumes this queue yet, so its depth is what reached the broker: nothing.
    let probe = frameos_queue::Queue::amqp(&amqp_url(), mesh.queue_topology())
        .await
        .unwrap();
    assert_eq!(probe.depth().await.unwrap(), 0);

    // The broker comes back: the restarted relay reconnects and publishes the job, once.
    proxy.set_up(true);
    wait_for_depth(
        &probe,
        1,
        Duration::from_secs(30),
        "the job accepted during the outage never reached the broker",
    )
    .await;
    assert_eq!(probe.depth().await.unwrap(), 1);

    // A node connected straight to RabbitMQ runs it.
    mesh.start_node_with(1, |node| node.amqp_url = Some(amqp_url()))
        .await
        .unwrap();
    let (_, done) = tokio::time::timeout(Duration::from_secs(30), mesh.follow(&user, &id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["output"]["words"], 2);
    assert_eq!(done["attempts"], 1, "{done}");
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

/// An agent that says when it starts, then runs for a few seconds.
const SLOW_AGENT: &str = "module.exports = async (inputs, ctx) => { console.log('started'); ctx.progress(0.5, 'halfway'); await new Promise(r => setTimeout(r, 4000)); return { done: true }; };";

/// Publishes the job of a running execution a second time, as a broker redelivery or a relay
/// that crashed between confirm and commit would, with nodes of the given concurrencies.
async fn a_duplicate_job_while_running(node_concurrency: &[u16]) {
    let mut mesh = Mesh::with_queue(Backend::PostgresS3, |_| {}).await.unwrap();
    let dev = mesh.account("dev", "developer").await.unwrap();
    let user = mesh.account("uma", "user").await.unwrap();
    mesh.publish_approved(
        &dev,
        "slow",
        packages::node_agent_with("slow", SLOW_AGENT, 60_000, 128),
        None,
    )
    .await
    .unwrap();
    for &concurrency in node_concurrency {
        mesh.start_node(concurrency).await.unwrap();
    }
    let id = mesh.execute(&user, "slow", json!({})).await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    mesh.wait_for_event(&user, &id, "progress").await.unwrap();

    let probe = frameos_queue::Queue::amqp(&amqp_url(), mesh.queue_topology())
        .await
        .unwrap();
    probe
        .publish(&frameos_queue::Job::new(id.clone(), 1))
        .await
        .unwrap();
    // A node took the duplicate while the first attempt still runs (a claim takes
    // milliseconds; the agent runs for seconds).
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while probe.backlog().await.unwrap() != Some(0) {
        assert!(
            std::time::Instant::now() < deadline,
            "the duplicate was never taken"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, done) = mesh.follow(&user, &id).await.unwrap();
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(
        done["attempts"], 1,
        "the duplicate started a second attempt: {done}"
    );
    assert_eq!(done["output"], json!({"done": true}));
    let lines = mesh.log_lines(&user, &id).await.unwrap();
    let started = lines.iter().filter(|l| l["line"] == "started").count();
    assert_eq!(started, 1, "{lines:?}");
    // No hand-back, take-over or dead letter: the platform wrote nothing about this run.
    assert!(lines.iter().all(|l| l["stream"] != "system"), "{lines:?}");
    // The duplicate was acked, not retried: nothing waits in the job or retry queues.
    assert_eq!(probe.backlog().await.unwrap(), Some(0));
    probe.close().await;
    mesh.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_duplicate_job_taken_by_another_node_does_not_steal_a_live_claim() {
    // Each node runs one job at a time: the busy one cannot take the duplicate, the other does.
    a_duplicate_job_while_running(&[1, 1]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_duplicate_job_taken_by_the_node_running_it_is_acked() {
    a_duplicate_job_while_running(&[2]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_handed_back_attempt_is_queued_again_and_fenced() {
    let mesh = Mesh::with_queue(Backend::PostgresS3, |_| {}).await.unwrap();
    let dev = mesh.account("dev", "developer").await.unwrap();
    let user = mesh.account("uma", "user").await.unwrap();
    mesh.publish_approved(&dev, "word-count", packages::example("word-count"), None)
        .await
        .unwrap();
    let id = mesh
        .execute(&user, "word-count", json!({"text": "a"}))
        .await
        .unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut client = nodes(&mesh).await;
    assert_eq!(
        claim(&mut client, "node-a", "a-1", id.as_str())
            .await
            .attempt,
        1
    );

    // The node cannot run it (say Docker went away) and gives it back before retrying the job.
    let back = Report::HandBack(v1::HandBack {
        reason: "docker is unavailable".into(),
    });
    let reply = send(
        &mut client,
        vec![report(&id, 1, None), report(&id, 1, Some(back))],
    )
    .await
    .unwrap();
    assert!(
        matches!(reply.reply, Some(v1::report_execution_response::Reply::Recorded(ref r)) if r.status == ExecutionStatus::Queued.to_proto()),
        "{reply:?}"
    );
    let now: Value = mesh
        .request(Method::GET, &format!("/v1/executions/{id}"), Some(&user))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(now["status"], "queued", "{now}");
    let lines = mesh.log_lines(&user, &id).await.unwrap();
    assert!(
        lines.iter().any(|l| l["stream"] == "system"
            && l["line"]
                .as_str()
                .unwrap()
                .contains("docker is unavailable")),
        "{lines:?}"
    );
    // The attempt that gave it back is fenced off, and any node (even another) claims it now.
    let late = send(&mut client, vec![report(&id, 1, None)])
        .await
        .unwrap_err();
    assert_eq!(error_code(&late), "stale_attempt", "{late:?}");
    let next = claim(&mut client, "node-b", "b-1", &id).await;
    assert_eq!(next.decision, v1::ClaimDecision::Run as i32);
    assert_eq!(next.attempt, 2);
    mesh.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_told_its_attempt_is_stale_stops_it_and_acks_the_job() {
    use sea_orm::{ConnectionTrait, Database};
    let mut mesh = Mesh::with_queue(Backend::PostgresS3, |config| {
        config.recovery.reaper_interval_secs = 1;
        config.recovery.node_dead_after_secs = 3;
        // A retried job would wait a minute in a delay queue, in plain sight of the probe.
        config.job_retry_base_ms = 60_000;
    })
    .await
    .unwrap();
    let dev = mesh.account("dev", "developer").await.unwrap();
    let user = mesh.account("uma", "user").await.unwrap();
    let long = "module.exports = async (inputs, ctx) => { console.log('started'); ctx.progress(0.5, 'halfway'); await new Promise(r => setTimeout(r, 2500)); return { done: true }; };";
    mesh.publish_approved(
        &dev,
        "slow",
        packages::node_agent_with("slow", long, 60_000, 128),
        None,
    )
    .await
    .unwrap();
    mesh.start_node(1).await.unwrap();
    let id = mesh.execute(&user, "slow", json!({})).await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    mesh.wait_for_event(&user, &id, "progress").await.unwrap();

    // The claim now names a registration the node no longer has (as after a partition in
    // which the node was replaced): it is dead, and the reaper takes the execution back.
    let db = Database::connect(mesh.database_url()).await.unwrap();
    let changed = db
        .execute_unprepared(&format!(
            "UPDATE execution_claims SET registration = 'superseded' WHERE execution_id = '{id}'"
        ))
        .await
        .unwrap();
    assert_eq!(changed.rows_affected(), 1);
    db.close().await.unwrap();

    // The node hears that attempt 1 is stale, stops it and acks its job; the job the reaper
    // queued runs as attempt 2.
    let (_, done) = mesh.follow(&user, &id).await.unwrap();
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["attempts"], 2, "{done}");
    let lines = mesh.log_lines(&user, &id).await.unwrap();
    assert!(
        lines.iter().any(|l| l["stream"] == "system"
            && l["line"].as_str().unwrap().contains("attempt 1 was lost")),
        "{lines:?}"
    );
    // Acked, not retried: no copy of the job waits out a back-off.
    let probe = frameos_queue::Queue::amqp(&amqp_url(), mesh.queue_topology())
        .await
        .unwrap();
    assert_eq!(probe.backlog().await.unwrap(), Some(0));
    probe.close().await;
    mesh.shutdown().await.unwrap();
}
