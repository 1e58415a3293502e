#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, IsCa, Issuer, KeyPair};

use super::*;

/// A CA and a leaf it signed, as PEM files in a temporary directory.
struct Files {
    dir: tempfile::TempDir,
}

impl Files {
    fn new() -> Files {
        let dir = tempfile::tempdir().unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = ca_params.self_signed(&ca_key).unwrap();
        let issuer = Issuer::new(ca_params, ca_key);
        let leaf_key = KeyPair::generate().unwrap();
        let leaf = CertificateParams::new(vec!["localhost".to_string()])
            .unwrap()
            .signed_by(&leaf_key, &issuer)
            .unwrap();
        let other_key = KeyPair::generate().unwrap();
        let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
        write("ca.pem", &ca.pem());
        write("cert.pem", &leaf.pem());
        write("key.pem", &leaf_key.serialize_pem());
        write("other-key.pem", &other_key.serialize_pem());
        write("empty.pem", "not a pem file\n");
        Files { dir }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn server(&self, cert: &str, key: &str, ca: Option<&str>) -> ServerTlsConfig {
        ServerTlsConfig {
            tls_cert: Some(self.path(cert)),
            tls_key: Some(self.path(key)),
            tls_client_ca: ca.map(|ca| self.path(ca)),
        }
    }
}

fn message(error: Error) -> String {
    error.to_string()
}

fn names(message: &str, path: &Path) {
    assert!(
        message.contains(&path.display().to_string()),
        "{message:?} does not name {}",
        path.display()
    );
}

#[test]
fn nothing_set_is_plain_http() {
    assert!(ServerTlsConfig::default().load().unwrap().is_none());
    let endpoint = ClientTlsConfig::default()
        .endpoint("http://127.0.0.1:50051")
        .unwrap();
    assert_eq!(endpoint.uri().scheme_str(), Some("http"));
}

#[test]
fn a_matching_pair_loads_with_and_without_node_mtls() {
    let files = Files::new();
    let tls = files
        .server("cert.pem", "key.pem", None)
        .load()
        .unwrap()
        .unwrap();
    assert!(!tls.requires_node_certificates());
    let mtls = files
        .server("cert.pem", "key.pem", Some("ca.pem"))
        .load()
        .unwrap()
        .unwrap();
    assert!(mtls.requires_node_certificates());
    let client = ClientTlsConfig {
        control_plane_ca: Some(files.path("ca.pem")),
        tls_client_cert: Some(files.path("cert.pem")),
        tls_client_key: Some(files.path("key.pem")),
    };
    client.endpoint("https://localhost:50051").unwrap();
}

#[test]
fn a_missing_file_is_named() {
    let files = Files::new();
    let error = message(
        files
            .server("nope.pem", "key.pem", None)
            .load()
            .unwrap_err(),
    );
    assert!(
        error.starts_with("FRAMEOS_TLS_CERT: cannot read"),
        "{error}"
    );
    names(&error, &files.path("nope.pem"));
}

#[test]
fn a_file_without_a_certificate_or_key_is_named() {
    let files = Files::new();
    let error = message(
        files
            .server("empty.pem", "key.pem", None)
            .load()
            .unwrap_err(),
    );
    assert!(error.contains("holds no PEM certificate"), "{error}");
    names(&error, &files.path("empty.pem"));

    let error = message(
        files
            .server("cert.pem", "empty.pem", None)
            .load()
            .unwrap_err(),
    );
    assert!(error.contains("holds no PEM private key"), "{error}");
    names(&error, &files.path("empty.pem"));

    let error = message(
        files
            .server("cert.pem", "key.pem", Some("empty.pem"))
            .load()
            .unwrap_err(),
    );
    assert!(error.starts_with("FRAMEOS_TLS_CLIENT_CA"), "{error}");
    names(&error, &files.path("empty.pem"));
}

#[test]
fn a_key_of_another_certificate_is_refused() {
    let files = Files::new();
    let error = files
        .server("cert.pem", "other-key.pem", None)
        .load()
        .unwrap_err();
    assert!(matches!(error, Error::KeyMismatch { .. }), "{error:?}");
    let error = message(error);
    names(&error, &files.path("cert.pem"));
    names(&error, &files.path("other-key.pem"));

    let client = ClientTlsConfig {
        control_plane_ca: None,
        tls_client_cert: Some(files.path("cert.pem")),
        tls_client_key: Some(files.path("other-key.pem")),
    };
    let error = client.endpoint("https://localhost:50051").unwrap_err();
    assert!(matches!(error, Error::KeyMismatch { .. }), "{error:?}");
}

#[test]
fn half_a_configuration_is_refused() {
    let files = Files::new();
    let only_cert = ServerTlsConfig {
        tls_cert: Some(files.path("cert.pem")),
        ..ServerTlsConfig::default()
    };
    assert!(message(only_cert.load().unwrap_err()).contains("FRAMEOS_TLS_KEY"));
    let only_ca = ServerTlsConfig {
        tls_client_ca: Some(files.path("ca.pem")),
        ..ServerTlsConfig::default()
    };
    assert!(matches!(only_ca.load(), Err(Error::Incomplete { .. })));
    let only_client_cert = ClientTlsConfig {
        tls_client_cert: Some(files.path("cert.pem")),
        ..ClientTlsConfig::default()
    };
    assert!(matches!(
        only_client_cert.endpoint("https://localhost:1"),
        Err(Error::Incomplete { .. })
    ));
}

#[test]
fn tls_files_with_a_plain_url_are_an_error_not_ignored() {
    let files = Files::new();
    let client = ClientTlsConfig {
        control_plane_ca: Some(files.path("ca.pem")),
        ..ClientTlsConfig::default()
    };
    let error = client.endpoint("http://127.0.0.1:50051").unwrap_err();
    assert!(
        matches!(
            error,
            Error::NotHttps {
                setting: "FRAMEOS_CONTROL_PLANE_CA",
                ..
            }
        ),
        "{error:?}"
    );
}
