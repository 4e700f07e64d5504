//! `[server]`: the listeners, their connection caps and timeouts, TLS and HTTP/2.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::humantime_serde_compat;
use crate::client_addr::TrustedProxies;

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
