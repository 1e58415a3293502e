//! The callers' side (gateway, execution node): trusting the control plane, and a client
//! certificate for node mTLS.

use std::path::PathBuf;
use std::time::Duration;

use tonic::transport::{Certificate, Endpoint, Identity};

use crate::{Error, pem};

const HANDSHAKE_WITHIN: Duration = Duration::from_secs(10);

/// TLS towards the control plane; used when `FRAMEOS_CONTROL_PLANE_URL` is `https://`.
#[derive(Clone, Debug, Default, clap::Args)]
pub struct ClientTlsConfig {
    /// PEM CA certificate(s) an https:// control plane's certificate must chain to; the
    /// system's roots when absent.
    #[arg(long, env = "FRAMEOS_CONTROL_PLANE_CA")]
    pub control_plane_ca: Option<PathBuf>,

    /// PEM client certificate presented to the control plane (node mTLS, FRAMEOS_TLS_CLIENT_CA).
    #[arg(long, env = "FRAMEOS_TLS_CLIENT_CERT")]
    pub tls_client_cert: Option<PathBuf>,

    /// PEM private key of FRAMEOS_TLS_CLIENT_CERT.
    #[arg(long, env = "FRAMEOS_TLS_CLIENT_KEY")]
    pub tls_client_key: Option<PathBuf>,
}

impl ClientTlsConfig {
    /// An endpoint for `url` (nothing connects yet); the files are read and checked now. An
    /// `https://` URL gets TLS; TLS files given with an `http://` URL are an error rather than
    /// silently unused.
    pub fn endpoint(&self, url: &str) -> Result<Endpoint, Error> {
        let endpoint = Endpoint::from_shared(url.to_string()).map_err(|source| Error::Url {
            url: url.to_string(),
            source,
        })?;
        let identity = self.identity()?;
        if endpoint.uri().scheme_str() != Some("https") {
            let set = [
                (self.control_plane_ca.is_some(), "FRAMEOS_CONTROL_PLANE_CA"),
                (identity.is_some(), "FRAMEOS_TLS_CLIENT_CERT"),
            ];
            return match set.into_iter().find(|(given, _)| *given) {
                Some((_, setting)) => Err(Error::NotHttps {
                    setting,
                    url: url.to_string(),
                }),
                None => Ok(endpoint),
            };
        }
        crate::install_crypto_provider();
        let mut tls = tonic::transport::ClientTlsConfig::new().timeout(HANDSHAKE_WITHIN);
        tls = match &self.control_plane_ca {
            Some(path) => {
                let ca = pem::certificates("FRAMEOS_CONTROL_PLANE_CA", path)?;
                pem::check_ca("FRAMEOS_CONTROL_PLANE_CA", path, &ca)?;
                tls.ca_certificate(Certificate::from_pem(ca.pem))
            }
            None => tls.with_native_roots(),
        };
        if let Some(identity) = identity {
            tls = tls.identity(identity);
        }
        endpoint.tls_config(tls).map_err(Error::Setup)
    }

    fn identity(&self) -> Result<Option<Identity>, Error> {
        let (cert_path, key_path) = match (&self.tls_client_cert, &self.tls_client_key) {
            (None, None) => return Ok(None),
            (Some(_), None) => {
                return Err(Error::Incomplete {
                    given: "FRAMEOS_TLS_CLIENT_CERT",
                    missing: "FRAMEOS_TLS_CLIENT_KEY",
                });
            }
            (None, Some(_)) => {
                return Err(Error::Incomplete {
                    given: "FRAMEOS_TLS_CLIENT_KEY",
                    missing: "FRAMEOS_TLS_CLIENT_CERT",
                });
            }
            (Some(cert), Some(key)) => (cert, key),
        };
        let certs = pem::certificates("FRAMEOS_TLS_CLIENT_CERT", cert_path)?;
        let key = pem::private_key("FRAMEOS_TLS_CLIENT_KEY", key_path)?;
        pem::check_pair(cert_path, &certs, "FRAMEOS_TLS_CLIENT_KEY", key_path, &key)?;
        Ok(Some(Identity::from_pem(certs.pem, key.pem)))
    }
}
