//! The durable spool of one queue: recovery of its directory at start (torn or corrupt tails
//! cut, acknowledged segments removed, the backlog counted), the handle that appends through
//! the group-commit [`writer`](super::writer), and the state shared with the forwarder's
//! [`reader`](super::reader).
//!
//! Invariant: a segment is deleted only once the persisted read position has moved past it,
//! i.e. every record in it was delivered (or dead-lettered). Delivery is at-least-once: the read
//! position is persisted lazily, so a crash may send the last few records again.

use std::collections::BTreeMap;
use std::fs::{self, OpenOptions};
use std::io;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tokio::sync::{mpsc, oneshot, watch};

use super::reader::DiskReader;
use super::recent::Recent;
use super::record::accepted_ms_of;
use super::segment::{
    list_segments, read_ack, scan_segment, segment_path, write_ack, Position, Stop,
};
use super::stats::{Backlog, QueueMetrics, Reservation};
use super::writer::{create_segment, Damage, Writer, WriterMsg};
use super::{HandoffError, Queue};

/// State of one queue shared by its writer, its reader and the metrics.
#[derive(Debug)]
pub(crate) struct SpoolShared {
    /// The queue directory.
    pub dir: PathBuf,
    /// Segment id -> sealed length (`None` for the active segment, still growing).
    segments: Mutex<BTreeMap<u64, Option<u64>>>,
    /// End of the durable data: readers never look past it.
    pub durable: watch::Sender<Position>,
    /// Backlog and counters of this queue.
    pub metrics: Arc<QueueMetrics>,
    /// The last groups made durable, for a forwarder that keeps up.
    pub recent: Recent,
}

impl SpoolShared {
    fn segments(&self) -> std::sync::MutexGuard<'_, BTreeMap<u64, Option<u64>>> {
        self.segments.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Records that `id` is complete at `len` bytes and `next` is the new active segment.
    pub(crate) fn sealed(&self, id: u64, len: u64, next: u64) {
        let mut segs = self.segments();
        segs.insert(id, Some(len));
        segs.insert(next, None);
    }

    /// `Some(Some(len))` for a sealed segment, `Some(None)` for the active one.
    pub(crate) fn sealed_len(&self, id: u64) -> Option<Option<u64>> {
        self.segments().get(&id).copied()
    }

    /// The first segment after `id`.
    pub(crate) fn next_segment(&self, id: u64) -> Option<u64> {
        self.segments()
            .range(id.saturating_add(1)..)
            .next()
            .map(|(k, _)| *k)
    }

    /// Persists the read position and deletes the segments wholly before it. Blocking.
    pub(crate) fn commit_ack(&self, pos: Position) -> io::Result<()> {
        write_ack(&self.dir, pos)?;
        let done: Vec<u64> = {
            let mut segs = self.segments();
            let keep = segs.split_off(&pos.seg);
            let done = segs.keys().copied().collect();
            *segs = keep;
            done
        };
        for id in done {
            shrink_gradually(&segment_path(&self.dir, id));
            match fs::remove_file(segment_path(&self.dir, id)) {
                Err(e) if e.kind() != io::ErrorKind::NotFound => return Err(e),
                _ => tracing::debug!(segment = id, "spool segment delivered, deleted"),
            }
        }
        Ok(())
    }
}

/// Bytes freed per `ftruncate` when a delivered segment is deleted.
const SHRINK_STEP: u64 = 1 << 20;

/// Frees a delivered segment's blocks 1 MiB at a time before it is unlinked. Freeing a
/// whole 64 MiB file in one `unlink` holds filesystem locks for 10-20 ms (50 ms for 256 MiB
/// on ext4), and the writer's next `fdatasync` waits for them: every request in flight then
/// sees the stall. Errors are ignored: the unlink that follows does the rest.
fn shrink_gradually(path: &Path) {
    let Ok(file) = fs::OpenOptions::new().write(true).open(path) else {
        return;
    };
    let Ok(mut len) = file.metadata().map(|m| m.len()) else {
        return;
    };
    while len > SHRINK_STEP {
        len -= SHRINK_STEP;
        if file.set_len(len).is_err() {
            return;
        }
    }
}

