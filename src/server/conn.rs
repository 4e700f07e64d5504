//! One accepted connection, from the first byte to the last: the TLS handshake (bounded by
//! `server.tls_handshake_timeout`), the choice of protocol (ALPN on TLS, the preface on
//! plain listeners), hyper's HTTP/1.1 or HTTP/2 connection with this edge's limits, and the
//! end: shutdown, or an HTTP/2 connection left idle.
//!
//! The write deadline sits under TLS, so handshake and response writes alike fail when the
//! client stops reading.

use std::convert::Infallible;
use std::future::Future;
use std::pin::{pin, Pin};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::server::conn::{http1, http2};
use hyper::service::service_fn;
use hyper::Request;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use super::deadline::WriteDeadline;
use super::sniff::sniff;
use crate::config::ServerConfig;
use crate::http::Resp;

/// hyper's read buffer: one request head plus what a pipelining client sent behind it. It
/// bounds the pipelined input a connection holds (hyper reads the next request only after
/// answering this one, and its write buffer has the same cap).
const READ_BUFFER: usize = 64 << 10;

/// Remote resets of streams the server has not yet picked up, before the connection gets
/// GOAWAY (CVE-2023-44487, rapid reset: each reset stream costs the server work but not the
/// client a concurrency slot). h2's own default; named so the choice is visible.
const MAX_PENDING_ACCEPT_RESETS: usize = 20;

/// Streams the server itself may reset for protocol errors (a client provoking resets, as
/// in CVE-2025-8671 "MadeYouReset") before the connection is closed. A well-behaved client
/// causes none.
const MAX_LOCAL_ERROR_RESETS: usize = 256;

/// Which protocol a connection ended up speaking, for the per-protocol counter.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    Http1,
    H2,
}

/// Everything a listener needs to serve its connections; built once per listener.
pub struct Protocols {
    h1: http1::Builder,
    h2: http2::Builder<TokioExecutor>,
    /// `Some` when the listener speaks TLS.
    tls: Option<TlsAcceptor>,
    /// `server.tls_handshake_timeout`: a handshake holds a connection slot, so it is bounded.
    handshake_timeout: Duration,
    /// `server.header_read_timeout`: for the h2c preface, and for an HTTP/2 connection with
    /// no open stream (the HTTP/2 counterpart of a client that sends no request headers).
    idle_timeout: Duration,
    /// `server.write_timeout`.
    write_timeout: Duration,
}

impl Protocols {
    pub fn new(cfg: &ServerConfig, tls: Option<TlsAcceptor>) -> Protocols {
        let mut h1 = http1::Builder::new();
        h1.timer(TokioTimer::new())
            .header_read_timeout(cfg.header_read_timeout)
            .keep_alive(true)
            // The buffer cap alone let a single 100 KB header through (a read may overshoot
            // it); hyper's header size limit is exact and answers 431.
            .max_header_size(cfg.max_header_bytes)
            .max_buf_size(READ_BUFFER.max(cfg.max_header_bytes));
        let mut h2 = http2::Builder::new(TokioExecutor::new());
        h2.timer(TokioTimer::new())
            .max_concurrent_streams(cfg.h2_max_concurrent_streams)
            // The decoded header list of one request: the same cap as an HTTP/1.1 head. It
            // also ends CONTINUATION floods: h2 refuses a header block growing past it.
            .max_header_list_size(u32::try_from(cfg.max_header_bytes).unwrap_or(u32::MAX))
            .max_pending_accept_reset_streams(MAX_PENDING_ACCEPT_RESETS)
            .max_local_error_reset_streams(MAX_LOCAL_ERROR_RESETS)
            // What hyper buffers per stream for a client that does not read its responses.
            .max_send_buf_size(READ_BUFFER);
        Protocols {
            h1,
            h2,
            tls,
            handshake_timeout: cfg.tls_handshake_timeout,
            idle_timeout: cfg.header_read_timeout,
            write_timeout: cfg.write_timeout,
        }
    }

    /// Whether connections get TLS.
    pub fn tls(&self) -> bool {
        self.tls.is_some()
    }

