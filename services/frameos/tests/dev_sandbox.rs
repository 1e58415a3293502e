//! `frameos dev` picks its sandbox from `FRAMEOS_SANDBOX` only (API.md §4.2), seen as a user
//! sees it: the real binary, the REST API, an agent published, approved and run.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::io::Write;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, ensure};
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

/// Secrets of the platform's own environment that no agent may see.
const ADMIN_KEY: &str = "frameos_sk_admin-secret-never-for-agents-0123456789";
/// An Ed25519 seed, 64 hex digits as the control plane requires.
const SIGNING_SECRET: &str = "5ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7e75ec7";
const AWS_SECRET: &str = "aws-secret-never-for-agents";

/// A `frameos dev` process on a scratch directory, its output collected as it comes.
struct Dev {
    _child: Child,
    base_url: String,
    output: Vec<String>,
    lines: mpsc::UnboundedReceiver<String>,
    _dir: tempfile::TempDir,
    http: reqwest::Client,
}

impl Dev {
    async fn start(env: &[(&str, &str)]) -> anyhow::Result<Dev> {
        let dir = tempfile::tempdir()?;
        let mut command = Command::new(env!("CARGO_BIN_EXE_frameos"));
        command
            .arg("dev")
            // Nothing of the test's own environment: only what a developer would set.
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("FRAMEOS_HTTP_ADDR", "127.0.0.1:0")
            .env("FRAMEOS_GRPC_ADDR", "127.0.0.1:0")
            .env("FRAMEOS_BOOTSTRAP_ADMIN_KEY", ADMIN_KEY)
            .env("FRAMEOS_MANDATE_SIGNING_KEY", SIGNING_SECRET)
            .env("AWS_SECRET_ACCESS_KEY", AWS_SECRET)
            .envs(env.iter().copied())
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        let mut child = command.spawn().context("spawn frameos dev")?;
        let (tx, mut lines) = mpsc::unbounded_channel();
        forward(child.stdout.take().context("stdout")?, tx.clone());
        forward(child.stderr.take().context("stderr")?, tx);
        let mut output = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(60);
        let base_url = loop {
            let line = tokio::time::timeout_at(deadline.into(), lines.recv())
                .await
                .with_context(|| format!("frameos dev did not start: {output:#?}"))?
                .with_context(|| format!("frameos dev exited: {output:#?}"))?;
            output.push(line.clone());
            if let Some(rest) = line.trim().strip_prefix("REST API") {
                let url = rest.split_whitespace().next().context("REST URL")?;
                break url.trim_end_matches("/v1").to_string();
            }
        };
        // The banner ends with how to stop it.
        loop {
            let line = tokio::time::timeout_at(deadline.into(), lines.recv())
                .await
                .context("banner")?
                .context("frameos dev exited")?;
            output.push(line.clone());
            if line.contains("stop with") {
                break;
            }
        }
        Ok(Dev {
            _child: child,
            base_url,
            output,
            lines,
            _dir: dir,
            http: reqwest::Client::new(),
        })
    }

