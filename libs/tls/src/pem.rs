//! Reading and checking PEM files, each error naming its setting and path.

use std::path::Path;

use rustls::pki_types::pem::{self, PemObject};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

use crate::Error;

/// A PEM file's bytes (what tonic takes) and what they were checked to hold.
pub(crate) struct Certificates {
    pub pem: Vec<u8>,
    pub ders: Vec<CertificateDer<'static>>,
}

pub(crate) struct PrivateKey {
    pub pem: Vec<u8>,
    pub der: PrivateKeyDer<'static>,
}

fn read(setting: &'static str, path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|source| Error::Read {
        setting,
        path: path.to_path_buf(),
        source,
    })
}

fn malformed(setting: &'static str, path: &Path, error: &pem::Error) -> Error {
    Error::Unusable {
        setting,
        path: path.to_path_buf(),
        reason: format!("malformed PEM: {error}"),
    }
}

/// One or more certificates (a chain: the leaf first).
pub(crate) fn certificates(setting: &'static str, path: &Path) -> Result<Certificates, Error> {
    let pem = read(setting, path)?;
    let ders = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| malformed(setting, path, &e))?;
    if ders.is_empty() {
        return Err(Error::NoCertificate {
            setting,
            path: path.to_path_buf(),
        });
    }
    Ok(Certificates { pem, ders })
}

pub(crate) fn private_key(setting: &'static str, path: &Path) -> Result<PrivateKey, Error> {
    let pem = read(setting, path)?;
    let der = match PrivateKeyDer::from_pem_slice(&pem) {
        Ok(der) => der,
        Err(pem::Error::NoItemsFound) => {
            return Err(Error::NoPrivateKey {
                setting,
                path: path.to_path_buf(),
            });
        }
        Err(e) => return Err(malformed(setting, path, &e)),
    };
    Ok(PrivateKey { pem, der })
}

/// The key signs for the leaf certificate: its public half is the certificate's.
pub(crate) fn check_pair(
    cert_path: &Path,
    certs: &Certificates,
    key_setting: &'static str,
    key_path: &Path,
    key: &PrivateKey,
) -> Result<(), Error> {
    let provider = rustls::crypto::ring::default_provider();
    let signing = provider
        .key_provider
        .load_private_key(key.der.clone_key())
        .map_err(|e| Error::Unusable {
            setting: key_setting,
            path: key_path.to_path_buf(),
            reason: format!("unsupported private key: {e}"),
        })?;
    let certified = rustls::sign::CertifiedKey::new(certs.ders.clone(), signing);
    match certified.keys_match() {
        Ok(()) => Ok(()),
        Err(rustls::Error::InconsistentKeys(rustls::InconsistentKeys::KeyMismatch)) => {
            Err(Error::KeyMismatch {
                cert: cert_path.to_path_buf(),
                key: key_path.to_path_buf(),
            })
        }
        Err(e) => Err(Error::Unusable {
            setting: key_setting,
            path: key_path.to_path_buf(),
            reason: format!("cannot check it against {}: {e}", cert_path.display()),
        }),
    }
}

/// Every certificate is usable as a trust anchor.
pub(crate) fn check_ca(
    setting: &'static str,
    path: &Path,
    certs: &Certificates,
) -> Result<(), Error> {
    let mut roots = rustls::RootCertStore::empty();
    for der in &certs.ders {
        roots.add(der.clone()).map_err(|e| Error::Unusable {
            setting,
            path: path.to_path_buf(),
            reason: format!("not a CA certificate rustls can use: {e}"),
        })?;
    }
    Ok(())
}
