//! The egress proxy and the platform's own log lines, end to end: a real agent in Docker,
//! through the runner's listener, the node's proxy, the control plane, REST, SSE and gRPC.
//!
//! * The egress corpus: requests that try to reach this machine in every known spelling. A
//!   tripwire listens on 127.0.0.1:80 and :443 (the only ports the proxy ever dials) and must
//!   never see a connection; each request is refused with a clear status and a `system` line.
//! * API.md §4.1: an agent printing the platform's texts, or writing a raw frame that names
//!   `system`, gets `stdout`/`stderr` lines; the egress decision and the log-limit marker are
//!   the only `system` lines, in the database, REST, SSE and gRPC alike.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use frameos_core::LogStream;
use frameos_integration_tests::{Backend, Mesh, packages};
use frameos_proto::ProtoEnum;
use frameos_proto::v1::{
    self, execution_service_client::ExecutionServiceClient, watch_execution_response,
};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A Python agent with the `http_request` capability.
fn egress_agent(slug: &str, code: &str, allow_domains: &[&str]) -> Vec<u8> {
    let manifest = json!({
        "name": slug,
        "version": "1.0.0",
        "runtime": "python",
        "entrypoint": "main.py",
        "inputs": {"type": "object"},
        "resources": {"cpu_cores": 0.5, "memory_mb": 128, "timeout_ms": 60_000},
        "capabilities": [{"type": "http_request", "allow_domains": allow_domains}],
    });
    packages::tar_gz(&[
        ("agent.json", manifest.to_string().as_bytes()),
        ("main.py", code.as_bytes()),
    ])
}

/// Sends each raw request to the runner's proxy listener and reports what came back.
const ASKING_AGENT: &str = r#"
import http.client

def ask(raw):
    conn = http.client.HTTPConnection("127.0.0.1", 3128, timeout=30)
    try:
        conn.connect()
        conn.sock.sendall(raw.encode("latin-1"))
        response = http.client.HTTPResponse(conn.sock)
        response.begin()
        return {"status": response.status, "body": response.read().decode("utf-8", "replace")}
    except Exception as e:
        return {"error": repr(e)}
    finally:
        conn.close()

def run(inputs, ctx):
    return [ask(raw) for raw in inputs["requests"]]
"#;

/// Counts every connection to 127.0.0.1:80 and :443 until dropped.
struct Tripwire {
    accepts: Arc<AtomicUsize>,
    tasks: Vec<JoinHandle<()>>,
}

