//! Test-only faults never ship: the control plane binary built with this package's default
//! features holds neither the fault code nor any variable or flag that could switch one on
//! (issue 7, finding 8: `FRAMEOS_FAULT_HALT_AFTER_CAPTURE` used to be read in release builds).

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::path::Path;
use std::process::Command;

/// Whether the file holds `needle` (grep: a 100 MB debug binary takes seconds to scan in
/// unoptimised test code).
fn contains(file: &Path, needle: &str) -> bool {
    let status = Command::new("grep")
        .args(["-a", "-q", "-F", "--", needle])
        .arg(file)
        .status()
        .unwrap();
    match status.code() {
        Some(0) => true,
        Some(1) => false,
        _ => panic!("grep failed on {}: {status}", file.display()),
    }
}

#[test]
fn the_control_plane_binary_has_no_fault_switch() {
    let binary = Path::new(env!("CARGO_BIN_EXE_frameos-control-plane"));
    // No environment variable or flag of a fault, whatever features this build has.
    for switch in ["FRAMEOS_FAULT_", "fault-halt-after-capture", "fault_halt"] {
        assert!(!contains(binary, switch), "the binary mentions {switch:?}");
    }
    // The fault's own code prints this marker. A workspace-wide test build unifies the
    // integration tests' `fault-injection` feature into this package; then the marker must be
    // found, which shows the search works. In a build of this package alone (the features a
    // release build has) it must be absent.
    let marker = "frameos-fault: captured";
    if cfg!(feature = "fault-injection") {
        assert!(contains(binary, marker), "feature on, marker not found");
    } else {
        assert!(!contains(binary, marker), "fault code in a default build");
    }
}
