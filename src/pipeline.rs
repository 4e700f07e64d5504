//! Where accepted data goes (SPEC §10): the hand-off from the request path to the upstreams.
//!
//! `submit` -> frame + checksum -> byte budget (full: `Overloaded`) -> the queue's group-commit
//! writer (one `fdatasync` per group) -> durable: the request may be acknowledged -> the
//! queue's forwarder reads it back -> upstream (retried until 2xx or a final 4xx, which goes to
//! the dead letter) -> acknowledged position advances -> budget released, segments deleted.
//!
//! Queues: `remote_write` (to the remote-write URL, original snappy body), `traces` and `logs`
//! (to `<otlp>/v1/traces|logs`). Layout: `<data_dir>/spool/<queue>/<id>.seg`, `.../ack`,
//! `.../dead/<id>.seg`.
//!
//! Guarantees: an acknowledged batch is on disk and survives a crash (torn tails are cut on
//! recovery, whole records before them are kept); delivery is at-least-once (the read position
//! is persisted every 200 ms, so a crash can resend the last moments). With `durable = false`
//! the same flow runs through memory instead of disk, for comparison.
//!
//! Invariant: nothing here runs on the request path except framing, a budget check and a
//! channel send; disk and network I/O happen on the writer threads and forwarder tasks.

mod client;
mod dead_letter;
mod driver;
mod forward;
mod gate;
mod inspect;
mod memory;
mod merge;
mod queue;
mod reader;
mod recent;
mod record;
mod segment;
mod spool;
mod stats;
mod upstream;
mod writer;

#[cfg(test)]
mod tests;

use crate::config::PipelineSettings;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::watch;

pub use inspect::{dead_letter_dump, spool_dump, spool_stats, QueueStats, SpoolStats};
pub use queue::Queue;
pub use record::Spooled;
pub use segment::Position;

use dead_letter::DeadLetter;
use driver::Driver;
use forward::{Forwarder, Source};
use gate::{Admission, Gate};
use memory::MemQueue;
use reader::Linger;
use spool::Spool;
use stats::{now_ms, Budget, QueueMetrics, Reservation};
use upstream::Upstream;

pub use client::Credentials;

/// One accepted request, as it must reach the upstream.
#[derive(Clone, Debug)]
pub struct Batch {
    /// Which queue (and so which upstream).
    pub queue: Queue,
    /// The token that sent it (kept for `spool dump`; never sent upstream).
    pub token_id: Arc<str>,
    /// Value for the configurable tenant header (e.g. `X-Scope-OrgID`).
    pub tenant: Option<Arc<str>>,
    /// remote_write: the v1/v2 content type; RUM: `application/json` or `application/x-protobuf`.
    pub content_type: &'static str,
    /// remote_write: `Some("snappy")` (the original body is forwarded); RUM: `None`.
    pub content_encoding: Option<&'static str>,
    /// The body exactly as the upstream must receive it.
    pub body: Bytes,
    /// Samples+histograms+exemplars, or spans/log records.
    pub items: u64,
    /// OTLP JSON `{"resourceSpans": [...]}`: where the array's elements are in `body`, found
    /// while counting (`rum::Counted`), kept in the record so the forwarder's merge need not
    /// parse the body again. `None` elsewhere.
    pub json_piece: Option<std::ops::Range<usize>>,
}

