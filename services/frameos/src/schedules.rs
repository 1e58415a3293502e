//! `frameos schedule create|list|get|delete`: agents run on a cron expression, as you (API.md
//! §5.3).

use anyhow::Context;
use clap::Subcommand;
use serde_json::{Value, json};

use crate::api::{ApiError, Client, Connection};
use crate::commands::format_minor;
use crate::output::{Output, field, minute};

#[derive(Subcommand)]
pub enum ScheduleCommand {
    /// Run an agent on a cron expression: each run is an execution of yours, paid as if you had
    /// started it. A paid agent needs --max-amount-minor, the most one run may cost.
    Create {
        /// The agent to run.
        slug: String,
        /// Five fields: minute hour day-of-month month day-of-week (e.g. "*/5 * * * *"), or a
        /// macro such as @hourly. One run a minute at most.
        #[arg(long)]
        cron: String,
        /// The IANA time zone the expression is read in (default: UTC).
        #[arg(long)]
        timezone: Option<String>,
        /// A published version to pin (default: the latest at each run).
        #[arg(long)]
        version: Option<String>,
        /// The inputs of every run, as a JSON object.
        #[arg(long, default_value = "{}")]
        input: String,
        /// Where each run's result is POSTed.
        #[arg(long)]
        webhook_url: Option<String>,
        /// The standing mandate of a paid agent: the most one run (with the agents it calls)
        /// may cost, in minor units of the agent's currency (500 INR = ₹5.00).
        #[arg(long, value_parser = clap::value_parser!(i64).range(1..))]
        max_amount_minor: Option<i64>,
        /// When the mandate ends (RFC 3339, e.g. 2030-01-31T00:00:00Z), at most a year ahead;
        /// default: 90 days from now.
        #[arg(long, requires = "max_amount_minor")]
        mandate_expires: Option<String>,
        #[command(flatten)]
        connection: Connection,
    },
    /// Your schedules, newest first.
    List {
        #[command(flatten)]
        connection: Connection,
    },
    /// One schedule: its agent, timetable, runs, last error and mandate.
    Get {
        /// The schedule's id.
        id: String,
        #[command(flatten)]
        connection: Connection,
    },
    /// Delete a schedule: it runs no more (the executions it made are not touched).
    Delete {
        /// The schedule's id.
        id: String,
        #[command(flatten)]
        connection: Connection,
    },
}

pub async fn schedule(command: ScheduleCommand, output: Output) -> anyhow::Result<()> {
    match command {
        ScheduleCommand::Create {
            slug,
            cron,
            timezone,
            version,
            input,
            webhook_url,
            max_amount_minor,
            mandate_expires,
            connection,
        } => {
            let mut body = json!({"cron": cron, "inputs": crate::run::parse_input(&input)?});
            for (name, value) in [
                ("timezone", timezone),
                ("version", version),
                ("webhook_url", webhook_url),
            ] {
                if let Some(value) = value {
                    body[name] = json!(value);
                }
            }
            if let Some(max) = max_amount_minor {
                body["mandate"] = json!({"max_amount_minor": max});
                if let Some(at) = mandate_expires {
                    body["mandate"]["expires_at"] = json!(at);
                }
            }
            let created = Client::new(&connection)
                .post(&format!("/v1/agents/{slug}/schedules"), &body)
                .await
                .map_err(|e| mandate_hint(e, max_amount_minor.is_none()))?;
            let id = created["id"]
                .as_str()
                .context("no schedule id in the answer")?;
            output.emit(&created, |s| {
                println!(
                    "created schedule {id}: {} on {:?} ({}), next run {}",
                    agent(s),
                    field(s, "cron"),
                    field(s, "timezone"),
                    minute(&s["next_run_at"], "-"),
                );
                if s["mandate"].is_object() {
                    println!("mandate {}", mandate(&s["mandate"]));
                }
            })
        }
        ScheduleCommand::List { connection } => {
            let list = Client::new(&connection).get("/v1/schedules").await?;
            output.emit(&list, print_table)
        }
        ScheduleCommand::Get { id, connection } => {
            let schedule = Client::new(&connection)
                .get(&format!("/v1/schedules/{id}"))
                .await?;
            output.emit(&schedule, show_schedule)
        }
        ScheduleCommand::Delete { id, connection } => {
            Client::new(&connection)
                .delete(&format!("/v1/schedules/{id}"))
                .await?;
            output.emit(&json!({"id": id, "deleted": true}), |_| {
                println!("deleted schedule {id}");
            })
        }
    }
}

