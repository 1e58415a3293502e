//! `frameos agent init|publish|price`: write a starter agent, publish a directory as a version
//! (checked locally first, with the server's rules), set an agent's price.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Subcommand;
use frameos_control_plane::config::LimitsConfig;
use serde_json::{Value, json};

use crate::api::{ApiError, Client, Connection};
use crate::exit::{Ended, Exit};
use crate::output::{Output, field};
use crate::pack;

#[derive(Subcommand)]
pub enum AgentCommand {
    /// Write a starter agent (agent.json + code) into DIR.
    Init {
        /// Where to write it; its name becomes the agent's slug.
        dir: PathBuf,
        #[arg(long, value_parser = ["node", "python"], default_value = "node")]
        runtime: String,
    },
    /// Pack DIR, check the package as the server will (manifest, archive safety, size), and
    /// upload it as a new version of the agent named in its agent.json. The agent is created
    /// (free, or with --price) if it does not exist yet; a package that fails the check
    /// creates nothing (exit 5).
    Publish {
        /// The agent's directory: agent.json and the code.
        dir: PathBuf,
        /// Price per execution in minor units (paise, cents) when the agent is created;
        /// `free` by default. Change it later with `frameos agent price`.
        #[arg(long, value_name = "PRICE_MINOR|free")]
        price: Option<String>,
        /// Currency of --price (ISO 4217).
        #[arg(long, default_value = "INR", requires = "price")]
        currency: String,
        /// The server's package limits, when it is configured with other than the defaults.
        #[command(
            flatten,
            next_help_heading = "Package limits (as the server is configured)"
        )]
        limits: LimitsConfig,
        #[command(flatten)]
        connection: Connection,
    },
    /// Set the price of your agent: `free`, or a price per execution in minor units (e.g. 500
    /// with --currency INR is ₹5.00). Applies to executions created from now on.
    Price {
        /// Your agent.
        slug: String,
        /// `free`, or the price of one execution in minor units of --currency.
        #[arg(value_name = "PRICE_MINOR|free")]
        price: String,
        /// ISO 4217 currency of the price.
        #[arg(long, default_value = "INR")]
        currency: String,
        #[command(flatten)]
        connection: Connection,
    },
}

pub async fn agent(command: AgentCommand, output: Output) -> anyhow::Result<()> {
    match command {
        AgentCommand::Init { dir, runtime } => init(&dir, &runtime, output),
        AgentCommand::Publish {
            dir,
            price,
            currency,
            limits,
            connection,
        } => {
            let pricing = pricing(price.as_deref().unwrap_or("free"), &currency)?;
            publish(&dir, &limits, pricing, &Client::new(&connection), output).await
        }
        AgentCommand::Price {
            slug,
            price,
            currency,
            connection,
        } => {
            let pricing = pricing(&price, &currency)?;
            let agent = Client::new(&connection)
                .patch(&format!("/v1/agents/{slug}"), &json!({"pricing": pricing}))
                .await?;
            output.emit(&agent, |agent| {
                println!("{slug}: {}", describe_pricing(&agent["pricing"]));
            })
        }
    }
}

/// `free` or a positive integer number of minor units, as the API's `pricing`.
fn pricing(price: &str, currency: &str) -> anyhow::Result<Value> {
    if price.eq_ignore_ascii_case("free") {
        return Ok(json!({"model": "free"}));
    }
    let price_minor: i64 = match price.parse() {
        Ok(p) if p > 0 => p,
        _ => {
            return Err(Ended::error(
                Exit::Usage,
                format!(
                    "price {price:?}: give `free` or a positive whole number of minor units (500 INR = ₹5.00)"
                ),
            ));
        }
    };
    Ok(json!({
        "model": "per_execution",
        "price_minor": price_minor,
        "currency": currency.to_ascii_uppercase(),
    }))
}

fn describe_pricing(pricing: &Value) -> String {
    match pricing["model"].as_str() {
        Some("per_execution") => {
            let currency = pricing["currency"].as_str().unwrap_or("?");
            format!(
                "{} {currency} per execution",
                crate::commands::format_minor(
                    pricing["price_minor"].as_i64().unwrap_or(0),
                    currency
                )
            )
        }
        Some(model) => model.to_string(),
        None => "?".to_string(),
    }
}

