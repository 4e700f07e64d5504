//! The pipeline's own accounting: the shared byte budget that bounds the spool, per-queue
//! backlog and counters, and their Prometheus text rendering (appended to the ops `/metrics`).
//!
//! Plain atomics instead of the `metrics` macros so that every test (and every `Pipeline` in
//! one process) sees its own numbers without a global recorder.
//!
//! Series (label `queue` = `remote_write` | `traces` | `logs`):
//! - `ingest_spool_bytes{queue}` gauge: bytes of records accepted and not yet delivered
//! - `ingest_spool_records{queue}` gauge: records accepted and not yet delivered
//! - `ingest_spool_oldest_record_age_seconds{queue}` gauge: age of the oldest undelivered record
//! - `ingest_spool_capacity_bytes` gauge: the configured bound across queues
//! - `ingest_spool_fsyncs_total{queue}` counter: group commits, one `fdatasync` each
//! - `ingest_forwarded_records_total{queue}` counter: records the upstream accepted
//! - `ingest_forwarded_items_total{queue}` counter: samples / spans / log records in them
//! - `ingest_forward_retries_total{queue}` counter: upstream attempts that will be retried
//! - `ingest_dead_lettered_total{queue}` counter: records the upstream refused for good
//! - `ingest_backpressure_waits_total{queue}` counter: batches that waited for deliveries
//! - `ingest_backpressure_timeouts_total{queue}` counter: of those, waits that ran out
//! - `ingest_upstream_request_duration_seconds{queue}` histogram: one upstream attempt
//! - `ingest_spool_commit_duration_seconds{queue}` histogram: one group commit (the append, its
//!   `fdatasync`, and a segment roll when one is due), which every request of the group waits
//!   for before its answer

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use super::Queue;

/// The spool size bound, shared by all queues: reserved before an append, released on delivery.
#[derive(Debug)]
pub(crate) struct Budget {
    /// Bytes accepted and not yet delivered (including appends still in flight).
    used: AtomicU64,
    /// The configured bound.
    max: u64,
}

impl Budget {
    pub(crate) fn new(max: u64) -> Budget {
        Budget {
            used: AtomicU64::new(0),
            max,
        }
    }

    /// Takes `n` bytes if they fit under the bound.
    pub(crate) fn try_reserve(&self, n: u64) -> bool {
        self.used
            .fetch_update(Relaxed, Relaxed, |u| {
                u.checked_add(n).filter(|total| *total <= self.max)
            })
            .is_ok()
    }

    /// Counts bytes found on disk at recovery, even beyond the bound (they are already accepted).
    pub(crate) fn force(&self, n: u64) {
        self.used.fetch_add(n, Relaxed);
    }

    pub(crate) fn release(&self, n: u64) {
        let _ = self
            .used
            .fetch_update(Relaxed, Relaxed, |u| Some(u.saturating_sub(n)));
    }

    #[cfg(test)]
    pub(crate) fn used(&self) -> u64 {
        self.used.load(Relaxed)
    }

    pub(crate) fn max(&self) -> u64 {
        self.max
    }
}

/// Bytes held in a [`Budget`] for an append in flight: given back on drop unless the append
/// became durable ([`Reservation::keep`]), whatever path (failure, cancellation, shutdown)
/// the append took.
#[derive(Debug)]
pub(crate) struct Reservation {
    /// Where the bytes came from.
    budget: std::sync::Arc<Budget>,
    /// Bytes still to give back on drop.
    bytes: u64,
}

impl Reservation {
    /// Takes `n` bytes from `budget` if they fit.
    pub(crate) fn take(budget: &std::sync::Arc<Budget>, n: u64) -> Option<Reservation> {
        budget.try_reserve(n).then(|| Reservation {
            budget: std::sync::Arc::clone(budget),
            bytes: n,
        })
    }

    /// The append is durable: the bytes now belong to the backlog (released on delivery).
    pub(crate) fn keep(mut self) {
        self.bytes = 0;
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        self.budget.release(self.bytes);
    }
}

/// Undelivered records of one queue. Behind one lock so that the writer (adds) and the
/// forwarder (removes) keep records, bytes and the oldest timestamp consistent.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct Backlog {
    /// Records accepted and not yet delivered.
    pub records: u64,
    /// Their bytes (as framed on disk).
    pub bytes: u64,
    /// Acceptance time (unix ms) of the oldest of them, when known.
    pub oldest_ms: Option<u64>,
}

