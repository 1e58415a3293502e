//! FRAMEOS_SECRETS_KEY: the keys agent secrets are sealed with (ADR 0045). `k2:<64 hex>,k1:<64
//! hex>`: the first key seals every value written from now on, the others still open the values
//! they sealed until `frameos secrets rotate` has re-sealed those under the first. Sealing is
//! AES-256-GCM with a fresh 96-bit nonce; the associated data names the agent and the secret,
//! so a sealed row copied to another agent or name does not open. Key material is never shown:
//! not by `Debug`, not in an error.

use std::fmt;
use std::str::FromStr;

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use rand::RngCore;

/// Bytes of an AES-GCM nonce.
pub const NONCE_BYTES: usize = 12;
/// Most characters of a key id (the `key_id` column holds 32).
const MAX_ID_CHARS: usize = 32;
/// Domain separation of the associated data: another use of the same key cannot be mistaken
/// for a secret, nor the other way round.
const AAD_DOMAIN: &str = "frameos.agent_secret.v1";

/// Why FRAMEOS_SECRETS_KEY is unusable. Never holds key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyringError {
    #[error("no key: expected `<id>:<64 hex digits>`, comma-separated for rotation")]
    Empty,
    #[error("key {position} has no id: expected `<id>:<64 hex digits>`")]
    MissingId { position: usize },
    #[error("key {position}: an id is 1 to 32 of `a-z A-Z 0-9 _ . -`")]
    BadId { position: usize },
    #[error("key {id:?} is not 64 hex digits (32 random bytes)")]
    BadKey { id: String },
    #[error("key id {id:?} appears twice")]
    Duplicate { id: String },
}

/// Why a sealed value did not open.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum OpenError {
    #[error("it was sealed with key {key_id:?}, which FRAMEOS_SECRETS_KEY does not hold")]
    UnknownKey { key_id: String },
    #[error("it does not authenticate: tampered with, or copied from another agent or name")]
    NotAuthentic,
}

/// AES-GCM refused to seal (a value far beyond the 4 KiB limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("the value could not be sealed")]
pub struct SealError;

/// One value sealed under one key.
#[derive(Clone, PartialEq, Eq)]
pub struct Sealed {
    pub key_id: String,
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
}

#[derive(Clone)]
struct Key {
    id: String,
    cipher: Aes256Gcm,
}

/// The keys of FRAMEOS_SECRETS_KEY, the first one active. `Debug` shows the ids only.
#[derive(Clone)]
pub struct Keyring {
    /// Never empty.
    keys: Vec<Key>,
}

impl Keyring {
    /// The id of the key that seals new values.
    pub fn active_id(&self) -> &str {
        &self.active().id
    }

    pub fn ids(&self) -> impl Iterator<Item = &str> {
        self.keys.iter().map(|k| k.id.as_str())
    }

    fn active(&self) -> &Key {
        // `FromStr` refuses an empty keyring, and nothing else builds one.
        &self.keys[0]
    }

    /// Seals `value` as secret `name` of agent `agent_id`, under the active key.
    pub fn seal(&self, agent_id: &str, name: &str, value: &str) -> Result<Sealed, SealError> {
        let key = self.active();
        let mut nonce = [0u8; NONCE_BYTES];
        rand::rng().fill_bytes(&mut nonce);
        let aad = associated_data(agent_id, name);
        let payload = Payload {
            msg: value.as_bytes(),
            aad: aad.as_bytes(),
        };
        // Fails only past 64 GiB of plaintext: values are at most 4 KiB.
        let ciphertext = key
            .cipher
            .encrypt(Nonce::from_slice(&nonce), payload)
            .map_err(|_| SealError)?;
        Ok(Sealed {
            key_id: key.id.clone(),
            nonce: nonce.to_vec(),
            ciphertext,
        })
    }

    /// Opens what [`Keyring::seal`] sealed for the same agent and name.
    pub fn open(&self, agent_id: &str, name: &str, sealed: &Sealed) -> Result<String, OpenError> {
        let key = self
            .keys
            .iter()
            .find(|k| k.id == sealed.key_id)
            .ok_or_else(|| OpenError::UnknownKey {
                key_id: sealed.key_id.clone(),
            })?;
        if sealed.nonce.len() != NONCE_BYTES {
            return Err(OpenError::NotAuthentic);
        }
        let aad = associated_data(agent_id, name);
        let payload = Payload {
            msg: &sealed.ciphertext,
            aad: aad.as_bytes(),
        };
        let plain = key
            .cipher
            .decrypt(Nonce::from_slice(&sealed.nonce), payload)
            .map_err(|_| OpenError::NotAuthentic)?;
        // Only valid UTF-8 is ever sealed.
        String::from_utf8(plain).map_err(|_| OpenError::NotAuthentic)
    }

