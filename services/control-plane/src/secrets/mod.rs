//! Secrets of agents (API.md §5.3, ADR 0045): sealed at rest under FRAMEOS_SECRETS_KEY
//! ([`keyring`]), written, listed and deleted through `SecretService` ([`service`]), opened only
//! for a claimed run of their own agent ([`store::for_run`]), and re-sealed under a new key by
//! `frameos secrets rotate` ([`store::rotate`]).

pub mod keyring;
mod service;
pub mod store;

pub use keyring::{Keyring, KeyringError, SecretsConfig};
pub use service::Secrets;
pub use store::Rotation;
