//! The webhook (SPEC §12): every abuse event is POSTed, as one JSON object, to
//! `abuse.webhook_url`, in the order the events were published, by one background task.
//!
//! Publishing never waits: it serializes the event and pushes it onto a bounded queue (at most
//! `capacity` events, 10,000 by default) under a mutex held for a push and at most one pop. A
//! full queue drops its oldest event. A failed delivery (connection error, timeout or a
//! non-2xx answer) is retried with exponential backoff (1 s doubling to 5 min) until 24 h have
//! passed since the event's first attempt; then it is dropped. Events behind it wait: the
//! receiver sees events in order, each one once (unless its 2xx was lost on the way back).
//!
//! The queue lives in memory only: events still waiting at shutdown are lost (logged).
//!
//! Series (appended to the ops `/metrics` by [`WebhookQueue::render_metrics`]; plain atomics
//! like the pipeline's, so every edge in a test process has its own):
//! - `ingest_webhook_deliveries_total{result}` counter, `result` = `ok` | `failed`: each
//!   delivery attempt (`failed` counts every failed attempt, retried or not)
//! - `ingest_webhook_queue_length` gauge: events waiting, the one being delivered included
//! - `ingest_webhook_dropped_total` counter: events never delivered (pushed out of the full
//!   queue, or still failing after `give_up_after`)

#[cfg(test)]
mod tests;

use std::collections::VecDeque;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::header::{HeaderValue, CONTENT_TYPE};
use reqwest::Url;
use tokio::sync::{watch, Notify};

use super::event::Event;

/// Where and how events are delivered. The defaults are SPEC §12's; tests shrink the times.
#[derive(Clone, Debug)]
pub struct WebhookSettings {
    /// The receiver (http; https needs TLS in the HTTP client, which is not built in yet).
    pub url: Url,
    /// Events kept waiting at most; beyond it the oldest is dropped.
    pub capacity: usize,
    /// First retry delay; each further retry of the same event waits twice as long.
    pub backoff_base: Duration,
    /// Longest retry delay.
    pub backoff_max: Duration,
    /// An event still failing this long after its first attempt is dropped, so one dead
    /// receiver cannot hold the queue forever.
    pub give_up_after: Duration,
    /// Bound of one attempt (connect, send, answer), so a receiver that hangs counts as failed.
    pub attempt_timeout: Duration,
}

impl WebhookSettings {
    pub fn new(url: Url) -> WebhookSettings {
        WebhookSettings {
            url,
            capacity: 10_000,
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(300),
            give_up_after: Duration::from_secs(24 * 3600),
            attempt_timeout: Duration::from_secs(10),
        }
    }

    /// Delay before retry number `failures` (1 = after the first failed attempt).
    pub fn backoff(&self, failures: u32) -> Duration {
        let doublings = failures.saturating_sub(1).min(30);
        self.backoff_base
            .saturating_mul(1u32 << doublings)
            .min(self.backoff_max)
    }
}

/// The publishing side; cheap to clone. Built disabled when no URL is configured, so callers
/// publish unconditionally.
#[derive(Clone)]
pub struct WebhookQueue {
    shared: Arc<Shared>,
}

struct Shared {
    /// `None`: no webhook configured; publishing does nothing.
    settings: Option<WebhookSettings>,
    waiting: Mutex<Waiting>,
    /// Wakes the sender when an event arrives on an empty queue.
    wake: Notify,
    ok: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
}

#[derive(Default)]
struct Waiting {
    /// Oldest first; the front is the one being delivered.
    events: VecDeque<Pending>,
    /// Sequence number of the next published event: tells the sender whether the event it is
    /// delivering was pushed out of the queue meanwhile.
    next_seq: u64,
}

struct Pending {
    seq: u64,
    /// The serialized event, made once at publish time.
    body: Bytes,
}

impl WebhookQueue {
    /// A queue whose events go nowhere (no `abuse.webhook_url`).
    pub fn disabled() -> WebhookQueue {
        WebhookQueue::build(None)
    }

    /// A queue delivering to `settings.url` once [`WebhookQueue::run`] is spawned.
    pub fn new(settings: WebhookSettings) -> WebhookQueue {
        WebhookQueue::build(Some(settings))
    }

    fn build(settings: Option<WebhookSettings>) -> WebhookQueue {
        WebhookQueue {
            shared: Arc::new(Shared {
                settings,
                waiting: Mutex::default(),
                wake: Notify::new(),
                ok: AtomicU64::new(0),
                failed: AtomicU64::new(0),
                dropped: AtomicU64::new(0),
            }),
        }
    }

    pub fn is_enabled(&self) -> bool {
        self.shared.settings.is_some()
    }

    /// Queues `event` for delivery and returns at once; a full queue loses its oldest event.
    pub fn publish(&self, event: &Event) {
        let Some(settings) = &self.shared.settings else {
            return;
        };
        let body = match serde_json::to_vec(event) {
            Ok(b) => Bytes::from(b),
            Err(e) => {
                tracing::error!(error = %e, "cannot serialize an abuse event for the webhook");
                return;
            }
        };
        let mut waiting = self.lock();
        let seq = waiting.next_seq;
        waiting.next_seq += 1;
        waiting.events.push_back(Pending { seq, body });
        while waiting.events.len() > settings.capacity.max(1) {
            waiting.events.pop_front();
            self.shared.dropped.fetch_add(1, Relaxed);
        }
        drop(waiting);
        self.shared.wake.notify_one();
    }

