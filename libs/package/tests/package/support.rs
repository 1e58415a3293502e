//! Builds good and malicious archives in memory. Headers are written byte by byte where tar's
//! safe setters would refuse (or silently fix) a path.

use std::io::Write;

use flate2::Compression;
use flate2::write::GzEncoder;
use tar::{EntryType, Header};

/// One tar entry as the attacker wants it, raw name bytes included.
pub struct Entry<'a> {
    pub name: &'a [u8],
    pub kind: EntryType,
    pub mode: u32,
    pub data: &'a [u8],
    pub link: &'a [u8],
}

pub fn file<'a>(name: &'a str, data: &'a [u8]) -> Entry<'a> {
    Entry {
        name: name.as_bytes(),
        kind: EntryType::Regular,
        mode: 0o644,
        data,
        link: b"",
    }
}

pub fn dir(name: &str) -> Entry<'_> {
    Entry {
        name: name.as_bytes(),
        kind: EntryType::Directory,
        mode: 0o755,
        data: b"",
        link: b"",
    }
}

pub fn special<'a>(name: &'a str, kind: EntryType, link: &'a str) -> Entry<'a> {
    Entry {
        name: name.as_bytes(),
        kind,
        mode: 0o644,
        data: b"",
        link: link.as_bytes(),
    }
}

pub fn header(entry: &Entry<'_>) -> Header {
    let mut header = Header::new_gnu();
    let old = header.as_old_mut();
    old.name[..entry.name.len()].copy_from_slice(entry.name);
    old.linkname[..entry.link.len()].copy_from_slice(entry.link);
    header.set_entry_type(entry.kind);
    header.set_mode(entry.mode);
    header.set_size(entry.data.len() as u64);
    header.set_mtime(0);
    header.set_cksum();
    header
}

/// An uncompressed tar of `entries`, followed by the end-of-archive blocks.
pub fn tar(entries: &[Entry<'_>]) -> Vec<u8> {
    let mut out = Vec::new();
    for entry in entries {
        append_raw(&mut out, &header(entry), entry.data);
    }
    out.extend_from_slice(&[0u8; 1024]);
    out
}

pub fn append_raw(out: &mut Vec<u8>, header: &Header, data: &[u8]) {
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    out.resize(out.len().next_multiple_of(512), 0);
}

pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

pub fn targz(entries: &[Entry<'_>]) -> Vec<u8> {
    gzip(&tar(entries))
}

/// A gzip stream of `header` then `zeros` zero bytes, built without holding the zeros in memory.
pub fn gzip_with_zeros(prefix: &[u8], zeros: u64) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
    encoder.write_all(prefix).unwrap();
    let chunk = vec![0u8; 1 << 20];
    let mut left = zeros;
    while left > 0 {
        let n = left.min(chunk.len() as u64) as usize;
        encoder.write_all(&chunk[..n]).unwrap();
        left -= n as u64;
    }
    encoder.finish().unwrap()
}

pub const INDEX_JS: &[u8] = b"module.exports = async (inputs) => inputs;\n";

pub fn manifest_json(name: &str, entrypoint: &str) -> String {
    format!(
        r#"{{"name":"{name}","version":"1.0.0","runtime":"node","entrypoint":"{entrypoint}","inputs":{{"type":"object"}}}}"#
    )
}

/// A well-formed agent package named `word-count`.
pub fn good_package() -> Vec<u8> {
    let manifest = manifest_json("word-count", "index.js");
    targz(&[
        dir("./"),
        file("./agent.json", manifest.as_bytes()),
        file("./index.js", INDEX_JS),
    ])
}
