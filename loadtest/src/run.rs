//! The load loop. `connections` workers each own one keep-alive connection (HTTP/1.1 or
//! HTTP/2, plain or TLS: see `conn`) and send one request at a time on it.
//!
//! - Closed loop (no `rate`): each worker sends back to back; latency runs from the send.
//! - Open loop (`rate`): request `i` is *due* at `start + i / rate`. A pacer thread sleeps
//!   (nanosleep, ~50 us precision, unlike tokio's 1 ms timer wheel) until each due time and
//!   queues the ticket; the first idle worker takes it and sends. Latency runs from the due
//!   time, not from the actual send, so a server that stalls is charged for the requests it
//!   made wait (no coordinated omission).
//!
//! With `tokens` set, each request carries the next token of the list (a shared counter, so
//! the server sees them in turn across all connections). With an `observer`, the sink's and
//! the server's counters are read before the first request and at both ends of the window
//! (`observe`), and the report says what was delivered while the load ran.
//!
//! Everything is bounded: no request is issued after `warmup + duration`, each request has a
//! timeout, and a shared ticket counter caps the total number of requests.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use http_body_util::Full;
use hyper::header::{HeaderValue, AUTHORIZATION, HOST};
use hyper::{Method, Request};
use tokio::sync::{mpsc, Mutex};
use tokio::task::JoinSet;
use tokio::time::{sleep, timeout, Instant};

use crate::conn::{Connector, Sender};
use crate::observe::Observer;
use crate::payload::Workload;
use crate::report::{Report, ReportBase, Stats};
use crate::target::Target;

/// One run's settings, already validated.
#[derive(Debug)]
pub struct RunConfig {
    /// Where to send.
    pub target: Target,
    /// TLS and protocol.
    pub connector: Connector,
    /// What to send.
    pub workload: Workload,
    /// Concurrent connections (workers).
    pub connections: usize,
    /// Open-loop request rate per second; `None` for closed loop.
    pub rate: Option<f64>,
    /// Measured window.
    pub duration: Duration,
    /// Unmeasured lead-in (connections opened, caches warm).
    pub warmup: Duration,
    /// Per-request (and per-connect) timeout.
    pub timeout: Duration,
    /// Hard cap on requests issued, warm-up included.
    pub max_requests: u64,
    /// `Authorization` values rotated request by request; empty: the workload's headers only.
    pub tokens: Vec<HeaderValue>,
    /// Reads what the server delivered at the window's edges; `None`: not measured.
    pub observer: Option<Observer>,
}

/// `Bearer <token>` for each token.
pub fn bearer_headers(tokens: &[String]) -> Result<Vec<HeaderValue>, String> {
    tokens
        .iter()
        .map(|t| {
            HeaderValue::from_str(&format!("Bearer {t}"))
                .map_err(|_| "a token in --tokens-file is not a valid header value".to_string())
        })
        .collect()
}

/// State shared by the workers: read-only apart from the ticket counter.
struct Shared {
    /// The configuration.
    cfg: RunConfig,
    /// Requests due before this are not measured.
    measure_from: Instant,
    /// No request is issued at or after this.
    end: Instant,
    /// Closed loop: next request number, which enforces `max_requests`.
    tickets: AtomicU64,
    /// Open loop: due times queued by the pacer; `None` in closed loop.
    schedule: Option<Mutex<mpsc::Receiver<std::time::Instant>>>,
    /// Index of the next token of `cfg.tokens`.
    next_token: AtomicU64,
}

/// Runs the load and returns the merged report.
pub async fn run(mut cfg: RunConfig) -> Report {
    let observer = cfg.observer.take();
    let start = Instant::now();
    // The baseline: before any request, so "queued at the end" covers the warm-up too.
    let first = match &observer {
        Some(o) => Some(o.snapshot(start).await),
        None => None,
    };
    let measure_from = start + cfg.warmup;
    let end = measure_from + cfg.duration;
    let base = ReportBase {
        mode: cfg.workload.mode,
        target: cfg.target.display.clone(),
        connections: cfg.connections,
        rate: cfg.rate,
        window: cfg.duration,
        item_name: cfg.workload.item_name,
        tokens: cfg.tokens.len(),
    };
    let watch = observer.map(|o| {
        tokio::spawn(async move {
            tokio::time::sleep_until(measure_from).await;
            let from = o.snapshot(start).await;
            tokio::time::sleep_until(end).await;
            let to = o.snapshot(start).await;
            (from, to)
        })
    });
    let grace = cfg.timeout * 2 + Duration::from_secs(1);
    let connections = cfg.connections;
    let (schedule, pacer) = match cfg.rate {
        Some(rate) => {
            // Room for a few seconds of backlog; a full queue only delays the pacer, the due
            // times (and so the latencies) stay those of the schedule.
            let (tx, rx) = mpsc::channel(65_536);
            let (start, end) = (start.into_std(), end.into_std());
            let max = cfg.max_requests;
            let handle = std::thread::spawn(move || pace(tx, start, end, rate, max));
            (Some(Mutex::new(rx)), Some(handle))
        }
        None => (None, None),
    };
    let shared = Arc::new(Shared {
        cfg,
        measure_from,
        end,
        tickets: AtomicU64::new(0),
        schedule,
        next_token: AtomicU64::new(0),
    });
    let mut set = JoinSet::new();
    for id in 0..connections {
        set.spawn(worker(Arc::clone(&shared), id));
    }
    let mut total = Stats::new();
    // Workers stop by themselves (every wait is bounded); the outer deadline is a backstop.
    let deadline = end + grace;
    while let Ok(Some(joined)) = tokio::time::timeout_at(deadline, set.join_next()).await {
        if let Ok(stats) = joined {
            total.merge(&stats);
        }
    }
    if !set.is_empty() {
        eprintln!(
            "loadtest: {} worker(s) still busy after the grace period; their counts are lost",
            set.len()
        );
        set.abort_all();
    }
    let elapsed = Instant::now().saturating_duration_since(measure_from);
    if let Some(handle) = pacer {
        // The pacer stops at `end` by itself (or as soon as the queue is dropped).
        drop(shared);
        let _ = tokio::task::spawn_blocking(move || handle.join()).await;
    }
    let mut report = Report::new(base, &total, elapsed);
    if let (Some(first), Some(watch)) = (first, watch) {
        if let Ok((from, to)) = watch.await {
            report.observe(first, from, to, total.items_ok_all);
        }
    }
    report
}

