//! Per-token usage counters (SPEC §8) and their Prometheus text rendering.
//!
//! Every metric name and label set is declared here, once. Counters are plain atomics held in
//! a [`TokenUsage`] that the token cache entry points at, so the request path bumps a counter
//! with one atomic add and no registry lookup. Label values come only from fixed sets
//! ([`Endpoint`], [`Reason`], status codes) or from the token store (id, name, environment):
//! never from the request.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use dashmap::DashMap;

use crate::reject::Reason;
use crate::token::registry::IdHasher;
use crate::token::TokenRecord;

/// The `endpoint` label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    Traces,
    Logs,
    RemoteWrite,
}

impl Endpoint {
    pub const ALL: [Endpoint; 3] = [Endpoint::Traces, Endpoint::Logs, Endpoint::RemoteWrite];

    pub fn label(self) -> &'static str {
        match self {
            Endpoint::Traces => "traces",
            Endpoint::Logs => "logs",
            Endpoint::RemoteWrite => "remote_write",
        }
    }
}

/// The status codes the ingest listener answers with; `code` label values.
const CODES: [u16; 13] = [
    200, 204, 400, 401, 403, 404, 405, 408, 413, 415, 429, 500, 503,
];

fn code_index(code: u16) -> usize {
    CODES
        .iter()
        .position(|c| *c == code)
        .unwrap_or(CODES.len() - 2)
}

type PerEndpoint<const N: usize> = [[AtomicU64; N]; 3];

fn zeros<const N: usize>() -> PerEndpoint<N> {
    std::array::from_fn(|_| std::array::from_fn(|_| AtomicU64::new(0)))
}

/// The counters of one token (or of `token_id=""` for requests that matched none).
///
/// The counter arrays are allocated on the token's first request: most of a large token
/// population is idle, and a million idle tokens must not cost a kilobyte each.
#[derive(Debug)]
pub struct TokenUsage {
    /// The `token_id` label value.
    pub token_id: Arc<str>,
    counters: OnceLock<Box<Counters>>,
    /// Seconds since the Unix epoch of the last update; drives the idle removal of revoked tokens.
    last_update: AtomicU64,
}

#[derive(Debug)]
struct Counters {
    /// `ingest_requests_total` by endpoint and code.
    requests: PerEndpoint<{ CODES.len() }>,
    /// `ingest_rejected_total` by endpoint and reason.
    rejected: PerEndpoint<{ Reason::ALL.len() }>,
    /// `ingest_received_bytes_total` / `ingest_decoded_bytes_total` by endpoint.
    received_bytes: [AtomicU64; 3],
    decoded_bytes: [AtomicU64; 3],
    samples: AtomicU64,
    histograms: AtomicU64,
    exemplars: AtomicU64,
    metadata: AtomicU64,
    /// `ingest_rum_items_total` by signal (traces, logs).
    rum_items: [AtomicU64; 2],
}

impl Counters {
    fn new() -> Counters {
        Counters {
            requests: zeros(),
            rejected: zeros(),
            received_bytes: Default::default(),
            decoded_bytes: Default::default(),
            samples: AtomicU64::new(0),
            histograms: AtomicU64::new(0),
            exemplars: AtomicU64::new(0),
            metadata: AtomicU64::new(0),
            rum_items: Default::default(),
        }
    }
}

impl TokenUsage {
    pub fn new(token_id: Arc<str>) -> TokenUsage {
        TokenUsage {
            token_id,
            counters: OnceLock::new(),
            last_update: AtomicU64::new(crate::time::unix_now()),
        }
    }

    fn c(&self) -> &Counters {
        self.counters.get_or_init(|| Box::new(Counters::new()))
    }

    fn load(&self, f: impl FnOnce(&Counters) -> &AtomicU64) -> u64 {
        self.counters.get().map_or(0, |c| f(c).load(Relaxed))
    }

    pub fn request(&self, endpoint: Endpoint, code: u16) {
        self.c().requests[endpoint as usize][code_index(code)].fetch_add(1, Relaxed);
        self.last_update.store(crate::time::unix_now(), Relaxed);
    }

