//! `frameos dev` as a real process (the `frameos-test-dev` binary) on a data directory that
//! outlives it, for tests that kill it with SIGKILL and start it again on the same directory.

use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// What survives the process: its data directory (SQLite, packages, cache) and settings.
pub struct DevData {
    dir: tempfile::TempDir,
    pub admin_key: String,
    pub node_id: String,
    /// Extra environment, e.g. the reaper's timings.
    pub env: Vec<(String, String)>,
}

impl DevData {
    pub fn new() -> anyhow::Result<DevData> {
        Ok(DevData {
            dir: tempfile::tempdir()?,
            admin_key: frameos_control_plane::generate_api_key(),
            // Unique per test (a node removes every container labelled with its id at start),
            // and the same across restarts, as the host name of `frameos dev` is.
            node_id: format!(
                "it-dev-{}",
                &uuid::Uuid::new_v4().simple().to_string()[..12]
            ),
            env: Vec::new(),
        })
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    pub fn database_url(&self) -> String {
        format!("sqlite://{}/frameos.db", self.path().display())
    }
}

/// A running `frameos-test-dev` process, killed when dropped.
pub struct DevProcess {
    child: Child,
    pub base_url: String,
    pub admin_key: String,
    http: reqwest::Client,
}

impl DevProcess {
    /// Starts `binary` on `data` and waits until it serves.
    pub async fn start(binary: &Path, data: &DevData) -> anyhow::Result<DevProcess> {
        let dir = data.path();
        let mut child = Command::new(binary)
            .env("FRAMEOS_DATABASE_URL", data.database_url())
            .env("FRAMEOS_PACKAGE_DIR", dir.join("packages"))
            .env("FRAMEOS_PACKAGE_CACHE", dir.join("cache"))
            .env("FRAMEOS_GRPC_ADDR", "127.0.0.1:0")
            .env("FRAMEOS_HTTP_ADDR", "127.0.0.1:0")
            .env("FRAMEOS_BOOTSTRAP_ADMIN_KEY", &data.admin_key)
            .env("FRAMEOS_NODE_ID", &data.node_id)
            .env_remove("FRAMEOS_AMQP_URL")
            .envs(data.env.iter().map(|(k, v)| (k, v)))
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("spawn {}", binary.display()))?;
        let stdout = child.stdout.take().context("stdout")?;
        let mut lines = BufReader::new(stdout).lines();
        let ready = tokio::time::timeout(Duration::from_secs(120), async {
            while let Some(line) = lines.next_line().await? {
                if let Some(url) = line.strip_prefix("ready ") {
                    return Ok(url.to_string());
                }
            }
            bail!("frameos-test-dev exited before it was ready")
        })
        .await
        .context("frameos-test-dev did not become ready")??;
        // Keep draining stdout so the process never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(DevProcess {
            child,
            base_url: ready,
            admin_key: data.admin_key.clone(),
            http: reqwest::Client::new(),
        })
    }

    /// SIGKILL, as a crash or the OOM killer would: nothing runs after it.
    pub async fn kill(mut self) -> anyhow::Result<()> {
        self.child.start_kill()?;
        self.child.wait().await?;
        Ok(())
    }

    pub fn request(&self, method: Method, path: &str, key: &str) -> reqwest::RequestBuilder {
        self.http
            .request(method, format!("{}{path}", self.base_url))
            .bearer_auth(key)
    }

    async fn send(&self, request: reqwest::RequestBuilder, expect: u16) -> anyhow::Result<Value> {
        let response = request.send().await?;
        let status = response.status().as_u16();
        let body: Value = response.json().await.unwrap_or(Value::Null);
        ensure!(status == expect, "expected {expect}, got {status}: {body}");
        Ok(body)
    }

    /// Creates an account as the admin; returns its API key.
    pub async fn account(&self, name: &str, role: &str) -> anyhow::Result<String> {
        let request = self
            .request(Method::POST, "/v1/accounts", &self.admin_key)
            .json(&json!({"name": name, "role": role}));
        let body = self.send(request, 201).await?;
        body["api_key"]
            .as_str()
            .map(str::to_string)
            .context("api_key missing")
    }

    /// Creates the agent (paid when `price_minor` is given), uploads `package`, approves it.
    pub async fn publish_approved(
        &self,
        developer: &str,
        slug: &str,
        package: Vec<u8>,
        price_minor: Option<i64>,
    ) -> anyhow::Result<()> {
        let pricing = match price_minor {
            None => json!({"model": "free"}),
            Some(p) => json!({"model": "per_execution", "price_minor": p, "currency": "INR"}),
        };
        let create = self
            .request(Method::POST, "/v1/agents", developer)
            .json(&json!({"slug": slug, "name": slug, "pricing": pricing}));
        self.send(create, 201).await?;
        let upload = self
            .request(
                Method::POST,
                &format!("/v1/agents/{slug}/versions"),
                developer,
            )
            .header("content-type", "application/gzip")
            .body(package);
        let version = self.send(upload, 201).await?;
        let v = version["version"].as_str().context("version")?;
        let approve = self.request(
            Method::POST,
            &format!("/v1/agents/{slug}/versions/{v}/approve"),
            &self.admin_key,
        );
        self.send(approve, 200).await?;
        Ok(())
    }

    /// Starts an execution; returns its id.
    pub async fn execute(&self, key: &str, slug: &str, inputs: Value) -> anyhow::Result<String> {
        let request = self
            .request(Method::POST, &format!("/v1/agents/{slug}/executions"), key)
            .json(&json!({"inputs": inputs}));
        let body = self.send(request, 202).await?;
        body["id"].as_str().map(str::to_string).context("id")
    }

    pub async fn execution(&self, key: &str, id: &str) -> anyhow::Result<Value> {
        let request = self.request(Method::GET, &format!("/v1/executions/{id}"), key);
        self.send(request, 200).await
    }

    pub async fn logs(&self, key: &str, id: &str) -> anyhow::Result<Vec<Value>> {
        let path = format!("/v1/executions/{id}/logs?page_size=1000");
        let body = self
            .send(self.request(Method::GET, &path, key), 200)
            .await?;
        Ok(body["items"].as_array().cloned().unwrap_or_default())
    }

    /// Polls the execution until `done` holds for it (bounded by `within`).
    pub async fn wait_for(
        &self,
        key: &str,
        id: &str,
        within: Duration,
        done: impl Fn(&Value) -> bool,
    ) -> anyhow::Result<Value> {
        let deadline = Instant::now() + within;
        loop {
            let execution = self.execution(key, id).await?;
            if done(&execution) {
                return Ok(execution);
            }
            ensure!(Instant::now() < deadline, "gave up waiting: {execution}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}
