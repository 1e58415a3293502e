// The test bodies of `docker_system_lines.rs` (cold path) and `warm_system_lines.rs` (warm path): included
// by both, with `sandbox()` and `assert_execution_label` from `common::cold` or `common::warm`.
// No inner attributes here (`include!`).

use common::*;
use frameos_sandbox::{Event, Runtime, Stream};
use serde_json::json;

const LOG_LIMIT: u64 = 4096;

/// Texts the platform writes, as an agent would forge them.
const FORGED: &[&str] = &[
    "[frameos egress] allowed CONNECT bank.example:443",
    "egress allowed CONNECT bank.example:443",
    "log limit of 4096 bytes reached; further output dropped",
    "[frameos] log limit of 1048576 bytes reached; further output dropped",
];

const REFUSED: &str =
    "egress refused GET not-allowed.test:80: not-allowed.test is not on this agent's allow-list";

fn forged_js() -> String {
    serde_json::to_string(FORGED).unwrap()
}

fn node_agent() -> String {
    format!(
        r#"
const fs = require('fs');
const http = require('http');
const FORGED = {forged};
module.exports = async () => {{
  for (const line of FORGED) {{ console.log(line); console.error(line); }}
  // Past the runner, straight onto the frame channel.
  fs.writeSync(1, JSON.stringify({{ frameos: 1, type: 'log', stream: 'system', line: FORGED[1] }}) + '\n');
  const status = await new Promise((resolve) => {{
    http.get('http://not-allowed.test/', (res) => {{ res.resume(); res.on('end', () => resolve(res.statusCode)); }})
      .on('error', (e) => resolve(e.message));
  }});
  const filler = 'y'.repeat(99);
  for (let i = 0; i < 100; i++) console.log(filler);
  return {{ status }};
}};
"#,
        forged = forged_js()
    )
}

fn python_agent() -> String {
    format!(
        r#"
import json, os, sys, urllib.error, urllib.request
FORGED = {forged}

def run(inputs, ctx):
    for line in FORGED:
        print(line)
        print(line, file=sys.stderr)
    frame = {{"frameos": 1, "type": "log", "stream": "system", "line": FORGED[1]}}
    os.write(1, (json.dumps(frame) + "\n").encode())
    try:
        urllib.request.urlopen("http://not-allowed.test/", timeout=30)
        status = 200
    except urllib.error.HTTPError as e:
        status = e.code
    for _ in range(100):
        print("y" * 99)
    return {{"status": status}}
"#,
        forged = forged_js()
    )
}

async fn check(runtime: Runtime, code: &str) {
    let sandbox = sandbox().await;
    let agent = agent(runtime, code);
    let mut spec = spec(&agent, json!({}));
    spec.allow_domains = vec!["allowed.example".to_string()];
    spec.log_limit_bytes = LOG_LIMIT;
    spec.timeout = std::time::Duration::from_secs(60);
    let (outcome, events) = run(&sandbox, spec).await;
    assert_eq!(output(outcome, &events), json!({"status": 403}));

    // Exactly the platform's two lines are `system` (their order depends on scheduling).
    let mut system = system_lines(&events);
    system.sort();
    assert_eq!(
        system,
        [
            REFUSED.to_string(),
            format!("log limit of {LOG_LIMIT} bytes reached; further output dropped"),
        ],
        "{events:?}"
    );
    // Every forged text arrived once on each of the agent's own streams.
    for forged in FORGED {
        for stream in [Stream::Stdout, Stream::Stderr] {
            let line = Event::Log {
                stream,
                line: forged.to_string(),
            };
            assert!(events.contains(&line), "{forged} on {stream}: {events:?}");
        }
    }
    // The raw frame naming `system` is not a frame: it is a stdout line, shown as written.
    let raw = events.iter().find_map(|e| match e {
        Event::Log { stream, line } if line.contains(r#""stream""#) => Some((*stream, line)),
        _ => None,
    });
    let (stream, line) = raw.expect("the raw frame is logged");
    assert_eq!(stream, Stream::Stdout, "{line}");
    assert!(
        line.contains("system") && line.contains(FORGED[1]),
        "{line}"
    );
}

#[tokio::test]
async fn node_cannot_forge_system_lines() {
    check(Runtime::Node, &node_agent()).await;
}

#[tokio::test]
async fn python_cannot_forge_system_lines() {
    check(Runtime::Python, &python_agent()).await;
}
