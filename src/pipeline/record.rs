//! The on-disk record: one accepted batch, framed with its length and a CRC-32 so that a
//! torn or corrupted record is recognised on recovery instead of being forwarded.
//!
//! Frame: `len: u32 LE | crc: u32 LE | payload[len]`, where `crc = crc32(len bytes ++ payload)`
//! (the length is covered too, so a flipped length bit cannot make garbage look valid).
//! Payload (version 1): `version u8 | queue u8 | flags u8 | accepted_ms u64 | items u64 |
//! token_id | [tenant] | content_type | [content_encoding] | body`, strings as `u16 len ++ UTF-8`,
//! the optional ones present when their flag bit is set, and the body running to the end.
//! Version 2 is version 1 with `piece_start u32 | piece_end u32` after the strings (flag bit
//! 4): where the items of an OTLP JSON body are (`rum::Counted::json_piece`), found once at
//! acceptance so the forwarder's merge does not parse every body again. A build that only
//! knows version 1 refuses such a record by its version instead of misreading it.

use std::ops::Range;
use std::sync::Arc;

use bytes::{Buf, Bytes};

use super::{Batch, Queue};

/// Bytes in front of every payload: length and checksum.
pub(crate) const FRAME_HEADER: usize = 8;
/// Refuse to believe a length above this: a corrupted length must not make recovery allocate
/// gigabytes, and no accepted request comes near it (bodies are capped far lower upstream).
pub(crate) const MAX_PAYLOAD: u32 = 256 * 1024 * 1024;
const VERSION: u8 = 1;
/// Version 1 plus the JSON piece ([`FLAG_PIECE`]).
const VERSION_PIECE: u8 = 2;
const FLAG_TENANT: u8 = 1;
const FLAG_ENCODING: u8 = 2;
const FLAG_PIECE: u8 = 4;

/// Why a payload could not be turned back into a batch.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RecordError {
    /// The payload ended before a field it announced.
    #[error("record payload truncated")]
    Truncated,
    /// Written by a newer (or broken) build.
    #[error("unknown record version {0}")]
    Version(u8),
    /// Queue code outside the known set.
    #[error("unknown queue code {0}")]
    Queue(u8),
    /// A string field is not UTF-8.
    #[error("record string field is not UTF-8")]
    Utf8,
    /// The batch cannot be framed (a string or the whole record is too long).
    #[error("batch too large for a spool record")]
    TooLarge,
}

/// A batch as read back from the spool (or handed over in memory): owned strings because the
/// `&'static str` of [`Batch`] cannot be recreated from disk.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Spooled {
    /// Which upstream it goes to.
    pub queue: Queue,
    /// Wall-clock acceptance time, for the oldest-record-age gauge and `spool dump`.
    pub accepted_ms: u64,
    /// Token that sent it (dump/debugging only; never sent upstream).
    pub token_id: Arc<str>,
    /// Value for the tenant header, when the token has one.
    pub tenant: Option<Arc<str>>,
    /// Content-Type to send upstream.
    pub content_type: Arc<str>,
    /// Content-Encoding to send upstream.
    pub content_encoding: Option<Arc<str>>,
    /// Samples or spans/log records, for the forwarded counter.
    pub items: u64,
    /// The request body exactly as it must reach the upstream.
    pub body: Bytes,
    /// OTLP JSON: the range of `body` holding the elements of its one top-level array, found
    /// at acceptance ([`Batch::json_piece`]); `None` for any other body, or one spooled by an older
    /// build (the merge then parses it).
    pub json_piece: Option<Range<usize>>,
}

/// The piece found at acceptance, kept when the merge may use it: the RUM queues, JSON, not
/// encoded, and a range inside the body that fits the record's `u32` offsets.
fn json_piece(batch: &Batch) -> Option<Range<usize>> {
    let rum = matches!(batch.queue, Queue::Traces | Queue::Logs);
    let json = batch.content_type == "application/json" && batch.content_encoding.is_none();
    batch.json_piece.clone().filter(|r| {
        rum && json && r.start <= r.end && r.end <= batch.body.len() && u32::try_from(r.end).is_ok()
    })
}

