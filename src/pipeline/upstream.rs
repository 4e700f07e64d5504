//! One upstream and the delivery of one batch to it: the request exactly as the upstream
//! expects it (original body and encoding, remote-write version header, tenant header), and
//! the retry policy: exponential backoff with jitter on 5xx, 408, 429 and network errors,
//! `Retry-After` honoured, any other status final.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;
use reqwest::header::{HeaderMap, HeaderName, CONTENT_ENCODING, CONTENT_TYPE, RETRY_AFTER};
use reqwest::{StatusCode, Url};

use super::gate::Gate;
use super::record::Spooled;
use super::stats::QueueMetrics;
use super::{PipelineError, Queue};

/// First retry delay; doubled per attempt up to the configured maximum.
const BACKOFF_BASE: Duration = Duration::from_millis(100);
/// A `Retry-After` longer than this is not believed (a misconfigured upstream must not park a
/// queue for a day).
const RETRY_AFTER_CAP: Duration = Duration::from_secs(300);
/// Bytes of an error response kept for the log.
const ERROR_BODY_BYTES: usize = 512;
/// Bytes of a success response read (to keep the connection reusable) before giving up on it.
const SUCCESS_BODY_BYTES: usize = 64 * 1024;

/// Where one queue's batches go.
#[derive(Debug)]
pub(crate) struct Upstream {
    /// Which queue this serves (decides the headers).
    pub queue: Queue,
    /// Full URL to POST to.
    pub url: Url,
    /// Header that carries the token's tenant, when configured.
    pub tenant_header: Option<HeaderName>,
    /// Longest wait between two attempts.
    pub max_backoff: Duration,
}

impl Upstream {
    /// Parses and checks an upstream URL (`http` or `https`).
    pub(crate) fn new(
        queue: Queue,
        url: &str,
        tenant_header: Option<&str>,
        max_backoff: Duration,
    ) -> Result<Upstream, PipelineError> {
        let bad = |why: String| PipelineError::Config(format!("upstream {url:?}: {why}"));
        let url = Url::parse(url).map_err(|e| bad(e.to_string()))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(bad("the scheme must be http or https".into()));
        }
        let tenant_header = tenant_header
            .map(|h| HeaderName::from_bytes(h.as_bytes()))
            .transpose()
            .map_err(|e| PipelineError::Config(format!("tenant header: {e}")))?;
        Ok(Upstream {
            queue,
            url,
            tenant_header,
            max_backoff,
        })
    }

    /// `<base>/v1/traces` or `<base>/v1/logs` for an OTLP/HTTP base URL.
    pub(crate) fn otlp_url(base: &str, queue: Queue) -> String {
        let signal = if queue == Queue::Logs {
            "logs"
        } else {
            "traces"
        };
        format!("{}/v1/{signal}", base.trim_end_matches('/'))
    }
}

/// How a delivery ended.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// 2xx.
    Delivered,
    /// A final refusal: the record goes to the dead-letter segment.
    Rejected {
        /// The status (0 when the request could not even be built, e.g. a bad tenant value).
        status: u16,
        /// The start of the response body, for the log.
        message: String,
    },
}

/// The remote-write protocol version header for a content type.
fn remote_write_version(content_type: &str) -> &'static str {
    if content_type.contains("io.prometheus.write.v2") {
        "2.0.0"
    } else {
        "0.1.0"
    }
}

fn request(client: &reqwest::Client, up: &Upstream, b: &Spooled) -> reqwest::RequestBuilder {
    let mut rb = client
        .post(up.url.clone())
        .header(CONTENT_TYPE, &*b.content_type)
        .body(b.body.clone());
    if let Some(enc) = &b.content_encoding {
        rb = rb.header(CONTENT_ENCODING, &**enc);
    }
    if up.queue == Queue::RemoteWrite {
        rb = rb.header(
            "X-Prometheus-Remote-Write-Version",
            remote_write_version(&b.content_type),
        );
    }
    if let (Some(name), Some(tenant)) = (&up.tenant_header, &b.tenant) {
        rb = rb.header(name.clone(), &**tenant);
    }
    rb
}

fn retryable(status: StatusCode) -> bool {
    status.is_server_error()
        || status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
}

/// `Retry-After` as delta-seconds (the HTTP-date form falls back to the backoff).
pub(crate) fn parse_retry_after(headers: &HeaderMap) -> Option<Duration> {
    let secs: u64 = headers
        .get(RETRY_AFTER)?
        .to_str()
        .ok()?
        .trim()
        .parse()
        .ok()?;
    Some(Duration::from_secs(secs))
}

/// Delay before retry number `attempt` (0-based): exponential, capped, with "equal jitter"
/// (half fixed, half random) so that many edges do not retry in lockstep; never shorter than
/// what the upstream asked for.
pub(crate) fn backoff(attempt: u32, max: Duration, retry_after: Option<Duration>) -> Duration {
    let exp = BACKOFF_BASE.saturating_mul(1u32 << attempt.min(20));
    let cap = exp.min(max).max(Duration::from_millis(1));
    let half = cap / 2;
    let jittered = half + rand::thread_rng().gen_range(Duration::ZERO..=half);
    match retry_after {
        Some(ra) => jittered.max(ra.min(RETRY_AFTER_CAP)),
        None => jittered,
    }
}

