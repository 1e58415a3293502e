use frameos_scanner::{Language, Severity, rules, scan};

use crate::{assert_clean, assert_hit, hits};

const ETH: &str = "0x52908400098527886E0F7030069857D2E4169EE7";
const BTC: &str = "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4";

#[test]
fn wallet_addresses_in_any_text_file() {
    for path in [
        "README.md",
        "config.json",
        "index.js",
        "main.py",
        "Makefile",
    ] {
        assert_hit(
            path,
            &format!("pay to {ETH} please"),
            "crypto.wallet_address",
        );
        assert_hit(path, &format!("pay to {BTC}"), "crypto.wallet_address");
    }
    assert_hit("a.txt", &BTC.to_uppercase(), "crypto.wallet_address");
    assert_hit(
        "a.txt",
        "bc1p0xlxvlhemja6c4dqv22uapctqupfhlxm9h8z3k2e72q4k9hcz7vqzk5jj0",
        "crypto.wallet_address",
    );
}

#[test]
fn wallet_near_misses() {
    let short = &ETH[..41]; // 0x + 39 hex digits
    let long = format!("{ETH}A"); // 41 hex digits
    let hash = format!("0x{}", "ab".repeat(32)); // a 32-byte hash
    let bad_checksum = BTC.replace("f3t4", "f3t5");
    for text in [
        short,
        &long,
        &hash,
        &bad_checksum,
        "bc1-is-a-prefix",
        "x0x52908400098527886E0F7030069857D2E4169EE7",
    ] {
        assert_clean("a.txt", text);
    }
}

#[test]
fn binary_files_skip_text_rules() {
    let mut blob = ETH.as_bytes().to_vec();
    blob.push(0xff); // not UTF-8, not source
    assert!(scan([("data.bin", blob.as_slice())]).violations.is_empty());
}

#[test]
fn native_code_by_name_or_magic() {
    let elf: &[u8] = b"\x7fELF\x02\x01\x01\0rest";
    let mut pe = vec![0u8; 0x80];
    pe[..2].copy_from_slice(b"MZ");
    pe[0x3c] = 0x40;
    pe[0x40..0x44].copy_from_slice(b"PE\0\0");
    let mach_o: &[u8] = &[0xcf, 0xfa, 0xed, 0xfe, 7, 0, 0, 1];
    let fat: &[u8] = &[0xca, 0xfe, 0xba, 0xbe, 0, 0, 0, 2];
    let cases: [(&str, &[u8]); 8] = [
        ("build/Release/addon.node", b"whatever"),
        ("lib/libx.so", b""),
        ("lib/libx.so.1.2", b""),
        ("x.dylib", b""),
        ("X.DLL", b""),
        ("innocent.txt", elf),
        ("tool.js", &pe),
        ("data", mach_o),
    ];
    for (path, contents) in cases {
        let report = scan([(path, contents)]);
        assert!(!report.passed, "{path}");
        assert_eq!(report.violations[0].rule, "binary.native_code", "{path}");
        assert_eq!(report.violations[0].line, 1);
    }
    assert!(!scan([("fat", fat)]).passed);
    let java: &[u8] = &[0xca, 0xfe, 0xba, 0xbe, 0, 0, 0, 52];
    for (path, contents) in [
        ("Main.class", java),
        ("notes.txt", b"MZ is a fine start"),
        ("src/sonar.js", b"1"),
        ("so.txt", b"x"),
    ] {
        assert!(scan([(path, contents)]).violations.is_empty(), "{path}");
    }
}

#[test]
fn one_violation_per_rule_path_and_line_in_a_stable_order() {
    let js = "eval(a); eval(b)\nrequire('fs'); eval(c)\n";
    let py = "import subprocess\n";
    let report = scan([
        ("z.js", js.as_bytes()),
        ("a.py", py.as_bytes()),
        ("z.js", js.as_bytes()),
    ]);
    let seen: Vec<_> = report
        .violations
        .iter()
        .map(|v| (v.path.as_str(), v.line, v.rule.as_str(), v.severity))
        .collect();
    assert_eq!(
        seen,
        [
            ("a.py", 1, "python.subprocess", Severity::High),
            ("z.js", 1, "node.eval", Severity::High),
            ("z.js", 2, "node.eval", Severity::High),
            ("z.js", 2, "node.fs", Severity::Medium),
        ]
    );
    assert!(!report.passed);
}

#[test]
fn passed_means_no_high_finding() {
    assert!(scan([]).passed);
    assert!(scan([("index.js", &b"module.exports = async (i) => i;"[..])]).passed);
    let medium_only = scan([
        ("a.js", &b"require('fs')"[..]),
        ("b.mjs", &b"import { readFile } from 'node:fs/promises'"[..]),
    ]);
    assert!(medium_only.passed);
    assert_eq!(medium_only.violations.len(), 2);
    assert!(!scan([("a.js", &b"require('child_process')"[..])]).passed);
}

#[test]
fn invalid_utf8_cannot_hide_source_findings() {
    let source: &[u8] = b"\xff\xfe const cp = require('child_process')";
    assert_eq!(
        scan([("index.js", source)]).violations[0].rule,
        "node.child_process"
    );
}

#[test]
fn reports_serialize_for_the_api() {
    let report = scan([("a.js", &b"\nrequire('fs')"[..])]);
    assert_eq!(
        serde_json::to_value(&report).unwrap(),
        serde_json::json!({
            "passed": true,
            "violations": [{ "rule": "node.fs", "severity": "medium", "path": "a.js", "line": 2 }]
        })
    );
}

#[test]
fn the_catalogue_covers_every_reported_rule() {
    let ids: Vec<_> = rules().iter().map(|r| r.id).collect();
    for id in [
        "node.child_process",
        "node.eval",
        "node.function_constructor",
        "node.fs",
        "python.subprocess",
        "python.os_exec",
        "python.eval_exec",
        "python.dynamic_import",
        "python.raw_socket",
        "python.ctypes",
        "node.raw_socket",
        "crypto.wallet_address",
        "crypto.hex_key",
        "binary.native_code",
    ] {
        assert!(ids.contains(&id), "{id}");
    }
    assert_eq!(Language::of("a/b.MJS"), Some(Language::Node));
    assert_eq!(Language::of("Makefile"), None);
    assert!(
        serde_json::to_string(rules())
            .unwrap()
            .contains("\"any_text\"")
    );
    assert_eq!(hits("x.txt", ""), []);
}
