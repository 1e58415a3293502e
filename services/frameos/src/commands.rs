//! The client subcommands: thin calls of the REST API with readable output.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Subcommand;
use serde_json::{Value, json};

use crate::api::{Client, Connection};
use crate::pack;

#[derive(Subcommand)]
pub enum AgentCommand {
    /// Write a starter agent (agent.json + code) into DIR.
    Init {
        dir: PathBuf,
        #[arg(long, value_parser = ["node", "python"], default_value = "node")]
        runtime: String,
    },
    /// Pack DIR and upload it as a new version of the agent named in its agent.json
    /// (the agent is created first if it does not exist yet).
    Publish {
        dir: PathBuf,
        #[command(flatten)]
        connection: Connection,
    },
}

#[derive(Subcommand)]
pub enum ReviewCommand {
    /// Versions waiting for review.
    List {
        #[arg(long, default_value = "pending_review")]
        status: String,
        #[command(flatten)]
        connection: Connection,
    },
    /// Publish a version.
    Approve {
        slug: String,
        version: String,
        #[command(flatten)]
        connection: Connection,
    },
    /// Reject a version, telling the developer why.
    Reject {
        slug: String,
        version: String,
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        connection: Connection,
    },
}

#[derive(Subcommand)]
pub enum LedgerCommand {
    /// An account's balance and latest entries, from the ledger (yours by default).
    Balance {
        account: Option<String>,
        #[arg(long, default_value = "INR")]
        currency: String,
        #[command(flatten)]
        connection: Connection,
    },
    /// Checks the ledger's invariants directly on the database: total debits = total credits,
    /// every transaction balanced, every capture posted exactly once, no voided charge posted.
    Verify {
        #[arg(
            long,
            env = "FRAMEOS_DATABASE_URL",
            default_value = "sqlite://./.frameos/frameos.db"
        )]
        database_url: String,
    },
}

