//! The forwarder of one queue: takes records in order from the spool (or the in-memory
//! hand-off), keeps up to `concurrency` deliveries in flight, and moves the acknowledged
//! position only over a contiguous prefix of finished records, so the persisted read position
//! never skips a record that is still being retried.
//!
//! Finished means delivered (2xx) or refused for good (parked in the dead letter). Only then
//! are its bytes released from the budget; the segments wholly before the acknowledged
//! position are deleted when it is persisted (every [`ACK_PERSIST_EVERY`] and at shutdown).

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;

mod source;

use source::Item;
pub(crate) use source::{MemItem, Source};

use super::dead_letter::DeadLetter;
use super::gate::Gate;
use super::merge::Group;
use super::record::{encode_spooled, frame_raw, Spooled};
use super::segment::Position;
use super::stats::{Budget, QueueMetrics};
use super::upstream::{deliver, Outcome, Upstream};

/// How often the acknowledged position is persisted (a crash resends at most this much).
pub(crate) const ACK_PERSIST_EVERY: Duration = Duration::from_millis(200);

/// A record dispatched and not yet part of the acknowledged prefix.
#[derive(Debug)]
struct Slot {
    /// Its position, which becomes the acknowledged position while it is the oldest slot.
    start: Position,
    /// Bytes released from the budget once it is part of the finished prefix.
    size: u64,
    /// Kept for a re-dispatch after a panic and for the dead letter; dropped once finished.
    batch: Option<Spooled>,
    /// Acceptance time, for the oldest-record gauge once the slots before it are gone.
    accepted_ms: Option<u64>,
    /// Delivered or dead-lettered.
    done: bool,
}

impl Slot {
    /// A record handed to a delivery.
    fn new(start: Position, size: u64, batch: &Spooled) -> Slot {
        Slot {
            start,
            size,
            batch: Some(batch.clone()),
            accepted_ms: Some(batch.accepted_ms),
            done: false,
        }
    }

    /// A record settled without a delivery (it went straight to the dead letter).
    fn finished(start: Position, size: u64) -> Slot {
        Slot {
            start,
            size,
            batch: None,
            accepted_ms: None,
            done: true,
        }
    }
}

/// Drains one queue to its upstream.
pub(crate) struct Forwarder {
    /// Records to send.
    pub source: Source,
    /// Shared HTTP client (connection pool).
    pub client: reqwest::Client,
    /// Where and how to send.
    pub upstream: Arc<Upstream>,
    /// This queue's counters and backlog.
    pub metrics: Arc<QueueMetrics>,
    /// Released as records finish.
    pub budget: Arc<Budget>,
    /// Where final refusals go.
    pub dead: Arc<Mutex<DeadLetter>>,
    /// Deliveries in flight at once (1 keeps upstream order).
    pub concurrency: usize,
    /// Largest merged request, in uncompressed body bytes (0: one request per record).
    pub batch_bytes: u64,
    /// Told when bytes are released and whether the upstream answers.
    pub gate: Arc<Gate>,
}

