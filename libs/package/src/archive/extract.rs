//! Writing a validated archive to disk with our own code (never tar's unpack).
//!
//! `dest` starts empty and we only ever create plain directories and files with `create_new`,
//! so no link can exist under it for us to follow.

use std::fs::{self, DirBuilder, OpenOptions, Permissions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::{path, walk};
use crate::{Error, Limits};

const DIR_MODE: u32 = 0o755;

pub(super) fn extract(bytes: &[u8], dest: &Path, limits: &Limits) -> Result<(), Error> {
    ensure_empty_dir(dest)?;
    let mut writer = Writer {
        dest,
        current: None,
    };
    let outcome = walk::walk(bytes, limits, &mut writer);
    drop(writer.current.take());
    if outcome.is_err() {
        clear(dest);
    }
    outcome.map(|_| ())
}

fn ensure_empty_dir(dest: &Path) -> Result<(), Error> {
    let refuse = |reason: String| Error::Destination {
        path: dest.display().to_string(),
        reason,
    };
    let mut listing = fs::read_dir(dest).map_err(|e| refuse(e.to_string()))?;
    if listing.next().is_some() {
        return Err(refuse("the directory is not empty".into()));
    }
    Ok(())
}

/// Best effort: the caller gets the original error either way.
fn clear(dest: &Path) {
    let Ok(listing) = fs::read_dir(dest) else {
        return;
    };
    for entry in listing.flatten() {
        let path = entry.path();
        let _ = match entry.file_type() {
            Ok(kind) if kind.is_dir() => fs::remove_dir_all(&path),
            _ => fs::remove_file(&path),
        };
    }
}

struct Open {
    file: fs::File,
    target: PathBuf,
    rel: String,
    mode: u32,
}

struct Writer<'d> {
    dest: &'d Path,
    current: Option<Open>,
}

impl Writer<'_> {
    fn io_error(rel: &str) -> impl FnOnce(io::Error) -> Error + '_ {
        move |source| Error::Io {
            path: rel.to_owned(),
            source,
        }
    }

    /// Creates `rel` and its parents one level at a time, refusing anything but real directories.
    fn make_dirs(&self, rel: &str) -> Result<(), Error> {
        for dir in path::ancestors(rel).chain(std::iter::once(rel)) {
            let target = self.dest.join(dir);
            match fs::symlink_metadata(&target) {
                Ok(meta) if meta.is_dir() => continue,
                Ok(_) => {
                    let source = io::Error::other("exists and is not a directory");
                    return Err(Writer::io_error(dir)(source));
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(Writer::io_error(dir)(e)),
            }
            DirBuilder::new()
                .mode(DIR_MODE)
                .create(&target)
                .and_then(|()| fs::set_permissions(&target, Permissions::from_mode(DIR_MODE)))
                .map_err(Writer::io_error(dir))?;
        }
        Ok(())
    }
}

impl walk::Visitor for Writer<'_> {
    fn dir(&mut self, rel: &str) -> Result<(), Error> {
        self.make_dirs(rel)
    }

    fn file_start(&mut self, rel: &str, mode: u32, _size: u64) -> Result<(), Error> {
        if let Some((parent, _)) = rel.rsplit_once('/') {
            self.make_dirs(parent)?;
        }
        let target = self.dest.join(rel);
        let file = OpenOptions::new()
            .write(true)
            .create_new(true) // O_EXCL: never follows or overwrites anything already there
            .mode(mode)
            .open(&target)
            .map_err(Writer::io_error(rel))?;
        self.current = Some(Open {
            file,
            target,
            rel: rel.to_owned(),
            mode,
        });
        Ok(())
    }

    fn file_chunk(&mut self, chunk: &[u8]) -> Result<(), Error> {
        match &mut self.current {
            Some(open) => open
                .file
                .write_all(chunk)
                .map_err(Writer::io_error(&open.rel)),
            None => Ok(()),
        }
    }

    fn file_end(&mut self) -> Result<(), Error> {
        let Some(open) = self.current.take() else {
            return Ok(());
        };
        drop(open.file);
        // The umask may have narrowed the mode given to open().
        fs::set_permissions(&open.target, Permissions::from_mode(open.mode))
            .map_err(Writer::io_error(&open.rel))
    }
}