pub async fn ledger(command: LedgerCommand) -> anyhow::Result<()> {
    match command {
        LedgerCommand::Balance {
            account,
            currency,
            connection,
        } => {
            let client = Client::new(&connection);
            let account = match account {
                Some(account) => account,
                None => client.get("/v1/me").await?["id"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string(),
            };
            let balance = client
                .get(&format!(
                    "/v1/accounts/{account}/balance?currency={currency}"
                ))
                .await?;
            let currency = balance["currency"].as_str().unwrap_or("?");
            println!(
                "{account}: {} {currency}",
                format_minor(balance["balance_minor"].as_i64().unwrap_or(0), currency),
            );
            for e in balance["entries"].as_array().into_iter().flatten() {
                println!(
                    "  {}  {:<6} {:>12}  {}  execution {}",
                    e["created_at"].as_str().unwrap_or("?"),
                    e["direction"].as_str().unwrap_or("?"),
                    format_minor(
                        e["amount_minor"].as_i64().unwrap_or(0),
                        e["currency"].as_str().unwrap_or(currency)
                    ),
                    e["account"].as_str().unwrap_or("?"),
                    e["execution_id"].as_str().unwrap_or("?"),
                );
            }
            Ok(())
        }
        LedgerCommand::Verify { database_url } => {
            let report = frameos_control_plane::verify_ledger(&database_url).await?;
            println!("{}", serde_json::to_string_pretty(&report)?);
            if report.is_clean() {
                println!(
                    "ledger verified: {} transactions, {} entries, balanced",
                    report.transactions, report.entries
                );
                Ok(())
            } else {
                bail!("the ledger violates its invariants (see above)")
            }
        }
    }
}

/// Minor units as a decimal amount with the currency's places (paise → rupees, yen as they
/// are); the bare number for a code the platform does not know.
fn format_minor(minor: i64, currency: &str) -> String {
    frameos_billing::Currency::parse(currency)
        .map_or_else(|_| minor.to_string(), |c| c.format_minor(minor))
}

#[derive(Subcommand)]
pub enum AccountCommand {
    /// Create an account and print its API key (shown once).
    Create {
        #[arg(long)]
        name: String,
        #[arg(long, value_parser = ["user", "developer", "admin"], default_value = "user")]
        role: String,
        #[command(flatten)]
        connection: Connection,
    },
}

pub async fn agent(command: AgentCommand) -> anyhow::Result<()> {
    match command {
        AgentCommand::Init { dir, runtime } => init(&dir, &runtime),
        AgentCommand::Publish { dir, connection } => publish(&dir, &Client::new(&connection)).await,
    }
}

pub async fn review(command: ReviewCommand) -> anyhow::Result<()> {
    match command {
        ReviewCommand::List { status, connection } => {
            let list = Client::new(&connection)
                .get(&format!("/v1/reviews?status={status}"))
                .await?;
            let items = list["items"].as_array().cloned().unwrap_or_default();
            if items.is_empty() {
                println!("no versions with status {status}");
            }
            for v in items {
                let findings = v["scan"]["violations"].as_array().map_or(0, Vec::len);
                println!(
                    "{}@{}  {}  sha256 {}  {} scanner finding(s)",
                    v["agent"].as_str().unwrap_or("?"),
                    v["version"].as_str().unwrap_or("?"),
                    v["status"].as_str().unwrap_or("?"),
                    v["sha256"].as_str().unwrap_or("?"),
                    findings
                );
            }
            Ok(())
        }
        ReviewCommand::Approve {
            slug,
            version,
            connection,
        } => {
            let v = Client::new(&connection)
                .post(
                    &format!("/v1/agents/{slug}/versions/{version}/approve"),
                    &json!({}),
                )
                .await?;
            println!(
                "{slug}@{version} is {}",
                v["status"].as_str().unwrap_or("?")
            );
            Ok(())
        }
        ReviewCommand::Reject {
            slug,
            version,
            reason,
            connection,
        } => {
            let v = Client::new(&connection)
                .post(
                    &format!("/v1/agents/{slug}/versions/{version}/reject"),
                    &json!({"reason": reason}),
                )
                .await?;
            println!(
                "{slug}@{version} is {}",
                v["status"].as_str().unwrap_or("?")
            );
            Ok(())
        }
    }
}

pub async fn account(command: AccountCommand) -> anyhow::Result<()> {
    match command {
        AccountCommand::Create {
            name,
            role,
            connection,
        } => {
            let created = Client::new(&connection)
                .post("/v1/accounts", &json!({"name": name, "role": role}))
                .await?;
            println!(
                "created {} account {:?} ({})",
                created["role"].as_str().unwrap_or("?"),
                created["name"].as_str().unwrap_or("?"),
                created["id"].as_str().unwrap_or("?"),
            );
            println!(
                "API key (shown once, store it now): {}",
                created["api_key"].as_str().unwrap_or("?")
            );
            Ok(())
        }
    }
}

fn init(dir: &Path, runtime: &str) -> anyhow::Result<()> {
    let slug = dir
        .file_name()
        .and_then(|n| n.to_str())
        .map(|n| n.to_lowercase().replace(['_', ' '], "-"))
        .context("the directory needs a name to derive the agent's slug from")?;
    if dir.join("agent.json").exists() {
        bail!("{} already holds an agent.json", dir.display());
    }
    std::fs::create_dir_all(dir)?;
    let (entrypoint, code) = match runtime {
        "python" => (
            "main.py",
            "def run(inputs, ctx):\n    ctx.progress(0.5, \"greeting\")\n    print(\"hello from python\")\n    return {\"greeting\": \"Hello, \" + inputs[\"name\"] + \"!\"}\n",
        ),
        _ => (
            "index.js",
            "module.exports = async (inputs, ctx) => {\n  ctx.progress(0.5, 'greeting');\n  console.log('hello from node');\n  return { greeting: `Hello, ${inputs.name}!` };\n};\n",
        ),
    };
    let manifest = json!({
        "name": slug,
        "version": "0.1.0",
        "runtime": runtime,
        "entrypoint": entrypoint,
        "description": "A new FrameOS agent.",
        "inputs": {
            "type": "object",
            "properties": {"name": {"type": "string", "minLength": 1}},
            "required": ["name"],
            "additionalProperties": false
        },
        "outputs": {
            "type": "object",
            "properties": {"greeting": {"type": "string"}},
            "required": ["greeting"]
        },
        "capabilities": [],
        "resources": {"cpu_cores": 0.5, "memory_mb": 128, "timeout_ms": 10000}
    });
    std::fs::write(
        dir.join("agent.json"),
        serde_json::to_string_pretty(&manifest)? + "\n",
    )?;
    std::fs::write(dir.join(entrypoint), code)?;
    println!("created agent {slug:?} ({runtime}) in {}", dir.display());
    println!("next: frameos agent publish {}", dir.display());
    Ok(())
}

async fn publish(dir: &Path, client: &Client) -> anyhow::Result<()> {
    let manifest: Value = serde_json::from_slice(
        &std::fs::read(dir.join("agent.json"))
            .with_context(|| format!("no agent.json in {}", dir.display()))?,
    )
    .context("agent.json is not valid JSON")?;
    let slug = manifest["name"]
        .as_str()
        .context("agent.json has no name")?
        .to_string();
    let package = pack::directory(dir)?;
    println!("packed {} ({} bytes)", dir.display(), package.len());

    if client.get(&format!("/v1/agents/{slug}")).await.is_err() {
        match client
            .post(
                "/v1/agents",
                &json!({"slug": slug, "name": slug, "pricing": {"model": "free"}}),
            )
            .await
        {
            Ok(_) => println!("created agent {slug} (free; change pricing through the API)"),
            // It exists but is not visible to us without ownership: the upload will say more.
            Err(e) if e.to_string().contains("slug_taken") => {}
            Err(e) => return Err(e),
        }
    }
    let version = client
        .post_package(&format!("/v1/agents/{slug}/versions"), package)
        .await?;
    println!(
        "{slug}@{}: {} (sha256 {})",
        version["version"].as_str().unwrap_or("?"),
        version["status"].as_str().unwrap_or("?"),
        version["sha256"].as_str().unwrap_or("?"),
    );
    for v in version["scan"]["violations"]
        .as_array()
        .into_iter()
        .flatten()
    {
        println!(
            "  {} {} at {}:{}",
            v["severity"].as_str().unwrap_or("?"),
            v["rule"].as_str().unwrap_or("?"),
            v["path"].as_str().unwrap_or("?"),
            v["line"]
        );
    }
    if version["status"] == "rejected" {
        bail!("the scanner rejected this version");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::format_minor;

    #[test]
    fn minor_units_print_with_the_currencys_places() {
        assert_eq!(format_minor(7000, "INR"), "70.00");
        assert_eq!(format_minor(-10_005, "INR"), "-100.05");
        assert_eq!(format_minor(700, "JPY"), "700");
        assert_eq!(format_minor(1234, "KWD"), "1.234");
        assert_eq!(format_minor(42, "???"), "42");
    }
}