    pub fn rejected(&self, endpoint: Endpoint, reason: Reason) {
        self.c().rejected[endpoint as usize][reason.index()].fetch_add(1, Relaxed);
    }

    pub fn bytes(&self, endpoint: Endpoint, received: u64, decoded: u64) {
        let c = self.c();
        c.received_bytes[endpoint as usize].fetch_add(received, Relaxed);
        c.decoded_bytes[endpoint as usize].fetch_add(decoded, Relaxed);
    }

    pub fn remote_write(&self, samples: u64, histograms: u64, exemplars: u64, metadata: u64) {
        let c = self.c();
        c.samples.fetch_add(samples, Relaxed);
        c.histograms.fetch_add(histograms, Relaxed);
        c.exemplars.fetch_add(exemplars, Relaxed);
        c.metadata.fetch_add(metadata, Relaxed);
    }

    pub fn rum_items(&self, endpoint: Endpoint, items: u64) {
        let i = usize::from(endpoint == Endpoint::Logs);
        self.c().rum_items[i].fetch_add(items, Relaxed);
    }
}

/// The usage registry: one [`TokenUsage`] per token id that has a cache entry, plus the shared
/// one for unmatched requests.
pub struct Usage {
    by_id: DashMap<Arc<str>, Arc<TokenUsage>, IdHasher>,
    /// Token metadata for `ingest_token_info` and the age gauge, refreshed by the control plane.
    info: DashMap<Arc<str>, TokenInfo, IdHasher>,
    unknown: Arc<TokenUsage>,
    revoked_idle_timeout: Duration,
}

/// What `/metrics` shows about a token besides its counters: the registry's own record,
/// shared rather than copied (a million tokens would otherwise hold their names twice).
#[derive(Clone, Debug)]
struct TokenInfo(Arc<TokenRecord>);

impl TokenInfo {
    fn token_type(&self) -> &'static str {
        self.0.token_type.as_str()
    }

    fn client_type(&self) -> &'static str {
        self.0.client_type.map(|c| c.as_str()).unwrap_or("")
    }

    /// Creation or last rotation, seconds since the epoch.
    fn age_base(&self) -> u64 {
        self.0.rotated_at.unwrap_or(self.0.created_at)
    }

    /// Set once revoked: the counters go after an idle timeout.
    fn revoked(&self) -> bool {
        self.0.revoked_at.is_some()
    }
}

impl Usage {
    pub fn new(revoked_idle_timeout: Duration) -> Usage {
        Usage::with_capacity(revoked_idle_timeout, 0)
    }

    /// Sized for `tokens` tokens (start-up with a large store).
    pub fn with_capacity(revoked_idle_timeout: Duration, tokens: usize) -> Usage {
        Usage {
            by_id: DashMap::with_capacity_and_hasher(tokens, IdHasher::default()),
            info: DashMap::with_capacity_and_hasher(tokens, IdHasher::default()),
            unknown: Arc::new(TokenUsage::new(Arc::from(""))),
            revoked_idle_timeout,
        }
    }

    /// The counters for requests that matched no token.
    pub fn unknown(&self) -> &Arc<TokenUsage> {
        &self.unknown
    }

    /// The counters of a token, created on first use; called by the control plane when it builds
    /// a cache entry, never per request.
    pub fn for_token(&self, id: Arc<str>, record: &Arc<TokenRecord>) -> Arc<TokenUsage> {
        self.info.insert(id.clone(), TokenInfo(Arc::clone(record)));
        self.by_id
            .entry(id.clone())
            .or_insert_with(|| Arc::new(TokenUsage::new(id)))
            .clone()
    }

