//! `[usage]` and `[abuse]`: usage series, and the thresholds and responses of abuse
//! monitoring.

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::humantime_serde_compat;

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct UsageConfig {
    /// Series of a revoked token are dropped from `/metrics` once it has been idle this long.
    #[serde(with = "humantime_serde_compat")]
    pub revoked_idle_timeout: Duration,
}

impl Default for UsageConfig {
    fn default() -> Self {
        UsageConfig {
            revoked_idle_timeout: Duration::from_secs(900),
        }
    }
}

/// `[abuse]` (SPEC §12). Production defaults; tests shrink the windows to seconds.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AbuseConfig {
    /// Default response of a token whose own `abuse.mode` is unset.
    pub mode: crate::abuse::Mode,
    /// Span of the current rate (and of `ingest_token_distinct_clients`).
    #[serde(with = "humantime_serde_compat")]
    pub short_window: Duration,
    /// Time constant of the slow baseline; also how long a series counts as seen.
    #[serde(with = "humantime_serde_compat")]
    pub baseline_window: Duration,
    /// Learned history a token needs before `spike`, `client_storm` or `series_growth`.
    #[serde(with = "humantime_serde_compat")]
    pub warmup: Duration,
    /// Default multiple of the baseline that is a spike (and the throttle's cap).
    pub spike_factor: f64,
    /// Default floor (items/s) under which no spike is called.
    pub min_items_per_second: f64,
    /// `origin_not_allowed` refusals per second on one token that make an `origin_storm`.
    pub origin_storm_per_second: f64,
    /// Missing/malformed/unknown token refusals per second, edge-wide, that make an `auth_storm`.
    pub auth_storm_per_second: f64,
    /// Where every event is POSTed; empty: no webhook.
    pub webhook_url: String,
    /// GitHub's `public_keys` JSON for secret scanning; empty: the endpoint answers 404.
    pub secret_scanning_keys_file: String,
    /// What a confirmed leaked remote-write secret gets.
    pub leaked_secret_action: LeakedSecretAction,
}

impl Default for AbuseConfig {
    fn default() -> Self {
        AbuseConfig {
            mode: crate::abuse::Mode::Flag,
            short_window: Duration::from_secs(60),
            baseline_window: Duration::from_secs(3600),
            warmup: Duration::from_secs(900),
            spike_factor: 5.0,
            min_items_per_second: 10.0,
            origin_storm_per_second: 1.0,
            auth_storm_per_second: 10.0,
            webhook_url: String::new(),
            secret_scanning_keys_file: String::new(),
            leaked_secret_action: LeakedSecretAction::Revoke,
        }
    }
}

/// `abuse.leaked_secret_action`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum LeakedSecretAction {
    /// Revoke the token at once: a secret in a public repository is in an attacker's hands.
    Revoke,
    /// Only an event (audit, webhook), for operators who must rotate on their own schedule.
    Flag,
}
