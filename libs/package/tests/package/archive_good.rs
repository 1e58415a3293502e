//! A well-formed archive is read and extracted faithfully.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use frameos_core::ErrorCode;
use frameos_package::{Limits, archive};
use tar::{EntryType, Header};

use crate::support::{self, dir, file, special, targz};

fn sample() -> Vec<u8> {
    let mut tool = file("./bin/tool.py", b"print('hi')\n");
    tool.mode = 0o775;
    let mut private = file("./lib/deep/data.json", b"{}");
    private.mode = 0o600;
    targz(&[
        dir("./"),
        dir("./bin/"),
        tool,
        file("./index.js", b"module.exports = 1;\n"),
        private, // its parents were never listed
    ])
}

/// Every path under `root`, relative, sorted.
fn tree(root: &Path) -> Vec<String> {
    let mut found = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let rel = path
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            if fs::symlink_metadata(&path).unwrap().is_dir() {
                stack.push(path);
            }
            found.push(rel);
        }
    }
    found.sort();
    found
}

fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
}

#[test]
fn inspect_lists_files_with_normalized_paths_and_modes() {
    let archive = archive::inspect(&sample(), &Limits::default()).unwrap();
    let paths: Vec<_> = archive.files.iter().map(|f| f.path.as_str()).collect();
    assert_eq!(paths, ["bin/tool.py", "index.js", "lib/deep/data.json"]);
    assert_eq!(archive.get("bin/tool.py").unwrap().mode, 0o755);
    assert_eq!(archive.get("lib/deep/data.json").unwrap().mode, 0o644);
    assert_eq!(
        archive.get("index.js").unwrap().contents,
        b"module.exports = 1;\n"
    );
    assert_eq!(archive.uncompressed_bytes, 12 + 20 + 2);
    assert!(archive.get("bin").is_none(), "directories are not listed");
    assert!(archive.get("./index.js").is_none());
}

#[test]
fn pax_global_headers_from_git_archive_are_ignored() {
    let mut tar = Vec::new();
    let record = b"52 comment=0123456789012345678901234567890123456789\n";
    let mut global = Header::new_ustar();
    global.as_old_mut().name[..17].copy_from_slice(b"pax_global_header");
    global.set_entry_type(EntryType::XGlobalHeader);
    global.set_size(record.len() as u64);
    global.set_cksum();
    support::append_raw(&mut tar, &global, record);
    support::append_raw(&mut tar, &support::header(&file("a.js", b"1")), b"1");
    tar.extend_from_slice(&[0; 1024]);
    let archive = archive::inspect(&support::gzip(&tar), &Limits::default()).unwrap();
    assert_eq!(archive.files.len(), 1);
}

#[test]
fn archives_written_by_the_tar_builder_are_accepted() {
    let mut builder = tar::Builder::new(Vec::new());
    let long_name = format!("{}/main.py", "nested".repeat(30)); // needs a GNU long-name entry
    let mut header = Header::new_gnu();
    header.set_size(3);
    header.set_mode(0o644);
    builder
        .append_data(&mut header, &long_name, &b"x=1"[..])
        .unwrap();
    let bytes = support::gzip(&builder.into_inner().unwrap());
    let archive = archive::inspect(&bytes, &Limits::default()).unwrap();
    assert_eq!(archive.files[0].path, long_name);
}

#[test]
fn extract_writes_exactly_the_archive() {
    let root = tempfile::tempdir().unwrap();
    let dest = root.path().join("out");
    fs::create_dir(&dest).unwrap();
    archive::extract(&sample(), &dest, &Limits::default()).unwrap();

    assert_eq!(
        tree(&dest),
        [
            "bin",
            "bin/tool.py",
            "index.js",
            "lib",
            "lib/deep",
            "lib/deep/data.json"
        ]
    );
    assert_eq!(
        fs::read(dest.join("index.js")).unwrap(),
        b"module.exports = 1;\n"
    );
    assert_eq!(
        fs::read(dest.join("bin/tool.py")).unwrap(),
        b"print('hi')\n"
    );
    assert_eq!(mode(&dest.join("bin/tool.py")), 0o755);
    assert_eq!(mode(&dest.join("index.js")), 0o644);
    assert_eq!(mode(&dest.join("lib/deep/data.json")), 0o644);
    assert_eq!(mode(&dest.join("lib/deep")), 0o755);
    assert_eq!(tree(root.path()).len(), 7, "nothing beside dest");
}

#[test]
fn a_malicious_extract_fails_and_leaves_nothing_behind() {
    let cases = [
        targz(&[file("ok.js", b"1"), file("../escaped", b"x")]),
        targz(&[file("ok.js", b"1"), file("/tmp/escaped", b"x")]),
        targz(&[dir("sub/"), special("sub/link", EntryType::Symlink, "..")]),
        targz(&[file("a/ok.js", b"1"), file("a/../../escaped", b"x")]),
    ];
    for bytes in cases {
        let root = tempfile::tempdir().unwrap();
        let dest = root.path().join("out");
        fs::create_dir(&dest).unwrap();
        let error = archive::extract(&bytes, &dest, &Limits::default()).unwrap_err();
        assert_eq!(error.code(), ErrorCode::UnsafeArchive, "{error}");
        assert_eq!(tree(root.path()), ["out"], "only the empty dest remains");
    }
    assert!(!Path::new("/tmp/escaped").exists());
}

#[test]
fn extract_refuses_a_missing_or_non_empty_destination() {
    let root = tempfile::tempdir().unwrap();
    let missing = archive::extract(&sample(), &root.path().join("nope"), &Limits::default());
    assert_eq!(missing.unwrap_err().code(), ErrorCode::Internal);

    fs::write(root.path().join("existing"), b"keep me").unwrap();
    let busy = archive::extract(&sample(), root.path(), &Limits::default());
    assert_eq!(busy.unwrap_err().code(), ErrorCode::Internal);
    assert_eq!(fs::read(root.path().join("existing")).unwrap(), b"keep me");
}

#[test]
fn extract_enforces_the_size_limits() {
    let root = tempfile::tempdir().unwrap();
    let limits = Limits {
        max_uncompressed_bytes: 10,
        ..Limits::default()
    };
    let bytes = targz(&[file("a", b"12345"), file("b", b"1234567")]);
    let error = archive::extract(&bytes, root.path(), &limits).unwrap_err();
    assert_eq!(error.code(), ErrorCode::PackageTooLarge);
    assert!(tree(root.path()).is_empty());
}
