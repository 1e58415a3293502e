//! The development-only local runner, with the real runner files. Needs `node` on the PATH
//! (skipped, loudly, without it: only `frameos dev` uses this backend).
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::time::{Duration, Instant};

use common::{agent, logs, output, spec};
use frameos_sandbox::{Event, Outcome, Runtime, Sandbox, Stream};
use serde_json::json;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

fn have_node() -> bool {
    let found = std::process::Command::new("node")
        .arg("--version")
        .output()
        .is_ok();
    if !found {
        eprintln!("SKIPPED: node is not installed");
    }
    found
}

async fn run(spec: frameos_sandbox::Spec, cancel: CancellationToken) -> (Outcome, Vec<Event>) {
    let sandbox = Sandbox::local_unisolated("local-tests");
    assert!(!sandbox.is_isolated());
    sandbox.check_images().await.unwrap();
    let (tx, mut rx) = mpsc::channel(4);
    let collector = tokio::spawn(async move {
        let mut events = Vec::new();
        while let Some(e) = rx.recv().await {
            events.push(e);
        }
        events
    });
    let outcome = sandbox.run(spec, tx, cancel).await.unwrap();
    (outcome, collector.await.unwrap())
}

#[tokio::test]
async fn local_runner_runs_an_agent() {
    if !have_node() {
        return;
    }
    let agent = agent(
        Runtime::Node,
        r#"module.exports = async (inputs, ctx) => {
            console.log("in " + process.cwd());
            ctx.progress(0.25, "a quarter");
            return inputs.n * 2;
        };"#,
    );
    let (outcome, events) = run(spec(&agent, json!({"n": 21})), CancellationToken::new()).await;
    assert_eq!(output(outcome, &events), json!(42));
    assert_eq!(events.len(), 2);
    assert!(
        matches!(&events[0], Event::Log { stream: Stream::Stdout, line } if line.starts_with("in /"))
    );
    assert_eq!(logs(&events).len(), 1);
}

#[tokio::test]
async fn local_runner_times_out_and_cancels() {
    if !have_node() {
        return;
    }
    let agent = agent(
        Runtime::Node,
        "module.exports = async () => { for (;;) {} };",
    );
    let mut timed = spec(&agent, json!({}));
    timed.timeout = Duration::from_millis(500);
    let (outcome, _) = run(timed, CancellationToken::new()).await;
    assert_eq!(outcome, Outcome::TimedOut);

    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        trigger.cancel();
    });
    let started = Instant::now();
    let (outcome, _) = run(spec(&agent, json!({})), cancel).await;
    assert_eq!(outcome, Outcome::Canceled);
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn local_runner_reports_exit_codes() {
    if !have_node() {
        return;
    }
    let agent = agent(
        Runtime::Node,
        "module.exports = async () => process.exit(3);",
    );
    let (outcome, _) = run(spec(&agent, json!({})), CancellationToken::new()).await;
    assert_eq!(
        outcome,
        Outcome::Failed {
            error: "exited with code 3".to_string(),
            exit_code: Some(3)
        }
    );
}
