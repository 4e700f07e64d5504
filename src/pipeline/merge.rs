//! Merging consecutive records into one upstream request, the way an agent batches, without
//! decoding or re-encoding anything:
//!
//! - remote_write 1.0: a snappy block is a varint of its uncompressed length followed by
//!   literal and copy elements, and a copy reaches back only into the block's own output. So
//!   the elements of several blocks behind one varint of the summed length decode to the
//!   concatenated `WriteRequest`s, and concatenated protobuf messages are one message whose
//!   repeated fields (series, metadata) are appended.
//! - OTLP protobuf: concatenated `Export*ServiceRequest`s are one request, likewise.
//! - OTLP JSON: the `resourceSpans` / `resourceLogs` arrays are spliced into one. A body with
//!   any other top-level shape goes alone.
//! - remote_write 2.0 is never merged: each request's label references index its own symbols.
//!
//! Records merge only with neighbours bound for the same URL with the same headers (content
//! type, encoding, tenant), so the upstream sees exactly what each client sent, in order.

use std::ops::Range;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::record::Spooled;
use super::Queue;

/// Most records in one merged request (a bound on the work redone if it must be split).
pub(crate) const MAX_PARTS: usize = 512;

/// How bodies of one kind join.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    /// Snappy-framed remote-write 1.0 protobuf.
    Snappy,
    /// Protobuf bodies, concatenated as they are.
    Concat,
    /// OTLP JSON, the named top-level array spliced.
    Json(&'static str),
}

fn kind(b: &Spooled) -> Option<Kind> {
    match b.queue {
        Queue::RemoteWrite => (b.content_encoding.as_deref() == Some("snappy")
            && !b.content_type.contains("io.prometheus.write.v2"))
        .then_some(Kind::Snappy),
        Queue::Traces | Queue::Logs => match (&*b.content_type, &b.content_encoding) {
            ("application/x-protobuf", None) => Some(Kind::Concat),
            ("application/json", None) => Some(Kind::Json(if b.queue == Queue::Traces {
                "resourceSpans"
            } else {
                "resourceLogs"
            })),
            _ => None,
        },
    }
}

/// Records for one delivery, and how their bodies join.
pub(crate) struct Group {
    /// The records, in spool order.
    parts: Vec<Spooled>,
    /// How they join; `None` when the first cannot be merged with anything.
    kind: Option<Kind>,
    /// The slice of each part's body that goes into the merged body.
    pieces: Vec<Range<usize>>,
    /// Uncompressed bytes of the merged body so far (what upstream size limits count).
    size: u64,
    /// Largest merged size allowed; 0 turns merging off.
    limit: u64,
}

impl Group {
    /// A delivery that starts with `first`.
    pub(crate) fn new(first: Spooled, limit: u64) -> Group {
        let mut kind = if limit == 0 { None } else { kind(&first) };
        let mut pieces = Vec::new();
        let mut size = 0;
        match kind.and_then(|k| piece(k, &first)) {
            Some((range, len)) => {
                pieces.push(range);
                size = len;
            }
            None => kind = None,
        }
        Group {
            parts: vec![first],
            kind,
            pieces,
            size,
            limit,
        }
    }

    /// Adds a copy of `next` when it joins this delivery within the size limit; says whether
    /// it did. A record that does not join is left to the caller, uncopied.
    pub(crate) fn push(&mut self, next: &Spooled) -> bool {
        let Some(k) = self.kind else {
            return false;
        };
        let first = &self.parts[0];
        if self.parts.len() >= MAX_PARTS
            || kind(next) != Some(k)
            || next.content_type != first.content_type
            || next.tenant != first.tenant
        {
            return false;
        }
        match piece(k, next) {
            Some((range, len)) if self.size + len <= self.limit => {
                self.size += len;
                self.pieces.push(range);
                self.parts.push(next.clone());
                true
            }
            _ => false,
        }
    }

    /// Records in this delivery.
    pub(crate) fn len(&self) -> usize {
        self.parts.len()
    }

