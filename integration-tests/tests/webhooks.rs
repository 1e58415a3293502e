//! Webhooks (API.md §5.3, ADR 0046) on real PostgreSQL, RabbitMQ and Docker, received by an
//! HTTP server in the test that checks `FrameOS-Signature` with another HMAC implementation
//! (ring's, not the RustCrypto one the platform signs with): signed, retried after failures
//! under one event id, listed attempt by attempt, redirects followed only where the egress guard
//! allows, internal targets refused at creation and after a redirect, a webhook nobody
//! accepts `failed` once its retry window closes, and an attempt whose control plane was
//! SIGKILLed mid-request made again by the next one, under the same event id.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use frameos_integration_tests::{Backend, Mesh, packages};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::sync::mpsc;

/// Seals the accounts' webhook secrets (FRAMEOS_SECRETS_KEY).
const SECRETS_KEY: &str = "k1:5a5b5c5d5e5f606162636465666768696a6b6c6d6e6f70717273747576777879";

/// One POST the receiver got.
#[derive(Debug, Clone)]
struct Received {
    path: String,
    headers: HeaderMap,
    body: Bytes,
}

/// What the receiver answers, in order; `200` once the script is used up.
#[derive(Clone)]
enum Answer {
    Status(u16),
    Redirect(u16, String),
    /// No answer at all: the attempt stays in flight until its sender dies or gives up.
    Hang,
}

#[derive(Clone)]
struct Receiver {
    script: Arc<Mutex<VecDeque<Answer>>>,
    seen: mpsc::UnboundedSender<Received>,
}

async fn receive(
    State(receiver): State<Receiver>,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let _ = receiver.seen.send(Received {
        path: uri.path().to_string(),
        headers,
        body,
    });
    let next = receiver.script.lock().unwrap().pop_front();
    match next {
        None => StatusCode::OK.into_response(),
        Some(Answer::Status(code)) => StatusCode::from_u16(code).unwrap().into_response(),
        Some(Answer::Hang) => std::future::pending().await,
        Some(Answer::Redirect(code, location)) => (
            StatusCode::from_u16(code).unwrap(),
            [(header::LOCATION, location)],
        )
            .into_response(),
    }
}

/// A receiver on a loopback port answering `script`; its POSTs arrive on the returned channel.
async fn receiver(script: Vec<Answer>) -> (SocketAddr, mpsc::UnboundedReceiver<Received>) {
    let (seen, rx) = mpsc::unbounded_channel();
    let state = Receiver {
        script: Arc::new(Mutex::new(script.into())),
        seen,
    };
    let app = axum::Router::new()
        .fallback(axum::routing::post(receive))
        .with_state(state);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, rx)
}

async fn next(rx: &mut mpsc::UnboundedReceiver<Received>) -> Received {
    tokio::time::timeout(Duration::from_secs(60), rx.recv())
        .await
        .expect("no webhook within 60 s")
        .unwrap()
}

/// Checks `FrameOS-Signature` as a receiver would, with ring's HMAC: `t=<unix>,v1=<hex>` over
/// `"<t>.<body>"`, fresh within five minutes.
fn verify(secret: &str, received: &Received) {
    assert!(
        signature_ok(secret, received),
        "the signature does not verify"
    );
}

fn signature_ok(secret: &str, received: &Received) -> bool {
    let header = received.headers["frameos-signature"].to_str().unwrap();
    let mut t = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", value)) => t = Some(value.to_string()),
            Some(("v1", value)) => v1 = Some(hex::decode(value).unwrap()),
            _ => {}
        }
    }
    let (t, v1) = (t.unwrap(), v1.unwrap());
    let key = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, secret.as_bytes());
    let mut message = format!("{t}.").into_bytes();
    message.extend_from_slice(&received.body);
    let age = chrono::Utc::now().timestamp() - t.parse::<i64>().unwrap();
    ring::hmac::verify(&key, &message, &v1).is_ok() && (0..300).contains(&age)
}

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

