//! Packing an agent directory into the gzip tar of API.md §1.

use std::path::Path;

use anyhow::{Context, bail};
use flate2::Compression;
use flate2::write::GzEncoder;

/// Directories that never belong in a package.
const SKIPPED: &[&str] = &[".git", ".frameos", "__pycache__", ".DS_Store"];

/// Regular files and directories only, in a stable order, with normalized modes and owners so
/// that the same tree always gives the same bytes.
pub fn directory(root: &Path) -> anyhow::Result<Vec<u8>> {
    let mut files = Vec::new();
    walk(root, root, &mut files)?;
    files.sort();
    let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::best()));
    builder.mode(tar::HeaderMode::Deterministic);
    for relative in files {
        let path = root.join(&relative);
        let data = std::fs::read(&path).with_context(|| format!("reading {}", path.display()))?;
        let mut header = tar::Header::new_gnu();
        header.set_size(data.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        builder
            .append_data(&mut header, &relative, data.as_slice())
            .with_context(|| format!("adding {relative}"))?;
    }
    Ok(builder.into_inner()?.finish()?)
}

fn walk(root: &Path, dir: &Path, out: &mut Vec<String>) -> anyhow::Result<()> {
    for entry in std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().to_string();
        if SKIPPED.contains(&name.as_str()) {
            continue;
        }
        let path = entry.path();
        let kind = entry.file_type()?;
        if kind.is_symlink() {
            bail!(
                "{} is a symbolic link; packages hold regular files only",
                path.display()
            );
        } else if kind.is_dir() {
            walk(root, &path, out)?;
        } else if kind.is_file() {
            let relative = path
                .strip_prefix(root)?
                .to_string_lossy()
                .replace('\\', "/");
            out.push(relative);
        } else {
            bail!("{} is not a regular file", path.display());
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn packs_regular_files_deterministically() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("agent.json"), "{}").unwrap();
        std::fs::create_dir_all(dir.path().join("lib/.git")).unwrap();
        std::fs::write(dir.path().join("lib/util.js"), "x").unwrap();
        std::fs::write(dir.path().join("lib/.git/HEAD"), "ref").unwrap();
        let a = directory(dir.path()).unwrap();
        let b = directory(dir.path()).unwrap();
        assert_eq!(a, b);
        let mut tar = Vec::new();
        flate2::read::GzDecoder::new(a.as_slice())
            .read_to_end(&mut tar)
            .unwrap();
        let mut archive = tar::Archive::new(tar.as_slice());
        let names: Vec<String> = archive
            .entries()
            .unwrap()
            .map(|e| e.unwrap().path().unwrap().to_string_lossy().to_string())
            .collect();
        assert_eq!(names, vec!["agent.json", "lib/util.js"]);
    }

    #[test]
    fn refuses_symlinks() {
        let dir = tempfile::tempdir().unwrap();
        std::os::unix::fs::symlink("/etc/passwd", dir.path().join("passwd")).unwrap();
        let err = directory(dir.path()).unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
    }
}
