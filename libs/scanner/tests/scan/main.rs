//! One test binary for the scanner.
#![allow(clippy::unwrap_used)]

mod agreement;
mod keys;
mod node;
mod other;
mod python;
mod whole_file;

use frameos_scanner::scan;

/// The (rule, line) findings for one file.
pub fn hits(path: &str, source: &str) -> Vec<(String, u32)> {
    scan([(path, source.as_bytes())])
        .violations
        .into_iter()
        .map(|v| (v.rule, v.line))
        .collect()
}

/// Asserts `source` hits `rule` (on line 1) and nothing else.
#[track_caller]
pub fn assert_hit(path: &str, source: &str, rule: &str) {
    assert_eq!(hits(path, source), [(rule.to_owned(), 1)], "{source:?}");
}

/// Asserts `source` hits nothing at all.
#[track_caller]
pub fn assert_clean(path: &str, source: &str) {
    assert_eq!(hits(path, source), [], "{source:?}");
}
