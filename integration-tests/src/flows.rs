//! Multi-step flows the execution tests share: publishing an approved agent, executing it, and
//! following its Server-Sent Events to the end.

use anyhow::{Context, ensure};
use futures::StreamExt;
use reqwest::Method;
use serde_json::{Value, json};

use crate::Mesh;

/// One SSE event: its `event:` name and parsed `data:`.
#[derive(Debug, Clone)]
pub struct SseEvent {
    pub kind: String,
    pub data: Value,
}

impl Mesh {
    /// The execution's stored log lines (`{seq, stream, line, ts}`), as its owner reads them.
    pub async fn log_lines(&self, key: &str, id: &str) -> anyhow::Result<Vec<Value>> {
        let page: Value = self
            .request(
                Method::GET,
                &format!("/v1/executions/{id}/logs?page_size=1000"),
                Some(key),
            )
            .send()
            .await?
            .json()
            .await?;
        page["items"]
            .as_array()
            .cloned()
            .with_context(|| format!("no log lines in {page}"))
    }

    /// `POST /v1/agents/{slug}/versions` of `package` with `key`, ready to send.
    pub fn upload(&self, key: &str, slug: &str, package: Vec<u8>) -> reqwest::RequestBuilder {
        self.request(
            Method::POST,
            &format!("/v1/agents/{slug}/versions"),
            Some(key),
        )
        .header("content-type", "application/gzip")
        .body(package)
    }

    /// Creates the agent (free unless `price_minor` is given), uploads `package`, approves it.
    pub async fn publish_approved(
        &self,
        developer_key: &str,
        slug: &str,
        package: Vec<u8>,
        price_minor: Option<i64>,
    ) -> anyhow::Result<()> {
        let pricing = match price_minor {
            None => json!({"model": "free"}),
            Some(p) => json!({"model": "per_execution", "price_minor": p, "currency": "INR"}),
        };
        self.publish_priced(developer_key, slug, package, pricing)
            .await
    }

    /// Like [`Mesh::publish_approved`], with `pricing` as the API takes it.
    pub async fn publish_priced(
        &self,
        developer_key: &str,
        slug: &str,
        package: Vec<u8>,
        pricing: Value,
    ) -> anyhow::Result<()> {
        let created = self
            .request(Method::POST, "/v1/agents", Some(developer_key))
            .json(&json!({"slug": slug, "name": slug, "pricing": pricing}))
            .send()
            .await?;
        ensure!(
            created.status() == 201,
            "create agent: {}",
            created.text().await?
        );
        let uploaded = self.upload(developer_key, slug, package).send().await?;
        ensure!(
            uploaded.status() == 201,
            "upload: {}",
            uploaded.text().await?
        );
        let version: Value = uploaded.json().await?;
        ensure!(version["status"] == "pending_review", "scanner: {version}");
        let v = version["version"].as_str().context("version")?;
        let approved = self
            .request(
                Method::POST,
                &format!("/v1/agents/{slug}/versions/{v}/approve"),
                Some(&self.admin_key),
            )
            .send()
            .await?;
        ensure!(
            approved.status() == 200,
            "approve: {}",
            approved.text().await?
        );
        Ok(())
    }

    /// Starts an execution; returns the 202 body.
    pub async fn execute(&self, key: &str, slug: &str, inputs: Value) -> anyhow::Result<Value> {
        let response = self
            .request(
                Method::POST,
                &format!("/v1/agents/{slug}/executions"),
                Some(key),
            )
            .json(&json!({"inputs": inputs}))
            .send()
            .await?;
        ensure!(
            response.status() == 202,
            "execute: {}",
            response.text().await?
        );
        Ok(response.json().await?)
    }

    /// Follows `/events` until the execution ends; returns every event and the final execution.
    pub async fn follow(&self, key: &str, id: &str) -> anyhow::Result<(Vec<SseEvent>, Value)> {
        let mut stream = self.events(key, id).await?;
        let mut events = Vec::new();
        while let Some(event) = stream.next_event().await? {
            events.push(event);
        }
        // `end` closes the stream of an ended execution (API.md §4.3) and repeats its status;
        // the events returned are the others.
        let end = events.pop_if(|e| e.kind == "end");
        let last = events
            .iter()
            .rev()
            .find(|e| e.kind == "status")
            .map(|e| e.data.clone())
            .context("the event stream ended without a status")?;
        if let Some(end) = end {
            ensure!(end.data["status"] == last["status"], "{end:?} after {last}");
        }
        Ok((events, last))
    }

    /// Follows `/events` until the first event of `kind` (e.g. `progress`: the agent runs), and
    /// returns it.
    pub async fn wait_for_event(
        &self,
        key: &str,
        id: &str,
        kind: &str,
    ) -> anyhow::Result<SseEvent> {
        let mut stream = self.events(key, id).await?;
        while let Some(event) = stream.next_event().await? {
            if event.kind == kind {
                return Ok(event);
            }
        }
        anyhow::bail!("the stream ended before a {kind} event")
    }

    async fn events(&self, key: &str, id: &str) -> anyhow::Result<EventStream> {
        EventStream::open(self.request(
            Method::GET,
            &format!("/v1/executions/{id}/events"),
            Some(key),
        ))
        .await
    }

    /// Runs an execution to its end.
    pub async fn run(
        &self,
        key: &str,
        slug: &str,
        inputs: Value,
    ) -> anyhow::Result<(Vec<SseEvent>, Value)> {
        let accepted = self.execute(key, slug, inputs).await?;
        let id = accepted["id"].as_str().context("id")?.to_string();
        self.follow(key, &id).await
    }
}

/// A Server-Sent Events body, read event by event.
pub struct EventStream {
    body: std::pin::Pin<Box<dyn futures::Stream<Item = reqwest::Result<bytes::Bytes>> + Send>>,
    buffer: String,
}

impl EventStream {
    /// Sends `request` (an `/events` of any gateway) and reads its body once it is a 200.
    pub async fn open(request: reqwest::RequestBuilder) -> anyhow::Result<EventStream> {
        let response = request.send().await?;
        ensure!(
            response.status() == 200,
            "events: {}",
            response.text().await?
        );
        Ok(EventStream {
            body: Box::pin(response.bytes_stream()),
            buffer: String::new(),
        })
    }

    /// The next named event, or `None` when the stream ends.
    pub async fn next_event(&mut self) -> anyhow::Result<Option<SseEvent>> {
        loop {
            while let Some(end) = self.buffer.find("\n\n") {
                let block: String = self.buffer.drain(..end + 2).collect();
                let mut kind = String::new();
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        kind = v.trim().to_string();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.trim_start());
                    }
                }
                // Keep-alive comments carry no event name.
                if !kind.is_empty() {
                    let data = serde_json::from_str(&data).unwrap_or(Value::String(data));
                    return Ok(Some(SseEvent { kind, data }));
                }
            }
            match self.body.next().await {
                Some(chunk) => self.buffer.push_str(&String::from_utf8_lossy(&chunk?)),
                None => return Ok(None),
            }
        }
    }
}

/// Containers Docker still has for an execution (running or not).
pub fn containers_of(execution_id: &str) -> Vec<String> {
    let output = std::process::Command::new("docker")
        .args([
            "ps",
            "-aq",
            "--filter",
            &format!("label=frameos.execution={execution_id}"),
        ])
        .output()
        .expect("docker ps");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_string)
        .collect()
}
