//! `[pipeline]`: the hand-off to the spool, the forwarders and the upstreams.

use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::humantime_serde_compat;

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
