//! Bounded body reading: the declared `Content-Length` is checked before anything is read,
//! the running total while frames arrive, the whole read is under a timeout, and gzip
//! decompression stops at the decoded limit. A `RequestBody` also remembers whether it was
//! read to the end, so that a refusal sent before the body was read does not leave a
//! keep-alive client on a connection hyper is about to close (`RequestBody::settle`).

use std::io::Read;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use http_body_util::BodyExt;
use hyper::body::{Body, Incoming};
use hyper::header::{HeaderMap, HeaderValue, CONNECTION, CONTENT_LENGTH};

use crate::http::Resp;
use crate::reject::{Reason, Reject};

/// The most of an unread body the server reads and discards after a refusal to keep the
/// connection: a small body costs less to drain than a new connection; a larger one is not
/// worth receiving, and the connection is closed instead.
const DRAIN_MAX: u64 = 64 << 10;

/// A request's body as handlers see it. Handlers borrow the request; the server settles the
/// body after the response is built.
#[derive(Debug)]
pub struct RequestBody {
    /// What is left of the body.
    state: BodyState,
}

#[derive(Debug)]
enum BodyState {
    /// Nobody has read it (yet).
    Unread(Incoming),
    /// Read to the end: the connection can carry the next request.
    Read,
    /// A read stopped part way (too large, timed out, broken): the rest is unread.
    Abandoned,
}

impl RequestBody {
    pub fn new(body: Incoming) -> Self {
        RequestBody {
            state: BodyState::Unread(body),
        }
    }

    /// After the response is built, for a body the handler did not read to the end. hyper
    /// closed such connections on its own, sometimes after a response that had promised
    /// keep-alive, and the client's next request hit a dead socket. Now the connection is
    /// either kept honestly or closed with `Connection: close`:
    /// - a declared length of at most `DRAIN_MAX`: kept; the body is read and discarded
    ///   (within `timeout`) while the response goes out, so a refusal is never held back by
    ///   a slow body;
    /// - anything else (a larger or unknown length, a read that stopped part way): closed.
    pub fn settle(self, resp: &mut Resp, timeout: Duration) {
        let reusable = match self.state {
            BodyState::Read => true,
            BodyState::Abandoned => false,
            BodyState::Unread(body) if body.is_end_stream() => true,
            BodyState::Unread(body) => match body.size_hint().exact() {
                Some(len) if len <= DRAIN_MAX => {
                    tokio::spawn(drain(body, timeout));
                    true
                }
                _ => false,
            },
        };
        if !reusable {
            resp.headers_mut()
                .insert(CONNECTION, HeaderValue::from_static("close"));
        }
    }
}

/// Reads and discards `body`, at most `DRAIN_MAX` bytes within `timeout`. Giving up drops the
/// body and hyper closes the connection: only a client that did not send the body it
/// declared gets there.
async fn drain(mut body: Incoming, timeout: Duration) {
    let read = async {
        let mut total = 0u64;
        while let Some(Ok(frame)) = body.frame().await {
            if let Some(data) = frame.data_ref() {
                total = total.saturating_add(data.len() as u64);
                if total > DRAIN_MAX {
                    return;
                }
            }
        }
    };
    let _ = tokio::time::timeout(timeout, read).await;
}

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

/// Reads the whole body, at most `max` bytes, within `timeout`. A declared length over `max`
/// is refused before anything is read (whatever the caller checked).
pub async fn read_bounded(
    body: &mut RequestBody,
    max: usize,
    timeout: Duration,
    capacity_hint: usize,
) -> Result<Bytes, Reject> {
    let mut incoming = match std::mem::replace(&mut body.state, BodyState::Abandoned) {
        BodyState::Unread(incoming) if incoming.size_hint().lower() > max as u64 => {
            // Left unread: `settle` decides between draining it and closing.
            body.state = BodyState::Unread(incoming);
            return Err(too_large());
        }
        BodyState::Unread(incoming) => incoming,
        other => {
            body.state = other;
            return Err(Reject::new(Reason::BadPayload).with_message("body already read"));
        }
    };
    // Until this succeeds the state stays `Abandoned`: a failed read leaves the rest unread.
    let bytes = read_incoming(&mut incoming, max, timeout, capacity_hint).await?;
    body.state = BodyState::Read;
    Ok(bytes)
}

async fn read_incoming(
    body: &mut Incoming,
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
    // Every member, as gunzip does: a body of concatenated gzip members (RFC 1952 §2.2) is one
    // payload, and stopping after the first would drop the rest of acknowledged data without a
    // word. Anything after the last member that is not another member is a bad body.
    let decoder = flate2::read::MultiGzDecoder::new(input);
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
    fn every_gzip_member_is_read_and_trailing_garbage_is_refused() {
        let mut two = gzip(b"first member, ");
        two.extend_from_slice(&gzip(b"second member"));
        assert_eq!(
            gunzip_bounded(&two, 1000).unwrap(),
            b"first member, second member"
        );
        // The limit counts all members together.
        assert_eq!(gunzip_bounded(&two, 20).unwrap_err().status, 413);
        let mut trailing = gzip(b"payload");
        trailing.extend_from_slice(b"not another member");
        let refused = gunzip_bounded(&trailing, 1000).unwrap_err();
        assert_eq!(refused.reason, Reason::BadEncoding);
        assert_eq!(refused.status, 400);
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
