//! `frameos run <slug> --input '{...}'`: execute an agent, follow it live until it ends, and
//! print its output alone on stdout (logs, progress and status go to stderr), so
//! `frameos run word-count --input '{...}' | jq .` works.

use anyhow::Context;
use serde_json::{Value, json};

use crate::api::{Client, Connection};
use crate::events::{self, Interrupt, Show};
use crate::output::{Output, json_line};

#[derive(clap::Args)]
#[command(after_help = "Exit codes: 0 succeeded, 1 failed/timed_out/canceled, \
    130 interrupted by Ctrl-C (the execution is canceled first, unless --detach); \
    see `frameos --help` for the rest.")]
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
    /// On Ctrl-C, leave the execution running instead of canceling it.
    #[arg(long)]
    detach: bool,
    /// No log lines, progress or status changes on stderr; only the execution id and errors.
    #[arg(long, short)]
    quiet: bool,
    #[command(flatten)]
    connection: Connection,
}

pub async fn run(args: Args, output: Output) -> anyhow::Result<()> {
    let inputs = parse_input(&args.input)?;
    // From here on Ctrl-C is ours: one that comes while the execution is being created
    // cancels it as soon as its id is known.
    let mut interrupt = Interrupt::listen()?;
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

    let show = Show::Stderr { quiet: args.quiet };
    let last = events::follow_interruptibly(&client, id, show, args.detach, &mut interrupt).await?;
    events::outcome(&last)?;
    if output.is_json() {
        json_line(&last["output"])
    } else {
        println!("{}", serde_json::to_string_pretty(&last["output"])?);
        Ok(())
    }
}

/// The `--input` of a command (`run`, `schedule create`): JSON, or a usage error.
pub fn parse_input(text: &str) -> anyhow::Result<Value> {
    serde_json::from_str(text).map_err(|e| clap_usage(format!("--input is not valid JSON: {e}")))
}

/// A usage error found after parsing (exit code 2, like clap's own).
fn clap_usage(message: String) -> anyhow::Error {
    crate::exit::Ended::error(crate::exit::Exit::Usage, message)
}
