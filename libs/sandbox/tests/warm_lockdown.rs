//! What an agent cannot do inside its container.
//!
//! Here: a warm pool container per run (ADR 0026): the same bodies, unchanged.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

#[allow(unused_imports)]
use common::warm::{assert_execution_label, sandbox};

include!("suites/lockdown.rs");
