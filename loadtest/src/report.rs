//! Per-worker counters and latency histogram, merged into one [`Report`] at the end of a run
//! and printed as text or JSON. Workers own their `Stats` (no shared counters on the send
//! path); merging happens once.

use std::collections::BTreeMap;
use std::time::Duration;

use hdrhistogram::Histogram;
use serde::Serialize;

use crate::observe::Snapshot;

/// Latencies are recorded in microseconds, up to one hour, with 3 significant digits.
const HIST_MAX_US: u64 = 3_600_000_000;

/// What one worker saw inside the measurement window.
#[derive(Debug)]
pub struct Stats {
    /// Latency of every completed request (any status), in microseconds; in open loop from the
    /// due time (includes waiting for a free connection and timer lag).
    pub latency: Histogram<u64>,
    /// Time from the actual send to the end of the response, in microseconds (server time
    /// plus loopback, without any queueing in the generator).
    pub service: Histogram<u64>,
    /// Responses by status code.
    pub statuses: BTreeMap<u16, u64>,
    /// Requests that got no response, by kind (`connect`, `timeout`, `io`).
    pub errors: BTreeMap<&'static str, u64>,
    /// Items (samples or spans) in requests answered 2xx.
    pub items_ok: u64,
    /// The same, warm-up included: what the server took in since the first request (the
    /// baseline of "still queued at the end").
    pub items_ok_all: u64,
    /// Body bytes sent.
    pub bytes_sent: u64,
    /// TCP connections opened (1 per worker unless the server closed some).
    pub connects: u64,
}

impl Stats {
    /// Empty stats.
    pub fn new() -> Self {
        // Constant bounds that hdrhistogram accepts (low >= 1, high >= 2 * low, sigfig <= 5).
        let latency =
            Histogram::new_with_bounds(1, HIST_MAX_US, 3).expect("constant histogram bounds");
        Stats {
            service: latency.clone(),
            latency,
            statuses: BTreeMap::new(),
            errors: BTreeMap::new(),
            items_ok: 0,
            items_ok_all: 0,
            bytes_sent: 0,
            connects: 0,
        }
    }

    /// Records one answered request.
    pub fn response(
        &mut self,
        status: u16,
        latency: Duration,
        service: Duration,
        items: u64,
        bytes: u64,
    ) {
        let us = |d: Duration| u64::try_from(d.as_micros()).unwrap_or(u64::MAX).max(1);
        self.latency.saturating_record(us(latency));
        self.service.saturating_record(us(service));
        *self.statuses.entry(status).or_default() += 1;
        if (200..300).contains(&status) {
            self.items_ok += items;
        }
        self.bytes_sent += bytes;
    }

    /// Records one request that got no response.
    pub fn error(&mut self, kind: &'static str) {
        *self.errors.entry(kind).or_default() += 1;
    }

