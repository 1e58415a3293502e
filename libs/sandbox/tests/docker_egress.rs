//! The `http_request` capability end to end: container → runner listener → bind-mounted socket
//! → the node's egress proxy → policy. There is no internet here, so an allowed name fails to
//! resolve (502); what matters is that the request reached the proxy and was logged.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use common::*;
use frameos_sandbox::Runtime;
use serde_json::json;

const PYTHON_AGENT: &str = r#"
import os, socket, urllib.error, urllib.request

def fetch(url):
    try:
        with urllib.request.urlopen(url, timeout=30) as r:
            return {"status": r.status}
    except urllib.error.HTTPError as e:
        return {"status": e.code, "body": e.read().decode()}
    except Exception as e:
        return {"error": str(e)}

def direct():
    s = socket.socket()
    try:
        s.connect(("1.1.1.1", 80))
        return "connected"
    except OSError as e:
        return e.strerror
    finally:
        s.close()

def run(inputs, ctx):
    names = ["FRAMEOS_EGRESS_SOCKET", "HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "NO_PROXY"]
    return {
        "socket": os.path.exists("/run/frameos/egress.sock"),
        "env": {k: os.environ.get(k) for k in names},
        "allowed": fetch("http://example.com/"),
        "denied": fetch("http://not-allowed.test/x"),
        "denied_https": fetch("https://not-allowed.test/"),
        "metadata": fetch("http://169.254.169.254/latest/meta-data/"),
        "direct": direct(),
    }
"#;

/// The platform's lines: every one of them here is an egress decision.
fn egress_lines(events: &[frameos_sandbox::Event]) -> Vec<String> {
    system_lines(events)
}

/// No directory of this execution is left behind.
fn assert_no_egress_dir(execution_id: &str) {
    let base = std::env::temp_dir().join("frameos-egress");
    let left: Vec<_> = std::fs::read_dir(&base)
        .map(|d| d.filter_map(Result::ok).map(|e| e.file_name()).collect())
        .unwrap_or_default();
    assert!(
        !left
            .iter()
            .any(|n| n.to_string_lossy().starts_with(execution_id)),
        "{left:?}"
    );
}

#[tokio::test]
async fn python_urllib_goes_through_the_proxy_and_the_policy_applies() {
    let sandbox = sandbox().await;
    let agent = agent(Runtime::Python, PYTHON_AGENT);
    let mut spec = spec(&agent, json!({}));
    spec.allow_domains = vec!["example.com".to_string()];
    spec.timeout = std::time::Duration::from_secs(60);
    let id = spec.execution_id.clone();
    let (outcome, events) = run(&sandbox, spec).await;
    let out = output(outcome, &events);
    assert_eq!(out["socket"], true);
    assert_eq!(
        out["env"],
        json!({
            "FRAMEOS_EGRESS_SOCKET": "/run/frameos/egress.sock",
            "HTTP_PROXY": "http://127.0.0.1:3128",
            "HTTPS_PROXY": "http://127.0.0.1:3128",
            "http_proxy": "http://127.0.0.1:3128",
            "NO_PROXY": "",
        })
    );
    // Still no network of its own.
    assert_eq!(out["direct"], "Network is unreachable");
    assert_eq!(out["denied"]["status"], 403, "{out}");
    assert_eq!(
        out["denied"]["body"],
        "not-allowed.test is not on this agent's allow-list\n"
    );
    let https = out["denied_https"]["error"].as_str().unwrap();
    assert!(https.contains("403"), "{https}");
    assert_eq!(out["metadata"]["status"], 403, "{out}");
    // No internet here: resolving fails (502); with one, the request would go through.
    let allowed = out["allowed"]["status"].as_i64().unwrap();
    assert!(allowed == 502 || allowed == 200, "{out}");

    let lines = egress_lines(&events);
    assert_eq!(lines.len(), 4, "{lines:?}");
    assert!(
        lines[0].starts_with("egress failed GET example.com:80: example.com could not be resolved")
            || lines[0] == "egress allowed GET example.com:80",
        "{lines:?}"
    );
    assert_eq!(
        lines[1..],
        [
            "egress refused GET not-allowed.test:80: not-allowed.test is not on this agent's allow-list",
            "egress refused CONNECT not-allowed.test:443: not-allowed.test is not on this agent's allow-list",
            "egress refused GET 169.254.169.254:80: \"169.254.169.254\" is an IP address; only allow-listed host names are reachable",
        ]
    );
    assert_no_egress_dir(&id);
}

#[tokio::test]
async fn node_http_https_and_fetch_go_through_the_proxy() {
    let sandbox = sandbox().await;
    let agent = agent(
        Runtime::Node,
        r#"
const http = require('http');
const https = require('https');
function get(mod, url) {
  return new Promise((resolve) => {
    mod.get(url, (res) => {
      let body = '';
      res.on('data', (c) => (body += c));
      res.on('end', () => resolve({ status: res.statusCode, body }));
    }).on('error', (e) => resolve({ error: e.message }));
  });
}
async function tryFetch(url) {
  try {
    const res = await fetch(url);
    return { status: res.status, body: await res.text() };
  } catch (e) {
    return { error: String((e.cause && e.cause.message) || e.message) };
  }
}
module.exports = async () => ({
  http: await get(http, 'http://not-allowed.test/a?b=1'),
  https: await get(https, 'https://not-allowed.test/'),
  fetch: await tryFetch('http://not-allowed.test/'),
  fetchHttps: await tryFetch('https://not-allowed.test/'),
  allowed: await get(http, 'http://api.example.com/'),
});
"#,
    );
    let mut spec = spec(&agent, json!({}));
    spec.allow_domains = vec!["*.example.com".to_string()];
    spec.timeout = std::time::Duration::from_secs(60);
    let started = std::time::Instant::now();
    let (outcome, events) = run(&sandbox, spec).await;
    let out = output(outcome, &events);
    let reason = "not-allowed.test is not on this agent's allow-list\n";
    assert_eq!(
        out["http"],
        json!({ "status": 403, "body": reason }),
        "{out}"
    );
    assert_eq!(
        out["fetch"],
        json!({ "status": 403, "body": reason }),
        "{out}"
    );
    for key in ["https", "fetchHttps"] {
        let error = out[key]["error"].as_str().unwrap_or_default();
        assert!(
            error.contains("refused CONNECT not-allowed.test:443: HTTP/1.1 403"),
            "{key}: {out}"
        );
    }
    assert!(
        out["allowed"]["status"] == 502 || out["allowed"]["status"] == 200,
        "{out}"
    );
    let lines = egress_lines(&events);
    assert_eq!(lines.len(), 5, "{lines:?}");
    assert!(
        lines.iter().any(|l| l.contains("GET api.example.com:80")),
        "{lines:?}"
    );
    // The listener does not keep node alive after the result (no 2 s grace + kill).
    assert!(started.elapsed() < std::time::Duration::from_secs(15));
}

#[tokio::test]
async fn without_allow_domains_there_is_no_socket_and_no_proxy() {
    let sandbox = sandbox().await;
    let agent = agent(
        Runtime::Python,
        "import os\n\
         def run(inputs, ctx):\n\
         \x20   names = ['FRAMEOS_EGRESS_SOCKET', 'HTTP_PROXY', 'HTTPS_PROXY', 'http_proxy', 'NO_PROXY']\n\
         \x20   return {'run': os.path.exists('/run/frameos'),\n\
         \x20           'env': [n for n in names if n in os.environ]}\n",
    );
    let (outcome, events) = run(&sandbox, spec(&agent, json!({}))).await;
    assert_eq!(output(outcome, &events), json!({ "run": false, "env": [] }));
    assert!(egress_lines(&events).is_empty());
}
