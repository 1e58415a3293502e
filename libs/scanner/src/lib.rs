//! Static scanner run on every uploaded agent version.
//!
//! It looks for code that tries to leave the sandbox (spawning processes, evaluating strings,
//! native code, raw sockets), for wallet addresses and for key-like hex literals. A High finding fails the scan; Medium findings are
//! shown to the admin reviewer. The sandbox stays the real boundary: this is a cheap first filter.

mod hex_key;
mod native;
mod patterns;
mod rules;
mod search;
mod wallet;

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};

pub use rules::{Language, Rule, rules};

/// At most this many lines are reported per rule and file (the first ones): a file full of
/// `eval(` would otherwise make a report of millions of findings. The verdict is unaffected.
pub const MAX_LINES_PER_RULE: usize = 100;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Low,
    Medium,
    High,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Violation {
    pub rule: String,
    pub severity: Severity,
    pub path: String,
    /// 1-based.
    pub line: u32,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Report {
    /// No High finding.
    pub passed: bool,
    /// One per (rule, path, line), the first [`MAX_LINES_PER_RULE`] lines of each rule in a
    /// file, ordered by path, line, rule.
    pub violations: Vec<Violation>,
}

/// Scans `(path, contents)` pairs, every byte of every file: the package limits
/// (`FRAMEOS_MAX_UNPACKED_BYTES`) bound the work, and each pattern runs in linear time.
/// Nothing is skipped (node_modules is code too).
pub fn scan<'a>(files: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> Report {
    let mut found: BTreeMap<(&'a str, &'static str), BTreeSet<u32>> = BTreeMap::new();
    for (path, contents) in files {
        if native::is_native(path, contents) {
            found
                .entry((path, "binary.native_code"))
                .or_default()
                .insert(1);
        }
        let language = Language::of(path);
        // Source files are read even if not quite UTF-8, so a stray byte cannot hide a call;
        // other files are text only if they are UTF-8 throughout.
        let text = match language {
            Some(_) => String::from_utf8_lossy(contents),
            None => match std::str::from_utf8(contents) {
                Ok(text) => Cow::Borrowed(text),
                Err(_) => continue,
            },
        };
        let patterns = match language {
            Some(Language::Node) => &*patterns::NODE,
            Some(Language::Python) => &*patterns::PYTHON,
            _ => &*patterns::TEXT,
        };
        for pattern in patterns.matching(&text) {
            search::collect(
                pattern,
                &text,
                found.entry((path, pattern.rule)).or_default(),
            );
        }
    }
    let mut violations: Vec<Violation> = found
        .into_iter()
        .flat_map(|((path, rule), lines)| {
            lines.into_iter().map(move |line| Violation {
                rule: rule.to_owned(),
                severity: rules::severity_of(rule),
                path: path.to_owned(),
                line,
            })
        })
        .collect();
    violations.sort_by(|a, b| (&a.path, a.line, &a.rule).cmp(&(&b.path, b.line, &b.rule)));
    Report {
        passed: violations.iter().all(|v| v.severity != Severity::High),
        violations,
    }
}
