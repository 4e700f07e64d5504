//! Abuse monitoring (SPEC §12, issue 11) against a real edge on 127.0.0.1: windows shrunk to
//! about a second by the config, traffic from the test, signals read back through `/metrics`,
//! the admin API and the monitor's read API. Each test prints the time from the start of its
//! attack to the signal (`cargo test --test abuse -- --nocapture`). The `auth_storm` test is
//! `tests/abuse_auth.rs`: it measures the process's RSS, so it runs in a process of its own.

mod common;
mod rw_support;

#[path = "abuse/support.rs"]
mod support;

#[path = "abuse/spike.rs"]
mod spike;

#[path = "abuse/origins.rs"]
mod origins;

#[path = "abuse/clients.rs"]
mod clients;

#[path = "abuse/last_used.rs"]
mod last_used;

#[path = "abuse/series.rs"]
mod series;

#[path = "abuse/reads.rs"]
mod reads;
