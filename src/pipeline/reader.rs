//! The forwarder's view of a durable spool: reads whole, verified records in order from the
//! read position up to the writer's durable end, following segment rolls, and waits when it
//! has caught up.

use std::fs::File;
use std::io;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::Instant;

use super::recent::records_of;
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
    /// How long new durable data may wait for more to join it before it is read; see
    /// [`Linger`].
    linger: Linger,
}

/// Waiting a little for more durable data before reading, so that one read and one upstream
/// request carry many groups instead of one each. Under load the writer makes a group durable
/// every few hundred microseconds; reading each one on its own costs a read, a thread hop and
/// an upstream request per group (measured: about a fifth of the edge's CPU on one core at
/// 64 RUM connections). Like Kafka's `linger.ms`: the oldest unread group waits at most `wait`
/// from the moment it became durable (so data that piled up during a delivery goes at once),
/// and nothing waits while `fill` bytes are pending or when the reader is behind the groups
/// kept in memory.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct Linger {
    /// Longest wait; zero reads at once.
    pub wait: Duration,
    /// Pending bytes that are read at once, however recent.
    pub fill: u64,
}

impl DiskReader {
    pub(crate) fn new(shared: Arc<SpoolShared>, pos: Position) -> DiskReader {
        let durable = shared.durable.subscribe();
        DiskReader {
            shared,
            pos,
            durable,
            file: None,
            linger: Linger::default(),
        }
    }

