//! `frameos executions get|list|cancel|logs|follow`: your executions, by the REST API.

use clap::Subcommand;
use serde_json::{Value, json};

use crate::api::{Client, Connection};
use crate::events::{self, Interrupt, Show};
use crate::output::{Output, field};

const STATUSES: [&str; 6] = [
    "queued",
    "running",
    "succeeded",
    "failed",
    "timed_out",
    "canceled",
];

#[derive(Subcommand)]
pub enum ExecutionsCommand {
    /// One execution: status, inputs, output or error, timings.
    Get {
        /// The execution's id.
        id: String,
        #[command(flatten)]
        connection: Connection,
    },
    /// Your executions, newest first, one page at a time.
    List {
        /// Only executions of this agent (slug).
        #[arg(long)]
        agent: Option<String>,
        /// Only executions in this status.
        #[arg(long, value_parser = STATUSES)]
        status: Option<String>,
        /// Items per page (at most 100).
        #[arg(long)]
        page_size: Option<u32>,
        /// The `next_page_token` of the previous page.
        #[arg(long)]
        page_token: Option<String>,
        #[command(flatten)]
        connection: Connection,
    },
    /// Cancel a queued or running execution (one that has ended stays as it is).
    Cancel {
        /// The execution's id.
        id: String,
        #[command(flatten)]
        connection: Connection,
    },
    /// The stored log lines of an execution, oldest first.
    Logs {
        /// The execution's id.
        id: String,
        /// Only lines after this `seq` (the previous page's `next_page_token`).
        #[arg(long)]
        after_seq: Option<u64>,
        /// Lines per page (at most 1000).
        #[arg(long)]
        page_size: Option<u32>,
        /// Every page up to the last line, not just one.
        #[arg(long)]
        all: bool,
        #[command(flatten)]
        connection: Connection,
    },
    /// Follow an execution live (logs, progress, status) until it ends. Exits like
    /// `frameos run`: 0 succeeded, 1 failed/timed_out/canceled, 130 Ctrl-C (which cancels the
    /// execution unless --detach).
    Follow {
        /// The execution's id.
        id: String,
        /// On Ctrl-C, leave the execution running instead of canceling it.
        #[arg(long)]
        detach: bool,
        #[command(flatten)]
        connection: Connection,
    },
}

pub async fn executions(command: ExecutionsCommand, output: Output) -> anyhow::Result<()> {
    match command {
        ExecutionsCommand::Get { id, connection } => {
            let execution = Client::new(&connection)
                .get(&format!("/v1/executions/{id}"))
                .await?;
            output.emit(&execution, show_execution)
        }
        ExecutionsCommand::List {
            agent,
            status,
            page_size,
            page_token,
            connection,
        } => {
            let mut query = Vec::new();
            for (name, value) in [
                ("agent", agent),
                ("status", status),
                ("page_size", page_size.map(|n| n.to_string())),
                ("page_token", page_token),
            ] {
                if let Some(value) = value {
                    query.push(format!("{name}={}", encode(&value)));
                }
            }
            let path = if query.is_empty() {
                "/v1/executions".to_string()
            } else {
                format!("/v1/executions?{}", query.join("&"))
            };
            let page = Client::new(&connection).get(&path).await?;
            output.emit(&page, |page| {
                let items = page["items"].as_array().cloned().unwrap_or_default();
                if items.is_empty() {
                    eprintln!("no executions");
                }
                for e in items {
                    println!(
                        "{}  {}@{}  {:<9}  {}",
                        field(&e, "id"),
                        field(&e, "agent"),
                        field(&e, "version"),
                        field(&e, "status"),
                        field(&e, "created_at"),
                    );
                }
                if let Some(token) = page["next_page_token"].as_str() {
                    eprintln!("more: --page-token {token}");
                }
            })
        }
        ExecutionsCommand::Cancel { id, connection } => {
            let execution = Client::new(&connection)
                .post(&format!("/v1/executions/{id}/cancel"), &json!({}))
                .await?;
            output.emit(&execution, |e| match e["status"].as_str() {
                Some("canceled") => println!("execution {id} canceled"),
                _ => println!("execution {id} had already ended: {}", field(e, "status")),
            })
        }
        ExecutionsCommand::Logs {
            id,
            after_seq,
            page_size,
            all,
            connection,
        } => {
            logs(
                &Client::new(&connection),
                &id,
                after_seq,
                page_size,
                all,
                output,
            )
            .await
        }
        ExecutionsCommand::Follow {
            id,
            detach,
            connection,
        } => {
            let mut interrupt = Interrupt::listen()?;
            let client = Client::new(&connection);
            let show = match output {
                Output::Json => Show::Json,
                Output::Text => Show::Terminal,
            };
            let last =
                events::follow_interruptibly(&client, &id, show, detach, &mut interrupt).await?;
            events::outcome(&last)
        }
    }
}

