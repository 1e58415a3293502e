//! Following an execution's Server-Sent Events (`GET /v1/executions/{id}/events`) until it
//! ends, for `frameos run` and `frameos executions follow`, and what Ctrl-C does meanwhile.

use std::time::Duration;

use anyhow::Context;
use frameos_core::{ErrorCode, LogStream};
use futures::StreamExt;
use serde_json::{Value, json};

use crate::api::{ApiError, Client};
use crate::exit::{Ended, Exit};
use crate::output::{field, json_line};

/// After one of these an execution changes no more.
pub const FINAL_STATUSES: [&str; 4] = ["succeeded", "failed", "timed_out", "canceled"];

/// Reconnections in a row that may fail before following gives up.
const MAX_RECONNECTS: u32 = 5;

/// Where the events go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Show {
    /// `frameos run`: everything on stderr (stdout is for the result alone); `quiet` shows
    /// only the queued/ended lines.
    Stderr { quiet: bool },
    /// `executions follow`: the agent's stdout lines on stdout, the rest on stderr.
    Terminal,
    /// `executions follow --output json`: every event as one JSON line on stdout.
    Json,
}

pub fn is_final(execution: &Value) -> bool {
    execution["status"]
        .as_str()
        .is_some_and(|s| FINAL_STATUSES.contains(&s))
}

/// SIGINT (Ctrl-C), listened for from creation on: a signal that arrives before anyone waits
/// for it is kept, not lost (e.g. during the request that creates the execution).
pub struct Interrupt {
    #[cfg(unix)]
    signal: tokio::signal::unix::Signal,
}

impl Interrupt {
    pub fn listen() -> anyhow::Result<Interrupt> {
        Ok(Interrupt {
            #[cfg(unix)]
            signal: tokio::signal::unix::signal(tokio::signal::unix::SignalKind::interrupt())
                .context("cannot listen for Ctrl-C")?,
        })
    }