async fn mesh(retry_for_secs: u64) -> Mesh {
    let mut mesh = Mesh::with_queue(Backend::PostgresS3, |config| {
        // The accounts' signing secrets sealed at rest, as in production.
        config.secrets.secrets_key = Some(SECRETS_KEY.parse().unwrap());
        config.webhooks.webhook_allow_loopback = true;
        config.webhooks.webhook_retry_base_ms = 200;
        config.webhooks.webhook_retry_for_secs = retry_for_secs;
        config.webhooks.webhook_poll_ms = 100;
    })
    .await
    .unwrap();
    mesh.start_node(2).await.unwrap();
    mesh
}

/// Runs `echo` with a webhook to `url`; returns the execution's id once it has ended.
async fn run_with_webhook(mesh: &Mesh, user: &str, url: &str) -> String {
    let (status, accepted) = call(
        mesh,
        Method::POST,
        "/v1/agents/echo/executions",
        user,
        Some(json!({"inputs": {"text": "hello"}, "webhook_url": url})),
    )
    .await;
    assert_eq!(status, 202, "{accepted}");
    let id = accepted["id"].as_str().unwrap().to_string();
    let (_, done) = mesh.follow(user, &id).await.unwrap();
    assert_eq!(done["status"], "succeeded", "{done}");
    id
}

async fn deliveries(mesh: &Mesh, key: &str, id: &str) -> Value {
    let (status, list) = call(
        mesh,
        Method::GET,
        &format!("/v1/executions/{id}/webhooks"),
        key,
        None,
    )
    .await;
    assert_eq!(status, 200, "{list}");
    list
}

