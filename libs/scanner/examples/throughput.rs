//! Times the scanner on 50 MiB files (the default unpacked limit), ordinary and hostile.
//!
//! `cargo run --release -p frameos-scanner --example throughput`
//!
//! Prints wall time and, on Linux, the thread's CPU time (a busy machine inflates the first).

use std::time::Instant;

const SIZE: usize = 50 << 20;
const EXAMPLES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/agents");

/// `head`, `unit` repeated up to `SIZE` bytes, then `tail`.
fn file(head: &str, unit: &str, tail: &str) -> Vec<u8> {
    let mut text = head.as_bytes().to_vec();
    text.extend(
        unit.repeat((SIZE - head.len() - tail.len()) / unit.len())
            .into_bytes(),
    );
    text.extend_from_slice(tail.as_bytes());
    text
}

fn fill(unit: &str, tail: &str) -> Vec<u8> {
    file("", unit, tail)
}

/// Pseudo-random hex digits (xorshift), `len` of them.
fn random_hex(len: usize, seed: u64) -> String {
    let mut state = seed | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            char::from(b"0123456789abcdef"[(state & 15) as usize])
        })
        .collect()
}

/// Nanoseconds this thread has run on a CPU (Linux), if known.
fn cpu_nanos() -> Option<u64> {
    let stat = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    stat.split_whitespace().next()?.parse().ok()
}

fn main() {
    let js = std::fs::read_to_string(format!("{EXAMPLES}/json-transform/index.js"))
        .expect("the json-transform example agent");
    let py = std::fs::read_to_string(format!("{EXAMPLES}/sentiment/main.py"))
        .expect("the sentiment example agent");
    let hex_tokens: String = (0..64)
        .map(|i| format!("{} ", random_hex(64, i + 1)))
        .collect();
    let digests: String = (0..64)
        .map(|i| format!("sha256:{} ", random_hex(64, i + 1)))
        .collect();
    let cases: Vec<(&str, &str, Vec<u8>)> = vec![
        ("spaces, eval at the end", "index.js", fill(" ", "eval(x)")),
        (
            "the json-transform agent repeated",
            "index.js",
            fill(&js, ""),
        ),
        ("the sentiment agent repeated", "main.py", fill(&py, "")),
        (
            "non-ASCII prose",
            "index.js",
            fill("Grüße, 世界! Ünïcödé ", ""),
        ),
        ("newlines only", "index.js", fill("\n", "")),
        ("an eval on every line", "index.js", fill("eval(x)\n", "")),
        (
            "an eval on every line (python)",
            "main.py",
            fill("eval(x)\n", ""),
        ),
        ("one long line of evals", "index.js", fill("eval(x);", "")),
        (
            "random hex, one run",
            "data.txt",
            fill(&random_hex(1 << 16, 7), ""),
        ),
        ("random 64-digit keys", "data.txt", fill(&hex_tokens, "")),
        (
            "sha256: digests (no finding)",
            "data.txt",
            fill(&digests, ""),
        ),
        (
            "from os import ( over the whole file",
            "main.py",
            file("from os import (", "a ", "system"),
        ),
        (
            "import lines without a module",
            "main.py",
            fill("import a, b, c\n", ""),
        ),
        (
            "require( 50 MiB of spaces 'net')",
            "index.js",
            file("require(", " ", "'net')"),
        ),
        (
            "from os import a, a, ... system",
            "main.py",
            file("from os import ", "a, ", "system"),
        ),
        (
            "def eval( on every line (python)",
            "main.py",
            fill("def eval(self):\n", ""),
        ),
    ];
    for (name, path, contents) in &cases {
        let (started, cpu_started) = (Instant::now(), cpu_nanos());
        let report = frameos_scanner::scan([(*path, contents.as_slice())]);
        let wall = started.elapsed().as_secs_f64();
        let cpu = cpu_started
            .zip(cpu_nanos())
            .map_or(wall, |(from, to)| (to - from) as f64 / 1e9);
        let mib = contents.len() as f64 / f64::from(1 << 20);
        println!(
            "{name:38} {path:8} {mib:4.0} MiB  wall {wall:6.3} s  cpu {cpu:6.3} s  {:6.0} MiB/s cpu  \
             {} finding(s), passed={}",
            mib / cpu,
            report.violations.len(),
            report.passed
        );
    }
}
