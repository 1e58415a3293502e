//! How executions end, against real Docker and the real runtime images.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::time::{Duration, Instant};

use common::*;
use frameos_sandbox::{Event, Outcome, Runtime, Stream};
use serde_json::json;
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn node_success_reports_output_progress_and_logs_in_order() {
    let sandbox = sandbox().await;
    let agent = agent(
        Runtime::Node,
        r#"module.exports = async (inputs, ctx) => {
            console.log("hello " + inputs.name);
            ctx.progress(0.5, "half way");
            console.error("a warning");
            process.stdout.write("no newline at the end");
            return { greeting: "hi " + inputs.name, execution: ctx.execution_id };
        };"#,
    );
    let spec = spec(&agent, json!({"name": "ada"}));
    let id = spec.execution_id.clone();
    let (outcome, events) = run(&sandbox, spec).await;
    assert_eq!(
        output(outcome, &events),
        json!({"greeting": "hi ada", "execution": id})
    );
    let log = |stream, line: &str| Event::Log {
        stream,
        line: line.to_string(),
    };
    assert_eq!(
        events,
        [
            log(Stream::Stdout, "hello ada"),
            Event::Progress {
                fraction: 0.5,
                message: "half way".to_string()
            },
            log(Stream::Stderr, "a warning"),
            log(Stream::Stdout, "no newline at the end"),
        ]
    );
}

#[tokio::test]
async fn python_success() {
    let sandbox = sandbox().await;
    let agent = agent(
        Runtime::Python,
        "import asyncio\n\
         async def run(inputs, ctx):\n\
         \x20   print('adding')\n\
         \x20   await asyncio.sleep(0)\n\
         \x20   ctx.progress(1.0, 'done')\n\
         \x20   return {'sum': inputs['a'] + inputs['b']}\n",
    );
    let (outcome, events) = run(&sandbox, spec(&agent, json!({"a": 2, "b": 3}))).await;
    assert_eq!(output(outcome, &events), json!({"sum": 5}));
    assert_eq!(logs(&events), ["adding"]);
    assert!(events.contains(&Event::Progress {
        fraction: 1.0,
        message: "done".to_string()
    }));
}

#[tokio::test]
async fn thrown_error_fails_with_its_message() {
    let sandbox = sandbox().await;
    let agent = agent(
        Runtime::Node,
        r#"module.exports = async () => { throw new Error("the sky fell"); };"#,
    );
    let (outcome, _) = run(&sandbox, spec(&agent, json!({}))).await;
    assert_eq!(
        outcome,
        Outcome::Failed {
            error: "the sky fell".to_string(),
            exit_code: Some(1)
        }
    );
}

#[tokio::test]
async fn exit_without_result_fails_with_the_exit_code() {
    let sandbox = sandbox().await;
    let agent = agent(
        Runtime::Node,
        r#"module.exports = async () => { console.log("bye"); process.exit(3); };"#,
    );
    let (outcome, events) = run(&sandbox, spec(&agent, json!({}))).await;
    assert_eq!(
        outcome,
        Outcome::Failed {
            error: "exited with code 3".to_string(),
            exit_code: Some(3)
        }
    );
    assert_eq!(logs(&events), ["bye"]);
}

#[tokio::test]
async fn infinite_loop_times_out() {
    let sandbox = sandbox().await;
    let agent = agent(
        Runtime::Node,
        "module.exports = async () => { for (;;) {} };",
    );
    let mut spec = spec(&agent, json!({}));
    spec.timeout = Duration::from_millis(1500);
    let started = Instant::now();
    let (outcome, _) = run(&sandbox, spec).await;
    let took = started.elapsed();
    assert_eq!(outcome, Outcome::TimedOut);
    assert!(took >= Duration::from_millis(1500), "{took:?}");
    assert!(took < Duration::from_secs(6), "{took:?}");
}

#[tokio::test]
async fn memory_hog_is_out_of_memory() {
    let sandbox = sandbox().await;
    let agent = agent(
        Runtime::Node,
        r#"module.exports = async () => {
            const hoard = [];
            for (let i = 0; i < 50; i++) hoard.push(Buffer.alloc(10 * 1024 * 1024, 1));
            return hoard.length;
        };"#,
    );
    let mut spec = spec(&agent, json!({}));
    spec.memory_mb = 64;
    let (outcome, events) = run(&sandbox, spec).await;
    assert_eq!(outcome, Outcome::OutOfMemory, "logs: {:?}", logs(&events));
}

#[tokio::test]
async fn cancel_stops_the_run_within_a_second() {
    let sandbox = sandbox().await;
    let agent = agent(
        Runtime::Python,
        "import time\n\
         def run(inputs, ctx):\n\
         \x20   print('started', flush=True)\n\
         \x20   time.sleep(60)\n",
    );
    let spec = spec(&agent, json!({}));
    let id = spec.execution_id.clone();
    let cancel = CancellationToken::new();
    let trigger = cancel.clone();
    // Canceled as soon as the agent runs (its first line arrives), not after a guessed delay.
    let (events_tx, mut events_rx) = tokio::sync::mpsc::channel(64);
    let collector = tokio::spawn(async move {
        let mut events = Vec::new();
        let mut canceled_at = None;
        while let Some(event) = events_rx.recv().await {
            if canceled_at.is_none()
                && matches!(&event, Event::Log { line, .. } if line == "started")
            {
                trigger.cancel();
                canceled_at = Some(Instant::now());
            }
            events.push(event);
        }
        (events, canceled_at)
    });
    let outcome = sandbox.run(spec, events_tx, cancel).await.unwrap();
    let (events, canceled_at) = collector.await.unwrap();
    let took = canceled_at.expect("the agent never started").elapsed();
    assert_no_container(&id).await;
    assert_eq!(outcome, Outcome::Canceled);
    assert_eq!(logs(&events), ["started"]);
    eprintln!("cancel to return (container removed): {took:?}");
    assert!(took < Duration::from_millis(1500), "{took:?}");
}

#[tokio::test]
async fn result_over_one_mib_fails() {
    let sandbox = sandbox().await;
    let agent = agent(
        Runtime::Node,
        r#"module.exports = async () => "x".repeat(2 * 1024 * 1024);"#,
    );
    let (outcome, _) = run(&sandbox, spec(&agent, json!({}))).await;
    assert_eq!(
        outcome,
        Outcome::Failed {
            error: "output exceeds 1 MiB".to_string(),
            exit_code: Some(0)
        }
    );
}