fn init(dir: &Path, runtime: &str, output: Output) -> anyhow::Result<()> {
    let slug = dir
        .file_name()
        .and_then(|n| n.to_str())
        .map(|n| n.to_lowercase().replace(['_', ' '], "-"))
        .context("the directory needs a name to derive the agent's slug from")?;
    if dir.join("agent.json").exists() {
        return Err(Ended::error(
            Exit::Invalid,
            format!("{} already holds an agent.json", dir.display()),
        ));
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
    let created = json!({"slug": slug, "runtime": runtime, "dir": dir.display().to_string()});
    output.emit(&created, |_| {
        println!("created agent {slug:?} ({runtime}) in {}", dir.display());
        println!("next: frameos agent publish {}", dir.display());
    })
}

/// The package of `dir`, checked with the server's own rules (`frameos_package::open`): a
/// package the server would refuse is refused here, before anything is created.
fn checked_package(dir: &Path, limits: &LimitsConfig) -> anyhow::Result<(String, Vec<u8>)> {
    let manifest_path = dir.join(frameos_package::MANIFEST_PATH);
    if !manifest_path.is_file() {
        return Err(Ended::error(
            Exit::Invalid,
            format!("no agent.json in {}", dir.display()),
        ));
    }
    let package =
        pack::directory(dir).map_err(|e| Ended::error(Exit::Invalid, format!("{e:#}")))?;
    // The slug is the manifest's name; when it has none, the check below says what is wrong.
    let manifest: Value =
        serde_json::from_slice(&std::fs::read(&manifest_path)?).unwrap_or_default();
    let slug = manifest["name"].as_str().unwrap_or_default().to_string();
    frameos_package::open(
        &package,
        &slug,
        &limits.package_limits(),
        &limits.platform_maxima(),
    )
    .with_context(|| {
        format!(
            "{} is not a valid package; nothing was published",
            dir.display()
        )
    })?;
    Ok((slug, package))
}

async fn publish(
    dir: &Path,
    limits: &LimitsConfig,
    pricing: Value,
    client: &Client,
    output: Output,
) -> anyhow::Result<()> {
    let (slug, package) = checked_package(dir, limits)?;
    eprintln!(
        "packed {} ({} bytes): the package is valid",
        dir.display(),
        package.len()
    );

    match client.get(&format!("/v1/agents/{slug}")).await {
        Ok(_) => {}
        Err(e) if ApiError::has_status(&e, 404) => {
            match client
                .post(
                    "/v1/agents",
                    &json!({"slug": slug, "name": slug, "pricing": pricing}),
                )
                .await
            {
                Ok(agent) => eprintln!(
                    "created agent {slug} ({})",
                    describe_pricing(&agent["pricing"])
                ),
                // It exists but is not visible to us without ownership: the upload says more.
                Err(e) if ApiError::has_status(&e, 409) => {}
                Err(e) => return Err(e),
            }
        }
        Err(e) => return Err(e),
    }
    let version = client
        .post_package(&format!("/v1/agents/{slug}/versions"), package)
        .await?;
    output.emit(&version, |version| {
        println!(
            "{slug}@{}: {} (sha256 {})",
            field(version, "version"),
            field(version, "status"),
            field(version, "sha256"),
        );
        for v in version["scan"]["violations"]
            .as_array()
            .into_iter()
            .flatten()
        {
            println!(
                "  {} {} at {}:{}",
                field(v, "severity"),
                field(v, "rule"),
                field(v, "path"),
                v["line"]
            );
        }
    })?;
    if version["status"] == "rejected" {
        bail!("the scanner rejected this version");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> LimitsConfig {
        use clap::Parser;
        #[derive(Parser)]
        struct Wrapper {
            #[command(flatten)]
            limits: LimitsConfig,
        }
        Wrapper::parse_from(["x"]).limits
    }

    #[test]
    fn prices_are_free_or_positive_minor_units() {
        assert_eq!(pricing("free", "INR").unwrap(), json!({"model": "free"}));
        assert_eq!(
            pricing("500", "usd").unwrap(),
            json!({"model": "per_execution", "price_minor": 500, "currency": "USD"})
        );
        for bad in ["0", "-5", "5.00", "five"] {
            let error = pricing(bad, "INR").unwrap_err();
            assert_eq!(Exit::of(&error), Exit::Usage, "{bad}");
        }
    }

    #[test]
    fn the_local_check_refuses_what_the_server_would() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("index.js"),
            "module.exports = async () => 1;",
        )
        .unwrap();
        // No manifest at all.
        let error = checked_package(dir.path(), &limits()).unwrap_err();
        assert_eq!(Exit::of(&error), Exit::Invalid);
        // A manifest with an invalid version.
        let mut manifest = json!({
            "name": "local-check",
            "version": "one",
            "runtime": "node",
            "entrypoint": "index.js",
            "inputs": {"type": "object"}
        });
        std::fs::write(dir.path().join("agent.json"), manifest.to_string()).unwrap();
        let error = checked_package(dir.path(), &limits()).unwrap_err();
        assert_eq!(Exit::of(&error), Exit::Invalid);
        assert!(format!("{error:#}").contains("version"), "{error:#}");
        // Fixed, it passes and names the agent.
        manifest["version"] = json!("1.0.0");
        std::fs::write(dir.path().join("agent.json"), manifest.to_string()).unwrap();
        let (slug, _) = checked_package(dir.path(), &limits()).unwrap();
        assert_eq!(slug, "local-check");
    }
}
