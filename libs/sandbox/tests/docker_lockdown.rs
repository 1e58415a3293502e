//! What an agent cannot do inside its container.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

use std::time::{Duration, Instant};

use common::*;
use frameos_sandbox::{Event, Outcome, Runtime};
use serde_json::json;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

#[tokio::test]
async fn container_is_created_locked_down() {
    let sandbox = sandbox().await;
    let agent = agent(
        Runtime::Python,
        "import time\n\
         def run(inputs, ctx):\n\
         \x20   print('ready', flush=True)\n\
         \x20   time.sleep(30)\n",
    );
    let mut spec = spec(&agent, json!({}));
    spec.cpu_cores = 0.5;
    spec.memory_mb = 128;
    spec.pids_limit = 32;
    spec.tmp_size_mb = 8;
    let id = spec.execution_id.clone();
    let (tx, mut rx) = mpsc::channel(8);
    let cancel = CancellationToken::new();
    let running = tokio::spawn({
        let (sandbox, cancel) = (sandbox.clone(), cancel.clone());
        async move { sandbox.run(spec, tx, cancel).await }
    });
    let ready = rx.recv().await;
    assert!(
        matches!(&ready, Some(Event::Log { line, .. }) if line == "ready"),
        "{ready:?}"
    );

    let info = docker()
        .await
        .inspect_container(&format!("frameos-exec-{id}"), None)
        .await
        .unwrap();
    let host = info.host_config.unwrap();
    let config = info.config.unwrap();
    assert_eq!(host.network_mode.as_deref(), Some("none"));
    assert_eq!(host.readonly_rootfs, Some(true));
    assert_eq!(host.nano_cpus, Some(500_000_000));
    assert_eq!(host.memory, Some(128 << 20));
    assert_eq!(host.memory_swap, Some(128 << 20));
    assert_eq!(host.pids_limit, Some(32));
    assert_eq!(host.cap_drop, Some(vec!["ALL".to_string()]));
    assert_eq!(
        host.security_opt,
        Some(vec!["no-new-privileges".to_string()])
    );
    assert_eq!(host.init, Some(true));
    assert_eq!(
        host.tmpfs.unwrap()["/tmp"],
        "rw,noexec,nosuid,size=8m,mode=1777"
    );
    let mounts = host.mounts.unwrap();
    assert_eq!(mounts.len(), 1);
    assert_eq!(mounts[0].target.as_deref(), Some("/agent"));
    assert_eq!(mounts[0].read_only, Some(true));
    assert_eq!(config.user.as_deref(), Some("10001:10001"));
    assert_eq!(config.tty, Some(false));
    let labels = config.labels.unwrap();
    assert_eq!(labels["frameos.managed"], "true");
    assert_eq!(labels["frameos.node"], NODE_ID);
    assert_eq!(labels["frameos.execution"], id);

    cancel.cancel();
    assert_eq!(running.await.unwrap().unwrap(), Outcome::Canceled);
    assert_no_container(&id).await;
}

#[tokio::test]
async fn runs_unprivileged_without_capabilities_or_network_interfaces() {
    let sandbox = sandbox().await;
    let agent = agent(
        Runtime::Node,
        r#"const fs = require("fs");
        module.exports = async () => {
            const status = fs.readFileSync("/proc/self/status", "utf8");
            return {
                uid: process.getuid(),
                gid: process.getgid(),
                cap_eff: status.match(/^CapEff:\s*(\w+)/m)[1],
                no_new_privs: status.match(/^NoNewPrivs:\s*(\d)/m)[1],
                interfaces: Object.keys(require("os").networkInterfaces()).sort(),
                cwd: process.cwd(),
            };
        };"#,
    );
    let (outcome, events) = run(&sandbox, spec(&agent, json!({}))).await;
    assert_eq!(
        output(outcome, &events),
        json!({
            "uid": 10001,
            "gid": 10001,
            "cap_eff": "0000000000000000",
            "no_new_privs": "1",
            "interfaces": ["lo"],
            "cwd": "/agent",
        })
    );
}

#[tokio::test]
async fn filesystem_is_read_only_except_tmp() {
    let sandbox = sandbox().await;
    let agent = agent(
        Runtime::Node,
        r#"const fs = require("fs");
        const attempt = (path) => {
            try { fs.writeFileSync(path, "x"); return "written"; } catch (e) { return e.message; }
        };
        module.exports = async () => ({
            agent: attempt("/agent/x"),
            etc: attempt("/etc/x"),
            tmp: attempt("/tmp/x"),
        });"#,
    );
    let (outcome, events) = run(&sandbox, spec(&agent, json!({}))).await;
    let out = output(outcome, &events);
    for key in ["agent", "etc"] {
        let message = out[key].as_str().unwrap();
        assert!(
            message.contains("EROFS") || message.contains("read-only"),
            "{key}: {message}"
        );
    }
    assert_eq!(out["tmp"], "written");
    assert!(!agent.dir.path().join("x").exists());
}

#[tokio::test]
async fn tmp_is_bounded() {
    let sandbox = sandbox().await;
    let agent = agent(
        Runtime::Python,
        "def run(inputs, ctx):\n\
         \x20   chunk = b'x' * (1024 * 1024)\n\
         \x20   try:\n\
         \x20       with open('/tmp/big', 'wb') as f:\n\
         \x20           for _ in range(100):\n\
         \x20               f.write(chunk)\n\
         \x20               f.flush()\n\
         \x20   except OSError as e:\n\
         \x20       return str(e)\n\
         \x20   return 'wrote 100 MB'\n",
    );
    let mut spec = spec(&agent, json!({}));
    spec.tmp_size_mb = 16;
    let (outcome, events) = run(&sandbox, spec).await;
    let out = output(outcome, &events);
    let message = out.as_str().unwrap();
    assert!(message.contains("No space left"), "{message}");
}

#[tokio::test]
async fn network_is_unreachable() {
    let sandbox = sandbox().await;
    let agent = agent(
        Runtime::Python,
        "import socket, time\n\
         def run(inputs, ctx):\n\
         \x20   started = time.monotonic()\n\
         \x20   s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n\
         \x20   s.settimeout(2)\n\
         \x20   try:\n\
         \x20       s.connect(('1.1.1.1', 53))\n\
         \x20       s.send(b'x')\n\
         \x20       return {'error': None}\n\
         \x20   except OSError as e:\n\
         \x20       return {'error': str(e), 'seconds': time.monotonic() - started}\n",
    );
    let (outcome, events) = run(&sandbox, spec(&agent, json!({}))).await;
    let out = output(outcome, &events);
    let message = out["error"].as_str().expect("the connection must fail");
    assert!(message.contains("unreachable"), "{message}");
    assert!(out["seconds"].as_f64().unwrap() < 1.0, "{out}");
}

#[tokio::test]
async fn fork_bomb_is_contained_by_the_pids_limit() {
    let sandbox = sandbox().await;
    let agent = agent(
        Runtime::Python,
        "import os\n\
         def run(inputs, ctx):\n\
         \x20   while True:\n\
         \x20       os.fork()\n",
    );
    let mut spec = spec(&agent, json!({}));
    spec.timeout = Duration::from_secs(10);
    let started = Instant::now();
    let (outcome, _) = run(&sandbox, spec).await;
    eprintln!("fork bomb ended after {:?}: {outcome:?}", started.elapsed());
    assert!(
        matches!(outcome, Outcome::Failed { .. } | Outcome::TimedOut),
        "{outcome:?}"
    );
    assert!(started.elapsed() < Duration::from_secs(20));
}
