//! Segment files and the ack file of one queue directory: naming, listing, reading whole
//! records back with their checksums verified, and the persisted read position.
//!
//! A queue directory holds `<id>.seg` files (20-digit decimal ids, consecutive, oldest first),
//! each a plain concatenation of [`record`](super::record) frames, and an `ack` file naming the
//! first record not yet delivered upstream.

use std::fs::{self, File};
use std::io::{self, Write};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};

use super::record::{check_frame, Frame};

/// A place in a queue: segment id and byte offset inside it (always a record boundary).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Position {
    /// Segment id (its file name).
    pub seg: u64,
    /// Byte offset of a record start (or the end of the segment).
    pub off: u64,
}

const ACK_FILE: &str = "ack";
const ACK_MAGIC: &[u8; 4] = b"ACK1";

/// The file of segment `id` in `dir`.
pub(crate) fn segment_path(dir: &Path, id: u64) -> PathBuf {
    dir.join(format!("{id:020}.seg"))
}

/// Segment ids present in `dir`, ascending. Files that are not segments are left alone.
pub(crate) fn list_segments(dir: &Path) -> io::Result<Vec<u64>> {
    let mut ids = Vec::new();
    for entry in fs::read_dir(dir)? {
        let name = entry?.file_name();
        let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".seg")) else {
            continue;
        };
        if stem.len() == 20 {
            if let Ok(id) = stem.parse::<u64>() {
                ids.push(id);
            }
        }
    }
    ids.sort_unstable();
    Ok(ids)
}

/// Makes a created, renamed or deleted file's directory entry durable.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}

/// One whole, checksum-verified record read from a segment.
#[derive(Debug)]
pub(crate) struct RawRecord {
    /// Offset of its frame.
    pub start: u64,
    /// Offset just past its frame.
    pub end: u64,
    /// The payload (shares the read buffer).
    pub payload: Bytes,
}

/// Why [`read_records`] stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stop {
    /// Reached the limit (or the end of the file) on a record boundary.
    End,
    /// Read its byte budget; call again from `next`.
    More,
    /// The data ends inside a frame (a torn write) at `next`.
    Torn,
    /// The frame at `next` fails its checksum or has an impossible length.
    Corrupt,
}

/// Records read by one [`read_records`] call.
#[derive(Debug)]
pub(crate) struct ReadOut {
    /// The records, in file order.
    pub records: Vec<RawRecord>,
    /// Offset after the last returned record.
    pub next: u64,
    /// Why reading stopped at `next`.
    pub stop: Stop,
}

