//! Holds at the rail that no execution owns (issue 7, finding 4): a request that loses an
//! idempotency race releases its own hold before answering, and reconciliation releases any
//! hold nobody recorded once it is older than its interval. Counted in the rail's own records.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use frameos_integration_tests::rail::{self, count};
use frameos_integration_tests::{Backend, Mesh, packages};
use reqwest::Method;
use serde_json::{Value, json};

use super::{PRICE, get, verify_ledger};

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn twenty_requests_with_one_idempotency_key_leave_one_hold() {
    // No node yet: the execution stays queued, so its hold stays `authorized` while we look.
    let mut mesh = Mesh::with_queue(Backend::PostgresS3, |_| {}).await.unwrap();
    let dev = mesh.account("dev", "developer").await.unwrap();
    let user = mesh.account("uma", "user").await.unwrap();
    mesh.publish_approved(
        &dev,
        "word-count",
        packages::example("word-count"),
        Some(PRICE),
    )
    .await
    .unwrap();
    // Twenty connections open (and the key known) before the race, and the twenty requests let
    // go together: otherwise the first can be answered before the last is even connected.
    let warm_up = (0..20).map(|_| mesh.request(Method::GET, "/v1/me", Some(&user)).send());
    for response in futures::future::join_all(warm_up).await {
        assert_eq!(response.unwrap().status(), 200);
    }
    let start = std::sync::Arc::new(tokio::sync::Barrier::new(20));
    let mut tasks = Vec::new();
    for _ in 0..20 {
        let start = start.clone();
        let request = mesh
            .request(
                Method::POST,
                "/v1/agents/word-count/executions",
                Some(&user),
            )
            .header("idempotency-key", "checkout-42")
            .json(&json!({"inputs": {"text": "once"}}));
        tasks.push(tokio::spawn(async move {
            start.wait().await;
            let response = request.send().await.unwrap();
            (
                response.status().as_u16(),
                response.json::<Value>().await.unwrap(),
            )
        }));
    }
    let mut ids = HashSet::new();
    for task in tasks {
        let (status, body) = task.await.unwrap();
        assert_eq!(status, 202, "{body}");
        ids.insert(body["id"].as_str().unwrap().to_string());
    }
    assert_eq!(ids.len(), 1, "{ids:?}");
    let id = ids.into_iter().next().unwrap();

    // Every request that got as far as the rail placed a hold; all but the winner's are
    // released before their answers went out.
    let holds = rail::holds(mesh.database_url()).await.unwrap();
    assert!(holds.len() > 1, "the requests did not race: {holds:?}");
    let authorized: Vec<_> = holds.iter().filter(|h| h.state == "authorized").collect();
    assert_eq!(authorized.len(), 1, "{holds:?}");
    assert_eq!(authorized[0].idempotency_key, format!("authorize:{id}"));
    assert_eq!(count(&holds, "voided"), holds.len() - 1, "{holds:?}");

    // Run it: the one hold is captured, nothing stays authorized.
    mesh.start_node(2).await.unwrap();
    let (_, done) = mesh.follow(&user, &id).await.unwrap();
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["charge"]["status"], "captured", "{done}");
    let holds = rail::holds(mesh.database_url()).await.unwrap();
    assert_eq!(count(&holds, "authorized"), 0, "{holds:?}");
    assert_eq!(count(&holds, "captured"), 1, "{holds:?}");
    let captures: Vec<_> = rail::calls(mesh.database_url())
        .await
        .unwrap()
        .into_iter()
        .filter(|c| c.operation == "capture")
        .collect();
    assert_eq!(captures.len(), 1, "{captures:?}");
    assert_eq!(captures[0].outcome, "captured");
    let (_, list) = get(&mesh, Some(&user), "/v1/executions").await;
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    let report = verify_ledger(&mesh).await;
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.transactions, 1);

    // A different body under the same key is refused, and holds nothing.
    let response = mesh
        .request(
            Method::POST,
            "/v1/agents/word-count/executions",
            Some(&user),
        )
        .header("idempotency-key", "checkout-42")
        .json(&json!({"inputs": {"text": "twice"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
    let after = rail::holds(mesh.database_url()).await.unwrap();
    assert_eq!(after.len(), holds.len());
    mesh.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_orphan_hold_at_the_rail_is_voided_by_reconciliation() {
    let mesh = Mesh::start_with(Backend::PostgresS3, |config| {
        config.billing.reconcile_interval_secs = 1;
    })
    .await
    .unwrap();
    // What a crash between the authorization and the commit leaves: a hold, no execution.
    let execution = uuid::Uuid::now_v7().to_string();
    let hold = rail::plant_hold(
        mesh.database_url(),
        &execution,
        PRICE,
        chrono::Duration::minutes(5),
    )
    .await
    .unwrap();

    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let holds = rail::holds(mesh.database_url()).await.unwrap();
        let planted = holds.iter().find(|h| h.id == hold).unwrap();
        if planted.state == "voided" {
            break;
        }
        assert_eq!(planted.state, "authorized");
        assert!(Instant::now() < deadline, "the orphan hold is still held");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let voids: Vec<_> = rail::calls(mesh.database_url())
        .await
        .unwrap()
        .into_iter()
        .filter(|c| c.authorization_id.as_deref() == Some(hold.as_str()))
        .map(|c| (c.operation, c.idempotency_key, c.outcome))
        .collect();
    assert_eq!(
        voids,
        vec![(
            "void".to_string(),
            format!("void:{execution}"),
            "voided".to_string()
        )]
    );
    // Nothing reached the ledger.
    let report = verify_ledger(&mesh).await;
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.transactions, 0);
    mesh.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hold_released_before_its_capture_leaves_the_charge_voided_not_open() {
    let mesh = Mesh::with_node(Backend::PostgresS3).await.unwrap();
    let dev = mesh.account("dev", "developer").await.unwrap();
    let user = mesh.account("uma", "user").await.unwrap();
    let slow = packages::node_agent_with(
        "slow",
        "module.exports = async (i, ctx) => { ctx.progress(0.5, 'half'); await new Promise(r => setTimeout(r, 1500)); return { done: true }; };",
        60_000,
        128,
    );
    mesh.publish_approved(&dev, "slow", slow, Some(PRICE))
        .await
        .unwrap();
    let accepted = mesh.execute(&user, "slow", json!({})).await.unwrap();
    let id = accepted["id"].as_str().unwrap().to_string();
    mesh.wait_for_event(&user, &id, "progress").await.unwrap();
    // While it runs, its hold goes (an orphan sweep that took a slow request's hold for
    // abandoned would do this): nothing can be collected any more.
    let holds = rail::holds(mesh.database_url()).await.unwrap();
    let hold = holds
        .iter()
        .find(|h| h.idempotency_key == format!("authorize:{id}"))
        .unwrap();
    rail::void_at_the_rail(mesh.database_url(), &hold.id)
        .await
        .unwrap();

    let (_, done) = mesh.follow(&user, &id).await.unwrap();
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["charge"]["status"], "voided", "{done}");
    let captures: Vec<_> = rail::calls(mesh.database_url())
        .await
        .unwrap()
        .into_iter()
        .filter(|c| c.operation == "capture")
        .map(|c| c.outcome)
        .collect();
    assert_eq!(captures, vec!["invalid_state".to_string()]);
    let report = verify_ledger(&mesh).await;
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.transactions, 0);
    mesh.shutdown().await.unwrap();
}