/// Polls the deliveries (the API offers no event for a state change) until `state`.
async fn until_state(mesh: &Mesh, key: &str, id: &str, state: &str) -> Value {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let list = deliveries(mesh, key, id).await;
        if list["items"][0]["state"] == state {
            return list["items"][0].clone();
        }
        assert!(
            std::time::Instant::now() < deadline,
            "never {state}: {list}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn publish_echo(mesh: &Mesh) -> String {
    let dev = mesh.account("hook-dev", "developer").await.unwrap();
    let code = "module.exports = async (inputs) => ({echo: inputs.text});\n";
    mesh.publish_approved(
        &dev,
        "echo",
        packages::node_agent("echo", "1.0.0", code),
        None,
    )
    .await
    .unwrap();
    mesh.account("hook-user", "user").await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_webhook_is_signed_retried_under_one_event_id_and_listed() {
    let mesh = mesh(86_400).await;
    let user = publish_echo(&mesh).await;
    let (_, secret) = call(&mesh, Method::GET, "/v1/me/webhook-secret", &user, None).await;
    let secret = secret["secret"].as_str().unwrap().to_string();
    // The same secret on every read.
    let (_, again) = call(&mesh, Method::GET, "/v1/me/webhook-secret", &user, None).await;
    assert_eq!(again["secret"], secret.as_str());

    let (addr, mut rx) = receiver(vec![Answer::Status(500), Answer::Status(503)]).await;
    let url = format!("http://{addr}/hooks/frameos");
    let id = run_with_webhook(&mesh, &user, &url).await;
    let attempts = [
        next(&mut rx).await,
        next(&mut rx).await,
        next(&mut rx).await,
    ];
    let (_, execution) = call(
        &mesh,
        Method::GET,
        &format!("/v1/executions/{id}"),
        &user,
        None,
    )
    .await;
    let event_id = attempts[0].headers["frameos-event-id"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(event_id.starts_with("evt_"), "{event_id}");
    for (n, received) in attempts.iter().enumerate() {
        verify(&secret, received);
        assert_eq!(received.path, "/hooks/frameos");
        assert_eq!(received.headers["content-type"], "application/json");
        assert_eq!(received.headers["frameos-event-id"], event_id.as_str());
        assert_eq!(
            received.headers["frameos-delivery-attempt"],
            (n + 1).to_string().as_str()
        );
        // The body is the execution JSON of API.md §2, exactly what GET shows.
        let body: Value = serde_json::from_slice(&received.body).unwrap();
        assert_eq!(body, execution, "attempt {}", n + 1);
        assert_eq!(body["output"], json!({"echo": "hello"}));
    }
    // A tampered body does not verify.
    let mut forged = attempts[2].clone();
    forged.body = Bytes::from(received_with(&attempts[2].body, "hello", "HELLO"));
    assert!(!signature_ok(&secret, &forged));
    assert!(!signature_ok("whsec_another", &attempts[2]));

    let delivered = until_state(&mesh, &user, &id, "delivered").await;
    // For the record (the notes): from the end to the first attempt, and each attempt.
    let ended =
        chrono::DateTime::parse_from_rfc3339(execution["finished_at"].as_str().unwrap()).unwrap();
    let first = chrono::DateTime::parse_from_rfc3339(
        delivered["attempts"][0]["started_at"].as_str().unwrap(),
    )
    .unwrap();
    eprintln!(
        "webhook: first attempt {} ms after the end; attempts took {:?} ms",
        (first - ended).num_milliseconds(),
        delivered["attempts"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["duration_ms"].clone())
            .collect::<Vec<_>>()
    );
    assert_eq!(delivered["id"], event_id.as_str());
    assert_eq!(delivered["url"], url.as_str());
    let statuses: Vec<&Value> = delivered["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["status"])
        .collect();
    assert_eq!(
        statuses,
        [&json!(500), &json!(503), &json!(200)],
        "{delivered}"
    );
    assert!(
        delivered["attempts"][0]["error"]
            .as_str()
            .unwrap()
            .contains("500")
    );
    assert!(
        delivered["attempts"][2].get("error").is_none(),
        "{delivered}"
    );
    assert!(delivered["delivered_at"].is_string());

    // Another execution's webhook, delivered, is the barrier: by then a repeat of the first one
    // would have arrived before it.
    let second = run_with_webhook(&mesh, &user, &url).await;
    let barrier = next(&mut rx).await;
    assert_ne!(barrier.headers["frameos-event-id"], event_id.as_str());
    until_state(&mesh, &user, &second, "delivered").await;
    assert!(rx.try_recv().is_err(), "a delivered webhook was sent again");

    // A leaked secret is replaced: webhooks from then on are signed with the new one only.
    let (status, rotated) = call(
        &mesh,
        Method::POST,
        "/v1/me/webhook-secret/rotate",
        &user,
        None,
    )
    .await;
    assert_eq!(status, 200, "{rotated}");
    let fresh = rotated["secret"].as_str().unwrap().to_string();
    assert_ne!(fresh, secret);
    let (_, read) = call(&mesh, Method::GET, "/v1/me/webhook-secret", &user, None).await;
    assert_eq!(read["secret"], fresh.as_str());
    run_with_webhook(&mesh, &user, &url).await;
    let after = next(&mut rx).await;
    verify(&fresh, &after);
    assert!(
        !signature_ok(&secret, &after),
        "still signed with the old secret"
    );

    // Nobody else sees the deliveries; an execution without a webhook lists none.
    let stranger = mesh.account("hook-stranger", "user").await.unwrap();
    let (status, _) = call(
        &mesh,
        Method::GET,
        &format!("/v1/executions/{id}/webhooks"),
        &stranger,
        None,
    )
    .await;
    assert_eq!(status, 404);
    let accepted = mesh
        .execute(&user, "echo", json!({"text": "x"}))
        .await
        .unwrap();
    let plain = accepted["id"].as_str().unwrap();
    mesh.follow(&user, plain).await.unwrap();
    assert_eq!(deliveries(&mesh, &user, plain).await["items"], json!([]));
    mesh.shutdown().await.unwrap();
}

fn received_with(body: &[u8], from: &str, to: &str) -> Vec<u8> {
    String::from_utf8(body.to_vec())
        .unwrap()
        .replace(from, to)
        .into_bytes()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn internal_targets_are_refused_before_and_after_a_redirect() {
    let mesh = mesh(2).await;
    let user = publish_echo(&mesh).await;
    let (_, before) = call(&mesh, Method::GET, "/v1/executions", &user, None).await;

    // Refused at creation: nothing is recorded.
    for url in [
        "http://10.0.0.1/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00::1]/hook",
        "ftp://example.com/hook",
        "http://user:secret@example.com/hook",
    ] {
        let (status, body) = call(
            &mesh,
            Method::POST,
            "/v1/agents/echo/executions",
            &user,
            Some(json!({"inputs": {}, "webhook_url": url})),
        )
        .await;
        assert_eq!(
            (status, &body["error"]["code"]),
            (422, &json!("validation_failed")),
            "{url}: {body}"
        );
    }
    let (_, after) = call(&mesh, Method::GET, "/v1/executions", &user, None).await;
    assert_eq!(
        before["items"], after["items"],
        "a refused request recorded an execution"
    );

    // A redirect to another loopback receiver is followed, the body POSTed there.
    let (final_addr, mut final_rx) = receiver(vec![]).await;
    let (hop_addr, mut hop_rx) = receiver(vec![Answer::Redirect(
        308,
        format!("http://{final_addr}/final"),
    )])
    .await;
    let id = run_with_webhook(&mesh, &user, &format!("http://{hop_addr}/start")).await;
    let hop = next(&mut hop_rx).await;
    let landed = next(&mut final_rx).await;
    assert_eq!(landed.path, "/final");
    assert_eq!(landed.body, hop.body);
    let delivered = until_state(&mesh, &user, &id, "delivered").await;
    assert_eq!(
        delivered["attempts"].as_array().unwrap().len(),
        1,
        "{delivered}"
    );

    // A redirect into the metadata range is not followed; with nothing accepting it, the
    // webhook fails once its (here two-second) retry window has closed.
    let (trap_addr, mut trap_rx) = receiver(
        (0..50)
            .map(|_| Answer::Redirect(307, "http://169.254.169.254/latest/meta-data/".into()))
            .collect(),
    )
    .await;
    let id = run_with_webhook(&mesh, &user, &format!("http://{trap_addr}/trap")).await;
    next(&mut trap_rx).await;
    let failed = until_state(&mesh, &user, &id, "failed").await;
    let attempts = failed["attempts"].as_array().unwrap();
    assert!(!attempts.is_empty());
    for attempt in attempts {
        let error = attempt["error"].as_str().unwrap();
        assert!(
            error.contains("egress guard") && error.contains("169.254.169.254"),
            "{error}"
        );
        assert!(attempt.get("status").is_none(), "{attempt}");
    }
    assert!(failed.get("next_attempt_at").is_none(), "{failed}");
    mesh.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_attempt_cut_by_a_killed_control_plane_is_made_again_under_its_event_id() {
    let mut mesh = mesh(86_400).await;
    let user = publish_echo(&mesh).await;
    let (_, secret) = call(&mesh, Method::GET, "/v1/me/webhook-secret", &user, None).await;
    let secret = secret["secret"].as_str().unwrap().to_string();
    let (addr, mut rx) = receiver(vec![Answer::Hang]).await;
    let url = format!("http://{addr}/hooks/frameos");

    // The control plane as a process, SIGKILLed while its first attempt waits for an answer.
    mesh.stop_control_plane().await.unwrap();
    let program = std::path::Path::new(env!("CARGO_BIN_EXE_frameos-test-control-plane"));
    let secrets_key = format!("--secrets-key={SECRETS_KEY}");
    let webhook_flags = [
        secrets_key.as_str(),
        "--webhook-allow-loopback=true",
        "--webhook-timeout-secs=5",
        "--webhook-poll-ms=100",
    ];
    let control_plane = mesh
        .spawn_control_plane(program, &webhook_flags)
        .await
        .unwrap();
    let id = run_with_webhook(&mesh, &user, &url).await;
    let cut = next(&mut rx).await;
    control_plane.kill().await.unwrap();

    // The next control plane finds the delivery leased to a worker that is gone; once the
    // lease has run out (twice the attempt's time-out, plus a margin) it makes the attempt again.
    mesh.start_control_plane(|_| {}).await.unwrap();
    let again = next(&mut rx).await;
    verify(&secret, &cut);
    verify(&secret, &again);
    assert_eq!(
        cut.headers["frameos-event-id"], again.headers["frameos-event-id"],
        "a retry is the same event"
    );
    assert_eq!(cut.body, again.body);
    let delivered = until_state(&mesh, &user, &id, "delivered").await;
    // The cut attempt left no record (its worker died before writing one); the one that
    // completed is listed.
    let attempts = delivered["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 1, "{delivered}");
    assert_eq!(attempts[0]["status"], 200, "{delivered}");
    mesh.shutdown().await.unwrap();
}
