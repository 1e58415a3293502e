//! A warm container's `/agent`: a host directory, empty while the container waits, filled with
//! one execution's package at hand-off and deleted with the container. The container sees it
//! through a read-only bind mount, exactly as a cold container sees the package directory.

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

/// Directories and copied files: readable (and directories searchable) by the container's
/// user, writable by the node alone. The mount is read-only besides.
const DIR_MODE: u32 = 0o755;
const FILE_MODE: u32 = 0o644;
const EXEC_MODE: u32 = 0o755;

#[derive(Debug)]
pub(crate) struct Slot {
    path: PathBuf,
}

impl Slot {
    /// An empty directory under `base` (created if missing).
    pub fn create(base: &Path, name: &str) -> io::Result<Slot> {
        fs::create_dir_all(base)?;
        let path = base.join(name);
        fs::create_dir(&path)?;
        fs::set_permissions(&path, fs::Permissions::from_mode(DIR_MODE))?;
        Ok(Slot { path })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Deletes the slot and everything in it (as dropping it does). Blocking.
    pub fn remove(self) {
        drop(self);
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if let Err(e) = fs::remove_dir_all(&self.path)
            && e.kind() != io::ErrorKind::NotFound
        {
            tracing::warn!(slot = %self.path.display(), error = %e, "removing slot failed");
        }
    }
}

/// Fills the (empty) slot directory `to` with the package at `from`: hard links where the
/// file system allows (no bytes copied), copies otherwise. Blocking.
pub(crate) fn fill(from: &Path, to: &Path) -> io::Result<()> {
    for entry in fs::read_dir(from)? {
        let entry = entry?;
        let source = entry.path();
        let target = to.join(entry.file_name());
        let kind = entry.file_type()?;
        if kind.is_dir() {
            fs::create_dir(&target)?;
            fs::set_permissions(&target, fs::Permissions::from_mode(DIR_MODE))?;
            fill(&source, &target)?;
        } else if kind.is_symlink() {
            // As the cold path's mount shows it: the link itself, resolved inside the container.
            std::os::unix::fs::symlink(fs::read_link(&source)?, &target)?;
        } else if kind.is_file() && fs::hard_link(&source, &target).is_err() {
            fs::copy(&source, &target)?;
            let executable = entry.metadata()?.permissions().mode() & 0o111 != 0;
            let mode = if executable { EXEC_MODE } else { FILE_MODE };
            fs::set_permissions(&target, fs::Permissions::from_mode(mode))?;
        }
        // Sockets, fifos and devices are not part of a package; they are left out.
    }
    Ok(())
}

/// Deletes every slot under `base` (a node's slot directory), as `remove_stale` does at start.
pub(crate) fn sweep(base: &Path) -> usize {
    let Ok(entries) = fs::read_dir(base) else {
        return 0;
    };
    let mut removed = 0;
    for entry in entries.flatten() {
        if fs::remove_dir_all(entry.path()).is_ok() {
            removed += 1;
        }
    }
    removed
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use std::os::unix::fs::MetadataExt;

    #[test]
    fn a_slot_holds_the_package_as_links_and_is_gone_after_remove() {
        let package = tempfile::tempdir().unwrap();
        fs::create_dir(package.path().join("lib")).unwrap();
        fs::write(package.path().join("index.js"), "x").unwrap();
        fs::write(package.path().join("lib/util.js"), "y").unwrap();
        std::os::unix::fs::symlink("lib/util.js", package.path().join("alias.js")).unwrap();
        let base = tempfile::tempdir().unwrap();
        let slot = Slot::create(base.path(), "s1").unwrap();
        assert_eq!(fs::read_dir(slot.path()).unwrap().count(), 0);
        fill(package.path(), slot.path()).unwrap();
        let copied = slot.path().join("lib/util.js");
        assert_eq!(fs::read_to_string(&copied).unwrap(), "y");
        // Same file system here: a hard link, the package's own inode.
        let original = fs::metadata(package.path().join("lib/util.js")).unwrap();
        assert_eq!(fs::metadata(&copied).unwrap().ino(), original.ino());
        assert_eq!(
            fs::read_link(slot.path().join("alias.js")).unwrap(),
            Path::new("lib/util.js")
        );
        let mode = fs::metadata(slot.path().join("lib")).unwrap().mode() & 0o777;
        assert_eq!(mode, DIR_MODE);
        let path = slot.path().to_path_buf();
        slot.remove();
        assert!(!path.exists());
        assert!(package.path().join("lib/util.js").exists());
    }
}
