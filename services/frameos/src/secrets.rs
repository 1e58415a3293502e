//! `frameos secrets rotate|generate-key`: the keys agents' secrets are sealed with (ADR 0045),
//! and the development key `frameos dev` keeps under `./.frameos/`.

use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use anyhow::Context;
use clap::Subcommand;
use frameos_control_plane::{Keyring, SecretsConfig};
use serde_json::json;

use crate::output::Output;

/// Where `frameos dev` keeps its key when FRAMEOS_SECRETS_KEY is unset.
pub const DEV_KEY_FILE: &str = "./.frameos/secrets.key";

#[derive(Subcommand)]
pub enum SecretsCommand {
    /// Re-seals every agent secret under the first key of FRAMEOS_SECRETS_KEY, so that the
    /// others can then be removed from it. Rotation: put a new key first
    /// (`FRAMEOS_SECRETS_KEY=k2:<new>,k1:<old>`) on every control plane, run this once, then
    /// drop `k1`. Safe while the platform serves; exits 1 if a secret is sealed with a key the
    /// keyring lacks.
    Rotate {
        /// The database of the control planes (`postgres://…` or `sqlite://…`).
        #[arg(
            long,
            env = "FRAMEOS_DATABASE_URL",
            default_value = "sqlite://./.frameos/frameos.db"
        )]
        database_url: String,
        #[command(flatten)]
        secrets: SecretsConfig,
    },
    /// Prints a new random key for FRAMEOS_SECRETS_KEY: `<id>:<64 hex digits>`.
    GenerateKey {
        /// The key's id: 1 to 32 of `a-z A-Z 0-9 _ . -`, different from the keys in use.
        #[arg(long, default_value = "k1")]
        id: String,
    },
}

pub async fn secrets(command: SecretsCommand, output: Output) -> anyhow::Result<()> {
    match command {
        SecretsCommand::Rotate {
            database_url,
            secrets,
        } => {
            frameos_telemetry::init();
            let keyring = secrets.secrets_key.context(
                "FRAMEOS_SECRETS_KEY is not set: give the new key first and the old ones after it",
            )?;
            let rotation = frameos_control_plane::rotate_secrets(&database_url, &keyring).await?;
            output.emit(&serde_json::to_value(&rotation)?, |_| {
                println!(
                    "{} re-sealed under {}, {} already were, {} written meanwhile",
                    rotation.resealed,
                    rotation.active_key,
                    rotation.current,
                    rotation.changed_meanwhile
                );
            })?;
            anyhow::ensure!(
                rotation.unreadable.is_empty(),
                "{} secrets are sealed with keys FRAMEOS_SECRETS_KEY lacks: {}; add those keys \
                 after the active one and rotate again",
                rotation.unreadable.len(),
                rotation.unreadable.join(", ")
            );
            Ok(())
        }
        SecretsCommand::GenerateKey { id } => {
            let entry = Keyring::generate_entry(&id)?;
            // The key itself: printed, never logged.
            output.emit(&json!({"key": entry}), |_| println!("{entry}"))
        }
    }
}

/// The keyring of `frameos dev` without FRAMEOS_SECRETS_KEY: the key in `path`, made on the
/// first start (0600) and kept, so secrets written in one session open in the next.
pub fn dev_keyring(path: &Path) -> anyhow::Result<Keyring> {
    if !path.exists() {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).with_context(|| format!("create {}", dir.display()))?;
        }
        let entry = Keyring::generate_entry("dev")?;
        let created = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path);
        match created {
            Ok(mut file) => {
                writeln!(file, "{entry}").with_context(|| format!("write {}", path.display()))?;
                tracing::info!(path = %path.display(), "created the development key of agent secrets");
            }
            // Another `frameos dev` made it first: use theirs.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => return Err(e).with_context(|| format!("create {}", path.display())),
        }
    }
    let text = std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?;
    text.trim()
        .parse()
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_dev_key_is_made_once_and_kept() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".frameos/secrets.key");
        let first = dev_keyring(&path).unwrap();
        let written = std::fs::read_to_string(&path).unwrap();
        let again = dev_keyring(&path).unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), written);
        assert_eq!(first.active_id(), "dev");
        assert_eq!(again.active_id(), "dev");
        // The same key: what one opens, the other sealed.
        let sealed = first.seal("agent", "NAME", "value").unwrap();
        assert_eq!(again.open("agent", "NAME", &sealed).unwrap(), "value");
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
