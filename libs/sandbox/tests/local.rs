//! The development-only local runner, with the real runner files. Needs `node` and `python3`
//! on the PATH, and fails without them (scripts/test runs on machines that have both).
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::time::{Duration, Instant};

use common::{agent, logs, output, spec};
use frameos_sandbox::{Event, Outcome, Runtime, Sandbox, Stream};
use serde_json::json;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

/// Set in the copy of this test binary that `no_platform_secret_reaches_the_agent` starts.
const CHILD: &str = "FRAMEOS_SANDBOX_TEST_CHILD";
const SECRETS: [(&str, &str); 4] = [
    ("FRAMEOS_BOOTSTRAP_ADMIN_KEY", "admin-key-secret-1"),
    ("FRAMEOS_MANDATE_SIGNING_KEY", "signing-key-secret-2"),
    ("AWS_SECRET_ACCESS_KEY", "aws-secret-3"),
    (
        "FRAMEOS_DATABASE_URL",
        "postgres://user:db-secret-4@db/frameos",
    ),
];

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

#[test]
fn the_interpreters_are_installed() {
    for program in ["node", "python3"] {
        let status = std::process::Command::new(program)
            .arg("--version")
            .output();
        assert!(
            matches!(&status, Ok(o) if o.status.success()),
            "{program} is needed by the local runner tests: {status:?}"
        );
    }
}

#[tokio::test]
async fn local_runner_runs_an_agent() {
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

/// Prints what the agent saw, as one JSON line, for the parent test to judge.
async fn probe(runtime: Runtime) {
    let code = match runtime {
        Runtime::Node => {
            r#"const fs = require("fs"), os = require("os");
            module.exports = async () => {
                fs.writeFileSync("scratch.txt", "x");
                return { env: process.env, cwd: process.cwd(), home: os.homedir(),
                         wrote: fs.readFileSync(process.cwd() + "/scratch.txt", "utf8") };
            };"#
        }
        Runtime::Python => {
            "import os\n\
             def run(inputs, ctx):\n\
             \x20   open('scratch.txt', 'w').write('x')\n\
             \x20   return {'env': dict(os.environ), 'cwd': os.getcwd(),\n\
             \x20           'home': os.path.expanduser('~'),\n\
             \x20           'wrote': open(os.getcwd() + '/scratch.txt').read()}\n"
        }
    };
    let agent = agent(runtime, code);
    let (outcome, events) = run(spec(&agent, json!({})), CancellationToken::new()).await;
    let mut out = output(outcome, &events);
    out["package_dir"] = json!(agent.dir.path());
    println!("PROBE {out}");
}

#[tokio::test]
async fn no_platform_secret_reaches_the_agent_and_it_runs_in_a_scratch_home() {
    if std::env::var_os(CHILD).is_some() {
        let runtime = match std::env::var(CHILD).unwrap().as_str() {
            "python" => Runtime::Python,
            _ => Runtime::Node,
        };
        return probe(runtime).await;
    }
    // This process's environment cannot be changed safely, so a copy of this test binary
    // runs the agent with the platform's secrets in its environment.
    for runtime in [Runtime::Node, Runtime::Python] {
        let me = std::env::current_exe().unwrap();
        let child = std::process::Command::new(me)
            .args([
                "--exact",
                "no_platform_secret_reaches_the_agent_and_it_runs_in_a_scratch_home",
                "--nocapture",
            ])
            .env(CHILD, runtime.as_str())
            .envs(SECRETS)
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&child.stdout);
        assert!(
            child.status.success(),
            "{stdout}{}",
            String::from_utf8_lossy(&child.stderr)
        );
        let line = stdout
            .lines()
            .find_map(|l| l.strip_prefix("PROBE "))
            .unwrap_or_else(|| panic!("no probe output: {stdout}"));
        let seen: serde_json::Value = serde_json::from_str(line).unwrap();
        for (name, value) in SECRETS {
            assert!(!line.contains(value), "{runtime}: {name} reached the agent");
        }
        let mut expected = vec![
            "FRAMEOS_AGENT_DIR",
            "FRAMEOS_ENTRYPOINT",
            "FRAMEOS_EXECUTION_ID",
            "HOME",
            "LANG",
            "PATH",
        ];
        if runtime == Runtime::Python {
            expected.extend(["PYTHONDONTWRITEBYTECODE", "PYTHONUNBUFFERED"]);
        }
        // A launcher on the PATH (a pyenv shim is a shell script) adds its own variables.
        let launcher = launcher_env(runtime);
        let extra: Vec<&String> = seen["env"]
            .as_object()
            .unwrap()
            .keys()
            .filter(|name| !expected.contains(&name.as_str()) && !launcher.contains(*name))
            .collect();
        assert!(
            extra.is_empty(),
            "{runtime}: unexpected variables {extra:?}"
        );
        for name in expected {
            assert!(seen["env"].get(name).is_some(), "{runtime}: {name} missing");
        }

        // Home and working directory: one fresh, writable directory, removed afterwards.
        let cwd = seen["cwd"].as_str().unwrap();
        assert_eq!(seen["home"], seen["cwd"], "{runtime}");
        assert_eq!(seen["wrote"], "x", "{runtime}");
        assert_ne!(cwd, seen["package_dir"].as_str().unwrap(), "{runtime}");
        let parent_cwd = std::env::current_dir().unwrap();
        assert_ne!(std::path::Path::new(cwd), parent_cwd, "{runtime}");
        assert!(
            cwd.starts_with(std::env::temp_dir().to_str().unwrap()),
            "{runtime}: {cwd}"
        );
        assert!(
            !std::path::Path::new(cwd).exists(),
            "{runtime}: {cwd} left behind"
        );
    }
}

