//! Metrics as an operator's Prometheus sees them (API.md §4.3): a mesh runs a few executions,
//! then the gateway's `/metrics` and the control plane's and the node's `FRAMEOS_METRICS_ADDR`
//! are scraped and parsed by a stock Prometheus text parser (Python `prometheus_client`, which
//! `scripts/test` installs), and every family must be there with the values the runs imply.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::process::{Command, Stdio};

use frameos_integration_tests::{Backend, Mesh, packages};
use serde_json::{Value, json};

const PROMETHEUS_TEXT: &str = "text/plain; version=0.0.4; charset=utf-8";
const OPENMETRICS: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
/// What Prometheus itself sends.
const PROMETHEUS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

/// Parses with `prometheus_client.parser.text_string_to_metric_families` (the 0.0.4 parser).
const PARSER: &str = r#"
import json, sys
from prometheus_client.parser import text_string_to_metric_families
out = {}
for family in text_string_to_metric_families(sys.stdin.read()):
    if family.name in out:
        raise SystemExit("family %s appears twice" % family.name)
    out[family.name] = {
        "type": family.type,
        "samples": [[s.name, s.labels, s.value] for s in family.samples],
    }
print(json.dumps(out))
"#;

/// One family as the stock parser read it.
#[derive(Debug)]
struct Family {
    kind: String,
    samples: Vec<(String, HashMap<String, String>, f64)>,
}

impl Family {
    /// The value of the sample `name` whose labels include all of `labels` (0 when none).
    fn value(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.samples
            .iter()
            .filter(|(n, l, _)| {
                n == name
                    && labels
                        .iter()
                        .all(|(k, v)| l.get(*k).map(String::as_str) == Some(v))
            })
            .map(|(_, _, v)| *v)
            .sum()
    }
}

struct Scrape(HashMap<String, Family>);

impl Scrape {
    fn family(&self, name: &str, kind: &str) -> &Family {
        let family = self
            .0
            .get(name)
            .unwrap_or_else(|| panic!("no family {name} in {:?}", self.0.keys()));
        assert_eq!(family.kind, kind, "{name}");
        family
    }

    fn counter(&self, family: &str, labels: &[(&str, &str)]) -> f64 {
        self.family(family, "counter")
            .value(&format!("{family}_total"), labels)
    }

    fn gauge(&self, family: &str) -> f64 {
        self.family(family, "gauge").value(family, &[])
    }

    fn histogram_count(&self, family: &str, labels: &[(&str, &str)]) -> f64 {
        let histogram = self.family(family, "histogram");
        let count = histogram.value(&format!("{family}_count"), labels);
        // The +Inf bucket holds every observation.
        let mut inf = labels.to_vec();
        inf.push(("le", "+Inf"));
        assert_eq!(
            histogram.value(&format!("{family}_bucket"), &inf),
            count,
            "{family}"
        );
        count
    }
}

fn parse(text: &str) -> Scrape {
    let mut python = Command::new("python3")
        .args(["-c", PARSER])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("python3 (scripts/test installs prometheus-client)");
    python
        .stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let out = python.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "the stock parser refused the exposition: {}\n{text}",
        String::from_utf8_lossy(&out.stderr)
    );
    let parsed: HashMap<String, Value> = serde_json::from_slice(&out.stdout).unwrap();
    Scrape(
        parsed
            .into_iter()
            .map(|(name, family)| {
                let samples = family["samples"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|s| {
                        let labels = s[1]
                            .as_object()
                            .unwrap()
                            .iter()
                            .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                            .collect();
                        (
                            s[0].as_str().unwrap().to_string(),
                            labels,
                            s[2].as_f64().unwrap(),
                        )
                    })
                    .collect();
                let kind = family["type"].as_str().unwrap().to_string();
                (name, Family { kind, samples })
            })
            .collect(),
    )
}

/// `GET url` with `accept` (none: no header); the content type and the body.
async fn get(url: &str, accept: Option<&str>) -> (String, String) {
    let mut request = reqwest::Client::new().get(url);
    if let Some(accept) = accept {
        request = request.header("accept", accept);
    }
    let response = request.send().await.unwrap();
    assert_eq!(response.status(), 200, "{url}");
    let content_type = response.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_string();
    (content_type, response.text().await.unwrap())
}

/// Scrapes as a plain 0.0.4 client does (no `Accept`) and parses with the stock parser.
async fn scrape(url: &str) -> Scrape {
    let (content_type, text) = get(url, None).await;
    assert_eq!(content_type, PROMETHEUS_TEXT, "{url}");
    parse(&text)
}