    /// Folds `other` into `self`.
    pub fn merge(&mut self, other: &Stats) {
        // Same bounds on both sides, so `add` cannot fail.
        let _ = self.latency.add(&other.latency);
        let _ = self.service.add(&other.service);
        for (k, v) in &other.statuses {
            *self.statuses.entry(*k).or_default() += v;
        }
        for (k, v) in &other.errors {
            *self.errors.entry(k).or_default() += v;
        }
        self.items_ok += other.items_ok;
        self.items_ok_all += other.items_ok_all;
        self.bytes_sent += other.bytes_sent;
        self.connects += other.connects;
    }
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Serialize)]
pub struct Latency {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile (the figure the edge's latency target is about).
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Slowest request.
    pub max: f64,
    /// Arithmetic mean.
    pub mean: f64,
}

impl Latency {
    fn of(h: &Histogram<u64>) -> Self {
        let q = |p: f64| h.value_at_quantile(p) as f64 / 1000.0;
        Latency {
            p50: q(0.5),
            p90: q(0.9),
            p99: q(0.99),
            p999: q(0.999),
            max: h.max() as f64 / 1000.0,
            mean: if h.is_empty() { 0.0 } else { h.mean() / 1000.0 },
        }
    }
}

/// The result of one run, as printed with `--json`.
#[derive(Debug, Serialize)]
pub struct Report {
    /// Traffic kind.
    pub mode: crate::payload::Mode,
    /// Target URL (without the query token).
    pub target: String,
    /// Connections (workers).
    pub connections: usize,
    /// Open-loop target rate in requests/s, or null for closed loop.
    pub rate: Option<f64>,
    /// Open loop: requests due inside the measured window (`rate * duration`); the
    /// difference to `requests` was never sent because the server fell behind.
    pub expected: Option<u64>,
    /// Measured window in seconds.
    pub duration_s: f64,
    /// Requests that completed or failed inside the window.
    pub requests: u64,
    /// 2xx responses.
    pub ok: u64,
    /// Non-2xx responses.
    pub non_2xx: u64,
    /// Responses by status code.
    pub status: BTreeMap<String, u64>,
    /// Requests with no response.
    pub errors: u64,
    /// Errors by kind.
    pub error_kinds: BTreeMap<String, u64>,
    /// All requests per second.
    pub req_per_s: f64,
    /// 2xx requests per second.
    pub ok_per_s: f64,
    /// "samples" or "spans".
    pub item_name: &'static str,
    /// Items in 2xx requests per second (samples/s for remote-write).
    pub items_per_s: f64,
    /// Body megabytes per second sent.
    pub mb_per_s: f64,
    /// TCP connections opened.
    pub connects: u64,
    /// Latency percentiles (closed loop: from send; open loop: from the intended send time).
    pub latency_ms: Latency,
    /// Service time percentiles: from the actual send (equal to `latency_ms` in closed loop).
    pub service_ms: Latency,
    /// Distinct tokens rotated over (0: one fixed token, or none).
    pub tokens: usize,
    /// What the server delivered during the window; absent without `--observe-*`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub observed: Option<Observed>,
}

/// Delivery during the window, from the sink's counts and the server's own series.
#[derive(Debug, Serialize)]
pub struct Observed {
    /// Seconds between the window's two snapshots (the rates' denominator).
    pub window_s: f64,
    /// Items (samples or spans) that reached the sink inside the window.
    pub delivered_items: Option<u64>,
    /// The same per second: the figure to set beside `items_per_s` (accepted).
    pub delivered_items_per_s: Option<f64>,
    /// Requests the sink received inside the window.
    pub delivered_requests: Option<u64>,
    /// Of those, requests whose items the sink could not count (0 expected).
    pub uncounted_requests: Option<u64>,
    /// Items answered 2xx since the first request, warm-up included.
    pub accepted_items_total: u64,
    /// Items that reached the sink from the first snapshot to the window's end.
    pub sink_items_total: Option<u64>,
    /// Accepted and not at the sink when the window closed (requests still in flight at that
    /// instant count as queued).
    pub queued_items_at_end: Option<i64>,
    /// Each selected server series' change over the window, per second.
    pub series_per_s: BTreeMap<String, f64>,
    /// Each selected server series' value when the window closed.
    pub series_at_end: BTreeMap<String, f64>,
    /// The raw snapshots: before the first request, window start, window end.
    pub snapshots: [Snapshot; 3],
}

impl Report {
    /// Builds the report from merged stats.
    pub fn new(base: ReportBase, stats: &Stats, elapsed: Duration) -> Self {
        let secs = elapsed.as_secs_f64().max(1e-9);
        let ok: u64 = stats
            .statuses
            .iter()
            .filter(|(s, _)| (200..300).contains(*s))
            .map(|(_, n)| n)
            .sum();
        let answered: u64 = stats.statuses.values().sum();
        let errors: u64 = stats.errors.values().sum();
        Report {
            mode: base.mode,
            target: base.target,
            connections: base.connections,
            rate: base.rate,
            expected: base
                .rate
                .map(|r| (r * base.window.as_secs_f64()).round() as u64),
            duration_s: secs,
            requests: answered + errors,
            ok,
            non_2xx: answered - ok,
            status: stats
                .statuses
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
            errors,
            error_kinds: stats
                .errors
                .iter()
                .map(|(k, v)| (k.to_string(), *v))
                .collect(),
            req_per_s: (answered + errors) as f64 / secs,
            ok_per_s: ok as f64 / secs,
            item_name: base.item_name,
            items_per_s: stats.items_ok as f64 / secs,
            mb_per_s: stats.bytes_sent as f64 / secs / 1e6,
            connects: stats.connects,
            latency_ms: Latency::of(&stats.latency),
            service_ms: Latency::of(&stats.service),
            tokens: base.tokens,
            observed: None,
        }
    }

    /// Adds the delivery figures from the snapshots taken before the first request (`first`)
    /// and at the window's start (`from`) and end (`to`).
    pub fn observe(&mut self, first: Snapshot, from: Snapshot, to: Snapshot, accepted: u64) {
        let window_s = (to.at_s - from.at_s).max(1e-9);
        let sink_delta = |a: &Snapshot, b: &Snapshot| match (a.sink, b.sink) {
            (Some(a), Some(b)) => Some((
                b.items().saturating_sub(a.items()),
                b.requests.saturating_sub(a.requests),
                b.uncounted.saturating_sub(a.uncounted),
            )),
            _ => None,
        };
        let window = sink_delta(&from, &to);
        let total = sink_delta(&first, &to).map(|(items, _, _)| items);
        let series_per_s = to
            .series
            .iter()
            .filter_map(|(k, v)| Some((k.clone(), (v - from.series.get(k)?) / window_s)))
            .collect();
        self.observed = Some(Observed {
            window_s,
            delivered_items: window.map(|w| w.0),
            delivered_items_per_s: window.map(|w| w.0 as f64 / window_s),
            delivered_requests: window.map(|w| w.1),
            uncounted_requests: window.map(|w| w.2),
            accepted_items_total: accepted,
            sink_items_total: total,
            queued_items_at_end: total.map(|t| {
                i64::try_from(accepted).unwrap_or(i64::MAX) - i64::try_from(t).unwrap_or(i64::MAX)
            }),
            series_per_s,
            series_at_end: to.series.clone(),
            snapshots: [first, from, to],
        });
    }