/// What the interpreter's own launcher puts in an environment that holds only `PATH`.
fn launcher_env(runtime: Runtime) -> Vec<String> {
    let (program, print) = match runtime {
        Runtime::Node => ("node", "-p"),
        Runtime::Python => ("python3", "-c"),
    };
    let code = match runtime {
        Runtime::Node => "JSON.stringify(Object.keys(process.env))",
        Runtime::Python => "import json, os; print(json.dumps(list(os.environ)))",
    };
    let out = std::process::Command::new(program)
        .args([print, code])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap())
        .output()
        .unwrap();
    let names: Vec<String> = serde_json::from_slice(&out.stdout).unwrap();
    names.into_iter().filter(|n| n != "PATH").collect()
}

#[tokio::test]
async fn local_runner_times_out_and_cancels() {
    let agent = agent(
        Runtime::Node,
        "module.exports = async () => { console.log('spinning'); for (;;) {} };",
    );
    let mut timed = spec(&agent, json!({}));
    timed.timeout = Duration::from_millis(500);
    let (outcome, _) = run(timed, CancellationToken::new()).await;
    assert_eq!(outcome, Outcome::TimedOut);

    // Cancel once the agent is running (its first line), then it must stop promptly.
    let sandbox = Sandbox::local_unisolated("local-tests");
    let cancel = CancellationToken::new();
    let (tx, mut rx) = mpsc::channel(4);
    let running = tokio::spawn({
        let (sandbox, cancel) = (sandbox.clone(), cancel.clone());
        let spec = spec(&agent, json!({}));
        async move { sandbox.run(spec, tx, cancel).await }
    });
    let first = rx.recv().await;
    assert!(
        matches!(&first, Some(Event::Log { line, .. }) if line == "spinning"),
        "{first:?}"
    );
    let canceled_at = Instant::now();
    cancel.cancel();
    assert_eq!(running.await.unwrap().unwrap(), Outcome::Canceled);
    assert!(canceled_at.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn local_runner_reports_exit_codes() {
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

#[tokio::test]
async fn local_runner_reports_heap_exhaustion_as_out_of_memory() {
    let agent = agent(
        Runtime::Node,
        "module.exports = async () => { const a = []; for (;;) a.push(new Array(1e5).fill(1)); };",
    );
    let mut spec = spec(&agent, json!({}));
    spec.memory_mb = 64;
    let (outcome, events) = run(spec, CancellationToken::new()).await;
    assert_eq!(outcome, Outcome::OutOfMemory, "{:?}", logs(&events));
}

#[tokio::test]
async fn local_runner_delivers_secrets_on_stdin_and_masks_them() {
    for (runtime, code) in [
        (
            Runtime::Node,
            "module.exports = async (i, ctx) => {\n\
               console.log(`using ${ctx.secrets.API_TOKEN}`);\n\
               return [Object.keys(ctx.secrets), JSON.stringify(process.env).includes('tok-')];\n\
             };",
        ),
        (
            Runtime::Python,
            "import os\n\
             def run(inputs, ctx):\n\
             \x20   print('using ' + ctx.secrets['API_TOKEN'])\n\
             \x20   return [list(ctx.secrets), 'tok-' in str(os.environ)]\n",
        ),
    ] {
        let agent = agent(runtime, code);
        let mut spec = spec(&agent, json!({}));
        spec.secrets = frameos_sandbox::Secrets::new([(
            "API_TOKEN".to_string(),
            "tok-local-4411".to_string(),
        )]);
        let (outcome, events) = run(spec, CancellationToken::new()).await;
        assert_eq!(
            output(outcome, &events),
            json!([["API_TOKEN"], false]),
            "{runtime}"
        );
        assert_eq!(logs(&events), ["using ***"], "{runtime}");
    }
}
