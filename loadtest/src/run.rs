//! The load loop. `connections` workers each own one HTTP/1.1 keep-alive connection and send
//! one request at a time on it.
//!
//! - Closed loop (no `rate`): each worker sends back to back; latency runs from the send.
//! - Open loop (`rate`): request `i` is *due* at `start + i / rate`; a worker takes the next
//!   ticket, sleeps until it is due and sends it. Latency runs from the due time, not from the
//!   actual send, so a server that stalls is charged for the requests it made wait
//!   (no coordinated omission). Timer granularity (~1 ms in tokio) is part of the figure.
//!
//! Everything is bounded: no request is issued after `warmup + duration`, each request has a
//! timeout, and a shared ticket counter caps the total number of requests.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::SendRequest;
use hyper::header::HOST;
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio::time::{sleep, sleep_until, timeout, Instant};

use crate::payload::Workload;
use crate::report::{Report, ReportBase, Stats};
use crate::target::Target;

/// One run's settings, already validated.
#[derive(Debug)]
pub struct RunConfig {
    /// Where to send.
    pub target: Target,
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
}

/// State shared by the workers: read-only apart from the ticket counter.
struct Shared {
    /// The configuration.
    cfg: RunConfig,
    /// When warm-up started (time zero of the open-loop schedule).
    start: Instant,
    /// Requests due before this are not measured.
    measure_from: Instant,
    /// No request is issued at or after this.
    end: Instant,
    /// Next request number; also enforces `max_requests`.
    tickets: AtomicU64,
}

/// Runs the load and returns the merged report.
pub async fn run(cfg: RunConfig) -> Report {
    let start = Instant::now();
    let measure_from = start + cfg.warmup;
    let end = measure_from + cfg.duration;
    let base = ReportBase {
        mode: cfg.workload.mode,
        target: cfg.target.display.clone(),
        connections: cfg.connections,
        rate: cfg.rate,
        item_name: cfg.workload.item_name,
    };
    let grace = cfg.timeout * 2 + Duration::from_secs(1);
    let connections = cfg.connections;
    let shared = Arc::new(Shared {
        cfg,
        start,
        measure_from,
        end,
        tickets: AtomicU64::new(0),
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
    set.abort_all();
    let elapsed = Instant::now().saturating_duration_since(measure_from);
    Report::new(base, &total, elapsed)
}

/// Opens one keep-alive HTTP/1.1 connection.
async fn connect(
    target: &Target,
    limit: Duration,
) -> Result<SendRequest<Full<Bytes>>, &'static str> {
    let stream = match timeout(limit, TcpStream::connect(target.addr)).await {
        Err(_) => return Err("connect_timeout"),
        Ok(Err(_)) => return Err("connect"),
        Ok(Ok(s)) => s,
    };
    // Small requests must not wait for Nagle.
    let _ = stream.set_nodelay(true);
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|_| "handshake")?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

/// Sends one request and drains the response; returns the status code.
async fn send(
    sender: &mut SendRequest<Full<Bytes>>,
    req: Request<Full<Bytes>>,
) -> Result<u16, hyper::Error> {
    let resp = sender.send_request(req).await?;
    let status = resp.status().as_u16();
    resp.into_body().collect().await?;
    Ok(status)
}

async fn worker(shared: Arc<Shared>, id: usize) -> Stats {
    let cfg = &shared.cfg;
    let mut stats = Stats::new();
    let mut conn: Option<SendRequest<Full<Bytes>>> = None;
    let payloads = &cfg.workload.payloads;
    // Workers start at different bodies so the server sees them all from the first round.
    let mut next = id % payloads.len().max(1);
    let interval = cfg.rate.map(|r| 1.0 / r);
    loop {
        let ticket = shared.tickets.fetch_add(1, Ordering::Relaxed);
        if ticket >= cfg.max_requests {
            break;
        }
        let due = match interval {
            Some(iv) => shared.start + Duration::from_secs_f64(iv * ticket as f64),
            None => Instant::now(),
        };
        if due >= shared.end {
            break;
        }
        if interval.is_some() {
            sleep_until(due).await;
        }
        let measured = due >= shared.measure_from;

        // A connection the server closed is replaced before the request is charged.
        if let Some(s) = conn.as_mut() {
            if s.ready().await.is_err() {
                conn = None;
            }
        }
        if conn.is_none() {
            match connect(&cfg.target, cfg.timeout).await {
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

        let sent = Instant::now();
        let from = if interval.is_some() { due } else { sent };
        match timeout(cfg.timeout, send(sender, req)).await {
            Ok(Ok(status)) => {
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
