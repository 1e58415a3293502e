//! Browsers (API.md §4.3, ADR 0023): stream tokens that open one execution's `/events` as
//! `?access_token=` and nothing else, on every replica, never logged; `event: end` on the stream
//! of an ended execution; and a real EventSource in headless Chromium (driven by puppeteer-core,
//! `tests/browser/eventsource.cjs`) against a mesh with CORS for the page's origin.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::{DateTime, Utc};
use frameos_integration_tests::processes::ServiceProcess;
use frameos_integration_tests::{Backend, Mesh, packages};
use futures::StreamExt;
use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

/// The key every control plane replica of these tests shares (`FRAMEOS_STREAM_TOKEN_KEY`).
const SHARED_KEY: &str = "5f0e3a1c9b7d2e4f6a8c0b1d3e5f7a9c2b4d6e8f0a1c3e5b7d9f1a3c5e7b9d0f";

async fn call(mesh: &Mesh, method: Method, path: &str, key: Option<&str>) -> (u16, Value) {
    let response = mesh.request(method, path, key).send().await.unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn assert_error(answer: &(u16, Value), status: u16, code: &str, says: &str) {
    let (got, body) = answer;
    assert_eq!(*got, status, "{body}");
    assert_eq!(body["error"]["code"], code, "{body}");
    let message = body["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains(says), "{message:?} should say {says:?}");
}

/// `POST /v1/executions/{id}/stream-token` as `key`: the token, checked to expire within 5 min.
async fn stream_token(mesh: &Mesh, key: &str, id: &str) -> String {
    let before = Utc::now();
    let (status, body) = call(
        mesh,
        Method::POST,
        &format!("/v1/executions/{id}/stream-token"),
        Some(key),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body.as_object().unwrap().len(),
        2,
        "only token and expires_at: {body}"
    );
    let expires_at: DateTime<Utc> = body["expires_at"].as_str().unwrap().parse().unwrap();
    let ahead = expires_at - before;
    assert!(
        ahead > chrono::Duration::seconds(290) && ahead <= chrono::Duration::seconds(301),
        "expires {ahead} ahead"
    );
    body["token"].as_str().unwrap().to_string()
}

/// One SSE event: name, id, parsed data.
#[derive(Debug)]
struct Sse {
    kind: String,
    id: Option<String>,
    data: Value,
}

/// Opens `url` without a key; the events until the server closes the stream (bounded).
async fn read_events(url: &str, last_event_id: Option<&str>) -> (u16, Vec<Sse>) {
    let mut request = reqwest::Client::new().get(url);
    if let Some(id) = last_event_id {
        request = request.header("last-event-id", id);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    if status != 200 {
        return (status, Vec::new());
    }
    let body = tokio::time::timeout(Duration::from_secs(30), async {
        let mut text = String::new();
        let mut chunks = response.bytes_stream();
        while let Some(chunk) = chunks.next().await {
            text.push_str(&String::from_utf8_lossy(&chunk.unwrap()));
        }
        text
    })
    .await
    .expect("the stream of an ended execution did not close");
    (status, parse_sse(&body))
}

fn parse_sse(text: &str) -> Vec<Sse> {
    text.split("\n\n")
        .filter_map(|block| {
            let (mut kind, mut id, mut data) = (None, None, String::new());
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    kind = Some(v.trim().to_string());
                } else if let Some(v) = line.strip_prefix("id:") {
                    id = Some(v.trim().to_string());
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim_start());
                }
            }
            Some(Sse {
                kind: kind?,
                id,
                data: serde_json::from_str(&data).unwrap_or(Value::String(data)),
            })
        })
        .collect()
}