    /// Everything printed so far (stdout and stderr).
    fn printed(&mut self) -> String {
        while let Ok(line) = self.lines.try_recv() {
            self.output.push(line);
        }
        self.output.join("\n")
    }

    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        key: &str,
    ) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base_url))
            .bearer_auth(key)
    }

    /// A developer publishes `code` as a Node agent, the admin approves it; returns its key.
    async fn publish(&self, slug: &str, code: &str) -> anyhow::Result<String> {
        use reqwest::Method;
        let account: Value = self
            .call(Method::POST, "/v1/accounts", ADMIN_KEY)
            .await
            .json(&json!({"name": "ada", "role": "developer"}))
            .send()
            .await?
            .json()
            .await?;
        let key = account["api_key"].as_str().context("api_key")?.to_string();
        let created = self
            .call(Method::POST, "/v1/agents", &key)
            .await
            .json(&json!({"slug": slug, "name": slug, "pricing": {"model": "free"}}))
            .send()
            .await?;
        ensure!(created.status() == 201, "agent: {}", created.text().await?);
        let uploaded = self
            .call(Method::POST, &format!("/v1/agents/{slug}/versions"), &key)
            .await
            .header("content-type", "application/gzip")
            .body(package(slug, code)?)
            .send()
            .await?;
        ensure!(
            uploaded.status() == 201,
            "upload: {}",
            uploaded.text().await?
        );
        let approved = self
            .call(
                Method::POST,
                &format!("/v1/agents/{slug}/versions/1.0.0/approve"),
                ADMIN_KEY,
            )
            .await
            .send()
            .await?;
        ensure!(
            approved.status() == 200,
            "approve: {}",
            approved.text().await?
        );
        Ok(key)
    }

    /// Runs the agent and polls until the execution has ended.
    async fn run(&self, key: &str, slug: &str) -> anyhow::Result<Value> {
        use reqwest::Method;
        let accepted = self
            .call(Method::POST, &format!("/v1/agents/{slug}/executions"), key)
            .await
            .json(&json!({"inputs": {}}))
            .send()
            .await?;
        ensure!(
            accepted.status() == 202,
            "execute: {}",
            accepted.text().await?
        );
        let accepted: Value = accepted.json().await?;
        let id = accepted["id"].as_str().context("id")?;
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let execution: Value = self
                .call(Method::GET, &format!("/v1/executions/{id}"), key)
                .await
                .send()
                .await?
                .json()
                .await?;
            if !matches!(execution["status"].as_str(), Some("queued" | "running")) {
                return Ok(execution);
            }
            ensure!(Instant::now() < deadline, "still not ended: {execution}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

/// Sends each line of a pipe to `tx` until the pipe closes.
fn forward<R>(pipe: R, tx: mpsc::UnboundedSender<String>)
where
    R: tokio::io::AsyncRead + Unpin + Send + 'static,
{
    tokio::spawn(async move {
        let mut lines = BufReader::new(pipe).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let _ = tx.send(line);
        }
    });
}

fn package(slug: &str, code: &str) -> anyhow::Result<Vec<u8>> {
    let manifest = json!({
        "name": slug,
        "version": "1.0.0",
        "runtime": "node",
        "entrypoint": "index.js",
        "description": "test agent",
        "inputs": {"type": "object"},
        "resources": {"cpu_cores": 0.5, "memory_mb": 128, "timeout_ms": 20000}
    })
    .to_string();
    let mut builder = tar::Builder::new(flate2::write::GzEncoder::new(
        Vec::new(),
        flate2::Compression::default(),
    ));
    for (path, contents) in [("agent.json", manifest.as_str()), ("index.js", code)] {
        let mut header = tar::Header::new_gnu();
        header.set_size(contents.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        builder.append_data(&mut header, path, contents.as_bytes())?;
    }
    let mut gz = builder.into_inner()?;
    gz.flush()?;
    Ok(gz.finish()?)
}

#[tokio::test]
async fn docker_selected_without_an_engine_fails_executions_naming_the_sandbox() {
    let host = "unix:///nonexistent/frameos-test-docker.sock";
    let marker_dir = tempfile::tempdir().unwrap();
    let marker = marker_dir.path().join("ran-unisolated");
    // Had it run as a host process, it would leave this file behind.
    let code = format!(
        "module.exports = async () => {{ require('fs').writeFileSync({:?}, 'yes'); return 'ran'; }};",
        marker.display().to_string()
    );
    // FRAMEOS_SANDBOX unset: docker is the default.
    let mut dev = Dev::start(&[("FRAMEOS_DOCKER_HOST", host)]).await.unwrap();
    let banner = dev.printed();
    assert!(banner.contains("sandbox       UNAVAILABLE"), "{banner}");
    assert!(!banner.contains("local processes —"), "{banner}");

    let key = dev.publish("no-engine", &code).await.unwrap();
    let execution = dev.run(&key, "no-engine").await.unwrap();
    assert_eq!(execution["status"], "failed", "{execution}");
    let error = execution["error"].as_str().unwrap();
    assert!(error.starts_with("sandbox unavailable: "), "{error}");
    assert!(error.contains("FRAMEOS_SANDBOX=docker"), "{error}");
    assert!(error.contains(host), "{error}");
    assert!(!marker.exists(), "the agent ran outside any sandbox");
    let printed = dev.printed();
    assert!(
        printed.contains("ERROR: the Docker sandbox is unavailable"),
        "{printed}"
    );
}

#[tokio::test]
async fn local_only_when_asked_and_then_without_the_platforms_environment() {
    let code = "const os = require('os');
        module.exports = async () => ({
            env: process.env, cwd: process.cwd(), home: os.homedir(),
        });";
    let mut dev = Dev::start(&[
        ("FRAMEOS_SANDBOX", "local"),
        // Ignored with the local sandbox: it is never consulted.
        (
            "FRAMEOS_DOCKER_HOST",
            "unix:///nonexistent/frameos-test-docker.sock",
        ),
    ])
    .await
    .unwrap();
    let banner = dev.printed();
    assert!(banner.contains("NOT ISOLATED"), "{banner}");
    assert!(
        banner.contains("WARNING: FRAMEOS_SANDBOX=local"),
        "{banner}"
    );

    let key = dev.publish("env-probe", code).await.unwrap();
    let execution = dev.run(&key, "env-probe").await.unwrap();
    assert_eq!(execution["status"], "succeeded", "{execution}");
    let output = &execution["output"];
    let env = output["env"].as_object().unwrap();
    let text = output.to_string();
    for secret in [ADMIN_KEY, SIGNING_SECRET, AWS_SECRET] {
        assert!(!text.contains(secret), "{secret} reached the agent: {text}");
    }
    let mut names: Vec<&str> = env.keys().map(String::as_str).collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "FRAMEOS_AGENT_DIR",
            "FRAMEOS_ENTRYPOINT",
            "FRAMEOS_EXECUTION_ID",
            "HOME",
            "LANG",
            "PATH"
        ]
    );
    assert_eq!(output["cwd"], output["home"]);
    let cwd = output["cwd"].as_str().unwrap();
    assert!(cwd.contains("frameos-local-"), "{cwd}");
    assert!(
        !std::path::Path::new(cwd).exists(),
        "scratch {cwd} left behind"
    );
}
