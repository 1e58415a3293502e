// The test bodies of `docker_outcomes.rs` (cold path) and `warm_outcomes.rs` (warm path): included
// by both, with `sandbox()` and `assert_execution_label` from `common::cold` or `common::warm`.
// No inner attributes here (`include!`).

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
async fn node_starts_from_the_images_runner_snapshot_when_it_has_one_for_the_heap() {
    let sandbox = sandbox().await;
    let agent = agent(
        Runtime::Node,
        r#"const v8 = require("v8");
        module.exports = async () => ({
            argv: process.execArgv,
            heap_mb: Math.round(v8.getHeapStatistics().heap_size_limit / 1048576),
            random: [Math.random(), require("crypto").randomBytes(16).toString("hex")],
        });"#,
    );
    // 256 MB (the manifest's default) has a blob in the image (ADR 0034), 300 MB has not; both
    // get the same heap limit: three quarters of the memory limit. Runs restored from one
    // snapshot share no randomness.
    let from_blob = json!([
        "--max-old-space-size=192",
        "--snapshot-blob",
        "/opt/frameos/runner-heap-192.blob"
    ]);
    let from_script = json!(["--max-old-space-size=225"]);
    let mut randoms = Vec::new();
    for (memory_mb, argv) in [(256, &from_blob), (256, &from_blob), (300, &from_script)] {
        let mut spec = spec(&agent, json!({}));
        spec.memory_mb = memory_mb;
        let (outcome, events) = run(&sandbox, spec).await;
        let output = output(outcome, &events);
        assert_eq!(&output["argv"], argv, "{memory_mb} MB");
        // The old generation's limit plus the young generation's.
        let heap_mb = output["heap_mb"].as_u64().unwrap();
        let old_mb = memory_mb * 3 / 4;
        assert!(
            (old_mb..old_mb + 64).contains(&heap_mb),
            "{memory_mb} MB: heap limit {heap_mb} MB"
        );
        randoms.push(output["random"].clone());
    }
    assert_ne!(randoms[0], randoms[1]);
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
async fn node_heap_exhaustion_is_out_of_memory() {
    let sandbox = sandbox().await;
    // JS arrays live on V8's heap, which meets its limit before the cgroup's. (Large ones: a
    // heap of many small objects dies the same way, only after much longer garbage collection.)
    let agent = agent(
        Runtime::Node,
        r#"module.exports = async () => {
            const hoard = [];
            for (;;) hoard.push(new Array(100000).fill(hoard.length));
        };"#,
    );
    for memory_mb in [128, 512] {
        let mut spec = spec(&agent, json!({}));
        spec.memory_mb = memory_mb;
        let (outcome, events) = run(&sandbox, spec).await;
        assert_eq!(
            outcome,
            Outcome::OutOfMemory,
            "{memory_mb} MB: {:?}",
            logs(&events)
        );
        // V8's own words reach the log, so the developer sees what ran out.
        assert!(
            logs(&events)
                .iter()
                .any(|l| l.contains("JavaScript heap out of memory")),
            "{memory_mb} MB: {:?}",
            logs(&events)
        );
    }
}