async fn read_prefix(mut resp: reqwest::Response, limit: usize) -> Vec<u8> {
    let mut out = Vec::new();
    while out.len() < limit {
        match resp.chunk().await {
            Ok(Some(c)) => out.extend_from_slice(c.get(..limit - out.len()).unwrap_or(&c)),
            _ => break,
        }
    }
    out
}

/// Sends `batch` until the upstream accepts it or refuses it for good, telling `gate` whether
/// the upstream answers. Cancelled by abort.
pub(crate) async fn deliver(
    client: reqwest::Client,
    up: Arc<Upstream>,
    batch: Spooled,
    metrics: Arc<QueueMetrics>,
    gate: &Gate,
) -> Outcome {
    let mut attempt = 0u32;
    loop {
        let started = Instant::now();
        let result = request(&client, &up, &batch).send().await;
        let retry_after = match result {
            Ok(resp) => {
                metrics.upstream_latency.observe(started.elapsed());
                let status = resp.status();
                gate.set_healthy(!retryable(status));
                if status.is_success() {
                    read_prefix(resp, SUCCESS_BODY_BYTES).await;
                    return Outcome::Delivered;
                }
                let retry_after = parse_retry_after(resp.headers());
                let body = read_prefix(resp, ERROR_BODY_BYTES).await;
                let message = String::from_utf8_lossy(&body).into_owned();
                if !retryable(status) {
                    return Outcome::Rejected {
                        status: status.as_u16(),
                        message,
                    };
                }
                tracing::warn!(
                    queue = up.queue.name(), status = status.as_u16(), attempt, %message,
                    "upstream refused batch for now; will retry"
                );
                retry_after
            }
            Err(e) if e.is_builder() => {
                return Outcome::Rejected {
                    status: 0,
                    message: e.to_string(),
                }
            }
            Err(e) => {
                gate.set_healthy(false);
                metrics.upstream_latency.observe(started.elapsed());
                tracing::warn!(queue = up.queue.name(), attempt, error = %e, "upstream request failed; will retry");
                None
            }
        };
        metrics.retries.fetch_add(1, Relaxed);
        tokio::time::sleep(backoff(attempt, up.max_backoff, retry_after)).await;
        attempt = attempt.saturating_add(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_is_capped_and_honours_retry_after() {
        let max = Duration::from_secs(2);
        for attempt in 0..40 {
            let d = backoff(attempt, max, None);
            let cap = BACKOFF_BASE.saturating_mul(1 << attempt.min(20)).min(max);
            assert!(d >= cap / 2 && d <= cap, "attempt {attempt}: {d:?}");
        }
        let d = backoff(0, max, Some(Duration::from_secs(7)));
        assert_eq!(d, Duration::from_secs(7));
        let d = backoff(0, max, Some(Duration::from_secs(100_000)));
        assert_eq!(d, RETRY_AFTER_CAP);
    }

    #[test]
    fn retry_after_delta_seconds_only() {
        let mut h = HeaderMap::new();
        assert_eq!(parse_retry_after(&h), None);
        h.insert(RETRY_AFTER, " 12 ".parse().unwrap());
        assert_eq!(parse_retry_after(&h), Some(Duration::from_secs(12)));
        h.insert(
            RETRY_AFTER,
            "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap(),
        );
        assert_eq!(parse_retry_after(&h), None);
    }

    #[test]
    fn config_checks() {
        let m = Duration::from_secs(1);
        // SPEC §15: https upstreams (was refused before TLS was built in).
        assert!(Upstream::new(Queue::Logs, "https://x/", None, m).is_ok());
        assert!(Upstream::new(Queue::Logs, "ftp://x/", None, m).is_err());
        assert!(Upstream::new(Queue::Logs, "not a url", None, m).is_err());
        assert!(Upstream::new(Queue::Logs, "http://x/", Some("bad header"), m).is_err());
        let up = Upstream::new(
            Queue::Logs,
            "http://127.0.0.1:1/w",
            Some("X-Scope-OrgID"),
            m,
        )
        .unwrap();
        assert_eq!(up.tenant_header.unwrap().as_str(), "x-scope-orgid");
        assert_eq!(
            Upstream::otlp_url("http://h:4318/", Queue::Traces),
            "http://h:4318/v1/traces"
        );
        assert_eq!(
            Upstream::otlp_url("http://h:4318", Queue::Logs),
            "http://h:4318/v1/logs"
        );
        assert_eq!(
            remote_write_version("application/x-protobuf;proto=io.prometheus.write.v2.Request"),
            "2.0.0"
        );
        assert_eq!(remote_write_version("application/x-protobuf"), "0.1.0");
    }
}