/// The first event of a live stream (its head is 200; the body stays open).
async fn first_event(url: &str) -> Sse {
    let response = reqwest::Client::new().get(url).send().await.unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(response.headers()["content-type"], "text/event-stream");
    let mut chunks = response.bytes_stream();
    let mut text = String::new();
    tokio::time::timeout(Duration::from_secs(30), async {
        while !text.contains("\n\n") {
            text.push_str(&String::from_utf8_lossy(
                &chunks.next().await.unwrap().unwrap(),
            ));
        }
    })
    .await
    .expect("no first event");
    parse_sse(&text).into_iter().next().unwrap()
}

/// A mesh without nodes (executions stay queued until canceled), its key shared with the
/// test, an agent and two users.
async fn mesh_with_agent() -> (Mesh, String, String) {
    let mesh = Mesh::start_with(Backend::PostgresS3, |config| {
        config.stream_token_key = Some(SHARED_KEY.into());
    })
    .await
    .unwrap();
    let dev = mesh.account("dev", "developer").await.unwrap();
    let alice = mesh.account("alice", "user").await.unwrap();
    let bob = mesh.account("bob", "user").await.unwrap();
    let package = packages::node_agent("echo", "1.0.0", "module.exports = async (i) => i;\n");
    mesh.publish_approved(&dev, "echo", package, None)
        .await
        .unwrap();
    (mesh, alice, bob)
}