/// The open-loop schedule: sleeps until each request is due and queues its due time.
fn pace(
    tx: mpsc::Sender<std::time::Instant>,
    start: std::time::Instant,
    end: std::time::Instant,
    rate: f64,
    max: u64,
) {
    let interval = 1.0 / rate;
    for i in 0..max {
        let due = start + Duration::from_secs_f64(interval * i as f64);
        let now = std::time::Instant::now();
        if due >= end || now >= end {
            return;
        }
        if due > now {
            std::thread::sleep(due - now);
        }
        if tx.blocking_send(due).is_err() {
            return; // workers are gone
        }
    }
}

async fn worker(shared: Arc<Shared>, id: usize) -> Stats {
    let cfg = &shared.cfg;
    let mut stats = Stats::new();
    let mut conn: Option<Sender> = None;
    let payloads = &cfg.workload.payloads;
    // Workers start at different bodies so the server sees them all from the first round.
    let mut next = id % payloads.len().max(1);
    let open_loop = shared.schedule.is_some();
    loop {
        let due = match &shared.schedule {
            None => {
                let ticket = shared.tickets.fetch_add(1, Ordering::Relaxed);
                if ticket >= cfg.max_requests {
                    break;
                }
                Instant::now()
            }
            Some(queue) => match queue.lock().await.recv().await {
                Some(due) => Instant::from_std(due),
                None => break,
            },
        };
        // Stop at the end of the window in wall-clock time: a server that fell behind an
        // open-loop schedule leaves its backlog unsent (reported as `expected - requests`).
        if Instant::now() >= shared.end {
            break;
        }
        let measured = due >= shared.measure_from;

        // A connection the server closed is replaced before the request is charged.
        if let Some(s) = conn.as_mut() {
            if s.ready().await.is_err() {
                conn = None;
            }
        }
        if conn.is_none() {
            match cfg.connector.connect(&cfg.target, cfg.timeout).await {
                Ok(s) => {
                    stats.connects += 1;
                    conn = Some(s);
                }
                Err(kind) => {
                    if measured {
                        stats.error(kind);
                    }
                    // Do not spin on a dead port; the pause is bounded by the run's end.
                    let pause = Duration::from_millis(20)
                        .min(shared.end.saturating_duration_since(Instant::now()));
                    sleep(pause).await;
                    continue;
                }
            }
        }
        let Some(sender) = conn.as_mut() else {
            continue;
        };

        let Some(payload) = payloads.get(next) else {
            break;
        };
        next = (next + 1) % payloads.len();
        let mut req = Request::new(Full::new(payload.body.clone()));
        *req.method_mut() = Method::POST;
        *req.uri_mut() = cfg.target.path.clone();
        *req.headers_mut() = cfg.workload.headers.clone();
        req.headers_mut().insert(HOST, cfg.target.host.clone());
        if !cfg.tokens.is_empty() {
            let i = shared.next_token.fetch_add(1, Ordering::Relaxed) % cfg.tokens.len() as u64;
            if let Some(v) = usize::try_from(i).ok().and_then(|i| cfg.tokens.get(i)) {
                req.headers_mut().insert(AUTHORIZATION, v.clone());
            }
        }

        let sent = Instant::now();
        let from = if open_loop { due } else { sent };
        match timeout(cfg.timeout, sender.send(&cfg.target, req)).await {
            Ok(Ok(status)) => {
                if (200..300).contains(&status) {
                    stats.items_ok_all += payload.items;
                }
                if measured {
                    let len = payload.body.len() as u64;
                    stats.response(status, from.elapsed(), sent.elapsed(), payload.items, len);
                }
            }
            Ok(Err(_)) => {
                conn = None;
                if measured {
                    stats.error("io");
                }
            }
            Err(_) => {
                conn = None;
                if measured {
                    stats.error("timeout");
                }
            }
        }
    }
    stats
}
