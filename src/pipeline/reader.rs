//! The forwarder's view of a durable spool: reads whole, verified records in order from the
//! read position up to the writer's durable end, following segment rolls, and waits when it
//! has caught up.

use std::fs::File;
use std::io;
use std::sync::Arc;

use tokio::sync::watch;

use super::segment::{read_records, segment_path, Position, RawRecord, Stop};
use super::spool::SpoolShared;

/// How much one read pulls in: enough to amortise the blocking-pool hop, small enough to
/// keep memory flat when the backlog is large.
const READ_BUDGET: usize = 1 << 20;

/// What one read produced.
#[derive(Debug, Default)]
pub(crate) struct Chunk {
    /// Records in order, positions included.
    pub records: Vec<(Position, RawRecord)>,
    /// Bytes of durable data that could not be read back (disk corruption after it was
    /// written); they are given up and must be released from the backlog.
    pub skipped: u64,
}

/// Sequential reader over one queue's segments.
pub(crate) struct DiskReader {
    /// Segment list and durable end.
    shared: Arc<SpoolShared>,
    /// Next byte to read.
    pos: Position,
    /// Wakes the reader when the writer makes more data durable.
    durable: watch::Receiver<Position>,
    /// The open segment, reused across reads.
    file: Option<(u64, Arc<File>)>,
}

impl DiskReader {
    pub(crate) fn new(shared: Arc<SpoolShared>, pos: Position) -> DiskReader {
        let durable = shared.durable.subscribe();
        DiskReader {
            shared,
            pos,
            durable,
            file: None,
        }
    }

    /// Where the next record starts.
    pub(crate) fn position(&self) -> Position {
        self.pos
    }

    /// Waits for and returns the next records (never an empty chunk unless bytes were skipped).
    pub(crate) async fn next_chunk(&mut self) -> io::Result<Chunk> {
        loop {
            let durable = *self.durable.borrow_and_update();
            // `finished`: the segment will not grow any more, so its end means "move on".
            let (limit, finished) = if self.pos.seg == durable.seg {
                (durable.off, false)
            } else {
                match self.shared.sealed_len(self.pos.seg) {
                    Some(Some(len)) => (len, true),
                    // Active yet behind the durable end cannot happen; wait and look again.
                    Some(None) => (self.pos.off, false),
                    // Gone (or never existed): nothing to read here.
                    None => (self.pos.off, true),
                }
            };
            if limit > self.pos.off {
                return self.read(limit).await;
            }
            if finished {
                if let Some(next) = self.shared.next_segment(self.pos.seg) {
                    self.pos = Position { seg: next, off: 0 };
                    self.file = None;
                    continue;
                }
            }
            // Caught up: the writer's sender lives in `shared`, so this only ends by cancellation.
            if self.durable.changed().await.is_err() {
                return Ok(Chunk::default());
            }
        }
    }

    async fn read(&mut self, limit: u64) -> io::Result<Chunk> {
        let file = match &self.file {
            Some((seg, f)) if *seg == self.pos.seg => Arc::clone(f),
            _ => {
                let f = Arc::new(File::open(segment_path(&self.shared.dir, self.pos.seg))?);
                self.file = Some((self.pos.seg, Arc::clone(&f)));
                f
            }
        };
        let from = self.pos.off;
        let out =
            tokio::task::spawn_blocking(move || read_records(&file, from, limit, READ_BUDGET))
                .await
                .map_err(io::Error::other)??;
        let seg = self.pos.seg;
        let mut chunk = Chunk {
            records: out
                .records
                .into_iter()
                .map(|r| (Position { seg, off: r.start }, r))
                .collect(),
            skipped: 0,
        };
        self.pos.off = out.next;
        if matches!(out.stop, Stop::Torn | Stop::Corrupt) {
            // Only bytes the writer fsynced are read, so this is damage after the fact.
            tracing::error!(
                segment = seg, offset = out.next, limit, reason = ?out.stop,
                "spool record unreadable; skipping the rest of the durable data in this segment"
            );
            chunk.skipped = limit - out.next;
            self.pos.off = limit;
        }
        Ok(chunk)
    }
}
