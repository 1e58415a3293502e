//! The client subcommands: thin calls of the REST API with readable output.

use clap::Subcommand;
use serde_json::json;

use crate::api::{Client, Connection};
use crate::exit::{Ended, Exit};
use crate::output::{Output, field};

#[derive(Subcommand)]
pub enum ReviewCommand {
    /// Versions waiting for review (`--status spot_check`: auto-published versions waiting for
    /// their spot check).
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
    /// Reject a version (or fail its spot check), telling the developer why.
    Reject {
        slug: String,
        version: String,
        #[arg(long)]
        reason: String,
        #[command(flatten)]
        connection: Connection,
    },
    /// Ban an agent: every version banned, its queued and running executions canceled.
    Ban {
        slug: String,
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

pub async fn ledger(command: LedgerCommand, output: Output) -> anyhow::Result<()> {
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
            output.emit(&balance, |balance| {
                let currency = balance["currency"].as_str().unwrap_or("?");
                println!(
                    "{account}: {} {currency}",
                    format_minor(balance["balance_minor"].as_i64().unwrap_or(0), currency),
                );
                for e in balance["entries"].as_array().into_iter().flatten() {
                    println!(
                        "  {}  {:<6} {:>12}  {}  execution {}",
                        field(e, "created_at"),
                        field(e, "direction"),
                        format_minor(
                            e["amount_minor"].as_i64().unwrap_or(0),
                            e["currency"].as_str().unwrap_or(currency)
                        ),
                        field(e, "account"),
                        field(e, "execution_id"),
                    );
                }
            })
        }
        LedgerCommand::Verify { database_url } => {
            let report = frameos_control_plane::verify_ledger(&database_url).await?;
            let clean = report.is_clean();
            output.emit(&serde_json::to_value(&report)?, |value| {
                println!("{value:#}");
                if clean {
                    println!(
                        "ledger verified: {} transactions, {} entries, balanced",
                        report.transactions, report.entries
                    );
                }
            })?;
            if clean {
                Ok(())
            } else {
                Err(Ended::error(
                    Exit::Failure,
                    "the ledger violates its invariants (see the report)",
                ))
            }
        }
    }
}

/// Minor units as a decimal amount with the currency's places (paise → rupees, yen as they
/// are); the bare number for a code the platform does not know.
pub fn format_minor(minor: i64, currency: &str) -> String {
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

pub async fn review(command: ReviewCommand, output: Output) -> anyhow::Result<()> {
    match command {
        ReviewCommand::List { status, connection } => {
            let list = Client::new(&connection)
                .get(&format!("/v1/reviews?status={status}"))
                .await?;
            output.emit(&list, |list| {
                let items = list["items"].as_array().cloned().unwrap_or_default();
                if items.is_empty() {
                    eprintln!("no versions with status {status}");
                }
                for v in items {
                    let findings = v["scan"]["violations"].as_array().map_or(0, Vec::len);
                    println!(
                        "{}@{}  {}  sha256 {}  {} scanner finding(s)",
                        field(&v, "agent"),
                        field(&v, "version"),
                        field(&v, "status"),
                        field(&v, "sha256"),
                        findings
                    );
                }
            })
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
            output.emit(&v, |v| {
                println!("{slug}@{version} is {}", field(v, "status"));
            })
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
            output.emit(&v, |v| {
                println!("{slug}@{version} is {}", field(v, "status"));
            })
        }
        ReviewCommand::Ban {
            slug,
            reason,
            connection,
        } => {
            let banned = Client::new(&connection)
                .post(
                    &format!("/v1/agents/{slug}/ban"),
                    &json!({"reason": reason}),
                )
                .await?;
            output.emit(&banned, |banned| {
                println!(
                    "{slug} is banned ({}); {} execution(s) canceled",
                    field(&banned["agent"]["ban"], "reason"),
                    banned["canceled_executions"]
                );
            })
        }
    }
}

pub async fn account(command: AccountCommand, output: Output) -> anyhow::Result<()> {
    match command {
        AccountCommand::Create {
            name,
            role,
            connection,
        } => {
            let created = Client::new(&connection)
                .post("/v1/accounts", &json!({"name": name, "role": role}))
                .await?;
            output.emit(&created, |created| {
                println!(
                    "created {} account {:?} ({})",
                    field(created, "role"),
                    field(created, "name"),
                    field(created, "id"),
                );
                println!(
                    "API key (shown once, store it now): {}",
                    field(created, "api_key")
                );
            })
        }
    }
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
