//! How executions end, against real Docker and the real runtime images.
//!
//! Here: a fresh container per run (the cold path).
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

#[allow(unused_imports)]
use common::cold::{assert_execution_label, sandbox};

include!("suites/outcomes.rs");
