//! The smaller sections: `[store]`, `[admin]`, `[body]`, `[rum]`, `[remote_write]` and
//! `[mobile]`.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::humantime_serde_compat;

/// `[store]`: where tokens live when several edges share them.
#[derive(Clone, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct StoreConfig {
    /// `postgres://user:password@host/db?sslmode=...` (env `INGEST_EDGE_STORE_URL`). Empty:
    /// the embedded file store. Its password is never logged (see the `Debug` impl).
    pub url: String,
    /// The safety-net poll of the shared store (changes normally arrive by LISTEN/NOTIFY within
    /// milliseconds); 10 s by default, at most 30 s (SPEC §16).
    #[serde(with = "humantime_serde_compat")]
    pub poll_interval: Duration,
}

impl std::fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreConfig")
            .field("url", &crate::token::store::pg::redacted(&self.url))
            .field("poll_interval", &self.poll_interval)
            .finish()
    }
}

impl Default for StoreConfig {
    fn default() -> Self {
        StoreConfig {
            url: String::new(),
            poll_interval: Duration::from_secs(10),
        }
    }
}

#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminConfig {
    /// Bearer key for the admin API; `None` = generated at first start into the data dir.
    pub key: Option<String>,
    /// Tokens older than this (since creation or last rotation) are flagged in `token list`.
    #[serde(with = "humantime_serde_compat")]
    pub rotation_period: RotationPeriod,
}

/// Newtype so the 90-day default sits next to the type.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RotationPeriod(pub Duration);

impl Default for RotationPeriod {
    fn default() -> Self {
        RotationPeriod(Duration::from_secs(90 * 24 * 3600))
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct BodyLimits {
    /// RUM: bytes on the wire.
    pub rum_max_wire_bytes: usize,
    /// RUM: bytes after gzip decompression.
    pub rum_max_decoded_bytes: usize,
    /// remote_write: bytes on the wire (snappy-compressed).
    pub remote_write_max_wire_bytes: usize,
    /// remote_write: bytes after snappy decompression (checked against the snappy header first).
    pub remote_write_max_decoded_bytes: usize,
}

impl Default for BodyLimits {
    fn default() -> Self {
        BodyLimits {
            rum_max_wire_bytes: 1 << 20,
            rum_max_decoded_bytes: 8 << 20,
            remote_write_max_wire_bytes: 16 << 20,
            remote_write_max_decoded_bytes: 32 << 20,
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RumConfig {
    /// Request headers a preflight may ask for; others are left out of
    /// `Access-Control-Allow-Headers` (lowercase).
    pub allowed_headers: Vec<String>,
    /// `Access-Control-Max-Age` of preflight responses, seconds.
    pub preflight_max_age_secs: u32,
}

impl Default for RumConfig {
    fn default() -> Self {
        RumConfig {
            allowed_headers: [
                "content-type",
                "content-encoding",
                "authorization",
                "traceparent",
                "tracestate",
                "baggage",
                "idempotency-key",
            ]
            .iter()
            .map(|s| s.to_string())
            .collect(),
            preflight_max_age_secs: 7200,
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct RemoteWriteConfig {
    /// Status for a throttled request: 429 (spec default) or 503 (retried by every sender,
    /// including stock Prometheus without `retry_on_http_429`).
    pub throttle_status: u16,
    /// Series with more label names are refused (`too_many_labels`).
    pub max_label_names_per_series: usize,
    /// Longer label names are refused (`label_name_too_long`).
    pub max_label_name_length: usize,
    /// Longer label values are refused (`label_value_too_long`).
    pub max_label_value_length: usize,
    /// Samples further in the future than this are refused (`sample_too_far_in_future`).
    #[serde(with = "humantime_serde_compat")]
    pub max_future: Duration,
}

impl Default for RemoteWriteConfig {
    fn default() -> Self {
        RemoteWriteConfig {
            throttle_status: 429,
            max_label_names_per_series: 30,
            max_label_name_length: 1024,
            max_label_value_length: 2048,
            max_future: Duration::from_secs(600),
        }
    }
}

/// Mobile client tokens (SPEC §14).
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct MobileConfig {
    /// A copy of Firebase App Check's JWKS (`https://firebaseappcheck.googleapis.com/v1/jwks`),
    /// re-read when it changes. Unset: tokens with attestation `report` or `enforce` fail every
    /// check (the edge never fetches keys itself: the request path does no network I/O).
    pub app_check_jwks_file: Option<PathBuf>,
}
