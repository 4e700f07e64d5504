//! The in-memory hand-off used when durability is switched off: the same byte bound and
//! forwarders as the spool, without the disk. Acknowledged data is lost on a crash; it exists
//! to measure what durability costs and for deployments that accept that trade.

use std::sync::Mutex;

use tokio::sync::mpsc;

use super::forward::MemItem;
use super::record::Spooled;
use super::stats::{Budget, QueueMetrics};
use super::{Batch, HandoffError};

/// One queue's in-memory hand-off.
#[derive(Debug)]
pub(crate) struct MemQueue {
    /// Into the forwarder.
    tx: mpsc::UnboundedSender<MemItem>,
    /// Held while no forwarder consumes, so the data stays (bounded) instead of failing sends.
    parked_rx: Mutex<Option<mpsc::UnboundedReceiver<MemItem>>>,
}

impl MemQueue {
    /// A hand-off and its receiving end (to give a forwarder, or to [`MemQueue::park`]).
    pub(crate) fn new() -> (MemQueue, mpsc::UnboundedReceiver<MemItem>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (
            MemQueue {
                tx,
                parked_rx: Mutex::new(None),
            },
            rx,
        )
    }

    /// Keeps the receiver when there is no upstream to forward to.
    pub(crate) fn park(&self, rx: mpsc::UnboundedReceiver<MemItem>) {
        *self.parked_rx.lock().unwrap_or_else(|p| p.into_inner()) = Some(rx);
    }

    /// Queues a batch if it fits in the budget.
    pub(crate) fn submit(
        &self,
        batch: Batch,
        accepted_ms: u64,
        budget: &Budget,
        metrics: &QueueMetrics,
        retry_after_secs: u32,
    ) -> Result<(), HandoffError> {
        // The same cost as on disk, roughly, so both modes fill at the same point.
        let size = (batch.body.len()
            + batch.token_id.len()
            + batch.tenant.as_deref().map_or(0, str::len)
            + batch.content_type.len()
            + 64) as u64;
        if !budget.try_reserve(size) {
            return Err(HandoffError::Overloaded { retry_after_secs });
        }
        metrics.add(1, size, accepted_ms);
        let item = MemItem {
            batch: Spooled::from_batch(batch, accepted_ms),
            size,
        };
        if self.tx.send(item).is_err() {
            metrics.remove(1, size, None);
            budget.release(size);
            return Err(HandoffError::Closed);
        }
        Ok(())
    }
}
