//! The HTTP servers: accept loops, connection caps, the PROXY protocol header (`proxy.rs`),
//! header read and response write timeouts, the header size cap, keep-alive after refusals,
//! and graceful shutdown. The only module
//! that touches hyper's connection types.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::Request;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};

use crate::body::RequestBody;
use crate::edge::AppState;

mod deadline;
mod proxy;

use deadline::WriteDeadline;

/// hyper's read buffer: one request head plus what a pipelining client sent behind it. It
/// bounds the pipelined input a connection holds (hyper reads the next request only after
/// answering this one, and its write buffer has the same cap).
const READ_BUFFER: usize = 64 << 10;

/// Which listener a server runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listener {
    Ingest,
    Ops,
}

/// Accepts connections until shutdown, then waits (bounded) for open ones to finish.
pub async fn run(
    listener: TcpListener,
    kind: Listener,
    state: Arc<AppState>,
    mut shutdown: watch::Receiver<bool>,
) {
    let cfg = &state.config.server;
    let permits = Arc::new(Semaphore::new(cfg.max_connections.max(1)));
    let graceful = GracefulShutdown::new();
    let mut builder = http1::Builder::new();
    builder
        .timer(TokioTimer::new())
        .header_read_timeout(cfg.header_read_timeout)
        .keep_alive(true)
        // The buffer cap alone let a single 100 KB header through (a read may overshoot it);
        // hyper's header size limit is exact and answers 431.
        .max_header_size(cfg.max_header_bytes)
        .max_buf_size(READ_BUFFER.max(cfg.max_header_bytes));
    let builder = Arc::new(builder);
    let gauge = state.op_metrics.connections(kind as usize).clone();
    loop {
        // Waiting for a permit before accepting leaves excess connections in the backlog.
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            _ = shutdown.changed() => break,
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        let builder = builder.clone();
        let watcher = graceful.watcher();
        let gauge = gauge.clone();
        gauge.increment(1.0);
        tokio::spawn(async move {
            serve(stream, peer, kind, state, builder, watcher).await;
            gauge.decrement(1.0);
            drop(permit);
        });
    }
    let grace = state.config.server.shutdown_grace;
    if tokio::time::timeout(grace, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!(listener = ?kind, "connections still open after the shutdown grace period");
    }
}

/// One connection: the PROXY header when required (before hyper sees a byte), then HTTP.
async fn serve(
    mut stream: TcpStream,
    mut peer: SocketAddr,
    kind: Listener,
    state: Arc<AppState>,
    builder: Arc<http1::Builder>,
    watcher: Watcher,
) {
    let cfg = &state.config.server;
    if kind == Listener::Ingest && cfg.proxy_protocol {
        match proxy::read_header(&mut stream, peer, cfg.header_read_timeout).await {
            Ok(client) => peer = client,
            Err(e) => {
                tracing::debug!(error = %e, %peer, "connection closed: no valid PROXY header");
                return;
            }
        }
    }
    let write_timeout = cfg.write_timeout;
    let service = service_fn(move |req: Request<Incoming>| {
        let state = state.clone();
        async move {
            let mut req = req.map(RequestBody::new);
            let mut resp = match kind {
                Listener::Ingest => crate::ingest::handle(&state, &mut req, peer.ip()).await,
                Listener::Ops => crate::ops::handle(&state, &mut req).await,
            };
            // Whatever the handler refused before reading the body: drain it or say
            // `Connection: close`, so a keep-alive client never reuses a dead connection.
            req.into_body()
                .settle(&mut resp, state.config.server.body_read_timeout);
            Ok::<_, Infallible>(resp)
        }
    });
    let io = WriteDeadline::new(stream, write_timeout);
    let conn = builder.serve_connection(TokioIo::new(io), service);
    if let Err(e) = watcher.watch(conn).await {
        tracing::debug!(error = %e, %peer, "connection ended with an error");
    }
}
