//! What the server *delivered* while it was loaded, next to what it accepted: snapshots of the
//! sink's counters (`GET /__sink/stats`) and of chosen series of the server's own Prometheus
//! `/metrics`, taken by the run itself at three instants: before the first request, when the
//! measured window opens, and when it closes. The window's delivered rate is the sink's item
//! count between the last two; what was still queued at the end is what the server accepted
//! since the first snapshot minus what reached the sink since then.
//!
//! Taken inside the run (not by the calling script) so that the instants are exactly the
//! window's, whatever the warm-up and start-up lag.

use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::header::HOST;
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use serde::{Deserialize, Serialize};
use tokio::net::TcpStream;
use tokio::time::{timeout, Instant};

use crate::target::Target;

/// Each fetch is bounded: a stalled server costs a snapshot, not the run.
const FETCH_TIMEOUT: Duration = Duration::from_secs(3);

/// Counters of `loadtest sink` (see `sink`).
#[derive(Clone, Copy, Debug, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct SinkCounts {
    /// Requests received.
    pub requests: u64,
    /// Body bytes received.
    pub bytes: u64,
    /// remote_write samples received.
    pub samples: u64,
    /// OTLP spans received.
    pub spans: u64,
    /// Requests whose items the sink could not count.
    pub uncounted: u64,
}

impl SinkCounts {
    /// Samples and spans: one run sends one kind, so the sum is that kind.
    pub fn items(&self) -> u64 {
        self.samples + self.spans
    }
}

/// One series selector: `name` (every series of that name, summed) or `name{k="v",...}`
/// (the series carrying all of those labels, summed).
#[derive(Clone, Debug)]
pub struct Series {
    /// As given, the key in the report.
    pub spec: String,
    name: String,
    labels: Vec<String>,
}

impl Series {
    /// Parses a selector.
    pub fn parse(spec: &str) -> Result<Series, String> {
        let (name, labels) = match spec.split_once('{') {
            None => (spec, Vec::new()),
            Some((name, rest)) => {
                let inner = rest
                    .strip_suffix('}')
                    .ok_or_else(|| format!("series {spec:?}: missing closing brace"))?;
                let labels = inner
                    .split(',')
                    .map(str::trim)
                    .filter(|l| !l.is_empty())
                    .map(str::to_owned)
                    .collect();
                (name, labels)
            }
        };
        if name.is_empty()
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':')
        {
            return Err(format!("series {spec:?}: bad metric name"));
        }
        Ok(Series {
            spec: spec.to_owned(),
            name: name.to_owned(),
            labels,
        })
    }

    /// The sum over the matching lines of a text exposition; `None` if no line matches.
    pub fn value_in(&self, text: &str) -> Option<f64> {
        let mut sum = None;
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let end = line.find(['{', ' ']).unwrap_or(line.len());
            if line.get(..end) != Some(self.name.as_str()) {
                continue;
            }
            let rest = line.get(end..).unwrap_or("");
            let (labels, value) = match rest.strip_prefix('{') {
                Some(r) => match r.rfind('}') {
                    Some(close) => (
                        r.get(..close).unwrap_or(""),
                        r.get(close + 1..).unwrap_or(""),
                    ),
                    None => continue,
                },
                None => ("", rest),
            };
            if !self.labels.iter().all(|l| labels.contains(l.as_str())) {
                continue;
            }
            if let Some(v) = value
                .split_whitespace()
                .next()
                .and_then(|v| v.parse::<f64>().ok())
            {
                *sum.get_or_insert(0.0) += v;
            }
        }
        sum
    }
}

/// Where to look.
#[derive(Clone, Debug)]
pub struct Observer {
    /// The sink's stats URL.
    pub sink: Option<Target>,
    /// The server's `/metrics` URL.
    pub metrics: Option<Target>,
    /// Series to read from it.
    pub series: Vec<Series>,
}

/// The counters at one instant.
#[derive(Clone, Debug, Serialize)]
pub struct Snapshot {
    /// Seconds since the run started.
    pub at_s: f64,
    /// The sink's counters, if it answered.
    pub sink: Option<SinkCounts>,
    /// Each selected series that was found (absent: not exposed, or no answer).
    pub series: BTreeMap<String, f64>,
}

impl Observer {
    /// Reads the sink and the server's metrics concurrently.
    pub async fn snapshot(&self, run_start: Instant) -> Snapshot {
        let sink = async {
            let t = self.sink.as_ref()?;
            let body = get(t).await?;
            serde_json::from_slice::<SinkCounts>(&body).ok()
        };
        let metrics = async {
            let t = self.metrics.as_ref()?;
            get(t).await
        };
        let (sink, metrics) = tokio::join!(sink, metrics);
        let text = metrics.map(|b| String::from_utf8_lossy(&b).into_owned());
        let series = self
            .series
            .iter()
            .filter_map(|s| Some((s.spec.clone(), s.value_in(text.as_deref()?)?)))
            .collect();
        Snapshot {
            at_s: run_start.elapsed().as_secs_f64(),
            sink,
            series,
        }
    }
}

/// One `GET` on a fresh connection; `None` on any failure or a non-2xx.
async fn get(t: &Target) -> Option<Bytes> {
    let fetch = async {
        let stream = TcpStream::connect(t.addr).await.ok()?;
        let _ = stream.set_nodelay(true);
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
            .await
            .ok()?;
        tokio::spawn(async move {
            let _ = conn.await;
        });
        let mut req = Request::new(Empty::<Bytes>::new());
        *req.method_mut() = Method::GET;
        *req.uri_mut() = t.path.clone();
        req.headers_mut().insert(HOST, t.host.clone());
        let resp = sender.send_request(req).await.ok()?;
        if !resp.status().is_success() {
            return None;
        }
        resp.into_body().collect().await.ok().map(|b| b.to_bytes())
    };
    timeout(FETCH_TIMEOUT, fetch).await.ok().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEXT: &str = "\
# HELP ingest_forwarded_items_total x
# TYPE ingest_forwarded_items_total counter
ingest_forwarded_items_total{queue=\"remote_write\"} 4000
ingest_forwarded_items_total{queue=\"traces\"} 12
ingest_forwarded_items_total_other 7
vmagent_remotewrite_pending_data_bytes{path=\"/tmp/a b\", url=\"1:secret-url\"} 100
vmagent_remotewrite_pending_data_bytes{path=\"/tmp/c\", url=\"2:secret-url\"} 23
up 1
";

    #[test]
    fn selects_and_sums_series() {
        let v = |s: &str| Series::parse(s).unwrap().value_in(TEXT);
        assert_eq!(
            v("ingest_forwarded_items_total{queue=\"remote_write\"}"),
            Some(4000.0)
        );
        assert_eq!(v("ingest_forwarded_items_total"), Some(4012.0));
        assert_eq!(v("vmagent_remotewrite_pending_data_bytes"), Some(123.0));
        assert_eq!(v("up"), Some(1.0));
        assert_eq!(v("ingest_forwarded_items_total{queue=\"logs\"}"), None);
        assert_eq!(v("missing"), None);
        assert!(Series::parse("a{b=\"c\"").is_err());
        assert!(Series::parse("{b=\"c\"}").is_err());
    }
}
