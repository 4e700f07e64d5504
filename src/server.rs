//! The HTTP servers: accept loops, connection caps, the PROXY protocol header, TLS, HTTP/1.1
//! and HTTP/2, header read and response write timeouts, the header size cap, keep-alive after refusals, and graceful
//! shutdown. The only module that touches hyper connection types.
//!
//! - `conn`: one connection: handshake, protocol choice, hyper's limits, idle and shutdown.
//! - `tls` / `reload`: the certificate presented, and picking it up again.
//! - `sniff`: h2c prior knowledge on plain listeners.
//! - `deadline`: the write timeout under every connection.
//! - `proxy`: the PROXY v1/v2 header that names the client (`server.proxy_protocol`), read
//!   before the TLS handshake or the HTTP/2 preface.

use std::net::SocketAddr;
use std::sync::Arc;

use hyper::body::Incoming;
use hyper::{Request, Version};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

use crate::body::RequestBody;
use crate::config::ServerConfig;
use crate::edge::AppState;
use crate::http::Resp;

mod conn;
mod deadline;
mod proxy;
mod reload;
mod sniff;
mod tls;

pub use conn::Protocol;
pub use tls::{CertStore, TlsError};

/// Which listener a server runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listener {
    Ingest,
    Ops,
}

/// The TLS side of the edge: one certificate store shared by the listeners that use TLS.
#[derive(Clone, Debug)]
pub struct Tls {
    store: Arc<CertStore>,
    /// `server.ops_tls`: the ops listener speaks TLS too.
    on_ops: bool,
}

impl Tls {
    /// `None` when `server.tls_cert_file` is not set; an unreadable or mismatched pair is an
    /// error, so a misconfigured edge does not start.
    pub fn from_config(cfg: &ServerConfig) -> Result<Option<Tls>, TlsError> {
        let (Some(cert), Some(key)) = (&cfg.tls_cert_file, &cfg.tls_key_file) else {
            return Ok(None);
        };
        Ok(Some(Tls {
            store: CertStore::open(cert, key)?,
            on_ops: cfg.ops_tls,
        }))
    }

    /// Reads the certificate files again now (what `SIGHUP` does); `false` when they did not
    /// load, and the previous certificate stays.
    pub fn reload(&self) -> bool {
        reload::reload(&self.store, "request")
    }

    /// Watches the files and `SIGHUP` until shutdown.
    pub async fn watch(self, shutdown: watch::Receiver<bool>) {
        reload::watch(self.store, shutdown).await
    }

    fn for_listener(&self, kind: Listener) -> Option<&Arc<CertStore>> {
        (kind == Listener::Ingest || self.on_ops).then_some(&self.store)
    }
}

/// Accepts connections until shutdown, then waits (bounded) for open ones to finish.
pub async fn run(
    listener: TcpListener,
    kind: Listener,
    state: Arc<AppState>,
    tls: Option<Tls>,
    mut shutdown: watch::Receiver<bool>,
) {
    let cfg = &state.config.server;
    let acceptor = match tls
        .as_ref()
        .and_then(|t| t.for_listener(kind))
        .map(|s| s.acceptor())
    {
        Some(Ok(a)) => Some(a),
        Some(Err(e)) => {
            // Only a provider without TLS 1.2/1.3 gets here; ring has both.
            tracing::error!(listener = ?kind, error = %e, "TLS setup failed; listener not started");
            return;
        }
        None => None,
    };
    let protocols = Arc::new(conn::Protocols::new(cfg, acceptor));
    let slots = cfg.max_connections.max(1);
    let permits = Arc::new(Semaphore::new(slots));
    let gauge = state.op_metrics.connections(kind as usize).clone();
    loop {
        // Waiting for a permit before accepting leaves excess connections in the backlog.
        let permit = tokio::select! {
            p = permits.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            _ = stopping(&mut shutdown) => break,
        };
        let (mut stream, mut peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(c) => c,
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = stopping(&mut shutdown) => break,
        };
        let _ = stream.set_nodelay(true);
        let state = state.clone();
        let protocols = protocols.clone();
        let shutdown = shutdown.clone();
        let gauge = gauge.clone();
        let tls_on = protocols.tls();
        gauge.increment(1.0);
        tokio::spawn(async move {
            let cfg = &state.config.server;
            if kind == Listener::Ingest && cfg.proxy_protocol {
                match proxy::read_header(&mut stream, peer, cfg.header_read_timeout).await {
                    Ok(client) => peer = client,
                    Err(e) => {
                        tracing::debug!(error = %e, %peer, "connection closed: no valid PROXY header");
                        gauge.decrement(1.0);
                        drop(permit);
                        return;
                    }
                }
            }
            let metrics = state.clone();
            let seen = |p| {
                metrics
                    .op_metrics
                    .connection_opened(kind as usize, p, tls_on)
            };
            let handle = move |req| answer(state.clone(), kind, peer, req);
            // The permit is held through the handshake: a slow one costs a slot, bounded by
            // the handshake timeout.
            if let Err(e) = protocols.serve(stream, shutdown, seen, handle).await {
                tracing::debug!(error = %e, %peer, "connection ended with an error");
            }
            gauge.decrement(1.0);
            drop(permit);
        });
    }
    drop(listener);
    // Every open connection holds a permit: all of them back means all connections closed.
    let grace = state.config.server.shutdown_grace;
    let all = u32::try_from(slots).unwrap_or(u32::MAX);
    if tokio::time::timeout(grace, permits.acquire_many(all))
        .await
        .is_err()
    {
        tracing::warn!(listener = ?kind, "connections still open after the shutdown grace period");
    }
}

/// Resolves once shutdown has begun (or the edge that could begin it is gone). The watch
/// guard is dropped inside, so the future stays `Send`.
async fn stopping(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|stop| *stop).await;
}

/// One request through the listener's handler, then the body settled.
async fn answer(
    state: Arc<AppState>,
    kind: Listener,
    peer: SocketAddr,
    req: Request<Incoming>,
) -> Resp {
    let version = req.version();
    let mut req = req.map(RequestBody::new);
    let mut resp = match kind {
        Listener::Ingest => crate::ingest::handle(&state, &mut req, peer.ip()).await,
        Listener::Ops => crate::ops::handle(&state, &mut req).await,
    };
    if version == Version::HTTP_2 {
        // An unread HTTP/2 body costs only its stream: hyper resets it after the response
        // (NO_ERROR), and `Connection: close` is not allowed in HTTP/2.
        return resp;
    }
    // Whatever the handler refused before reading the body: drain it or say
    // `Connection: close`, so a keep-alive client never reuses a dead connection.
    req.into_body()
        .settle(&mut resp, state.config.server.body_read_timeout);
    resp
}
