//! Configuration: the TOML file (`config/edge.toml`), the built-in defaults for every key that
//! is absent, and the `INGEST_EDGE_*` environment overrides of SPEC §2.
//!
//! Parsing produces typed values (socket addresses, non-zero rates, byte sizes, durations), so
//! the rest of the crate never re-checks a setting.

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::client_addr::TrustedProxies;

/// Everything that can be configured. Every field has a default (see `Default` impls), so an
/// empty file is a valid configuration.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    /// Listener addresses, connection caps and timeouts.
    pub server: ServerConfig,
    /// Where the token store, audit log, admin key and spool live.
    pub data_dir: DataDir,
    /// The shared token store of several edges (SPEC §16); empty: the files in `data_dir`.
    pub store: StoreConfig,
    /// Admin API key and token lifecycle settings.
    pub admin: AdminConfig,
    /// Body size limits per endpoint.
    pub body: BodyLimits,
    /// RUM (browser) endpoint settings.
    pub rum: RumConfig,
    /// remote_write endpoint settings.
    pub remote_write: RemoteWriteConfig,
    /// Default per-token rate limits by token type.
    pub limits: LimitDefaults,
    /// Usage metrics settings.
    pub usage: UsageConfig,
    /// The hand-off to the spool and upstream forwarders.
    pub pipeline: PipelineSettings,
    /// Abuse monitoring: windows, thresholds, default response, the webhook and the
    /// leaked-secret endpoint (SPEC §12).
    pub abuse: AbuseConfig,
    /// Mobile client tokens (App Check keys).
    pub mobile: MobileConfig,
    /// Log filter (tracing `EnvFilter` syntax).
    pub log: String,
}

/// The data directory; a newtype so the default (`./data`) lives in one place.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(transparent)]
pub struct DataDir(pub PathBuf);

impl Default for DataDir {
    fn default() -> Self {
        DataDir(PathBuf::from("./data"))
    }
}

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Public listener: RUM, remote_write, `/healthz`.
    pub ingest_addr: SocketAddr,
    /// Private listener: `/metrics`, `/readyz`, admin API.
    pub ops_addr: SocketAddr,
    /// Accepted connections beyond this wait in the kernel backlog instead of costing memory.
    pub max_connections: usize,
    /// A client that has not sent its request headers by then is cut off (slowloris).
    #[serde(with = "humantime_serde_compat")]
    pub header_read_timeout: Duration,
    /// A client that has not sent the whole body by then gets `408`.
    #[serde(with = "humantime_serde_compat")]
    pub body_read_timeout: Duration,
    /// A response write that makes no progress for this long closes the connection: a client
    /// that never reads (pipelining into a full receive buffer) must not keep its slot.
    #[serde(with = "humantime_serde_compat")]
    pub write_timeout: Duration,
    /// Request line plus headers, in bytes; a larger header section is `431`. hyper's buffer
    /// limit alone let a single 100 KB header through.
    pub max_header_bytes: usize,
    /// How long shutdown waits for in-flight requests.
    #[serde(with = "humantime_serde_compat")]
    pub shutdown_grace: Duration,
    /// Ingest only: proxies (CIDRs) whose `X-Forwarded-For` names the client, so one load
    /// balancer does not make every browser share one per-client budget. Empty (default): the
    /// header is ignored, since any client could write it.
    pub trusted_proxies: TrustedProxies,
    /// Ingest only: every connection must open with a PROXY v1 or v2 header, whose source
    /// address is the client; others are closed. Off by default: only a deployment behind a
    /// proxy that sends it may turn it on.
    pub proxy_protocol: bool,
    /// PEM certificate chain, leaf first (certbot's `fullchain.pem`). Set together with
    /// `tls_key_file`, the ingest listener speaks TLS only; re-read on change and `SIGHUP`.
    pub tls_cert_file: Option<PathBuf>,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1) for `tls_cert_file`.
    pub tls_key_file: Option<PathBuf>,
    /// The ops listener uses the same certificate too. Off: it usually listens on a private
    /// address, and scrapers and admin scripts stay simple.
    pub ops_tls: bool,
    /// A TLS handshake holds a connection slot; a client that does not finish it by then is
    /// cut off, like a slow request head.
    #[serde(with = "humantime_serde_compat")]
    pub tls_handshake_timeout: Duration,
    /// Requests one HTTP/2 connection may have in progress at once (SETTINGS_MAX_CONCURRENT_STREAMS).
    /// 100 is what RFC 9113 recommends as the least and what browsers expect.
    pub h2_max_concurrent_streams: u32,
    /// This edge's name in the audit trail of a shared store; empty: the host name.
    pub name: String,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            ingest_addr: SocketAddr::from(([127, 0, 0, 1], 8080)),
            ops_addr: SocketAddr::from(([127, 0, 0, 1], 9464)),
            max_connections: 10_000,
            header_read_timeout: Duration::from_secs(10),
            body_read_timeout: Duration::from_secs(30),
            write_timeout: Duration::from_secs(10),
            max_header_bytes: 32 << 10,
            shutdown_grace: Duration::from_secs(10),
            trusted_proxies: TrustedProxies::default(),
            proxy_protocol: false,
            tls_cert_file: None,
            tls_key_file: None,
            ops_tls: false,
            tls_handshake_timeout: Duration::from_secs(10),
            h2_max_concurrent_streams: 100,
            name: String::new(),
        }
    }
}

