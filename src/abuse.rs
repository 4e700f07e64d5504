//! Abuse monitoring (SPEC §12): per-token anomaly signals, the responses to them, and the
//! events they produce.
//!
//! The request path only bumps a few atomics in the token's [`watch::Watch`] (allocated on
//! the token's first passing request); the [`engine`] ticks off the request path, turns the
//! counters into rates and estimates, compares them with each token's baseline, and hands
//! every state change to an [`engine::EventSink`]. `webhook` delivers events to an operator's
//! URL off the request path; `secret_scanning` is GitHub's partner endpoint that revokes
//! leaked remote-write secrets.

pub mod control;
pub mod engine;
pub mod event;
pub mod history;
pub mod hll;
pub mod persist;
pub mod report;
pub mod secret_scanning;
pub mod sink;
pub mod topk;
pub mod watch;
pub mod webhook;
pub mod window;

use serde::{Deserialize, Serialize};

use crate::config::AbuseConfig;

pub use engine::{EventHook, EventSink, Monitor};
pub use event::{Action, Event, EventKind, Signal};
pub use watch::Watch;

/// What the edge does when `spike`, `client_storm` or `series_growth` fires on a token.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Signals are computed (gauges) but produce no event and no response.
    Off,
    /// An event: audit trail, webhook, metrics.
    Flag,
    /// Also caps the token at `spike_factor` x baseline while the signal lasts (`429`).
    Throttle,
    /// Also disables the token until an operator enables it (`403`).
    Block,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Off => "off",
            Mode::Flag => "flag",
            Mode::Throttle => "throttle",
            Mode::Block => "block",
        }
    }
}

/// A token's own `abuse` settings (SPEC §12); unset fields take the `[abuse]` defaults.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AbuseOverrides {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<Mode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spike_factor: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_items_per_second: Option<f64>,
}

// Parsing refuses non-finite numbers (see `check`), so equality is total.
impl Eq for AbuseOverrides {}

impl AbuseOverrides {
    pub fn is_empty(&self) -> bool {
        *self == AbuseOverrides::default()
    }

    /// Refuses a factor of at most 1 (every request would be a spike) and non-finite or
    /// negative numbers.
    pub fn check(&self) -> Result<(), &'static str> {
        if self
            .spike_factor
            .is_some_and(|f| !(f.is_finite() && f > 1.0 && f <= 1e6))
        {
            return Err("abuse.spike_factor must be a number above 1");
        }
        if self
            .min_items_per_second
            .is_some_and(|f| !(f.is_finite() && f >= 0.0))
        {
            return Err("abuse.min_items_per_second must be a number of at least 0");
        }
        Ok(())
    }

    /// The settings in force: these overrides over the config's defaults.
    pub fn resolve(&self, config: &AbuseConfig) -> Settings {
        Settings {
            mode: self.mode.unwrap_or(config.mode),
            spike_factor: self.spike_factor.unwrap_or(config.spike_factor),
            min_items_per_second: self
                .min_items_per_second
                .unwrap_or(config.min_items_per_second),
        }
    }
}

/// A token's abuse settings in force.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Settings {
    pub mode: Mode,
    pub spike_factor: f64,
    pub min_items_per_second: f64,
}
