//! Every byte of every file is scanned (the package's unpacked limit is the only bound), with
//! the right line numbers however deep the finding, and a bounded report.

use frameos_scanner::{MAX_LINES_PER_RULE, scan};

use crate::hits;

const MIB: usize = 1 << 20;

#[test]
fn a_call_after_megabytes_of_whitespace_is_found() {
    // The bypass this pins: 1 MiB of spaces gzips to about 1 KB, so it fits any package.
    for padding in [MIB, 20 * MIB] {
        let mut source = " ".repeat(padding);
        source.push_str("eval(x)");
        let report = scan([("index.js", source.as_bytes())]);
        assert!(!report.passed, "eval after {padding} bytes");
        let found: Vec<_> = report
            .violations
            .iter()
            .map(|v| (v.rule.as_str(), v.line))
            .collect();
        assert_eq!(found, [("node.eval", 1)]);
    }
}

#[test]
fn findings_at_the_very_end_of_a_file_are_found_on_the_right_line() {
    let filler = "    \t\n".repeat(2 * MIB / 6);
    let last_line = u32::try_from(2 * MIB / 6 + 1).unwrap();
    // No trailing newline: the finding's last byte is the file's last byte.
    for (path, tail, rule) in [
        ("index.js", "eval(x)", "node.eval"),
        ("main.py", "import subprocess", "python.subprocess"),
        (
            "NOTES.md",
            "bc1qw508d6qejxtdg4y5r3zarvary0c5xw7kv8f3t4",
            "crypto.wallet_address",
        ),
    ] {
        let source = format!("{filler}{tail}");
        assert_eq!(
            hits(path, &source),
            [(rule.to_owned(), last_line)],
            "{path}"
        );
    }
}

#[test]
fn line_numbers_are_right_deep_in_a_file() {
    // Multi-byte characters, so a byte offset is not a character count.
    let filler_line = "// überprüfe die Einträge\n";
    let filler_lines = 20 * MIB / filler_line.len();
    let mut source = String::from("const fs = require('fs');\n");
    source.push_str(&filler_line.repeat(filler_lines / 2));
    source.push_str("const r = eval(code);\n");
    source.push_str(&filler_line.repeat(filler_lines / 2));
    source.push_str("require('child_process').exec(cmd)");
    let middle = u32::try_from(1 + filler_lines / 2 + 1).unwrap();
    let last = u32::try_from(1 + filler_lines / 2 + 1 + filler_lines / 2 + 1).unwrap();
    assert_eq!(
        hits("index.js", &source),
        [
            ("node.fs".to_owned(), 1),
            ("node.eval".to_owned(), middle),
            ("node.child_process".to_owned(), last),
        ]
    );
}

#[test]
fn every_line_with_a_call_is_reported_once() {
    // A call at the very start of the line after a hit (the hit's newline is its context).
    assert_eq!(
        hits("index.js", "eval(a)\neval(b)\n\teval(c); eval(d)\n"),
        [
            ("node.eval".to_owned(), 1),
            ("node.eval".to_owned(), 2),
            ("node.eval".to_owned(), 3),
        ]
    );
    // Hits of several patterns of one rule, on the same and on different lines.
    assert_eq!(
        hits("main.py", "import socket; socket.socket()\nsocket.socket()"),
        [
            ("python.raw_socket".to_owned(), 1),
            ("python.raw_socket".to_owned(), 2),
        ]
    );
}

#[test]
fn a_rule_lists_its_first_lines_per_file_and_the_others_still_report() {
    let mut source = "eval(x); eval(y)\n".repeat(10 * MAX_LINES_PER_RULE);
    source.push_str("require('child_process')\n");
    source.push_str(&"require('fs')\n".repeat(3));
    let report = scan([("index.js", source.as_bytes()), ("b.js", b"eval(z)")]);
    let lines_of = |path: &str, rule: &str| -> Vec<u32> {
        report
            .violations
            .iter()
            .filter(|v| v.path == path && v.rule == rule)
            .map(|v| v.line)
            .collect()
    };
    let first: Vec<u32> = (1..=u32::try_from(MAX_LINES_PER_RULE).unwrap()).collect();
    assert_eq!(lines_of("index.js", "node.eval"), first);
    let child = u32::try_from(10 * MAX_LINES_PER_RULE + 1).unwrap();
    assert_eq!(lines_of("index.js", "node.child_process"), [child]);
    assert_eq!(
        lines_of("index.js", "node.fs"),
        [child + 1, child + 2, child + 3]
    );
    assert_eq!(lines_of("b.js", "node.eval"), [1]);
    assert!(!report.passed);
}

#[test]
fn a_text_file_is_text_only_if_all_of_it_is_utf8() {
    let mut late_binary = "0x52908400098527886E0F7030069857D2E4169EE7\n"
        .to_owned()
        .into_bytes();
    late_binary.extend(std::iter::repeat_n(b' ', 2 * MIB));
    late_binary.push(0xff);
    assert!(
        scan([("data.bin", late_binary.as_slice())])
            .violations
            .is_empty()
    );
    // A source file is read whatever its bytes, to its end.
    let mut source = b"\xff".to_vec();
    source.extend(std::iter::repeat_n(b' ', 2 * MIB));
    source.extend(b"\xfe\nimport subprocess");
    assert_eq!(scan([("main.py", source.as_slice())]).violations[0].line, 2);
}
