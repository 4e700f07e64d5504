//! The HTTP servers: accept loops, connection caps, header read timeouts and graceful
//! shutdown. The only module that touches hyper's connection types.

use std::convert::Infallible;
use std::sync::Arc;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

use crate::edge::AppState;

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
        .max_buf_size(64 << 10);
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
        let service = service_fn(move |req| {
            let state = state.clone();
            async move {
                let resp = match kind {
                    Listener::Ingest => crate::ingest::handle(&state, req, peer.ip()).await,
                    Listener::Ops => crate::ops::handle(&state, req).await,
                };
                Ok::<_, Infallible>(resp)
            }
        });
        let conn = builder.serve_connection(TokioIo::new(stream), service);
        let conn = graceful.watch(conn);
        let gauge = gauge.clone();
        gauge.increment(1.0);
        tokio::spawn(async move {
            if let Err(e) = conn.await {
                tracing::debug!(error = %e, %peer, "connection ended with an error");
            }
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