/// Upper bounds (seconds) of the upstream latency histogram.
/// Bounds of `ingest_upstream_request_duration_seconds`.
const UPSTREAM_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Bounds of `ingest_spool_commit_duration_seconds`: a local disk commits in tenths of a
/// millisecond; tens of milliseconds is a disk (or a virtual machine's host) that stalls, and
/// shows up directly in the answer times.
const COMMIT_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0,
];

/// A cumulative Prometheus histogram on atomics, with fixed bounds.
#[derive(Debug)]
pub(crate) struct Histogram {
    bounds: &'static [f64],
    /// Cumulative counts, one per bound.
    buckets: Box<[AtomicU64]>,
    count: AtomicU64,
    /// Sum of the observations in microseconds.
    sum_us: AtomicU64,
}

impl Histogram {
    fn new(bounds: &'static [f64]) -> Histogram {
        Histogram {
            bounds,
            buckets: bounds.iter().map(|_| AtomicU64::new(0)).collect(),
            count: AtomicU64::new(0),
            sum_us: AtomicU64::new(0),
        }
    }

    pub(crate) fn observe(&self, d: Duration) {
        let secs = d.as_secs_f64();
        for (bound, count) in self.bounds.iter().zip(&*self.buckets) {
            if secs <= *bound {
                count.fetch_add(1, Relaxed);
            }
        }
        self.count.fetch_add(1, Relaxed);
        let us = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
        self.sum_us.fetch_add(us, Relaxed);
    }

    /// The `_bucket`, `_sum` and `_count` lines of the series `name{queue}`.
    fn render(&self, out: &mut String, name: &str, queue: &str) {
        for (bound, count) in self.bounds.iter().zip(&*self.buckets) {
            let _ = writeln!(
                out,
                "{name}_bucket{{queue=\"{queue}\",le=\"{bound}\"}} {}",
                count.load(Relaxed)
            );
        }
        let count = self.count.load(Relaxed);
        let sum = self.sum_us.load(Relaxed) as f64 / 1e6;
        let _ = writeln!(
            out,
            "{name}_bucket{{queue=\"{queue}\",le=\"+Inf\"}} {count}"
        );
        let _ = writeln!(out, "{name}_sum{{queue=\"{queue}\"}} {sum}");
        let _ = writeln!(out, "{name}_count{{queue=\"{queue}\"}} {count}");
    }
}

/// Per-queue numbers, shared by the writer, the forwarder and `render_metrics`.
#[derive(Debug)]
pub(crate) struct QueueMetrics {
    /// What is waiting for the upstream.
    pub backlog: Mutex<Backlog>,
    /// Records the upstream accepted.
    pub forwarded: AtomicU64,
    /// Items (samples, spans, log records) in those records.
    pub forwarded_items: AtomicU64,
    /// Attempts that failed in a retryable way.
    pub retries: AtomicU64,
    /// Records parked in the dead-letter segment.
    pub dead_lettered: AtomicU64,
    /// Group commits (one `fdatasync` each) of the spool writer.
    pub fsyncs: AtomicU64,
    /// Batches that waited at the admission gate for deliveries (latency backpressure).
    pub backpressure_waits: AtomicU64,
    /// Of those, batches that waited the longest allowed and went in with the backlog still high.
    pub backpressure_timeouts: AtomicU64,
    /// Duration of each upstream attempt.
    pub upstream_latency: Histogram,
    /// Duration of each group commit (append, `fdatasync`, a due segment roll).
    pub commit_duration: Histogram,
}

impl Default for QueueMetrics {
    fn default() -> QueueMetrics {
        QueueMetrics {
            backlog: Mutex::default(),
            forwarded: AtomicU64::new(0),
            forwarded_items: AtomicU64::new(0),
            retries: AtomicU64::new(0),
            dead_lettered: AtomicU64::new(0),
            fsyncs: AtomicU64::new(0),
            backpressure_waits: AtomicU64::new(0),
            backpressure_timeouts: AtomicU64::new(0),
            upstream_latency: Histogram::new(UPSTREAM_BUCKETS),
            commit_duration: Histogram::new(COMMIT_BUCKETS),
        }
    }
}

