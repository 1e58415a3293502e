//! One test binary for the package crate (one link instead of four).
#![allow(clippy::unwrap_used)]

mod archive_good;
mod archive_safety;
mod manifest;
mod open;
mod support;
