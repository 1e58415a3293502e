//! How executions end, against real Docker and the real runtime images.
//!
//! Here: a warm pool container per run (ADR 0026): the same bodies, unchanged.
#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

mod common;

#[allow(unused_imports)]
use common::warm::{assert_execution_label, sandbox};

include!("suites/outcomes.rs");