    pub async fn recv(&mut self) {
        #[cfg(unix)]
        self.signal.recv().await;
        #[cfg(not(unix))]
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Follows execution `id` until it ends (its final execution JSON) or until Ctrl-C: then the
/// platform is asked to cancel it (unless `detach`), and the error says so (exit 130).
pub async fn follow_interruptibly(
    client: &Client,
    id: &str,
    show: Show,
    detach: bool,
    interrupt: &mut Interrupt,
) -> anyhow::Result<Value> {
    let followed = tokio::select! {
        result = follow(client, id, show) => Some(result),
        () = interrupt.recv() => None,
    };
    match followed {
        Some(result) => result,
        None => Err(interrupted(client, id, detach, interrupt).await),
    }
}

/// Ctrl-C while following `id`: cancel it (a second Ctrl-C stops waiting for that), or with
/// `detach` leave it running; either way say so on stderr.
async fn interrupted(
    client: &Client,
    id: &str,
    detach: bool,
    interrupt: &mut Interrupt,
) -> anyhow::Error {
    if detach {
        eprintln!(
            "interrupted: execution {id} goes on running (--detach); \
             `frameos executions follow {id}` follows it, `frameos executions cancel {id}` cancels it"
        );
        return Ended::error(
            Exit::Interrupted,
            format!("interrupted; execution {id} was left running"),
        );
    }
    eprintln!("interrupted: canceling execution {id} (Ctrl-C again to stop waiting)…");
    let (path, body) = (format!("/v1/executions/{id}/cancel"), json!({}));
    let cancel = client.post(&path, &body);
    let message = tokio::select! {
        result = cancel => match result {
            Ok(execution) if execution["status"] == "canceled" => {
                format!("interrupted; execution {id} canceled")
            }
            Ok(execution) => format!(
                "interrupted; execution {id} had already ended: {}",
                field(&execution, "status")
            ),
            Err(e) => format!(
                "interrupted; canceling execution {id} failed, it may still be running: {e:#}"
            ),
        },
        () = interrupt.recv() => {
            format!("interrupted twice; execution {id} may still be running")
        }
    };
    Ended::error(Exit::Interrupted, message)
}

/// Follows execution `id` until it ends; returns its final execution JSON. A stream that closes
/// before the end (a gateway restarting) is resumed after the last log line seen.
pub async fn follow(client: &Client, id: &str, show: Show) -> anyhow::Result<Value> {
    let mut after_seq: Option<u64> = None;
    let mut failures = 0;
    loop {
        let path = match after_seq {
            Some(seq) => format!("/v1/executions/{id}/events?after_seq={seq}"),
            None => format!("/v1/executions/{id}/events"),
        };
        match client.stream(&path).await {
            Ok(response) => {
                if let Some(last) = read(response, show, &mut after_seq).await? {
                    return Ok(last);
                }
            }
            // Refusals (401, 404, ...) are final; a gateway that is away or full may come back.
            Err(e) if !retryable(&e) || failures >= MAX_RECONNECTS => return Err(e),
            Err(_) => {}
        }
        // The stream closed before a final status: the execution may have ended meanwhile.
        if let Ok(execution) = client.get(&format!("/v1/executions/{id}")).await
            && is_final(&execution)
        {
            show_event(show, "status", &execution)?;
            return Ok(execution);
        }
        failures += 1;
        if failures > MAX_RECONNECTS {
            anyhow::bail!("the event stream of execution {id} keeps closing before it ends");
        }
        tokio::time::sleep(Duration::from_millis(250 << failures)).await;
    }
}

fn retryable(error: &anyhow::Error) -> bool {
    matches!(Exit::of(error), Exit::Unavailable)
}

/// Reads one event stream; `Some(execution)` once its final status arrives, `None` when the
/// stream closes first.
async fn read(
    response: reqwest::Response,
    show: Show,
    after_seq: &mut Option<u64>,
) -> anyhow::Result<Option<Value>> {
    let mut stream = response.bytes_stream();
    let mut buffer = String::new();
    // A stream cut mid-way is resumed like one that closed.
    while let Some(Ok(chunk)) = stream.next().await {
        buffer.push_str(&String::from_utf8_lossy(&chunk));
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
            // Keep-alive comments carry no event name.
            if kind.is_empty() {
                continue;
            }
            let data: Value = serde_json::from_str(&data).unwrap_or(Value::String(data));
            match kind.as_str() {
                "log" => {
                    if let Some(seq) = data["seq"].as_u64() {
                        *after_seq = Some(seq);
                    }
                }
                "error" => return Err(stream_error(&data)),
                "end" => return Ok(None),
                _ => {}
            }
            show_event(show, &kind, &data)?;
            if kind == "status" && is_final(&data) {
                return Ok(Some(data));
            }
        }
    }
    Ok(None)
}

/// An `error` event (`{code, message}`) as the API error it reports.
fn stream_error(data: &Value) -> anyhow::Error {
    let code = data["code"].as_str().unwrap_or("internal");
    anyhow::Error::new(ApiError {
        status: ErrorCode::parse(code).map_or(500, ErrorCode::http_status),
        code: code.to_string(),
        message: data["message"]
            .as_str()
            .unwrap_or("the event stream failed")
            .to_string(),
    })
}

fn show_event(show: Show, kind: &str, data: &Value) -> anyhow::Result<()> {
    match show {
        Show::Json => return json_line(&json!({"event": kind, "data": data})),
        Show::Stderr { quiet: true } => return Ok(()),
        Show::Stderr { quiet: false } | Show::Terminal => {}
    }
    match kind {
        "log" => match (log_line(data), show) {
            ((Sink::Stdout, text), Show::Terminal) => println!("{text}"),
            ((_, text), _) => eprintln!("{text}"),
        },
        "progress" => eprintln!(
            "  [{:>3.0}%] {}",
            data["fraction"].as_f64().unwrap_or(0.0) * 100.0,
            data["message"].as_str().unwrap_or_default()
        ),
        "status" => eprintln!("status: {}", field(data, "status")),
        _ => {}
    }
    Ok(())
}

/// `Ok` for a succeeded execution; else the error that makes the command exit 1.
pub fn outcome(execution: &Value) -> anyhow::Result<()> {
    let id = field(execution, "id");
    match execution["status"].as_str() {
        Some("succeeded") => Ok(()),
        Some(status) => {
            let error = execution["error"]
                .as_str()
                .map(|e| format!(": {e}"))
                .unwrap_or_default();
            let exit = execution["exit_code"]
                .as_i64()
                .map(|c| format!(" (exit code {c})"))
                .unwrap_or_default();
            Err(Ended::error(
                Exit::Failure,
                format!("execution {id} {status}{error}{exit}"),
            ))
        }
        None => Err(Ended::error(
            Exit::Failure,
            format!("execution {id} has no status"),
        )),
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

    #[test]
    fn outcomes_exit_by_final_status() {
        assert!(outcome(&json!({"id": "e", "status": "succeeded"})).is_ok());
        for status in ["failed", "timed_out", "canceled"] {
            let error =
                outcome(&json!({"id": "e", "status": status, "error": "boom", "exit_code": 3}))
                    .unwrap_err();
            assert_eq!(Exit::of(&error), Exit::Failure, "{status}");
            assert_eq!(
                error.to_string(),
                format!("execution e {status}: boom (exit code 3)")
            );
        }
    }

    #[test]
    fn stream_errors_keep_their_code() {
        let error = stream_error(&json!({"code": "not_found", "message": "gone"}));
        assert_eq!(Exit::of(&error), Exit::NotFound);
        let error = stream_error(&json!({"code": "unavailable", "message": "down"}));
        assert_eq!(Exit::of(&error), Exit::Unavailable);
    }
}
