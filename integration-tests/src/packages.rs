//! Agent packages built in memory for tests.

use std::path::Path;

use flate2::Compression;
use flate2::write::GzEncoder;

/// A gzip tar of regular files `(path, contents)`.
pub fn tar_gz(files: &[(&str, &[u8])]) -> Vec<u8> {
    let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::default()));
    for (path, contents) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(contents.len() as u64);
        header.set_mode(0o644);
        header.set_entry_type(tar::EntryType::Regular);
        builder
            .append_data(&mut header, path, *contents)
            .expect("append to an in-memory tar");
    }
    builder
        .into_inner()
        .and_then(|gz| gz.finish())
        .expect("finish an in-memory tar")
}

/// A minimal valid Node.js agent.
pub fn node_agent(slug: &str, version: &str, code: &str) -> Vec<u8> {
    let manifest = serde_json::json!({
        "name": slug,
        "version": version,
        "runtime": "node",
        "entrypoint": "index.js",
        "description": "test agent",
        "inputs": {"type": "object", "properties": {"text": {"type": "string"}}},
        "resources": {"cpu_cores": 0.5, "memory_mb": 128, "timeout_ms": 10000}
    });
    tar_gz(&[
        ("agent.json", manifest.to_string().as_bytes()),
        ("index.js", code.as_bytes()),
    ])
}

/// A package of one of the agents under `examples/agents/`.
pub fn example(name: &str) -> Vec<u8> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../examples/agents")
        .join(name);
    let mut files: Vec<(String, Vec<u8>)> = Vec::new();
    collect(&dir, &dir, &mut files);
    files.sort();
    let refs: Vec<(&str, &[u8])> = files
        .iter()
        .map(|(p, c)| (p.as_str(), c.as_slice()))
        .collect();
    tar_gz(&refs)
}

fn collect(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
    for entry in std::fs::read_dir(dir).expect("read example dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            collect(root, &path, out);
        } else {
            let relative = path
                .strip_prefix(root)
                .expect("under root")
                .to_string_lossy()
                .replace('\\', "/");
            out.push((relative, std::fs::read(&path).expect("read example file")));
        }
    }
}

/// A Python agent with a permissive inputs schema.
pub fn python_agent(
    slug: &str,
    version: &str,
    code: &str,
    timeout_ms: u64,
    memory_mb: u64,
) -> Vec<u8> {
    let manifest = serde_json::json!({
        "name": slug,
        "version": version,
        "runtime": "python",
        "entrypoint": "main.py",
        "inputs": {"type": "object"},
        "resources": {"cpu_cores": 0.5, "memory_mb": memory_mb, "timeout_ms": timeout_ms}
    });
    tar_gz(&[
        ("agent.json", manifest.to_string().as_bytes()),
        ("main.py", code.as_bytes()),
    ])
}

/// A Node.js agent with explicit resources.
pub fn node_agent_with(slug: &str, code: &str, timeout_ms: u64, memory_mb: u64) -> Vec<u8> {
    let manifest = serde_json::json!({
        "name": slug,
        "version": "1.0.0",
        "runtime": "node",
        "entrypoint": "index.js",
        "inputs": {"type": "object"},
        "resources": {"cpu_cores": 0.5, "memory_mb": memory_mb, "timeout_ms": timeout_ms}
    });
    tar_gz(&[
        ("agent.json", manifest.to_string().as_bytes()),
        ("index.js", code.as_bytes()),
    ])
}
