//! What an agent cannot do inside its container.
//!
//! Here: a fresh container per run (the cold path).
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

#[allow(unused_imports)]
use common::cold::{assert_execution_label, sandbox};

include!("suites/lockdown.rs");