    /// The records, and the merged record to send when there is more than one.
    pub(crate) fn finish(self) -> (Vec<Spooled>, Option<Spooled>) {
        let kind = match self.kind {
            Some(k) if self.parts.len() > 1 => k,
            _ => return (self.parts, None),
        };
        let bodies = self
            .parts
            .iter()
            .zip(&self.pieces)
            .map(|(p, r)| &p.body[r.clone()]);
        let pieces_len: usize = self.pieces.iter().map(|r| r.len()).sum();
        let mut body = Vec::with_capacity(pieces_len + self.parts.len() + 32);
        match kind {
            Kind::Snappy => {
                put_varint(&mut body, self.size);
                bodies.for_each(|b| body.extend_from_slice(b));
            }
            Kind::Concat => bodies.for_each(|b| body.extend_from_slice(b)),
            Kind::Json(key) => {
                body.extend_from_slice(b"{\"");
                body.extend_from_slice(key.as_bytes());
                body.extend_from_slice(b"\":[");
                let mut first = true;
                for b in bodies.filter(|b| !b.is_empty()) {
                    if !first {
                        body.push(b',');
                    }
                    first = false;
                    body.extend_from_slice(b);
                }
                body.extend_from_slice(b"]}");
            }
        }
        let head = &self.parts[0];
        let merged = Spooled {
            queue: head.queue,
            accepted_ms: head.accepted_ms,
            token_id: head.token_id.clone(),
            tenant: head.tenant.clone(),
            content_type: head.content_type.clone(),
            content_encoding: head.content_encoding.clone(),
            items: self.parts.iter().map(|p| p.items).sum(),
            body: Bytes::from(body),
            json_piece: None,
        };
        (self.parts, Some(merged))
    }
}

/// The slice of the body that goes into a merged body, and its uncompressed size; `None` when
/// the body does not have the shape merging relies on.
fn piece(kind: Kind, record: &Spooled) -> Option<(Range<usize>, u64)> {
    let body = &record.body[..];
    match kind {
        Kind::Snappy => {
            let (len, header) = read_varint(body)?;
            // The format caps a block at 2^32 - 1 bytes.
            (len <= u64::from(u32::MAX)).then_some((header..body.len(), len))
        }
        Kind::Concat => Some((0..body.len(), body.len() as u64)),
        // Found at acceptance for records spooled by this build: no second parse.
        Kind::Json(_) if record.json_piece.is_some() => {
            Some((record.json_piece.clone()?, body.len() as u64))
        }
        Kind::Json(key) => {
            let inner = json_array_inner(body, key)?;
            Some((inner, body.len() as u64))
        }
    }
}

/// The top-level object of an OTLP JSON export, borrowing its one array unparsed.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Export<'a> {
    #[serde(borrow, rename = "resourceSpans", default)]
    spans: Option<&'a RawValue>,
    #[serde(borrow, rename = "resourceLogs", default)]
    logs: Option<&'a RawValue>,
}

/// The byte range of the elements of the `key` array of a JSON body that is exactly
/// `{"<key>": [...]}` (any whitespace); empty when the array is.
fn json_array_inner(body: &[u8], key: &str) -> Option<Range<usize>> {
    let export: Export = serde_json::from_slice(body).ok()?;
    let raw = match (key, export.spans, export.logs) {
        ("resourceSpans", Some(raw), None) | ("resourceLogs", None, Some(raw)) => raw.get(),
        _ => return None,
    };
    // `raw` borrows from `body`; its offset there is where the array starts.
    let start = (raw.as_ptr() as usize).checked_sub(body.as_ptr() as usize)?;
    let text = raw.as_bytes();
    let (b'[', b']') = (*text.first()?, *text.last()?) else {
        return None;
    };
    let inner = &text[1..text.len() - 1];
    let lead = inner.iter().take_while(|c| c.is_ascii_whitespace()).count();
    let trail = inner
        .iter()
        .rev()
        .take_while(|c| c.is_ascii_whitespace())
        .count();
    if lead == inner.len() {
        return Some(start..start);
    }
    Some(start + 1 + lead..start + text.len() - 1 - trail)
}

/// A little-endian base-128 varint at the start of `buf`: its value and its length.
fn read_varint(buf: &[u8]) -> Option<(u64, usize)> {
    let mut value = 0u64;
    for (i, &b) in buf.iter().take(10).enumerate() {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b < 0x80 {
            return Some((value, i + 1));
        }
    }
    None
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

#[cfg(test)]
mod tests;