impl Forwarder {
    /// Runs until `shutdown` turns true (or its sender is dropped).
    pub(crate) async fn run(mut self, mut shutdown: watch::Receiver<bool>) {
        let mut ready: VecDeque<Item> = VecDeque::new();
        let mut slots: VecDeque<Slot> = VecDeque::new();
        let mut first_id = 0u64;
        let mut tasks = JoinSet::new();
        let mut task_slot = HashMap::new();
        let mut persisted = self.source.position();
        let mut tick = tokio::time::interval(ACK_PERSIST_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut open = true;
        let concurrency = self.concurrency.max(1);
        loop {
            // Pop what finished first, so its place is free for the next delivery at once.
            loop {
                first_id += self.settle(&mut slots, &ready);
                if tasks.len() >= concurrency {
                    break;
                }
                let Some(item) = ready.pop_front() else { break };
                let batch = match item.batch {
                    Ok(batch) => batch,
                    Err(raw) => {
                        self.park(frame_raw(&raw)).await;
                        slots.push_back(Slot::finished(item.start, item.size));
                        continue;
                    }
                };
                // The records that follow join this delivery while they merge with it.
                let first = first_id + slots.len() as u64;
                slots.push_back(Slot::new(item.start, item.size, &batch));
                let mut group = Group::new(batch, self.batch_bytes);
                while let Some(Item {
                    start,
                    size,
                    batch: Ok(next),
                }) = ready.front()
                {
                    let slot = Slot::new(*start, *size, next);
                    if !group.push(next) {
                        break;
                    }
                    ready.pop_front();
                    slots.push_back(slot);
                }
                let n = group.len();
                let h = tasks.spawn(self.deliver(group));
                task_slot.insert(h.id(), (first, n));
            }
            if *shutdown.borrow() || (!open && slots.is_empty() && ready.is_empty()) {
                break;
            }
            tokio::select! {
                biased;
                r = shutdown.changed() => {
                    if r.is_err() {
                        break;
                    }
                }
                Some(joined) = tasks.join_next_with_id(), if !tasks.is_empty() => {
                    let (tid, outcome) = match joined {
                        Ok((tid, outcome)) => (tid, Some(outcome)),
                        Err(e) => (e.id(), None),
                    };
                    let Some((first, n)) = task_slot.remove(&tid) else { continue };
                    let Some(at) = first.checked_sub(first_id) else { continue };
                    let mut outcomes = outcome.map(Vec::into_iter);
                    for (i, slot) in slots.iter_mut().skip(at as usize).take(n).enumerate() {
                        let Some(batch) = slot.batch.take() else {
                            slot.done = true;
                            continue;
                        };
                        match outcomes.as_mut().and_then(Iterator::next) {
                            Some(outcome) => {
                                self.finish(outcome, &batch).await;
                                slot.done = true;
                            }
                            None => {
                                // A panic: send each record again on its own.
                                tracing::error!("delivery task failed; dispatching the record again");
                                let h = tasks.spawn(self.deliver(Group::new(batch.clone(), 0)));
                                task_slot.insert(h.id(), (first + i as u64, 1));
                                slot.batch = Some(batch);
                            }
                        }
                    }
                }
                next = self.source.next(), if open && ready.is_empty() && tasks.len() < concurrency => {
                    match next {
                        Some((items, skipped)) => {
                            if skipped > 0 {
                                self.metrics.remove(0, skipped, None);
                                self.budget.release(skipped);
                            }
                            ready.extend(items);
                        }
                        None => open = false,
                    }
                }
                _ = tick.tick() => {
                    let pos = acked_position(&slots, &ready, &self.source);
                    if pos != persisted {
                        self.source.commit(pos).await;
                        persisted = pos;
                    }
                }
            }
        }
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
        let pos = acked_position(&slots, &ready, &self.source);
        if pos != persisted {
            self.source.commit(pos).await;
        }
    }

    /// Sends a group: merged into one request when it has several records. Should the
    /// upstream refuse the merged request for good, each record is sent on its own, so that
    /// only the records it refuses end in the dead letter. One outcome per record, in order.
    fn deliver(
        &self,
        group: Group,
    ) -> impl std::future::Future<Output = Vec<Outcome>> + Send + 'static {
        let client = self.client.clone();
        let up = Arc::clone(&self.upstream);
        let metrics = Arc::clone(&self.metrics);
        let gate = Arc::clone(&self.gate);
        async move {
            let (parts, merged) = group.finish();
            if let Some(merged) = merged {
                let outcome = deliver(
                    client.clone(),
                    Arc::clone(&up),
                    merged,
                    Arc::clone(&metrics),
                    &gate,
                )
                .await;
                if outcome == Outcome::Delivered {
                    return parts.iter().map(|_| Outcome::Delivered).collect();
                }
                tracing::warn!(
                    queue = up.queue.name(),
                    records = parts.len(),
                    ?outcome,
                    "upstream refused a merged batch; sending its records one by one"
                );
            }
            let mut outcomes = Vec::with_capacity(parts.len());
            for part in parts {
                outcomes.push(
                    deliver(
                        client.clone(),
                        Arc::clone(&up),
                        part,
                        Arc::clone(&metrics),
                        &gate,
                    )
                    .await,
                );
            }
            outcomes
        }
    }

    async fn finish(&self, outcome: Outcome, batch: &Spooled) {
        match outcome {
            Outcome::Delivered => {
                self.metrics.forwarded.fetch_add(1, Relaxed);
                self.metrics.forwarded_items.fetch_add(batch.items, Relaxed);
            }
            Outcome::Rejected { status, message } => {
                tracing::warn!(
                    queue = self.upstream.queue.name(), status, %message, token_id = %batch.token_id,
                    "upstream refused batch for good; parking it in the dead letter"
                );
                match encode_spooled(batch) {
                    Ok(frame) => self.park(frame).await,
                    Err(e) => tracing::error!(error = %e, "cannot frame dead-letter record"),
                }
            }
        }
    }

    /// Appends a frame to the dead letter and counts it.
    async fn park(&self, frame: Vec<u8>) {
        self.metrics.dead_lettered.fetch_add(1, Relaxed);
        let dead = Arc::clone(&self.dead);
        let res = tokio::task::spawn_blocking(move || {
            dead.lock()
                .unwrap_or_else(|p| p.into_inner())
                .append(&frame)
        })
        .await;
        if let Err(e) = res.map_err(std::io::Error::other).and_then(|r| r) {
            tracing::error!(error = %e, "dead-letter append failed; record dropped");
        }
    }

    /// Pops the finished prefix, releasing its bytes; returns how many slots were popped.
    fn settle(&self, slots: &mut VecDeque<Slot>, ready: &VecDeque<Item>) -> u64 {
        let (mut n, mut bytes) = (0u64, 0u64);
        while slots.front().is_some_and(|s| s.done) {
            if let Some(s) = slots.pop_front() {
                n += 1;
                bytes += s.size;
            }
        }
        if n > 0 {
            let next_ms = slots.iter().find_map(|s| s.accepted_ms).or_else(|| {
                ready
                    .iter()
                    .find_map(|i| i.batch.as_ref().ok().map(|b| b.accepted_ms))
            });
            self.metrics.remove(n, bytes, next_ms);
            self.budget.release(bytes);
            self.gate.released();
        }
        n
    }
}

/// The first record not yet finished.
fn acked_position(slots: &VecDeque<Slot>, ready: &VecDeque<Item>, source: &Source) -> Position {
    slots
        .front()
        .map(|s| s.start)
        .or_else(|| ready.front().map(|i| i.start))
        .unwrap_or_else(|| source.position())
}
