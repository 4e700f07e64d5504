//! The reusable decode state: one snappy pass into a kept buffer, then a scan of that buffer
//! that validates and counts while borrowing every string from it.
//!
//! Copies of the body: exactly one, snappy's decompression into `buf` (unavoidable: the wire
//! bytes are compressed). The scanners (`scan_v1`, `scan_v2`) never copy a label, value or
//! symbol; they hold slices of `buf`.

use super::{scan_v1, scan_v2, Limits, RwError, Version, Written};

/// A buffer grown past this by one large request is dropped afterwards rather than kept, so a
/// pool of decoders does not pin the worst case forever (issue 17: each worker thread kept a
/// 256 MiB symbols table). Prometheus's default batch (2000 samples) decodes to well under
/// this, so steady traffic never regrows it.
const KEEP_BUF_BYTES: usize = 4 << 20;

/// The same bound for the symbols table, in entries (16 bytes each: 1 MiB). A default 2.0 batch
/// carries a few thousand symbols.
const KEEP_SYMBOLS: usize = 64 << 10;

/// Most decoded bytes one compressed byte can stand for in a snappy block, as a fraction
/// (numerator, denominator). Every element of the format produces at most this much per byte
/// it takes: a literal of n bytes takes n + 1 or more bytes; a copy with a 1-byte offset takes
/// 2 bytes for at most 11; with a 2-byte offset 3 bytes for at most 64; with a 4-byte offset 5
/// bytes for at most 64. So a block whose payload (after the length header) is `p` bytes long
/// decodes to at most `p * 64 / 3` bytes, and a header declaring more is a lie that would
/// otherwise cost a zero-filled buffer of the declared size before decompression fails.
/// Real compressors get close: snappy compresses a run of zeros to about 3 bytes per 64.
const MAX_EXPANSION: (u64, u64) = (64, 3);

/// Reusable decode state (buffers): keep one per worker thread or in a pool.
#[derive(Default)]
pub struct Decoder {
    /// Decompression target, reused across requests (only its length is ever grown, so any
    /// zero-fill happens once per size, not once per request).
    buf: Vec<u8>,
    /// Storage of the 2.0 symbols table, kept for its capacity; always empty between calls
    /// (the `'static` is never used: it is re-typed to the body's lifetime while in use).
    symbols: Vec<&'static [u8]>,
}

impl Decoder {
    /// A decoder with empty buffers; they grow to the working size on first use.
    pub fn new() -> Decoder {
        Decoder::default()
    }

    /// Snappy length-header guard first (a declared decoded length over
    /// `limits.max_decoded_bytes` is [`RwError::TooLarge`] before anything is allocated), then
    /// decompression into the reused buffer, decoding and validation. `now_ms` is the wall
    /// clock in milliseconds since the Unix epoch, for the future-timestamp check.
    pub fn decode(
        &mut self,
        version: Version,
        snappy_body: &[u8],
        limits: &Limits,
        now_ms: i64,
    ) -> Result<Written, RwError> {
        super::validate::clear_series_hashes();
        let len = checked_len(snappy_body, limits)?;
        if self.buf.len() < len {
            // A fresh zeroed allocation rather than `resize`: the old contents need not be
            // kept, and the allocator can hand a large block over as fresh zero pages (calloc of
            // an mmap'd block skips the memset), so a body that fails early need not pay for
            // the pages it never reached.
            self.buf = vec![0; len];
        }
        let result = match self.buf.get_mut(..len) {
            Some(out) => match snap::raw::Decoder::new().decompress(snappy_body, out) {
                Ok(n) if n == len => scan(version, out, limits, now_ms, &mut self.symbols),
                _ => Err(RwError::BadEncoding),
            },
            None => Err(RwError::BadEncoding),
        };
        // Dropped, not shrunk: a request this large is rare, and a fresh buffer next time costs
        // what regrowing a kept part would. Large blocks go straight back to the kernel.
        if self.buf.len() > KEEP_BUF_BYTES {
            self.buf = Vec::new();
        }
        if self.symbols.capacity() > KEEP_SYMBOLS {
            self.symbols = Vec::new();
        }
        result
    }
}

#[cfg(test)]
impl Decoder {
    /// Capacity of the decompression buffer, for the no-allocation tests.
    pub(super) fn buffer_capacity(&self) -> usize {
        self.buf.capacity()
    }

    /// Capacity of the symbols table, for the shrink tests.
    pub(super) fn symbols_capacity(&self) -> usize {
        self.symbols.capacity()
    }
}

fn scan(
    version: Version,
    body: &[u8],
    limits: &Limits,
    now_ms: i64,
    storage: &mut Vec<&'static [u8]>,
) -> Result<Written, RwError> {
    match version {
        Version::V1 => scan_v1::scan(body, limits, now_ms),
        Version::V2 => {
            let mut symbols = retype(std::mem::take(storage));
            let result = scan_v2::scan(body, limits, now_ms, &mut symbols);
            *storage = retype(symbols);
            result
        }
    }
}

/// Empties a vector of slices and gives it back with another lifetime, keeping its allocation
/// (the standard library collects a same-layout `into_iter().map()` in place), so the symbols
/// table costs no allocation per request once warm.
fn retype<'y>(mut v: Vec<&[u8]>) -> Vec<&'y [u8]> {
    v.clear();
    v.into_iter().map(|_| &[][..]).collect()
}

/// The decoded length the snappy header declares, once it is known to be within
/// `limits.max_decoded_bytes` ([`RwError::TooLarge`]) and within what the rest of the body
/// can possibly decode to ([`MAX_EXPANSION`]; else [`RwError::BadEncoding`]). Nothing is
/// allocated before both hold.
pub(super) fn checked_len(snappy_body: &[u8], limits: &Limits) -> Result<usize, RwError> {
    let (declared, header) = declared_len(snappy_body)?;
    let len = usize::try_from(declared)
        .ok()
        .filter(|&len| len <= limits.max_decoded_bytes)
        .ok_or(RwError::TooLarge {
            declared,
            limit: limits.max_decoded_bytes,
        })?;
    let payload = snappy_body.len().saturating_sub(header) as u64;
    let (num, den) = MAX_EXPANSION;
    if declared > payload.saturating_mul(num) / den {
        return Err(RwError::BadEncoding);
    }
    Ok(len)
}

/// The decoded length a snappy block declares in its varint header (at most 5 bytes: snappy
/// blocks are limited to 2^32 - 1 bytes). Read by hand so that the limit check needs nothing
/// from the decompressor and an absurd header never reaches it.
/// Returns it with the header's length in bytes.
fn declared_len(body: &[u8]) -> Result<(u64, usize), RwError> {
    let mut value: u64 = 0;
    for (i, &byte) in body.iter().take(5).enumerate() {
        value |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Ok((value, i + 1));
        }
    }
    // Empty body, a header cut short, or one longer than 5 bytes.
    Err(RwError::BadEncoding)
}
