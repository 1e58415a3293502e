//! Masking a run's secret values in what leaves the node (API.md §5.3): every byte that belongs
//! to an occurrence of any value becomes part of one `***`. One automaton per run (Aho-Corasick,
//! built once), so a line costs one pass whatever the number of secrets.

use std::borrow::Cow;
use std::collections::BTreeSet;

use aho_corasick::{AhoCorasick, AhoCorasickKind, MatchKind};

/// What a secret's occurrence is replaced by.
pub const MASK: &str = "***";
/// A multi-line value (a PEM key) reaches the log one line at a time: each of its lines this
/// long or longer is masked on its own too. Shorter lines (`}`, a blank one) would mask
/// ordinary output.
const MIN_FRAGMENT_BYTES: usize = 8;

/// The masker of one run. Without secrets it does nothing and costs nothing.
#[derive(Clone, Default)]
pub(crate) struct Redactor {
    automaton: Option<AhoCorasick>,
    /// The patterns, for masking a value cut off at the end of a truncated line.
    patterns: Vec<String>,
}

impl Redactor {
    pub(crate) fn new<'a>(values: impl IntoIterator<Item = &'a str>) -> Redactor {
        let mut patterns = BTreeSet::new();
        for value in values.into_iter().filter(|v| !v.is_empty()) {
            patterns.insert(value.to_string());
            if value.contains('\n') {
                let lines = value.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
                patterns.extend(
                    lines
                        .filter(|l| l.len() >= MIN_FRAGMENT_BYTES)
                        .map(str::to_string),
                );
            }
        }
        let patterns: Vec<String> = patterns.into_iter().collect();
        if patterns.is_empty() {
            return Redactor::default();
        }
        // Standard semantics: the only kind that reports overlapping matches, so that
        // overlapping values are masked as their union.
        // A noncontiguous NFA: the cheapest to build (100 values of 4 KiB are 400 K states),
        // and a line is still one pass behind the prefilter.
        let automaton = AhoCorasick::builder()
            .match_kind(MatchKind::Standard)
            .kind(Some(AhoCorasickKind::NoncontiguousNFA))
            .build(&patterns);
        match automaton {
            Ok(automaton) => Redactor {
                automaton: Some(automaton),
                patterns,
            },
            Err(e) => {
                // Only a pattern set far beyond 100 values of 4 KiB could; mask everything then.
                tracing::error!(error = %e, "secret masker could not be built; masking whole lines");
                Redactor {
                    automaton: None,
                    patterns: vec![String::new()],
                }
            }
        }
    }

    /// `text` with every occurrence of a secret masked; borrowed when there was none.
    pub(crate) fn redact<'t>(&self, text: &'t str) -> Cow<'t, str> {
        let Some(automaton) = &self.automaton else {
            if self.patterns.is_empty() {
                return Cow::Borrowed(text);
            }
            return Cow::Borrowed(MASK);
        };
        let mut spans: Vec<(usize, usize)> = automaton
            .find_overlapping_iter(text)
            .map(|m| (m.start(), m.end()))
            .collect();
        if spans.is_empty() {
            return Cow::Borrowed(text);
        }
        spans.sort_unstable();
        let mut out = String::with_capacity(text.len());
        // `text[..copied]` is handled; `current` is the masked span being grown.
        let mut copied = 0;
        let mut current: Option<(usize, usize)> = None;
        let flush = |out: &mut String, (start, end): (usize, usize), copied: &mut usize| {
            // Whole UTF-8 patterns match whole characters: spans are char boundaries.
            out.push_str(&text[*copied..start]);
            out.push_str(MASK);
            *copied = end;
        };
        for (start, end) in spans {
            match &mut current {
                Some((_, current_end)) if start <= *current_end => {
                    *current_end = (*current_end).max(end);
                }
                _ => {
                    if let Some(span) = current.take() {
                        flush(&mut out, span, &mut copied);
                    }
                    current = Some((start, end));
                }
            }
        }
        if let Some(span) = current {
            flush(&mut out, span, &mut copied);
        }
        out.push_str(&text[copied..]);
        Cow::Owned(out)
    }

    /// Masks what a cut left of a value at the end of `text`: a line truncated in the middle of
    /// a secret ends with a prefix of it. Only for text that was cut (rare), so plain loops.
    pub(crate) fn mask_cut_tail(&self, text: &mut String) {
        let mut longest = 0;
        for pattern in &self.patterns {
            let most = pattern.len().min(text.len() + 1);
            for k in (1..most).rev() {
                if k <= longest {
                    break;
                }
                if pattern.is_char_boundary(k) && text.ends_with(&pattern[..k]) {
                    longest = k;
                    break;
                }
            }
        }
        if longest > 0 {
            text.truncate(text.len() - longest);
            text.push_str(MASK);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masked(values: &[&str], text: &str) -> String {
        Redactor::new(values.iter().copied())
            .redact(text)
            .into_owned()
    }

    #[test]
    fn nothing_to_mask_borrows() {
        let none = Redactor::new([]);
        assert!(matches!(none.redact("plain"), Cow::Borrowed("plain")));
        let some = Redactor::new(["s3cr3t"]);
        assert!(matches!(some.redact("plain"), Cow::Borrowed("plain")));
    }

    #[test]
    fn every_occurrence_is_masked() {
        assert_eq!(masked(&["tok"], "a tok b tok"), "a *** b ***");
        // At the edges of the line, and a line made only of the value.
        assert_eq!(
            masked(&["tok"], "tok in the middle tok"),
            "*** in the middle ***"
        );
        assert_eq!(masked(&["tok"], "tok"), "***");
        assert_eq!(masked(&["tok"], "toktok"), "***");
        assert_eq!(masked(&["tok"], ""), "");
    }

    #[test]
    fn overlapping_values_are_masked_as_their_union() {
        // Neither value survives in part: "abc" and "bcd" overlap in "abcd".
        assert_eq!(masked(&["abc", "bcd"], "xabcdx"), "x***x");
        // One value inside another.
        assert_eq!(masked(&["secret", "cre"], "my secret, cre"), "my ***, ***");
        assert_eq!(masked(&["aa"], "aaaaa"), "***");
        assert_eq!(masked(&["ab", "cd"], "abcd"), "***");
    }

    #[test]
    fn multibyte_text_is_cut_on_characters() {
        assert_eq!(masked(&["ключ"], "мой ключ: ключ!"), "мой ***: ***!");
        assert_eq!(masked(&["€"], "5€ or 6 €"), "5*** or 6 ***");
        assert_eq!(masked(&["🔑x"], "a🔑xb🔑"), "a***b🔑");
    }

    #[test]
    fn lines_of_a_multi_line_value_are_masked_on_their_own() {
        let pem =
            "-----BEGIN KEY-----\r\nMIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX\nx=\n-----END KEY-----";
        let r = Redactor::new([pem]);
        assert_eq!(r.redact("MIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX"), "***");
        // Too short to be told apart from ordinary output.
        assert_eq!(r.redact("x="), "x=");
        assert_eq!(r.redact(pem), "***");
    }

    #[test]
    fn a_value_cut_at_the_end_of_a_truncated_line_is_masked() {
        let r = Redactor::new(["s3cr3t-token", "zz"]);
        let mut text = "log: s3cr3t-to".to_string();
        r.mask_cut_tail(&mut text);
        assert_eq!(text, "log: ***");
        let mut clean = "log: nothing".to_string();
        r.mask_cut_tail(&mut clean);
        assert_eq!(clean, "log: nothing");
        let mut multibyte = "a ключ".to_string();
        Redactor::new(["ключ-2"]).mask_cut_tail(&mut multibyte);
        assert_eq!(multibyte, "a ***");
    }

    #[test]
    fn masking_is_fast_enough_for_every_line() {
        // 100 values of 4 KiB against a 64 KiB line, the worst a run may ask for.
        let values: Vec<String> = (0..100)
            .map(|i| format!("{i:04}{}", "v".repeat(4092)))
            .collect();
        let building = std::time::Instant::now();
        let r = Redactor::new(values.iter().map(String::as_str));
        eprintln!(
            "building the masker of 100 values of 4 KiB: {:?}",
            building.elapsed()
        );
        let line =
            "an ordinary log line 0001 of moderate length, 0002 nothing secret ".repeat(1000);
        let started = std::time::Instant::now();
        for _ in 0..100 {
            assert!(matches!(r.redact(&line), Cow::Borrowed(_)));
        }
        let per_line = started.elapsed() / 100;
        eprintln!("masking a 64 KiB line against 100 values of 4 KiB: {per_line:?}");
        let short = "GET /v1/things?page=2 -> 200 in 12 ms";
        let started = std::time::Instant::now();
        for _ in 0..10_000 {
            assert!(matches!(r.redact(short), Cow::Borrowed(_)));
        }
        eprintln!("masking a 37-byte line: {:?}", started.elapsed() / 10_000);
        // Generous: a debug build on a busy machine; measured far below (ADR 0045).
        assert!(
            per_line < std::time::Duration::from_millis(20),
            "{per_line:?}"
        );
    }
}
