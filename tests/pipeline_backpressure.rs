//! Latency backpressure on a real edge (issue 16): with an upstream that is healthy but
//! slower than the senders, remote_write requests are delayed, never refused, and the spool
//! stays near `pipeline.backpressure_bytes` instead of filling up and answering `503`.

mod common;
#[path = "pipeline_support/upstreams.rs"]
mod upstreams;

use std::convert::Infallible;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

use common::TestEdge;
use upstreams::{now_ms, rw_request};

/// An upstream on 127.0.0.1 that reads each body, waits `delay`, answers 204 and counts.
async fn slow_upstream(delay: Duration) -> (String, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let count = Arc::new(AtomicU64::new(0));
    let seen = Arc::clone(&count);
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let seen = Arc::clone(&seen);
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let seen = Arc::clone(&seen);
                        async move {
                            let _ = req.into_body().collect().await;
                            tokio::time::sleep(delay).await;
                            seen.fetch_add(1, Ordering::Relaxed);
                            let resp = hyper::Response::builder()
                                .status(204)
                                .body(Full::new(Bytes::new()))
                                .unwrap();
                            Ok::<_, Infallible>(resp)
                        }
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), svc)
                    .await;
            });
        }
    });
    (format!("http://{addr}/api/v1/write"), count)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_healthy_upstream_delays_remote_write_instead_of_answering_503() {
    let (url, delivered) = slow_upstream(Duration::from_millis(15)).await;
    let edge = TestEdge::start_with(|c| {
        c.pipeline.remote_write_upstream = Some(url);
        // One upstream request per accepted request, so the upstream is the bottleneck.
        c.pipeline.forward_batch_bytes = 0;
        c.pipeline.max_bytes = 64 << 10;
        c.pipeline.backpressure_bytes = 4 << 10;
        c.pipeline.backpressure_max_wait = Duration::from_secs(20);
    })
    .await;
    let (_, token) = edge.remote_write_token().await;
    let t0 = now_ms() - 3_600_000;
    let (first, _) = rw_request("bp_probe", 0, 64, 4, t0);
    let frame = first.len() as u64;
    // 8 senders x 20 requests: several times what the spool holds.
    let (senders, per_sender) = (8u64, 20u64);
    assert!(
        senders * per_sender * frame > 2 * (64 << 10),
        "bodies too small: {frame}"
    );
    let mut tasks = tokio::task::JoinSet::new();
    for s in 0..senders {
        let (http, url, token) = (
            edge.http.clone(),
            edge.ingest_url("/api/v1/write"),
            token.clone(),
        );
        tasks.spawn(async move {
            let mut statuses = Vec::new();
            for i in 0..per_sender {
                let id = s * per_sender + i;
                let (body, _) = rw_request(&format!("bp_{s}"), id, 64, 4, t0 + id as i64 * 1000);
                let resp = http
                    .post(&url)
                    .bearer_auth(&token)
                    .header("content-type", "application/x-protobuf")
                    .header("content-encoding", "snappy")
                    .header("x-prometheus-remote-write-version", "0.1.0")
                    .timeout(Duration::from_secs(30))
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                statuses.push(resp.status().as_u16());
            }
            statuses
        });
    }
    let mut peak = 0.0f64;
    let sampler = async {
        loop {
            let b = edge
                .metric_value("ingest_spool_bytes{queue=\"remote_write\"}")
                .await
                .unwrap_or(0.0);
            peak = peak.max(b);
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    let all = async {
        let mut all = Vec::new();
        while let Some(r) = tasks.join_next().await {
            all.extend(r.unwrap());
        }
        all
    };
    let statuses = tokio::select! {
        s = all => s,
        _ = sampler => unreachable!(),
    };
    assert_eq!(statuses.len() as u64, senders * per_sender);
    assert!(statuses.iter().all(|s| *s == 204), "{statuses:?}");
    // The threshold, plus about one body per sender let in together.
    assert!(
        peak <= (4 << 10) as f64 + 2.0 * (senders * frame) as f64,
        "peak {peak}"
    );
    let waits = edge
        .metric_value("ingest_backpressure_waits_total{queue=\"remote_write\"}")
        .await
        .unwrap();
    assert!(waits > 0.0, "no request waited");
    let ok = upstreams::eventually(Duration::from_secs(30), || async {
        delivered.load(Ordering::Relaxed) == senders * per_sender
    })
    .await;
    assert!(ok, "delivered {}", delivered.load(Ordering::Relaxed));
    edge.stop().await;
}