    /// Renders every series in the Prometheus text format (0.0.4).
    pub fn render(&self, out: &mut String) {
        let now = crate::time::unix_now();
        self.forget_idle_revoked(now);
        // Tokens that never had a request have no counters: only their info and age series show.
        let mut tokens: Vec<Arc<TokenUsage>> =
            self.by_id.iter().map(|e| e.value().clone()).collect();
        tokens.sort_by(|a, b| a.token_id.cmp(&b.token_id));
        tokens.insert(0, self.unknown.clone());

        header(
            out,
            "ingest_token_info",
            "gauge",
            "Token metadata; always 1. Join on token_id.",
        );
        let mut infos: Vec<(Arc<str>, TokenInfo)> = self
            .info
            .iter()
            .map(|e| (e.key().clone(), e.value().clone()))
            .collect();
        infos.sort_by(|a, b| a.0.cmp(&b.0));
        for (id, i) in &infos {
            let _ = writeln!(
                out,
                "ingest_token_info{{token_id=\"{}\",name=\"{}\",type=\"{}\",client_type=\"{}\",environment=\"{}\"}} 1",
                Escaped(id),
                Escaped(&i.0.name),
                i.token_type(),
                i.client_type(),
                Escaped(&i.0.environment)
            );
        }
        header(
            out,
            "ingest_token_age_seconds",
            "gauge",
            "Seconds since the token was created or last rotated.",
        );
        for (id, i) in infos.iter().filter(|(_, i)| !i.revoked()) {
            let _ = writeln!(
                out,
                "ingest_token_age_seconds{{token_id=\"{}\"}} {}",
                Escaped(id),
                now.saturating_sub(i.age_base())
            );
        }

        header(
            out,
            "ingest_requests_total",
            "counter",
            "Requests by token, endpoint and HTTP status.",
        );
        for t in &tokens {
            for e in Endpoint::ALL {
                for (ci, code) in CODES.iter().enumerate() {
                    let v = t.load(|c| &c.requests[e as usize][ci]);
                    if v > 0 {
                        let _ = writeln!(
                            out,
                            "ingest_requests_total{{token_id=\"{}\",endpoint=\"{}\",code=\"{code}\"}} {v}",
                            Escaped(&t.token_id),
                            e.label()
                        );
                    }
                }
            }
        }
        for (name, help, arr) in [
            (
                "ingest_received_bytes_total",
                "Request body bytes as received (compressed).",
                0,
            ),
            (
                "ingest_decoded_bytes_total",
                "Request body bytes after decompression.",
                1,
            ),
        ] {
            header(out, name, "counter", help);
            for t in &tokens {
                for e in Endpoint::ALL {
                    let v = t.load(|c| {
                        if arr == 0 {
                            &c.received_bytes[e as usize]
                        } else {
                            &c.decoded_bytes[e as usize]
                        }
                    });
                    if v > 0 {
                        let _ = writeln!(
                            out,
                            "{name}{{token_id=\"{}\",endpoint=\"{}\"}} {v}",
                            Escaped(&t.token_id),
                            e.label()
                        );
                    }
                }
            }
        }
        for (name, help, pick) in [
            ("ingest_samples_total", "Accepted remote_write samples.", 0),
            (
                "ingest_histograms_total",
                "Accepted remote_write native histograms.",
                1,
            ),
            (
                "ingest_exemplars_total",
                "Accepted remote_write exemplars.",
                2,
            ),
            (
                "ingest_metadata_total",
                "Accepted remote_write metadata entries.",
                3,
            ),
        ] {
            header(out, name, "counter", help);
            for t in tokens.iter().skip(1).filter(|t| t.counters.get().is_some()) {
                if t_is_remote_write(&self.info, &t.token_id) {
                    let v =
                        t.load(|c| [&c.samples, &c.histograms, &c.exemplars, &c.metadata][pick]);
                    let _ = writeln!(out, "{name}{{token_id=\"{}\"}} {v}", Escaped(&t.token_id));
                }
            }
        }
        header(
            out,
            "ingest_rum_items_total",
            "counter",
            "Accepted spans (signal=traces) and log records (signal=logs).",
        );
        for t in tokens.iter().skip(1).filter(|t| t.counters.get().is_some()) {
            if t_is_remote_write(&self.info, &t.token_id) {
                continue;
            }
            for (i, signal) in ["traces", "logs"].iter().enumerate() {
                let _ = writeln!(
                    out,
                    "ingest_rum_items_total{{token_id=\"{}\",signal=\"{signal}\"}} {}",
                    Escaped(&t.token_id),
                    t.load(|c| &c.rum_items[i])
                );
            }
        }
        header(
            out,
            "ingest_rejected_total",
            "counter",
            "Refused requests by token, endpoint and reason (fixed set, see README).",
        );
        for t in &tokens {
            for e in Endpoint::ALL {
                for r in Reason::ALL {
                    let v = t.load(|c| &c.rejected[e as usize][r.index()]);
                    if v > 0 {
                        let _ = writeln!(
                            out,
                            "ingest_rejected_total{{token_id=\"{}\",endpoint=\"{}\",reason=\"{}\"}} {v}",
                            Escaped(&t.token_id),
                            e.label(),
                            r.label()
                        );
                    }
                }
            }
        }
    }

