// The test bodies of `docker_lockdown.rs` (cold path) and `warm_lockdown.rs` (warm path): included
// by both, with `sandbox()` and `assert_execution_label` from `common::cold` or `common::warm`.
// No inner attributes here (`include!`).

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
    // Not even the engine's "none" network set-up: no interface is brought up, loopback included.
    assert_eq!(config.network_disabled, Some(true));
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
    assert_execution_label(&labels, &id);

    cancel.cancel();
    assert_eq!(running.await.unwrap().unwrap(), Outcome::Canceled);
    assert_no_container(&id).await;
}

/// The security pins: what a hostile agent finds when it looks around its container.
#[tokio::test]
async fn posture_seen_from_inside_an_agent() {
    let sandbox = sandbox().await;
    let agent = agent(
        Runtime::Node,
        r##"const fs = require("fs"), cp = require("child_process");
        const attempt = (f) => { try { return "ok: " + f(); } catch (e) { return e.code || e.message; } };
        module.exports = async () => {
            const status = fs.readFileSync("/proc/self/status", "utf8");
            const field = (name) => status.match(new RegExp("^" + name + ":\\s*(.*)$", "m"))[1];
            fs.writeFileSync("/tmp/probe.sh", "#!/bin/sh\necho ran\n", { mode: 0o755 });
            const tmp = fs.readFileSync("/proc/self/mounts", "utf8").split("\n")
                .map((l) => l.split(" ")).find((m) => m[1] === "/tmp");
            return {
                uid: field("Uid").split("\t"),
                gid: field("Gid").split("\t"),
                cap_eff: field("CapEff"),
                cap_prm: field("CapPrm"),
                cap_bnd: field("CapBnd"),
                no_new_privs: field("NoNewPrivs"),
                seccomp: field("Seccomp"),
                write_root: attempt(() => fs.writeFileSync("/probe", "x")),
                write_etc: attempt(() => fs.writeFileSync("/etc/probe", "x")),
                write_agent: attempt(() => fs.writeFileSync("/agent/probe", "x")),
                exec_tmp: attempt(() => cp.execFileSync("/tmp/probe.sh").toString().trim()),
                // The control: the same script read by a shell runs, so only exec is refused.
                sh_tmp: attempt(() => cp.execFileSync("/bin/sh", ["/tmp/probe.sh"]).toString().trim()),
                tmp_options: tmp[3].split(","),
                env: process.env,
                docker_sockets: ["/var/run/docker.sock", "/run/docker.sock", "/var/run/docker"]
                    .filter((p) => fs.existsSync(p)),
                net_dev: fs.readFileSync("/proc/net/dev", "utf8").split("\n").slice(2)
                    .map((l) => l.split(":")[0].trim()).filter(Boolean),
                sys_class_net: fs.readdirSync("/sys/class/net"),
            };
        };"##,
    );
    let spec = spec(&agent, json!({}));
    let id = spec.execution_id.clone();
    let (outcome, events) = run(&sandbox, spec).await;
    let seen = output(outcome, &events);
    let all = |v: &str| json!([v, v, v, v]);
    assert_eq!(seen["uid"], all("10001"), "uid ≠ 0: {seen}");
    assert_eq!(seen["gid"], all("10001"), "{seen}");
    for caps in ["cap_eff", "cap_prm", "cap_bnd"] {
        assert_eq!(seen[caps], "0000000000000000", "{caps}: {seen}");
    }
    assert_eq!(seen["no_new_privs"], "1", "{seen}");
    assert_eq!(seen["seccomp"], "2", "seccomp filter mode: {seen}");
    for write in ["write_root", "write_etc", "write_agent"] {
        assert_eq!(seen[write], "EROFS", "{write}: {seen}");
    }
    assert_eq!(seen["exec_tmp"], "EACCES", "noexec /tmp: {seen}");
    assert_eq!(seen["sh_tmp"], "ok: ran", "{seen}");
    let tmp_options = seen["tmp_options"].as_array().unwrap();
    assert!(tmp_options.contains(&json!("noexec")), "{seen}");
    assert!(tmp_options.contains(&json!("nosuid")), "{seen}");
    // The environment: the image's, Docker's HOSTNAME, and the runner protocol's; nothing else.
    let env = seen["env"].as_object().unwrap();
    let mut names: Vec<&str> = env.keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "FRAMEOS_ENTRYPOINT",
            "FRAMEOS_EXECUTION_ID",
            "HOME",
            "HOSTNAME",
            "LANG",
            "PATH"
        ],
        "{seen}"
    );
    assert_eq!(env["FRAMEOS_EXECUTION_ID"], json!(id));
    assert_eq!(env["HOME"], "/tmp");
    assert_eq!(seen["docker_sockets"], json!([]), "{seen}");
    assert_eq!(seen["net_dev"], json!(["lo"]), "{seen}");
    assert_eq!(seen["sys_class_net"], json!(["lo"]), "{seen}");
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

