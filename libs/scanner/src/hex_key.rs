//! Key-like hex literals: 64 hex digits, the size of a 32-byte secret (a secp256k1 or Ed25519
//! private key, an AES-256 or HMAC key) and also of a SHA-256 digest. A literal is reported
//! when it looks random and nothing around it says it is a digest.

use std::ops::Range;
use std::sync::LazyLock;

use regex::Regex;

/// Digests published everywhere, e.g. SHA-256 of the empty string (AWS SigV4's empty payload).
const WELL_KNOWN: &[&str] = &["e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"];

/// How far before the literal, on its line, a digest label is looked for.
const LABEL_WINDOW: usize = 96;

/// A digest label right before the literal (the text is matched up to the literal's start):
/// `sha256:…` (pip `--hash=`, poetry/uv/Pipfile locks, `image@sha256:`), `sha256-…`,
/// `sha256/…`; a key naming a digest (`"sha256": "…"`, `checksum = "…"`, `fileHash: '…'`,
/// `integrity=…`); BSD `SHA256 (file) = …`; a comparison with a computed digest
/// (`hexdigest() == "…"`, `digest('hex') === '…'`).
static DIGEST_LABEL: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r#"(?i)(?:(?:sha-?256|sha3-256|sha512/256|blake2[bs]?(?:-256)?|blake3|keccak-?256)\s*[:=@/-]?|(?:sha-?256|digest|checksum|hash|integrity|etag|fingerprint)["'`]?\s*(?:[:=]|=>)|sha-?256\s*\([^)]*\)\s*=|digest\([^)]*\)\s*[!=]==?)\s*["'`]?$"#,
    )
    .expect("built-in digest label pattern must compile")
});

/// True for a 64-hex-digit literal (`hit`, maybe `0x`-prefixed) that looks like a secret.
pub(crate) fn is_key_like(text: &str, hit: Range<usize>) -> bool {
    let literal = &text[hit.clone()];
    let digits = literal
        .strip_prefix("0x")
        .or_else(|| literal.strip_prefix("0X"))
        .unwrap_or(literal);
    looks_random(digits)
        && !WELL_KNOWN
            .iter()
            .any(|known| known.eq_ignore_ascii_case(digits))
        && !has_digest_label(text, hit.start)
        && !is_checksum_list_line(text, hit)
}

/// Random 32 bytes give about 3.8 bits of entropy per hex digit (the lowest of 300 000
/// sampled keys: 3.36), a run of 8 equal digits about once in 5·10^6 keys, and no short
/// period; curve constants like `FFFFFFFF00000001…`, `00…01`, `deadbeef` repeated or
/// `0123…ef` four times are not secrets.
fn looks_random(digits: &str) -> bool {
    entropy_bits_per_digit(digits) >= 3.0 && longest_run(digits) < 8 && !is_periodic(digits)
}

fn entropy_bits_per_digit(digits: &str) -> f64 {
    let mut counts = [0u32; 16];
    for byte in digits.bytes() {
        if let Some(value) = char::from(byte).to_digit(16) {
            counts[value as usize] += 1;
        }
    }
    let total = f64::from(counts.iter().sum::<u32>());
    counts
        .iter()
        .filter(|&&n| n > 0)
        .map(|&n| {
            let p = f64::from(n) / total;
            -p * p.log2()
        })
        .sum()
}

fn longest_run(digits: &str) -> usize {
    let bytes = digits.as_bytes();
    let mut longest = 0;
    let mut run = 0;
    for (i, byte) in bytes.iter().enumerate() {
        run = if i > 0 && bytes[i - 1].eq_ignore_ascii_case(byte) {
            run + 1
        } else {
            1
        };
        longest = longest.max(run);
    }
    longest
}

/// Repeats a block of at most half its length (`abab…`, `deadbeef` × 8).
fn is_periodic(digits: &str) -> bool {
    let bytes = digits.as_bytes();
    (1..=bytes.len() / 2).any(|period| {
        bytes
            .iter()
            .zip(&bytes[period..])
            .all(|(a, b)| a.eq_ignore_ascii_case(b))
    })
}

fn has_digest_label(text: &str, start: usize) -> bool {
    // Only the window is searched for the line start: a file of candidates on one long line
    // must not cost a pass over everything before each of them.
    let window = &text[text.ceil_char_boundary(start.saturating_sub(LABEL_WINDOW))..start];
    let window = window.rsplit('\n').next().unwrap_or(window);
    DIGEST_LABEL.is_match(window)
}

/// A `sha256sum` output line: `<digest>  <file>` or `<digest> *<file>`.
fn is_checksum_list_line(text: &str, hit: Range<usize>) -> bool {
    let at_line_start = hit.start == 0 || text.as_bytes()[hit.start - 1] == b'\n';
    let rest = &text.as_bytes()[hit.end..];
    at_line_start && matches!(rest, [b' ', b' ' | b'*', name, ..] if !name.is_ascii_whitespace())
}
