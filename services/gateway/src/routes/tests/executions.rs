//! Executions against a fake control plane: what the gateway forwards, and the event stream.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, Request, StatusCode, header};
use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use frameos_core::{ChargeStatus, Error, ErrorCode, ExecutionStatus, LogStream};
use frameos_proto::ProtoEnum;
use frameos_proto::status::to_status;
use frameos_proto::v1::execution_service_server::{ExecutionService, ExecutionServiceServer};
use frameos_proto::v1::watch_execution_response::Event;
use frameos_proto::v1::{
    CancelExecutionRequest, CancelExecutionResponse, Charge, CreateExecutionRequest,
    CreateExecutionResponse, CreateStreamTokenRequest, CreateStreamTokenResponse, Execution,
    GetExecutionRequest, GetExecutionResponse, GetMandateRequest, GetMandateResponse,
    ListExecutionsRequest, ListExecutionsResponse, ListLogsRequest, ListLogsResponse, LogLine,
    Mandate, Progress, Splits, WatchExecutionRequest, WatchExecutionResponse,
};
use futures::{Stream, StreamExt, stream};
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;
use tonic::service::Routes;
use tower::ServiceExt;

use super::forwarding::{caller, serve_fake};
use super::{AppState, app, assert_error, post_json, router, send};
use crate::Config;

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

/// Answers from scripts keyed by execution id, and records every CreateExecution with the
/// trace context of its metadata.
#[derive(Clone, Default)]
struct FakeExecutions {
    created: Arc<Mutex<Vec<CreateExecutionRequest>>>,
    traced: Arc<Mutex<Vec<std::collections::HashMap<String, String>>>>,
}

fn at(seconds: i64) -> Option<prost_types::Timestamp> {
    Some(prost_types::Timestamp { seconds, nanos: 0 })
}

fn execution(id: &str, status: &str) -> Execution {
    Execution {
        id: id.into(),
        agent_slug: "word-count".into(),
        version: "1.2.0".into(),
        status: status.parse::<ExecutionStatus>().unwrap().to_proto(),
        inputs_json: r#"{"text":"a b"}"#.into(),
        created_at: at(1_700_000_000),
        account_id: "acc_developer".into(),
        ..Default::default()
    }
}

/// The charge the fake reports for an execution id: paid ones are named after their state.
fn charge(id: &str) -> Option<Charge> {
    let charge = |status: &str, splits| Charge {
        status: status.parse::<ChargeStatus>().unwrap().to_proto(),
        amount_minor: 500,
        currency: "INR".into(),
        splits,
    };
    match id {
        "ex_authorized" => Some(charge("authorized", None)),
        "ex_captured" => Some(charge(
            "captured",
            Some(Splits {
                developer: 400,
                platform: 60,
                orchestrator: 25,
                rail_fee: 15,
            }),
        )),
        _ => None,
    }
}

/// Signed bytes that no JSON re-encoding reproduces: odd spacing and key order, non-ASCII.
const MANDATE_PAYLOAD: &str = r#"{"type": "frameos.mandate.v1","execution_id":"ex_paid","amount_minor":500,"currency":"INR","expires_at":"2023-11-14T22:23:20Z","nonce":"n₹1","memo":"a+b/c"}"#;

/// Bytes whose standard base64 holds `+`, `/` and padding, unlike the URL-safe or unpadded forms.
fn mandate_signature() -> Vec<u8> {
    [0xfb, 0xff].repeat(32)
}

fn not_found() -> tonic::Status {
    to_status(&Error::not_found("execution"))
}

fn log_line(seq: u64, line: &str) -> LogLine {
    LogLine {
        seq,
        stream: LogStream::Stdout.to_proto(),
        line: line.into(),
        ts: at(1_700_000_001),
    }
}

fn event(event: Event) -> Result<WatchExecutionResponse, tonic::Status> {
    Ok(WatchExecutionResponse { event: Some(event) })
}

type EventStream =
    Pin<Box<dyn Stream<Item = Result<WatchExecutionResponse, tonic::Status>> + Send>>;