/// Settings of the pipeline (the `[pipeline]` config section).
#[derive(Clone, Debug)]
pub struct PipelineConfig {
    /// The spool lives in `data_dir/spool/{remote_write,traces,logs}/`.
    pub data_dir: PathBuf,
    /// `true`: disk spool (default); `false`: bounded in-memory hand-off.
    pub durable: bool,
    /// Bound on undelivered bytes across queues (default 1 GiB). Disk use can exceed it by up
    /// to one segment per queue (acknowledged records wait for their segment to finish).
    pub max_bytes: u64,
    /// Segment size (default 64 MiB; capped at a quarter of `max_bytes`).
    pub segment_bytes: u64,
    /// Full remote-write URL; `None` keeps remote_write data in the spool.
    pub remote_write_upstream: Option<String>,
    /// OTLP/HTTP base URL (`/v1/traces`, `/v1/logs` appended); `None` keeps RUM data.
    pub otlp_upstream: Option<String>,
    /// Header carrying the token's tenant upstream, e.g. `X-Scope-OrgID`.
    pub tenant_header: Option<String>,
    /// Timeout of one upstream request.
    pub upstream_timeout: Duration,
    /// Longest wait between two delivery attempts.
    pub retry_max_backoff: Duration,
    /// Deliveries in flight per queue (default 1, which keeps upstream order: Prometheus and
    /// Mimir reject out-of-order samples; raise it for VictoriaMetrics or OTLP upstreams).
    pub forward_concurrency: usize,
    /// Deliveries in flight per RUM queue (traces, logs): OTLP receivers take batches in any
    /// order, and one request per browser batch needs parallel deliveries to keep up.
    pub rum_forward_concurrency: usize,
    /// Consecutive records merged into one upstream request, up to this many uncompressed
    /// body bytes (0: one request per record).
    pub forward_batch_bytes: u64,
    /// How long newly durable records may wait for more before they are read (never once
    /// `forward_batch_bytes` are pending); see [`reader::Linger`].
    pub forward_linger: Duration,
    /// A queue's undelivered bytes from which `submit` waits for deliveries while its upstream
    /// is healthy (latency backpressure instead of `503`); 0: never waits.
    pub backpressure_bytes: u64,
    /// Longest such wait; past it the batch goes to the spool if the budget has room.
    pub backpressure_max_wait: Duration,
    /// Extra CA certificates (PEM) for `https://` upstreams, besides the system roots.
    pub upstream_ca_file: Option<PathBuf>,
    /// Credentials sent to both upstreams; see [`Credentials`].
    pub upstream_credentials: Credentials,
}

impl PipelineConfig {
    /// The config file's `[pipeline]` settings for a data directory.
    pub fn from_settings(data_dir: impl Into<PathBuf>, p: &PipelineSettings) -> PipelineConfig {
        PipelineConfig {
            data_dir: data_dir.into(),
            durable: p.durable,
            max_bytes: p.max_bytes,
            segment_bytes: p.segment_bytes,
            remote_write_upstream: p.remote_write_upstream.clone(),
            otlp_upstream: p.otlp_upstream.clone(),
            tenant_header: p.tenant_header.clone(),
            upstream_timeout: p.upstream_timeout,
            retry_max_backoff: p.retry_max_backoff,
            forward_concurrency: p.forward_concurrency,
            rum_forward_concurrency: p.rum_forward_concurrency,
            forward_batch_bytes: p.forward_batch_bytes,
            forward_linger: p.forward_linger,
            backpressure_bytes: p.backpressure_bytes,
            backpressure_max_wait: p.backpressure_max_wait,
            upstream_ca_file: p.upstream_ca_file.clone(),
            upstream_credentials: Credentials::from_settings(p),
        }
    }

    /// Defaults (those of the config file) for everything but the data directory.
    pub fn new(data_dir: impl Into<PathBuf>) -> PipelineConfig {
        PipelineConfig::from_settings(data_dir, &PipelineSettings::default())
    }
}

/// Why a batch was not taken.
#[derive(Debug, thiserror::Error)]
pub enum HandoffError {
    /// The spool is full: answer 503 with `Retry-After`.
    #[error("spool full; retry in {retry_after_secs}s")]
    Overloaded {
        /// Suggested `Retry-After`.
        retry_after_secs: u32,
    },
    /// Writing the spool failed: the batch is not durable (answer 503/500).
    #[error("spool write failed: {0}")]
    Io(#[source] io::Error),
    /// The pipeline is shutting down (answer 503).
    #[error("pipeline is shutting down")]
    Closed,
}

/// Why the pipeline (or a spool inspection) could not start.
#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    /// Opening or recovering the spool failed.
    #[error("spool {path}: {source}")]
    Io {
        /// The directory or file involved.
        path: PathBuf,
        /// The failure.
        #[source]
        source: io::Error,
    },
    /// A setting is unusable.
    #[error("pipeline config: {0}")]
    Config(String),
}

/// Where a queue's spool lives.
pub fn queue_dir(data_dir: &Path, queue: Queue) -> PathBuf {
    data_dir.join("spool").join(queue.name())
}

/// One queue's hand-off.
#[derive(Debug)]
enum Lane {
    /// Durable: the group-commit spool.
    Disk(Spool),
    /// `durable = false`: memory only.
    Memory(MemQueue),
}

/// A queue as `submit` and `render_metrics` see it.
#[derive(Debug)]
struct LaneState {
    /// Where its batches go.
    lane: Lane,
    /// Its backlog and counters.
    metrics: Arc<QueueMetrics>,
    /// `Retry-After` when full: short if a forwarder drains the queue, long if nothing does.
    retry_after_secs: u32,
    /// Latency backpressure while the forwarder is behind (always open without upstream).
    gate: Arc<Gate>,
}