impl ServerConfig {
    /// `name`, or the host name when it is empty (what an operator sees in the audit trail).
    pub fn edge_name(&self) -> String {
        if !self.name.is_empty() {
            return self.name.clone();
        }
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .ok()
            .or_else(|| std::env::var("HOSTNAME").ok())
            .map(|h| h.trim().to_owned())
            .filter(|h| !h.is_empty())
            .unwrap_or_else(|| "edge".to_owned())
    }
}

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
    /// `redis://[:password@]host:port[/db]` (env `INGEST_EDGE_REDIS_URL`): each token's request
    /// and item limits hold across every edge sharing this Redis (SPEC §16). Empty: per edge.
    pub redis_url: RedisUrl,
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
        }
        let p = Partial::deserialize(d)?;
        let base = LimitDefaults::default();
        Ok(LimitDefaults {
            client: base.client.with(&p.client),
            remote_write: base.remote_write.with(&p.remote_write),
            redis_url: p.redis_url,
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

#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(default, deny_unknown_fields)]
pub struct PipelineSettings {
    /// `true`: accepted data is fsynced to the spool before the client's 2xx (default).
    /// `false`: bounded in-memory hand-off (faster, loses data on a crash).
    pub durable: bool,
    /// Spool (or in-memory queue) bound across queues; over it the edge answers `503`.
    pub max_bytes: u64,
    /// Spool segment file size.
    pub segment_bytes: u64,
    /// Upstream remote-write URL; none = data stays in the spool.
    pub remote_write_upstream: Option<String>,
    /// Upstream OTLP/HTTP base URL; none = data stays in the spool.
    pub otlp_upstream: Option<String>,
    /// Header carrying a token's tenant upstream (e.g. `X-Scope-OrgID`); none = not sent.
    pub tenant_header: Option<String>,
    /// Timeout of one upstream request.
    #[serde(with = "humantime_serde_compat")]
    pub upstream_timeout: Duration,
    /// Cap of the exponential retry backoff.
    #[serde(with = "humantime_serde_compat")]
    pub retry_max_backoff: Duration,
    /// Deliveries in flight per queue. 1 keeps upstream order (Prometheus and Mimir reject
    /// out-of-order samples); raise it for VictoriaMetrics or OTLP upstreams.
    pub forward_concurrency: usize,
    /// Deliveries in flight per RUM queue (traces, logs); OTLP receivers accept any order.
    pub rum_forward_concurrency: usize,
    /// Consecutive records merged into one upstream request up to this many uncompressed
    /// bytes; 0 sends one request per accepted request.
    pub forward_batch_bytes: u64,
    /// How long newly durable records may wait for more before the forwarder reads them, so
    /// that under load one upstream request carries many fsync groups; never waited once
    /// `forward_batch_bytes` are pending. 0 reads at once.
    #[serde(with = "humantime_serde_compat")]
    pub forward_linger: Duration,
    /// A queue's undelivered bytes from which a request waits for deliveries before it is
    /// accepted, while the upstream is healthy: latency backpressure instead of filling the
    /// spool and answering `503`. 0 turns it off. At most half of `max_bytes` is used.
    pub backpressure_bytes: u64,
    /// Longest such wait; past it the request is spooled anyway (if `max_bytes` has room).
    #[serde(with = "humantime_serde_compat")]
    pub backpressure_max_wait: Duration,
    /// PEM file of extra CA certificates trusted for `https://` upstreams, besides the system
    /// roots: a private CA in front of Mimir or a collector.
    pub upstream_ca_file: Option<PathBuf>,
    /// File holding a bearer token sent to both upstreams (read once at start; never logged).
    pub upstream_bearer_token_file: Option<PathBuf>,
    /// Basic auth user for both upstreams; needs `upstream_password_file`.
    pub upstream_username: Option<String>,
    /// File holding the Basic auth password (read once at start; never logged).
    pub upstream_password_file: Option<PathBuf>,
}

impl Default for PipelineSettings {
    fn default() -> Self {
        PipelineSettings {
            durable: true,
            max_bytes: 1 << 30,
            segment_bytes: 64 << 20,
            remote_write_upstream: None,
            otlp_upstream: None,
            tenant_header: None,
            upstream_timeout: Duration::from_secs(30),
            retry_max_backoff: Duration::from_secs(30),
            forward_concurrency: 1,
            rum_forward_concurrency: 16,
            forward_batch_bytes: 4 << 20,
            forward_linger: Duration::from_millis(2),
            backpressure_bytes: 64 << 20,
            backpressure_max_wait: Duration::from_secs(5),
            upstream_ca_file: None,
            upstream_bearer_token_file: None,
            upstream_username: None,
            upstream_password_file: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("invalid config file {path}: {source}")]
    Parse {
        path: PathBuf,
        source: Box<toml::de::Error>,
    },
    #[error("invalid value {value:?} in environment variable {var}: {reason}")]
    Env {
        var: &'static str,
        value: String,
        reason: String,
    },
    #[error("invalid setting {key}: {reason}")]
    Invalid { key: &'static str, reason: String },
}

impl Config {
    /// Loads `path` if it exists (a missing default file means built-in defaults), then applies
    /// the environment overrides.
    pub fn load(path: &Path, must_exist: bool) -> Result<Config, ConfigError> {
        let mut config = match std::fs::read_to_string(path) {
            Ok(text) => Config::from_toml(&text).map_err(|source| ConfigError::Parse {
                path: path.to_owned(),
                source: Box::new(source),
            })?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound && !must_exist => Config::default(),
            Err(source) => {
                return Err(ConfigError::Read {
                    path: path.to_owned(),
                    source,
                })
            }
        };
        config.apply_env(|var| std::env::var(var).ok())?;
        config.check()?;
        Ok(config)
    }

    pub fn from_toml(text: &str) -> Result<Config, toml::de::Error> {
        toml::from_str(text)
    }

    /// SPEC §2 overrides; `get` is injected so tests need not touch the process environment.
    pub fn apply_env(&mut self, get: impl Fn(&str) -> Option<String>) -> Result<(), ConfigError> {
        fn addr(var: &'static str, value: String) -> Result<SocketAddr, ConfigError> {
            value
                .parse()
                .map_err(|e: std::net::AddrParseError| ConfigError::Env {
                    var,
                    value,
                    reason: e.to_string(),
                })
        }
        if let Some(v) = get("INGEST_EDGE_INGEST_ADDR") {
            self.server.ingest_addr = addr("INGEST_EDGE_INGEST_ADDR", v)?;
        }
        if let Some(v) = get("INGEST_EDGE_OPS_ADDR") {
            self.server.ops_addr = addr("INGEST_EDGE_OPS_ADDR", v)?;
        }
        if let Some(v) = get("INGEST_EDGE_DATA_DIR") {
            self.data_dir = DataDir(PathBuf::from(v));
        }
        if let Some(v) = get("INGEST_EDGE_ADMIN_KEY") {
            self.admin.key = Some(v);
        }
        if let Some(v) = get("INGEST_EDGE_STORE_URL") {
            self.store.url = v;
        }
        if let Some(v) = get("INGEST_EDGE_REDIS_URL") {
            self.limits.redis_url = RedisUrl(v);
        }
        if let Some(v) = get("INGEST_EDGE_LOG") {
            self.log = v;
        }
        if let Some(v) = get("INGEST_EDGE_REMOTE_WRITE_UPSTREAM") {
            self.pipeline.remote_write_upstream = Some(v).filter(|v| !v.is_empty());
        }
        if let Some(v) = get("INGEST_EDGE_OTLP_UPSTREAM") {
            self.pipeline.otlp_upstream = Some(v).filter(|v| !v.is_empty());
        }
        Ok(())
    }

    /// Cross-field checks that serde cannot express.
    pub fn check(&self) -> Result<(), ConfigError> {
        if !matches!(self.remote_write.throttle_status, 429 | 503) {
            return Err(ConfigError::Invalid {
                key: "remote_write.throttle_status",
                reason: "must be 429 or 503".into(),
            });
        }
        if !(Duration::from_secs(1)..=Duration::from_secs(30)).contains(&self.store.poll_interval) {
            return Err(ConfigError::Invalid {
                key: "store.poll_interval",
                reason: "must be between 1s and 30s".into(),
            });
        }
        let redis = &self.limits.redis_url.0;
        if !redis.is_empty() && !redis.starts_with("redis://") {
            return Err(ConfigError::Invalid {
                key: "limits.redis_url",
                reason: "must be a redis:// URL (this build has no TLS for Redis)".into(),
            });
        }
        if !self.store.url.is_empty() && !self.store.url.starts_with("postgres") {
            return Err(ConfigError::Invalid {
                key: "store.url",
                reason: "must be a postgres:// or postgresql:// URL".into(),
            });
        }
        if self.server.write_timeout.is_zero() {
            // Zero would drop every connection at its first full send buffer.
            return Err(ConfigError::Invalid {
                key: "server.write_timeout",
                reason: "must be more than 0".into(),
            });
        }
        if !(1024..=1 << 20).contains(&self.server.max_header_bytes) {
            return Err(ConfigError::Invalid {
                key: "server.max_header_bytes",
                reason: "must be between 1 KiB and 1 MiB".into(),
            });
        }
        if self.server.tls_cert_file.is_some() != self.server.tls_key_file.is_some() {
            return Err(ConfigError::Invalid {
                key: "server.tls_cert_file",
                reason: "tls_cert_file and tls_key_file are set together or not at all".into(),
            });
        }
        if self.server.ops_tls && self.server.tls_cert_file.is_none() {
            return Err(ConfigError::Invalid {
                key: "server.ops_tls",
                reason: "needs tls_cert_file and tls_key_file".into(),
            });
        }
        if self.server.tls_handshake_timeout.is_zero() || self.server.h2_max_concurrent_streams == 0
        {
            return Err(ConfigError::Invalid {
                key: "server.tls_handshake_timeout",
                reason: "tls_handshake_timeout and h2_max_concurrent_streams must be more than 0"
                    .into(),
            });
        }
        if let Some(key) = &self.admin.key {
            if key.len() < 16 {
                return Err(ConfigError::Invalid {
                    key: "admin.key",
                    reason: "must be at least 16 characters".into(),
                });
            }
        }
        for (key, n) in [
            (
                "pipeline.forward_concurrency",
                self.pipeline.forward_concurrency,
            ),
            (
                "pipeline.rum_forward_concurrency",
                self.pipeline.rum_forward_concurrency,
            ),
        ] {
            if !(1..=64).contains(&n) {
                return Err(ConfigError::Invalid {
                    key,
                    reason: "must be between 1 and 64".into(),
                });
            }
        }
        let abuse = &self.abuse;
        if abuse.short_window < Duration::from_millis(600) {
            return Err(ConfigError::Invalid {
                key: "abuse.short_window",
                reason: "must be at least 600ms (six ticks of at least 100 ms)".into(),
            });
        }
        if abuse.baseline_window < abuse.short_window {
            return Err(ConfigError::Invalid {
                key: "abuse.baseline_window",
                reason: "must be at least abuse.short_window".into(),
            });
        }
        if !(abuse.spike_factor.is_finite() && abuse.spike_factor > 1.0) {
            return Err(ConfigError::Invalid {
                key: "abuse.spike_factor",
                reason: "must be a number above 1".into(),
            });
        }
        for (key, v) in [
            ("abuse.min_items_per_second", abuse.min_items_per_second),
            (
                "abuse.origin_storm_per_second",
                abuse.origin_storm_per_second,
            ),
            ("abuse.auth_storm_per_second", abuse.auth_storm_per_second),
        ] {
            if !(v.is_finite() && v >= 0.0) {
                return Err(ConfigError::Invalid {
                    key,
                    reason: "must be a number of at least 0".into(),
                });
            }
        }
        if self.pipeline.backpressure_max_wait > Duration::from_secs(60) {
            return Err(ConfigError::Invalid {
                key: "pipeline.backpressure_max_wait",
                reason: "must be at most 60s (a sender times out first)".into(),
            });
        }
        if self.pipeline.forward_batch_bytes > 64 << 20 {
            return Err(ConfigError::Invalid {
                key: "pipeline.forward_batch_bytes",
                reason: "must be at most 64 MiB (67108864); 0 turns merging off".into(),
            });
        }
        if self.pipeline.forward_linger > Duration::from_secs(1) {
            return Err(ConfigError::Invalid {
                key: "pipeline.forward_linger",
                reason: "must be at most 1s (it delays every delivery of an idle edge)".into(),
            });
        }
        let webhook_url = Some(self.abuse.webhook_url.clone()).filter(|u| !u.is_empty());
        for (key, url) in [
            (
                "pipeline.remote_write_upstream",
                &self.pipeline.remote_write_upstream,
            ),
            ("pipeline.otlp_upstream", &self.pipeline.otlp_upstream),
            ("abuse.webhook_url", &webhook_url),
        ] {
            if let Some(url) = url {
                let parsed = url::Url::parse(url).map_err(|e| ConfigError::Invalid {
                    key,
                    reason: format!("{url:?}: {e}"),
                })?;
                if !matches!(parsed.scheme(), "http" | "https") {
                    return Err(ConfigError::Invalid {
                        key,
                        reason: format!("{url:?}: scheme must be http or https"),
                    });
                }
            }
        }
        let p = &self.pipeline;
        if p.upstream_bearer_token_file.is_some()
            && (p.upstream_username.is_some() || p.upstream_password_file.is_some())
        {
            return Err(ConfigError::Invalid {
                key: "pipeline.upstream_bearer_token_file",
                reason: "set either a bearer token or a username and password, not both".into(),
            });
        }
        if p.upstream_username.is_some() != p.upstream_password_file.is_some() {
            return Err(ConfigError::Invalid {
                key: "pipeline.upstream_username",
                reason: "upstream_username and upstream_password_file go together".into(),
            });
        }
        Ok(())
    }

    pub fn log_filter(&self) -> &str {
        if self.log.is_empty() {
            "info"
        } else {
            &self.log
        }
    }
}

/// Durations in the config are human strings (`"30s"`, `"90d"`, `"1h 30m"`).
mod humantime_serde_compat {
    use std::time::Duration;

    use serde::{Deserialize, Deserializer, Serializer};

    pub trait AsDuration: Sized {
        fn duration(&self) -> Duration;
        fn from_duration(d: Duration) -> Self;
    }
    impl AsDuration for Duration {
        fn duration(&self) -> Duration {
            *self
        }
        fn from_duration(d: Duration) -> Self {
            d
        }
    }
    impl AsDuration for super::RotationPeriod {
        fn duration(&self) -> Duration {
            self.0
        }
        fn from_duration(d: Duration) -> Self {
            super::RotationPeriod(d)
        }
    }

    pub fn serialize<S: Serializer, T: AsDuration>(v: &T, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&humantime::format_duration(v.duration()).to_string())
    }

    pub fn deserialize<'de, D: Deserializer<'de>, T: AsDuration>(d: D) -> Result<T, D::Error> {
        let text = String::deserialize(d)?;
        humantime::parse_duration(&text)
            .map(T::from_duration)
            .map_err(|e| serde::de::Error::custom(format!("{text:?}: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_file_is_all_defaults() {
        let c = Config::from_toml("").unwrap();
        assert_eq!(c.server.ingest_addr.port(), 8080);
        assert_eq!(c.server.ops_addr.port(), 9464);
        assert_eq!(c.body.rum_max_wire_bytes, 1 << 20);
        assert_eq!(c.remote_write.throttle_status, 429);
    }

    #[test]
    fn shipped_config_file_parses_and_matches_defaults() {
        let text = include_str!("../config/edge.toml");
        let c = Config::from_toml(text).unwrap();
        let d = Config::default();
        assert_eq!(c.server.ingest_addr, d.server.ingest_addr);
        assert_eq!(c.limits.client, d.limits.client);
        assert_eq!(c.limits.remote_write, d.limits.remote_write);
        assert_eq!(c.body.remote_write_max_decoded_bytes, 32 << 20);
        assert_eq!(c.admin.rotation_period, RotationPeriod::default());
        assert_eq!(c.server.body_read_timeout, d.server.body_read_timeout);
        assert_eq!(c.server.write_timeout, d.server.write_timeout);
        assert_eq!(c.server.max_header_bytes, d.server.max_header_bytes);
        assert_eq!(
            c.server.tls_handshake_timeout,
            d.server.tls_handshake_timeout
        );
        assert_eq!(
            c.server.h2_max_concurrent_streams,
            d.server.h2_max_concurrent_streams
        );
        assert!(c.server.tls_cert_file.is_none() && !c.server.ops_tls);
        assert_eq!(c.store.poll_interval, d.store.poll_interval);
        assert_eq!(c.pipeline.backpressure_bytes, d.pipeline.backpressure_bytes);
        assert_eq!(
            c.pipeline.backpressure_max_wait,
            d.pipeline.backpressure_max_wait
        );
        assert!(c.store.url.is_empty() && c.server.name.is_empty());
        assert!(c.check().is_ok());
        assert_eq!(c.mobile.app_check_jwks_file, None);
        let m = Config::from_toml("[mobile]\napp_check_jwks_file = \"/k/jwks.json\"").unwrap();
        assert_eq!(
            m.mobile.app_check_jwks_file,
            Some(PathBuf::from("/k/jwks.json"))
        );
    }

    #[test]
    fn env_overrides_file() {
        let mut c = Config::default();
        c.apply_env(|v| match v {
            "INGEST_EDGE_INGEST_ADDR" => Some("127.0.0.1:0".into()),
            "INGEST_EDGE_DATA_DIR" => Some("/tmp/x".into()),
            _ => None,
        })
        .unwrap();
        assert_eq!(c.server.ingest_addr.port(), 0);
        assert_eq!(c.data_dir.0, PathBuf::from("/tmp/x"));
        let bad = c.apply_env(|v| (v == "INGEST_EDGE_OPS_ADDR").then(|| "nope".to_string()));
        assert!(matches!(bad, Err(ConfigError::Env { .. })));
    }

    #[test]
    fn store_url_from_env_checked_and_never_shown_with_its_password() {
        let mut c = Config::default();
        let url = "postgres://ingest:hunter2-secret@127.0.0.1:5432/edges";
        c.apply_env(|v| (v == "INGEST_EDGE_STORE_URL").then(|| url.to_string()))
            .unwrap();
        assert_eq!(c.store.url, url);
        assert!(c.check().is_ok());
        let shown = format!("{c:?}");
        assert!(
            shown.contains("127.0.0.1:5432") && !shown.contains("hunter2-secret"),
            "{shown}"
        );
        c.store.poll_interval = Duration::from_secs(31);
        assert!(
            c.check().is_err(),
            "a poll slower than 30 s breaks SPEC §16"
        );
        c.store.poll_interval = Duration::from_secs(10);
        c.store.url = "mysql://x".into();
        assert!(c.check().is_err());
    }

    #[test]
    fn redis_url_from_file_or_env_checked_and_never_shown_with_its_password() {
        let c = Config::from_toml("[limits]\nredis_url = \"redis://127.0.0.1:6379\"").unwrap();
        assert_eq!(c.limits.redis_url.0, "redis://127.0.0.1:6379");
        assert!(c.check().is_ok());
        let mut c = Config::default();
        let url = "redis://:hunter2-secret@127.0.0.1:6379/0";
        c.apply_env(|v| (v == "INGEST_EDGE_REDIS_URL").then(|| url.to_string()))
            .unwrap();
        assert_eq!(c.limits.redis_url.0, url);
        let shown = format!("{c:?}");
        assert!(
            shown.contains("127.0.0.1:6379") && !shown.contains("hunter2-secret"),
            "{shown}"
        );
        c.limits.redis_url.0 = "rediss://127.0.0.1".into();
        assert!(c.check().is_err());
    }

    #[test]
    fn unknown_keys_and_bad_values_are_refused() {
        assert!(Config::from_toml("[server]\nnope = 1").is_err());
        assert!(Config::from_toml("[limits.client]\nrequests_per_second = 0").is_err());
        let c = Config::from_toml("[remote_write]\nthrottle_status = 500").unwrap();
        assert!(c.check().is_err());
        let c = Config::from_toml("[server]\nmax_header_bytes = 100").unwrap();
        assert!(c.check().is_err());
        let c = Config::from_toml("[server]\nwrite_timeout = \"0s\"").unwrap();
        assert!(c.check().is_err());
        assert!(Config::default().check().is_ok());
    }

    #[test]
    fn proxy_and_upstream_tls_settings() {
        let c = Config::from_toml(
            "[server]\ntrusted_proxies = [\"10.0.0.0/8\", \"2001:db8::1\"]\nproxy_protocol = true",
        )
        .unwrap();
        assert!(!c.server.trusted_proxies.is_empty() && c.server.proxy_protocol);
        assert!(Config::from_toml("[server]\ntrusted_proxies = [\"10.0.0.0/40\"]").is_err());
        let https = "[pipeline]\notlp_upstream = \"https://collector:4318\"";
        assert!(Config::from_toml(https).unwrap().check().is_ok());
        let ftp = "[pipeline]\notlp_upstream = \"ftp://collector\"";
        assert!(Config::from_toml(ftp).unwrap().check().is_err());
        let both = "[pipeline]\nupstream_bearer_token_file = \"/t\"\nupstream_username = \"u\"\nupstream_password_file = \"/p\"";
        assert!(Config::from_toml(both).unwrap().check().is_err());
        let user_only = "[pipeline]\nupstream_username = \"u\"";
        assert!(Config::from_toml(user_only).unwrap().check().is_err());
        let basic = "[pipeline]\nupstream_username = \"u\"\nupstream_password_file = \"/p\"";
        assert!(Config::from_toml(basic).unwrap().check().is_ok());
    }

    #[test]
    fn tls_files_come_in_pairs() {
        let c = Config::from_toml("[server]\ntls_cert_file = \"/x/fullchain.pem\"").unwrap();
        assert!(c.check().is_err());
        let c = Config::from_toml("[server]\nops_tls = true").unwrap();
        assert!(c.check().is_err());
        let c = Config::from_toml(
            "[server]\ntls_cert_file = \"/x/fullchain.pem\"\ntls_key_file = \"/x/privkey.pem\"\nops_tls = true",
        )
        .unwrap();
        assert!(c.check().is_ok());
        let c = Config::from_toml("[server]\nh2_max_concurrent_streams = 0").unwrap();
        assert!(c.check().is_err());
    }
}
