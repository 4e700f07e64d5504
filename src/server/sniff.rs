//! HTTP/2 prior knowledge (h2c) on a plain listener: the first bytes say which protocol the
//! client speaks. A client that opens with the HTTP/2 connection preface gets HTTP/2,
//! anything else HTTP/1.1.
//!
//! hyper-util's `auto` builder does the same but reads the preface with no time limit, so a
//! client that connects and sends nothing would keep its connection slot forever; here the
//! read is bounded by `server.header_read_timeout`. The bytes read are replayed to the
//! protocol's parser by [`Prefixed`].

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, ReadBuf};

/// RFC 9113 §3.4.
const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Reads until the bytes either are the whole preface or stop matching it (the first byte
/// of an HTTP/1.1 request line already does). `None`: nothing usable before the timeout or
/// the peer closed.
pub async fn sniff<T: AsyncRead + Unpin>(io: T, timeout: Duration) -> Option<(bool, Prefixed<T>)> {
    let mut io = io;
    let mut buf = Vec::with_capacity(PREFACE.len());
    let read = async {
        while buf.len() < PREFACE.len() && PREFACE.starts_with(&buf) {
            let mut chunk = [0u8; 24];
            let want = PREFACE.len() - buf.len();
            let n = io.read(chunk.get_mut(..want)?).await.ok()?;
            if n == 0 {
                return None;
            }
            buf.extend_from_slice(chunk.get(..n)?);
        }
        Some(())
    };
    tokio::time::timeout(timeout, read).await.ok()??;
    let h2 = buf.as_slice() == PREFACE;
    Some((
        h2,
        Prefixed {
            prefix: buf,
            pos: 0,
            io,
        },
    ))
}

/// An I/O object that first returns the bytes already taken from it.
pub struct Prefixed<T> {
    /// What `sniff` read.
    prefix: Vec<u8>,
    /// How much of `prefix` has been handed out.
    pos: usize,
    io: T,
}

impl<T: AsyncRead + Unpin> AsyncRead for Prefixed<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if let Some(rest) = this.prefix.get(this.pos..).filter(|r| !r.is_empty()) {
            let n = rest.len().min(buf.remaining());
            if let Some(part) = rest.get(..n) {
                buf.put_slice(part);
            }
            this.pos += n;
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut this.io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Prefixed<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    #[tokio::test]
    async fn the_preface_means_h2_and_every_byte_is_replayed() {
        for (input, h2) in [
            (&b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\nrest"[..], true),
            (&b"POST /v1/traces HTTP/1.1\r\n"[..], false),
            (&b"GET / HTTP/1.1\r\n\r\n"[..], false),
        ] {
            let (mut client, server) = tokio::io::duplex(1024);
            client.write_all(input).await.unwrap();
            drop(client);
            let (is_h2, mut io) = sniff(server, Duration::from_secs(1)).await.unwrap();
            assert_eq!(is_h2, h2);
            let mut all = Vec::new();
            io.read_to_end(&mut all).await.unwrap();
            assert_eq!(all, input);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn silence_and_a_partial_preface_time_out() {
        let (mut client, server) = tokio::io::duplex(1024);
        client.write_all(b"PRI * HTTP/2").await.unwrap();
        assert!(sniff(server, Duration::from_secs(5)).await.is_none());
        let (_client, server) = tokio::io::duplex(1024);
        assert!(sniff(server, Duration::from_secs(5)).await.is_none());
    }
}