impl QueueMetrics {
    pub(crate) fn backlog(&self) -> Backlog {
        *self.backlog.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Adds durable records; the first one into an empty backlog becomes the oldest.
    pub(crate) fn add(&self, records: u64, bytes: u64, first_ms: u64) {
        let mut b = self.backlog.lock().unwrap_or_else(|p| p.into_inner());
        if b.records == 0 {
            b.oldest_ms = Some(first_ms);
        }
        b.records += records;
        b.bytes += bytes;
    }

    /// Removes delivered (or dead-lettered) records; `next_oldest_ms` is the acceptance time of
    /// the oldest record still waiting, when the forwarder knows it.
    pub(crate) fn remove(&self, records: u64, bytes: u64, next_oldest_ms: Option<u64>) {
        let mut b = self.backlog.lock().unwrap_or_else(|p| p.into_inner());
        b.records = b.records.saturating_sub(records);
        b.bytes = b.bytes.saturating_sub(bytes);
        if b.records == 0 {
            b.oldest_ms = None;
        } else if next_oldest_ms.is_some() {
            b.oldest_ms = next_oldest_ms;
        }
    }
}

/// Milliseconds since the unix epoch, now.
pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// A counter family: name, help, and how to read it from a queue's metrics.
type Counter = (&'static str, &'static str, fn(&QueueMetrics) -> u64);

/// Appends the pipeline's series in Prometheus text format.
pub(crate) fn render(queues: &[(Queue, &QueueMetrics)], budget: &Budget, out: &mut String) {
    let now = now_ms();
    let backlogs: Vec<(Queue, Backlog)> = queues.iter().map(|(q, m)| (*q, m.backlog())).collect();
    family(
        out,
        "ingest_spool_bytes",
        "gauge",
        "Bytes of accepted records not yet delivered upstream.",
    );
    for (q, b) in &backlogs {
        let _ = writeln!(
            out,
            "ingest_spool_bytes{{queue=\"{}\"}} {}",
            q.name(),
            b.bytes
        );
    }
    family(
        out,
        "ingest_spool_records",
        "gauge",
        "Accepted records not yet delivered upstream.",
    );
    for (q, b) in &backlogs {
        let _ = writeln!(
            out,
            "ingest_spool_records{{queue=\"{}\"}} {}",
            q.name(),
            b.records
        );
    }
    family(
        out,
        "ingest_spool_oldest_record_age_seconds",
        "gauge",
        "Age of the oldest record not yet delivered upstream (0 when empty).",
    );
    for (q, b) in &backlogs {
        let age = b
            .oldest_ms
            .map_or(0.0, |t| now.saturating_sub(t) as f64 / 1000.0);
        let _ = writeln!(
            out,
            "ingest_spool_oldest_record_age_seconds{{queue=\"{}\"}} {age}",
            q.name()
        );
    }
    family(
        out,
        "ingest_spool_capacity_bytes",
        "gauge",
        "Configured bound on undelivered bytes across queues.",
    );
    let _ = writeln!(out, "ingest_spool_capacity_bytes {}", budget.max());
    let counters: [Counter; 7] = [
        ("ingest_spool_fsyncs_total", "Spool group commits (one fdatasync covering every append waiting at that moment).", |m| m.fsyncs.load(Relaxed)),
        ("ingest_forwarded_records_total", "Records the upstream accepted.", |m| m.forwarded.load(Relaxed)),
        ("ingest_forwarded_items_total", "Samples, spans or log records in records the upstream accepted.", |m| m.forwarded_items.load(Relaxed)),
        ("ingest_forward_retries_total", "Upstream attempts that failed in a retryable way (5xx, 429, network).", |m| m.retries.load(Relaxed)),
        ("ingest_dead_lettered_total", "Records the upstream refused with a non-retryable status, parked in the dead-letter segment.", |m| m.dead_lettered.load(Relaxed)),
        ("ingest_backpressure_waits_total", "Accepted batches that first waited for deliveries because the backlog was past pipeline.backpressure_bytes.", |m| m.backpressure_waits.load(Relaxed)),
        ("ingest_backpressure_timeouts_total", "Batches that waited pipeline.backpressure_max_wait and went to the spool with the backlog still past the threshold.", |m| m.backpressure_timeouts.load(Relaxed)),
    ];
    for (name, help, get) in counters {
        family(out, name, "counter", help);
        for (q, m) in queues {
            let _ = writeln!(out, "{name}{{queue=\"{}\"}} {}", q.name(), get(m));
        }
    }
    type Family = (&'static str, &'static str, fn(&QueueMetrics) -> &Histogram);
    let histograms: [Family; 2] = [
        ("ingest_upstream_request_duration_seconds", "Duration of one upstream request attempt.", |m| &m.upstream_latency),
        ("ingest_spool_commit_duration_seconds", "Duration of one spool group commit (the append, its fdatasync and a due segment roll); every request of the group waits for it before its answer.", |m| &m.commit_duration),
    ];
    for (name, help, get) in histograms {
        family(out, name, "histogram", help);
        for (q, m) in queues {
            get(m).render(out, name, q.name());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn budget_is_a_hard_bound() {
        let b = Budget::new(100);
        assert!(b.try_reserve(60));
        assert!(!b.try_reserve(41));
        assert!(b.try_reserve(40));
        b.release(100);
        assert_eq!(b.used(), 0);
        b.release(5);
        assert_eq!(b.used(), 0);
        let b = std::sync::Arc::new(b);
        let dropped = Reservation::take(&b, 70).unwrap();
        assert!(Reservation::take(&b, 31).is_none());
        drop(dropped);
        Reservation::take(&b, 80).unwrap().keep();
        assert_eq!(b.used(), 80);
    }

    #[test]
    fn backlog_oldest_follows_adds_and_removes() {
        let m = QueueMetrics::default();
        m.add(2, 20, 1000);
        m.add(1, 10, 2000);
        assert_eq!(m.backlog().oldest_ms, Some(1000));
        m.remove(1, 10, Some(1500));
        assert_eq!(
            (m.backlog().records, m.backlog().oldest_ms),
            (2, Some(1500))
        );
        m.remove(2, 20, None);
        assert_eq!(
            (
                m.backlog().records,
                m.backlog().bytes,
                m.backlog().oldest_ms
            ),
            (0, 0, None)
        );
    }

    #[test]
    fn renders_every_family_with_help_and_type() {
        let m = QueueMetrics::default();
        m.upstream_latency.observe(Duration::from_millis(30));
        m.commit_duration.observe(Duration::from_micros(300));
        m.forwarded.fetch_add(3, Relaxed);
        let mut out = String::new();
        render(
            &[(Queue::RemoteWrite, &m), (Queue::Logs, &m)],
            &Budget::new(9),
            &mut out,
        );
        for fam in [
            "ingest_spool_bytes",
            "ingest_spool_records",
            "ingest_spool_oldest_record_age_seconds",
            "ingest_forwarded_records_total",
            "ingest_forward_retries_total",
            "ingest_dead_lettered_total",
            "ingest_upstream_request_duration_seconds",
            "ingest_spool_commit_duration_seconds",
        ] {
            assert!(out.contains(&format!("# HELP {fam} ")), "{fam}");
            assert!(out.contains(&format!("# TYPE {fam} ")), "{fam}");
        }
        assert!(out.contains("ingest_forwarded_records_total{queue=\"remote_write\"} 3\n"));
        let upstream = "ingest_upstream_request_duration_seconds";
        assert!(out.contains(&format!(
            "{upstream}_bucket{{queue=\"logs\",le=\"0.025\"}} 0\n"
        )));
        assert!(out.contains(&format!(
            "{upstream}_bucket{{queue=\"logs\",le=\"0.05\"}} 1\n"
        )));
        assert!(out.contains(&format!("{upstream}_count{{queue=\"logs\"}} 1\n")));
        assert!(out.contains(&format!("{upstream}_sum{{queue=\"logs\"}} 0.03\n")));
        let commit = "ingest_spool_commit_duration_seconds";
        assert!(out.contains(&format!(
            "{commit}_bucket{{queue=\"logs\",le=\"0.00025\"}} 0\n"
        )));
        assert!(out.contains(&format!(
            "{commit}_bucket{{queue=\"logs\",le=\"0.0005\"}} 1\n"
        )));
        assert!(out.contains(&format!(
            "{commit}_bucket{{queue=\"logs\",le=\"+Inf\"}} 1\n"
        )));
    }
}