/// The API's refusal of a paid agent's schedule without a mandate, with the option that gives
/// one.
fn mandate_hint(error: anyhow::Error, no_mandate: bool) -> anyhow::Error {
    let wants_mandate = error.chain().any(|c| {
        c.downcast_ref::<ApiError>()
            .is_some_and(|a| a.code == "validation_failed" && a.message.starts_with("mandate:"))
    });
    if no_mandate && wants_mandate {
        error.context("the agent is paid: give --max-amount-minor, the most one run may cost")
    } else {
        error
    }
}

/// `slug`, or `slug@version` when the schedule pins one.
fn agent(s: &Value) -> String {
    match s["version"].as_str() {
        Some(version) => format!("{}@{version}", field(s, "agent")),
        None => field(s, "agent"),
    }
}

/// A standing mandate in one line.
fn mandate(m: &Value) -> String {
    let currency = m["currency"].as_str().unwrap_or("?");
    format!(
        "{}: up to {} {currency} a run, until {}",
        field(m, "mandate_id"),
        format_minor(m["max_amount_minor"].as_i64().unwrap_or(0), currency),
        field(m, "expires_at"),
    )
}

fn print_table(list: &Value) {
    let items = list["items"].as_array().cloned().unwrap_or_default();
    if items.is_empty() {
        eprintln!("no schedules");
        return;
    }
    let header = [
        "ID",
        "AGENT",
        "CRON",
        "TIMEZONE",
        "STATUS",
        "NEXT RUN",
        "RUNS",
        "LAST ERROR",
    ];
    let rows: Vec<[String; 8]> = items
        .iter()
        .map(|s| {
            [
                field(s, "id"),
                agent(s),
                field(s, "cron"),
                field(s, "timezone"),
                field(s, "status"),
                minute(&s["next_run_at"], "-"),
                field(s, "runs"),
                s["last_error"].as_str().unwrap_or("-").to_string(),
            ]
        })
        .collect();
    let mut widths = header.map(str::len);
    for row in &rows {
        for (width, cell) in widths.iter_mut().zip(row) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let line = |cells: &[String]| {
        let last = cells.len() - 1;
        let padded: Vec<String> = cells
            .iter()
            .zip(widths)
            .enumerate()
            .map(|(i, (cell, width))| {
                if i == last {
                    cell.clone()
                } else {
                    format!("{cell:<width$}")
                }
            })
            .collect();
        println!("{}", padded.join("  "));
    };
    line(&header.map(String::from));
    for row in &rows {
        line(row);
    }
}

fn show_schedule(s: &Value) {
    let row = |label: &str, value: String| println!("{label:<10} {value}");
    row("id", field(s, "id"));
    row("agent", agent(s));
    row(
        "cron",
        format!("{} ({})", field(s, "cron"), field(s, "timezone")),
    );
    row("status", field(s, "status"));
    row("created", field(s, "created_at"));
    for (label, name) in [
        ("next run", "next_run_at"),
        ("last run", "last_run_at"),
        ("last exec", "last_execution_id"),
        ("last error", "last_error"),
        ("webhook", "webhook_url"),
    ] {
        if !s[name].is_null() {
            row(label, field(s, name));
        }
    }
    row("runs", field(s, "runs"));
    if s["mandate"].is_object() {
        row("mandate", mandate(&s["mandate"]));
    }
    row("inputs", s["inputs"].to_string());
}
