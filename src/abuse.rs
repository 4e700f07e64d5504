//! Abuse monitoring (SPEC §12): per-token anomaly signals, the responses to them, and the
//! events they produce.
//!
//! The request path only bumps a few atomics in the token's [`watch::Watch`] (allocated on
//! the token's first passing request); the [`engine`] ticks off the request path, turns the
//! counters into rates and estimates, compares them with each token's baseline, and hands
//! every state change to an [`engine::EventSink`].

pub mod event;