/// The agent forks until the kernel refuses, and says how far it got: never past the limit,
/// while the host can still start processes.
#[tokio::test]
async fn fork_bomb_is_contained_by_the_pids_limit() {
    let sandbox = sandbox().await;
    let agent = agent(
        Runtime::Python,
        "import errno, os, time\n\
         def run(inputs, ctx):\n\
         \x20   children = 0\n\
         \x20   while True:\n\
         \x20       try:\n\
         \x20           pid = os.fork()\n\
         \x20       except OSError as e:\n\
         \x20           print('refused after %d with %s' % (children, errno.errorcode[e.errno]), flush=True)\n\
         \x20           time.sleep(60)\n\
         \x20           return children\n\
         \x20       if pid == 0:\n\
         \x20           time.sleep(60)\n\
         \x20           os._exit(0)\n\
         \x20       children += 1\n",
    );
    let spec = spec(&agent, json!({}));
    let id = spec.execution_id.clone();
    assert_eq!(spec.pids_limit, frameos_sandbox::DEFAULT_PIDS_LIMIT);
    let limit = u64::from(spec.pids_limit);
    let (tx, mut rx) = mpsc::channel(8);
    let cancel = CancellationToken::new();
    let running = tokio::spawn({
        let (sandbox, cancel) = (sandbox.clone(), cancel.clone());
        async move { sandbox.run(spec, tx, cancel).await }
    });
    let report = match rx.recv().await {
        Some(Event::Log { line, .. }) => line,
        other => panic!("expected the agent's report, got {other:?}"),
    };
    eprintln!("fork bomb: {report}");
    let mut words = report.split_whitespace();
    assert_eq!(words.next(), Some("refused"), "{report}");
    let children: u64 = words.nth(1).unwrap().parse().unwrap();
    assert_eq!(words.nth(1), Some("EAGAIN"), "{report}");
    // Docker's init, the runner (the agent's process) and its children share the limit.
    assert!(
        children + 2 <= limit,
        "{children} children under a limit of {limit}"
    );
    assert!(
        children + 8 >= limit,
        "stopped at {children}, far below {limit}: {report}"
    );

    let info = docker()
        .await
        .inspect_container(&format!("frameos-exec-{id}"), None)
        .await
        .unwrap();
    assert_eq!(info.host_config.unwrap().pids_limit, Some(limit as i64));
    // The host is unaffected: it still starts processes while the bomb is held.
    let host = std::process::Command::new("true").status().unwrap();
    assert!(host.success());

    cancel.cancel();
    assert_eq!(running.await.unwrap().unwrap(), Outcome::Canceled);
    assert_no_container(&id).await;
}

#[tokio::test]
async fn secrets_arrive_on_stdin_and_are_masked_in_every_event() {
    let sandbox = sandbox().await;
    let agent = agent(
        Runtime::Python,
        "import os, sys\n\
         def run(inputs, ctx):\n\
         \x20   token = ctx.secrets.API_TOKEN\n\
         \x20   print('token=' + token)\n\
         \x20   print(token, file=sys.stderr)\n\
         \x20   ctx.progress(0.5, 'with ' + token)\n\
         \x20   with open('/proc/1/environ', 'rb') as f:\n\
         \x20       init_env = f.read()\n\
         \x20   with open('/proc/self/environ', 'rb') as f:\n\
         \x20       own_env = f.read()\n\
         \x20   return {'length': len(token), 'keys': sorted(ctx.secrets),\n\
         \x20           'in_env': token.encode() in init_env + own_env or token in str(os.environ)}\n",
    );
    let mut spec = spec(&agent, json!({}));
    spec.secrets = frameos_sandbox::Secrets::new([
        ("API_TOKEN".to_string(), "tok-5c1e-only-on-stdin".to_string()),
        ("SECOND".to_string(), "x".to_string()),
    ]);
    let (outcome, events) = run(&sandbox, spec).await;
    let seen = output(outcome, &events);
    assert_eq!(
        seen,
        json!({"length": 22, "keys": ["API_TOKEN", "SECOND"], "in_env": false})
    );
    assert_eq!(logs(&events), ["token=***", "***"]);
    assert!(
        events.contains(&Event::Progress {
            fraction: 0.5,
            message: "with ***".to_string()
        }),
        "{events:?}"
    );
}
