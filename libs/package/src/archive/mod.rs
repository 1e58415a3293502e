//! Safe reading of the package archive: into memory (`inspect`) or onto disk (`extract`).

mod extract;
mod path;
mod walk;

use std::path::Path;

use crate::{Error, Limits};

/// A regular file of the package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct File {
    /// Normalized relative path, '/'-separated, without a leading "./".
    pub path: String,
    /// Normalized permissions: 0o755 if the owner could execute it, else 0o644.
    pub mode: u32,
    pub contents: Vec<u8>,
}

/// The files of a package, in archive order. Directories are not listed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Archive {
    pub files: Vec<File>,
    /// Sum of the files' sizes.
    pub uncompressed_bytes: u64,
}

impl Archive {
    pub fn get(&self, path: &str) -> Option<&File> {
        self.files.iter().find(|file| file.path == path)
    }
}

/// Reads the whole gzip tar into memory, enforcing every rule while streaming (never allocates
/// beyond the limits).
pub fn inspect(bytes: &[u8], limits: &Limits) -> Result<Archive, Error> {
    let mut collector = Collector::default();
    let uncompressed_bytes = walk::walk(bytes, limits, &mut collector)?;
    Ok(Archive {
        files: collector.files,
        uncompressed_bytes,
    })
}

/// Extracts into `dest` (must be an existing empty directory) with the same rules; files 0644 /
/// dirs 0755 (keeping the owner-executable bit of files), never follows or creates links, never
/// writes outside `dest`. On error, whatever was written into `dest` is removed again.
pub fn extract(bytes: &[u8], dest: &Path, limits: &Limits) -> Result<(), Error> {
    extract::extract(bytes, dest, limits)
}

/// Normalizes a path named elsewhere (the manifest's entrypoint) by the archive's rules.
pub(crate) fn normalize_file_path(raw: &str) -> Result<String, &'static str> {
    path::normalize(raw.as_bytes(), false)?.ok_or("not a file path")
}

#[derive(Default)]
struct Collector {
    files: Vec<File>,
}

impl walk::Visitor for Collector {
    fn dir(&mut self, _path: &str) -> Result<(), Error> {
        Ok(())
    }

    fn file_start(&mut self, path: &str, mode: u32, size: u64) -> Result<(), Error> {
        // The size was checked against the limits; still, grow with the bytes actually read.
        let capacity = usize::try_from(size.min(1 << 20)).unwrap_or(0);
        self.files.push(File {
            path: path.to_owned(),
            mode,
            contents: Vec::with_capacity(capacity),
        });
        Ok(())
    }

    fn file_chunk(&mut self, chunk: &[u8]) -> Result<(), Error> {
        if let Some(file) = self.files.last_mut() {
            file.contents.extend_from_slice(chunk);
        }
        Ok(())
    }

    fn file_end(&mut self) -> Result<(), Error> {
        Ok(())
    }
}
