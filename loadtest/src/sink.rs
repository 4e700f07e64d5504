//! A blackhole HTTP/1.1 server: reads every request body to the end, counts requests, body
//! bytes and the items in them (remote_write samples, OTLP spans: see `count`), and answers a
//! fixed status (204 by default). Used as the upstream of the edge and of vmagent so that both
//! forward to the same, near-free receiver, and what each *delivered* is counted the same way.
//!
//! `GET /__sink/stats` returns the counters as JSON (so a script, or `loadtest --observe-sink`,
//! can tell what was delivered when). The sink stops on SIGINT/SIGTERM or after `lifetime`, printing the final
//! counters as one JSON line.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

pub mod count;

/// Counters shared by all connections.
#[derive(Debug, Default)]
struct Counters {
    /// Requests answered with the configured status.
    requests: AtomicU64,
    /// Request body bytes read.
    bytes: AtomicU64,
    /// remote_write samples (and histograms) in the bodies.
    samples: AtomicU64,
    /// OTLP spans in the bodies.
    spans: AtomicU64,
    /// Requests whose items could not be counted (an encoding the sink does not read).
    uncounted: AtomicU64,
}

impl Counters {
    fn json(&self) -> String {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        format!(
            "{{\"requests\":{},\"bytes\":{},\"samples\":{},\"spans\":{},\"uncounted\":{}}}",
            get(&self.requests),
            get(&self.bytes),
            get(&self.samples),
            get(&self.spans),
            get(&self.uncounted)
        )
    }
}

/// Serves until a signal or `lifetime` elapses. `listen` must be a loopback address.
pub async fn serve(
    listen: SocketAddr,
    status: StatusCode,
    lifetime: Duration,
) -> std::io::Result<()> {
    if !listen.ip().is_loopback() {
        return Err(std::io::Error::other(format!(
            "refusing non-loopback listen address {listen}"
        )));
    }
    let listener = TcpListener::bind(listen).await?;
    // The first stdout line tells a script which port was bound (useful with port 0).
    let mut out = tokio::io::stdout();
    out.write_all(format!("listening on {}\n", listener.local_addr()?).as_bytes())
        .await?;
    out.flush().await?;

    let counters = Arc::new(Counters::default());
    let deadline = tokio::time::sleep(lifetime);
    tokio::pin!(deadline);
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                let counters = Arc::clone(&counters);
                tokio::spawn(async move {
                    let svc = service_fn(move |req| handle(req, Arc::clone(&counters), status));
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
            _ = &mut deadline => break,
            _ = tokio::signal::ctrl_c() => break,
            _ = term.recv() => break,
        }
    }
    out.write_all(format!("{}\n", counters.json()).as_bytes())
        .await?;
    out.flush().await
}

async fn handle(
    req: Request<Incoming>,
    counters: Arc<Counters>,
    status: StatusCode,
) -> Result<Response<Full<Bytes>>, Infallible> {
    if req.method() == Method::GET && req.uri().path() == "/__sink/stats" {
        let mut resp = Response::new(Full::new(Bytes::from(counters.json())));
        resp.headers_mut().insert(
            hyper::header::CONTENT_TYPE,
            hyper::header::HeaderValue::from_static("application/json"),
        );
        return Ok(resp);
    }
    let header = |name| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let content_type = header(hyper::header::CONTENT_TYPE).unwrap_or_default();
    let encoding = header(hyper::header::CONTENT_ENCODING);
    let path = req.uri().path().to_owned();
    let mut body = req.into_body();
    let mut buf = Vec::new();
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(f) => buf.extend_from_slice(f.data_ref().map_or(&[][..], |d| &d[..])),
            Err(_) => break,
        }
    }
    let items = count::count(&path, &content_type, encoding.as_deref(), &buf);
    // Items first, then the request: a reader that sees the request counted sees its items.
    counters.samples.fetch_add(items.samples, Ordering::Relaxed);
    counters.spans.fetch_add(items.spans, Ordering::Relaxed);
    counters
        .uncounted
        .fetch_add(u64::from(items.uncounted), Ordering::Relaxed);
    counters.requests.fetch_add(1, Ordering::Relaxed);
    counters
        .bytes
        .fetch_add(buf.len() as u64, Ordering::Relaxed);
    let mut resp = Response::new(Full::new(Bytes::new()));
    *resp.status_mut() = status;
    Ok(resp)
}

/// Binds `count` ephemeral loopback ports at once (so they are distinct), then releases them
/// and returns their numbers for a script to hand out.
pub fn free_ports(count: usize) -> std::io::Result<Vec<u16>> {
    let listeners = (0..count)
        .map(|_| std::net::TcpListener::bind("127.0.0.1:0"))
        .collect::<Result<Vec<_>, _>>()?;
    listeners
        .iter()
        .map(|l| l.local_addr().map(|a| a.port()))
        .collect()
}