impl Spooled {
    /// Takes an accepted batch as it is, stamping the acceptance time.
    pub(crate) fn from_batch(batch: Batch, accepted_ms: u64) -> Spooled {
        let json_piece = json_piece(&batch);
        Spooled {
            queue: batch.queue,
            accepted_ms,
            token_id: batch.token_id,
            tenant: batch.tenant,
            content_type: Arc::from(batch.content_type),
            content_encoding: batch.content_encoding.map(Arc::from),
            items: batch.items,
            body: batch.body,
            json_piece,
        }
    }
}

fn put_str(out: &mut Vec<u8>, s: &str) -> Result<(), RecordError> {
    let len = u16::try_from(s.len()).map_err(|_| RecordError::TooLarge)?;
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(s.as_bytes());
    Ok(())
}

/// Encodes a batch into a complete frame (header + payload), ready to be appended.
pub(crate) fn encode_frame(batch: &Batch, accepted_ms: u64) -> Result<Vec<u8>, RecordError> {
    let piece = json_piece(batch);
    encode_parts(
        batch.queue,
        accepted_ms,
        &batch.token_id,
        batch.tenant.as_deref(),
        batch.content_type,
        batch.content_encoding,
        batch.items,
        &batch.body,
        piece,
    )
}

/// Encodes a spooled batch into a frame again (used for the dead-letter segment).
pub(crate) fn encode_spooled(s: &Spooled) -> Result<Vec<u8>, RecordError> {
    encode_parts(
        s.queue,
        s.accepted_ms,
        &s.token_id,
        s.tenant.as_deref(),
        &s.content_type,
        s.content_encoding.as_deref(),
        s.items,
        &s.body,
        s.json_piece.clone(),
    )
}

#[allow(clippy::too_many_arguments)]
fn encode_parts(
    queue: Queue,
    accepted_ms: u64,
    token_id: &str,
    tenant: Option<&str>,
    content_type: &str,
    content_encoding: Option<&str>,
    items: u64,
    body: &[u8],
    piece: Option<Range<usize>>,
) -> Result<Vec<u8>, RecordError> {
    let piece =
        piece.and_then(|r| Some((u32::try_from(r.start).ok()?, u32::try_from(r.end).ok()?)));
    let strings = token_id.len()
        + tenant.map_or(0, str::len)
        + content_type.len()
        + content_encoding.map_or(0, str::len);
    let prefixes =
        2 * (2 + usize::from(tenant.is_some()) + usize::from(content_encoding.is_some()));
    let payload_len = 19 + prefixes + strings + 8 * usize::from(piece.is_some()) + body.len();
    let len = u32::try_from(payload_len)
        .ok()
        .filter(|l| *l <= MAX_PAYLOAD)
        .ok_or(RecordError::TooLarge)?;
    let mut out = Vec::with_capacity(FRAME_HEADER + payload_len);
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(&[0; 4]);
    let mut flags = 0;
    if tenant.is_some() {
        flags |= FLAG_TENANT;
    }
    if content_encoding.is_some() {
        flags |= FLAG_ENCODING;
    }
    let version = if piece.is_some() {
        flags |= FLAG_PIECE;
        VERSION_PIECE
    } else {
        VERSION
    };
    out.extend_from_slice(&[version, queue.code(), flags]);
    out.extend_from_slice(&accepted_ms.to_le_bytes());
    out.extend_from_slice(&items.to_le_bytes());
    put_str(&mut out, token_id)?;
    if let Some(t) = tenant {
        put_str(&mut out, t)?;
    }
    put_str(&mut out, content_type)?;
    if let Some(e) = content_encoding {
        put_str(&mut out, e)?;
    }
    if let Some((start, end)) = piece {
        out.extend_from_slice(&start.to_le_bytes());
        out.extend_from_slice(&end.to_le_bytes());
    }
    out.extend_from_slice(body);
    debug_assert_eq!(out.len(), FRAME_HEADER + payload_len);
    let crc = frame_crc(
        &len.to_le_bytes(),
        out.get(FRAME_HEADER..).unwrap_or_default(),
    );
    out.get_mut(4..8)
        .ok_or(RecordError::TooLarge)?
        .copy_from_slice(&crc.to_le_bytes());
    Ok(out)
}

/// Frames a raw payload that could not be decoded (kept byte for byte in the dead letter).
pub(crate) fn frame_raw(payload: &[u8]) -> Vec<u8> {
    let len = u32::try_from(payload.len())
        .unwrap_or(u32::MAX)
        .to_le_bytes();
    let mut out = Vec::with_capacity(FRAME_HEADER + payload.len());
    out.extend_from_slice(&len);
    out.extend_from_slice(&frame_crc(&len, payload).to_le_bytes());
    out.extend_from_slice(payload);
    out
}

