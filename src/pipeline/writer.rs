//! The group-commit writer of one queue: a dedicated thread that takes every append waiting
//! in its channel, writes them with one `write`, makes them durable with one `fdatasync`, and
//! only then completes each caller's oneshot. While one fsync runs the next group piles up,
//! so the number of fsyncs tracks the disk's speed, not the request rate.

use std::fs::{File, OpenOptions};
use std::io;
use std::os::unix::fs::FileExt;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use super::segment::{segment_path, sync_dir, Position};
use super::spool::SpoolShared;
use super::stats::Reservation;

/// Stop collecting a group at this many bytes, so one fsync does not wait on an unbounded write.
const GROUP_MAX_BYTES: usize = 8 << 20;

/// A message to the writer thread.
pub(crate) enum WriterMsg {
    /// Append one framed record; answer once it is durable (or failed).
    Append {
        /// The complete frame.
        frame: Vec<u8>,
        /// Acceptance time, for the backlog's oldest-record gauge.
        accepted_ms: u64,
        /// Its bytes in the budget: kept once durable, given back if the append fails.
        reservation: Reservation,
        /// Completed after the fsync that covers this record.
        done: oneshot::Sender<io::Result<()>>,
    },
    /// Finish everything queued before this message, then exit.
    Stop(oneshot::Sender<()>),
}

/// An append taken from the channel, waiting for its group's fsync.
struct Pending {
    /// The complete frame.
    frame: Vec<u8>,
    /// Acceptance time, for the backlog gauge.
    accepted_ms: u64,
    /// Kept when the group is durable, released otherwise.
    reservation: Reservation,
    /// The caller waiting for the fsync.
    done: oneshot::Sender<io::Result<()>>,
}

/// State owned by the writer thread.
pub(crate) struct Writer {
    /// The queue directory.
    pub dir: PathBuf,
    /// The active segment, opened for append.
    pub file: File,
    /// Its id.
    pub active: u64,
    /// Its durable length (bytes past it are garbage from a failed write).
    pub len: u64,
    /// Roll to a new segment once the active one reaches this size.
    pub segment_bytes: u64,
    /// Segment list, durable end and backlog shared with readers.
    pub shared: Arc<SpoolShared>,
    /// What the last failed group left to repair before the next one is written.
    pub damage: Damage,
}

/// What a failed group left behind. Repairs stay on the active segment wherever that is safe:
/// starting a new segment per failure would leave one empty file per refused request on a
/// full disk (41 files after 40 refusals), and a new file is the last thing a full disk
/// needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Damage {
    /// The last group is durable.
    None,
    /// A write failed (typically `ENOSPC`): bytes past the durable length may be on the file.
    /// Cut them and retry in the same segment.
    Write,
    /// An fsync failed. The kernel may have dropped the pages it could not write and will not
    /// report that again, so this file is not trusted with more data once it holds durable
    /// records: seal it at its durable length and go on in a new segment. An empty segment has
    /// nothing to protect and is cut and reused instead, so failures alone never create more
    /// than one new file.
    Sync,
}

/// Creates segment `id` and makes its directory entry durable. Only ever called with an id
/// past every segment in use, so a leftover file of that name (from a roll that failed half
/// way) holds nothing anyone relies on and is emptied.
pub(crate) fn create_segment(dir: &std::path::Path, id: u64) -> io::Result<File> {
    let file = OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .open(segment_path(dir, id))?;
    sync_dir(dir)?;
    Ok(file)
}

fn copy_err(e: &io::Error) -> io::Error {
    io::Error::new(e.kind(), e.to_string())
}

/// What the writer does before the next group.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Prepare {
    Nothing,
    /// Cut the active segment back to its durable length.
    Cut,
    /// Seal the active segment and start the next.
    Roll,
}

/// Only a full segment or a failed fsync behind durable records starts a new segment: after
/// a roll the active segment is empty, so a run of failures creates at most one file.
fn prepare(damage: Damage, len: u64, segment_bytes: u64) -> Prepare {
    match damage {
        Damage::Sync if len > 0 => Prepare::Roll,
        Damage::Write | Damage::Sync => Prepare::Cut,
        Damage::None if len >= segment_bytes && len > 0 => Prepare::Roll,
        Damage::None => Prepare::Nothing,
    }
}

impl Writer {
    /// Runs until a `Stop` message or until every sender is gone.
    pub(crate) fn run(mut self, mut rx: mpsc::UnboundedReceiver<WriterMsg>) {
        let mut buf = Vec::new();
        let mut group = Vec::new();
        while let Some(first) = rx.blocking_recv() {
            let mut stop = None;
            let mut bytes = 0;
            let mut next = Some(first);
            while let Some(msg) = next.take() {
                match msg {
                    WriterMsg::Append {
                        frame,
                        accepted_ms,
                        reservation,
                        done,
                    } => {
                        bytes += frame.len();
                        group.push(Pending {
                            frame,
                            accepted_ms,
                            reservation,
                            done,
                        });
                    }
                    WriterMsg::Stop(ack) => {
                        stop = Some(ack);
                        break;
                    }
                }
                if bytes < GROUP_MAX_BYTES {
                    next = rx.try_recv().ok();
                }
            }
            if !group.is_empty() {
                self.commit(&mut group, &mut buf);
            }
            if let Some(ack) = stop {
                let _ = ack.send(());
                return;
            }
        }
    }

