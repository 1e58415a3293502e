//! `open`: the upload path end to end.

use frameos_core::ErrorCode;
use frameos_package::{Limits, PlatformMaxima, open};
use sha2::{Digest, Sha256};

use crate::support::{INDEX_JS, dir, file, good_package, manifest_json, targz};

fn open_as(bytes: &[u8], slug: &str) -> Result<frameos_package::Package, frameos_package::Error> {
    open(bytes, slug, &Limits::default(), &PlatformMaxima::default())
}

#[test]
fn a_good_package_opens() {
    let bytes = good_package();
    let package = open_as(&bytes, "word-count").unwrap();
    assert_eq!(package.manifest.name, "word-count");
    assert_eq!(package.size_bytes, bytes.len() as u64);
    assert_eq!(package.sha256, hex::encode(Sha256::digest(&bytes)));
    assert_eq!(package.sha256.len(), 64);
    assert_eq!(package.sha256, package.sha256.to_lowercase());
    assert_eq!(package.archive.get("index.js").unwrap().contents, INDEX_JS);
}

#[test]
fn the_name_must_match_the_slug() {
    let error = open_as(&good_package(), "other-agent").unwrap_err();
    let error = frameos_core::Error::from(error);
    assert_eq!(error.code, ErrorCode::InvalidManifest);
    assert_eq!(
        error.message,
        "manifest name \"word-count\" does not match the agent slug \"other-agent\""
    );
}

#[test]
fn agent_json_must_be_at_the_root() {
    let manifest = manifest_json("word-count", "index.js");
    let nested = targz(&[
        file("pkg/agent.json", manifest.as_bytes()),
        file("index.js", INDEX_JS),
    ]);
    let error = open_as(&nested, "word-count").unwrap_err();
    assert_eq!(error.code(), ErrorCode::InvalidManifest);
    assert!(error.to_string().contains("agent.json"));
}

#[test]
fn the_entrypoint_must_be_a_file_in_the_package() {
    let manifest = manifest_json("word-count", "main.js");
    let missing = targz(&[
        file("agent.json", manifest.as_bytes()),
        file("index.js", INDEX_JS),
    ]);
    let error = open_as(&missing, "word-count").unwrap_err();
    assert_eq!(error.code(), ErrorCode::InvalidManifest);
    assert!(error.to_string().contains("main.js"));

    let manifest = manifest_json("word-count", "lib.js");
    let a_dir = targz(&[file("agent.json", manifest.as_bytes()), dir("lib.js/")]);
    assert_eq!(
        open_as(&a_dir, "word-count").unwrap_err().code(),
        ErrorCode::InvalidManifest
    );
}

#[test]
fn archive_errors_come_first_with_their_own_codes() {
    let limits = Limits {
        max_compressed_bytes: 10,
        ..Limits::default()
    };
    let error = open(
        &good_package(),
        "word-count",
        &limits,
        &PlatformMaxima::default(),
    );
    assert_eq!(error.unwrap_err().code(), ErrorCode::PackageTooLarge);
    assert_eq!(
        open_as(b"nope", "word-count").unwrap_err().code(),
        ErrorCode::InvalidPackage
    );
}

#[test]
fn an_invalid_manifest_in_the_package_is_reported() {
    let bad = targz(&[
        file("agent.json", b"{\"name\": 1}"),
        file("index.js", INDEX_JS),
    ]);
    let error = frameos_core::Error::from(open_as(&bad, "word-count").unwrap_err());
    assert_eq!(error.code, ErrorCode::InvalidManifest);
    assert!(error.message.contains("name"), "{}", error.message);
}
