//! The agent package (API.md §1): a gzip tar with `agent.json` at its root.
//!
//! [`open`] is what the control plane calls on upload; [`archive`] and [`manifest`] are the
//! pieces, usable alone (the runner extracts with [`archive::extract`]).

pub mod archive;
mod error;
pub mod manifest;

use sha2::{Digest, Sha256};

pub use error::Error;

/// The manifest's file name, at the root of the archive.
pub const MANIFEST_PATH: &str = "agent.json";

/// Size limits of an uploaded package.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub max_compressed_bytes: u64,
    pub max_uncompressed_bytes: u64,
    /// Files and directories together.
    pub max_entries: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_compressed_bytes: 10 * 1024 * 1024,
            max_uncompressed_bytes: 50 * 1024 * 1024,
            max_entries: 2_000,
        }
    }
}

/// The most an agent may ask for in `resources`; more is refused, never clamped.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlatformMaxima {
    pub cpu_cores: f64,
    pub memory_mb: u64,
    pub timeout_ms: u64,
}

impl Default for PlatformMaxima {
    fn default() -> Self {
        PlatformMaxima {
            cpu_cores: 2.0,
            memory_mb: 2048,
            timeout_ms: 300_000,
        }
    }
}

/// A package that passed every check.
#[derive(Debug, Clone)]
pub struct Package {
    pub archive: archive::Archive,
    pub manifest: manifest::Manifest,
    /// Lowercase hex SHA-256 of the exact uploaded bytes.
    pub sha256: String,
    /// Compressed size, as uploaded.
    pub size_bytes: u64,
}

/// Everything the control plane needs on upload: size check, inspect, agent.json present at the
/// root, manifest parsed, name equal to `expected_slug`, entrypoint present as a regular file.
pub fn open(
    bytes: &[u8],
    expected_slug: &str,
    limits: &Limits,
    maxima: &PlatformMaxima,
) -> Result<Package, Error> {
    let archive = archive::inspect(bytes, limits)?;
    let agent_json = archive.get(MANIFEST_PATH).ok_or(Error::ManifestMissing)?;
    let manifest = manifest::parse(&agent_json.contents, maxima)?;
    if manifest.name != expected_slug {
        return Err(Error::SlugMismatch {
            name: manifest.name,
            slug: expected_slug.to_owned(),
        });
    }
    if archive.get(&manifest.entrypoint).is_none() {
        return Err(Error::EntrypointMissing(manifest.entrypoint));
    }
    Ok(Package {
        sha256: hex::encode(Sha256::digest(bytes)),
        size_bytes: bytes.len() as u64,
        archive,
        manifest,
    })
}
