//! Fair use of shared resources (ADR 0010): one account flooding event streams, requests or
//! the queue gets told to slow down or waits its turn — and another account is served all along.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use frameos_core::ExecutionStatus;
use frameos_integration_tests::{Backend, Mesh, packages};
use frameos_proto::ProtoEnum;
use frameos_proto::v1::{self, execution_service_client, watch_execution_response::Event};
use reqwest::Method;
use serde_json::{Value, json};

/// Sleeps `inputs.ms` milliseconds, after a progress report.
const SLOW: &str = "module.exports = async (inputs, ctx) => { ctx.progress(0.1, 'waiting'); \
    await new Promise(r => setTimeout(r, inputs.ms)); return { slept: inputs.ms }; };";

async fn publish_agents(mesh: &Mesh) -> (String, String) {
    let dev = mesh.account("dev", "developer").await.unwrap();
    mesh.publish_approved(
        &dev,
        "slow",
        packages::node_agent_with("slow", SLOW, 120_000, 128),
        None,
    )
    .await
    .unwrap();
    mesh.publish_approved(&dev, "word-count", packages::example("word-count"), None)
        .await
        .unwrap();
    let alice = mesh.account("alice", "user").await.unwrap();
    let bob = mesh.account("bob", "user").await.unwrap();
    (alice, bob)
}

async fn execute(mesh: &Mesh, key: &str, slug: &str, inputs: Value) -> String {
    let accepted = mesh.execute(key, slug, inputs).await.unwrap();
    accepted["id"].as_str().unwrap().to_string()
}