    /// Reads wait per `linger` for more data before reading a small amount.
    pub(crate) fn with_linger(mut self, linger: Linger) -> DiskReader {
        self.linger = linger;
        self
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
                let deadline = match self.shared.recent.durable_at(self.pos) {
                    Some(at) => Instant::from_std(at) + self.linger.wait,
                    None => Instant::now(),
                };
                // A finished segment will not grow: read it out so the next one can start.
                if finished
                    || limit - self.pos.off >= self.linger.fill
                    || Instant::now() >= deadline
                {
                    return self.read(limit).await;
                }
                tokio::select! {
                    changed = self.durable.changed() => {
                        if changed.is_err() {
                            return self.read(limit).await;
                        }
                    }
                    () = tokio::time::sleep_until(deadline) => {}
                }
                continue;
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
        if let Some(chunk) = self.read_recent(limit) {
            return Ok(chunk);
        }
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

    /// The records up to `limit` from the groups the writer still holds in memory; `None`
    /// when the read position is no longer among them (the file is read instead).
    fn read_recent(&mut self, limit: u64) -> Option<Chunk> {
        let groups = self.shared.recent.take(self.pos, limit, READ_BUDGET);
        let mut records = Vec::new();
        let mut next = self.pos.off;
        for (at, group) in &groups {
            let start = Position {
                seg: self.pos.seg,
                off: *at,
            };
            records_of(start, group, &mut records)?;
            next = at + group.len() as u64;
        }
        if records.is_empty() {
            return None;
        }
        self.pos.off = next;
        Some(Chunk {
            records,
            skipped: 0,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::record::frame_raw;
    use crate::pipeline::spool::Spool;
    use crate::pipeline::stats::{Budget, QueueMetrics, Reservation};
    use crate::pipeline::Queue;

    /// A spool in a fresh directory, a budget for its appends, and the directory's guard.
    fn spool() -> (Spool, Arc<Budget>, tempfile::TempDir) {
        spool_with_segments(1 << 20)
    }

    fn spool_with_segments(segment_bytes: u64) -> (Spool, Arc<Budget>, tempfile::TempDir) {
        let dir = tempfile::tempdir().expect("temp dir");
        let metrics = Arc::new(QueueMetrics::default());
        let (spool, _) =
            Spool::open(dir.path(), Queue::Traces, segment_bytes, metrics).expect("open");
        (spool, Arc::new(Budget::new(1 << 30)), dir)
    }

    async fn reader_next(reader: &mut DiskReader) -> Chunk {
        tokio::time::timeout(Duration::from_secs(10), reader.next_chunk())
            .await
            .expect("a read within 10 s")
            .expect("read")
    }

    /// Appends one record as a group of its own (the append returns after its fsync).
    async fn append(spool: &Spool, budget: &Arc<Budget>, payload: &[u8]) {
        let frame = frame_raw(payload);
        let reservation = Reservation::take(budget, frame.len() as u64).expect("budget");
        spool.append(frame, 0, reservation).await.expect("append");
    }

    /// Three records fsynced 100 ms apart: read at once, the first read does not wait for the
    /// third; with a linger the one read carries all three.
    #[tokio::test]
    async fn lingering_reads_groups_fsynced_apart_in_one_chunk() {
        for (wait, lingers) in [(Duration::ZERO, false), (Duration::from_secs(3), true)] {
            let (spool, budget, _dir) = spool();
            let mut reader = spool.reader().with_linger(Linger {
                wait,
                fill: 1 << 20,
            });
            let read = tokio::spawn(async move { reader.next_chunk().await.expect("read") });
            for payload in [b"one", b"two", b"six"] {
                append(&spool, &budget, payload).await;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            let chunk = tokio::time::timeout(Duration::from_secs(10), read)
                .await
                .expect("a read returns")
                .expect("read task");
            let n = chunk.records.len();
            if lingers {
                assert_eq!(n, 3, "linger {wait:?}");
            } else {
                assert!(
                    (1..3).contains(&n),
                    "no linger, yet {n} records in the first read"
                );
            }
            spool.stop().await;
        }
    }

    /// A linger runs from the moment the data became durable and never holds it back past
    /// that: data that piled up while the reader was away (a delivery in flight) is read at
    /// once, fresh data waits out the linger, and `fill` bytes are read at once.
    #[tokio::test]
    async fn linger_runs_from_durability_and_a_full_batch_is_read_at_once() {
        // (linger, fill, pause between the append and the read, bounds on the read's wait)
        let cases = [
            (ms(300), 1 << 20, ms(0), ms(250)..ms(5_000)),
            (ms(2_000), 1 << 20, ms(2_200), ms(0)..ms(1_500)),
            (Duration::from_secs(3600), 8, ms(0), ms(0)..ms(5_000)),
        ];
        for (wait, fill, pause, bounds) in cases {
            let (spool, budget, _dir) = spool();
            let mut reader = spool.reader().with_linger(Linger { wait, fill });
            append(&spool, &budget, b"a payload longer than eight bytes").await;
            tokio::time::sleep(pause).await;
            let started = Instant::now();
            let chunk = tokio::time::timeout(bounds.end, reader.next_chunk())
                .await
                .unwrap_or_else(|_| panic!("linger {wait:?} fill {fill}: no read in time"))
                .expect("read");
            let took = started.elapsed();
            assert_eq!(chunk.records.len(), 1);
            assert!(
                bounds.contains(&took),
                "linger {wait:?}, fill {fill}, pause {pause:?}: read after {took:?}"
            );
            spool.stop().await;
        }
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// A reader that keeps up takes the records from memory (here the file has been emptied
    /// behind its back and it still reads them); one that fell behind the window reads them
    /// from the file.
    #[tokio::test]
    async fn a_reader_that_keeps_up_reads_memory_and_one_behind_reads_the_file() {
        let (spool, budget, dir) = spool();
        let mut reader = spool.reader();
        append(&spool, &budget, b"from memory").await;
        for id in crate::pipeline::segment::list_segments(dir.path()).expect("segments") {
            let path = segment_path(dir.path(), id);
            std::fs::OpenOptions::new()
                .write(true)
                .open(path)
                .and_then(|f| f.set_len(0))
                .expect("empty the segment");
        }
        let chunk = reader.next_chunk().await.expect("read");
        let payloads: Vec<&[u8]> = chunk
            .records
            .iter()
            .map(|(_, r)| r.payload.as_ref())
            .collect();
        assert_eq!(payloads, [&b"from memory"[..]]);
        spool.stop().await;

        let (spool, budget, _dir) = spool_with_segments(64 << 20);
        let mut behind = spool.reader();
        let big = vec![7u8; 1 << 20];
        let n = crate::pipeline::recent::RECENT_MAX_BYTES / big.len() + 2;
        for _ in 0..n {
            append(&spool, &budget, &big).await;
        }
        let mut read = 0;
        while read < n {
            let chunk = reader_next(&mut behind).await;
            assert!(chunk.records.iter().all(|(_, r)| r.payload == big));
            read += chunk.records.len();
        }
        assert_eq!(read, n);
        spool.stop().await;
    }
}