/// Scrapes until `settled` holds (what ends just after an execution's status is visible: a
/// report stream's trailers, a node's job ack), within a few seconds.
async fn scrape_settled(url: &str, settled: impl Fn(&Scrape) -> bool) -> Scrape {
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let scrape = scrape(url).await;
        if settled(&scrape) || tokio::time::Instant::now() > deadline {
            return scrape;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

fn metrics_url(addr: SocketAddr) -> String {
    format!("http://{addr}/metrics")
}

/// Makes one request through the egress proxy to a host the allow-list does not name.
const REFUSED_EGRESS: &str = r#"
import http.client

def run(inputs, ctx):
    conn = http.client.HTTPConnection("127.0.0.1", 3128, timeout=30)
    conn.request("GET", "http://not-allowed.example/")
    return {"status": conn.getresponse().status}
"#;

fn egress_agent() -> Vec<u8> {
    let manifest = json!({
        "name": "egress-probe",
        "version": "1.0.0",
        "runtime": "python",
        "entrypoint": "main.py",
        "inputs": {"type": "object"},
        "resources": {"cpu_cores": 0.5, "memory_mb": 128, "timeout_ms": 60_000},
        "capabilities": [{"type": "http_request", "allow_domains": ["allowed.example"]}],
    });
    packages::tar_gz(&[
        ("agent.json", manifest.to_string().as_bytes()),
        ("main.py", REFUSED_EGRESS.as_bytes()),
    ])
}

fn any_port() -> Option<SocketAddr> {
    Some("127.0.0.1:0".parse().unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_service_exposes_the_operations_families_to_a_stock_parser() {
    let mut mesh = Mesh::with_queue(Backend::PostgresS3, |config| {
        config.metrics_addr = any_port();
    })
    .await
    .unwrap();
    mesh.start_node_with(2, |config| config.metrics_addr = any_port())
        .await
        .unwrap();
    let dev = mesh.account("dev", "developer").await.unwrap();
    let user = mesh.account("uma", "user").await.unwrap();
    let ok = packages::node_agent(
        "ok",
        "1.0.0",
        "module.exports = async () => ({ok: true});\n",
    );
    let broken = packages::node_agent(
        "broken",
        "1.0.0",
        "module.exports = async () => { throw new Error('boom'); };\n",
    );
    mesh.publish_approved(&dev, "ok", ok.clone(), None)
        .await
        .unwrap();
    mesh.publish_approved(&dev, "broken", broken, None)
        .await
        .unwrap();
    let paid = packages::node_agent("paid", "1.0.0", "module.exports = async () => 42;\n");
    mesh.publish_approved(&dev, "paid", paid, Some(5_000))
        .await
        .unwrap();
    mesh.publish_approved(&dev, "egress-probe", egress_agent(), None)
        .await
        .unwrap();

    // Two successes of one package (a cache miss, then a hit), a failure, a paid success and
    // a run whose only request the egress proxy refuses.
    let mut outcomes = Vec::new();
    for slug in ["ok", "ok", "broken", "paid", "egress-probe"] {
        let (_, done) = mesh.run(&user, slug, json!({})).await.unwrap();
        outcomes.push((slug, done));
    }
    let status = |i: usize| outcomes[i].1["status"].as_str().unwrap().to_string();
    assert_eq!(
        (0..5).map(status).collect::<Vec<_>>(),
        ["succeeded", "succeeded", "failed", "succeeded", "succeeded"],
        "{outcomes:?}"
    );
    assert_eq!(
        outcomes[3].1["charge"]["status"], "captured",
        "{outcomes:?}"
    );
    assert_eq!(outcomes[4].1["output"]["status"], 403, "{outcomes:?}");

    // The gateway: every request above, by route template.
    let gateway = scrape(&mesh.url("/metrics")).await;
    let created = [
        ("method", "POST"),
        ("route", "/v1/agents/{slug}/executions"),
    ];
    assert_eq!(
        gateway.counter(
            "frameos_http_requests",
            &[created[0], created[1], ("status", "202")]
        ),
        5.0
    );
    assert_eq!(
        gateway.histogram_count("frameos_http_request_duration_seconds", &created),
        5.0
    );
    assert_eq!(
        gateway.counter(
            "frameos_http_requests",
            &[("route", "/v1/agents/{slug}/versions/{version}/approve")]
        ),
        4.0
    );

    // The control plane.
    let report_streams = |s: &Scrape| {
        s.counter(
            "frameos_grpc_requests",
            &[("method", "/frameos.v1.NodeService/ReportExecution")],
        )
    };
    let cp = scrape_settled(&metrics_url(mesh.control_plane_metrics.unwrap()), |s| {
        report_streams(s) >= 5.0
    })
    .await;
    let ended = |outcome| cp.counter("frameos_executions", &[("outcome", outcome)]);
    assert_eq!(ended("succeeded"), 4.0);
    assert_eq!(ended("failed"), 1.0);
    // Every phase, from the moments stored on the execution (ADR 0025; timings.rs compares
    // them with the API's `timings`).
    for phase in ["queue_wait", "start", "run"] {
        assert_eq!(
            cp.histogram_count("frameos_execution_duration_seconds", &[("phase", phase)]),
            5.0,
            "{phase}"
        );
    }
    assert_eq!(
        cp.counter("frameos_charges", &[("status", "authorized")]),
        1.0
    );
    assert_eq!(
        cp.counter("frameos_charges", &[("status", "captured")]),
        1.0
    );
    assert_eq!(cp.counter("frameos_charges", &[("status", "voided")]), 0.0);
    // Everything ran: nothing waits, nothing is stuck.
    assert_eq!(cp.gauge("frameos_queue_depth"), 0.0);
    assert_eq!(cp.gauge("frameos_outbox_pending"), 0.0);
    assert_eq!(cp.gauge("frameos_outbox_oldest_age_seconds"), 0.0);
    assert_eq!(cp.gauge("frameos_executions_stuck"), 0.0);
    assert_eq!(cp.gauge("frameos_schedules_overdue_seconds"), 0.0);
    assert_eq!(
        cp.counter("frameos_schedule_ticks", &[("outcome", "run")]),
        0.0
    );
    let heartbeat = cp.gauge("frameos_node_heartbeat_age_seconds");
    assert!((0.0..60.0).contains(&heartbeat), "{heartbeat}");
    assert!(cp.histogram_count("frameos_amqp_publish_duration_seconds", &[]) >= 5.0);
    assert!(cp.counter("frameos_reconcile_runs", &[("reconciler", "billing")]) >= 1.0);
    cp.family("frameos_reconcile_fixes", "counter");
    // Every gRPC call the gateway and the node made, by method and status code.
    let claims = cp.counter(
        "frameos_grpc_requests",
        &[
            ("method", "/frameos.v1.NodeService/ClaimExecution"),
            ("code", "OK"),
        ],
    );
    assert_eq!(claims, 5.0);
    assert_eq!(
        cp.counter(
            "frameos_grpc_requests",
            &[
                ("method", "/frameos.v1.NodeService/ReportExecution"),
                ("code", "OK")
            ],
        ),
        5.0,
        "report streams count when they end"
    );
    assert!(
        cp.histogram_count(
            "frameos_grpc_request_duration_seconds",
            &[("method", "/frameos.v1.NodeService/ClaimExecution")]
        ) == 5.0
    );

    // The node.
    let node = scrape_settled(&metrics_url(mesh.node_metrics[0]), |s| {
        s.gauge("frameos_node_running_executions") == 0.0
    })
    .await;
    assert_eq!(node.gauge("frameos_node_running_executions"), 0.0);
    let cache = |result| node.counter("frameos_package_cache_requests", &[("result", result)]);
    assert_eq!((cache("miss"), cache("hit")), (4.0, 1.0));
    assert_eq!(
        node.counter("frameos_egress_decisions", &[("decision", "refused")]),
        1.0
    );
    assert_eq!(
        node.counter("frameos_egress_decisions", &[("decision", "allowed")]),
        0.0
    );
    node.family("frameos_egress_bytes", "counter");
    // The node's own side of its calls to the control plane.
    let claims_made = [
        ("method", "/frameos.v1.NodeService/ClaimExecution"),
        ("code", "OK"),
    ];
    assert_eq!(
        node.counter("frameos_grpc_client_requests", &claims_made),
        5.0
    );
    assert_eq!(
        node.histogram_count(
            "frameos_grpc_client_request_duration_seconds",
            &[("method", "/frameos.v1.NodeService/ClaimExecution")]
        ),
        5.0
    );
    // Each run without egress went to a warm pool container (hit) or a cold one (miss); the
    // one with an allow-list needs the proxy socket and goes cold without asking the pool.
    // Every one of those containers was created; so were the ones still waiting (ADR 0026).
    let hits = node.counter("frameos_sandbox_pool_takes", &[("result", "hit")]);
    let misses = node.counter("frameos_sandbox_pool_takes", &[("result", "miss")]);
    assert_eq!(hits + misses, 4.0);
    assert!(
        node.histogram_count(
            "frameos_docker_request_duration_seconds",
            &[("operation", "create")]
        ) >= 5.0
    );
    assert_eq!(
        node.histogram_count(
            "frameos_docker_request_duration_seconds",
            &[("operation", "rename")]
        ),
        hits
    );

    mesh.shutdown().await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openmetrics_is_answered_only_when_asked_for() {
    let mesh = Mesh::start_with(Backend::Embedded, |config| {
        config.metrics_addr = any_port();
    })
    .await
    .unwrap();
    let control_plane = metrics_url(mesh.control_plane_metrics.unwrap());
    for url in [mesh.url("/metrics"), control_plane] {
        for accept in [None, Some("*/*"), Some("text/plain;version=0.0.4")] {
            let (content_type, text) = get(&url, accept).await;
            assert_eq!(content_type, PROMETHEUS_TEXT, "{url} {accept:?}");
            assert!(!text.contains("# EOF"), "{url}: {text}");
        }
        let (content_type, text) = get(&url, Some(PROMETHEUS_ACCEPT)).await;
        assert_eq!(content_type, OPENMETRICS, "{url}");
        assert!(text.ends_with("# EOF\n"), "{url}: {text}");
    }
    mesh.shutdown().await.unwrap();
}