    /// A new random key as FRAMEOS_SECRETS_KEY writes it: `<id>:<64 hex digits>`.
    pub fn generate_entry(id: &str) -> Result<String, KeyringError> {
        if !valid_id(id) {
            return Err(KeyringError::BadId { position: 1 });
        }
        let mut key = [0u8; 32];
        rand::rng().fill_bytes(&mut key);
        Ok(format!("{id}:{}", hex::encode(key)))
    }
}

/// Agent and name, unambiguously: neither an agent id (a UUID) nor a name holds a NUL.
fn associated_data(agent_id: &str, name: &str) -> String {
    format!("{AAD_DOMAIN}\0{agent_id}\0{name}")
}

fn valid_id(id: &str) -> bool {
    (1..=MAX_ID_CHARS).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'))
}

impl FromStr for Keyring {
    type Err = KeyringError;

    fn from_str(text: &str) -> Result<Keyring, KeyringError> {
        let mut keys: Vec<Key> = Vec::new();
        for (index, entry) in text.split(',').map(str::trim).enumerate() {
            let position = index + 1;
            if entry.is_empty() {
                continue;
            }
            let (id, hex_key) = entry
                .split_once(':')
                .ok_or(KeyringError::MissingId { position })?;
            let id = id.trim();
            if !valid_id(id) {
                return Err(KeyringError::BadId { position });
            }
            let bytes = hex::decode(hex_key.trim())
                .ok()
                .filter(|b| b.len() == 32)
                .ok_or_else(|| KeyringError::BadKey { id: id.to_string() })?;
            if keys.iter().any(|k| k.id == id) {
                return Err(KeyringError::Duplicate { id: id.to_string() });
            }
            let cipher = Aes256Gcm::new_from_slice(&bytes)
                .map_err(|_| KeyringError::BadKey { id: id.to_string() })?;
            keys.push(Key {
                id: id.to_string(),
                cipher,
            });
        }
        if keys.is_empty() {
            return Err(KeyringError::Empty);
        }
        Ok(Keyring { keys })
    }
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("active", &self.active_id())
            .field("ids", &self.ids().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for Sealed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sealed")
            .field("key_id", &self.key_id)
            .field("bytes", &self.ciphertext.len())
            .finish_non_exhaustive()
    }
}

/// Parses FRAMEOS_SECRETS_KEY for clap without ever echoing it: clap's own message for a bad
/// value quotes the value, which here is the key.
#[derive(Clone, Copy, Debug, Default)]
pub struct KeyringParser;

impl clap::builder::TypedValueParser for KeyringParser {
    type Value = Keyring;

    fn parse_ref(
        &self,
        cmd: &clap::Command,
        _arg: Option<&clap::Arg>,
        value: &std::ffi::OsStr,
    ) -> Result<Keyring, clap::Error> {
        let refuse = |why: String| {
            cmd.clone().error(
                clap::error::ErrorKind::ValueValidation,
                format!("FRAMEOS_SECRETS_KEY (--secrets-key): {why}"),
            )
        };
        value
            .to_str()
            .ok_or_else(|| refuse("not UTF-8".to_string()))?
            .parse()
            .map_err(|e: KeyringError| refuse(e.to_string()))
    }
}

/// The keyring of the control plane, a flattened part of its configuration.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct SecretsConfig {
    /// Keys sealing agents' secrets (API.md §5.3, ADR 0045): `<id>:<64 hex digits>`,
    /// comma-separated; the first seals new values, the others still open older ones until
    /// `frameos secrets rotate` re-seals them under the first. Unset: secrets cannot be written
    /// (503), and runs of agents that have some are retried until it is set.
    #[arg(
        long = "secrets-key",
        env = "FRAMEOS_SECRETS_KEY",
        hide_env_values = true,
        value_parser = KeyringParser
    )]
    pub secrets_key: Option<Keyring>,
}

#[cfg(test)]
mod tests {
    use super::*;

    const K1: &str = "1111111111111111111111111111111111111111111111111111111111111111";
    const K2: &str = "2222222222222222222222222222222222222222222222222222222222222222";

    fn ring(text: &str) -> Keyring {
        text.parse().unwrap()
    }

    #[test]
    fn the_first_key_is_active_and_the_others_are_kept() {
        let keys = ring(&format!(" k2:{K2} , k1:{}", K1.to_uppercase()));
        assert_eq!(keys.active_id(), "k2");
        assert_eq!(keys.ids().collect::<Vec<_>>(), ["k2", "k1"]);
        assert_eq!(ring(&format!("only:{K1},")).ids().count(), 1);
    }