#[derive(Debug)]
struct Inner {
    /// Bound on undelivered bytes, shared by the queues.
    budget: Arc<Budget>,
    /// Indexed like [`Queue::ALL`].
    lanes: [LaneState; 3],
    /// Set by `shutdown`: new batches are refused.
    closed: AtomicBool,
    /// Tells forwarders to stop.
    stop: watch::Sender<bool>,
    /// Joined by `shutdown`.
    forwarders: Mutex<Vec<tokio::task::JoinHandle<()>>>,
    /// The thread the forwarders run on.
    driver: Driver,
}

/// Handle to the pipeline; cheap to clone.
#[derive(Clone, Debug)]
pub struct Pipeline {
    inner: Arc<Inner>,
}

impl Inner {
    fn lane(&self, q: Queue) -> &LaneState {
        let [rw, traces, logs] = &self.lanes;
        match q {
            Queue::RemoteWrite => rw,
            Queue::Traces => traces,
            Queue::Logs => logs,
        }
    }
}

impl Pipeline {
    /// Opens (recovering) the spool and starts a forwarder for every queue with an upstream.
    pub async fn start(cfg: PipelineConfig) -> Result<Pipeline, PipelineError> {
        if cfg.max_bytes == 0 || cfg.segment_bytes == 0 {
            return Err(PipelineError::Config(
                "max_bytes and segment_bytes must be > 0".into(),
            ));
        }
        let segment_bytes = cfg.segment_bytes.min((cfg.max_bytes / 4).max(1));
        let client = client::build(&cfg)?;
        let driver = Driver::start().map_err(|source| PipelineError::Io {
            path: cfg.data_dir.clone(),
            source,
        })?;
        // Never more than half the bound: past the threshold there must be room to absorb
        // an upstream outage, and waits that time out.
        let backpressure_bytes = cfg.backpressure_bytes.min(cfg.max_bytes / 2);
        let budget = Arc::new(Budget::new(cfg.max_bytes));
        let (stop, _) = watch::channel(false);
        let mut lanes = Vec::with_capacity(3);
        let mut forwarders = Vec::new();
        for queue in Queue::ALL {
            let url = match queue {
                Queue::RemoteWrite => cfg.remote_write_upstream.clone(),
                Queue::Traces | Queue::Logs => cfg
                    .otlp_upstream
                    .as_deref()
                    .map(|b| Upstream::otlp_url(b, queue)),
            };
            let upstream = url
                .map(|u| {
                    Upstream::new(
                        queue,
                        &u,
                        cfg.tenant_header.as_deref(),
                        cfg.retry_max_backoff,
                    )
                })
                .transpose()?
                .map(Arc::new);
            let dir = queue_dir(&cfg.data_dir, queue);
            let metrics = Arc::new(QueueMetrics::default());
            let (lane, source) = if cfg.durable {
                let (d, m) = (dir.clone(), Arc::clone(&metrics));
                let opened =
                    tokio::task::spawn_blocking(move || Spool::open(&d, queue, segment_bytes, m))
                        .await
                        .map_err(io::Error::other)
                        .and_then(|r| r)
                        .map_err(|source| PipelineError::Io {
                            path: dir.clone(),
                            source,
                        })?;
                let (spool, rec) = opened;
                budget.force(rec.backlog.bytes);
                tracing::info!(
                    queue = queue.name(),
                    records = rec.backlog.records,
                    bytes = rec.backlog.bytes,
                    cut_bytes = rec.cut_bytes,
                    "spool recovered"
                );
                let source = Source::Disk {
                    reader: spool.reader().with_linger(Linger {
                        wait: cfg.forward_linger,
                        fill: cfg.forward_batch_bytes,
                    }),
                    shared: Arc::clone(spool.shared()),
                };
                (Lane::Disk(spool), Some(source))
            } else {
                let (mem, rx) = MemQueue::new();
                if upstream.is_none() {
                    mem.park(rx);
                    (Lane::Memory(mem), None)
                } else {
                    (Lane::Memory(mem), Some(Source::Memory(rx)))
                }
            };
            // Nothing drains a queue without upstream: tell clients to come back much later.
            let retry_after = if upstream.is_some() { 2 } else { 30 };
            // Nothing to wait for without a forwarder.
            let threshold = if upstream.is_some() {
                backpressure_bytes
            } else {
                0
            };
            let gate = Arc::new(Gate::new(threshold, cfg.backpressure_max_wait));
            if let (Some(upstream), Some(source)) = (upstream, source) {
                let dead = DeadLetter::new(&dir, segment_bytes.min(16 << 20), cfg.max_bytes / 8);
                let fw = Forwarder {
                    source,
                    client: client.clone(),
                    upstream,
                    metrics: Arc::clone(&metrics),
                    budget: Arc::clone(&budget),
                    dead: Arc::new(Mutex::new(dead)),
                    concurrency: if queue == Queue::RemoteWrite {
                        cfg.forward_concurrency
                    } else {
                        cfg.rum_forward_concurrency
                    },
                    batch_bytes: cfg.forward_batch_bytes,
                    gate: Arc::clone(&gate),
                };
                forwarders.push(driver.spawn(fw.run(stop.subscribe())));
            }
            lanes.push(LaneState {
                lane,
                metrics,
                retry_after_secs: retry_after,
                gate,
            });
        }
        let lanes: [LaneState; 3] = lanes
            .try_into()
            .map_err(|_| PipelineError::Config("queue setup".into()))?;
        Ok(Pipeline {
            inner: Arc::new(Inner {
                budget,
                lanes,
                closed: AtomicBool::new(false),
                stop,
                forwarders: Mutex::new(forwarders),
                driver,
            }),
        })
    }

