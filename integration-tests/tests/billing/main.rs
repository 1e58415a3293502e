//! Paying for executions end to end: mandates, authorization before queueing, capture only on
//! success, the split in the ledger, idempotency races and orphan holds, crash recovery between
//! the rail's capture and the ledger commit (a real SIGKILL), currencies, the developer's tier,
//! the embedded backend, and `ledger verify` on corrupted ledgers. Real PostgreSQL (or SQLite),
//! RabbitMQ, Docker and S3 protocol server.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod crash;
mod currency;
mod embedded;
mod holds;
mod stripe;
mod tiers;
mod trees;
mod verify;

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use frameos_integration_tests::{Backend, Mesh, packages};
use reqwest::Method;
use serde_json::{Value, json};

const PRICE: i64 = 10_000; // ₹100.00

async fn get(mesh: &Mesh, key: Option<&str>, path: &str) -> (u16, Value) {
    let response = mesh.request(Method::GET, path, key).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn me(mesh: &Mesh, key: &str) -> String {
    get(mesh, Some(key), "/v1/me").await.1["id"]
        .as_str()
        .unwrap()
        .to_string()
}

async fn balance(mesh: &Mesh, key: &str, account: &str) -> i64 {
    let (status, body) = get(mesh, Some(key), &format!("/v1/accounts/{account}/balance")).await;
    assert_eq!(status, 200, "{body}");
    body["balance_minor"].as_i64().unwrap()
}

/// `GET /v1/me/earnings` of the developer `key`: its items.
async fn earnings(mesh: &Mesh, key: &str) -> Value {
    let (status, body) = get(mesh, Some(key), "/v1/me/earnings").await;
    assert_eq!(status, 200, "{body}");
    body["items"].clone()
}

async fn verify_ledger(mesh: &Mesh) -> frameos_control_plane::billing::ledger::Verification {
    frameos_control_plane::verify_ledger(mesh.database_url())
        .await
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_paid_success_is_captured_once_and_split_in_the_ledger() {
    let mesh = Mesh::with_node(Backend::PostgresS3).await.unwrap();
    let dev = mesh.account("dev", "developer").await.unwrap();
    let user = mesh.account("uma", "user").await.unwrap();
    let dev_id = me(&mesh, &dev).await;
    let user_id = me(&mesh, &user).await;
    mesh.publish_approved(
        &dev,
        "word-count",
        packages::example("word-count"),
        Some(PRICE),
    )
    .await
    .unwrap();

    let (_, done) = mesh
        .run(&user, "word-count", json!({"text": "pay me"}))
        .await
        .unwrap();
    assert_eq!(done["status"], "succeeded", "{done}");
    let id = done["id"].as_str().unwrap();
    // Fee 2.9% + ₹2 = 290 + 200; developer 70%; no orchestrator, so its 10% is the platform's.
    let (_, execution) = get(&mesh, Some(&user), &format!("/v1/executions/{id}")).await;
    assert_eq!(
        execution["charge"],
        json!({"status": "captured", "amount_minor": PRICE, "currency": "INR",
               "splits": {"developer": 7000, "platform": 2510, "orchestrator": 0, "rail_fee": 490}}),
        "{execution}"
    );
    assert_eq!(balance(&mesh, &dev, &dev_id).await, 7000);
    assert_eq!(balance(&mesh, &user, &user_id).await, -PRICE);
    // The developer's earnings per agent: their share of the captured charge.
    assert_eq!(
        earnings(&mesh, &dev).await,
        json!([{"agent": "word-count", "agent_name": "word-count", "currency": "INR",
                "paid_executions": 1, "earned_minor": 7000, "paid_calls": 0, "orchestrator_minor": 0}])
    );
    let (status, _) = get(&mesh, Some(&user), "/v1/me/earnings").await;
    assert_eq!(status, 403, "a user earns nothing and may not ask");
    let report = verify_ledger(&mesh).await;
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.transactions, 1);
    assert_eq!(report.total_debits, PRICE);

    // The mandate verifies offline with the published key.
    let (status, mandate) = get(&mesh, Some(&user), &format!("/v1/executions/{id}/mandate")).await;
    assert_eq!(status, 200, "{mandate}");
    let (_, keys) = get(&mesh, None, "/v1/billing/mandate-keys").await;
    let key = keys["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| k["kid"] == mandate["kid"])
        .unwrap();
    assert_eq!(key["alg"], "Ed25519");
    let public: [u8; 32] = STANDARD
        .decode(key["public_key"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let payload = STANDARD
        .decode(mandate["payload"].as_str().unwrap())
        .unwrap();
    let signature: [u8; 64] = STANDARD
        .decode(mandate["signature"].as_str().unwrap())
        .unwrap()
        .try_into()
        .unwrap();
    let verifying = ed25519_dalek::VerifyingKey::from_bytes(&public).unwrap();
    verifying
        .verify_strict(&payload, &ed25519_dalek::Signature::from_bytes(&signature))
        .unwrap();
    let signed: Value = serde_json::from_slice(&payload).unwrap();
    assert_eq!(signed["type"], "frameos.mandate.v1");
    assert_eq!(signed["execution_id"], id);
    assert_eq!(signed["amount_minor"], PRICE);
    assert_eq!(signed["currency"], "INR");
    assert!(signed["expires_at"].is_string() && signed["nonce"].is_string());
    // Someone else's mandate is not found.
    let other = mesh.account("ola", "user").await.unwrap();
    let (status, _) = get(&mesh, Some(&other), &format!("/v1/executions/{id}/mandate")).await;
    assert_eq!(status, 404);
    mesh.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn failures_cancels_free_agents_and_declines_cost_nothing() {
    let mesh = Mesh::with_node(Backend::PostgresS3).await.unwrap();
    let dev = mesh.account("dev", "developer").await.unwrap();
    let user = mesh.account("uma", "user").await.unwrap();
    let dev_id = me(&mesh, &dev).await;
    let user_id = me(&mesh, &user).await;
    let fails = packages::node_agent_with(
        "fails",
        "module.exports = async () => { throw new Error('nope'); };",
        20_000,
        128,
    );
    mesh.publish_approved(&dev, "fails", fails, Some(PRICE))
        .await
        .unwrap();
    let slow = packages::node_agent_with(
        "slow",
        "module.exports = async (i, ctx) => { ctx.progress(0.1, 'go'); await new Promise(r => setTimeout(r, 60000)); };",
        120_000,
        128,
    );
    mesh.publish_approved(&dev, "slow", slow, Some(PRICE))
        .await
        .unwrap();
    let loops = packages::node_agent_with(
        "loops",
        "module.exports = async () => { for (;;) {} };",
        1_500,
        128,
    );
    mesh.publish_approved(&dev, "loops", loops, Some(PRICE))
        .await
        .unwrap();
    mesh.publish_approved(&dev, "word-count", packages::example("word-count"), None)
        .await
        .unwrap();

    // Agent failure: voided.
    let (_, done) = mesh.run(&user, "fails", json!({})).await.unwrap();
    assert_eq!(done["status"], "failed");
    let (_, failed) = get(
        &mesh,
        Some(&user),
        &format!("/v1/executions/{}", done["id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(failed["charge"]["status"], "voided", "{failed}");
    assert_eq!(failed["charge"]["splits"]["developer"], 0);

    // Timed out: voided.
    let (_, done) = mesh.run(&user, "loops", json!({})).await.unwrap();
    assert_eq!(done["status"], "timed_out");
    assert_eq!(done["charge"]["status"], "voided", "{done}");

    // Canceled: voided.
    let accepted = mesh.execute(&user, "slow", json!({})).await.unwrap();
    let id = accepted["id"].as_str().unwrap().to_string();
    assert_eq!(accepted["charge"]["status"], "authorized", "{accepted}");
    let canceled: Value = mesh
        .request(
            Method::POST,
            &format!("/v1/executions/{id}/cancel"),
            Some(&user),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(canceled["status"], "canceled");
    assert_eq!(canceled["charge"]["status"], "voided", "{canceled}");

    // Free agent: no charge at all, no mandate.
    let (_, free) = mesh
        .run(&user, "word-count", json!({"text": "free"}))
        .await
        .unwrap();
    assert_eq!(free["status"], "succeeded");
    assert!(free.get("charge").is_none(), "{free}");
    let (status, _) = get(
        &mesh,
        Some(&user),
        &format!("/v1/executions/{}/mandate", free["id"].as_str().unwrap()),
    )
    .await;
    assert_eq!(status, 404);

    // A declined payer: 402, and nothing was queued or recorded.
    let declined = mesh.account("test_decline_dora", "user").await.unwrap();
    let response = mesh
        .request(Method::POST, "/v1/agents/fails/executions", Some(&declined))
        .json(&json!({"inputs": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 402);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "payment_declined");
    let (_, list) = get(&mesh, Some(&declined), "/v1/executions").await;
    assert_eq!(list["items"].as_array().unwrap().len(), 0);

    // Nobody's balance moved, and a voided charge earns nothing.
    assert_eq!(balance(&mesh, &dev, &dev_id).await, 0);
    assert_eq!(earnings(&mesh, &dev).await, json!([]));
    assert_eq!(balance(&mesh, &user, &user_id).await, 0);
    let report = verify_ledger(&mesh).await;
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.transactions, 0);
    mesh.shutdown().await.unwrap();
}