    /// Events waiting, the one being delivered included.
    pub fn len(&self) -> usize {
        self.lock().events.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Delivers events until `shutdown` turns true (or its sender is gone). Returns at once
    /// for a disabled queue.
    pub async fn run(self, mut shutdown: watch::Receiver<bool>) {
        let Some(settings) = self.shared.settings.clone() else {
            return;
        };
        let client = match reqwest::Client::builder()
            .timeout(settings.attempt_timeout)
            // A redirect would turn the POST into a GET elsewhere: count it as a failure.
            .redirect(reqwest::redirect::Policy::none())
            .build()
        {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "webhook: cannot build the HTTP client; events are not delivered");
                return;
            }
        };
        loop {
            let head = tokio::select! {
                head = self.next_head() => head,
                _ = stopped(&mut shutdown) => break,
            };
            if self.deliver(&client, &settings, head, &mut shutdown).await == Flow::Stop {
                break;
            }
        }
        let left = self.len();
        if left > 0 {
            tracing::warn!(
                events = left,
                "webhook: shutting down with undelivered events"
            );
        }
    }

    /// The oldest waiting event (left in the queue until it is delivered or given up).
    async fn next_head(&self) -> (u64, Bytes) {
        loop {
            if let Some(p) = self.lock().events.front() {
                return (p.seq, p.body.clone());
            }
            // `notify_one` keeps a permit when nobody waits, so a publish between the check
            // above and this wait is not missed.
            self.shared.wake.notified().await;
        }
    }

    /// Tries one event until it is delivered, given up, or pushed out of the queue.
    async fn deliver(
        &self,
        client: &reqwest::Client,
        settings: &WebhookSettings,
        (seq, body): (u64, Bytes),
        shutdown: &mut watch::Receiver<bool>,
    ) -> Flow {
        let first_attempt = Instant::now();
        let mut failures = 0u32;
        loop {
            let attempt = client
                .post(settings.url.clone())
                .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
                .body(body.clone())
                .send();
            let outcome = tokio::select! {
                r = attempt => r,
                _ = stopped(shutdown) => return Flow::Stop,
            };
            match outcome {
                Ok(resp) if resp.status().is_success() => {
                    self.shared.ok.fetch_add(1, Relaxed);
                    self.remove(seq);
                    return Flow::Next;
                }
                Ok(resp) => {
                    tracing::debug!(status = %resp.status(), "webhook: receiver refused an event");
                }
                Err(e) => tracing::debug!(error = %e, "webhook: delivery failed"),
            }
            self.shared.failed.fetch_add(1, Relaxed);
            failures = failures.saturating_add(1);
            if first_attempt.elapsed() >= settings.give_up_after {
                if self.remove(seq) {
                    self.shared.dropped.fetch_add(1, Relaxed);
                    tracing::warn!(
                        attempts = failures,
                        "webhook: giving up on an event after its retry period"
                    );
                }
                return Flow::Next;
            }
            tokio::select! {
                _ = tokio::time::sleep(settings.backoff(failures)) => {}
                _ = stopped(shutdown) => return Flow::Stop,
            }
            if !self.is_head(seq) {
                // Pushed out of the full queue while waiting: its drop is already counted.
                return Flow::Next;
            }
        }
    }

    /// Removes event `seq` if it is still the oldest; `false` if it was pushed out meanwhile.
    fn remove(&self, seq: u64) -> bool {
        let mut waiting = self.lock();
        if waiting.events.front().is_some_and(|p| p.seq == seq) {
            waiting.events.pop_front();
            true
        } else {
            false
        }
    }

    fn is_head(&self, seq: u64) -> bool {
        self.lock().events.front().is_some_and(|p| p.seq == seq)
    }

    fn lock(&self) -> MutexGuard<'_, Waiting> {
        // Nothing panics while holding the lock; if something did, the queue is still sound.
        self.shared
            .waiting
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Appends this queue's series to a `/metrics` text exposition.
    pub fn render_metrics(&self, out: &mut String) {
        let s = &self.shared;
        let _ = write!(
            out,
            "# HELP ingest_webhook_deliveries_total Webhook delivery attempts by result (failed: every failed attempt, retried or not).\n\
             # TYPE ingest_webhook_deliveries_total counter\n\
             ingest_webhook_deliveries_total{{result=\"ok\"}} {}\n\
             ingest_webhook_deliveries_total{{result=\"failed\"}} {}\n\
             # HELP ingest_webhook_queue_length Abuse events waiting for webhook delivery, the one being delivered included.\n\
             # TYPE ingest_webhook_queue_length gauge\n\
             ingest_webhook_queue_length {}\n\
             # HELP ingest_webhook_dropped_total Abuse events never delivered: pushed out of the full queue, or failing for the whole retry period.\n\
             # TYPE ingest_webhook_dropped_total counter\n\
             ingest_webhook_dropped_total {}\n",
            s.ok.load(Relaxed),
            s.failed.load(Relaxed),
            self.len(),
            s.dropped.load(Relaxed),
        );
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Flow {
    Next,
    Stop,
}

/// Resolves when shutdown is asked for, or when nobody can ask any more (sender dropped).
async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

impl super::sink::EventHook for WebhookQueue {
    fn publish(&self, e: &Event) {
        WebhookQueue::publish(self, e);
    }
}
