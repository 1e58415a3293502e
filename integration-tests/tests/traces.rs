//! One trace per execution, exported over OTLP to a real receiver in this process: the REST
//! call (gateway SERVER span) → CreateExecution (gateway CLIENT, control plane SERVER) → the
//! RabbitMQ publish (PRODUCER) → the node's processing (CONSUMER) with its phases (queue wait,
//! claim, package fetch, container start and run, reports) → the settlement of the charge on the
//! control plane. Real PostgreSQL, RabbitMQ and Docker; the whole mesh runs in this process, so
//! every service exports through the one process-wide subscriber.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use frameos_integration_tests::{Backend, Mesh, packages};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as Any;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use reqwest::Method;
use serde_json::json;
use tokio::sync::watch;
use tokio_stream::wrappers::TcpListenerStream;

/// One exported span, as the receiver got it.
#[derive(Clone, Debug)]
struct Received {
    trace_id: String,
    span_id: String,
    parent_span_id: String,
    name: String,
    kind: SpanKind,
    attributes: HashMap<String, String>,
}

impl Received {
    fn attr(&self, key: &str) -> &str {
        self.attributes.get(key).map_or("", String::as_str)
    }
}

/// An OTLP/gRPC trace receiver: keeps every span and counts the exports it got.
#[derive(Clone)]
struct Receiver {
    spans: Arc<Mutex<Vec<Received>>>,
    exports: watch::Sender<u64>,
}

#[tonic::async_trait]
impl TraceService for Receiver {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let spans = request
            .into_inner()
            .resource_spans
            .into_iter()
            .flat_map(|r| r.scope_spans)
            .flat_map(|s| s.spans)
            .map(|span| Received {
                trace_id: hex::encode(&span.trace_id),
                span_id: hex::encode(&span.span_id),
                parent_span_id: hex::encode(&span.parent_span_id),
                kind: SpanKind::try_from(span.kind).unwrap_or(SpanKind::Unspecified),
                name: span.name,
                attributes: span
                    .attributes
                    .into_iter()
                    .map(|kv| {
                        let value = match kv.value.and_then(|v| v.value) {
                            Some(Any::StringValue(s)) => s,
                            Some(Any::IntValue(i)) => i.to_string(),
                            Some(Any::BoolValue(b)) => b.to_string(),
                            Some(Any::DoubleValue(d)) => d.to_string(),
                            other => format!("{other:?}"),
                        };
                        (kv.key, value)
                    })
                    .collect(),
            });
        self.spans.lock().unwrap().extend(spans);
        self.exports.send_modify(|n| *n += 1);
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

impl Receiver {
    /// Serves on a free port until the process ends; returns it with the endpoint.
    async fn start() -> (Receiver, String) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let receiver = Receiver {
            spans: Arc::default(),
            exports: watch::channel(0).0,
        };
        let service = TraceServiceServer::new(receiver.clone());
        tokio::spawn(
            tonic::transport::Server::builder()
                .add_service(service)
                .serve_with_incoming(TcpListenerStream::new(listener)),
        );
        (receiver, endpoint)
    }

    /// The spans of `trace_id` once `complete` says they are all there (waiting for exports,
    /// which come every 100 ms while spans end), or a failure after `within`.
    async fn trace(
        &self,
        trace_id: &str,
        within: Duration,
        complete: impl Fn(&[Received]) -> bool,
    ) -> Vec<Received> {
        let mut exports = self.exports.subscribe();
        let wait = async {
            loop {
                let trace: Vec<Received> = self
                    .spans
                    .lock()
                    .unwrap()
                    .iter()
                    .filter(|s| s.trace_id == trace_id)
                    .cloned()
                    .collect();
                if complete(&trace) {
                    return trace;
                }
                exports.changed().await.unwrap();
            }
        };
        match tokio::time::timeout(within, wait).await {
            Ok(trace) => trace,
            Err(_) => {
                let names: Vec<String> = self
                    .spans
                    .lock()
                    .unwrap()
                    .iter()
                    .filter(|s| s.trace_id == trace_id)
                    .map(|s| format!("{} ({:?})", s.name, s.kind))
                    .collect();
                panic!("the trace stayed incomplete: {names:#?}");
            }
        }
    }
}

/// The one span of the trace named `name` of `kind`.
fn one<'a>(trace: &'a [Received], name: &str, kind: SpanKind) -> &'a Received {
    let found: Vec<&Received> = trace
        .iter()
        .filter(|s| s.name == name && s.kind == kind)
        .collect();
    assert_eq!(found.len(), 1, "{name} ({kind:?}) in {trace:#?}");
    found[0]
}

fn has(trace: &[Received], name: &str, kind: SpanKind) -> bool {
    trace.iter().any(|s| s.name == name && s.kind == kind)
}

fn assert_parent(child: &Received, parent: &Received) {
    assert_eq!(
        child.parent_span_id, parent.span_id,
        "{} should be a child of {}",
        child.name, parent.name
    );
}

