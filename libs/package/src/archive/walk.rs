//! One streaming pass over a gzip tar that enforces every rule before a byte reaches a visitor.
//!
//! `inspect` and `extract` are both visitors, so they cannot disagree about what is safe.

use std::collections::HashSet;
use std::io::{self, Read};

use flate2::read::MultiGzDecoder;

use super::path;
use crate::{Error, Limits};

/// Decompressed bytes allowed per entry on top of file contents: headers, pax records, padding.
const OVERHEAD_PER_ENTRY: u64 = 4096;
/// Fixed allowance for the end-of-archive blocks and record padding.
const OVERHEAD_FIXED: u64 = 64 * 1024;
const CHUNK: usize = 64 * 1024;

/// Receives the validated entries of an archive, in archive order.
pub(crate) trait Visitor {
    fn dir(&mut self, path: &str) -> Result<(), Error>;
    fn file_start(&mut self, path: &str, mode: u32, size: u64) -> Result<(), Error>;
    fn file_chunk(&mut self, chunk: &[u8]) -> Result<(), Error>;
    fn file_end(&mut self) -> Result<(), Error>;
}

/// Walks the archive; returns the total size of the files' contents.
pub(crate) fn walk(bytes: &[u8], limits: &Limits, visitor: &mut dyn Visitor) -> Result<u64, Error> {
    let size = bytes.len() as u64;
    if size > limits.max_compressed_bytes {
        return Err(Error::CompressedTooLarge {
            size,
            limit: limits.max_compressed_bytes,
        });
    }
    if !bytes.starts_with(&[0x1f, 0x8b]) {
        return Err(Error::Malformed("not gzip-compressed".into()));
    }
    let overhead = (limits.max_entries as u64)
        .saturating_mul(OVERHEAD_PER_ENTRY)
        .saturating_add(OVERHEAD_FIXED);
    let cap = limits.max_uncompressed_bytes.saturating_add(overhead);
    let mut tar = tar::Archive::new(CappedReader::new(MultiGzDecoder::new(bytes), cap));

    let mut state = WalkState::new(limits);
    let outcome = state.walk_entries(&mut tar, visitor);
    let mut reader = tar.into_inner();
    // Reading to the end verifies the gzip checksum and catches data hidden after the tar end.
    let outcome = outcome.and_then(|()| {
        io::copy(&mut reader, &mut io::sink()).map_err(|e| malformed(&e))?;
        Ok(())
    });
    if reader.exceeded {
        return Err(Error::UncompressedTooLarge {
            limit: limits.max_uncompressed_bytes,
        });
    }
    if outcome.is_ok() && reader.total == 0 {
        return Err(Error::Malformed("the archive is empty".into()));
    }
    outcome.map(|()| state.content_bytes)
}

fn malformed(error: &io::Error) -> Error {
    Error::Malformed(error.to_string())
}

enum Kind {
    File,
    Dir,
}

struct WalkState<'l> {
    limits: &'l Limits,
    entries: usize,
    content_bytes: u64,
    files: HashSet<String>,
    dirs: HashSet<String>,
}

impl<'l> WalkState<'l> {
    fn new(limits: &'l Limits) -> Self {
        WalkState {
            limits,
            entries: 0,
            content_bytes: 0,
            files: HashSet::new(),
            dirs: HashSet::new(),
        }
    }