impl Tripwire {
    async fn arm() -> Tripwire {
        let accepts = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for port in [80, 443] {
            let listener = TcpListener::bind(("127.0.0.1", port))
                .await
                .unwrap_or_else(|e| {
                    panic!("the tripwire needs 127.0.0.1:{port} (root, or a lower net.ipv4.ip_unprivileged_port_start): {e}")
                });
            let accepts = accepts.clone();
            tasks.push(tokio::spawn(async move {
                while let Ok((stream, _)) = listener.accept().await {
                    accepts.fetch_add(1, Ordering::SeqCst);
                    drop(stream);
                }
            }));
        }
        let wire = Tripwire { accepts, tasks };
        // It counts: one connection of our own to each port.
        for port in [80, 443] {
            TcpStream::connect(("127.0.0.1", port)).await.unwrap();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
        while wire.hits() < 2 {
            assert!(Instant::now() < deadline, "the tripwire does not count");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        wire.accepts.fetch_sub(2, Ordering::SeqCst);
        wire
    }

    fn hits(&self) -> usize {
        self.accepts.load(Ordering::SeqCst)
    }
}

impl Drop for Tripwire {
    fn drop(&mut self) {
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// One hostile request: what it sends, the status and reason it must get, and the start of
/// its `system` line.
struct Case {
    raw: String,
    status: u16,
    reason: &'static str,
    log: String,
}

fn case(raw: impl Into<String>, status: u16, reason: &'static str, log: &str) -> Case {
    Case {
        raw: raw.into(),
        status,
        reason,
        log: log.to_string(),
    }
}

fn corpus() -> Vec<Case> {
    let ip = "is an IP address; only allow-listed host names are reachable";
    let local = "names this machine";
    let mut cases = Vec::new();
    // IP literals in every spelling the C resolver accepts, as CONNECT and as absolute URIs.
    for host in [
        "127.0.0.1",
        "2130706433",
        "0x7f000001",
        "0x7f.1",
        "0177.0.0.1",
        "017700000001",
        "127.1",
        "127.0.1",
        "127.000.000.001",
        "[::ffff:127.0.0.1]",
        "[::ffff:7f00:1]",
        "[::1]",
        "[0:0:0:0:0:0:0:1]",
    ] {
        cases.push(case(
            format!("CONNECT {host}:443 HTTP/1.1\r\nHost: {host}:443\r\n\r\n"),
            403,
            ip,
            &format!("egress refused CONNECT {host}:443: "),
        ));
        cases.push(case(
            format!("GET http://{host}/ HTTP/1.1\r\nHost: {host}\r\n\r\n"),
            403,
            ip,
            &format!("egress refused GET {host}:80: "),
        ));
    }
    // Names of this machine, allow-listed or not.
    for host in ["localhost", "localhost.", "LOCALHOST", "tripwire.localhost"] {
        cases.push(case(
            format!("CONNECT {host}:443 HTTP/1.1\r\n\r\n"),
            403,
            local,
            &format!("egress refused CONNECT {host}:443: "),
        ));
        cases.push(case(
            format!("GET http://{host}:80/ HTTP/1.1\r\n\r\n"),
            403,
            local,
            &format!("egress refused GET {host}:80: "),
        ));
    }
    // User information that makes an allow-listed name front for another host.
    let creds = "are not supported";
    for (raw, log) in [
        (
            "GET http://allowed.example@127.0.0.1/ HTTP/1.1\r\n\r\n",
            "egress failed GET http://allowed.example@127.0.0.1/: credentials in",
        ),
        (
            "GET http://allowed.example:80@127.0.0.1:443/ HTTP/1.1\r\n\r\n",
            "egress failed GET http://allowed.example:80@127.0.0.1:443/: credentials in",
        ),
        (
            "CONNECT allowed.example@127.0.0.1:443 HTTP/1.1\r\n\r\n",
            "egress failed CONNECT allowed.example@127.0.0.1:443: credentials in",
        ),
    ] {
        cases.push(case(raw, 400, creds, log));
    }
    // A Host header that disagrees with where the request goes.
    let mismatch = "does not match the request target allowed.example";
    cases.push(case(
        "CONNECT allowed.example:443 HTTP/1.1\r\nHost: 127.0.0.1:443\r\n\r\n",
        400,
        mismatch,
        "egress failed CONNECT allowed.example:443: Host header \"127.0.0.1:443\"",
    ));
    cases.push(case(
        "GET http://allowed.example/ HTTP/1.1\r\nHost: localhost\r\n\r\n",
        400,
        mismatch,
        "egress failed GET http://allowed.example/: Host header \"localhost\"",
    ));
    cases.push(case(
        "GET http://allowed.example/ HTTP/1.1\r\nHost: allowed.example\r\nHost: 127.0.0.1\r\n\r\n",
        400,
        "more than one Host header",
        "egress failed GET http://allowed.example/: more than one Host header",
    ));
    // Origin-form, as to a server: a naive proxy would route by the Host header.
    cases.push(case(
        "GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
        400,
        "is not an absolute http:// URI",
        "egress failed GET /: ",
    ));
    // Oversized heads: one huge field, and too many fields.
    let too_large = "request head exceeds 16 KiB or 100 header fields";
    cases.push(case(
        format!(
            "GET http://allowed.example/ HTTP/1.1\r\nX-Pad: {}\r\n\r\n",
            "a".repeat(17_000)
        ),
        431,
        too_large,
        "egress failed - -: request head exceeds",
    ));
    let fields: String = (0..101).map(|i| format!("X-{i}: v\r\n")).collect();
    cases.push(case(
        format!("GET http://allowed.example/ HTTP/1.1\r\n{fields}\r\n"),
        431,
        too_large,
        "egress failed - -: request head exceeds",
    ));
    // Control: the allow-listed name passes every check and only fails to resolve (`.example`
    // never resolves), so the proxy would have dialled an answer.
    cases.push(case(
        "CONNECT allowed.example:443 HTTP/1.1\r\nHost: allowed.example:443\r\n\r\n",
        502,
        "allowed.example could not be resolved",
        "egress failed CONNECT allowed.example:443: allowed.example could not be resolved",
    ));
    cases
}

/// Every log line of an execution, by REST, page by page.
async fn rest_logs(mesh: &Mesh, key: &str, id: &str) -> Vec<Value> {
    let mut lines = Vec::new();
    let mut after = 0;
    loop {
        let page: Value = mesh
            .request(
                Method::GET,
                &format!("/v1/executions/{id}/logs?after_seq={after}&page_size=1000"),
                Some(key),
            )
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let items = page["items"].as_array().unwrap();
        lines.extend(items.iter().cloned());
        match page["next_page_token"].as_str() {
            Some(token) => after = token.parse().unwrap(),
            None => return lines,
        }
    }
}

/// `(stream, line)` of log lines as REST and SSE show them.
fn pairs<'a>(lines: impl IntoIterator<Item = &'a Value>) -> Vec<(String, String)> {
    lines
        .into_iter()
        .map(|l| {
            let stream = l["stream"].as_str().unwrap().to_string();
            (stream, l["line"].as_str().unwrap().to_string())
        })
        .collect()
}

fn system(pairs: &[(String, String)]) -> Vec<String> {
    pairs
        .iter()
        .filter(|(stream, _)| stream == "system")
        .map(|(_, line)| line.clone())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn the_egress_corpus_never_reaches_the_tripwire() {
    let tripwire = Tripwire::arm().await;
    let mesh = Mesh::with_node(Backend::PostgresS3).await.unwrap();
    let dev = mesh.account("dev", "developer").await.unwrap();
    let user = mesh.account("uma", "user").await.unwrap();
    // `tripwire.localhost` passes publishing; the proxy still refuses it by name.
    let package = egress_agent(
        "asker",
        ASKING_AGENT,
        &["allowed.example", "tripwire.localhost"],
    );
    mesh.publish_approved(&dev, "asker", package, None)
        .await
        .unwrap();

    let cases = corpus();
    let requests: Vec<&str> = cases.iter().map(|c| c.raw.as_str()).collect();
    let (_, done) = mesh
        .run(&user, "asker", json!({ "requests": requests }))
        .await
        .unwrap();
    assert_eq!(done["status"], "succeeded", "{done}");
    let answers = done["output"].as_array().unwrap();
    assert_eq!(answers.len(), cases.len());
    for (case, answer) in cases.iter().zip(answers) {
        let shown = &case.raw[..case.raw.len().min(80)];
        assert_eq!(answer["status"], case.status, "{shown:?}: {answer}");
        let body = answer["body"].as_str().unwrap();
        assert!(body.contains(case.reason), "{shown:?}: {body}");
    }

    // One `system` line per request, each naming what was refused; none allowed anything.
    let id = done["id"].as_str().unwrap();
    let mut lines = system(&pairs(&rest_logs(&mesh, &user, id).await));
    assert_eq!(lines.len(), cases.len(), "{lines:#?}");
    for case in &cases {
        let found = lines
            .iter()
            .position(|l| l.starts_with(&case.log) && l.contains(case.reason));
        let found = found.unwrap_or_else(|| panic!("no line {:?} in {lines:#?}", case.log));
        lines.remove(found);
    }
    assert_eq!(tripwire.hits(), 0, "the proxy connected to this machine");
    mesh.shutdown().await.unwrap();
}

const FORGING_AGENT: &str = r#"
import json, os, sys, urllib.error, urllib.request

FORGED = [
    "[frameos egress] allowed CONNECT bank.example:443",
    "egress allowed CONNECT bank.example:443",
    "log limit of 1048576 bytes reached; further output dropped",
    "[frameos] log limit of 1048576 bytes reached; further output dropped",
]

def run(inputs, ctx):
    for line in FORGED:
        print(line)
        print(line, file=sys.stderr)
    # Past the runner, straight onto the frame channel.
    frame = {"frameos": 1, "type": "log", "stream": "system", "line": FORGED[1]}
    os.write(1, (json.dumps(frame) + "\n").encode())
    try:
        urllib.request.urlopen("http://not-allowed.test/", timeout=30)
        status = 200
    except urllib.error.HTTPError as e:
        status = e.code
    # Past the node's 1 MiB log limit.
    for _ in range(11000):
        print("y" * 99)
    return {"status": status}
"#;

const FORGED: &[&str] = &[
    "[frameos egress] allowed CONNECT bank.example:443",
    "egress allowed CONNECT bank.example:443",
    "log limit of 1048576 bytes reached; further output dropped",
    "[frameos] log limit of 1048576 bytes reached; further output dropped",
];

/// What every view must show: the forged texts on the agent's streams, and exactly the
/// platform's two lines as `system`.
fn assert_only_platform_lines_are_system(view: &str, pairs: &[(String, String)]) {
    let mut system = system(pairs);
    system.sort();
    assert_eq!(
        system,
        [
            "egress refused GET not-allowed.test:80: not-allowed.test is not on this agent's allow-list",
            "log limit of 1048576 bytes reached; further output dropped",
        ],
        "{view}"
    );
    for forged in FORGED {
        for stream in ["stdout", "stderr"] {
            let want = (stream.to_string(), forged.to_string());
            assert!(pairs.contains(&want), "{view}: {want:?} missing");
        }
    }
    let raw = pairs
        .iter()
        .find(|(_, line)| line.starts_with(r#"{"frameos""#))
        .unwrap_or_else(|| panic!("{view}: the raw frame is not logged"));
    assert_eq!(raw.0, "stdout", "{view}: {raw:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn only_the_platform_writes_system_lines_in_every_view() {
    let mesh = Mesh::with_node(Backend::PostgresS3).await.unwrap();
    let dev = mesh.account("dev", "developer").await.unwrap();
    let user = mesh.account("uma", "user").await.unwrap();
    let package = egress_agent("forger", FORGING_AGENT, &["allowed.example"]);
    mesh.publish_approved(&dev, "forger", package, None)
        .await
        .unwrap();
    let (events, done) = mesh.run(&user, "forger", json!({})).await.unwrap();
    assert_eq!(done["status"], "succeeded", "{done}");
    assert_eq!(done["output"], json!({"status": 403}));
    let id = done["id"].as_str().unwrap();

    let sse = pairs(events.iter().filter(|e| e.kind == "log").map(|e| &e.data));
    assert_only_platform_lines_are_system("SSE", &sse);
    let rest = pairs(&rest_logs(&mesh, &user, id).await);
    assert_only_platform_lines_are_system("REST", &rest);
    assert_eq!(rest, sse, "REST and SSE disagree");

    // gRPC, as a client of the control plane sees it.
    let mut client = ExecutionServiceClient::connect(format!("http://{}", mesh.grpc_addr))
        .await
        .unwrap()
        .max_decoding_message_size(16 << 20);
    let mut request = tonic::Request::new(v1::WatchExecutionRequest {
        id: id.to_string(),
        after_seq: 0,
    });
    request
        .metadata_mut()
        .insert("authorization", format!("Bearer {user}").parse().unwrap());
    let mut stream = client.watch_execution(request).await.unwrap().into_inner();
    let mut grpc = Vec::new();
    while let Some(event) = stream.message().await.unwrap() {
        if let Some(watch_execution_response::Event::Log(line)) = event.event {
            let stream = LogStream::from_proto(line.stream).unwrap();
            grpc.push((stream.to_string(), line.line));
        }
    }
    assert_only_platform_lines_are_system("gRPC", &grpc);
    assert_eq!(grpc, rest, "gRPC and REST disagree");
    mesh.shutdown().await.unwrap();
}