    /// Drops the series of revoked tokens idle for longer than the timeout. Their cache entries
    /// keep the `Arc`; later updates land in a detached counter that is no longer rendered.
    fn forget_idle_revoked(&self, now: u64) {
        let timeout = self.revoked_idle_timeout.as_secs();
        let idle: Vec<Arc<str>> = self
            .info
            .iter()
            .filter(|e| e.value().revoked())
            .filter(|e| {
                self.by_id
                    .get(e.key())
                    .map(|u| now.saturating_sub(u.last_update.load(Relaxed)) >= timeout)
                    .unwrap_or(true)
            })
            .map(|e| e.key().clone())
            .collect();
        for id in idle {
            self.info.remove(&id);
            self.by_id.remove(&id);
        }
    }
}

fn t_is_remote_write(info: &DashMap<Arc<str>, TokenInfo, IdHasher>, id: &Arc<str>) -> bool {
    info.get(id)
        .map(|i| i.token_type() == "remote_write")
        .unwrap_or(false)
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

/// Label value escaping of the text format: backslash, double quote and newline.
struct Escaped<'a>(&'a str);

impl std::fmt::Display for Escaped<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for c in self.0.chars() {
            match c {
                '\\' => f.write_str("\\\\")?,
                '"' => f.write_str("\\\"")?,
                '\n' => f.write_str("\\n")?,
                c => f.write_char(c)?,
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping() {
        assert_eq!(Escaped("a\"b\\c\nd").to_string(), "a\\\"b\\\\c\\nd");
    }

    fn record(id: &str, revoked: bool) -> TokenRecord {
        TokenRecord {
            id: id.into(),
            name: "n".into(),
            token_type: crate::secret::TokenType::RemoteWrite,
            client_type: None,
            origins: Default::default(),
            environment: String::new(),
            tenant: None,
            limits: Default::default(),
            created_at: 1,
            rotated_at: None,
            revoked_at: revoked.then_some(2),
            secrets: vec![],
        }
    }

    #[test]
    fn revoked_tokens_disappear_once_idle_and_active_ones_stay() {
        let usage = Usage::new(Duration::ZERO);
        let active = usage.for_token(
            Arc::from("tk_active"),
            &Arc::new(record("tk_active", false)),
        );
        let revoked = usage.for_token(
            Arc::from("tk_revoked"),
            &Arc::new(record("tk_revoked", true)),
        );
        active.remote_write(5, 0, 0, 0);
        revoked.remote_write(7, 0, 0, 0);
        let mut out = String::new();
        usage.render(&mut out);
        assert!(
            out.contains("ingest_samples_total{token_id=\"tk_active\"} 5"),
            "{out}"
        );
        assert!(!out.contains("tk_revoked"), "{out}");
        // With a long timeout the revoked token's counters are still shown.
        let usage = Usage::new(Duration::from_secs(3600));
        usage
            .for_token(
                Arc::from("tk_revoked"),
                &Arc::new(record("tk_revoked", true)),
            )
            .remote_write(7, 0, 0, 0);
        let mut out = String::new();
        usage.render(&mut out);
        assert!(
            out.contains("ingest_samples_total{token_id=\"tk_revoked\"} 7"),
            "{out}"
        );
    }

    #[test]
    fn unknown_codes_fall_into_500() {
        assert_eq!(CODES[code_index(418)], 500);
        assert_eq!(CODES[code_index(204)], 204);
    }
}