async fn execute(mesh: &Mesh, key: &str) -> String {
    let accepted = mesh
        .execute(key, "echo", json!({"text": "hi"}))
        .await
        .unwrap();
    accepted["id"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_stream_token_opens_its_executions_events_and_nothing_else() {
    let (mesh, alice, bob) = mesh_with_agent().await;
    let first = execute(&mesh, &alice).await;
    let second = execute(&mesh, &alice).await;
    let events = |id: &str, token: &str| {
        mesh.url(&format!("/v1/executions/{id}/events?access_token={token}"))
    };

    // Its user and an admin may ask; anyone else does not learn that it exists.
    let token = stream_token(&mesh, &alice, &first).await;
    stream_token(&mesh, &mesh.admin_key, &first).await;
    let path = format!("/v1/executions/{first}/stream-token");
    assert_error(
        &call(&mesh, Method::POST, &path, Some(&bob)).await,
        404,
        "not_found",
        "execution",
    );
    assert_error(
        &call(&mesh, Method::POST, &path, None).await,
        401,
        "unauthenticated",
        "API key",
    );
    let missing = "/v1/executions/00000000-0000-0000-0000-000000000000/stream-token";
    assert_error(
        &call(&mesh, Method::POST, missing, Some(&alice)).await,
        404,
        "not_found",
        "execution",
    );

    // The token alone opens the stream, as an EventSource sends it.
    let event = first_event(&events(&first, &token)).await;
    assert_eq!(event.kind, "status");
    assert_eq!(event.data["id"], first.as_str());
    assert_eq!(event.data["status"], "queued");

    // Not another execution's, not altered, not expired, not made up.
    let get = |url: String| async move {
        let response = reqwest::get(url).await.unwrap();
        (
            response.status().as_u16(),
            response.json::<Value>().await.unwrap(),
        )
    };
    assert_error(
        &get(events(&second, &token)).await,
        401,
        "unauthenticated",
        "another execution",
    );
    let mut altered = token.clone();
    altered.replace_range(altered.len() - 3.., "AAA");
    assert_error(
        &get(events(&first, &altered)).await,
        401,
        "unauthenticated",
        "signature",
    );
    let (issuer, _) =
        frameos_control_plane::StreamTokens::from_config(Some(SHARED_KEY), None).unwrap();
    let account = mesh
        .request(Method::GET, "/v1/me", Some(&alice))
        .send()
        .await
        .unwrap();
    let account: Value = account.json().await.unwrap();
    let long_ago = Utc::now() - chrono::Duration::minutes(6);
    let (expired, _) = issuer.issue(&first, account["id"].as_str().unwrap(), long_ago);
    assert_error(
        &get(events(&first, &expired)).await,
        401,
        "unauthenticated",
        "expired at",
    );
    assert_error(
        &get(events(&first, "fos_guess")).await,
        401,
        "unauthenticated",
        "not one this platform issued",
    );
    // A token minted by this very code with another key is as good as made up.
    let (stranger, _) =
        frameos_control_plane::StreamTokens::from_config(Some(&"00".repeat(32)), None).unwrap();
    let (foreign, _) = stranger.issue(&first, account["id"].as_str().unwrap(), Utc::now());
    assert_error(
        &get(events(&first, &foreign)).await,
        401,
        "unauthenticated",
        "signature",
    );

    // It is no API key, and no other route takes it, even beside a valid key.
    let bearer = call(
        &mesh,
        Method::GET,
        &format!("/v1/executions/{first}"),
        Some(&token),
    )
    .await;
    assert_error(&bearer, 401, "unauthenticated", "invalid API key");
    let as_key = mesh.request(
        Method::GET,
        &format!("/v1/executions/{first}/events"),
        Some(&token),
    );
    assert_eq!(as_key.send().await.unwrap().status(), 401);
    for (method, path) in [
        (Method::GET, format!("/v1/executions/{first}")),
        (Method::GET, format!("/v1/executions/{first}/logs")),
        (Method::POST, format!("/v1/executions/{first}/cancel")),
        (Method::POST, format!("/v1/executions/{first}/stream-token")),
        (Method::GET, "/v1/executions".to_string()),
        (Method::GET, "/v1/me".to_string()),
    ] {
        let path = format!("{path}?access_token={token}");
        for key in [None, Some(alice.as_str())] {
            let answer = call(&mesh, method.clone(), &path, key).await;
            assert_error(
                &answer,
                401,
                "unauthenticated",
                "opens only GET /v1/executions/{id}/events",
            );
        }
    }
    // With a key as well on /events, which one counts would be a guess.
    let both = mesh.request(
        Method::GET,
        &format!("/v1/executions/{first}/events?access_token={token}"),
        Some(&alice),
    );
    let both = both.send().await.unwrap();
    assert_eq!(both.status(), 400);
    // The execution was not canceled by any of the refused calls.
    let (_, execution) = call(
        &mesh,
        Method::GET,
        &format!("/v1/executions/{first}"),
        Some(&alice),
    )
    .await;
    assert_eq!(execution["status"], "queued");
    mesh.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_ended_executions_stream_replays_and_ends_every_time() {
    let (mesh, alice, _) = mesh_with_agent().await;
    let id = execute(&mesh, &alice).await;
    let (status, _) = call(
        &mesh,
        Method::POST,
        &format!("/v1/executions/{id}/cancel"),
        Some(&alice),
    )
    .await;
    assert_eq!(status, 200);

    let token = stream_token(&mesh, &alice, &id).await;
    let url = mesh.url(&format!("/v1/executions/{id}/events?access_token={token}"));
    // The final status, then `end` with it, then the server closes the stream.
    let (status, events) = read_events(&url, None).await;
    assert_eq!(status, 200);
    let kinds: Vec<&str> = events.iter().map(|e| e.kind.as_str()).collect();
    assert_eq!(kinds, ["status", "end"], "{events:?}");
    assert_eq!(events[0].data["status"], "canceled");
    assert_eq!(events[1].data, json!({"status": "canceled"}));
    assert_eq!(events[1].id, None, "end is no log line to resume after");

    // A client that reconnects anyway (as EventSource does, with Last-Event-ID) hears the same
    // end again: a 200, never an error to retry.
    for _ in 0..2 {
        let (status, again) = read_events(&url, Some("0")).await;
        assert_eq!(status, 200);
        let kinds: Vec<&str> = again.iter().map(|e| e.kind.as_str()).collect();
        assert_eq!(kinds, ["status", "end"]);
    }
    // The key holder's stream ends the same way.
    let followed = mesh.follow(&alice, &id).await.unwrap();
    assert_eq!(followed.1["status"], "canceled");
    mesh.shutdown().await.unwrap();
}

/// The address a `frameos-test-gateway` process serves on.
async fn serving_addr(process: &mut ServiceProcess) -> String {
    let serving = process
        .wait_for_log("gateway serving", Duration::from_secs(60))
        .await
        .unwrap();
    serving["addr"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn any_replica_accepts_any_replicas_tokens_and_no_log_holds_one() {
    let (mesh, alice, _) = mesh_with_agent().await;
    let id = execute(&mesh, &alice).await;
    let token = stream_token(&mesh, &alice, &id).await;

    // Another control plane replica (same database and key, nothing else shared) behind
    // another gateway, a process of its own that logs everything down to debug.
    let stop = CancellationToken::new();
    let replica = |key: &str| {
        let mut config = mesh.control_plane_config();
        config.grpc_addr = "127.0.0.1:0".parse().unwrap();
        config.migrate = false;
        config.metrics_addr = None;
        config.grpc_health_addr = None;
        config.stream_token_key = Some(key.to_string());
        let stop = stop.clone();
        async move {
            let server = frameos_control_plane::Server::bind(config).await.unwrap();
            let addr = server.local_addr();
            tokio::spawn(async move { server.run(stop).await.unwrap() });
            addr
        }
    };
    let same_key = replica(SHARED_KEY).await;
    let other_key = replica(&"ab".repeat(32)).await;
    let gateway = |addr: std::net::SocketAddr| {
        ServiceProcess::spawn(
            "gateway",
            env!("CARGO_BIN_EXE_frameos-test-gateway"),
            &[
                ("FRAMEOS_HTTP_ADDR".into(), "127.0.0.1:0".into()),
                ("FRAMEOS_CONTROL_PLANE_URL".into(), format!("http://{addr}")),
                ("RUST_LOG".into(), "debug".into()),
            ],
        )
        .unwrap()
    };
    let mut second = gateway(same_key);
    let mut third = gateway(other_key);
    let second_url = format!("http://{}", serving_addr(&mut second).await);
    let third_url = format!("http://{}", serving_addr(&mut third).await);

    let path = format!("/v1/executions/{id}/events?access_token={token}");
    let event = first_event(&format!("{second_url}{path}")).await;
    assert_eq!(event.data["status"], "queued");
    // A replica configured with another key refuses it as made up.
    let refused = reqwest::get(format!("{third_url}{path}")).await.unwrap();
    assert_eq!(refused.status(), 401);
    let body: Value = refused.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("signature"),
        "{body}"
    );
    // And a token the second replica mints opens the stream on the first.
    let minted = reqwest::Client::new()
        .post(format!("{second_url}/v1/executions/{id}/stream-token"))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    let minted: Value = minted.json().await.unwrap();
    let minted = minted["token"].as_str().unwrap();
    let on_first = mesh.url(&format!("/v1/executions/{id}/events?access_token={minted}"));
    assert_eq!(first_event(&on_first).await.data["status"], "queued");
    // Refused elsewhere on that gateway too (logged as a 401, without the query).
    let elsewhere = reqwest::get(format!(
        "{second_url}/v1/executions/{id}?access_token={token}"
    ));
    assert_eq!(elsewhere.await.unwrap().status(), 401);

    for mut process in [second, third] {
        process.signal("TERM").unwrap();
        process.exit_status(Duration::from_secs(35)).await.unwrap();
        assert!(process.seen.len() > 5, "{:?}", process.seen);
        for line in &process.seen {
            let line = line.to_string();
            for secret in [token.as_str(), minted] {
                // Any piece of it: the MAC, the payload.
                for part in secret.split('.').skip(1) {
                    assert!(
                        !line.contains(part),
                        "a gateway logged a stream token: {line}"
                    );
                }
            }
        }
    }
    stop.cancel();
    mesh.shutdown().await.unwrap();
}

/// Where the browser's packages are (scripts/test installs them there).
fn browser_dir() -> PathBuf {
    std::env::var_os("FRAMEOS_BROWSER_DIR")
        .map_or_else(|| PathBuf::from("/var/tmp/frameos-browser"), PathBuf::from)
}

/// Serves one tiny page to anything that asks, from an origin of its own.
async fn serve_page(listener: tokio::net::TcpListener, stop: CancellationToken) {
    const PAGE: &str = "<!doctype html><meta charset=utf-8><title>FrameOS live logs</title>";
    loop {
        let (mut socket, _) = tokio::select! {
            accepted = listener.accept() => accepted.unwrap(),
            () = stop.cancelled() => return,
        };
        tokio::spawn(async move {
            let mut request = [0u8; 4096];
            let _ = socket.read(&mut request).await;
            let response = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: text/html\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{PAGE}",
                PAGE.len()
            );
            let _ = socket.write_all(response.as_bytes()).await;
        });
    }
}

/// `frameos_http_requests_total` of `/events` answered `status`, from the gateway's `/metrics`.
async fn events_requests(mesh: &Mesh, status: u16) -> u64 {
    let text = reqwest::get(mesh.url("/metrics"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    text.lines()
        .filter(|l| l.starts_with("frameos_http_requests_total{"))
        .filter(|l| l.contains("route=\"/v1/executions/{id}/events\""))
        .filter(|l| l.contains(&format!("status=\"{status}\"")))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .map(|v| v as u64)
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_browser_follows_a_run_live_with_eventsource_and_stops_at_the_end() {
    let chromium = std::env::var("FRAMEOS_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let modules = browser_dir().join("node_modules");
    assert!(
        Path::new(&chromium).exists() && modules.join("puppeteer-core").exists(),
        "the browser test needs {chromium} and puppeteer-core in {}: run scripts/test, or \
         `apt-get install -y chromium` and `npm install --prefix {} puppeteer-core@24.40.0`",
        modules.display(),
        browser_dir().display()
    );
    // The page's origin is not the API's: every call is cross-origin, allowed by CORS.
    let page = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let origin = format!("http://{}", page.local_addr().unwrap());
    let stop = CancellationToken::new();
    tokio::spawn(serve_page(page, stop.clone()));
    let cors_origin = origin.clone();
    let mesh = Mesh::start_tuned(
        Backend::PostgresS3,
        true,
        |_| {},
        move |gateway| {
            gateway.cors_origins = vec![cors_origin.parse().unwrap()];
        },
    )
    .await
    .unwrap();
    let dev = mesh.account("dev", "developer").await.unwrap();
    let user = mesh.account("browser-user", "user").await.unwrap();
    let code = "module.exports = async (inputs, ctx) => {\n\
        console.log('hello from ' + inputs.text);\n\
        ctx.progress(0.5, 'half way');\n\
        console.error('a warning');\n\
        console.log('bye');\n\
        return { echoed: inputs.text };\n};\n";
    mesh.publish_approved(
        &dev,
        "live-logs",
        packages::node_agent("live-logs", "1.0.0", code),
        None,
    )
    .await
    .unwrap();

    let driver = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser/eventsource.cjs");
    let started = std::time::Instant::now();
    let output = tokio::time::timeout(
        Duration::from_secs(180),
        tokio::process::Command::new("node")
            .arg(&driver)
            .env("NODE_PATH", &modules)
            .env("FRAMEOS_CHROMIUM", &chromium)
            .env("FRAMEOS_PAGE_URL", format!("{origin}/"))
            .env("FRAMEOS_API", &mesh.base_url)
            .env("FRAMEOS_KEY", &user)
            .env("FRAMEOS_SLUG", "live-logs")
            .env("FRAMEOS_QUIET_MS", "4000")
            .kill_on_drop(true)
            .output(),
    )
    .await
    .expect("the browser did not finish")
    .unwrap();
    let elapsed = started.elapsed();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "driver failed: {stderr}");
    let result: Value = serde_json::from_slice(&output.stdout).unwrap();
    eprintln!("browser run took {elapsed:?}: {result}");
    assert_eq!(result["origin"], origin.as_str());
    let id = result["id"].as_str().unwrap();

    // Live: the run as it happened, every stored line in order, then `end` and no reconnect.
    let live = &result["live"];
    assert_eq!(live["opens"], 1, "{live}");
    assert_eq!(live["errors"], 0, "{live}");
    let events = live["events"].as_array().unwrap();
    let kinds: Vec<&str> = events.iter().map(|e| e["type"].as_str().unwrap()).collect();
    assert_eq!(kinds.first(), Some(&"status"), "{kinds:?}");
    assert_eq!(kinds.last(), Some(&"end"), "{kinds:?}");
    assert!(kinds.contains(&"progress"), "{kinds:?}");
    let statuses: Vec<&str> = events
        .iter()
        .filter(|e| e["type"] == "status")
        .map(|e| e["data"]["status"].as_str().unwrap())
        .collect();
    assert_ne!(
        statuses[0], "succeeded",
        "the stream was not live: {statuses:?}"
    );
    assert_eq!(statuses.last(), Some(&"succeeded"), "{statuses:?}");
    let end = events.last().unwrap();
    assert_eq!(end["data"], json!({"status": "succeeded"}));
    let finale = events.iter().rfind(|e| e["type"] == "status").unwrap();
    assert_eq!(finale["data"]["output"], json!({"echoed": "browser"}));
    let stored = mesh.log_lines(&user, id).await.unwrap();
    let logs: Vec<&Value> = events.iter().filter(|e| e["type"] == "log").collect();
    let lines: Vec<&Value> = logs.iter().map(|e| &e["data"]["line"]).collect();
    let stored_lines: Vec<&Value> = stored.iter().map(|l| &l["line"]).collect();
    assert_eq!(lines, stored_lines);
    assert!(
        stored_lines.contains(&&json!("hello from browser")),
        "{stored_lines:?}"
    );
    for (event, line) in logs.iter().zip(&stored) {
        assert_eq!(
            event["id"],
            line["seq"].to_string().as_str(),
            "lastEventId is the seq"
        );
        assert_eq!(event["data"], *line);
    }

    // The ended execution, opened again: the same lines replayed, its last progress, the final
    // status, `end`.
    let replay = &result["replay"];
    assert_eq!(replay["opens"], 1, "{replay}");
    let replayed: Vec<&str> = replay["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
        .collect();
    let mut expected = vec!["log"; stored.len()];
    // The last progress it reported, then the final status.
    expected.extend(["progress", "status", "end"]);
    assert_eq!(replayed, expected);

    // A page that ignores `end`: the server closed the stream, and the browser, told to wait a
    // day, did not come back within Chromium's usual 3 s.
    let ignoring = &result["ignoring"];
    assert_eq!(ignoring["opensAfterQuiet"], 1, "{ignoring}");
    assert_eq!(ignoring["eventsAfterQuiet"], expected.len(), "{ignoring}");
    assert_eq!(
        ignoring["readyStateAfterQuiet"], 0,
        "CONNECTING, waiting: {ignoring}"
    );

    // A forged token: 401, and the browser gives up at once (CLOSED), never retrying.
    let forged = &result["forged"];
    assert_eq!(forged["opens"], 0, "{forged}");
    assert_eq!(forged["readyState"], 2, "{forged}");
    assert!(forged["events"].as_array().unwrap().is_empty(), "{forged}");

    // The gateway saw exactly the three streams the page opened and the one it refused.
    assert_eq!(events_requests(&mesh, 200).await, 3);
    assert_eq!(events_requests(&mesh, 401).await, 1);
    stop.cancel();
    mesh.shutdown().await.unwrap();
}