    /// Human-readable summary.
    pub fn text(&self) -> String {
        let mut text = self.text_load();
        if let Some(o) = &self.observed {
            text.push_str(&format!(
                "\ndelivered to the sink in the window: {} {}/s ({} requests, {} uncounted); \
                 accepted since start {}, still queued at the end {}\nserver series per s: {:?}\n\
                 server series at the end: {:?}",
                o.delivered_items_per_s
                    .map_or("n/a".into(), |v| format!("{v:.0}")),
                self.item_name,
                o.delivered_requests.map_or("n/a".into(), |v| v.to_string()),
                o.uncounted_requests.map_or("n/a".into(), |v| v.to_string()),
                o.accepted_items_total,
                o.queued_items_at_end
                    .map_or("n/a".into(), |v| v.to_string()),
                o.series_per_s,
                o.series_at_end,
            ));
        }
        text
    }

    fn text_load(&self) -> String {
        let l = &self.latency_ms;
        let loop_kind = match self.rate {
            Some(r) => format!(
                "open loop at {r:.0} req/s, {} due",
                self.expected.unwrap_or(0)
            ),
            None => "closed loop".to_string(),
        };
        format!(
            "{:?} -> {} ({}, {} connections, {:.1} s)\n\
             requests {}  ok {}  non-2xx {}  errors {}  status {:?}  errors {:?}\n\
             {:.0} req/s  {:.0} {}/s  {:.1} MB/s  connects {}\n\
             latency ms: p50 {:.3}  p90 {:.3}  p99 {:.3}  p99.9 {:.3}  max {:.3}  mean {:.3}\n\
             service ms: p50 {:.3}  p99 {:.3}  max {:.3}",
            self.mode,
            self.target,
            loop_kind,
            self.connections,
            self.duration_s,
            self.requests,
            self.ok,
            self.non_2xx,
            self.errors,
            self.status,
            self.error_kinds,
            self.req_per_s,
            self.items_per_s,
            self.item_name,
            self.mb_per_s,
            self.connects,
            l.p50,
            l.p90,
            l.p99,
            l.p999,
            l.max,
            l.mean,
            self.service_ms.p50,
            self.service_ms.p99,
            self.service_ms.max
        )
    }
}

/// The descriptive part of a report, known before the run.
#[derive(Debug)]
pub struct ReportBase {
    /// Traffic kind.
    pub mode: crate::payload::Mode,
    /// Target URL as given.
    pub target: String,
    /// Connections.
    pub connections: usize,
    /// Open-loop rate.
    pub rate: Option<f64>,
    /// The measured window as configured (`--duration`).
    pub window: Duration,
    /// "samples" or "spans".
    pub item_name: &'static str,
    /// Tokens rotated over.
    pub tokens: usize,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merge_and_rates() {
        let mut a = Stats::new();
        a.response(
            204,
            Duration::from_millis(2),
            Duration::from_millis(1),
            2000,
            100,
        );
        a.response(
            429,
            Duration::from_millis(1),
            Duration::from_millis(1),
            2000,
            100,
        );
        let mut b = Stats::new();
        b.response(
            204,
            Duration::from_millis(4),
            Duration::from_millis(3),
            2000,
            100,
        );
        b.error("timeout");
        a.merge(&b);
        let base = ReportBase {
            mode: crate::payload::Mode::RwV1,
            target: "t".into(),
            connections: 2,
            rate: None,
            window: Duration::from_secs(2),
            item_name: "samples",
            tokens: 0,
        };
        let r = Report::new(base, &a, Duration::from_secs(2));
        assert_eq!((r.requests, r.ok, r.non_2xx, r.errors), (4, 2, 1, 1));
        assert_eq!(r.items_per_s, 2000.0);
        assert_eq!(r.req_per_s, 2.0);
        assert!((r.latency_ms.max - 4.0).abs() < 0.01);
        assert!((r.latency_ms.p50 - 2.0).abs() < 0.01);
        assert!((r.service_ms.max - 3.0).abs() < 0.01);
        assert_eq!(r.status["429"], 1);
    }
}