    fn walk_entries<R: Read>(
        &mut self,
        tar: &mut tar::Archive<R>,
        visitor: &mut dyn Visitor,
    ) -> Result<(), Error> {
        for entry in tar.entries().map_err(|e| malformed(&e))? {
            let mut entry = entry.map_err(|e| malformed(&e))?;
            let raw_path = entry.path_bytes().into_owned();
            let lossy = String::from_utf8_lossy(&raw_path).into_owned();
            let header = entry.header();
            let kind = match header.entry_type() {
                tar::EntryType::Regular | tar::EntryType::Continuous => Kind::File,
                tar::EntryType::Directory => Kind::Dir,
                // Archive-wide metadata (git archive writes one); carries no file.
                tar::EntryType::XGlobalHeader => continue,
                other => return Err(Error::unsafe_entry(&lossy, describe(other))),
            };
            let mode = header.mode().map_err(|e| malformed(&e))?;
            if mode & 0o7000 != 0 {
                return Err(Error::unsafe_entry(
                    &lossy,
                    "setuid, setgid or sticky bit set",
                ));
            }
            self.entries += 1;
            if self.entries > self.limits.max_entries {
                return Err(Error::TooManyEntries {
                    limit: self.limits.max_entries,
                });
            }
            let is_dir = matches!(kind, Kind::Dir);
            let Some(path) = path::normalize(&raw_path, is_dir)
                .map_err(|reason| Error::unsafe_entry(&lossy, reason))?
            else {
                continue; // the archive root itself
            };
            self.claim(&path, is_dir)?;

            // Judge the declared size before reading a byte of content.
            let size = entry.size();
            self.content_bytes = self.content_bytes.saturating_add(size);
            if self.content_bytes > self.limits.max_uncompressed_bytes {
                return Err(Error::UncompressedTooLarge {
                    limit: self.limits.max_uncompressed_bytes,
                });
            }
            match kind {
                Kind::Dir => visitor.dir(&path)?,
                Kind::File => {
                    let file_mode = if mode & 0o100 != 0 { 0o755 } else { 0o644 };
                    visitor.file_start(&path, file_mode, size)?;
                    copy_contents(&mut entry, size, &path, visitor)?;
                    visitor.file_end()?;
                }
            }
        }
        Ok(())
    }

    /// Refuses duplicates and a file standing where a directory is needed (or the reverse).
    fn claim(&mut self, path: &str, is_dir: bool) -> Result<(), Error> {
        if self.files.contains(path) {
            return Err(Error::unsafe_entry(path, "duplicate path"));
        }
        if !is_dir && self.dirs.contains(path) {
            return Err(Error::unsafe_entry(
                path,
                "a directory of the same name exists",
            ));
        }
        for ancestor in path::ancestors(path) {
            if self.files.contains(ancestor) {
                return Err(Error::unsafe_entry(path, "a parent path is a file"));
            }
            self.dirs.insert(ancestor.to_owned());
        }
        let set = if is_dir {
            &mut self.dirs
        } else {
            &mut self.files
        };
        set.insert(path.to_owned());
        Ok(())
    }
}

fn copy_contents(
    entry: &mut impl Read,
    size: u64,
    path: &str,
    visitor: &mut dyn Visitor,
) -> Result<(), Error> {
    let mut buf = vec![0u8; CHUNK];
    let mut read = 0u64;
    loop {
        let n = entry.read(&mut buf).map_err(|e| malformed(&e))?;
        if n == 0 {
            break;
        }
        read += n as u64;
        visitor.file_chunk(&buf[..n])?;
    }
    if read != size {
        return Err(Error::Malformed(format!(
            "\"{path}\" is truncated: {read} of {size} bytes"
        )));
    }
    Ok(())
}

fn describe(kind: tar::EntryType) -> String {
    match kind {
        tar::EntryType::Symlink => "symbolic links are not allowed".into(),
        tar::EntryType::Link => "hard links are not allowed".into(),
        tar::EntryType::Char | tar::EntryType::Block => "device files are not allowed".into(),
        tar::EntryType::Fifo => "FIFOs are not allowed".into(),
        other => format!(
            "entry type '{}' is not allowed; only regular files and directories are",
            other.as_byte().escape_ascii()
        ),
    }
}

/// Stops the decompressed stream at `cap` bytes, so a gzip bomb cannot make us read (or allocate)
/// more than that, whatever the tar headers claim.
struct CappedReader<R> {
    inner: R,
    cap: u64,
    total: u64,
    exceeded: bool,
}

impl<R: Read> CappedReader<R> {
    fn new(inner: R, cap: u64) -> Self {
        CappedReader {
            inner,
            cap,
            total: 0,
            exceeded: false,
        }
    }
}

impl<R: Read> Read for CappedReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if buf.is_empty() {
            return Ok(0);
        }
        let remaining = self.cap - self.total;
        if remaining == 0 {
            // At the cap: only a clean end of stream is acceptable.
            let mut probe = [0u8; 1];
            if self.inner.read(&mut probe)? == 0 {
                return Ok(0);
            }
            self.exceeded = true;
            return Err(io::Error::other("decompressed size limit exceeded"));
        }
        let len = buf
            .len()
            .min(usize::try_from(remaining).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..len])?;
        self.total += n as u64;
        Ok(n)
    }
}
