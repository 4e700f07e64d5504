//! Latency backpressure at the admission point: while a queue's upstream is healthy and its
//! backlog is past `pipeline.backpressure_bytes`, `submit` waits for the forwarder to deliver
//! before it takes the batch, instead of filling the spool and then answering `503` to about
//! half of the requests.
//!
//! A sender that keeps its connections busy (Prometheus opens up to 50 shards) then sees its
//! latency rise and sends exactly as fast as the upstream takes the data, the way vmagent
//! behaves; the spool stays near the threshold. The wait is bounded by
//! `pipeline.backpressure_max_wait`: past it the batch goes to the spool anyway (if the byte
//! budget has room), so a slow upstream costs latency first and disk second. With the
//! upstream failing (a delivery being retried) nobody waits: the spool absorbs the outage and
//! `503` comes only once it is really full.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

/// One queue's gate.
#[derive(Debug)]
pub(crate) struct Gate {
    /// Backlog bytes from which `submit` waits; 0: never waits.
    threshold: u64,
    /// Longest wait of one batch.
    max_wait: Duration,
    /// `false` while a delivery to the upstream is failing and being retried.
    healthy: AtomicBool,
    /// Woken when the forwarder releases delivered bytes (and at shutdown).
    released: Notify,
}

/// How a batch passed the gate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Admission {
    /// Without waiting.
    Open,
    /// After waiting for deliveries (or for the upstream to fail, or for shutdown).
    Waited,
    /// After waiting `max_wait` with the backlog still past the threshold.
    TimedOut,
}

impl Gate {
    /// A gate that opens below `threshold` backlog bytes (0: always open).
    pub(crate) fn new(threshold: u64, max_wait: Duration) -> Gate {
        Gate {
            threshold,
            max_wait,
            healthy: AtomicBool::new(true),
            released: Notify::new(),
        }
    }

    /// Waits while `backlog()` is at or past the threshold and the upstream is healthy, at most
    /// `max_wait`; `closed()` ends the wait early (shutdown).
    pub(crate) async fn admit(
        &self,
        backlog: impl Fn() -> u64,
        closed: impl Fn() -> bool,
    ) -> Admission {
        if self.threshold == 0 || backlog() < self.threshold || !self.healthy.load(Relaxed) {
            return Admission::Open;
        }
        let deadline = Instant::now() + self.max_wait;
        loop {
            let released = self.released.notified();
            tokio::pin!(released);
            // Registered before the check, so a release between the check and the wait wakes it.
            released.as_mut().enable();
            if backlog() < self.threshold || !self.healthy.load(Relaxed) || closed() {
                return Admission::Waited;
            }
            if tokio::time::timeout_at(deadline, released).await.is_err() {
                return Admission::TimedOut;
            }
        }
    }

    /// The forwarder released delivered bytes: waiting batches look again.
    pub(crate) fn released(&self) {
        self.released.notify_waiters();
    }

    /// An upstream attempt ended: `false` on a retryable failure, `true` on an answer that
    /// settles the record (2xx, or a final refusal). Turning unhealthy lets every waiter in.
    pub(crate) fn set_healthy(&self, healthy: bool) {
        if self.healthy.swap(healthy, Relaxed) && !healthy {
            self.released.notify_waiters();
        }
    }
}
