//! Services as real child processes, for tests that signal them: spawn with an environment,
//! read their JSON log lines (stderr, `FRAMEOS_LOG_FORMAT=json`), send a signal, await the exit.

use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use anyhow::{Context, bail};
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::mpsc;

pub struct ServiceProcess {
    name: String,
    child: Child,
    lines: mpsc::UnboundedReceiver<Value>,
    /// Every log line read so far, for checks and for a failing test's message.
    pub seen: Vec<Value>,
}

impl ServiceProcess {
    /// Starts `program` with `env` added to the test's environment; killed if dropped.
    pub fn spawn(name: &str, program: &str, env: &[(String, String)]) -> anyhow::Result<Self> {
        let mut child = Command::new(program)
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("FRAMEOS_LOG_FORMAT", "json")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .with_context(|| format!("spawn {program}"))?;
        let stderr = child.stderr.take().context("stderr")?;
        let (sender, lines) = mpsc::unbounded_channel();
        tokio::spawn(async move {
            let mut reader = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = reader.next_line().await {
                let value = serde_json::from_str(&line).unwrap_or(Value::String(line));
                if sender.send(value).is_err() {
                    return;
                }
            }
        });
        Ok(ServiceProcess {
            name: name.to_string(),
            child,
            lines,
            seen: Vec::new(),
        })
    }

    pub fn pid(&self) -> anyhow::Result<u32> {
        self.child.id().context("the process has exited")
    }

    /// Waits for a log line whose message is `message`; returns its fields.
    pub async fn wait_for_log(&mut self, message: &str, within: Duration) -> anyhow::Result<Value> {
        if let Some(found) = self.seen.iter().find(|l| is_message(l, message)) {
            return Ok(found["fields"].clone());
        }
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let line = tokio::time::timeout_at(deadline, self.lines.recv())
                .await
                .with_context(|| {
                    format!(
                        "{}: no {message:?} log line in time; log: {:?}",
                        self.name, self.seen
                    )
                })?;
            let Some(line) = line else {
                bail!(
                    "{}: ended before logging {message:?}; log: {:?}",
                    self.name,
                    self.seen
                );
            };
            let hit = is_message(&line, message);
            self.seen.push(line);
            if hit {
                return Ok(self.seen[self.seen.len() - 1]["fields"].clone());
            }
        }
    }

    /// Sends `signal` (`TERM`, `INT`, `KILL`) as `docker stop` or Kubernetes would.
    pub fn signal(&self, signal: &str) -> anyhow::Result<()> {
        let status = std::process::Command::new("kill")
            .arg(format!("-{signal}"))
            .arg(self.pid()?.to_string())
            .status()?;
        anyhow::ensure!(status.success(), "kill -{signal} failed");
        Ok(())
    }

    /// Waits for the process to end; keeps reading its log meanwhile.
    pub async fn exit_status(&mut self, within: Duration) -> anyhow::Result<ExitStatus> {
        let status = tokio::time::timeout(within, self.child.wait())
            .await
            .with_context(|| format!("{} did not exit within {within:?}", self.name))??;
        while let Some(line) = self.lines.recv().await {
            self.seen.push(line);
        }
        Ok(status)
    }

    /// The messages logged so far, in order.
    pub fn messages(&self) -> Vec<String> {
        self.seen
            .iter()
            .map(|l| match l["fields"]["message"].as_str() {
                Some(message) => message.to_string(),
                None => l.to_string(),
            })
            .collect()
    }
}

fn is_message(line: &Value, message: &str) -> bool {
    line["fields"]["message"] == message
}