/// Reads up to `limit - from` bytes at `from`; fewer if the file ends sooner.
fn read_at_most(file: &File, from: u64, want: usize) -> io::Result<Bytes> {
    let mut buf = BytesMut::zeroed(want);
    let mut got = 0;
    while got < want {
        let Some(dst) = buf.get_mut(got..) else { break };
        match file.read_at(dst, from + got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    buf.truncate(got);
    Ok(buf.freeze())
}

/// Reads whole records from `from` up to `limit` (exclusive; use the durable end of the
/// segment), about `budget` bytes at a time. A record larger than the budget is still read
/// whole. Never allocates more than the bytes actually between `from` and `limit`.
pub(crate) fn read_records(
    file: &File,
    from: u64,
    limit: u64,
    budget: usize,
) -> io::Result<ReadOut> {
    let span = usize::try_from(limit.saturating_sub(from)).unwrap_or(usize::MAX);
    let want = span.min(budget.max(64));
    let chunk = read_at_most(file, from, want)?;
    // The file may be shorter than `limit` (a reader racing a crash, or `spool stats`).
    let chunk_is_all = chunk.len() < want || chunk.len() == span;
    let mut records = Vec::new();
    let mut cur = 0usize;
    loop {
        let rest = chunk.get(cur..).unwrap_or_default();
        if rest.is_empty() && chunk_is_all {
            return Ok(done(records, from, cur, Stop::End));
        }
        match check_frame(rest) {
            Frame::Valid { payload, len } => {
                records.push(RawRecord {
                    start: from + cur as u64,
                    end: from + (cur + len) as u64,
                    payload: chunk.slice(cur + payload.start..cur + payload.end),
                });
                cur += len;
            }
            Frame::Corrupt => return Ok(done(records, from, cur, Stop::Corrupt)),
            Frame::Incomplete { .. } if chunk_is_all => {
                return Ok(done(records, from, cur, Stop::Torn))
            }
            Frame::Incomplete { .. } if cur > 0 => return Ok(done(records, from, cur, Stop::More)),
            Frame::Incomplete { need } => {
                // A single record bigger than the budget: read exactly that record.
                let at = from + cur as u64;
                let Some(need) = need.filter(|n| at + *n as u64 <= limit) else {
                    return Ok(done(records, from, cur, Stop::Torn));
                };
                let whole = read_at_most(file, at, need)?;
                return Ok(match check_frame(&whole) {
                    Frame::Valid { payload, len } => {
                        records.push(RawRecord {
                            start: at,
                            end: at + len as u64,
                            payload: whole.slice(payload),
                        });
                        done(records, at, len, Stop::More)
                    }
                    Frame::Corrupt => done(records, at, 0, Stop::Corrupt),
                    Frame::Incomplete { .. } => done(records, at, 0, Stop::Torn),
                });
            }
        }
    }
}

fn done(records: Vec<RawRecord>, base: u64, cur: usize, stop: Stop) -> ReadOut {
    ReadOut {
        records,
        next: base + cur as u64,
        stop,
    }
}

/// What a full pass over one segment found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ScanEnd {
    /// Offset after the last valid record.
    pub valid_len: u64,
    /// The file's size; bytes past `valid_len` are a torn or corrupt tail.
    pub file_len: u64,
    /// `Torn`/`Corrupt` if the tail is bad, `End` if the file is clean.
    pub stop: Stop,
}

/// Reads a segment from its start, calling `visit` for every valid record, until the end or
/// the first bad frame.
pub(crate) fn scan_segment(path: &Path, mut visit: impl FnMut(&RawRecord)) -> io::Result<ScanEnd> {
    let file = File::open(path)?;
    let file_len = file.metadata()?.len();
    let mut at = 0;
    loop {
        let out = read_records(&file, at, file_len, 4 << 20)?;
        out.records.iter().for_each(&mut visit);
        at = out.next;
        if out.stop != Stop::More {
            return Ok(ScanEnd {
                valid_len: at,
                file_len,
                stop: out.stop,
            });
        }
    }
}

/// Persists the read position. Not fsynced: losing it in a crash only means records are sent
/// again (at-least-once), and a garbled file fails its checksum and is ignored.
pub(crate) fn write_ack(dir: &Path, pos: Position) -> io::Result<()> {
    let mut buf = Vec::with_capacity(24);
    buf.extend_from_slice(ACK_MAGIC);
    buf.extend_from_slice(&pos.seg.to_le_bytes());
    buf.extend_from_slice(&pos.off.to_le_bytes());
    let crc = crc32fast::hash(&buf);
    buf.extend_from_slice(&crc.to_le_bytes());
    let tmp = dir.join("ack.tmp");
    File::create(&tmp)?.write_all(&buf)?;
    fs::rename(&tmp, dir.join(ACK_FILE))
}

/// Reads the persisted read position; `None` when absent or not intact.
pub(crate) fn read_ack(dir: &Path) -> Option<Position> {
    let buf = fs::read(dir.join(ACK_FILE)).ok()?;
    let (body, crc) = (buf.get(..20)?, buf.get(20..24)?);
    if buf.len() != 24 || body.get(..4)? != ACK_MAGIC {
        return None;
    }
    if crc32fast::hash(body).to_le_bytes() != crc {
        return None;
    }
    let seg = u64::from_le_bytes(body.get(4..12)?.try_into().ok()?);
    let off = u64::from_le_bytes(body.get(12..20)?.try_into().ok()?);
    Some(Position { seg, off })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::record::encode_frame;
    use crate::pipeline::{Batch, Queue};
    use std::sync::Arc;

    fn frame(n: usize) -> Vec<u8> {
        let batch = Batch {
            queue: Queue::Traces,
            token_id: Arc::from("t"),
            tenant: None,
            content_type: "application/json",
            content_encoding: None,
            body: Bytes::from(vec![b'x'; n]),
            items: 1,
            json_piece: None,
        };
        encode_frame(&batch, 5).unwrap()
    }

    fn write_file(path: &Path, parts: &[&[u8]]) {
        let mut f = File::create(path).unwrap();
        for p in parts {
            f.write_all(p).unwrap();
        }
    }

    #[test]
    fn reads_in_budgeted_chunks_and_whole_big_records() {
        let dir = tempfile::tempdir().unwrap();
        let path = segment_path(dir.path(), 1);
        let (a, b, c) = (frame(10), frame(5000), frame(20));
        write_file(&path, &[&a, &b, &c]);
        let mut offsets = Vec::new();
        let file = File::open(&path).unwrap();
        let total = (a.len() + b.len() + c.len()) as u64;
        let mut at = 0;
        for _ in 0..10 {
            let out = read_records(&file, at, total, 100).unwrap();
            offsets.extend(out.records.iter().map(|r| (r.start, r.end)));
            at = out.next;
            if out.stop == Stop::End {
                break;
            }
            assert_eq!(out.stop, Stop::More);
        }
        let ab = (a.len() + b.len()) as u64;
        assert_eq!(
            offsets,
            vec![(0, a.len() as u64), (a.len() as u64, ab), (ab, total)]
        );
        assert_eq!(list_segments(dir.path()).unwrap(), vec![1]);
    }

    #[test]
    fn scan_reports_torn_and_corrupt_tails() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (frame(10), frame(30));
        let torn = segment_path(dir.path(), 1);
        write_file(&torn, &[&a, &b[..b.len() - 3]]);
        let end = scan_segment(&torn, |_| {}).unwrap();
        assert_eq!((end.valid_len, end.stop), (a.len() as u64, Stop::Torn));
        let mut bad = b.clone();
        bad[12] ^= 1;
        let corrupt = segment_path(dir.path(), 2);
        write_file(&corrupt, &[&a, &bad, &a]);
        let mut n = 0;
        let end = scan_segment(&corrupt, |_| n += 1).unwrap();
        assert_eq!(
            (n, end.valid_len, end.stop),
            (1, a.len() as u64, Stop::Corrupt)
        );
        let header_only = segment_path(dir.path(), 3);
        write_file(&header_only, &[&a, &b[..5]]);
        let end = scan_segment(&header_only, |_| {}).unwrap();
        assert_eq!((end.valid_len, end.stop), (a.len() as u64, Stop::Torn));
    }

    #[test]
    fn limit_hides_bytes_past_the_durable_end() {
        let dir = tempfile::tempdir().unwrap();
        let path = segment_path(dir.path(), 1);
        let (a, b) = (frame(10), frame(10));
        write_file(&path, &[&a, &b]);
        let out = read_records(&File::open(&path).unwrap(), 0, a.len() as u64, 1 << 20).unwrap();
        assert_eq!((out.records.len(), out.stop), (1, Stop::End));
    }

    #[test]
    fn ack_round_trip_and_garbage() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(read_ack(dir.path()), None);
        let pos = Position { seg: 7, off: 1234 };
        write_ack(dir.path(), pos).unwrap();
        assert_eq!(read_ack(dir.path()), Some(pos));
        let mut raw = fs::read(dir.path().join(ACK_FILE)).unwrap();
        raw[6] ^= 1;
        fs::write(dir.path().join(ACK_FILE), &raw).unwrap();
        assert_eq!(read_ack(dir.path()), None);
        fs::write(dir.path().join(ACK_FILE), b"").unwrap();
        assert_eq!(read_ack(dir.path()), None);
    }
}
