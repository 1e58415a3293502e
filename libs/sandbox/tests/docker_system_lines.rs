//! API.md §4.1 from inside a real container: whatever an agent prints — the platform's own
//! egress and log-limit texts, on stdout or stderr, or a raw frame naming `system` — arrives as
//! its own stdout or stderr; only the proxy's decisions and the log-limit marker are `system`.
//!
//! Here: a fresh container per run (the cold path).
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

#[allow(unused_imports)]
use common::cold::{assert_execution_label, sandbox};

include!("suites/system_lines.rs");