#[tonic::async_trait]
impl ExecutionService for FakeExecutions {
    async fn create_execution(
        &self,
        request: tonic::Request<CreateExecutionRequest>,
    ) -> Result<tonic::Response<CreateExecutionResponse>, tonic::Status> {
        caller(&request)?;
        let context = ["traceparent", "tracestate"]
            .into_iter()
            .filter_map(|name| {
                let value = request.metadata().get(name)?.to_str().ok()?;
                Some((name.to_string(), value.to_string()))
            })
            .collect();
        let body = request.into_inner();
        if body.idempotency_key == "reused" {
            return Err(to_status(&Error::new(
                ErrorCode::IdempotencyKeyReused,
                "this Idempotency-Key came with another body",
            )));
        }
        self.created.lock().unwrap().push(body.clone());
        self.traced.lock().unwrap().push(context);
        Ok(tonic::Response::new(CreateExecutionResponse {
            execution: Some(Execution {
                agent_slug: body.agent_slug,
                inputs_json: body.inputs_json,
                ..execution("ex_new", "queued")
            }),
        }))
    }

    async fn get_execution(
        &self,
        request: tonic::Request<GetExecutionRequest>,
    ) -> Result<tonic::Response<GetExecutionResponse>, tonic::Status> {
        caller(&request)?;
        let id = request.into_inner().id;
        if id == "missing" {
            return Err(not_found());
        }
        Ok(tonic::Response::new(GetExecutionResponse {
            execution: Some(Execution {
                progress: Some(0.25),
                progress_message: Some("reading".into()),
                attempts: 1,
                started_at: at(1_700_000_001),
                charge: charge(&id),
                ..execution(&id, "running")
            }),
        }))
    }

    async fn list_executions(
        &self,
        request: tonic::Request<ListExecutionsRequest>,
    ) -> Result<tonic::Response<ListExecutionsResponse>, tonic::Status> {
        caller(&request)?;
        let query = request.into_inner();
        // Echoes the filters, so the test sees what arrived.
        Ok(tonic::Response::new(ListExecutionsResponse {
            items: vec![Execution {
                agent_slug: query.agent_slug,
                status: query.status,
                ..execution("ex_1", "queued")
            }],
            next_page_token: format!("after-{}-{}", query.page_token, query.page_size),
        }))
    }

    async fn cancel_execution(
        &self,
        request: tonic::Request<CancelExecutionRequest>,
    ) -> Result<tonic::Response<CancelExecutionResponse>, tonic::Status> {
        caller(&request)?;
        let id = request.into_inner().id;
        Ok(tonic::Response::new(CancelExecutionResponse {
            execution: Some(Execution {
                finished_at: at(1_700_000_002),
                ..execution(&id, "canceled")
            }),
        }))
    }

    async fn list_logs(
        &self,
        request: tonic::Request<ListLogsRequest>,
    ) -> Result<tonic::Response<ListLogsResponse>, tonic::Status> {
        caller(&request)?;
        let query = request.into_inner();
        let first = query.after_seq + 1;
        let last = query.after_seq + u64::from(query.page_size);
        Ok(tonic::Response::new(ListLogsResponse {
            items: (first..=last).map(|seq| log_line(seq, "line")).collect(),
            next_page_token: last.to_string(),
        }))
    }

    async fn get_mandate(
        &self,
        request: tonic::Request<GetMandateRequest>,
    ) -> Result<tonic::Response<GetMandateResponse>, tonic::Status> {
        caller(&request)?;
        if request.into_inner().id != "ex_paid" {
            return Err(to_status(&Error::not_found(
                "a mandate for this execution (free agents have none)",
            )));
        }
        Ok(tonic::Response::new(GetMandateResponse {
            mandate: Some(Mandate {
                payload: MANDATE_PAYLOAD.as_bytes().to_vec(),
                signature: mandate_signature(),
                kid: "mk_2023".into(),
                jws: "aGVhZGVy.cGF5bG9hZA.c2ln".into(),
            }),
        }))
    }

