//! Runs one pattern over a whole file in linear time and bounded memory.
//!
//! Findings are reported per line, so after a hit the search resumes at the end of its line,
//! and once a rule has [`MAX_LINES_PER_RULE`] lines in a file a later hit cannot enter the
//! report and the pattern stops. Line numbers are counted forward from the previous hit (no
//! index of every newline, which for a file of newlines would be 8 bytes per byte).

use std::collections::BTreeSet;

use crate::MAX_LINES_PER_RULE;
use crate::patterns::{self, Pattern};

/// Adds the lines where `pattern` hits `text` to `lines` (one rule's lines in one file),
/// keeping the first [`MAX_LINES_PER_RULE`].
pub(crate) fn collect(pattern: &Pattern, text: &str, lines: &mut BTreeSet<u32>) {
    let mut counter = LineCounter::default();
    let mut from = 0;
    while let Some(found) = pattern.regex.find_at(text, from) {
        // No pattern matches the empty string, but never loop if one did.
        let after = if found.is_empty() {
            text.ceil_char_boundary(found.end() + 1)
        } else {
            found.end()
        };
        let hit = patterns::finding_start(text, found.range())..found.end();
        if pattern
            .verify
            .is_some_and(|verify| !verify(text, hit.clone()))
        {
            from = after;
            continue;
        }
        let line = counter.line_of(text, hit.start);
        if lines.len() >= MAX_LINES_PER_RULE && lines.last().is_some_and(|&last| line > last) {
            return;
        }
        lines.insert(line);
        if lines.len() > MAX_LINES_PER_RULE {
            lines.pop_last();
        }
        // Resume at the newline itself: patterns that need a character before the name
        // (`[^\w.]eval`) must be able to use it for a call at the start of the next line.
        let end_of_line = text[hit.start..]
            .find('\n')
            .map_or(text.len(), |newline| hit.start + newline);
        from = after.max(end_of_line);
        if from >= text.len() {
            return;
        }
    }
}

/// Byte offset → 1-based line number, for offsets that only grow.
#[derive(Default)]
struct LineCounter {
    offset: usize,
    newlines: usize,
}

impl LineCounter {
    fn line_of(&mut self, text: &str, offset: usize) -> u32 {
        debug_assert!(offset >= self.offset, "hits of one pattern come in order");
        let skipped = &text.as_bytes()[self.offset.min(offset)..offset];
        self.newlines += skipped.iter().filter(|&&byte| byte == b'\n').count();
        self.offset = offset;
        u32::try_from(self.newlines + 1).unwrap_or(u32::MAX)
    }
}
