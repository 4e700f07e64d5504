//! The hand-off of accepted batches to where they go (SPEC §10).
//!
//! This first version is a bounded in-memory queue per signal, drained by a forwarder task per
//! queue when an upstream is configured; when the bound is reached `submit` fails with
//! `Overloaded` (the edge answers `503`), so nothing acknowledged is silently dropped.

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Queue {
    RemoteWrite,
    Traces,
    Logs,
}

impl Queue {
    pub const ALL: [Queue; 3] = [Queue::RemoteWrite, Queue::Traces, Queue::Logs];

    pub fn label(self) -> &'static str {
        match self {
            Queue::RemoteWrite => "remote_write",
            Queue::Traces => "traces",
            Queue::Logs => "logs",
        }
    }
}

/// One accepted request, as it must reach the upstream.
pub struct Batch {
    pub queue: Queue,
    pub token_id: Arc<str>,
    pub tenant: Option<Arc<str>>,
    pub content_type: &'static str,
    pub content_encoding: Option<&'static str>,
    pub body: Bytes,
    pub items: u64,
}

pub struct PipelineConfig {
    pub data_dir: PathBuf,
    pub durable: bool,
    pub max_bytes: u64,
    pub segment_bytes: u64,
    pub remote_write_upstream: Option<String>,
    pub otlp_upstream: Option<String>,
    pub tenant_header: Option<String>,
    pub upstream_timeout: Duration,
    pub retry_max_backoff: Duration,
}

#[derive(Debug, thiserror::Error)]
pub enum HandoffError {
    #[error("pipeline full, retry after {retry_after_secs}s")]
    Overloaded { retry_after_secs: u32 },
}

#[derive(Debug, thiserror::Error)]
pub enum PipelineError {
    #[error("pipeline I/O error: {0}")]
    Io(#[from] std::io::Error),
}

#[derive(Clone)]
pub struct Pipeline {
    inner: Arc<Inner>,
}

struct Inner {
    queues: [Mutex<VecDeque<Batch>>; 3],
    bytes: AtomicU64,
    max_bytes: u64,
    notify: [tokio::sync::Notify; 3],
    forwarded: [AtomicU64; 3],
}

impl Pipeline {
    pub async fn start(cfg: PipelineConfig) -> Result<Pipeline, PipelineError> {
        let inner = Arc::new(Inner {
            queues: Default::default(),
            bytes: AtomicU64::new(0),
            max_bytes: cfg.max_bytes,
            notify: Default::default(),
            forwarded: Default::default(),
        });
        let client = reqwest::Client::builder()
            .timeout(cfg.upstream_timeout)
            .build()
            .map_err(|e| std::io::Error::other(e.to_string()))?;
        for (i, q) in Queue::ALL.into_iter().enumerate() {
            let url = match q {
                Queue::RemoteWrite => cfg.remote_write_upstream.clone(),
                Queue::Traces => cfg
                    .otlp_upstream
                    .as_ref()
                    .map(|u| format!("{}/v1/traces", u.trim_end_matches('/'))),
                Queue::Logs => cfg
                    .otlp_upstream
                    .as_ref()
                    .map(|u| format!("{}/v1/logs", u.trim_end_matches('/'))),
            };
            if let Some(url) = url {
                tokio::spawn(forward(
                    inner.clone(),
                    i,
                    url,
                    client.clone(),
                    cfg.tenant_header.clone(),
                ));
            }
        }
        Ok(Pipeline { inner })
    }

    pub async fn submit(&self, batch: Batch) -> Result<(), HandoffError> {
        let len = batch.body.len() as u64;
        let prev = self.inner.bytes.fetch_add(len, Relaxed);
        if prev + len > self.inner.max_bytes {
            self.inner.bytes.fetch_sub(len, Relaxed);
            return Err(HandoffError::Overloaded {
                retry_after_secs: 5,
            });
        }
        let i = batch.queue as usize;
        self.inner.queues[i]
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push_back(batch);
        self.inner.notify[i].notify_one();
        Ok(())
    }

    pub async fn shutdown(&self) {}

    pub fn render_metrics(&self, out: &mut String) {
        use std::fmt::Write;
        let _ = writeln!(out, "# HELP ingest_pipeline_bytes Bytes waiting in the hand-off.\n# TYPE ingest_pipeline_bytes gauge\ningest_pipeline_bytes {}", self.inner.bytes.load(Relaxed));
        let _ = writeln!(out, "# HELP ingest_forwarded_records_total Batches delivered upstream.\n# TYPE ingest_forwarded_records_total counter");
        for q in Queue::ALL {
            let _ = writeln!(
                out,
                "ingest_forwarded_records_total{{queue=\"{}\"}} {}",
                q.label(),
                self.inner.forwarded[q as usize].load(Relaxed)
            );
        }
    }
}

async fn forward(
    inner: Arc<Inner>,
    i: usize,
    url: String,
    client: reqwest::Client,
    tenant_header: Option<String>,
) {
    let mut backoff = Duration::from_millis(100);
    loop {
        let next = {
            let q = inner.queues[i].lock().unwrap_or_else(|p| p.into_inner());
            q.front().map(|b| {
                (
                    b.body.clone(),
                    b.content_type,
                    b.content_encoding,
                    b.tenant.clone(),
                )
            })
        };
        let Some((body, ct, ce, tenant)) = next else {
            inner.notify[i].notified().await;
            continue;
        };
        let mut req = client
            .post(&url)
            .header("content-type", ct)
            .body(body.clone());
        if let Some(ce) = ce {
            req = req
                .header("content-encoding", ce)
                .header("x-prometheus-remote-write-version", "0.1.0");
        }
        if let (Some(h), Some(t)) = (&tenant_header, &tenant) {
            req = req.header(h.as_str(), t.as_ref());
        }
        let done = match req.send().await {
            Ok(r) if r.status().is_success() => true,
            Ok(r) if r.status().is_client_error() && r.status().as_u16() != 429 => {
                tracing::warn!(status = %r.status(), "upstream refused a batch; dropping it");
                true
            }
            _ => false,
        };
        if done {
            inner.queues[i]
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .pop_front();
            inner.bytes.fetch_sub(body.len() as u64, Relaxed);
            inner.forwarded[i].fetch_add(1, Relaxed);
            backoff = Duration::from_millis(100);
        } else {
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(Duration::from_secs(10));
        }
    }
}
