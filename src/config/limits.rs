//! `[limits]`: the default rate limits of each token type, and the Redis URL of limits shared
//! by several edges.

use std::num::NonZeroU32;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Rate limits of one token type; per-token overrides replace single fields.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimits {
    /// Sustained requests per second for the whole token.
    pub requests_per_second: NonZeroU32,
    /// Requests that may arrive at once.
    pub requests_burst: NonZeroU32,
    /// Sustained items (samples+histograms+exemplars, or spans+log records) per second.
    pub items_per_second: NonZeroU32,
    /// Items that may arrive at once; a single request with more is `413`.
    pub items_burst: NonZeroU32,
    /// Client tokens only: requests per second from one client address, so that one abusive
    /// browser cannot spend a public token's whole budget.
    pub per_client_requests_per_second: NonZeroU32,
    /// Client tokens only: burst of one client address.
    pub per_client_requests_burst: NonZeroU32,
}

const fn nz(n: u32) -> NonZeroU32 {
    match NonZeroU32::new(n) {
        Some(v) => v,
        None => NonZeroU32::MIN,
    }
}

/// Per-token overrides (admin API `limits` object) and partial config sections: every field
/// optional, applied over the token type's defaults.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct LimitOverrides {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requests_per_second: Option<NonZeroU32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub requests_burst: Option<NonZeroU32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub items_per_second: Option<NonZeroU32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub items_burst: Option<NonZeroU32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_client_requests_per_second: Option<NonZeroU32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub per_client_requests_burst: Option<NonZeroU32>,
}

impl LimitOverrides {
    pub fn is_empty(&self) -> bool {
        *self == LimitOverrides::default()
    }
}

impl RateLimits {
    /// These limits with every field that `o` sets replaced.
    pub fn with(self, o: &LimitOverrides) -> RateLimits {
        RateLimits {
            requests_per_second: o.requests_per_second.unwrap_or(self.requests_per_second),
            requests_burst: o.requests_burst.unwrap_or(self.requests_burst),
            items_per_second: o.items_per_second.unwrap_or(self.items_per_second),
            items_burst: o.items_burst.unwrap_or(self.items_burst),
            per_client_requests_per_second: o
                .per_client_requests_per_second
                .unwrap_or(self.per_client_requests_per_second),
            per_client_requests_burst: o
                .per_client_requests_burst
                .unwrap_or(self.per_client_requests_burst),
        }
    }
}

/// Default limits per token type. A config section may set only some fields; the rest keep
/// the built-in defaults.
#[derive(Clone, Debug, Serialize)]
pub struct LimitDefaults {
    pub client: RateLimits,
    pub remote_write: RateLimits,
    /// `redis://[:password@]host:port[/db]`, or `rediss://` for TLS (env
    /// `INGEST_EDGE_REDIS_URL`): each token's request and item limits hold across every edge
    /// sharing this Redis (SPEC §16). Empty: per edge.
    pub redis_url: RedisUrl,
    /// PEM certificates that a `rediss://` server's certificate must chain to (a private CA);
    /// unset: the system's roots. The server name is always checked.
    pub redis_ca_file: Option<PathBuf>,
}

/// A Redis URL whose password never reaches a log (`Debug` hides it).
#[derive(Clone, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(transparent)]
pub struct RedisUrl(pub String);

impl std::fmt::Debug for RedisUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match url::Url::parse(&self.0) {
            Ok(mut u) if u.password().is_some() => {
                let _ = u.set_password(Some("***"));
                write!(f, "{:?}", u.as_str())
            }
            Ok(_) => write!(f, "{:?}", self.0),
            Err(_) if self.0.is_empty() => f.write_str("\"\""),
            Err(_) => f.write_str("\"(unparsable)\""),
        }
    }
}

impl<'de> Deserialize<'de> for LimitDefaults {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(default, deny_unknown_fields)]
        #[derive(Default)]
        struct Partial {
            client: LimitOverrides,
            remote_write: LimitOverrides,
            redis_url: RedisUrl,
            redis_ca_file: Option<PathBuf>,
        }
        let p = Partial::deserialize(d)?;
        let base = LimitDefaults::default();
        Ok(LimitDefaults {
            client: base.client.with(&p.client),
            remote_write: base.remote_write.with(&p.remote_write),
            redis_url: p.redis_url,
            redis_ca_file: p.redis_ca_file,
        })
    }
}

impl Default for LimitDefaults {
    fn default() -> Self {
        LimitDefaults {
            client: RateLimits {
                requests_per_second: nz(200),
                requests_burst: nz(1000),
                items_per_second: nz(20_000),
                items_burst: nz(100_000),
                per_client_requests_per_second: nz(10),
                per_client_requests_burst: nz(50),
            },
            remote_write: RateLimits {
                requests_per_second: nz(1000),
                requests_burst: nz(2000),
                items_per_second: nz(1_000_000),
                items_burst: nz(5_000_000),
                per_client_requests_per_second: nz(1000),
                per_client_requests_burst: nz(2000),
            },
            redis_url: RedisUrl::default(),
            redis_ca_file: None,
        }
    }
}