/// The checksum stored in a frame header.
pub(crate) fn frame_crc(len_le: &[u8; 4], payload: &[u8]) -> u32 {
    let mut h = crc32fast::Hasher::new();
    h.update(len_le);
    h.update(payload);
    h.finalize()
}

/// Outcome of looking at the bytes at one offset of a segment.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Frame {
    /// A whole, valid record: payload range within the given buffer and total frame length.
    Valid {
        payload: std::ops::Range<usize>,
        len: usize,
    },
    /// The buffer ends inside the frame; `need` is the full frame length if it is known.
    Incomplete { need: Option<usize> },
    /// Checksum mismatch or impossible length: not a record.
    Corrupt,
}

/// Checks the frame at the start of `buf`.
pub(crate) fn check_frame(buf: &[u8]) -> Frame {
    let Some(header) = buf.get(..FRAME_HEADER) else {
        return Frame::Incomplete { need: None };
    };
    let mut len_le = [0u8; 4];
    len_le.copy_from_slice(&header[..4]);
    let len = u32::from_le_bytes(len_le);
    if len > MAX_PAYLOAD {
        return Frame::Corrupt;
    }
    let total = FRAME_HEADER + len as usize;
    let Some(payload) = buf.get(FRAME_HEADER..total) else {
        return Frame::Incomplete { need: Some(total) };
    };
    let mut crc_le = [0u8; 4];
    crc_le.copy_from_slice(&header[4..8]);
    if frame_crc(&len_le, payload) != u32::from_le_bytes(crc_le) {
        return Frame::Corrupt;
    }
    Frame::Valid {
        payload: FRAME_HEADER..total,
        len: total,
    }
}

/// The acceptance time of a checksum-verified payload, without decoding the rest.
pub(crate) fn accepted_ms_of(payload: &[u8]) -> Option<u64> {
    let raw: [u8; 8] = payload.get(3..11)?.try_into().ok()?;
    Some(u64::from_le_bytes(raw))
}

fn get_str(buf: &mut Bytes) -> Result<Arc<str>, RecordError> {
    if buf.remaining() < 2 {
        return Err(RecordError::Truncated);
    }
    let len = buf.get_u16_le() as usize;
    if buf.remaining() < len {
        return Err(RecordError::Truncated);
    }
    let raw = buf.split_to(len);
    std::str::from_utf8(&raw)
        .map(Arc::from)
        .map_err(|_| RecordError::Utf8)
}

/// Decodes a payload whose checksum already matched. The body shares `payload`'s memory.
pub(crate) fn decode_payload(mut payload: Bytes) -> Result<Spooled, RecordError> {
    if payload.remaining() < 19 {
        return Err(RecordError::Truncated);
    }
    let version = payload.get_u8();
    if version != VERSION && version != VERSION_PIECE {
        return Err(RecordError::Version(version));
    }
    let code = payload.get_u8();
    let queue = Queue::from_code(code).ok_or(RecordError::Queue(code))?;
    let flags = payload.get_u8();
    let accepted_ms = payload.get_u64_le();
    let items = payload.get_u64_le();
    let token_id = get_str(&mut payload)?;
    let tenant = if flags & FLAG_TENANT != 0 {
        Some(get_str(&mut payload)?)
    } else {
        None
    };
    let content_type = get_str(&mut payload)?;
    let content_encoding = if flags & FLAG_ENCODING != 0 {
        Some(get_str(&mut payload)?)
    } else {
        None
    };
    let json_piece = if version == VERSION_PIECE && flags & FLAG_PIECE != 0 {
        if payload.remaining() < 8 {
            return Err(RecordError::Truncated);
        }
        let (start, end) = (payload.get_u32_le() as usize, payload.get_u32_le() as usize);
        // Checksummed, so only a buggy writer gets here; then the merge parses the body.
        (start <= end && end <= payload.len()).then_some(start..end)
    } else {
        None
    };
    Ok(Spooled {
        queue,
        accepted_ms,
        token_id,
        tenant,
        content_type,
        content_encoding,
        items,
        body: payload,
        json_piece,
    })
}

#[cfg(test)]
mod tests;
