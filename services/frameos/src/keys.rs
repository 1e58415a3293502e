//! `frameos keys create|list|revoke`: the caller's named API keys (API.md §4.5).

use clap::Subcommand;
use serde_json::{Value, json};

use crate::api::{Client, Connection};
use crate::output::{Output, minute};

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Create a key for your account; its secret is printed this once.
    Create {
        /// Your name for the key.
        #[arg(long)]
        name: String,
        /// What the key may do: read, run, publish, admin (repeat or separate with commas);
        /// default: everything your role allows.
        #[arg(long = "scope", value_delimiter = ',', value_parser = ["read", "run", "publish", "admin"])]
        scopes: Vec<String>,
        /// When the key stops working (RFC 3339, e.g. 2030-01-31T00:00:00Z); default: never.
        #[arg(long)]
        expires_at: Option<String>,
        #[command(flatten)]
        connection: Connection,
    },
    /// Your keys that are not revoked (never their secrets).
    List {
        #[command(flatten)]
        connection: Connection,
    },
    /// Revoke a key by its id: it is refused everywhere within seconds.
    Revoke {
        id: String,
        #[command(flatten)]
        connection: Connection,
    },
}

pub async fn keys(command: KeysCommand, output: Output) -> anyhow::Result<()> {
    match command {
        KeysCommand::Create {
            name,
            scopes,
            expires_at,
            connection,
        } => {
            let mut body = json!({ "name": name });
            if !scopes.is_empty() {
                body["scopes"] = json!(scopes);
            }
            if let Some(at) = expires_at {
                body["expires_at"] = json!(at);
            }
            let created = Client::new(&connection).post("/v1/me/keys", &body).await?;
            match output {
                Output::Json => println!("{created}"),
                Output::Text => {
                    println!(
                        "created key {} {:?} (scopes: {}; expires: {})",
                        text(&created["id"]),
                        text(&created["name"]),
                        scope_list(&created["scopes"]),
                        or_never(&created["expires_at"]),
                    );
                    println!(
                        "API key (shown once, store it now): {}",
                        text(&created["api_key"])
                    );
                }
            }
        }
        KeysCommand::List { connection } => {
            let list = Client::new(&connection).get("/v1/me/keys").await?;
            match output {
                Output::Json => println!("{list}"),
                Output::Text => print_table(&list),
            }
        }
        KeysCommand::Revoke { id, connection } => {
            Client::new(&connection)
                .delete(&format!("/v1/me/keys/{id}"))
                .await?;
            match output {
                Output::Json => println!("{}", json!({ "id": id, "revoked": true })),
                Output::Text => println!("revoked key {id}"),
            }
        }
    }
    Ok(())
}

fn print_table(list: &Value) {
    let items = list["items"].as_array().cloned().unwrap_or_default();
    if items.is_empty() {
        println!("no keys");
        return;
    }
    println!(
        "{:<16}  {:<20}  {:<26}  {:<20}  {:<20}  EXPIRES",
        "ID", "NAME", "SCOPES", "CREATED", "LAST USED"
    );
    for key in items {
        println!(
            "{:<16}  {:<20}  {:<26}  {:<20}  {:<20}  {}",
            text(&key["id"]),
            text(&key["name"]),
            scope_list(&key["scopes"]),
            minute(&key["created_at"], "?"),
            minute(&key["last_used_at"], "-"),
            or_never(&key["expires_at"]),
        );
    }
}

fn text(value: &Value) -> &str {
    value.as_str().unwrap_or("?")
}

fn scope_list(value: &Value) -> String {
    let names: Vec<&str> = value
        .as_array()
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    names.join(",")
}

fn or_never(value: &Value) -> &str {
    value.as_str().unwrap_or("never")
}