    async fn create_stream_token(
        &self,
        request: tonic::Request<CreateStreamTokenRequest>,
    ) -> Result<tonic::Response<CreateStreamTokenResponse>, tonic::Status> {
        caller(&request)?;
        let id = request.into_inner().execution_id;
        if id == "missing" {
            return Err(not_found());
        }
        Ok(tonic::Response::new(CreateStreamTokenResponse {
            token: format!("tok_{id}"),
            expires_at: at(1_700_000_300),
        }))
    }

    type WatchExecutionStream = EventStream;

    async fn watch_execution(
        &self,
        request: tonic::Request<WatchExecutionRequest>,
    ) -> Result<tonic::Response<EventStream>, tonic::Status> {
        // A stream token of this execution (`tok_<id>`) stands for a key.
        let token = request
            .metadata()
            .get("frameos-stream-token")
            .map(|v| v.to_str().unwrap_or_default().to_string());
        match token {
            Some(token) if token == format!("tok_{}", request.get_ref().id) => {}
            Some(_) => {
                return Err(to_status(&Error::new(
                    ErrorCode::Unauthenticated,
                    "this stream token is for another execution",
                )));
            }
            None => {
                caller(&request)?;
            }
        }
        let WatchExecutionRequest { id, after_seq } = request.into_inner();
        let log = |n: u64, line: &str| event(Event::Log(log_line(after_seq + n, line)));
        let status = |status: &str| event(Event::Status(execution(&id, status)));
        let script: EventStream = match id.as_str() {
            "ex_done" => Box::pin(stream::iter([
                log(1, "starting"),
                event(Event::Progress(Progress {
                    fraction: 0.5,
                    message: "half way".into(),
                })),
                status("running"),
                log(2, "done"),
                status("succeeded"),
                log(3, "after the end"),
            ])),
            "ex_broken" => Box::pin(stream::iter([
                log(1, "starting"),
                Err(to_status(&Error::internal("the database went away"))),
            ])),
            "ex_open" => Box::pin(stream::iter([status("running")])),
            "ex_slow" => {
                let done = status("succeeded");
                Box::pin(
                    stream::iter([status("running")]).chain(stream::once(async move {
                        tokio::time::sleep(Duration::from_millis(1500)).await;
                        done
                    })),
                )
            }
            _ => return Err(not_found()),
        };
        // The stream stays open after its script: ending it is the gateway's job.
        Ok(tonic::Response::new(Box::pin(
            script.chain(stream::pending()),
        )))
    }
}

async fn fake_control_plane(shutdown: CancellationToken, executions: FakeExecutions) -> Config {
    serve_fake(
        shutdown,
        Routes::new(ExecutionServiceServer::new(executions)),
    )
    .await
}

fn traceparent_fields(value: &str) -> Vec<String> {
    value.split('-').map(str::to_string).collect()
}

/// The forwarded `traceparent`'s fields, checked to be well formed: version 00, lowercase hex
/// ids that are not all zero, and the sampled flag.
fn traceparent(headers: &std::collections::HashMap<String, String>) -> Vec<String> {
    let fields = traceparent_fields(&headers["traceparent"]);
    let hex = |s: &str, len| {
        s.len() == len
            && s.bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
    };
    assert_eq!(fields.len(), 4, "{fields:?}");
    assert_eq!(fields[0], "00");
    assert!(
        hex(&fields[1], 32) && fields[1] != "0".repeat(32),
        "{fields:?}"
    );
    assert!(
        hex(&fields[2], 16) && fields[2] != "0".repeat(16),
        "{fields:?}"
    );
    assert_eq!(fields[3], "01");
    fields
}

fn authorized(method: &str, path: &str) -> axum::http::request::Builder {
    Request::builder()
        .method(method)
        .uri(path)
        .header(header::AUTHORIZATION, "Bearer good")
}

