//! Schedules (API.md §5.3, ADR 0047) on real PostgreSQL, RabbitMQ and Docker: a cron schedule
//! runs its agent on the minute as its owner; two control-plane replicas ticking the same
//! schedules make one run (and one rail hold) per tick, captured whichever replica signed its
//! mandate and whichever settles it (a replica started first learns the later one's key); ticks missed while the control plane was
//! down make one run, and a replica SIGKILLed between making a tick's run and advancing the
//! schedule leaves the next one to find that run (no second run, no second hold); a paid agent's schedule spends under a standing mandate the payer gave,
//! verified here with ring's Ed25519 against the JWKS, and stops when the mandate no longer
//! covers a run.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use frameos_control_plane::faults::SCHEDULED_MARKER;
use frameos_integration_tests::dev_process::{DevData, DevProcess};
use frameos_integration_tests::{Backend, Mesh, packages, rail};
use reqwest::Method;
use sea_orm::{ConnectionTrait, Database, DatabaseConnection, Statement};
use serde_json::{Value, json};

async fn call(
    mesh: &Mesh,
    method: Method,
    path: &str,
    key: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = mesh.request(method, path, Some(key));
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

async fn schedule(mesh: &Mesh, key: &str, slug: &str, body: Value) -> (u16, Value) {
    call(
        mesh,
        Method::POST,
        &format!("/v1/agents/{slug}/schedules"),
        key,
        Some(body),
    )
    .await
}

async fn get_schedule(mesh: &Mesh, key: &str, id: &str) -> Value {
    let (status, body) = call(mesh, Method::GET, &format!("/v1/schedules/{id}"), key, None).await;
    assert_eq!(status, 200, "{body}");
    body
}

/// Polls the schedule (the API offers no event for a tick) until `done` holds of it.
async fn until(
    mesh: &Mesh,
    key: &str,
    id: &str,
    within: Duration,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let s = get_schedule(mesh, key, id).await;
        if done(&s) {
            return s;
        }
        assert!(
            Instant::now() < deadline,
            "the schedule never got there: {s}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn publish_echo(mesh: &Mesh, slug: &str, price: Option<i64>) -> String {
    let dev = mesh
        .account(&format!("{slug}-dev"), "developer")
        .await
        .unwrap();
    let code = "module.exports = async (inputs) => ({echo: inputs.text});\n";
    mesh.publish_approved(&dev, slug, packages::node_agent(slug, "1.0.0", code), price)
        .await
        .unwrap();
    dev
}

/// Makes every active schedule of `ids` due now, as the clock reaching its tick would.
async fn make_due(db: &DatabaseConnection, ids: &[String], ago: &str) {
    let list = ids
        .iter()
        .map(|id| format!("'{id}'"))
        .collect::<Vec<_>>()
        .join(",");
    db.execute_raw(Statement::from_string(
        db.get_database_backend(),
        format!("UPDATE schedules SET next_run_at = now() - interval '{ago}' WHERE id IN ({list})"),
    ))
    .await
    .unwrap();
}

/// The executions each schedule's ticks made, by schedule id (their idempotency keys say so).
async fn runs_by_schedule(db: &DatabaseConnection) -> BTreeMap<String, usize> {
    let rows = db
        .query_all_raw(Statement::from_string(
            db.get_database_backend(),
            "SELECT idempotency_key FROM executions WHERE idempotency_key LIKE 'schedule:%'",
        ))
        .await
        .unwrap();
    let mut by = BTreeMap::new();
    for row in rows {
        let key: String = row.try_get("", "idempotency_key").unwrap();
        *by.entry(key.split(':').nth(1).unwrap().to_string())
            .or_default() += 1;
    }
    by
}

/// The holds the sandbox rail records (its own records, not the control plane's) of `amount`.
async fn holds_of(mesh: &Mesh, amount: i64) -> Vec<rail::Hold> {
    rail::holds(mesh.database_url())
        .await
        .unwrap()
        .into_iter()
        .filter(|h| h.amount_minor == amount)
        .collect()
}

/// Every execution's id, status and error, to explain a failure.
async fn statuses(db: &DatabaseConnection) -> Vec<(String, String, Option<String>)> {
    db.query_all_raw(Statement::from_string(
        db.get_database_backend(),
        "SELECT id, status, error FROM executions ORDER BY id",
    ))
    .await
    .unwrap()
    .into_iter()
    .map(|r| {
        (
            r.try_get("", "id").unwrap(),
            r.try_get("", "status").unwrap(),
            r.try_get("", "error").unwrap(),
        )
    })
    .collect()
}

fn parse_time(v: &Value) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::parse_from_rfc3339(v.as_str().unwrap())
        .unwrap()
        .to_utc()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_schedule_runs_its_agent_on_the_minute_as_its_owner_until_deleted() {
    let mut mesh = Mesh::with_queue(Backend::PostgresS3, |_| {}).await.unwrap();
    mesh.start_node(2).await.unwrap();
    publish_echo(&mesh, "echo", None).await;
    let user = mesh.account("sched-user", "user").await.unwrap();
    let other = mesh.account("sched-other", "user").await.unwrap();

    // Mistakes are refused with the field named, and leave nothing behind.
    for (body, status, code, needle) in [
        (
            json!({"cron": "*/5 * * *"}),
            422,
            "validation_failed",
            "five fields",
        ),
        (
            json!({"cron": "every minute"}),
            422,
            "validation_failed",
            "cron",
        ),
        (
            json!({"cron": "* * * * *", "timezone": "Mars/Olympus"}),
            422,
            "validation_failed",
            "timezone",
        ),
        (
            json!({"cron": "* * * * *", "inputs": {"text": 5}}),
            422,
            "invalid_inputs",
            "input schema",
        ),
        (
            json!({"cron": "* * * * *", "webhook_url": "http://169.254.169.254/"}),
            422,
            "validation_failed",
            "webhook_url",
        ),
    ] {
        let (got, error) = schedule(&mesh, &user, "echo", body.clone()).await;
        assert_eq!(got, status, "{body}: {error}");
        assert_eq!(error["error"]["code"], code, "{body}: {error}");
        assert!(
            error["error"]["message"].as_str().unwrap().contains(needle),
            "{body}: {error}"
        );
    }
    let (status, _) = schedule(&mesh, &user, "no-such-agent", json!({"cron": "* * * * *"})).await;
    assert_eq!(status, 404);
    let (_, list) = call(&mesh, Method::GET, "/v1/schedules", &user, None).await;
    assert_eq!(list["items"], json!([]), "{list}");

    let response = mesh
        .request(Method::POST, "/v1/agents/echo/schedules", Some(&user))
        .json(&json!({"cron": "* * * * *", "timezone": "Asia/Kolkata", "inputs": {"text": "tick"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let location = response.headers()["location"].to_str().unwrap().to_string();
    let created: Value = response.json().await.unwrap();
    let id = created["id"].as_str().unwrap().to_string();
    assert_eq!(location, format!("/v1/schedules/{id}"));
    assert_eq!(created["status"], "active", "{created}");
    assert_eq!(created["timezone"], "Asia/Kolkata", "{created}");
    assert_eq!(created["runs"], 0, "{created}");
    assert!(
        created.get("mandate").is_none(),
        "a free agent needs no mandate: {created}"
    );
    let next = parse_time(&created["next_run_at"]);
    let wait = next - chrono::Utc::now();
    assert!(wait <= chrono::Duration::seconds(60), "{created}");

    // The minute comes; the run is the owner's, with the schedule's inputs.
    let ran = until(&mesh, &user, &id, Duration::from_secs(90), |s| {
        s["runs"] == 1
    })
    .await;
    let execution = ran["last_execution_id"].as_str().unwrap();
    assert!(ran.get("last_error").is_none(), "{ran}");
    assert!(parse_time(&ran["last_run_at"]) >= next, "{ran}");
    assert!(parse_time(&ran["next_run_at"]) > next, "{ran}");
    let (_, done) = mesh.follow(&user, execution).await.unwrap();
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["output"], json!({"echo": "tick"}), "{done}");
    let (_, mine) = call(&mesh, Method::GET, "/v1/executions", &user, None).await;
    assert!(
        mine["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["id"] == execution),
        "{mine}"
    );

    // Nobody else sees or deletes it.
    let (status, _) = call(
        &mesh,
        Method::GET,
        &format!("/v1/schedules/{id}"),
        &other,
        None,
    )
    .await;
    assert_eq!(status, 404);
    let (status, _) = call(
        &mesh,
        Method::DELETE,
        &format!("/v1/schedules/{id}"),
        &other,
        None,
    )
    .await;
    assert_eq!(status, 404);
    let (_, list) = call(&mesh, Method::GET, "/v1/schedules", &user, None).await;
    assert_eq!(list["items"][0]["id"], id.as_str(), "{list}");

    let response = mesh
        .request(Method::DELETE, &format!("/v1/schedules/{id}"), Some(&user))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 204);
    let (status, body) = call(
        &mesh,
        Method::GET,
        &format!("/v1/schedules/{id}"),
        &user,
        None,
    )
    .await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"]["code"], "not_found");
    mesh.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_holds_a_bounded_number_and_a_ban_stops_the_runs() {
    let mesh = Mesh::start_with(Backend::PostgresS3, |config| {
        config.schedules.schedules_per_account = 2;
        config.schedules.schedule_poll_ms = 100;
    })
    .await
    .unwrap();
    publish_echo(&mesh, "echo", None).await;
    let user = mesh.account("bounded-user", "user").await.unwrap();
    let yearly = json!({"cron": "0 0 1 1 *", "inputs": {"text": "x"}});
    let mut ids = Vec::new();
    for _ in 0..2 {
        let (status, created) = schedule(&mesh, &user, "echo", yearly.clone()).await;
        assert_eq!(status, 201, "{created}");
        ids.push(created["id"].as_str().unwrap().to_string());
    }
    // One user cannot flood the tickers: the third is refused until one is deleted.
    let (status, refused) = schedule(&mesh, &user, "echo", yearly.clone()).await;
    assert_eq!(status, 429, "{refused}");
    assert_eq!(refused["error"]["code"], "rate_limited", "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("at most 2 schedules"),
        "{refused}"
    );
    let (status, _) = call(
        &mesh,
        Method::DELETE,
        &format!("/v1/schedules/{}", ids[1]),
        &user,
        None,
    )
    .await;
    assert_eq!(status, 204);
    let (status, created) = schedule(&mesh, &user, "echo", yearly.clone()).await;
    assert_eq!(status, 201, "{created}");

    // A ban: no new schedule, and the next tick of an existing one makes no run and says why.
    let (status, banned) = call(
        &mesh,
        Method::POST,
        "/v1/agents/echo/ban",
        &mesh.admin_key,
        Some(json!({"reason": "abuse"})),
    )
    .await;
    assert_eq!(status, 200, "{banned}");
    let (status, refused) = schedule(&mesh, &user, "echo", yearly).await;
    assert_eq!(status, 409, "{refused}");
    assert_eq!(refused["error"]["code"], "agent_banned", "{refused}");
    let db = Database::connect(mesh.database_url()).await.unwrap();
    make_due(&db, std::slice::from_ref(&ids[0]), "1 second").await;
    let stopped = until(&mesh, &user, &ids[0], Duration::from_secs(60), |s| {
        s.get("last_error").is_some()
    })
    .await;
    assert!(
        stopped["last_error"]
            .as_str()
            .unwrap()
            .starts_with("agent_banned"),
        "{stopped}"
    );
    assert_eq!(stopped["runs"], 0, "{stopped}");
    assert!(runs_by_schedule(&db).await.is_empty());
    mesh.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_make_one_run_and_one_hold_per_tick() {
    let mut mesh = Mesh::with_queue(Backend::PostgresS3, |config| {
        config.schedules.schedule_poll_ms = 20;
    })
    .await
    .unwrap();
    mesh.start_node(2).await.unwrap();
    publish_echo(&mesh, "paid-echo", Some(5000)).await;
    let replica = mesh
        .replica(|config| config.schedules.schedule_poll_ms = 20)
        .await
        .unwrap();
    let user = mesh.account("race-user", "user").await.unwrap();
    let mut ids = Vec::new();
    for i in 0..12 {
        let (status, created) = schedule(
            &mesh,
            &user,
            "paid-echo",
            json!({"cron": "0 0 1 1 *", "inputs": {"text": format!("s{i}")},
                   "mandate": {"max_amount_minor": 5000}}),
        )
        .await;
        assert_eq!(status, 201, "{created}");
        ids.push(created["id"].as_str().unwrap().to_string());
    }
    let db = Database::connect(mesh.database_url()).await.unwrap();
    // Three ticks in a row, each taken by whichever replica gets there first.
    for round in 1..=3 {
        make_due(&db, &ids, "1 second").await;
        for id in &ids {
            until(&mesh, &user, id, Duration::from_secs(60), |s| {
                s["runs"] == round && parse_time(&s["next_run_at"]) > chrono::Utc::now()
            })
            .await;
        }
    }
    let runs = runs_by_schedule(&db).await;
    assert_eq!(runs.len(), ids.len(), "{runs:?}");
    assert!(runs.values().all(|&n| n == 3), "a tick ran twice: {runs:?}");
    // The rail's own record: one hold per run, none made and voided by a losing replica.
    let holds = holds_of(&mesh, 5000).await;
    assert_eq!(holds.len(), ids.len() * 3, "{holds:?}");
    let voided: Vec<_> = holds.iter().filter(|h| h.state == "voided").collect();
    let calls: Vec<_> = rail::calls(mesh.database_url())
        .await
        .unwrap()
        .into_iter()
        .filter(|c| {
            voided.iter().any(|h| {
                c.authorization_id.as_deref() == Some(h.id.as_str())
                    || c.idempotency_key == h.idempotency_key
            })
        })
        .collect();
    assert!(
        voided.is_empty(),
        "{voided:?}\n{calls:?}\n{:?}",
        statuses(&db).await
    );
    replica.stop().await.unwrap();
    mesh.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ticks_missed_while_the_control_plane_was_down_run_once() {
    let mut mesh = Mesh::with_queue(Backend::PostgresS3, |_| {}).await.unwrap();
    mesh.start_node(2).await.unwrap();
    publish_echo(&mesh, "echo", None).await;
    let user = mesh.account("missed-user", "user").await.unwrap();
    let (status, created) = schedule(
        &mesh,
        &user,
        "echo",
        json!({"cron": "*/5 * * * *", "inputs": {"text": "late"}}),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_string();

    // Down for an hour: twelve ticks of */5 pass with nobody to run them.
    mesh.stop_control_plane().await.unwrap();
    let db = Database::connect(mesh.database_url()).await.unwrap();
    make_due(&db, std::slice::from_ref(&id), "1 hour").await;
    mesh.start_control_plane(|_| {}).await.unwrap();

    let ran = until(&mesh, &user, &id, Duration::from_secs(60), |s| {
        s["runs"] == 1
    })
    .await;
    // One run, and the next tick is the next one from now, not the next missed one.
    let next = parse_time(&ran["next_run_at"]);
    assert!(next > chrono::Utc::now(), "{ran}");
    assert!(
        next <= chrono::Utc::now() + chrono::Duration::minutes(5),
        "{ran}"
    );
    assert_eq!(runs_by_schedule(&db).await.get(&id), Some(&1));
    let (_, done) = mesh
        .follow(&user, ran["last_execution_id"].as_str().unwrap())
        .await
        .unwrap();
    assert_eq!(done["status"], "succeeded", "{done}");
    mesh.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_between_the_run_and_the_schedule_leaves_one_run() {
    let mut mesh = Mesh::with_queue(Backend::PostgresS3, |_| {}).await.unwrap();
    mesh.start_node(2).await.unwrap();
    publish_echo(&mesh, "paid-echo", Some(5000)).await;
    let user = mesh.account("crash-user", "user").await.unwrap();
    let (status, created) = schedule(
        &mesh,
        &user,
        "paid-echo",
        json!({"cron": "0 0 1 1 *", "inputs": {"text": "once"},
               "mandate": {"max_amount_minor": 5000}}),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    let db = Database::connect(mesh.database_url()).await.unwrap();

    // A control plane process that stops dead once the tick's run is made, with the
    // schedule's row still locked and not advanced.
    mesh.stop_control_plane().await.unwrap();
    let program = std::path::Path::new(env!("CARGO_BIN_EXE_frameos-test-control-plane"));
    let mut control_plane = mesh
        .spawn_control_plane(program, &["--block-after-scheduled-run"])
        .await
        .unwrap();
    make_due(&db, std::slice::from_ref(&id), "1 second").await;
    let marker = control_plane
        .wait_for_line(SCHEDULED_MARKER, Duration::from_secs(60))
        .await
        .unwrap();
    let (schedule_id, execution) = marker.split_once(' ').unwrap();
    assert_eq!(schedule_id, id);
    let execution = execution.to_string();
    control_plane.kill().await.unwrap();
    assert_eq!(runs_by_schedule(&db).await.get(&id), Some(&1));

    // The next control plane takes the same tick (the dead one's lock went with its
    // connection) and its key finds the run already made.
    mesh.start_control_plane(|_| {}).await.unwrap();
    let ran = until(&mesh, &user, &id, Duration::from_secs(60), |s| {
        s["runs"] == 1
    })
    .await;
    assert_eq!(ran["last_execution_id"], execution.as_str(), "{ran}");
    assert!(
        parse_time(&ran["next_run_at"]) > chrono::Utc::now(),
        "{ran}"
    );
    assert_eq!(runs_by_schedule(&db).await.get(&id), Some(&1));
    let (_, done) = mesh.follow(&user, &execution).await.unwrap();
    assert_eq!(done["status"], "succeeded", "{done}");
    // The rail's record: one hold for the tick, not one per replica that handled it.
    let holds = holds_of(&mesh, 5000).await;
    assert_eq!(holds.len(), 1, "{holds:?}");
    mesh.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn frameos_dev_on_sqlite_runs_a_due_schedule_once() {
    // SQLite has no row locks and one writer: the tick must not hold a transaction while the
    // run is inserted (it did, and the pool waited 30 s for itself).
    let binary = std::path::Path::new(env!("CARGO_BIN_EXE_frameos-test-dev"));
    let data = DevData::new().unwrap();
    let dev = DevProcess::start(binary, &data).await.unwrap();
    let developer = dev.account("sqlite-dev", "developer").await.unwrap();
    let code = "module.exports = async (inputs) => ({echo: inputs.text});\n";
    dev.publish_approved(
        &developer,
        "echo",
        packages::node_agent("echo", "1.0.0", code),
        None,
    )
    .await
    .unwrap();
    let user = dev.account("sqlite-user", "user").await.unwrap();
    let response = dev
        .request(Method::POST, "/v1/agents/echo/schedules", &user)
        .json(&json!({"cron": "0 0 1 1 *", "inputs": {"text": "dev"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201);
    let id = response.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    // Due since long ago: every tick since then was missed, and one run is made.
    let db = Database::connect(data.database_url()).await.unwrap();
    db.execute_raw(Statement::from_string(
        db.get_database_backend(),
        format!("UPDATE schedules SET next_run_at = '2020-01-01 00:00:00+00:00' WHERE id = '{id}'"),
    ))
    .await
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let ran = loop {
        let schedule: Value = dev
            .request(Method::GET, &format!("/v1/schedules/{id}"), &user)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if schedule["runs"] == 1 {
            break schedule;
        }
        assert!(Instant::now() < deadline, "never ran: {schedule}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(
        parse_time(&ran["next_run_at"]) > chrono::Utc::now(),
        "{ran}"
    );
    let execution = ran["last_execution_id"].as_str().unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let done = dev.execution(&user, execution).await.unwrap();
        if done["status"] == "succeeded" {
            assert_eq!(done["output"], json!({"echo": "dev"}), "{done}");
            break;
        }
        assert!(Instant::now() < deadline, "not succeeded: {done}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    dev.kill().await.unwrap();
}

/// A mandate's `payload` (standard base64), checked with ring (not the platform's dalek)
/// against the JWKS key of `kid`; its JSON.
async fn verify_with_jwks(mesh: &Mesh, mandate: &Value) -> Value {
    let jwks: Value = mesh
        .request(Method::GET, "/.well-known/jwks.json", None)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let kid = &mandate["kid"];
    let key = jwks["keys"]
        .as_array()
        .unwrap()
        .iter()
        .find(|k| &k["kid"] == kid)
        .unwrap_or_else(|| panic!("no key {kid} in {jwks}"));
    assert_eq!(key["crv"], "Ed25519");
    let x = URL_SAFE_NO_PAD.decode(key["x"].as_str().unwrap()).unwrap();
    let payload = STANDARD
        .decode(mandate["payload"].as_str().unwrap())
        .unwrap();
    let signature = STANDARD
        .decode(mandate["signature"].as_str().unwrap())
        .unwrap();
    ring::signature::UnparsedPublicKey::new(&ring::signature::ED25519, x)
        .verify(&payload, &signature)
        .expect("the mandate's signature does not verify");
    serde_json::from_slice(&payload).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_paid_schedule_spends_under_the_standing_mandate_its_payer_gave() {
    let mut mesh = Mesh::with_queue(Backend::PostgresS3, |config| {
        config.schedules.schedule_poll_ms = 100;
    })
    .await
    .unwrap();
    mesh.start_node(2).await.unwrap();
    let dev = publish_echo(&mesh, "paid", Some(5000)).await;
    let user = mesh.account("payer", "user").await.unwrap();
    let db = Database::connect(mesh.database_url()).await.unwrap();
    let yearly = |mandate: Value| json!({"cron": "0 0 1 1 *", "inputs": {"text": "paid"}, "mandate": mandate});

    // No consent, too little, or an expiry out of range: refused, nothing held or recorded.
    let (status, body) = schedule(&mesh, &user, "paid", json!({"cron": "* * * * *"})).await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (422, &json!("validation_failed")),
        "{body}"
    );
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("mandate"),
        "{body}"
    );
    let (status, body) = schedule(
        &mesh,
        &user,
        "paid",
        yearly(json!({"max_amount_minor": 4999})),
    )
    .await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (402, &json!("budget_exceeded")),
        "{body}"
    );
    let (status, body) = schedule(
        &mesh,
        &user,
        "paid",
        yearly(json!({"max_amount_minor": 5000, "expires_at": "2020-01-01T00:00:00Z"})),
    )
    .await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (422, &json!("validation_failed")),
        "{body}"
    );
    let (_, list) = call(&mesh, Method::GET, "/v1/schedules", &user, None).await;
    assert_eq!(list["items"], json!([]), "{list}");

    let (status, created) = schedule(
        &mesh,
        &user,
        "paid",
        yearly(json!({"max_amount_minor": 6000})),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_string();
    let mandate = &created["mandate"];
    assert_eq!(mandate["max_amount_minor"], 6000, "{created}");
    assert_eq!(mandate["currency"], "INR", "{created}");
    let signed = verify_with_jwks(&mesh, mandate).await;
    assert_eq!(signed["type"], "frameos.standing_mandate.v1", "{signed}");
    assert_eq!(signed["schedule_id"], id.as_str(), "{signed}");
    assert_eq!(signed["max_amount_minor"], 6000, "{signed}");
    assert_eq!(signed["mandate_id"], mandate["mandate_id"], "{signed}");

    // A tick: the run is held, mandated under the standing mandate, and captured.
    make_due(&db, std::slice::from_ref(&id), "1 second").await;
    let ran = until(&mesh, &user, &id, Duration::from_secs(60), |s| {
        s["runs"] == 1
    })
    .await;
    let execution = ran["last_execution_id"].as_str().unwrap().to_string();
    let (_, done) = mesh.follow(&user, &execution).await.unwrap();
    assert_eq!(done["status"], "succeeded", "{done}");
    let (status, run_mandate) = call(
        &mesh,
        Method::GET,
        &format!("/v1/executions/{execution}/mandate"),
        &user,
        None,
    )
    .await;
    assert_eq!(status, 200, "{run_mandate}");
    let run_payload = verify_with_jwks(&mesh, &run_mandate).await;
    assert_eq!(
        run_payload["standing_mandate_id"], mandate["mandate_id"],
        "{run_payload}"
    );
    assert_eq!(run_payload["amount_minor"], 5000, "{run_payload}");

    // The developer raises the price above what the payer allowed: the next tick makes no
    // run, holds nothing, and says why.
    let holds_before = rail::holds(mesh.database_url()).await.unwrap().len();
    let (status, body) = call(
        &mesh,
        Method::PATCH,
        "/v1/agents/paid",
        &dev,
        Some(
            json!({"pricing": {"model": "per_execution", "price_minor": 7000, "currency": "INR"}}),
        ),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    make_due(&db, std::slice::from_ref(&id), "1 second").await;
    let refused = until(&mesh, &user, &id, Duration::from_secs(60), |s| {
        s.get("last_error").is_some()
    })
    .await;
    assert!(
        refused["last_error"]
            .as_str()
            .unwrap()
            .starts_with("budget_exceeded"),
        "{refused}"
    );
    assert!(refused.get("last_execution_id").is_none(), "{refused}");
    assert_eq!(refused["runs"], 1, "{refused}");
    assert_eq!(refused["status"], "active", "{refused}");
    assert_eq!(
        rail::holds(mesh.database_url()).await.unwrap().len(),
        holds_before
    );

    // A mandate that ends: once it has, the schedule stops for good.
    let expires = chrono::Utc::now() + chrono::Duration::seconds(3);
    let (status, short) = schedule(
        &mesh,
        &user,
        "paid",
        yearly(json!({"max_amount_minor": 9000, "expires_at": expires.to_rfc3339()})),
    )
    .await;
    assert_eq!(status, 201, "{short}");
    let short_id = short["id"].as_str().unwrap().to_string();
    tokio::time::sleep_until(
        (Instant::now() + (expires - chrono::Utc::now()).to_std().unwrap_or_default()).into(),
    )
    .await;
    make_due(&db, std::slice::from_ref(&short_id), "1 second").await;
    let expired = until(&mesh, &user, &short_id, Duration::from_secs(60), |s| {
        s["status"] == "expired"
    })
    .await;
    assert!(
        expired["last_error"].as_str().unwrap().contains("expired"),
        "{expired}"
    );
    assert!(expired.get("next_run_at").is_none(), "{expired}");
    assert_eq!(expired["runs"], 0, "{expired}");
    assert_eq!(
        rail::holds(mesh.database_url()).await.unwrap().len(),
        holds_before
    );
    mesh.shutdown().await.unwrap();
}
