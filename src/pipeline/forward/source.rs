//! Where a forwarder takes its records from: the durable spool's reader, or the in-memory
//! hand-off when durability is off.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;

use super::super::reader::DiskReader;
use super::super::record::{decode_payload, Spooled};
use super::super::segment::Position;
use super::super::spool::SpoolShared;

/// A batch in the in-memory hand-off, with the bytes it holds in the budget.
#[derive(Debug)]
pub(crate) struct MemItem {
    /// The batch.
    pub batch: Spooled,
    /// Bytes reserved for it.
    pub size: u64,
}

/// Where a forwarder takes its records from.
pub(crate) enum Source {
    /// The durable spool.
    Disk {
        /// Reads records in order.
        reader: DiskReader,
        /// For persisting the position and deleting segments.
        shared: Arc<SpoolShared>,
    },
    /// The in-memory hand-off (durability off).
    Memory(mpsc::UnboundedReceiver<MemItem>),
}

/// A record waiting to be dispatched.
pub(super) struct Item {
    /// Its position in the spool (default for memory).
    pub(super) start: Position,
    /// Bytes it holds in the budget.
    pub(super) size: u64,
    /// The batch, or the raw payload when it does not decode.
    pub(super) batch: Result<Spooled, Bytes>,
}

impl Source {
    /// Next records; `None` once an in-memory hand-off is closed and empty.
    pub(super) async fn next(&mut self) -> Option<(Vec<Item>, u64)> {
        match self {
            Source::Disk { reader, .. } => match reader.next_chunk().await {
                Ok(chunk) => {
                    let items = chunk
                        .records
                        .into_iter()
                        .map(|(start, raw)| Item {
                            start,
                            size: raw.end - raw.start,
                            batch: decode_payload(raw.payload.clone()).map_err(|e| {
                                tracing::error!(?start, error = %e, "spool record does not decode");
                                raw.payload
                            }),
                        })
                        .collect();
                    Some((items, chunk.skipped))
                }
                Err(e) => {
                    tracing::error!(error = %e, "spool read failed; retrying in 1s");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    Some((Vec::new(), 0))
                }
            },
            Source::Memory(rx) => {
                let first = rx.recv().await?;
                let mut items = vec![first];
                while items.len() < 256 {
                    match rx.try_recv() {
                        Ok(i) => items.push(i),
                        Err(_) => break,
                    }
                }
                let items = items
                    .into_iter()
                    .map(|m| Item {
                        start: Position::default(),
                        size: m.size,
                        batch: Ok(m.batch),
                    })
                    .collect();
                Some((items, 0))
            }
        }
    }

    pub(super) fn position(&self) -> Position {
        match self {
            Source::Disk { reader, .. } => reader.position(),
            Source::Memory(_) => Position::default(),
        }
    }

    pub(super) async fn commit(&self, pos: Position) {
        if let Source::Disk { shared, .. } = self {
            let shared = Arc::clone(shared);
            let res = tokio::task::spawn_blocking(move || shared.commit_ack(pos)).await;
            if let Err(e) = res.map_err(std::io::Error::other).and_then(|r| r) {
                tracing::error!(error = %e, "persisting spool read position failed");
            }
        }
    }
}
