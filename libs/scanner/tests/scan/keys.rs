//! `crypto.hex_key`: random-looking 64-hex-digit literals, but not digests where digests live.

use frameos_scanner::scan;

use crate::{assert_clean, assert_hit};

/// 32 pseudo-random bytes as lowercase hex (splitmix64: deterministic, no dependency).
fn random_key(seed: u64) -> String {
    let mut state = seed;
    let mut next = || {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    };
    (0..4).map(|_| format!("{:016x}", next())).collect()
}

#[test]
fn key_like_literals_in_code_and_config() {
    let key = random_key(1);
    let upper = key.to_uppercase();
    for (path, text) in [
        ("index.js", format!("const signer = new Wallet('{key}');")),
        ("main.py", format!("PRIVATE_KEY = \"0x{key}\"")),
        ("config.json", format!("{{\"secret\": \"{upper}\"}}")),
        (".env", format!("SIGNING_KEY={key}")),
        ("README.md", format!("use key {key} for tests")),
        // A label elsewhere on the line, or a name that only starts like one, is no label.
        ("keys.yaml", format!("checksum: 1, key: {key}")),
        ("index.ts", format!("const hashedKey = '{key}';")),
    ] {
        assert_hit(path, &text, "crypto.hex_key");
        assert!(!scan([(path, text.as_bytes())]).passed, "{path}");
    }
}

#[test]
fn a_label_on_the_previous_line_does_not_count() {
    let key = random_key(5);
    assert_eq!(
        crate::hits("lock.json", &format!("\"sha256\":\n  \"{key}\"")),
        [("crypto.hex_key".to_owned(), 2)]
    );
}

#[test]
fn every_random_key_is_caught() {
    // The randomness thresholds must not let real keys through.
    let keys: Vec<(String, String)> = (0..10_000u64)
        .map(|i| (format!("k{i}.txt"), format!("key={}", random_key(i))))
        .collect();
    let report = scan(keys.iter().map(|(p, t)| (p.as_str(), t.as_bytes())));
    assert_eq!(report.violations.len(), keys.len());
    assert!(report.violations.iter().all(|v| v.rule == "crypto.hex_key"));
}

#[test]
fn digests_where_digests_live_are_not_keys() {
    let digest = random_key(2);
    for (path, text) in [
        (
            "requirements.txt",
            format!("requests==2.32.3 \\\n    --hash=sha256:{digest}"),
        ),
        (
            "poetry.lock",
            format!(
                "files = [\n    {{file = \"requests-2.32.3.whl\", hash = \"sha256:{digest}\"}},\n]"
            ),
        ),
        (
            "Pipfile.lock",
            format!("\"hashes\": [\n    \"sha256:{digest}\"\n]"),
        ),
        ("Dockerfile", format!("FROM debian@sha256:{digest}")),
        (
            "direct_url.json",
            format!("{{\"hashes\": {{\"sha256\": \"{digest}\"}}}}"),
        ),
        ("Cargo.lock", format!("checksum = \"{digest}\"")),
        (
            "manifest.json",
            format!("{{\"digest\": \"{digest}\", \"integrity\": \"{digest}\"}}"),
        ),
        ("index.js", format!("const expectedHash = '{digest}';")),
        (
            "index.js",
            format!("if (h.digest('hex') !== '{digest}') throw e;"),
        ),
        (
            "main.py",
            format!("if hashlib.sha256(data).hexdigest() != \"{digest}\":"),
        ),
        (
            "SHA256SUMS",
            format!("{digest}  agent.tar.gz\n{digest} *agent.zip"),
        ),
        ("CHECKSUMS", format!("SHA256 (agent.tar.gz) = {digest}")),
        (
            "urls.txt",
            format!("https://example.com/blobs/sha256/{digest}"),
        ),
        // SHA-256 of the empty string, in every AWS SigV4 implementation.
        (
            "sign.js",
            "const EMPTY = 'e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855';"
                .to_owned(),
        ),
    ] {
        assert_clean(path, &text);
    }
}

#[test]
fn patterned_and_wrong_length_hex_is_not_a_key() {
    let key = random_key(3);
    for text in [
        "0".repeat(64),
        format!("0x{}1", "0".repeat(63)),
        // P-256's prime and secp256k1's group order: curve constants, not secrets.
        "ffffffff00000001000000000000000000000000ffffffffffffffffffffffff".to_owned(),
        "0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141".to_owned(),
        "deadbeef".repeat(8),
        // Full entropy, but one block repeated.
        "0123456789abcdef".repeat(4),
        key[..63].to_owned(),
        format!("{key}a"),
        format!("{key}{}", random_key(4)),
        format!("key_{key}"),
    ] {
        assert_clean("a.txt", &text);
    }
}
