//! TLS for the gRPC mesh, from PEM files (ADR 0018).
//!
//! - [`ServerTlsConfig`] (control plane): `FRAMEOS_TLS_CERT` + `FRAMEOS_TLS_KEY` turn TLS on;
//!   `FRAMEOS_TLS_CLIENT_CA` adds node mTLS: a client certificate signed by that CA is checked in
//!   the handshake whenever one is presented, and the node service requires one.
//! - [`ClientTlsConfig`] (gateway, execution node): an `https://` `FRAMEOS_CONTROL_PLANE_URL` is
//!   verified against `FRAMEOS_CONTROL_PLANE_CA`, or the system's roots without it;
//!   `FRAMEOS_TLS_CLIENT_CERT` + `FRAMEOS_TLS_CLIENT_KEY` are the client certificate.
//!
//! Every file is read and checked when the service starts, and a bad one is an error naming its
//! setting and path: missing or unreadable, no certificate in it, no key in it, a key that does
//! not belong to its certificate. Plain HTTP/2 stays the default: nothing set, nothing changes.

mod client;
mod pem;
mod server;

use std::path::PathBuf;

pub use client::ClientTlsConfig;
pub use server::{ServerTls, ServerTlsConfig, server_builder};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{setting}: cannot read {}: {source}", path.display())]
    Read {
        setting: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{setting}: {} holds no PEM certificate (-----BEGIN CERTIFICATE-----)", path.display())]
    NoCertificate {
        setting: &'static str,
        path: PathBuf,
    },
    #[error("{setting}: {} holds no PEM private key (-----BEGIN PRIVATE KEY-----, or an RSA or EC key)", path.display())]
    NoPrivateKey {
        setting: &'static str,
        path: PathBuf,
    },
    #[error("{setting}: {} is unusable: {reason}", path.display())]
    Unusable {
        setting: &'static str,
        path: PathBuf,
        reason: String,
    },
    #[error("the private key in {} does not belong to the certificate in {}", key.display(), cert.display())]
    KeyMismatch { cert: PathBuf, key: PathBuf },
    #[error("{given} is set without {missing}: both are needed")]
    Incomplete {
        given: &'static str,
        missing: &'static str,
    },
    #[error("{setting} is set but the control plane URL {url:?} is not https://")]
    NotHttps { setting: &'static str, url: String },
    #[error("invalid control plane URL {url:?}: {source}")]
    Url {
        url: String,
        source: tonic::transport::Error,
    },
    #[error("TLS setup failed: {0}")]
    Setup(#[source] tonic::transport::Error),
}

/// rustls needs one process-wide crypto provider; ring is the only one built in. Installing it
/// is idempotent (a second install is refused, and that is fine).
fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

#[cfg(test)]
mod tests;
