//! The control plane's side: its certificate, and the CA of node client certificates.

use std::path::PathBuf;
use std::time::Duration;

use tonic::transport::{Certificate, Identity};

use crate::{Error, pem};

/// A client that opens a connection and stalls the handshake holds a socket no longer than this.
const HANDSHAKE_WITHIN: Duration = Duration::from_secs(10);

/// TLS of the gRPC server. Without `FRAMEOS_TLS_CERT` and `FRAMEOS_TLS_KEY` it serves plain
/// HTTP/2 (the default; put TLS in front or set them in production).
#[derive(Clone, Debug, Default, clap::Args)]
pub struct ServerTlsConfig {
    /// PEM certificate chain (leaf first) the gRPC server presents; with FRAMEOS_TLS_KEY turns
    /// TLS on.
    #[arg(long, env = "FRAMEOS_TLS_CERT")]
    pub tls_cert: Option<PathBuf>,

    /// PEM private key of FRAMEOS_TLS_CERT.
    #[arg(long, env = "FRAMEOS_TLS_KEY")]
    pub tls_key: Option<PathBuf>,

    /// PEM CA certificate(s) for node mTLS: execution nodes must present a client certificate
    /// signed by it, in addition to FRAMEOS_NODE_TOKEN. Other callers (the gateway) need none.
    #[arg(long, env = "FRAMEOS_TLS_CLIENT_CA")]
    pub tls_client_ca: Option<PathBuf>,
}

/// Checked server TLS, ready for the gRPC server.
#[derive(Clone, Debug)]
pub struct ServerTls {
    config: tonic::transport::ServerTlsConfig,
    client_ca: bool,
}

impl ServerTlsConfig {
    /// Reads and checks the files: `None` when TLS is off.
    pub fn load(&self) -> Result<Option<ServerTls>, Error> {
        let (cert_path, key_path) = match (&self.tls_cert, &self.tls_key) {
            (None, None) => {
                return match self.tls_client_ca {
                    Some(_) => Err(Error::Incomplete {
                        given: "FRAMEOS_TLS_CLIENT_CA",
                        missing: "FRAMEOS_TLS_CERT and FRAMEOS_TLS_KEY",
                    }),
                    None => Ok(None),
                };
            }
            (Some(_), None) => {
                return Err(Error::Incomplete {
                    given: "FRAMEOS_TLS_CERT",
                    missing: "FRAMEOS_TLS_KEY",
                });
            }
            (None, Some(_)) => {
                return Err(Error::Incomplete {
                    given: "FRAMEOS_TLS_KEY",
                    missing: "FRAMEOS_TLS_CERT",
                });
            }
            (Some(cert), Some(key)) => (cert, key),
        };
        crate::install_crypto_provider();
        let certs = pem::certificates("FRAMEOS_TLS_CERT", cert_path)?;
        let key = pem::private_key("FRAMEOS_TLS_KEY", key_path)?;
        pem::check_pair(cert_path, &certs, "FRAMEOS_TLS_KEY", key_path, &key)?;
        let mut config = tonic::transport::ServerTlsConfig::new()
            .identity(Identity::from_pem(certs.pem, key.pem))
            .timeout(HANDSHAKE_WITHIN);
        if let Some(ca_path) = &self.tls_client_ca {
            let ca = pem::certificates("FRAMEOS_TLS_CLIENT_CA", ca_path)?;
            pem::check_ca("FRAMEOS_TLS_CLIENT_CA", ca_path, &ca)?;
            // A presented certificate is always verified against the CA; whether one is required
            // is up to each service (the node service requires it, see `ServerTls::client_ca`).
            config = config
                .client_ca_root(Certificate::from_pem(ca.pem))
                .client_auth_optional(true);
        }
        let tls = ServerTls {
            config,
            client_ca: self.tls_client_ca.is_some(),
        };
        // Built once here so that anything tonic still refuses fails the start, not a handshake.
        tls.server()?;
        Ok(Some(tls))
    }
}

impl ServerTls {
    /// Node mTLS is on: NodeService calls must come over a connection with a verified client
    /// certificate.
    pub fn requires_node_certificates(&self) -> bool {
        self.client_ca
    }

    /// A gRPC server builder serving TLS.
    pub fn server(&self) -> Result<tonic::transport::Server, Error> {
        tonic::transport::Server::builder()
            .tls_config(self.config.clone())
            .map_err(Error::Setup)
    }
}

/// A gRPC server builder: with TLS when `tls` is given, plain HTTP/2 otherwise.
pub fn server_builder(tls: Option<&ServerTls>) -> Result<tonic::transport::Server, Error> {
    match tls {
        Some(tls) => tls.server(),
        None => Ok(tonic::transport::Server::builder()),
    }
}