const CLIENT_TRACE: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const CLIENT_SPAN: &str = "00f067aa0ba902b7";

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_trace_follows_an_execution_from_the_rest_call_to_the_settlement() {
    let (receiver, endpoint) = Receiver::start().await;
    frameos_telemetry::init_exporting_to("frameos-traces-test", &endpoint);
    let mesh = Mesh::with_node(Backend::PostgresS3).await.unwrap();
    let queue = mesh.queue_name().to_string();
    let dev = mesh.account("dev", "developer").await.unwrap();
    let user = mesh.account("uma", "user").await.unwrap();
    mesh.publish_approved(
        &dev,
        "word-count",
        packages::example("word-count"),
        Some(10_000),
    )
    .await
    .unwrap();

    // The caller's own trace: everything the execution does joins it.
    let accepted: serde_json::Value = mesh
        .request(
            Method::POST,
            "/v1/agents/word-count/executions",
            Some(&user),
        )
        .header("traceparent", format!("00-{CLIENT_TRACE}-{CLIENT_SPAN}-01"))
        .json(&json!({"inputs": {"text": "one trace"}}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = accepted["id"].as_str().unwrap();
    let (_, done) = mesh.follow(&user, id).await.unwrap();
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["charge"]["status"], "captured", "{done}");

    let publish = format!("publish {queue}");
    let process = format!("process {queue}");
    let create = "frameos.v1.ExecutionService/CreateExecution";
    let report = "frameos.v1.NodeService/ReportExecution";
    let trace = receiver
        .trace(CLIENT_TRACE, Duration::from_secs(30), |trace| {
            has(trace, &process, SpanKind::Consumer)
                && has(trace, "settle", SpanKind::Internal)
                && has(trace, "POST /v1/agents/{slug}/executions", SpanKind::Server)
                && has(trace, "container_run", SpanKind::Internal)
                && has(trace, report, SpanKind::Server)
        })
        .await;

    // Gateway: the REST call, then its gRPC call.
    let http = one(
        &trace,
        "POST /v1/agents/{slug}/executions",
        SpanKind::Server,
    );
    assert_eq!(http.parent_span_id, CLIENT_SPAN);
    assert_eq!(http.attr("http.request.method"), "POST");
    assert_eq!(http.attr("http.route"), "/v1/agents/{slug}/executions");
    assert_eq!(http.attr("url.path"), "/v1/agents/word-count/executions");
    assert_eq!(http.attr("http.response.status_code"), "202");
    let create_client = one(&trace, create, SpanKind::Client);
    assert_parent(create_client, http);

    // Control plane: the SERVER span from the call's metadata.
    let create_server = one(&trace, create, SpanKind::Server);
    assert_parent(create_server, create_client);
    for (span, side) in [(create_client, "client"), (create_server, "server")] {
        assert_eq!(span.attr("rpc.system"), "grpc", "{side}");
        assert_eq!(
            span.attr("rpc.service"),
            "frameos.v1.ExecutionService",
            "{side}"
        );
        assert_eq!(span.attr("rpc.method"), "CreateExecution", "{side}");
        assert_eq!(span.attr("rpc.grpc.status_code"), "0", "{side}");
    }
    let creating = one(&trace, "create_execution", SpanKind::Internal);
    assert_parent(creating, create_server);

    // The queue hop: PRODUCER under the request, CONSUMER under the publish.
    let published = one(&trace, &publish, SpanKind::Producer);
    assert_parent(published, creating);
    let processed = one(&trace, &process, SpanKind::Consumer);
    assert_parent(processed, published);
    for (span, operation) in [(published, "publish"), (processed, "process")] {
        assert_eq!(span.attr("messaging.system"), "rabbitmq");
        assert_eq!(span.attr("messaging.operation.type"), operation);
        assert_eq!(span.attr("messaging.destination.name"), queue);
        assert_eq!(span.attr("messaging.message.id"), id);
    }

    // The node's phases, under its processing.
    for phase in ["queue_wait", "package_fetch", "sandbox_run"] {
        assert_parent(one(&trace, phase, SpanKind::Internal), processed);
    }
    let sandbox = one(&trace, "sandbox_run", SpanKind::Internal);
    assert_parent(one(&trace, "container_start", SpanKind::Internal), sandbox);
    let running = one(&trace, "container_run", SpanKind::Internal);
    assert_parent(running, sandbox);
    assert_eq!(running.attr("outcome"), "succeeded");
    for method in ["ClaimExecution", "ReportExecution"] {
        let name = format!("frameos.v1.NodeService/{method}");
        let client = one(&trace, &name, SpanKind::Client);
        assert_parent(client, processed);
        let server = one(&trace, &name, SpanKind::Server);
        assert_parent(server, client);
        // The report stream's status comes in its trailers, once the outcome is recorded.
        assert_eq!(server.attr("rpc.grpc.status_code"), "0", "{name}");
    }

    // The settlement, in the report stream's SERVER span on the control plane.
    let settle = one(&trace, "settle", SpanKind::Internal);
    assert_parent(settle, one(&trace, report, SpanKind::Server));
    assert_eq!(settle.attr("charge.outcome"), "captured");
    assert_eq!(settle.attr("execution_id"), id);

    // Nothing dangles: every span but the REST call's has its parent in this trace.
    for span in &trace {
        if span.span_id != http.span_id {
            assert!(
                trace.iter().any(|p| p.span_id == span.parent_span_id),
                "{} has a parent outside the trace",
                span.name
            );
        }
    }
    print_tree(&trace, CLIENT_SPAN, 0);
    mesh.shutdown().await.unwrap();
}

/// The span tree, for the test's output (and the ADR).
fn print_tree(trace: &[Received], parent: &str, depth: usize) {
    for span in trace.iter().filter(|s| s.parent_span_id == parent) {
        println!("{}{} [{:?}]", "  ".repeat(depth), span.name, span.kind);
        print_tree(trace, &span.span_id, depth + 1);
    }
}
