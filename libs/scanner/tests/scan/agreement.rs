//! The example agents and the ADR agree with the scanner.

use std::path::Path;

use frameos_scanner::{Severity, rules, scan};

const ROOT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../..");

/// Every file under `dir`, as (path from the repository root, contents).
fn files_under(dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            files_under(&path, out);
        } else {
            let name = path.strip_prefix(ROOT).unwrap().display().to_string();
            out.push((name, std::fs::read(&path).unwrap()));
        }
    }
}

/// The same files the platform is shown when the examples are published (integration-tests'
/// `every_example_agent_passes_the_scanner`), without starting a mesh.
#[test]
fn the_example_agents_scan_clean() {
    let mut files = Vec::new();
    files_under(&Path::new(ROOT).join("examples/agents"), &mut files);
    assert!(files.iter().any(|(name, _)| name.ends_with(".py")));
    assert!(files.iter().any(|(name, _)| name.ends_with(".js")));
    let report = scan(files.iter().map(|(n, c)| (n.as_str(), c.as_slice())));
    assert_eq!(report.violations, [], "{} files", files.len());
    assert!(report.passed);
}

/// ADR 0004 lists every rule with its severity, in rows like "| `node.eval` | HIGH | … |".
#[test]
fn adr_0004_lists_exactly_the_rules_with_their_severities() {
    let adr =
        std::fs::read_to_string(Path::new(ROOT).join("docs/adr/0004-package-safety.md")).unwrap();
    let mut listed: Vec<(String, String)> = adr
        .lines()
        .filter_map(|line| {
            let mut cells = line.trim_start().strip_prefix("| `")?.split('|');
            let id = cells.next()?.trim().trim_end_matches('`').to_owned();
            let severity = cells.next()?.trim().to_lowercase();
            Some((id, severity))
        })
        .collect();
    listed.sort();
    let mut implemented: Vec<(String, String)> = rules()
        .iter()
        .map(|rule| {
            let severity = match rule.severity {
                Severity::High => "high",
                Severity::Medium => "medium",
                Severity::Low => "low",
            };
            (rule.id.to_owned(), severity.to_owned())
        })
        .collect();
    implemented.sort();
    assert_eq!(listed, implemented);
}
