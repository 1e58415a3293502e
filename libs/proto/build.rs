//! Compiles proto/frameos/v1 with protox (pure Rust: no system `protoc` needed).

use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR")?).join("../../proto");
    let files = [
        "accounts",
        "agents",
        "billing",
        "executions",
        "keys",
        "node",
        "schedules",
        "secrets",
        "webhooks",
    ]
    .map(|name| root.join(format!("frameos/v1/{name}.proto")));
    for file in &files {
        println!("cargo:rerun-if-changed={}", file.display());
    }
    let descriptors = protox::compile(&files, [&root])?;
    let out_dir = PathBuf::from(std::env::var("OUT_DIR")?);
    std::fs::write(
        out_dir.join("frameos_descriptor.bin"),
        prost::Message::encode_to_vec(&descriptors),
    )?;
    // Small per-call buffers: many event streams stay open at once (ADR 0030).
    tonic_prost_build::configure()
        .codec_path("crate::codec::SmallBuffers")
        // Messages holding a secret's value: their Debug is written by hand (src/secrets.rs).
        .skip_debug([".frameos.v1.RunSecret", ".frameos.v1.PutSecretRequest"])
        .compile_fds(descriptors)?;
    Ok(())
}
