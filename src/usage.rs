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

use crate::reject::Reason;
use crate::secret::TokenType;
use crate::token::cache::ActiveToken;

mod abuse;
mod mobile;

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
    /// The token's abuse-monitoring state (empty until its first request), kept here so that
    /// it lives as long as the counters and costs no allocation of its own.
    pub watch: crate::abuse::Watch,
}

#[derive(Debug)]
struct Counters {
    /// `ingest_requests_total` by endpoint and code.
    requests: PerEndpoint<{ CODES.len() }>,
    /// `ingest_rejected_total` by endpoint and reason, allocated on the token's first refusal:
    /// 552 bytes that most active tokens (which are never refused) do without.
    rejected: OnceLock<Box<PerEndpoint<{ Reason::ALL.len() }>>>,
    /// `ingest_received_bytes_total` / `ingest_decoded_bytes_total` by endpoint.
    received_bytes: [AtomicU64; 3],
    decoded_bytes: [AtomicU64; 3],
    samples: AtomicU64,
    histograms: AtomicU64,
    exemplars: AtomicU64,
    metadata: AtomicU64,
    /// `ingest_rum_items_total` by signal (traces, logs).
    rum_items: [AtomicU64; 2],
    /// `ingest_attestation_failures_total` (mobile tokens in `report` mode).
    attestation_failures: AtomicU64,
    /// `ingest_mobile_token_in_browser_total` (a mobile token sent with a browser `Origin`).
    mobile_in_browser: AtomicU64,
}

impl Counters {
    fn new() -> Counters {
        Counters {
            requests: zeros(),
            rejected: OnceLock::new(),
            received_bytes: Default::default(),
            decoded_bytes: Default::default(),
            samples: AtomicU64::new(0),
            histograms: AtomicU64::new(0),
            exemplars: AtomicU64::new(0),
            metadata: AtomicU64::new(0),
            rum_items: Default::default(),
            attestation_failures: AtomicU64::new(0),
            mobile_in_browser: AtomicU64::new(0),
        }
    }
}