async fn logs(
    client: &Client,
    id: &str,
    mut after_seq: Option<u64>,
    page_size: Option<u32>,
    all: bool,
    output: Output,
) -> anyhow::Result<()> {
    let mut items = Vec::new();
    let next = loop {
        let mut path = format!("/v1/executions/{id}/logs");
        let mut sep = '?';
        if let Some(seq) = after_seq {
            path.push_str(&format!("{sep}after_seq={seq}"));
            sep = '&';
        }
        if let Some(n) = page_size {
            path.push_str(&format!("{sep}page_size={n}"));
        }
        let page = client.get(&path).await?;
        items.extend(page["items"].as_array().cloned().unwrap_or_default());
        let next = page["next_page_token"].as_str().map(str::to_string);
        match (&next, all) {
            (Some(token), true) => {
                after_seq = Some(token.parse().map_err(|_| {
                    anyhow::anyhow!("the API sent a log page token that is not a seq: {token:?}")
                })?);
            }
            _ => break next,
        }
    };
    let mut page = json!({"items": items});
    if let Some(token) = &next {
        page["next_page_token"] = json!(token);
    }
    output.emit(&page, |page| {
        for line in page["items"].as_array().into_iter().flatten() {
            println!(
                "{:>5} {} {:<6} {}",
                field(line, "seq"),
                field(line, "ts"),
                field(line, "stream"),
                line["line"].as_str().unwrap_or_default()
            );
        }
        if let Some(token) = &next {
            eprintln!("more: --after-seq {token} (or --all)");
        }
    })
}

fn show_execution(e: &Value) {
    println!("id        {}", field(e, "id"));
    println!("agent     {}@{}", field(e, "agent"), field(e, "version"));
    println!("status    {}", field(e, "status"));
    println!("created   {}", field(e, "created_at"));
    for (label, name) in [
        ("started ", "started_at"),
        ("finished", "finished_at"),
        ("duration", "duration_ms"),
        ("exit code", "exit_code"),
        ("error   ", "error"),
    ] {
        if !e[name].is_null() {
            println!("{label}  {}", field(e, name));
        }
    }
    if let Some(t) = e["timings"].as_object() {
        let ms = |k: &str| {
            t.get(k)
                .and_then(Value::as_u64)
                .map_or("?".into(), |v| format!("{v} ms"))
        };
        println!(
            "timings   queue wait {}, start {}, run {}",
            ms("queue_wait_ms"),
            ms("start_ms"),
            ms("run_ms")
        );
    }
    if let Some(charge) = e["charge"].as_object() {
        println!(
            "charge    {} {} {}",
            charge
                .get("amount_minor")
                .map_or("?".into(), Value::to_string),
            charge
                .get("currency")
                .and_then(Value::as_str)
                .unwrap_or("?"),
            charge.get("status").and_then(Value::as_str).unwrap_or("?"),
        );
    }
    if !e["parent_id"].is_null() {
        println!(
            "called by {} (tree {})",
            field(e, "parent_id"),
            field(e, "root_id")
        );
    }
    for child in e["children"].as_array().into_iter().flatten() {
        let charge = child["charge"].as_object().map_or(String::new(), |c| {
            format!(
                ", {} {} {}",
                c.get("amount_minor").map_or("?".into(), Value::to_string),
                c.get("currency").and_then(Value::as_str).unwrap_or("?"),
                c.get("status").and_then(Value::as_str).unwrap_or("?")
            )
        });
        println!(
            "called    {}@{} {} {}{charge}",
            field(child, "agent"),
            field(child, "version"),
            field(child, "id"),
            field(child, "status")
        );
    }
    println!("inputs    {}", e["inputs"]);
    if !e["output"].is_null() {
        println!("output    {}", e["output"]);
    }
}

/// Percent-encodes a query value (agent slugs and tokens are plain, but a script may pass
/// anything).
fn encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for b in value.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(b as char)
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn query_values_are_percent_encoded() {
        assert_eq!(super::encode("word-count"), "word-count");
        assert_eq!(super::encode("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
    }
}