async fn cancel(mesh: &Mesh, key: &str, id: &str) {
    let response = mesh
        .request(
            Method::POST,
            &format!("/v1/executions/{id}/cancel"),
            Some(key),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
}

async fn open_events(mesh: &Mesh, key: &str, id: &str) -> reqwest::Response {
    mesh.request(
        Method::GET,
        &format!("/v1/executions/{id}/events"),
        Some(key),
    )
    .send()
    .await
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stream_flood_by_one_account_leaves_another_accounts_events_alone() {
    // The gateway's total is within one account's reach: only a bound per account keeps it
    // from taking every place.
    let mesh = Mesh::start_tuned(
        Backend::PostgresS3,
        true,
        |_| {},
        |gateway| {
            gateway.max_streams_per_account = 4;
            gateway.max_event_streams = 6;
        },
    )
    .await
    .unwrap();
    let (alice, bob) = publish_agents(&mesh).await;
    let hog = execute(&mesh, &alice, "slow", json!({"ms": 60_000})).await;

    let mut open = Vec::new();
    let mut refused = Vec::new();
    for _ in 0..7 {
        let response = open_events(&mesh, &alice, &hog).await;
        if response.status() == 200 {
            open.push(response);
        } else {
            refused.push((response.status(), response.json::<Value>().await.unwrap()));
        }
    }

    // Bob watches his own run to its end while Alice holds every stream she may.
    let (events, done) = tokio::time::timeout(
        Duration::from_secs(90),
        mesh.run(&bob, "word-count", json!({"text": "fair is fair"})),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["output"]["words"], 3, "{done}");
    assert!(events.iter().any(|e| e.kind == "log"), "{events:?}");
    // Alice was told she is at her own limit.
    assert_eq!(open.len(), 4, "refused: {refused:?}");
    for (status, body) in &refused {
        assert_eq!(*status, 429, "{body}");
        assert_eq!(body["error"]["code"], "rate_limited", "{body}");
    }

    // A stream that ends gives its place back to Alice.
    drop(open.pop());
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let response = open_events(&mesh, &alice, &hog).await;
        if response.status() == 200 {
            open.push(response);
            break;
        }
        assert_eq!(response.status(), 429);
        assert!(
            Instant::now() < deadline,
            "a closed stream's place never came back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(open);
    cancel(&mesh, &alice, &hog).await;
    mesh.shutdown().await.unwrap();
}

type Executions = execution_service_client::ExecutionServiceClient<tonic::transport::Channel>;

fn watch(id: &str, key: &str) -> tonic::Request<v1::WatchExecutionRequest> {
    let mut request = tonic::Request::new(v1::WatchExecutionRequest {
        id: id.to_string(),
        after_seq: 0,
    });
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {key}").parse().unwrap());
    request
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_watch_flood_by_one_key_on_grpc_leaves_another_accounts_watch_alone() {
    let mesh = Mesh::start_tuned(
        Backend::PostgresS3,
        true,
        |config| {
            config.fair_use.max_streams_per_account = 4;
            config.fair_use.max_event_streams = 6;
        },
        |_| {},
    )
    .await
    .unwrap();
    let (alice, bob) = publish_agents(&mesh).await;
    let hog = execute(&mesh, &alice, "slow", json!({"ms": 60_000})).await;
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{}", mesh.grpc_addr))
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut client = Executions::new(channel);

    let mut open = Vec::new();
    let mut refused = Vec::new();
    for _ in 0..7 {
        match client.watch_execution(watch(&hog, &alice)).await {
            Ok(stream) => open.push(stream.into_inner()),
            Err(status) => refused.push(status),
        }
    }

    // Bob's own watch runs to the final status.
    let id = execute(&mesh, &bob, "word-count", json!({"text": "fair is fair"})).await;
    let mut events = client
        .watch_execution(watch(&id, &bob))
        .await
        .unwrap()
        .into_inner();
    let mut last_status = None;
    let followed = tokio::time::timeout(Duration::from_secs(90), async {
        while let Some(event) = events.message().await.unwrap() {
            if let Some(Event::Status(execution)) = event.event {
                last_status = Some(ExecutionStatus::from_proto(execution.status).unwrap());
            }
        }
    })
    .await;
    assert!(followed.is_ok(), "bob's watch did not end");
    assert_eq!(last_status, Some(ExecutionStatus::Succeeded));
    // Alice was told she is at her own limit, with the public code.
    assert_eq!(open.len(), 4, "refused: {refused:?}");
    for status in &refused {
        assert_eq!(status.code(), tonic::Code::ResourceExhausted, "{status:?}");
        assert_eq!(
            status.metadata().get("frameos-error-code").unwrap(),
            "rate_limited"
        );
    }

    // Ending one of Alice's streams gives its place back.
    drop(open.pop());
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        match client.watch_execution(watch(&hog, &alice)).await {
            Ok(stream) => {
                open.push(stream.into_inner());
                break;
            }
            Err(status) => assert_eq!(status.code(), tonic::Code::ResourceExhausted),
        }
        assert!(
            Instant::now() < deadline,
            "a closed stream's place never came back"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    drop(open);
    cancel(&mesh, &alice, &hog).await;
    mesh.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_account_over_its_rate_gets_429_with_retry_after_while_another_is_served() {
    const PER_SEC: u32 = 2;
    const BURST: u32 = 5;
    let mesh = Mesh::start_tuned(
        Backend::Embedded,
        false,
        |_| {},
        |gateway| {
            gateway.rate_limit_per_sec = PER_SEC;
            gateway.rate_limit_burst = BURST;
        },
    )
    .await
    .unwrap();
    let alice = mesh.account("alice", "user").await.unwrap();
    let bob = mesh.account("bob", "user").await.unwrap();

    let me = |key: &str| mesh.request(Method::GET, "/v1/me", Some(key)).send();
    let started = Instant::now();
    // Alice floods; Bob sends his burst's worth at the same time.
    let flood = futures::future::join_all((0..30).map(|_| me(&alice)));
    let served = futures::future::join_all((0..BURST).map(|_| me(&bob)));
    let (flood, served) = tokio::join!(flood, served);
    let elapsed = started.elapsed().as_secs_f64();

    for response in served {
        let response = response.unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.json::<Value>().await.unwrap()["name"], "bob");
    }
    let mut passed = 0;
    let mut retry_after = Vec::new();
    for response in flood {
        let response = response.unwrap();
        match response.status().as_u16() {
            200 => passed += 1,
            429 => {
                let seconds: u64 = response.headers()["retry-after"]
                    .to_str()
                    .unwrap()
                    .parse()
                    .unwrap();
                assert!((1..=60).contains(&seconds), "Retry-After: {seconds}");
                retry_after.push(seconds);
                let body: Value = response.json().await.unwrap();
                assert_eq!(body["error"]["code"], "rate_limited", "{body}");
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert!(!retry_after.is_empty(), "30 requests at once all passed");
    let allowed = f64::from(BURST) + f64::from(PER_SEC) * elapsed.ceil();
    assert!(
        f64::from(passed) <= allowed,
        "{passed} passed in {elapsed:.2}s"
    );

    // Retry-After is a promise: after it, Alice is served again.
    let wait = retry_after.into_iter().max().unwrap();
    tokio::time::sleep(Duration::from_secs(wait)).await;
    assert_eq!(me(&alice).await.unwrap().status(), 200);
    mesh.shutdown().await.unwrap();
}

fn timestamp(execution: &Value, field: &str) -> DateTime<Utc> {
    execution[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} missing: {execution}"))
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_accounts_backlog_never_holds_back_another_accounts_run() {
    const CAP: usize = 2;
    let mut mesh = Mesh::with_queue(Backend::PostgresS3, |config| {
        config.fair_use.account_max_running = CAP as u32;
    })
    .await
    .unwrap();
    let (alice, bob) = publish_agents(&mesh).await;
    // One slot more than Alice may fill: whatever waits, waits for its account's turn.
    mesh.start_node(3).await.unwrap();

    let mut backlog = Vec::new();
    for _ in 0..8 {
        backlog.push(execute(&mesh, &alice, "slow", json!({"ms": 1500})).await);
    }
    let id = execute(&mesh, &bob, "slow", json!({"ms": 100})).await;
    let (_, bobs) = tokio::time::timeout(Duration::from_secs(60), mesh.follow(&bob, &id))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(bobs["status"], "succeeded", "{bobs}");

    let mut alices = Vec::new();
    for id in &backlog {
        let (_, done) = tokio::time::timeout(Duration::from_secs(120), mesh.follow(&alice, id))
            .await
            .unwrap()
            .unwrap();
        assert_eq!(done["status"], "succeeded", "{done}");
        alices.push(done);
    }

    // Bob's run started while most of Alice's were still queued: it did not wait its turn
    // behind her backlog.
    let bob_started = timestamp(&bobs, "started_at");
    let after_bob = alices
        .iter()
        .filter(|e| timestamp(e, "started_at") > bob_started)
        .count();
    assert!(
        after_bob >= 4,
        "only {after_bob} of Alice's 8 started after Bob's run"
    );
    // Alice's ran in the order she posted them, never more than CAP out at once: her i-th
    // (from 0) was dispatched only once i - CAP + 1 of the earlier ones had ended.
    let mut ends: Vec<DateTime<Utc>> = alices.iter().map(|e| timestamp(e, "finished_at")).collect();
    ends.sort();
    for (i, execution) in alices.iter().enumerate().skip(CAP) {
        let started = timestamp(execution, "started_at");
        assert!(
            started >= ends[i - CAP],
            "execution {i} started at {started} before {} of Alice's had ended",
            i - CAP + 1
        );
    }
    mesh.shutdown().await.unwrap();
}

/// Whether the relay has published `execution_id` (one of its outbox rows is sent).
async fn published(db: &sea_orm::DatabaseConnection, execution_id: &str) -> bool {
    use sea_orm::ConnectionTrait;
    let row = db
        .query_one_raw(sea_orm::Statement::from_string(
            sea_orm::DbBackend::Postgres,
            format!(
                "SELECT COUNT(*) AS n FROM outbox \
                 WHERE execution_id = '{execution_id}' AND sent_at IS NOT NULL"
            ),
        ))
        .await
        .unwrap()
        .unwrap();
    row.try_get::<i64>("", "n").unwrap() > 0
}

async fn wait_published(db: &sea_orm::DatabaseConnection, execution_id: &str) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !published(db, execution_id).await {
        assert!(
            Instant::now() < deadline,
            "{execution_id} was not published"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_row_another_relay_holds_keeps_its_place_in_its_accounts_turn() {
    use sea_orm::{ConnectionTrait, Database, TransactionTrait};
    // No node: what is published stays out until it is canceled.
    let mesh = Mesh::with_queue(Backend::PostgresS3, |config| {
        config.fair_use.account_max_running = 2;
    })
    .await
    .unwrap();
    let (alice, bob) = publish_agents(&mesh).await;
    let db = Database::connect(mesh.database_url()).await.unwrap();
    let mut a = Vec::new();
    for _ in 0..4 {
        a.push(execute(&mesh, &alice, "slow", json!({"ms": 1})).await);
    }
    wait_published(&db, &a[1]).await;

    // Another replica's relay is publishing Alice's third when her first ends.
    let other_relay = db.begin().await.unwrap();
    other_relay
        .execute_unprepared(&format!(
            "SELECT id FROM outbox WHERE execution_id = '{}' FOR UPDATE",
            a[2]
        ))
        .await
        .unwrap();
    cancel(&mesh, &alice, &a[0]).await;
    // Bob's run is picked in the same statement as Alice's fourth would be: once it is out,
    // that pass has decided, and Alice's fourth stayed behind the third, which holds her place.
    let b1 = execute(&mesh, &bob, "slow", json!({"ms": 1})).await;
    wait_published(&db, &b1).await;
    assert!(!published(&db, &a[3]).await, "two relays filled one place");

    // The other relay commits what a relay does: Alice is at her cap again, with her second
    // and third.
    for statement in [
        "UPDATE outbox SET sent_at = CURRENT_TIMESTAMP WHERE execution_id = '{id}'",
        "UPDATE executions SET dispatched_at = CURRENT_TIMESTAMP WHERE id = '{id}'",
    ] {
        other_relay
            .execute_unprepared(&statement.replace("{id}", &a[2]))
            .await
            .unwrap();
    }
    other_relay.commit().await.unwrap();
    let b2 = execute(&mesh, &bob, "slow", json!({"ms": 1})).await;
    wait_published(&db, &b2).await;
    assert!(!published(&db, &a[3]).await, "published past the cap");

    // Her second ends: the fourth goes, woken by the end.
    cancel(&mesh, &alice, &a[1]).await;
    wait_published(&db, &a[3]).await;
    db.close().await.unwrap();
    mesh.shutdown().await.unwrap();
}
