//! A write deadline on a connection's socket. hyper has a header read timeout but nothing
//! for the other direction: a client that pipelines requests and never reads its responses
//! fills its receive buffer and our send buffer, and its connection then waits forever while
//! holding a connection slot (issue 17: 32 such sockets locked out every new client). Here a
//! write or flush that stays pending for longer than the timeout fails with `TimedOut`; hyper
//! then ends the connection and the slot is freed.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// An `AsyncRead + AsyncWrite` whose writes fail once they have made no progress for
/// `timeout`. Reads pass through untouched (the header and body timeouts bound them).
pub struct WriteDeadline<T> {
    /// The socket.
    io: T,
    /// How long a write may stay pending without progress.
    timeout: Duration,
    /// The running deadline; created on the first pending write only, so a connection whose
    /// writes never block costs no timer.
    sleep: Option<Pin<Box<Sleep>>>,
    /// Whether `sleep` counts for the write pending now; any progress disarms it, so a slow
    /// but reading client is not cut off by the total length of its responses.
    armed: bool,
}

impl<T> WriteDeadline<T> {
    pub fn new(io: T, timeout: Duration) -> Self {
        WriteDeadline {
            io,
            timeout,
            sleep: None,
            armed: false,
        }
    }

    /// The write side is pending: start (or keep) the clock and fail once it runs out.
    fn pending<R>(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<R>> {
        let deadline = Instant::now() + self.timeout;
        let sleep = self
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if !self.armed {
            sleep.as_mut().reset(deadline);
            self.armed = true;
        }
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "response write made no progress within server.write_timeout",
            ))),
            Poll::Pending => Poll::Pending,
        }
    }

    /// Passes a finished write through and disarms the clock.
    fn done<R>(&mut self, r: io::Result<R>) -> Poll<io::Result<R>> {
        self.armed = false;
        Poll::Ready(r)
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for WriteDeadline<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for WriteDeadline<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        match Pin::new(&mut this.io).poll_write(cx, buf) {
            Poll::Ready(r) => this.done(r),
            Poll::Pending => this.pending(cx),
        }
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        match Pin::new(&mut this.io).poll_write_vectored(cx, bufs) {
            Poll::Ready(r) => this.done(r),
            Poll::Pending => this.pending(cx),
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        match Pin::new(&mut this.io).poll_flush(cx) {
            Poll::Ready(r) => this.done(r),
            Poll::Pending => this.pending(cx),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        match Pin::new(&mut this.io).poll_shutdown(cx) {
            Poll::Ready(r) => this.done(r),
            Poll::Pending => this.pending(cx),
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncWriteExt;

    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_write_nobody_reads_fails_after_the_timeout() {
        // A pipe whose reader never reads: writes block once its 64 bytes are full.
        let (_reader, writer) = tokio::io::duplex(64);
        let mut w = WriteDeadline::new(writer, Duration::from_secs(10));
        w.write_all(&[0u8; 64]).await.unwrap();
        let started = Instant::now();
        let err = w.write_all(&[0u8; 1]).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut);
        assert_eq!(started.elapsed(), Duration::from_secs(10));
    }

    #[tokio::test(start_paused = true)]
    async fn progress_restarts_the_clock() {
        let (mut reader, writer) = tokio::io::duplex(64);
        let mut w = WriteDeadline::new(writer, Duration::from_secs(10));
        let drain = tokio::spawn(async move {
            let mut buf = [0u8; 64];
            // Reads a little every 6 s: each write waits less than the timeout.
            for _ in 0..4 {
                tokio::time::sleep(Duration::from_secs(6)).await;
                tokio::io::AsyncReadExt::read_exact(&mut reader, &mut buf)
                    .await
                    .unwrap();
            }
            reader
        });
        w.write_all(&[0u8; 64 * 4]).await.unwrap();
        drain.await.unwrap();
    }
}
