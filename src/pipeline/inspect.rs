//! Read-only views of a spool directory for the CLI (`ingest-edge spool stats|dump`). Safe to
//! run next to a live edge: nothing is written or cut (a tail being written at that moment
//! may show up as `bad_tail_bytes`).

use std::fmt;
use std::io::Write;
use std::path::Path;

use serde::Serialize;

use super::dead_letter::dead_dir;
use super::record::decode_payload;
use super::segment::{list_segments, read_ack, scan_segment, segment_path, Position, RawRecord};
use super::{queue_dir, PipelineError, Queue};

/// What one queue's spool holds.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct QueueStats {
    /// Queue name.
    pub queue: &'static str,
    /// Segment files present.
    pub segments: usize,
    /// Their total size.
    pub file_bytes: u64,
    /// Records not yet delivered (from the persisted read position on).
    pub pending_records: u64,
    /// Their bytes.
    pub pending_bytes: u64,
    /// Acceptance time (unix ms) of the oldest pending record.
    pub oldest_pending_ms: Option<u64>,
    /// Bytes past the last valid record of a segment (torn or corrupt; cut at next start).
    pub bad_tail_bytes: u64,
    /// Records parked in the dead letter.
    pub dead_letter_records: u64,
    /// Their bytes.
    pub dead_letter_bytes: u64,
}

/// The whole spool.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct SpoolStats {
    /// One entry per queue, in [`Queue::ALL`] order.
    pub queues: Vec<QueueStats>,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> PipelineError + '_ {
    move |source| PipelineError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Visits every valid record of the segments in `dir` from `from` on; returns (segment count,
/// file bytes, bad tail bytes). A missing directory is an empty spool.
fn walk(
    dir: &Path,
    from: Option<Position>,
    mut visit: impl FnMut(Position, &RawRecord) -> bool,
) -> Result<(usize, u64, u64), PipelineError> {
    if !dir.exists() {
        return Ok((0, 0, 0));
    }
    let ids = list_segments(dir).map_err(io_err(dir))?;
    let from = from.unwrap_or(Position {
        seg: ids.first().copied().unwrap_or(0),
        off: 0,
    });
    let (mut bytes, mut bad) = (0, 0);
    let mut more = true;
    for &id in &ids {
        let path = segment_path(dir, id);
        let end = scan_segment(&path, |r| {
            let pos = Position {
                seg: id,
                off: r.start,
            };
            if more && pos >= from {
                more = visit(pos, r);
            }
        })
        .map_err(io_err(&path))?;
        bytes += end.file_len;
        bad += end.file_len - end.valid_len;
        if !more {
            break;
        }
    }
    Ok((ids.len(), bytes, bad))
}

/// Counts what the spool under `data_dir` holds, per queue.
pub fn spool_stats(data_dir: &Path) -> Result<SpoolStats, PipelineError> {
    let mut queues = Vec::new();
    for queue in Queue::ALL {
        let dir = queue_dir(data_dir, queue);
        let mut s = QueueStats {
            queue: queue.name(),
            ..QueueStats::default()
        };
        let (segments, file_bytes, bad) = walk(&dir, read_ack(&dir), |_, r| {
            if s.pending_records == 0 {
                s.oldest_pending_ms = super::record::accepted_ms_of(&r.payload);
            }
            s.pending_records += 1;
            s.pending_bytes += r.end - r.start;
            true
        })?;
        (s.segments, s.file_bytes, s.bad_tail_bytes) = (segments, file_bytes, bad);
        let (mut n, mut b) = (0, 0);
        walk(&dead_dir(&dir), None, |_, r| {
            n += 1;
            b += r.end - r.start;
            true
        })?;
        (s.dead_letter_records, s.dead_letter_bytes) = (n, b);
        queues.push(s);
    }
    Ok(SpoolStats { queues })
}

impl fmt::Display for SpoolStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<13} {:>8} {:>14} {:>10} {:>14} {:>12} {:>10} {:>8}",
            "queue",
            "segments",
            "file_bytes",
            "pending",
            "pending_bytes",
            "oldest_age",
            "bad_tail",
            "dead"
        )?;
        let now = super::stats::now_ms();
        for q in &self.queues {
            let age = q.oldest_pending_ms.map_or_else(
                || "-".to_string(),
                |ms| {
                    humantime::format_duration(std::time::Duration::from_secs(
                        now.saturating_sub(ms) / 1000,
                    ))
                    .to_string()
                },
            );
            writeln!(
                f,
                "{:<13} {:>8} {:>14} {:>10} {:>14} {:>12} {:>10} {:>8}",
                q.queue,
                q.segments,
                q.file_bytes,
                q.pending_records,
                q.pending_bytes,
                age,
                q.bad_tail_bytes,
                q.dead_letter_records
            )?;
        }
        Ok(())
    }
}

fn dump_dir(
    dir: &Path,
    from: Option<Position>,
    limit: usize,
    out: &mut impl Write,
) -> Result<usize, PipelineError> {
    let mut written = 0;
    let mut failure = None;
    walk(dir, from, |pos, r| {
        if written >= limit {
            return false;
        }
        let line = match decode_payload(r.payload.clone()) {
            Ok(b) => serde_json::json!({
                "segment": pos.seg,
                "offset": pos.off,
                "accepted_at": humantime::format_rfc3339_millis(
                    std::time::UNIX_EPOCH + std::time::Duration::from_millis(b.accepted_ms)
                ).to_string(),
                "token_id": &*b.token_id,
                "tenant": b.tenant.as_deref(),
                "content_type": &*b.content_type,
                "content_encoding": b.content_encoding.as_deref(),
                "items": b.items,
                "body_bytes": b.body.len(),
            }),
            Err(e) => {
                serde_json::json!({"segment": pos.seg, "offset": pos.off, "error": e.to_string()})
            }
        };
        if let Err(e) = writeln!(out, "{line}") {
            failure = Some(e);
            return false;
        }
        written += 1;
        true
    })?;
    match failure {
        Some(e) => Err(io_err(dir)(e)),
        None => Ok(written),
    }
}

/// Writes up to `limit` pending records of `queue`, oldest first, one JSON object per line
/// (metadata and body size; bodies are binary). Returns how many were written.
pub fn spool_dump(
    data_dir: &Path,
    queue: Queue,
    limit: usize,
    out: &mut impl Write,
) -> Result<usize, PipelineError> {
    let dir = queue_dir(data_dir, queue);
    dump_dir(&dir, read_ack(&dir), limit, out)
}

/// Like [`spool_dump`], for the records the upstream refused (the dead letter).
pub fn dead_letter_dump(
    data_dir: &Path,
    queue: Queue,
    limit: usize,
    out: &mut impl Write,
) -> Result<usize, PipelineError> {
    dump_dir(&dead_dir(&queue_dir(data_dir, queue)), None, limit, out)
}
