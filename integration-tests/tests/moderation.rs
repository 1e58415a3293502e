//! Review modes and bans (API.md §5.2, ADR 0044) through the REST API on real PostgreSQL,
//! RabbitMQ and Docker: the auto mode publishes at once and samples spot checks (the same seed,
//! the same versions, in any upload order); a ban cancels and voids what is queued and what
//! runs, refuses every new run, version and call, and tells the owner why; a run that slipped
//! past the ban's sweep is refused at its claim.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::collections::BTreeSet;
use std::time::Duration;

use frameos_control_plane::ReviewMode;
use frameos_integration_tests::flows::containers_of;
use frameos_integration_tests::{Backend, Mesh, audit, packages, rail};
use reqwest::Method;
use sea_orm::{ConnectionTrait, Database, Statement};
use serde_json::{Value, json};

const PRICE: i64 = 10_000;

async fn call(mesh: &Mesh, method: Method, path: &str, key: &str, body: Value) -> (u16, Value) {
    let response = mesh
        .request(method, path, Some(key))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn get(mesh: &Mesh, path: &str, key: &str) -> (u16, Value) {
    let response = mesh
        .request(Method::GET, path, Some(key))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn auto_mesh(percent: u8, seed: u64) -> Mesh {
    Mesh::start_with(Backend::PostgresS3, |config| {
        config.review.review_mode = ReviewMode::Auto;
        config.review.spot_check_percent = percent;
        config.review.spot_check_seed = Some(seed);
    })
    .await
    .unwrap()
}

/// Creates each agent of `slugs` in this order and uploads its 1.0.0; returns each upload's
/// 201 body.
async fn upload_all(mesh: &Mesh, dev: &str, slugs: &[String]) -> Vec<Value> {
    let mut out = Vec::new();
    for slug in slugs {
        let (status, body) = call(
            mesh,
            Method::POST,
            "/v1/agents",
            dev,
            json!({"slug": slug, "name": slug, "pricing": {"model": "free"}}),
        )
        .await;
        assert_eq!(status, 201, "{body}");
        let package = packages::node_agent(
            slug,
            "1.0.0",
            "module.exports = async () => ({ok: true});\n",
        );
        let response = mesh.upload(dev, slug, package).send().await.unwrap();
        let status = response.status();
        let body: Value = response.json().await.unwrap();
        assert_eq!(status, 201, "{body}");
        out.push(body);
    }
    out
}

/// The `slug@version`s in the spot-check queue.
async fn spot_checks(mesh: &Mesh) -> BTreeSet<String> {
    let (status, queue) = get(mesh, "/v1/reviews?status=spot_check", &mesh.admin_key).await;
    assert_eq!(status, 200, "{queue}");
    queue["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            assert_eq!(v["status"], "published", "{v}");
            assert_eq!(v["spot_check"], true, "{v}");
            format!(
                "{}@{}",
                v["agent"].as_str().unwrap(),
                v["version"].as_str().unwrap()
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn auto_review_publishes_at_once_and_a_seeded_sample_waits_for_spot_checks() {
    let slugs: Vec<String> = (0..16).map(|i| format!("auto-{i}")).collect();
    let mesh = auto_mesh(40, 7).await;
    let dev = mesh.account("auto-dev", "developer").await.unwrap();
    let user = mesh.account("auto-user", "user").await.unwrap();
    for uploaded in upload_all(&mesh, &dev, &slugs).await {
        // Published at once, with the auto mode's approval on record; the owner is not told
        // whether the version was sampled.
        assert_eq!(uploaded["status"], "published", "{uploaded}");
        assert!(uploaded["published_at"].is_string(), "{uploaded}");
        assert_eq!(uploaded["review"]["reviewer"], "auto", "{uploaded}");
        assert_eq!(uploaded["review"]["decision"], "approved", "{uploaded}");
        assert!(uploaded.get("spot_check").is_none(), "{uploaded}");
    }
    let sampled = spot_checks(&mesh).await;
    assert!(
        sampled.len() >= 2 && sampled.len() < slugs.len(),
        "a 40% sample of 16 under seed 7: {sampled:?}"
    );
    // Nothing waits for a manual review, and a published version runs before any check.
    let (_, pending) = get(&mesh, "/v1/reviews", &mesh.admin_key).await;
    assert_eq!(pending["items"], json!([]));
    let (status, accepted) = call(
        &mesh,
        Method::POST,
        "/v1/agents/auto-0/executions",
        &user,
        json!({"inputs": {}}),
    )
    .await;
    assert_eq!(status, 202, "{accepted}");

    // A package the scanner refuses is not published by the auto mode either.
    let bad = packages::node_agent(
        "auto-0",
        "9.0.0",
        "const cp = require('child_process');\nmodule.exports = async () => cp.execSync('id').toString();\n",
    );
    let refused: Value = mesh
        .upload(&dev, "auto-0", bad)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(refused["status"], "rejected", "{refused}");
    assert_eq!(refused["review"]["reviewer"], "scanner", "{refused}");

    // An admin passes one spot check and fails another, which unpublishes that version.
    let mut sampled_iter = sampled
        .iter()
        .map(|s| s.split_once('@').unwrap().0.to_string());
    let passed = sampled_iter.next().unwrap();
    let (status, body) = call(
        &mesh,
        Method::POST,
        &format!("/v1/agents/{passed}/versions/1.0.0/approve"),
        &mesh.admin_key,
        json!({}),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["status"], "published");
    assert!(body.get("spot_check").is_none(), "{body}");
    let (status, again) = call(
        &mesh,
        Method::POST,
        &format!("/v1/agents/{passed}/versions/1.0.0/approve"),
        &mesh.admin_key,
        json!({}),
    )
    .await;
    assert_eq!((status, &again["error"]["code"]), (409, &json!("conflict")));
    {
        let failed = sampled_iter.next().unwrap();
        let (status, body) = call(
            &mesh,
            Method::POST,
            &format!("/v1/agents/{failed}/versions/1.0.0/reject"),
            &mesh.admin_key,
            json!({"reason": "prints the inputs to stdout"}),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["status"], "rejected");
        let (status, refused) = call(
            &mesh,
            Method::POST,
            &format!("/v1/agents/{failed}/executions"),
            &user,
            json!({"inputs": {}}),
        )
        .await;
        assert_eq!(status, 404, "{refused}");
        let (_, mine) = get(&mesh, &format!("/v1/agents/{failed}/versions"), &dev).await;
        let seen = mine["items"][0].clone();
        assert_eq!(
            seen["review"]["reason"], "prints the inputs to stdout",
            "{seen}"
        );
    }
    let left = spot_checks(&mesh).await;
    assert_eq!(left.len(), sampled.len() - 2, "{left:?}");
    // A user is not an admin.
    let (status, _) = get(&mesh, "/v1/reviews?status=spot_check", &user).await;
    assert_eq!(status, 403);
    mesh.shutdown().await.unwrap();

    // The same seed on another platform picks the same versions, uploaded in reverse order.
    let other = auto_mesh(40, 7).await;
    let dev = other.account("auto-dev", "developer").await.unwrap();
    let reversed: Vec<String> = slugs.iter().rev().cloned().collect();
    upload_all(&other, &dev, &reversed).await;
    assert_eq!(spot_checks(&other).await, sampled);
    other.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_ban_cancels_queued_and_running_runs_voids_them_and_refuses_everything_after() {
    // One slot: the first run holds it, the second waits in the queue.
    let mut mesh = Mesh::with_queue(Backend::PostgresS3, |_| {}).await.unwrap();
    mesh.start_node(1).await.unwrap();
    let dev = mesh.account("ban-dev", "developer").await.unwrap();
    let other_dev = mesh.account("ban-other", "developer").await.unwrap();
    let user = mesh.account("ban-user", "user").await.unwrap();
    let slow = "module.exports = async (inputs, ctx) => { ctx.progress(0.1, 'started'); \
                await new Promise(r => setTimeout(r, 60000)); return {late: true}; };";
    mesh.publish_approved(
        &dev,
        "shady",
        packages::node_agent_with("shady", slow, 120_000, 128),
        Some(PRICE),
    )
    .await
    .unwrap();
    // Another developer's agent that calls it, published before the ban.
    let caller = json!({
        "name": "uses-shady", "version": "1.0.0", "runtime": "node", "entrypoint": "index.js",
        "dependencies": {"shady": "^1.0.0"}, "inputs": {"type": "object"},
        "resources": {"cpu_cores": 0.5, "memory_mb": 128, "timeout_ms": 30000}
    });
    let caller_code = "module.exports = async (inputs, ctx) => ctx.call('shady', {});";
    mesh.publish_approved(
        &other_dev,
        "uses-shady",
        packages::tar_gz(&[
            ("agent.json", caller.to_string().as_bytes()),
            ("index.js", caller_code.as_bytes()),
        ]),
        None,
    )
    .await
    .unwrap();
    // A version still pending review when the ban comes.
    let pending = packages::node_agent("shady", "1.1.0", "module.exports = async () => 1;\n");
    assert_eq!(
        mesh.upload(&dev, "shady", pending)
            .send()
            .await
            .unwrap()
            .status(),
        201
    );

    let running = mesh.execute(&user, "shady", json!({})).await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    mesh.wait_for_event(&user, &running, "progress")
        .await
        .unwrap();
    let queued = mesh.execute(&user, "shady", json!({})).await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (_, q) = get(&mesh, &format!("/v1/executions/{queued}"), &user).await;
    assert_eq!(q["status"], "queued", "{q}");
    assert!(!containers_of(&running).is_empty());

    // Only an admin bans, and only with a reason.
    let path = "/v1/agents/shady/ban";
    let reason = "exfiltrates inputs to a third party";
    let (status, _) = call(&mesh, Method::POST, path, &dev, json!({"reason": reason})).await;
    assert_eq!(status, 403);
    let (status, body) = call(
        &mesh,
        Method::POST,
        path,
        &mesh.admin_key,
        json!({"reason": "  "}),
    )
    .await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (422, &json!("validation_failed"))
    );
    let (status, banned) = call(
        &mesh,
        Method::POST,
        path,
        &mesh.admin_key,
        json!({"reason": reason}),
    )
    .await;
    assert_eq!(status, 200, "{banned}");
    assert_eq!(banned["canceled_executions"], 2, "{banned}");
    assert_eq!(banned["agent"]["ban"]["reason"], reason);
    assert_eq!(banned["agent"]["latest_version"], Value::Null);

    // Both runs ended canceled, named the ban, and their holds were released at the rail.
    for id in [&running, &queued] {
        let (_, done) = mesh.follow(&user, id).await.unwrap();
        assert_eq!(done["status"], "canceled", "{done}");
        let (_, done) = get(&mesh, &format!("/v1/executions/{id}"), &user).await;
        assert!(done["error"].as_str().unwrap().contains(reason), "{done}");
        assert_eq!(done["charge"]["status"], "voided", "{done}");
    }
    let started = std::time::Instant::now();
    while !containers_of(&running).is_empty() {
        assert!(
            started.elapsed() < Duration::from_secs(5),
            "the banned run's container is still there"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let holds = rail::holds(mesh.database_url()).await.unwrap();
    assert_eq!(rail::count(&holds, "voided"), 2, "{holds:?}");
    assert_eq!(rail::count(&holds, "authorized"), 0, "{holds:?}");
    let snapshot = audit::Snapshot::take(mesh.database_url()).await.unwrap();
    assert!(
        snapshot.money_problems().is_empty(),
        "{:?}",
        snapshot.money_problems()
    );

    // Nothing runs it, lists it or extends it any more.
    let (status, refused) = call(
        &mesh,
        Method::POST,
        "/v1/agents/shady/executions",
        &user,
        json!({"inputs": {}}),
    )
    .await;
    assert_eq!(
        (status, &refused["error"]["code"]),
        (409, &json!("agent_banned")),
        "{refused}"
    );
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains(reason)
    );
    let newer = packages::node_agent("shady", "2.0.0", "module.exports = async () => 2;\n");
    let response = mesh.upload(&dev, "shady", newer).send().await.unwrap();
    assert_eq!(response.status(), 409);
    let (status, body) = call(
        &mesh,
        Method::POST,
        "/v1/agents/shady/versions/1.1.0/approve",
        &mesh.admin_key,
        json!({}),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    let (_, listed) = get(&mesh, "/v1/agents?q=shady", &user).await;
    assert!(
        listed["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|a| a["slug"] != "shady"),
        "{listed}"
    );
    let (status, _) = get(&mesh, "/v1/agents/shady", &user).await;
    assert_eq!(status, 404);
    // Its owner sees why; every version is banned.
    let (status, own) = get(&mesh, "/v1/agents/shady", &dev).await;
    assert_eq!(status, 200);
    assert_eq!(own["ban"]["reason"], reason, "{own}");
    assert!(own["ban"]["banned_at"].is_string());
    let (_, versions) = get(&mesh, "/v1/agents/shady/versions", &dev).await;
    let statuses: Vec<&str> = versions["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["banned", "banned"], "{versions}");

    // A caller can no longer reach it, and no new agent can depend on it.
    let (_, called) = mesh.run(&user, "uses-shady", json!({})).await.unwrap();
    assert_eq!(called["status"], "failed", "{called}");
    assert!(
        called["error"].as_str().unwrap().contains("banned"),
        "{called}"
    );
    let dependent = json!({
        "name": "uses-shady-2", "version": "1.0.0", "runtime": "node", "entrypoint": "index.js",
        "dependencies": {"shady": "^1.0.0"}, "inputs": {"type": "object"},
        "resources": {"cpu_cores": 0.5, "memory_mb": 128, "timeout_ms": 30000}
    });
    let (status, _) = call(
        &mesh,
        Method::POST,
        "/v1/agents",
        &other_dev,
        json!({"slug": "uses-shady-2", "name": "x", "pricing": {"model": "free"}}),
    )
    .await;
    assert_eq!(status, 201);
    let package = packages::tar_gz(&[
        ("agent.json", dependent.to_string().as_bytes()),
        ("index.js", caller_code.as_bytes()),
    ]);
    let response = mesh
        .upload(&other_dev, "uses-shady-2", package)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 422);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "invalid_dependency", "{body}");

    // Banning again keeps the first reason and finds nothing left to cancel.
    let (status, again) = call(
        &mesh,
        Method::POST,
        path,
        &mesh.admin_key,
        json!({"reason": "another"}),
    )
    .await;
    assert_eq!(status, 200, "{again}");
    assert_eq!(again["agent"]["ban"]["reason"], reason);
    assert_eq!(again["canceled_executions"], 0);
    mesh.shutdown().await.unwrap();
}

/// The window between the ban's commit and its sweep, made wide: the versions are banned in
/// the database while a run waits in the queue, as if the sweep had not reached it yet. The
/// node's claim refuses it: canceled, voided, never started.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_run_queued_past_the_ban_is_refused_at_its_claim() {
    let mut mesh = Mesh::with_queue(Backend::PostgresS3, |_| {}).await.unwrap();
    let dev = mesh.account("race-dev", "developer").await.unwrap();
    let user = mesh.account("race-user", "user").await.unwrap();
    let code = "module.exports = async () => ({ran: true});\n";
    mesh.publish_approved(
        &dev,
        "racy",
        packages::node_agent("racy", "1.0.0", code),
        Some(PRICE),
    )
    .await
    .unwrap();
    // No node yet: the run stays queued.
    let id = mesh.execute(&user, "racy", json!({})).await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let db = Database::connect(mesh.database_url()).await.unwrap();
    db.execute_raw(Statement::from_string(
        db.get_database_backend(),
        "UPDATE agent_versions SET status = 'banned'",
    ))
    .await
    .unwrap();
    mesh.start_node(1).await.unwrap();
    let rows = audit::wait_until_ended(
        mesh.database_url(),
        std::slice::from_ref(&id),
        Duration::from_secs(60),
    )
    .await
    .unwrap();
    assert_eq!(rows[0].status, "canceled", "{:?}", rows[0]);
    assert!(
        rows[0].error.as_deref().unwrap().contains("banned"),
        "{:?}",
        rows[0]
    );
    // Settled right after the cancel, in the same claim call.
    audit::wait_for_settled_money(mesh.database_url(), Duration::from_secs(30))
        .await
        .unwrap();
    let (_, done) = get(&mesh, &format!("/v1/executions/{id}"), &user).await;
    assert_eq!(done["charge"]["status"], "voided", "{done}");
    // It never ran: no output, no log line from the agent, no start of its code.
    assert!(done.get("output").is_none(), "{done}");
    assert!(done["timings"].get("run_ms").is_none(), "{done}");
    let lines = mesh.log_lines(&user, &id).await.unwrap();
    assert!(lines.iter().all(|l| l["stream"] == "system"), "{lines:?}");
    db.close().await.unwrap();
    mesh.shutdown().await.unwrap();
}