/// What one segment holds, as found by recovery.
#[derive(Debug, Default)]
struct SegmentSummary {
    /// Length after cutting any bad tail.
    len: u64,
    /// Records, bytes and first acceptance time of the whole segment.
    all: Backlog,
    /// The same, counting only records at or after the saved read offset (saved segment only).
    from_ack: Backlog,
    /// Whether the saved read offset is a record boundary of this segment.
    ack_on_boundary: bool,
}

fn count(b: &mut Backlog, bytes: u64, ms: Option<u64>) {
    if b.records == 0 {
        b.oldest_ms = ms;
    }
    b.records += 1;
    b.bytes += bytes;
}

/// The outcome of recovering a queue directory.
#[derive(Debug)]
pub(crate) struct Recovered {
    /// Surviving segments and their lengths.
    pub segments: BTreeMap<u64, u64>,
    /// Where the forwarder starts.
    pub ack: Position,
    /// Undelivered records from `ack` on.
    pub backlog: Backlog,
    /// Id for the new active segment.
    pub next_id: u64,
    /// Bytes cut from bad tails.
    pub cut_bytes: u64,
}

/// Scans and repairs a queue directory. Blocking.
pub(crate) fn recover(dir: &Path) -> io::Result<Recovered> {
    let ids = list_segments(dir)?;
    let saved = read_ack(dir);
    let mut summaries = BTreeMap::new();
    let mut cut_bytes = 0;
    for &id in &ids {
        let path = segment_path(dir, id);
        let mut s = SegmentSummary::default();
        let ack_off = saved.filter(|a| a.seg == id).map(|a| a.off);
        let end = scan_segment(&path, |r| {
            let ms = accepted_ms_of(&r.payload);
            count(&mut s.all, r.end - r.start, ms);
            if ack_off.is_some_and(|off| r.start >= off) {
                count(&mut s.from_ack, r.end - r.start, ms);
            }
            s.ack_on_boundary |= ack_off == Some(r.start);
        })?;
        s.ack_on_boundary |= ack_off == Some(end.valid_len);
        if end.stop != Stop::End {
            let cut = end.file_len - end.valid_len;
            tracing::warn!(
                file = %path.display(), valid_len = end.valid_len, cut_bytes = cut, reason = ?end.stop,
                "spool segment has a bad tail (torn write or corruption); cutting it"
            );
            let f = OpenOptions::new().write(true).open(&path)?;
            f.set_len(end.valid_len)?;
            f.sync_all()?;
            cut_bytes += cut;
        }
        s.len = end.valid_len;
        summaries.insert(id, s);
    }
    let next_id = ids
        .last()
        .copied()
        .max(saved.map(|a| a.seg))
        .unwrap_or(0)
        .saturating_add(1);
    // Empty segments carry nothing; dropping them keeps restarts from piling them up.
    for (id, _) in summaries.iter().filter(|(_, s)| s.len == 0) {
        fs::remove_file(segment_path(dir, *id))?;
    }
    summaries.retain(|_, s| s.len > 0);
    let ack = match saved {
        Some(a) => match summaries.get(&a.seg) {
            Some(s) if s.ack_on_boundary => a,
            // Not a boundary we wrote: start the segment over (at-least-once).
            Some(_) => Position { seg: a.seg, off: 0 },
            None => Position {
                seg: summaries.range(a.seg..).next().map_or(next_id, |(k, _)| *k),
                off: 0,
            },
        },
        None => Position {
            seg: summaries.keys().next().copied().unwrap_or(next_id),
            off: 0,
        },
    };
    let mut backlog = Backlog::default();
    let mut segments = BTreeMap::new();
    for (id, s) in summaries {
        if id < ack.seg {
            fs::remove_file(segment_path(dir, id))?;
            continue;
        }
        let part = if id == ack.seg && ack.off > 0 {
            s.from_ack
        } else {
            s.all
        };
        if backlog.records == 0 {
            backlog.oldest_ms = part.oldest_ms;
        }
        backlog.records += part.records;
        backlog.bytes += part.bytes;
        segments.insert(id, s.len);
    }
    Ok(Recovered {
        segments,
        ack,
        backlog,
        next_id,
        cut_bytes,
    })
}