#[tokio::test]
async fn creating_an_execution_is_202_and_forwards_the_key_and_trace_context() {
    frameos_telemetry::init_for_tests();
    let shutdown = CancellationToken::new();
    let fake = FakeExecutions::default();
    let app = app(&fake_control_plane(shutdown.clone(), fake.clone()).await);

    let request = authorized("POST", "/v1/agents/word-count/executions")
        .header(header::CONTENT_TYPE, "application/json")
        .header("idempotency-key", "order-17")
        .header("traceparent", TRACEPARENT)
        .header("tracestate", "rojo=00f067aa0ba902b7")
        .body(Body::from(r#"{"inputs": {"text": "a b"}}"#))
        .unwrap();
    let response = app.clone().oneshot(request).await.unwrap();
    assert_eq!(response.status(), StatusCode::ACCEPTED);
    assert_eq!(
        response.headers()[header::LOCATION],
        "/v1/executions/ex_new"
    );
    let bytes = axum::body::to_bytes(response.into_body(), 1 << 16)
        .await
        .unwrap();
    let created: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(
        created,
        json!({
            "id": "ex_new",
            "agent": "word-count",
            "version": "1.2.0",
            "status": "queued",
            "inputs": {"text": "a b"},
            "attempts": 0,
            "created_at": "2023-11-14T22:13:20Z",
        })
    );

    let (status, body) = send(
        &app,
        post_json(
            "/v1/agents/word-count/executions",
            Some("good"),
            r#"{"inputs": [1, null], "version": "1.0.0"}"#,
        ),
    )
    .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["inputs"], json!([1, null]));
    {
        let created = fake.created.lock().unwrap();
        assert_eq!(created.len(), 2);
        assert_eq!(created[0].agent_slug, "word-count");
        assert_eq!(created[0].version, "");
        assert_eq!(created[0].inputs_json, r#"{"text":"a b"}"#);
        assert_eq!(created[0].idempotency_key, "order-17");
        // The client's trace goes on in the call's metadata, from the gateway's own span.
        let traced = fake.traced.lock().unwrap();
        assert_eq!(traced[0].len(), 2);
        let forwarded = traceparent(&traced[0]);
        let sent = traceparent_fields(TRACEPARENT);
        assert_eq!(forwarded[1], sent[1]);
        assert_ne!(forwarded[2], sent[2]);
        assert_eq!(traced[0]["tracestate"], "rojo=00f067aa0ba902b7");
        assert_eq!(created[1].version, "1.0.0");
        assert_eq!(created[1].inputs_json, "[1,null]");
        assert_eq!(created[1].idempotency_key, "");
        // Without one, the execution starts a trace of its own.
        assert_eq!(traced[1].len(), 1);
        let started = traceparent(&traced[1]);
        assert_ne!(started[1], sent[1]);
        assert_ne!(started[1], forwarded[1]);
    }

    let mut reused = post_json(
        "/v1/agents/word-count/executions",
        Some("good"),
        r#"{"inputs": 2}"#,
    );
    reused
        .headers_mut()
        .insert("idempotency-key", "reused".parse().unwrap());
    let (status, body) = send(&app, reused).await;
    assert_error(status, &body, ErrorCode::IdempotencyKeyReused);

    // An invalid key wins over an invalid header or body.
    let mut forged = post_json("/v1/agents/word-count/executions", Some("forged"), "{}");
    forged
        .headers_mut()
        .insert("idempotency-key", "k".repeat(300).parse().unwrap());
    let (status, body) = send(&app, forged).await;
    assert_error(status, &body, ErrorCode::Unauthenticated);
    shutdown.cancel();
}

#[tokio::test]
async fn execution_reads_and_cancel_are_forwarded_and_translated() {
    let shutdown = CancellationToken::new();
    let app = app(&fake_control_plane(shutdown.clone(), FakeExecutions::default()).await);
    let get = |path: &str| authorized("GET", path).body(Body::empty()).unwrap();

    let (status, body) = send(&app, get("/v1/executions/ex_1")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({
            "id": "ex_1",
            "agent": "word-count",
            "version": "1.2.0",
            "status": "running",
            "inputs": {"text": "a b"},
            "progress": 0.25,
            "progress_message": "reading",
            "attempts": 1,
            "created_at": "2023-11-14T22:13:20Z",
            "started_at": "2023-11-14T22:13:21Z",
        })
    );
    let (status, body) = send(&app, get("/v1/executions/missing")).await;
    assert_error(status, &body, ErrorCode::NotFound);

    let cancel = authorized("POST", "/v1/executions/ex_1/cancel")
        .body(Body::empty())
        .unwrap();
    let (status, body) = send(&app, cancel).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["status"], "canceled");
    assert_eq!(body["finished_at"], "2023-11-14T22:13:22Z");

    let (status, body) = send(
        &app,
        get("/v1/executions?agent=word-count&status=failed&page_token=p1&page_size=5"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["items"][0]["agent"], "word-count");
    assert_eq!(body["items"][0]["status"], "failed");

    assert_eq!(body["next_page_token"], "after-p1-5");

    // An unknown status is refused by the gateway as it always was: 422, or 401 for a bad key.
    let unknown = authorized("GET", "/v1/executions?status=done")
        .body(Body::empty())
        .unwrap();
    let (status, body) = send(&app, unknown).await;
    assert_error(status, &body, ErrorCode::ValidationFailed);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("queued, running, succeeded"),
        "{body}"
    );
    let forged = Request::get("/v1/executions?status=done")
        .header(header::AUTHORIZATION, "Bearer forged")
        .body(Body::empty())
        .unwrap();
    let (status, body) = send(&app, forged).await;
    assert_error(status, &body, ErrorCode::Unauthenticated);

    let (status, body) = send(
        &app,
        get("/v1/executions/ex_1/logs?after_seq=3&page_size=2"),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({
            "items": [
                {"seq": 4, "stream": "stdout", "line": "line", "ts": "2023-11-14T22:13:21Z"},
                {"seq": 5, "stream": "stdout", "line": "line", "ts": "2023-11-14T22:13:21Z"},
            ],
            "next_page_token": "5",
        })
    );
    shutdown.cancel();
}

#[tokio::test]
async fn executions_of_paid_agents_show_their_charge() {
    let shutdown = CancellationToken::new();
    let app = app(&fake_control_plane(shutdown.clone(), FakeExecutions::default()).await);
    let get = |path: &str| authorized("GET", path).body(Body::empty()).unwrap();

    let (status, body) = send(&app, get("/v1/executions/ex_captured")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["charge"],
        json!({
            "status": "captured",
            "amount_minor": 500,
            "currency": "INR",
            "splits": {"developer": 400, "platform": 60, "orchestrator": 25, "rail_fee": 15},
        })
    );
    // Not captured yet: no splits from the control plane, zeros in the JSON.
    let (status, body) = send(&app, get("/v1/executions/ex_authorized")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body["charge"],
        json!({
            "status": "authorized",
            "amount_minor": 500,
            "currency": "INR",
            "splits": {"developer": 0, "platform": 0, "orchestrator": 0, "rail_fee": 0},
        })
    );
    // A free agent's execution has no charge at all.
    let (status, body) = send(&app, get("/v1/executions/ex_free")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert!(body.get("charge").is_none(), "{body}");
    shutdown.cancel();
}

#[tokio::test]
async fn mandates_are_the_signed_bytes_in_standard_base64() {
    let shutdown = CancellationToken::new();
    let app = app(&fake_control_plane(shutdown.clone(), FakeExecutions::default()).await);
    let get = |path: &str| authorized("GET", path).body(Body::empty()).unwrap();

    let (status, body) = send(&app, get("/v1/executions/ex_paid/mandate")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let mut fields: Vec<&String> = body.as_object().unwrap().keys().collect();
    fields.sort();
    assert_eq!(fields, ["kid", "payload", "signature"], "{body}");
    assert_eq!(body["kid"], "mk_2023");

    let payload = body["payload"].as_str().unwrap();
    assert_eq!(
        STANDARD.decode(payload).unwrap(),
        MANDATE_PAYLOAD.as_bytes()
    );
    let signed: Value = serde_json::from_slice(&STANDARD.decode(payload).unwrap()).unwrap();
    assert_eq!(signed["type"], "frameos.mandate.v1");

    let signature = body["signature"].as_str().unwrap();
    let bytes = STANDARD.decode(signature).unwrap();
    assert_eq!(bytes.len(), 64);
    assert_eq!(bytes, mandate_signature());
    // The standard alphabet, padded: `+` and `/` rather than `-` and `_`, and `==` at the end.
    assert_eq!(signature.len(), 88);
    assert!(signature.starts_with("+//7//v/"), "{signature}");
    assert!(signature.ends_with("/w=="), "{signature}");

    // The same mandate as the control plane's compact JWS, on request; an unknown form is the
    // caller's mistake.
    let (status, body) = send(&app, get("/v1/executions/ex_paid/mandate?format=jws")).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body, serde_json::json!({"jws": "aGVhZGVy.cGF5bG9hZA.c2ln"}));
    let (status, body) = send(&app, get("/v1/executions/ex_paid/mandate?format=jwt")).await;
    assert_error(status, &body, ErrorCode::InvalidRequest);

    let (status, body) = send(&app, get("/v1/executions/ex_free/mandate")).await;
    assert_error(status, &body, ErrorCode::NotFound);
    let request = Request::get("/v1/executions/ex_paid/mandate")
        .header(header::AUTHORIZATION, "Bearer forged")
        .body(Body::empty())
        .unwrap();
    let (status, body) = send(&app, request).await;
    assert_error(status, &body, ErrorCode::Unauthenticated);
    shutdown.cancel();
}

/// One parsed Server-Sent Event.
#[derive(Debug)]
struct Sse {
    event: String,
    id: Option<String>,
    /// `retry:` in milliseconds.
    retry: Option<u64>,
    data: Value,
}

/// The events of an SSE body; comments (keep-alives) are skipped.
fn parse_sse(text: &str) -> Vec<Sse> {
    text.split("\n\n")
        .filter_map(|block| {
            let (mut event, mut id, mut data, mut retry) = (None, None, Vec::new(), None);
            for line in block.lines().filter(|l| !l.starts_with(':')) {
                let (field, value) = line.split_once(':').unwrap_or((line, ""));
                let value = value.strip_prefix(' ').unwrap_or(value);
                match field {
                    "event" => event = Some(value.to_string()),
                    "id" => id = Some(value.to_string()),
                    "data" => data.push(value),
                    "retry" => retry = Some(value.parse().unwrap()),
                    other => panic!("unexpected field {other:?} in {block:?}"),
                }
            }
            Some(Sse {
                event: event?,
                id,
                retry,
                data: serde_json::from_str(&data.join("\n")).unwrap(),
            })
        })
        .collect()
}

/// The whole stream; the test fails if it does not end on its own.
async fn read_stream(app: &Router, request: Request<Body>) -> (StatusCode, HeaderMap, Vec<Sse>) {
    let response = app.clone().oneshot(request).await.unwrap();
    let (status, headers) = (response.status(), response.headers().clone());
    let bytes = tokio::time::timeout(
        Duration::from_secs(10),
        axum::body::to_bytes(response.into_body(), 1 << 20),
    )
    .await
    .expect("the event stream did not end")
    .unwrap();
    let text = String::from_utf8(bytes.to_vec()).unwrap();
    (status, headers, parse_sse(&text))
}

#[tokio::test]
async fn events_stream_in_order_and_end_after_the_final_status() {
    let shutdown = CancellationToken::new();
    let app = app(&fake_control_plane(shutdown.clone(), FakeExecutions::default()).await);

    let request = authorized("GET", "/v1/executions/ex_done/events?after_seq=2")
        .body(Body::empty())
        .unwrap();
    let (status, headers, events) = read_stream(&app, request).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(headers[header::CONTENT_TYPE], "text/event-stream");
    assert_eq!(headers[header::CACHE_CONTROL], "no-cache");
    let names: Vec<&str> = events.iter().map(|e| e.event.as_str()).collect();
    // Nothing but `end` after the final status, though the control plane's stream went on.
    assert_eq!(names, ["log", "progress", "status", "log", "status", "end"]);
    assert_eq!(events[5].data, json!({"status": "succeeded"}));
    // A client that ignores `end` is asked not to come back for a day.
    assert_eq!(events[5].retry, Some(86_400_000));
    assert!(events[..5].iter().all(|e| e.retry.is_none()));
    assert_eq!(events[0].id.as_deref(), Some("3"));
    assert_eq!(
        events[0].data,
        json!({"seq": 3, "stream": "stdout", "line": "starting", "ts": "2023-11-14T22:13:21Z"})
    );
    assert_eq!(
        events[1].data,
        json!({"fraction": 0.5, "message": "half way"})
    );
    assert_eq!(events[1].id, None);
    assert_eq!(events[2].data["status"], "running");
    assert_eq!(events[3].id.as_deref(), Some("4"));
    assert_eq!(events[4].data["status"], "succeeded");
    assert_eq!(events[4].data["inputs"], json!({"text": "a b"}));
    assert_eq!(events[4].data["agent"], "word-count");

    // A reconnecting EventSource sends the last id it saw; it wins over the URL's after_seq.
    let request = authorized("GET", "/v1/executions/ex_done/events?after_seq=2")
        .header("last-event-id", "7")
        .body(Body::empty())
        .unwrap();
    let (_, _, events) = read_stream(&app, request).await;
    assert_eq!(events[0].id.as_deref(), Some("8"));
    assert_eq!(events[0].data["seq"], 8);
    shutdown.cancel();
}

#[tokio::test]
async fn event_errors_are_json_before_the_stream_and_an_event_after() {
    let shutdown = CancellationToken::new();
    let app = app(&fake_control_plane(shutdown.clone(), FakeExecutions::default()).await);

    let request = authorized("GET", "/v1/executions/missing/events")
        .body(Body::empty())
        .unwrap();
    let (status, body) = send(&app, request).await;
    assert_error(status, &body, ErrorCode::NotFound);

    let request = Request::get("/v1/executions/ex_done/events")
        .header(header::AUTHORIZATION, "Bearer forged")
        .body(Body::empty())
        .unwrap();
    let (status, body) = send(&app, request).await;
    assert_error(status, &body, ErrorCode::Unauthenticated);

    let request = authorized("GET", "/v1/executions/ex_broken/events")
        .body(Body::empty())
        .unwrap();
    let (status, _, events) = read_stream(&app, request).await;
    assert_eq!(status, StatusCode::OK);
    let names: Vec<&str> = events.iter().map(|e| e.event.as_str()).collect();
    // A broken stream has no `end`: the client should resume it.
    assert_eq!(names, ["log", "error"]);
    assert_eq!(
        events[1].data,
        json!({"code": "internal", "message": "the database went away"})
    );
    shutdown.cancel();
}

#[tokio::test]
async fn event_streams_outlive_the_request_deadline_and_have_their_own_bound() {
    let shutdown = CancellationToken::new();
    let mut config = fake_control_plane(shutdown.clone(), FakeExecutions::default()).await;
    config.request_timeout_secs = 1;
    config.max_event_streams = 1;
    let state = AppState::new(&config).unwrap();
    let streams = state.streams.clone();
    let app = router(state, &config);
    let watch = |id: &str| {
        authorized("GET", &format!("/v1/executions/{id}/events"))
            .body(Body::empty())
            .unwrap()
    };

    // The one place is taken for as long as the body is open...
    let open = app.clone().oneshot(watch("ex_open")).await.unwrap();
    assert_eq!(open.status(), StatusCode::OK);
    let (status, body) = send(&app, watch("ex_done")).await;
    assert_error(status, &body, ErrorCode::Unavailable);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("event streams"),
        "{body}"
    );
    // ...and free again once the client goes away.
    drop(open);

    // Its final status comes 1.5 s in, past the 1 s request deadline.
    let (status, _, events) = read_stream(&app, watch("ex_slow")).await;
    assert_eq!(status, StatusCode::OK);
    let statuses: Vec<(&str, &Value)> = events
        .iter()
        .map(|e| (e.event.as_str(), &e.data["status"]))
        .collect();
    assert_eq!(
        statuses,
        [
            ("status", &json!("running")),
            ("status", &json!("succeeded")),
            ("end", &json!("succeeded"))
        ]
    );

    // A stopping gateway ends its open streams, which would otherwise hold up the shutdown.
    let open = app.clone().oneshot(watch("ex_open")).await.unwrap();
    let mut body = open.into_body().into_data_stream();
    let first = body.next().await.unwrap().unwrap();
    let events = parse_sse(std::str::from_utf8(&first).unwrap());
    assert_eq!(events[0].data["status"], "running");
    streams.close_all();
    let rest = tokio::time::timeout(Duration::from_secs(5), body.collect::<Vec<_>>())
        .await
        .expect("the stream did not end with the gateway");
    assert!(rest.is_empty(), "{rest:?}");
    shutdown.cancel();
}

#[tokio::test]
async fn a_stream_token_opens_its_executions_events_and_no_other_route() {
    let shutdown = CancellationToken::new();
    let app = app(&fake_control_plane(shutdown.clone(), FakeExecutions::default()).await);

    let request = authorized("POST", "/v1/executions/ex_done/stream-token")
        .body(Body::empty())
        .unwrap();
    let (status, body) = send(&app, request).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(
        body,
        json!({"token": "tok_ex_done", "expires_at": "2023-11-14T22:18:20Z"})
    );
    let request = authorized("POST", "/v1/executions/missing/stream-token")
        .body(Body::empty())
        .unwrap();
    let (status, body) = send(&app, request).await;
    assert_error(status, &body, ErrorCode::NotFound);
    let (status, body) = send(
        &app,
        post_json("/v1/executions/ex_done/stream-token", None, ""),
    )
    .await;
    assert_error(status, &body, ErrorCode::Unauthenticated);

    // No Authorization header: the token is the credential, carried to the control plane.
    let request = Request::get("/v1/executions/ex_done/events?access_token=tok_ex_done")
        .body(Body::empty())
        .unwrap();
    let (status, _, events) = read_stream(&app, request).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(events.last().map(|e| e.event.as_str()), Some("end"));
    // The control plane's refusal (another execution's token) is the usual JSON 401.
    let request = Request::get("/v1/executions/ex_open/events?access_token=tok_ex_done")
        .body(Body::empty())
        .unwrap();
    let (status, body) = send(&app, request).await;
    assert_error(status, &body, ErrorCode::Unauthenticated);
    // A key and a token: which one counts would be a guess.
    let request = authorized(
        "GET",
        "/v1/executions/ex_done/events?access_token=tok_ex_done",
    )
    .body(Body::empty())
    .unwrap();
    let (status, body) = send(&app, request).await;
    assert_error(status, &body, ErrorCode::InvalidRequest);
    // Neither: the message says how a browser gets in.
    let (status, body) = send(&app, super::get("/v1/executions/ex_done/events")).await;
    assert_error(status, &body, ErrorCode::Unauthenticated);
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("access_token"),
        "{body}"
    );

    // Every other route refuses a token, even beside a valid key.
    for path in [
        "/v1/executions/ex_done?access_token=tok_ex_done",
        "/v1/executions/ex_done/logs?access_token=tok_ex_done",
        "/v1/executions?access_token=tok_ex_done",
        "/healthz?access_token=tok_ex_done",
    ] {
        let request = authorized("GET", path).body(Body::empty()).unwrap();
        let (status, body) = send(&app, request).await;
        assert_error(status, &body, ErrorCode::Unauthenticated);
        assert!(
            body["error"]["message"]
                .as_str()
                .unwrap()
                .contains("/events"),
            "{path}: {body}"
        );
    }
    shutdown.cancel();
}