#[tokio::test]
async fn a_process_that_aborts_is_not_out_of_memory() {
    let sandbox = sandbox().await;
    let agent = agent(
        Runtime::Node,
        "module.exports = async () => process.abort();",
    );
    let (outcome, _) = run(&sandbox, spec(&agent, json!({}))).await;
    assert_eq!(
        outcome,
        Outcome::Failed {
            error: "exited with code 134".to_string(),
            exit_code: Some(134)
        }
    );
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
    let (tx, mut rx) = tokio::sync::mpsc::channel(8);
    let running = tokio::spawn({
        let (sandbox, cancel) = (sandbox.clone(), cancel.clone());
        async move { sandbox.run(spec, tx, cancel).await }
    });
    // Cancel once the agent is running: its first line says so.
    let first = rx.recv().await;
    assert!(
        matches!(&first, Some(Event::Log { line, .. }) if line == "started"),
        "{first:?}"
    );
    let canceled_at = Instant::now();
    cancel.cancel();
    let outcome = running.await.unwrap().expect("platform error");
    let took = canceled_at.elapsed();
    assert_eq!(outcome, Outcome::Canceled);
    assert!(rx.recv().await.is_none(), "events after the cancel");
    assert_no_container(&id).await;
    eprintln!("cancel to return (container removed): {took:?}");
    assert!(took < Duration::from_secs(1), "{took:?}");
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

/// Answers every call after a short wait with what it was asked, except `nope`, which is
/// refused as undeclared: the replies reach the agent through stdin, in any order.
fn echo_calls() -> frameos_sandbox::Calls {
    use frameos_sandbox::{Call, Reply};
    use futures::FutureExt;
    frameos_sandbox::Calls::new(|call: Call| {
        async move {
            // The later call answers first: replies are matched by id, not by order.
            let wait = if call.agent == "word-count" { 300 } else { 50 };
            tokio::time::sleep(Duration::from_millis(wait)).await;
            if call.agent == "nope" {
                return Reply::error("undeclared_dependency", "nope is not declared");
            }
            Reply::Output(json!({"agent": call.agent, "inputs": call.inputs, "max": call.max_amount_minor}))
        }
        .boxed()
    })
}

#[tokio::test]
async fn calls_from_both_runtimes_get_their_replies_over_stdin() {
    let sandbox = sandbox().await;
    let node = agent(
        Runtime::Node,
        r#"module.exports = async (inputs, ctx) => {
            const [a, b] = await Promise.all([
                ctx.call("word-count", { text: inputs.text }),
                ctx.call("sentiment", { text: inputs.text }, { max_amount_minor: 500 }),
            ]);
            let refused = null;
            try { await ctx.call("nope", {}); } catch (e) { refused = [e.code, e.message]; }
            return { a, b, refused };
        };"#,
    );
    let python = agent(
        Runtime::Python,
        r#"import threading
def run(inputs, ctx):
    out = {}
    def one(name, **options):
        out[name] = ctx.call(name, {"text": inputs["text"]}, **options)
    threads = [threading.Thread(target=one, args=("word-count",)),
               threading.Thread(target=one, args=("sentiment",), kwargs={"max_amount_minor": 500})]
    for t in threads: t.start()
    for t in threads: t.join()
    try:
        ctx.call("nope", {})
    except Exception as e:
        out["refused"] = [e.code, str(e)]
    return {"a": out["word-count"], "b": out["sentiment"], "refused": out["refused"]}
"#,
    );
    for agent in [node, python] {
        let mut spec = spec(&agent, json!({"text": "two\nlines"}));
        spec.calls = Some(echo_calls());
        let (outcome, events) = run(&sandbox, spec).await;
        assert_eq!(
            output(outcome, &events),
            json!({
                "a": {"agent": "word-count", "inputs": {"text": "two\nlines"}, "max": null},
                "b": {"agent": "sentiment", "inputs": {"text": "two\nlines"}, "max": 500},
                "refused": ["undeclared_dependency", "undeclared_dependency: nope is not declared"],
            }),
            "{:?}",
            agent.runtime
        );
    }
}

#[tokio::test]
async fn a_call_nobody_answers_fails_the_agent_that_lets_it_propagate() {
    let sandbox = sandbox().await;
    let agent = agent(
        Runtime::Node,
        r#"module.exports = async (inputs, ctx) => ctx.call("word-count", {});"#,
    );
    let (outcome, events) = run(&sandbox, spec(&agent, json!({}))).await;
    match outcome {
        Outcome::Failed { error, .. } => assert!(
            error.starts_with("calls_unavailable: "),
            "{error}; logs: {:?}",
            logs(&events)
        ),
        other => panic!("expected a failure, got {other:?}"),
    }
}
