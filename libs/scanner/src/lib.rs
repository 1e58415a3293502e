//! Static scanner run on every uploaded agent version.
//!
//! It looks for code that tries to leave the sandbox (spawning processes, evaluating strings,
//! native code) and for wallet addresses. A High finding fails the scan; Medium findings are
//! shown to the admin reviewer. The sandbox stays the real boundary: this is a cheap first filter.

mod native;
mod patterns;
mod rules;
mod wallet;

use std::borrow::Cow;
use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

pub use rules::{Language, Rule, rules};

/// Only the first MiB of each file is read by the text rules, to bound the work per upload.
pub const MAX_SCANNED_BYTES: usize = 1 << 20;

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
    /// One per (rule, path, line), ordered by path, line, rule.
    pub violations: Vec<Violation>,
}

/// Scans `(path, contents)` pairs. Nothing is skipped (node_modules is code too).
pub fn scan<'a>(files: impl IntoIterator<Item = (&'a str, &'a [u8])>) -> Report {
    let mut found: BTreeSet<(&'a str, u32, &'static str)> = BTreeSet::new();
    for (path, contents) in files {
        if native::is_native(path, contents) {
            found.insert((path, 1, "binary.native_code"));
        }
        let head = &contents[..contents.len().min(MAX_SCANNED_BYTES)];
        let language = Language::of(path);
        // Source files are read even if not quite UTF-8, so a stray byte cannot hide a call.
        let text = match language {
            Some(_) => String::from_utf8_lossy(head),
            None => match utf8_prefix(head) {
                Some(text) => Cow::Borrowed(text),
                None => continue,
            },
        };
        let lines = LineIndex::new(&text);
        let mut apply = |patterns: &[patterns::Pattern]| {
            for (rule, offset) in matches(patterns, &text) {
                found.insert((path, lines.line_of(offset), rule));
            }
        };
        apply(&patterns::TEXT);
        match language {
            Some(Language::Node) => apply(&patterns::NODE),
            Some(Language::Python) => apply(&patterns::PYTHON),
            _ => {}
        }
    }
    let violations: Vec<Violation> = found
        .into_iter()
        .map(|(path, line, rule)| Violation {
            rule: rule.to_owned(),
            severity: rules::severity_of(rule),
            path: path.to_owned(),
            line,
        })
        .collect();
    Report {
        passed: violations.iter().all(|v| v.severity != Severity::High),
        violations,
    }
}

/// The UTF-8 text of `head`, tolerating a character cut in half by the size cap.
fn utf8_prefix(head: &[u8]) -> Option<&str> {
    match std::str::from_utf8(head) {
        Ok(text) => Some(text),
        Err(error) if error.error_len().is_none() => {
            std::str::from_utf8(&head[..error.valid_up_to()]).ok()
        }
        Err(_) => None,
    }
}

/// Every (rule, byte offset) hit of `patterns` in `text`.
fn matches<'p>(
    patterns: &'p [patterns::Pattern],
    text: &'p str,
) -> impl Iterator<Item = (&'static str, usize)> + 'p {
    patterns.iter().flat_map(move |pattern| {
        pattern
            .regex
            .captures_iter(text)
            .filter_map(move |captures| {
                if captures.name("skip").is_some() {
                    return None;
                }
                let hit = captures.name("at").or_else(|| captures.get(0))?;
                if pattern.verify.is_some_and(|verify| !verify(hit.as_str())) {
                    return None;
                }
                Some((pattern.rule, hit.start()))
            })
    })
}

/// Byte offset → 1-based line number.
struct LineIndex {
    newlines: Vec<usize>,
}

impl LineIndex {
    fn new(text: &str) -> Self {
        let newlines = text.match_indices('\n').map(|(i, _)| i).collect();
        LineIndex { newlines }
    }

    fn line_of(&self, offset: usize) -> u32 {
        let line = self.newlines.partition_point(|&newline| newline < offset) + 1;
        u32::try_from(line).unwrap_or(u32::MAX)
    }
}