    /// Resolves `Ok` only once the batch is durable (fsynced with its group), or queued in
    /// memory when durability is off. While the queue's backlog is past
    /// `backpressure_bytes` and its upstream healthy, first waits for deliveries (at most
    /// `backpressure_max_wait`). Full: `Overloaded`.
    ///
    /// This is the admission point: the only place where a full spool becomes a `503`.
    pub async fn submit(&self, batch: Batch) -> Result<(), HandoffError> {
        let closed = || self.inner.closed.load(Ordering::Acquire);
        if closed() {
            return Err(HandoffError::Closed);
        }
        let LaneState {
            lane,
            metrics,
            retry_after_secs,
            gate,
        } = self.inner.lane(batch.queue);
        match gate.admit(|| metrics.backlog().bytes, closed).await {
            Admission::Open => {}
            Admission::Waited => {
                metrics.backpressure_waits.fetch_add(1, Ordering::Relaxed);
            }
            Admission::TimedOut => {
                metrics.backpressure_waits.fetch_add(1, Ordering::Relaxed);
                metrics
                    .backpressure_timeouts
                    .fetch_add(1, Ordering::Relaxed);
            }
        }
        if closed() {
            return Err(HandoffError::Closed);
        }
        let accepted_ms = now_ms();
        match lane {
            Lane::Disk(spool) => {
                let frame = record::encode_frame(&batch, accepted_ms).map_err(|e| {
                    HandoffError::Io(io::Error::new(io::ErrorKind::InvalidInput, e))
                })?;
                let reservation = Reservation::take(&self.inner.budget, frame.len() as u64).ok_or(
                    HandoffError::Overloaded {
                        retry_after_secs: *retry_after_secs,
                    },
                )?;
                spool.append(frame, accepted_ms, reservation).await
            }
            Lane::Memory(mem) => mem.submit(
                batch,
                accepted_ms,
                &self.inner.budget,
                metrics,
                *retry_after_secs,
            ),
        }
    }

    /// Refuses new batches, lets in-flight appends finish, then stops the forwarders (which
    /// persist their read position; unfinished deliveries are resent after the next start).
    pub async fn shutdown(&self) {
        self.inner.closed.store(true, Ordering::Release);
        for state in &self.inner.lanes {
            state.gate.released();
        }
        for state in &self.inner.lanes {
            if let Lane::Disk(spool) = &state.lane {
                spool.stop().await;
            }
        }
        self.inner.stop.send_replace(true);
        let handles = std::mem::take(
            &mut *self
                .inner
                .forwarders
                .lock()
                .unwrap_or_else(|p| p.into_inner()),
        );
        for h in handles {
            let _ = h.await;
        }
        self.inner.driver.stop().await;
    }

    /// Appends the pipeline's series (Prometheus text format) for the ops `/metrics`.
    pub fn render_metrics(&self, out: &mut String) {
        let queues: Vec<(Queue, &QueueMetrics)> = Queue::ALL
            .into_iter()
            .zip(&self.inner.lanes)
            .map(|(q, l)| (q, &*l.metrics))
            .collect();
        stats::render(&queues, &self.inner.budget, out);
    }

    /// Undelivered records and bytes of one queue.
    pub fn backlog(&self, queue: Queue) -> (u64, u64) {
        let b = self.inner.lane(queue).metrics.backlog();
        (b.records, b.bytes)
    }
}
