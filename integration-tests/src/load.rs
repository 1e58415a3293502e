//! Load for fault tests: a stream of requests recorded with their fate, many executions
//! submitted at once, and execution nodes as separate processes that can be killed.

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::StreamExt;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::Mesh;

/// A request gets this long before it counts as hung.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// One request's fate: when it was sent, how long the answer took, its status (`None`: no
/// answer at all) and body.
#[derive(Debug, Clone)]
pub struct Answer {
    pub sent: Instant,
    pub took: Duration,
    pub status: Option<u16>,
    pub body: Value,
}

/// POSTs `{"inputs": inputs}` to one URL, one request after the other, until stopped.
pub struct Requests {
    answers: Arc<Mutex<Vec<Answer>>>,
    stop: CancellationToken,
    task: tokio::task::JoinHandle<()>,
}

impl Requests {
    pub fn start(url: String, key: String, inputs: Value) -> Requests {
        let answers = Arc::new(Mutex::new(Vec::new()));
        let stop = CancellationToken::new();
        let task = tokio::spawn({
            let answers = answers.clone();
            let stop = stop.clone();
            async move {
                let http = reqwest::Client::builder()
                    .timeout(REQUEST_TIMEOUT)
                    .build()
                    .unwrap_or_default();
                while !stop.is_cancelled() {
                    let sent = Instant::now();
                    let response = http
                        .post(&url)
                        .bearer_auth(&key)
                        .json(&json!({"inputs": inputs}))
                        .send()
                        .await;
                    let (status, body) = match response {
                        Ok(r) => {
                            let status = r.status().as_u16();
                            (Some(status), r.json().await.unwrap_or(Value::Null))
                        }
                        Err(e) => (None, Value::String(e.to_string())),
                    };
                    let answer = Answer {
                        sent,
                        took: sent.elapsed(),
                        status,
                        body,
                    };
                    answers.lock().map(|mut a| a.push(answer)).ok();
                    // A steady stream, not a flood: the outage should see several requests.
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        });
        Requests {
            answers,
            stop,
            task,
        }
    }

    /// Waits (bounded) until `count` over the answers so far reaches `n`.
    pub async fn wait_for(
        &self,
        n: usize,
        within: Duration,
        count: impl Fn(&[Answer]) -> usize,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + within;
        loop {
            let answers = self.answers();
            if count(&answers) >= n {
                return Ok(());
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "not {n} such answers within {within:?}: {:?}",
                summary(&answers)
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    pub fn answers(&self) -> Vec<Answer> {
        self.answers.lock().map(|a| a.clone()).unwrap_or_default()
    }

    /// Stops after the request in flight; every answer.
    pub async fn stop(self) -> Vec<Answer> {
        self.stop.cancel();
        let answers = self.answers.clone();
        let _ = self.task.await;
        answers.lock().map(|a| a.clone()).unwrap_or_default()
    }
}

/// `status after milliseconds` of each answer, for messages.
pub fn summary(answers: &[Answer]) -> Vec<String> {
    answers
        .iter()
        .map(|a| match a.status {
            Some(status) => format!("{status} after {} ms", a.took.as_millis()),
            None => format!("no answer after {} ms: {}", a.took.as_millis(), a.body),
        })
        .collect()
}

/// Submits one execution per `(key, slug, inputs)`, `parallel` at a time, and returns the ids
/// in order. A 429 is waited out as its `Retry-After` says (a well-behaved client).
pub async fn submit_all(
    mesh: &Mesh,
    requests: Vec<(String, String, Value)>,
    parallel: usize,
) -> anyhow::Result<Vec<String>> {
    futures::stream::iter(requests)
        .map(|(key, slug, inputs)| async move {
            loop {
                let response = mesh
                    .request(
                        reqwest::Method::POST,
                        &format!("/v1/agents/{slug}/executions"),
                        Some(&key),
                    )
                    .json(&json!({"inputs": inputs}))
                    .send()
                    .await?;
                let status = response.status().as_u16();
                if status == 429 {
                    let wait = response
                        .headers()
                        .get("retry-after")
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(1);
                    tokio::time::sleep(Duration::from_secs(wait)).await;
                    continue;
                }
                let body: Value = response.json().await?;
                anyhow::ensure!(status == 202, "execute: {status} {body}");
                return body["id"]
                    .as_str()
                    .map(str::to_string)
                    .context("no id in the answer");
            }
        })
        .buffered(parallel)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect()
}

/// An execution node in a process of its own (`frameos-test-node`), SIGKILLed when dropped.
pub struct NodeProcess {
    pub node_id: String,
    child: tokio::process::Child,
    _cache: tempfile::TempDir,
}

impl NodeProcess {
    /// Starts `binary` (the test's `CARGO_BIN_EXE_frameos-test-node`) on `mesh`'s queue.
    pub fn start(
        mesh: &Mesh,
        binary: &Path,
        node_id: &str,
        concurrency: u16,
    ) -> anyhow::Result<NodeProcess> {
        let cache = tempfile::tempdir()?;
        let child = tokio::process::Command::new(binary)
            .envs(mesh.node_env(cache.path()))
            .env("FRAMEOS_NODE_ID", node_id)
            .env("FRAMEOS_NODE_CONCURRENCY", concurrency.to_string())
            .env("RUST_LOG", "warn")
            .kill_on_drop(true)
            .spawn()
            .context("start the node process")?;
        Ok(NodeProcess {
            node_id: node_id.to_string(),
            child,
            _cache: cache,
        })
    }

    /// SIGKILL, and the process reaped.
    pub async fn kill(mut self) -> anyhow::Result<()> {
        self.child.start_kill()?;
        self.child.wait().await?;
        Ok(())
    }

    /// Whether the process is still running (it must not have died on its own).
    pub fn is_running(&mut self) -> bool {
        matches!(self.child.try_wait(), Ok(None))
    }
}
