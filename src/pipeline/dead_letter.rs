//! The dead-letter segments of one queue (`<queue>/dead/`): records the upstream refused with a
//! non-retryable status, parked in the same frame format so `spool dump --dead-letter` can show
//! them. Bounded: the oldest dead-letter segments are deleted past the bound.

use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};

use super::segment::{list_segments, segment_path};
use super::writer::create_segment;

/// Appender for one queue's dead-letter directory.
#[derive(Debug)]
pub(crate) struct DeadLetter {
    /// `<queue dir>/dead`.
    dir: PathBuf,
    /// The segment this process appends to: id, file, length. Opened on first use, and always
    /// a fresh one so a torn tail from an earlier crash never hides later records.
    active: Option<(u64, File, u64)>,
    /// Roll at this size.
    segment_bytes: u64,
    /// Delete the oldest segments beyond this many bytes in total.
    max_bytes: u64,
}

/// The dead-letter directory of a queue directory.
pub(crate) fn dead_dir(queue_dir: &Path) -> PathBuf {
    queue_dir.join("dead")
}

impl DeadLetter {
    pub(crate) fn new(queue_dir: &Path, segment_bytes: u64, max_bytes: u64) -> DeadLetter {
        DeadLetter {
            dir: dead_dir(queue_dir),
            active: None,
            segment_bytes: segment_bytes.max(1),
            max_bytes,
        }
    }

    /// Appends one frame durably, then enforces the size bound. Blocking.
    pub(crate) fn append(&mut self, frame: &[u8]) -> io::Result<()> {
        let roll = match &self.active {
            None => true,
            Some((_, _, len)) => *len >= self.segment_bytes,
        };
        if roll {
            fs::create_dir_all(&self.dir)?;
            let last = list_segments(&self.dir)?.last().copied().unwrap_or(0);
            let next = last.max(self.active.as_ref().map_or(0, |a| a.0)) + 1;
            self.active = Some((next, create_segment(&self.dir, next)?, 0));
        }
        let Some((_, file, len)) = self.active.as_mut() else {
            return Err(io::Error::other("dead-letter segment not open"));
        };
        file.write_all(frame)?;
        file.sync_data()?;
        *len += frame.len() as u64;
        self.enforce_bound()
    }

    fn enforce_bound(&self) -> io::Result<()> {
        let ids = list_segments(&self.dir)?;
        let mut sizes = Vec::with_capacity(ids.len());
        for id in &ids {
            sizes.push(fs::metadata(segment_path(&self.dir, *id)).map_or(0, |m| m.len()));
        }
        let mut total: u64 = sizes.iter().sum();
        let active = self.active.as_ref().map(|a| a.0);
        for (id, size) in ids.iter().zip(sizes) {
            if total <= self.max_bytes {
                break;
            }
            if Some(*id) == active {
                continue;
            }
            tracing::warn!(
                segment = id,
                bytes = size,
                "dead-letter bound reached; deleting oldest segment"
            );
            fs::remove_file(segment_path(&self.dir, *id))?;
            total -= size;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rolls_and_stays_bounded() {
        let dir = tempfile::tempdir().unwrap();
        let mut dl = DeadLetter::new(dir.path(), 100, 250);
        for _ in 0..20 {
            dl.append(&[7u8; 60]).unwrap();
        }
        let dead = dead_dir(dir.path());
        let ids = list_segments(&dead).unwrap();
        let total: u64 = ids
            .iter()
            .map(|id| fs::metadata(segment_path(&dead, *id)).unwrap().len())
            .sum();
        assert!(total <= 250, "total {total}");
        assert_eq!(ids.last().copied(), Some(10));
        // A new appender (a restart) starts a fresh segment.
        let mut again = DeadLetter::new(dir.path(), 100, 250);
        again.append(&[1u8; 10]).unwrap();
        assert_eq!(list_segments(&dead).unwrap().last().copied(), Some(11));
    }
}