    fn commit(&mut self, group: &mut Vec<Pending>, buf: &mut Vec<u8>) {
        let result = self.write_group(group, buf);
        if let Err((damage, e)) = &result {
            tracing::error!(dir = %self.dir.display(), error = %e, "spool append failed");
            // A failed repair leaves the earlier damage in place, to be repaired next time.
            if *damage != Damage::None {
                self.damage = *damage;
            }
        }
        let result = result.map_err(|(_, e)| e);
        for p in group.drain(..) {
            if result.is_ok() {
                p.reservation.keep();
            }
            let _ = p.done.send(result.as_ref().map(|_| ()).map_err(copy_err));
        }
    }

    /// Writes and syncs one group. On failure, says what it left to repair (`Damage::None`:
    /// the repair of an earlier failure failed, nothing new to add).
    fn write_group(
        &mut self,
        group: &[Pending],
        buf: &mut Vec<u8>,
    ) -> Result<(), (Damage, io::Error)> {
        // The commit a group waits for: a due roll (a new file and a directory fsync) too.
        let started = std::time::Instant::now();
        let no_new_damage = |e| (Damage::None, e);
        match prepare(self.damage, self.len, self.segment_bytes) {
            Prepare::Roll => self.roll().map_err(no_new_damage)?,
            Prepare::Cut => self.cut().map_err(no_new_damage)?,
            Prepare::Nothing => {}
        }
        self.damage = Damage::None;
        buf.clear();
        // The buffer goes to `recent` once durable, so each group starts a new one.
        buf.reserve(group.iter().map(|p| p.frame.len()).sum());
        for p in group {
            buf.extend_from_slice(&p.frame);
        }
        // At the durable length, not the file cursor: a failed write may have moved the cursor.
        self.file
            .write_all_at(buf, self.len)
            .map_err(|e| (Damage::Write, e))?;
        self.file.sync_data().map_err(|e| (Damage::Sync, e))?;
        let metrics = &self.shared.metrics;
        metrics.commit_duration.observe(started.elapsed());
        metrics
            .fsyncs
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let start = Position {
            seg: self.active,
            off: self.len,
        };
        self.len += buf.len() as u64;
        let first_ms = group.first().map_or(0, |p| p.accepted_ms);
        self.shared
            .metrics
            .add(group.len() as u64, buf.len() as u64, first_ms);
        // Before the durable end moves, so the reader it wakes finds the group in memory.
        self.shared
            .recent
            .push(start, Bytes::from(std::mem::take(buf)));
        self.shared.durable.send_replace(Position {
            seg: self.active,
            off: self.len,
        });
        Ok(())
    }

    /// Drops whatever a failed write left past the durable length, so readers and recovery
    /// see a clean end and the retry writes where it belongs.
    fn cut(&mut self) -> io::Result<()> {
        self.file.set_len(self.len)?;
        self.file.sync_all()
    }

    /// Seals the active segment at its durable length and starts the next one.
    fn roll(&mut self) -> io::Result<()> {
        if self.damage != Damage::None {
            self.cut()?;
        }
        let next = self.active + 1;
        let file = create_segment(&self.dir, next)?;
        self.shared.sealed(self.active, self.len, next);
        self.file = file;
        self.active = next;
        self.len = 0;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Replays failures of every kind, none of them followed by a durable group, the way a
    /// full or failing disk does, and counts the segment files the writer would create.
    #[test]
    fn a_run_of_failures_creates_at_most_one_segment() {
        for start_len in [0, 1, 4096, 64 << 20] {
            for pattern in 0u32..256 {
                let (mut len, mut damage, mut created) = (start_len, Damage::None, 0);
                for i in 0..8 {
                    if prepare(damage, len, 64 << 20) == Prepare::Roll {
                        created += 1;
                        len = 0;
                    }
                    damage = if pattern >> i & 1 == 1 {
                        Damage::Sync
                    } else {
                        Damage::Write
                    };
                }
                assert!(
                    created <= 1,
                    "len {start_len}, pattern {pattern:08b}: {created} files"
                );
            }
        }
    }

    #[test]
    fn a_write_failure_is_repaired_in_place_and_a_sync_failure_behind_data_rolls() {
        assert_eq!(prepare(Damage::Write, 4096, 1 << 20), Prepare::Cut);
        assert_eq!(prepare(Damage::Sync, 4096, 1 << 20), Prepare::Roll);
        assert_eq!(prepare(Damage::Sync, 0, 1 << 20), Prepare::Cut);
        assert_eq!(prepare(Damage::None, 1 << 20, 1 << 20), Prepare::Roll);
        assert_eq!(prepare(Damage::None, 10, 1 << 20), Prepare::Nothing);
    }
}