    #[test]
    fn malformed_keyrings_are_refused_without_showing_the_key() {
        let cases = [
            ("", KeyringError::Empty),
            (" , ", KeyringError::Empty),
            (K1, KeyringError::MissingId { position: 1 }),
            (
                &format!("k1:{K1},k 2:{K2}"),
                KeyringError::BadId { position: 2 },
            ),
            (&format!(":{K1}"), KeyringError::BadId { position: 1 }),
            (
                "k1:abcd",
                KeyringError::BadKey {
                    id: "k1".to_string(),
                },
            ),
            (
                &format!("k1:{}zz", &K1[..62]),
                KeyringError::BadKey {
                    id: "k1".to_string(),
                },
            ),
            (
                &format!("k1:{K1},k1:{K2}"),
                KeyringError::Duplicate {
                    id: "k1".to_string(),
                },
            ),
        ];
        for (text, expected) in cases {
            let error = text.parse::<Keyring>().unwrap_err();
            assert_eq!(error, expected, "{text:?}");
            let shown = error.to_string();
            assert!(
                !shown.contains("1111") && !shown.contains("2222"),
                "{shown}"
            );
        }
        let shown = format!("{:?}", ring(&format!("k2:{K2},k1:{K1}")));
        assert!(
            !shown.contains("1111") && !shown.contains("2222"),
            "{shown}"
        );
        assert!(shown.contains("k2") && shown.contains("k1"), "{shown}");
    }

    #[test]
    fn a_sealed_value_opens_for_its_agent_and_name_only() {
        let keys = ring(&format!("k1:{K1}"));
        let sealed = keys.seal("agent-a", "API_TOKEN", "tok-ü-123").unwrap();
        assert_eq!(sealed.key_id, "k1");
        assert_eq!(sealed.nonce.len(), NONCE_BYTES);
        assert!(!String::from_utf8_lossy(&sealed.ciphertext).contains("tok"));
        assert_eq!(
            keys.open("agent-a", "API_TOKEN", &sealed).unwrap(),
            "tok-ü-123"
        );
        // Another agent, another name: the associated data differs.
        assert_eq!(
            keys.open("agent-b", "API_TOKEN", &sealed),
            Err(OpenError::NotAuthentic)
        );
        assert_eq!(
            keys.open("agent-a", "OTHER", &sealed),
            Err(OpenError::NotAuthentic)
        );
        // A flipped bit, a short nonce.
        let mut tampered = sealed.clone();
        tampered.ciphertext[0] ^= 1;
        assert_eq!(
            keys.open("agent-a", "API_TOKEN", &tampered),
            Err(OpenError::NotAuthentic)
        );
        let mut short = sealed.clone();
        short.nonce.pop();
        assert_eq!(
            keys.open("agent-a", "API_TOKEN", &short),
            Err(OpenError::NotAuthentic)
        );
        // Same id, other key material.
        let impostor = ring(&format!("k1:{K2}"));
        assert_eq!(
            impostor.open("agent-a", "API_TOKEN", &sealed),
            Err(OpenError::NotAuthentic)
        );
        // Every sealing has its own nonce.
        assert_ne!(
            keys.seal("agent-a", "API_TOKEN", "x").unwrap().nonce,
            sealed.nonce
        );
    }

    #[test]
    fn rotation_keeps_old_values_readable_and_seals_under_the_new_key() {
        let old = ring(&format!("k1:{K1}"));
        let sealed_before = old.seal("a", "N", "v1").unwrap();
        let rotated = ring(&format!("k2:{K2},k1:{K1}"));
        assert_eq!(rotated.open("a", "N", &sealed_before).unwrap(), "v1");
        let sealed_after = rotated.seal("a", "N", "v2").unwrap();
        assert_eq!(sealed_after.key_id, "k2");
        // Once every value is re-sealed, the old key can go.
        let new_only = ring(&format!("k2:{K2}"));
        assert_eq!(new_only.open("a", "N", &sealed_after).unwrap(), "v2");
        assert_eq!(
            new_only.open("a", "N", &sealed_before),
            Err(OpenError::UnknownKey {
                key_id: "k1".to_string()
            })
        );
    }

    #[test]
    fn generated_entries_parse() {
        let entry = Keyring::generate_entry("k3").unwrap();
        let keys = ring(&entry);
        assert_eq!(keys.active_id(), "k3");
        assert_ne!(entry, Keyring::generate_entry("k3").unwrap());
        assert!(Keyring::generate_entry("no spaces").is_err());
    }

    #[test]
    fn clap_refuses_a_bad_key_without_quoting_it() {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct Cli {
            #[command(flatten)]
            secrets: SecretsConfig,
        }
        let bad = format!("k1:{}", &K1[..60]);
        let error = Cli::try_parse_from(["cp", "--secrets-key", &bad])
            .err()
            .unwrap()
            .to_string();
        assert!(error.contains("FRAMEOS_SECRETS_KEY"), "{error}");
        assert!(!error.contains("1111"), "{error}");
        let good = Cli::try_parse_from(["cp", "--secrets-key", &format!("k1:{K1}")]).unwrap();
        assert_eq!(good.secrets.secrets_key.unwrap().active_id(), "k1");
    }
}
