//! The most recent durable groups of one queue, kept in memory as the writer wrote them, so
//! that a forwarder keeping up with intake takes its records from here instead of reading
//! back from the segment file what was written a moment ago.
//!
//! Reading back cost, per group: a hop to the blocking pool and back, a zero-filled buffer,
//! a `pread` copying the bytes out of the page cache, and checksums over all of them; on one
//! core at 64 RUM connections that was several per cent of the edge's CPU. The file stays the
//! record of truth: a forwarder that has fallen further behind than this window (an upstream
//! outage, a restart) reads from disk as before.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Instant;

use bytes::Bytes;

use super::record::{check_frame, Frame};
use super::segment::{Position, RawRecord};

/// Bytes of recent groups kept per queue. Under load a forwarder lags the writer by a few
/// milliseconds (its linger plus a read), which at 150 MB/s is well under 1 MiB.
pub(crate) const RECENT_MAX_BYTES: usize = 8 << 20;

/// Durable groups, oldest first, each with the position of its first byte and the time it
/// became durable.
#[derive(Debug, Default)]
pub(crate) struct Recent {
    inner: Mutex<Window>,
}

#[derive(Debug, Default)]
struct Window {
    groups: VecDeque<Group>,
    bytes: usize,
}

#[derive(Debug)]
struct Group {
    start: Position,
    bytes: Bytes,
    durable_at: Instant,
}

impl Recent {
    /// Remembers a group that has just become durable at `start`, forgetting the oldest
    /// beyond [`RECENT_MAX_BYTES`] (the newest is always kept).
    pub(crate) fn push(&self, start: Position, group: Bytes) {
        let mut w = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        w.bytes += group.len();
        w.groups.push_back(Group {
            start,
            bytes: group,
            durable_at: Instant::now(),
        });
        while w.bytes > RECENT_MAX_BYTES && w.groups.len() > 1 {
            if let Some(old) = w.groups.pop_front() {
                w.bytes -= old.bytes.len();
            }
        }
    }

    /// When the group starting at `from` became durable; `None` if it is not kept (then it
    /// is old news and nothing should wait for it).
    pub(crate) fn durable_at(&self, from: Position) -> Option<Instant> {
        let w = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        w.groups
            .iter()
            .rev()
            .find(|g| g.start == from)
            .map(|g| g.durable_at)
    }

    /// The groups that follow each other from `from` on, in its segment, ending at or before
    /// `limit`, about `budget` bytes (at least one group); empty when `from` is not the start
    /// of a group still kept.
    pub(crate) fn take(&self, from: Position, limit: u64, budget: usize) -> Vec<(u64, Bytes)> {
        let w = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        let Some(first) = w.groups.iter().rposition(|g| g.start == from) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        let (mut next, mut taken) = (from.off, 0usize);
        for g in w.groups.iter().skip(first) {
            let end = next + g.bytes.len() as u64;
            if g.start.seg != from.seg || g.start.off != next || end > limit || taken >= budget {
                break;
            }
            out.push((next, g.bytes.clone()));
            taken += g.bytes.len();
            next = end;
        }
        out
    }
}

/// Appends the records of a group that starts at `base` to `out`; `None` if it is not a
/// sequence of whole, valid frames (it always is: the writer framed it), so the caller drops
/// what was appended and reads the file.
pub(crate) fn records_of(
    base: Position,
    group: &Bytes,
    out: &mut Vec<(Position, RawRecord)>,
) -> Option<()> {
    let mut cur = 0usize;
    while cur < group.len() {
        let Frame::Valid { payload, len } = check_frame(group.get(cur..)?) else {
            return None;
        };
        let start = base.off + cur as u64;
        out.push((
            Position {
                seg: base.seg,
                off: start,
            },
            RawRecord {
                start,
                end: start + len as u64,
                payload: group.slice(cur + payload.start..cur + payload.end),
            },
        ));
        cur += len;
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::record::frame_raw;

    fn group(payloads: &[&[u8]]) -> Bytes {
        payloads
            .iter()
            .flat_map(|p| frame_raw(p))
            .collect::<Vec<u8>>()
            .into()
    }

    #[test]
    fn contiguous_groups_are_taken_up_to_the_limit_and_the_window_is_bounded() {
        let recent = Recent::default();
        let a = group(&[b"one", b"two"]);
        let b = group(&[b"six"]);
        let (a_len, b_len) = (a.len() as u64, b.len() as u64);
        recent.push(Position { seg: 1, off: 0 }, a);
        recent.push(Position { seg: 1, off: a_len }, b);
        recent.push(Position { seg: 2, off: 0 }, group(&[b"next segment"]));

        let all = recent.take(Position { seg: 1, off: 0 }, a_len + b_len, 1 << 20);
        assert_eq!(
            all.iter().map(|(at, _)| *at).collect::<Vec<_>>(),
            [0, a_len]
        );
        let mut records = Vec::new();
        for (at, g) in &all {
            records_of(Position { seg: 1, off: *at }, g, &mut records).expect("whole frames");
        }
        let payloads: Vec<&[u8]> = records.iter().map(|(_, r)| r.payload.as_ref()).collect();
        assert_eq!(payloads, [&b"one"[..], b"two", b"six"]);
        assert_eq!(records.last().map(|(_, r)| r.end), Some(a_len + b_len));

        // Not past the durable limit, not past the budget, not across segments.
        assert_eq!(
            recent
                .take(Position { seg: 1, off: 0 }, a_len, 1 << 20)
                .len(),
            1
        );
        assert_eq!(
            recent.take(Position { seg: 1, off: 0 }, u64::MAX, 1).len(),
            1
        );
        assert_eq!(
            recent
                .take(Position { seg: 1, off: a_len }, u64::MAX, 1 << 20)
                .len(),
            1
        );
        // Not the start of a kept group: the caller reads the file.
        assert!(recent
            .take(Position { seg: 1, off: 3 }, u64::MAX, 1 << 20)
            .is_empty());

        let big = Bytes::from(vec![0u8; RECENT_MAX_BYTES]);
        recent.push(Position { seg: 3, off: 0 }, big);
        assert!(recent
            .take(Position { seg: 1, off: 0 }, u64::MAX, 1 << 20)
            .is_empty());
        assert_eq!(
            recent.take(Position { seg: 3, off: 0 }, u64::MAX, 1).len(),
            1
        );
    }

    #[test]
    fn a_group_that_is_not_whole_frames_is_left_to_the_file() {
        let mut bytes = group(&[b"one"]).to_vec();
        bytes.push(0);
        assert!(records_of(Position::default(), &Bytes::from(bytes), &mut Vec::new()).is_none());
        let mut flipped = group(&[b"one"]).to_vec();
        if let Some(last) = flipped.last_mut() {
            *last ^= 1;
        }
        assert!(records_of(Position::default(), &Bytes::from(flipped), &mut Vec::new()).is_none());
    }
}