/// Handle to one queue's durable spool.
#[derive(Debug)]
pub(crate) struct Spool {
    /// State shared with the writer thread and the reader.
    shared: Arc<SpoolShared>,
    /// The writer thread's inbox.
    tx: mpsc::UnboundedSender<WriterMsg>,
    /// Joined on stop.
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    /// Recovered read position, where the forwarder starts.
    start: Position,
}

impl Spool {
    /// Recovers `dir` and starts its writer thread. Blocking.
    pub(crate) fn open(
        dir: &Path,
        queue: Queue,
        segment_bytes: u64,
        metrics: Arc<QueueMetrics>,
    ) -> io::Result<(Spool, Recovered)> {
        fs::create_dir_all(dir)?;
        let rec = recover(dir)?;
        let file = create_segment(dir, rec.next_id)?;
        let mut segments: BTreeMap<u64, Option<u64>> =
            rec.segments.iter().map(|(k, v)| (*k, Some(*v))).collect();
        segments.insert(rec.next_id, None);
        {
            let mut b = metrics.backlog.lock().unwrap_or_else(|p| p.into_inner());
            *b = rec.backlog;
        }
        let shared = Arc::new(SpoolShared {
            dir: dir.to_path_buf(),
            segments: Mutex::new(segments),
            durable: watch::Sender::new(Position {
                seg: rec.next_id,
                off: 0,
            }),
            metrics,
            recent: Recent::default(),
        });
        let writer = Writer {
            dir: dir.to_path_buf(),
            file,
            active: rec.next_id,
            len: 0,
            segment_bytes,
            shared: Arc::clone(&shared),
            damage: Damage::None,
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let thread = std::thread::Builder::new()
            .name(format!("spool-{}", queue.name()))
            .spawn(move || writer.run(rx))?;
        let start = rec.ack;
        Ok((
            Spool {
                shared,
                tx,
                thread: Mutex::new(Some(thread)),
                start,
            },
            rec,
        ))
    }

    /// Appends one frame; resolves once it is on disk and fsynced.
    pub(crate) async fn append(
        &self,
        frame: Vec<u8>,
        accepted_ms: u64,
        reservation: Reservation,
    ) -> Result<(), HandoffError> {
        let (done, rx) = oneshot::channel();
        self.tx
            .send(WriterMsg::Append {
                frame,
                accepted_ms,
                reservation,
                done,
            })
            .map_err(|_| HandoffError::Closed)?;
        match rx.await {
            Ok(Ok(())) => Ok(()),
            Ok(Err(e)) => Err(HandoffError::Io(e)),
            Err(_) => Err(HandoffError::Closed),
        }
    }

    /// Lets every append queued so far finish, then stops the writer thread.
    pub(crate) async fn stop(&self) {
        let (ack, rx) = oneshot::channel();
        if self.tx.send(WriterMsg::Stop(ack)).is_ok() {
            let _ = rx.await;
        }
        let thread = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(t) = thread {
            let _ = tokio::task::spawn_blocking(move || t.join()).await;
        }
    }

    /// A reader positioned at the recovered read position.
    pub(crate) fn reader(&self) -> DiskReader {
        DiskReader::new(Arc::clone(&self.shared), self.start)
    }

    pub(crate) fn shared(&self) -> &Arc<SpoolShared> {
        &self.shared
    }
}

#[cfg(test)]
mod shrink_tests {
    use super::*;

    #[test]
    fn shrinking_leaves_at_most_one_step_and_tolerates_missing_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("1.seg");
        fs::write(&path, vec![7u8; (SHRINK_STEP * 5 + 12345) as usize]).unwrap();
        shrink_gradually(&path);
        let left = fs::metadata(&path).unwrap().len();
        assert!(left > 0 && left <= SHRINK_STEP, "{left}");
        shrink_gradually(&dir.path().join("missing.seg"));
    }
}
