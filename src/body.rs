//! Bounded body reading: the declared `Content-Length` is checked before anything is read,
//! the running total while frames arrive, the whole read is under a timeout, and gzip
//! decompression stops at the decoded limit.

use std::io::Read;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::header::{HeaderMap, CONTENT_LENGTH};

use crate::reject::{Reason, Reject};

/// The limit on the wire was exceeded (or declared to be).
fn too_large() -> Reject {
    Reject::new(Reason::TooLarge)
}

/// `Err` when the declared length alone is over the limit: answer without reading.
pub fn check_declared_length(headers: &HeaderMap, max: usize) -> Result<(), Reject> {
    if let Some(len) = headers.get(CONTENT_LENGTH) {
        let len: u64 = len
            .to_str()
            .ok()
            .and_then(|s| s.parse().ok())
            .ok_or(Reject::new(Reason::BadPayload).with_message("invalid Content-Length"))?;
        if len > max as u64 {
            return Err(too_large());
        }
    }
    Ok(())
}

/// Reads the whole body, at most `max` bytes, within `timeout`.
pub async fn read_bounded(
    mut body: Incoming,
    max: usize,
    timeout: Duration,
    capacity_hint: usize,
) -> Result<Bytes, Reject> {
    let read = async {
        let mut first: Option<Bytes> = None;
        let mut buf: Option<BytesMut> = None;
        while let Some(frame) = body.frame().await {
            let frame = frame.map_err(|_| {
                Reject::new(Reason::BadPayload).with_message("error while reading the body")
            })?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            // The common case is one frame: keep it without copying.
            match (&mut first, &mut buf) {
                (None, None) => {
                    if data.len() > max {
                        return Err(too_large());
                    }
                    first = Some(data);
                }
                (Some(f), None) => {
                    let total = f.len() + data.len();
                    if total > max {
                        return Err(too_large());
                    }
                    let mut b = BytesMut::with_capacity(capacity_hint.clamp(total, max));
                    b.extend_from_slice(f);
                    b.extend_from_slice(&data);
                    buf = Some(b);
                    first = None;
                }
                (_, Some(b)) => {
                    if b.len() + data.len() > max {
                        return Err(too_large());
                    }
                    b.extend_from_slice(&data);
                }
            }
        }
        Ok(match (first, buf) {
            (_, Some(b)) => b.freeze(),
            (Some(f), None) => f,
            (None, None) => Bytes::new(),
        })
    };
    tokio::time::timeout(timeout, read)
        .await
        .map_err(|_| Reject::new(Reason::Timeout))?
}

/// The declared `Content-Length` as a capacity hint (already checked against the limit).
pub fn declared_length(headers: &HeaderMap) -> usize {
    headers
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// Inflates a gzip body, refusing as soon as the output would pass `max`.
pub fn gunzip_bounded(input: &[u8], max: usize) -> Result<Vec<u8>, Reject> {
    let mut out = Vec::with_capacity(input.len().saturating_mul(4).min(max));
    let decoder = flate2::read::GzDecoder::new(input);
    // One byte past the limit tells "exactly max" from "more than max".
    let limit = u64::try_from(max).unwrap_or(u64::MAX).saturating_add(1);
    decoder
        .take(limit)
        .read_to_end(&mut out)
        .map_err(|_| Reject::new(Reason::BadEncoding).with_message("invalid gzip body"))?;
    if out.len() > max {
        return Err(Reject::new(Reason::TooLarge).with_message("decompressed body too large"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(data).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn gunzip_respects_the_limit() {
        let data = vec![b'a'; 10_000];
        let z = gzip(&data);
        assert_eq!(gunzip_bounded(&z, 10_000).unwrap(), data);
        assert_eq!(gunzip_bounded(&z, 9_999).unwrap_err().status, 413);
        assert_eq!(
            gunzip_bounded(b"not gzip", 100).unwrap_err().reason,
            Reason::BadEncoding
        );
    }

    #[test]
    fn a_gzip_bomb_stops_at_the_limit() {
        let bomb = gzip(&vec![0u8; 64 << 20]);
        assert!(bomb.len() < 1 << 20);
        assert_eq!(gunzip_bounded(&bomb, 8 << 20).unwrap_err().status, 413);
    }

    #[test]
    fn declared_length_is_checked_first() {
        let mut h = HeaderMap::new();
        h.insert(CONTENT_LENGTH, "2000".parse().unwrap());
        assert_eq!(check_declared_length(&h, 1000).unwrap_err().status, 413);
        assert!(check_declared_length(&h, 2000).is_ok());
        h.insert(CONTENT_LENGTH, "x".parse().unwrap());
        assert_eq!(check_declared_length(&h, 2000).unwrap_err().status, 400);
    }
}
