//! The checks behind each fuzz target, as plain functions so that `replay` (and a normal
//! `cargo test` of this crate) can run them without AFL. Each one panics on a broken invariant:
//! AFL records a panic (the release profile aborts) as a crash.
//!
//! Inputs that carry parameters (a limit, a version) take them from the first bytes, so the
//! fuzzer mutates them along with the body and the seed corpus can pin them.

#![forbid(unsafe_code)]

pub mod gunzip;
pub mod http_head;
pub mod origin;
pub mod remote_write;
pub mod rum_count;
pub mod secret;

/// Splits off the first byte as a selector; an empty input selects 0 with an empty rest.
pub fn split_first(data: &[u8]) -> (u8, &[u8]) {
    match data.split_first() {
        Some((first, rest)) => (*first, rest),
        None => (0, data),
    }
}