impl TokenUsage {
    pub fn new(token_id: Arc<str>) -> TokenUsage {
        TokenUsage {
            token_id,
            counters: OnceLock::new(),
            last_update: AtomicU64::new(crate::time::unix_now()),
            watch: crate::abuse::Watch::default(),
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
        let rejected = self.c().rejected.get_or_init(|| Box::new(zeros()));
        rejected[endpoint as usize][reason.index()].fetch_add(1, Relaxed);
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

    /// All requests and the refusals by reason (index of [`Reason::ALL`]), across endpoints:
    /// what the abuse engine's usage history is fed with.
    pub fn totals(&self) -> (u64, [u64; Reason::ALL.len()]) {
        let mut rejected = [0u64; Reason::ALL.len()];
        let Some(c) = self.counters.get() else {
            return (0, rejected);
        };
        let requests = c.requests.iter().flatten().map(|a| a.load(Relaxed)).sum();
        for per_endpoint in c.rejected.get().into_iter().flat_map(|r| r.iter()) {
            for (sum, a) in rejected.iter_mut().zip(per_endpoint) {
                *sum += a.load(Relaxed);
            }
        }
        (requests, rejected)
    }

    pub fn rum_items(&self, endpoint: Endpoint, items: u64) {
        let i = usize::from(endpoint == Endpoint::Logs);
        self.c().rum_items[i].fetch_add(items, Relaxed);
    }

    /// An App Check token failed for a token in `report` mode (the request went on).
    pub fn attestation_failure(&self) {
        self.c().attestation_failures.fetch_add(1, Relaxed);
    }

    /// A mobile token arrived with a browser `Origin` (it was lifted into a web page).
    pub fn mobile_token_in_browser(&self) {
        self.c().mobile_in_browser.fetch_add(1, Relaxed);
    }
}

/// The usage view of `/metrics`: the counters of requests that matched no token, and the
/// rendering of every token's series. Each token's counters live in its cache entry (see
/// `token::registry`), so there is no second map from id to counters here.
pub struct Usage {
    unknown: Arc<TokenUsage>,
    revoked_idle_timeout: Duration,
}

impl Usage {
    pub fn new(revoked_idle_timeout: Duration) -> Usage {
        Usage {
            unknown: Arc::new(TokenUsage::new(Arc::from(""))),
            revoked_idle_timeout,
        }
    }

    /// The counters for requests that matched no token.
    pub fn unknown(&self) -> &Arc<TokenUsage> {
        &self.unknown
    }

    /// Renders every series in the Prometheus text format (0.0.4), for `tokens` (every
    /// token, as `Registry::tokens` gives them). A revoked token's
    /// series go once it has been idle for the configured timeout (and come back if it is
    /// used again, so abuse of a revoked secret stays visible).
    pub fn render(&self, out: &mut String, tokens: &[Arc<ActiveToken>]) {
        let now = crate::time::unix_now();
        let timeout = self.revoked_idle_timeout.as_secs();
        let mut shown: Vec<&ActiveToken> = tokens
            .iter()
            .filter(|t| {
                !t.revoked || now.saturating_sub(t.usage.last_update.load(Relaxed)) < timeout
            })
            .map(|t| &**t)
            .collect();
        shown.sort_by(|a, b| a.id.cmp(&b.id));
        // Tokens that never had a request have no counters: only their info and age series show.
        let mut counted: Vec<(Option<&ActiveToken>, &TokenUsage)> =
            Vec::with_capacity(shown.len() + 1);
        counted.push((None, &*self.unknown));
        counted.extend(shown.iter().map(|t| (Some(*t), &*t.usage)));
        let is_remote_write =
            |t: &Option<&ActiveToken>| t.is_some_and(|t| t.token_type == TokenType::RemoteWrite);

        header(
            out,
            "ingest_token_info",
            "gauge",
            "Token metadata; always 1. Join on token_id.",
        );
        for t in &shown {
            let _ = writeln!(
                out,
                "ingest_token_info{{token_id=\"{}\",name=\"{}\",type=\"{}\",client_type=\"{}\",environment=\"{}\"}} 1",
                Escaped(&t.id),
                Escaped(&t.name),
                t.token_type.as_str(),
                t.client_type.map(|c| c.as_str()).unwrap_or(""),
                Escaped(&t.environment)
            );
        }
        header(
            out,
            "ingest_token_age_seconds",
            "gauge",
            "Seconds since the token was created or last rotated.",
        );
        for t in shown.iter().filter(|t| !t.revoked) {
            let _ = writeln!(
                out,
                "ingest_token_age_seconds{{token_id=\"{}\"}} {}",
                Escaped(&t.id),
                now.saturating_sub(t.age_base)
            );
        }

        header(
            out,
            "ingest_requests_total",
            "counter",
            "Requests by token, endpoint and HTTP status.",
        );
        for (_, t) in &counted {
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
            for (_, t) in &counted {
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
            for (i, t) in counted
                .iter()
                .skip(1)
                .filter(|(_, t)| t.counters.get().is_some())
            {
                if is_remote_write(i) {
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
        for (i, t) in counted
            .iter()
            .skip(1)
            .filter(|(_, t)| t.counters.get().is_some())
        {
            if is_remote_write(i) {
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
        mobile::render(out, &shown);
        header(
            out,
            "ingest_rejected_total",
            "counter",
            "Refused requests by token, endpoint and reason (fixed set, see README).",
        );
        for (_, t) in &counted {
            let Some(rejected) = t.counters.get().and_then(|c| c.rejected.get()) else {
                continue;
            };
            for e in Endpoint::ALL {
                for r in Reason::ALL {
                    let v = rejected[e as usize][r.index()].load(Relaxed);
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

    fn token(id: &str, revoked: bool) -> Arc<ActiveToken> {
        let limits = crate::config::LimitDefaults::default().remote_write;
        Arc::new(ActiveToken {
            id: Arc::from(id),
            token_type: TokenType::RemoteWrite,
            origins: Default::default(),
            tenant: None,
            usage: Arc::new(TokenUsage::new(Arc::from(id))),
            limiter: Arc::new(crate::ratelimit::TokenLimiter::new(limits, false)),
            revoked,
            disabled: false,
            abuse: Default::default(),
            name: "n".into(),
            environment: "".into(),
            client_type: None,
            attestation: None,
            age_base: 1,
            secrets: Box::default(),
        })
    }

    #[test]
    fn revoked_tokens_disappear_once_idle_and_active_ones_stay() {
        let usage = Usage::new(Duration::ZERO);
        let tokens = [token("tk_active", false), token("tk_revoked", true)];
        tokens[0].usage.remote_write(5, 0, 0, 0);
        tokens[1].usage.remote_write(7, 0, 0, 0);
        let mut out = String::new();
        usage.render(&mut out, &tokens);
        assert!(
            out.contains("ingest_samples_total{token_id=\"tk_active\"} 5"),
            "{out}"
        );
        assert!(out.contains("ingest_token_age_seconds{token_id=\"tk_active\"}"));
        assert!(!out.contains("tk_revoked"), "{out}");
        // With a long timeout the revoked token's counters are still shown, but not its age.
        let usage = Usage::new(Duration::from_secs(3600));
        let mut out = String::new();
        usage.render(&mut out, &tokens);
        assert!(
            out.contains("ingest_samples_total{token_id=\"tk_revoked\"} 7"),
            "{out}"
        );
        assert!(out.contains("ingest_token_info{token_id=\"tk_revoked\""));
        assert!(!out.contains("ingest_token_age_seconds{token_id=\"tk_revoked\"}"));
    }

    #[test]
    fn unknown_codes_fall_into_500() {
        assert_eq!(CODES[code_index(418)], 500);
        assert_eq!(CODES[code_index(204)], 204);
    }
}
