//! `frameos run <slug> --input '{...}'`: execute an agent and follow it live until it ends.

use anyhow::{Context, bail};
use frameos_core::LogStream;
use futures::StreamExt;
use serde_json::{Value, json};

use crate::api::{Client, Connection};

#[derive(clap::Args)]
pub struct Args {
    /// The agent to run.
    slug: String,
    /// Inputs as JSON.
    #[arg(long, default_value = "{}")]
    input: String,
    /// A published version (default: the latest).
    #[arg(long)]
    version: Option<String>,
    /// Makes retries safe: the same key and inputs return the same execution.
    #[arg(long)]
    idempotency_key: Option<String>,
    #[command(flatten)]
    connection: Connection,
}

pub async fn run(args: Args) -> anyhow::Result<()> {
    let inputs: Value = serde_json::from_str(&args.input).context("--input is not valid JSON")?;
    let client = Client::new(&args.connection);
    let mut body = json!({"inputs": inputs});
    if let Some(version) = &args.version {
        body["version"] = json!(version);
    }
    let execution = client
        .post_with_key(
            &format!("/v1/agents/{}/executions", args.slug),
            &body,
            args.idempotency_key.as_deref(),
        )
        .await?;
    let id = execution["id"]
        .as_str()
        .context("no execution id in the answer")?;
    eprintln!("execution {id} queued");

    let response = client
        .stream(&format!("/v1/executions/{id}/events"))
        .await?;
    let mut stream = response.bytes_stream();
    let mut buffer = String::new();
    let mut last_status = Value::Null;
    while let Some(chunk) = stream.next().await {
        buffer.push_str(&String::from_utf8_lossy(&chunk?));
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            let (mut kind, mut data) = (String::new(), String::new());
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    kind = v.trim().to_string();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push_str(v.trim_start());
                }
            }
            let data: Value = serde_json::from_str(&data).unwrap_or(Value::Null);
            match kind.as_str() {
                "log" => match log_line(&data) {
                    (Sink::Stdout, text) => println!("{text}"),
                    (Sink::Stderr, text) => eprintln!("{text}"),
                },
                "progress" => eprintln!(
                    "  [{:>3.0}%] {}",
                    data["fraction"].as_f64().unwrap_or(0.0) * 100.0,
                    data["message"].as_str().unwrap_or_default()
                ),
                "status" => {
                    eprintln!("status: {}", data["status"].as_str().unwrap_or("?"));
                    last_status = data;
                }
                "error" => bail!(
                    "{}",
                    data["message"].as_str().unwrap_or("event stream failed")
                ),
                _ => {}
            }
        }
    }
    match last_status["status"].as_str() {
        Some("succeeded") => {
            println!("{}", serde_json::to_string_pretty(&last_status["output"])?);
            Ok(())
        }
        Some(status) => {
            let error = last_status["error"].as_str().unwrap_or("");
            let exit = last_status["exit_code"]
                .as_i64()
                .map(|c| format!(" (exit code {c})"))
                .unwrap_or_default();
            bail!("execution {id} {status}: {error}{exit}")
        }
        None => bail!("the event stream ended before the execution did"),
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Sink {
    Stdout,
    Stderr,
}

/// Where a log event goes and how it reads. The agent's lines are indented, the platform's
/// start flush left with `[system]`, so the two cannot be confused even in one terminal.
fn log_line(data: &Value) -> (Sink, String) {
    let line = data["line"].as_str().unwrap_or_default();
    match serde_json::from_value::<LogStream>(data["stream"].clone()) {
        Ok(LogStream::Stdout) => (Sink::Stdout, format!("  {line}")),
        Ok(LogStream::Stderr) => (Sink::Stderr, format!("  {line}")),
        Ok(LogStream::System) => (Sink::Stderr, format!("[system] {line}")),
        // A stream this client does not know yet: shown, marked with its name.
        Err(_) => {
            let stream = data["stream"].as_str().unwrap_or("?");
            (Sink::Stderr, format!("[{stream}] {line}"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn system_lines_are_marked_and_agent_lines_are_not() {
        let forged = "[system] egress allowed CONNECT bank.example:443";
        let cases = [
            ("stdout", forged, Sink::Stdout, format!("  {forged}")),
            ("stderr", "warn", Sink::Stderr, "  warn".to_string()),
            (
                "system",
                "egress refused GET evil.test:80",
                Sink::Stderr,
                "[system] egress refused GET evil.test:80".to_string(),
            ),
        ];
        for (stream, line, sink, text) in cases {
            let data = json!({"seq": 1, "stream": stream, "line": line});
            assert_eq!(log_line(&data), (sink, text), "{stream}");
        }
        let (_, text) = log_line(&json!({"stream": "trace", "line": "x"}));
        assert_eq!(text, "[trace] x");
    }
}