    /// Serves one connection until it ends or shutdown closes it. `seen` learns the protocol
    /// once it is known; `handle` answers each request.
    pub async fn serve<H, F>(
        &self,
        stream: TcpStream,
        shutdown: watch::Receiver<bool>,
        seen: impl FnOnce(Protocol),
        handle: H,
    ) -> Result<(), String>
    where
        H: Fn(Request<Incoming>) -> F + Send + Sync + Clone + 'static,
        F: Future<Output = Resp> + Send + 'static,
    {
        let io = WriteDeadline::new(stream, self.write_timeout);
        match &self.tls {
            Some(acceptor) => {
                let tls = tokio::time::timeout(self.handshake_timeout, acceptor.accept(io))
                    .await
                    .map_err(|_| "TLS handshake timed out".to_string())?
                    .map_err(|e| format!("TLS handshake failed: {e}"))?;
                let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
                seen(if h2 { Protocol::H2 } else { Protocol::Http1 });
                self.run(tls, h2, shutdown, handle).await
            }
            None => {
                let (h2, io) = sniff(io, self.idle_timeout)
                    .await
                    .ok_or("no request before the header read timeout")?;
                seen(if h2 { Protocol::H2 } else { Protocol::Http1 });
                self.run(io, h2, shutdown, handle).await
            }
        }
    }

    async fn run<I, H, F>(
        &self,
        io: I,
        h2: bool,
        shutdown: watch::Receiver<bool>,
        handle: H,
    ) -> Result<(), String>
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
        H: Fn(Request<Incoming>) -> F + Send + Sync + Clone + 'static,
        F: Future<Output = Resp> + Send + 'static,
    {
        let open = Arc::new(Streams::default());
        let streams = open.clone();
        let service = service_fn(move |req: Request<Incoming>| {
            let guard = streams.enter();
            let answer = handle(req);
            async move {
                let resp = answer.await;
                drop(guard);
                Ok::<_, Infallible>(resp)
            }
        });
        let io = TokioIo::new(io);
        let result = if h2 {
            let conn = pin!(self.h2.serve_connection(io, service));
            until_closed(conn, shutdown, Some((&open, self.idle_timeout)), |c| {
                c.graceful_shutdown()
            })
            .await
        } else {
            let conn = pin!(self.h1.serve_connection(io, service));
            until_closed(conn, shutdown, None, |c| c.graceful_shutdown()).await
        };
        result.map_err(|e| e.to_string())
    }
}

/// Requests in progress on one connection, and a count of all that started, so an idle
/// HTTP/2 connection can be told from a busy one without a timer per request.
#[derive(Default)]
struct Streams {
    open: AtomicUsize,
    started: AtomicUsize,
}

/// Marks one request in progress while it lives (dropped too when hyper cancels the
/// request because the client reset its stream).
struct InFlight(Arc<Streams>);

impl Streams {
    fn enter(self: &Arc<Self>) -> InFlight {
        self.open.fetch_add(1, Ordering::Relaxed);
        self.started.fetch_add(1, Ordering::Relaxed);
        InFlight(self.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Drives `conn` to its end. On shutdown, or (HTTP/2) when no request was open or started
/// during a whole `idle` period, it asks hyper to close gracefully (GOAWAY for HTTP/2: the
/// client opens a new connection for its next request) and keeps driving it until it has.
async fn until_closed<C, E>(
    mut conn: Pin<&mut C>,
    mut shutdown: watch::Receiver<bool>,
    idle: Option<(&Arc<Streams>, Duration)>,
    close: impl Fn(Pin<&mut C>),
) -> Result<(), E>
where
    C: Future<Output = Result<(), E>>,
{
    // Without an idle limit the tick branch is off; the period only has to be valid.
    let period = idle.map_or(Duration::from_secs(3600), |(_, d)| {
        d.max(Duration::from_millis(10))
    });
    let mut tick = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    let mut last_started = 0;
    let mut closing = false;
    loop {
        tokio::select! {
            r = conn.as_mut() => return r,
            _ = super::stopping(&mut shutdown), if !closing => {
                closing = true;
                close(conn.as_mut());
            }
            _ = tick.tick(), if !closing && idle.is_some() => {
                if let Some((streams, _)) = idle {
                    let started = streams.started.load(Ordering::Relaxed);
                    if streams.open.load(Ordering::Relaxed) == 0 && started == last_started {
                        closing = true;
                        close(conn.as_mut());
                    }
                    last_started = started;
                }
            }
        }
    }
}
