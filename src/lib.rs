//! ingest-edge: the public front door of a telemetry backend.
//!
//! Browsers send RUM data (OTLP/HTTP spans and logs) with a public, origin-bound client token;
//! Prometheus sends remote_write with a secret remote-write token. For every request the edge
//! finds the token in a lock-free cache (`token::cache`), checks type and origin (`auth`,
//! `origin`), rate-limits (`ratelimit`), bounds and decodes the body (`body`, `rum`,
//! `remote_write`), hands the batch on (`pipeline`) and counts usage per token (`usage`).
//! `ingest` orders these phases; `server` owns the connections; `admin` and `token::registry`
//! are the control plane. See ARCHITECTURE.md for the request flows.

#![forbid(unsafe_code)]

pub mod abuse;
pub mod admin;
pub mod appcheck;
pub mod auth;
pub mod body;
pub mod cli;
pub mod client_addr;
pub mod config;
pub mod console;
pub mod edge;
pub mod http;
pub mod ingest;
pub mod opmetrics;
pub mod ops;
pub mod origin;
pub mod pipeline;
pub mod ratelimit;
pub mod reject;
pub mod remote_write;
pub mod rum;
pub mod secret;
pub mod server;
pub mod time;
pub mod token;
pub mod usage;
mod wire;

pub use config::Config;
pub use edge::Edge;
