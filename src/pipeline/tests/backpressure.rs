//! Latency backpressure at the admission point: a slow but healthy upstream delays requests
//! instead of refusing them and the spool stays near the threshold; a failing upstream makes
//! nobody wait, and a really full spool still refuses.

use std::time::{Duration, Instant};

use super::mock::Mock;
use super::*;

fn frame_len() -> u64 {
    record::encode_frame(&batch(Queue::RemoteWrite, vec![0u8; 100]), 0)
        .unwrap()
        .len() as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_healthy_upstream_delays_requests_instead_of_refusing_them() {
    let tmp = tempfile::tempdir().unwrap();
    let up = Mock::start().await;
    up.state.lock().unwrap().delay = Duration::from_millis(10);
    let frame = frame_len();
    let mut cfg = config(tmp.path());
    cfg.remote_write_upstream = Some(up.url("/api/v1/write"));
    // 8 senders x 12 batches = 96 frames: more than the spool holds, far more than the
    // threshold; the senders are much faster than one delivery per 10 ms.
    cfg.max_bytes = 60 * frame;
    cfg.backpressure_bytes = 6 * frame;
    cfg.backpressure_max_wait = Duration::from_secs(20);
    let p = Pipeline::start(cfg).await.unwrap();
    let mut senders = tokio::task::JoinSet::new();
    for _ in 0..8 {
        let p = p.clone();
        senders.spawn(async move {
            let mut peak = 0;
            for _ in 0..12 {
                p.submit(batch(Queue::RemoteWrite, vec![0u8; 100])).await?;
                peak = peak.max(p.backlog(Queue::RemoteWrite).1);
            }
            Ok::<u64, HandoffError>(peak)
        });
    }
    let mut peak = 0;
    while let Some(r) = senders.join_next().await {
        peak = peak.max(
            r.unwrap()
                .expect("a healthy upstream must not cause a refusal"),
        );
    }
    // The threshold plus one batch per sender that passed the gate together.
    assert!(
        peak <= 14 * frame,
        "backlog peaked at {} frames",
        peak / frame
    );
    assert!(
        metric(
            &p,
            "ingest_backpressure_waits_total{queue=\"remote_write\"}"
        ) > 0.0
    );
    assert_eq!(
        metric(
            &p,
            "ingest_backpressure_timeouts_total{queue=\"remote_write\"}"
        ),
        0.0
    );
    mock::wait_until("all delivered", || up.delivered().len() == 96).await;
    p.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failing_upstream_makes_nobody_wait_and_a_full_spool_still_refuses() {
    let tmp = tempfile::tempdir().unwrap();
    let up = Mock::start().await;
    up.script(&[(503, None); 1000]);
    let frame = frame_len();
    let mut cfg = config(tmp.path());
    cfg.remote_write_upstream = Some(up.url("/api/v1/write"));
    cfg.max_bytes = 10 * frame;
    cfg.backpressure_bytes = 2 * frame;
    cfg.backpressure_max_wait = Duration::from_secs(30);
    let p = Pipeline::start(cfg).await.unwrap();
    let started = Instant::now();
    for _ in 0..10 {
        p.submit(batch(Queue::RemoteWrite, vec![0u8; 100]))
            .await
            .unwrap();
    }
    let full = p.submit(batch(Queue::RemoteWrite, vec![0u8; 100])).await;
    assert!(
        matches!(
            full,
            Err(HandoffError::Overloaded {
                retry_after_secs: 2
            })
        ),
        "{full:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "waited {:?} for an upstream that fails",
        started.elapsed()
    );
    p.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wait_is_bounded_then_the_batch_is_spooled() {
    let tmp = tempfile::tempdir().unwrap();
    let up = Mock::start().await;
    up.state.lock().unwrap().delay = Duration::from_secs(2);
    let frame = frame_len();
    let mut cfg = config(tmp.path());
    cfg.remote_write_upstream = Some(up.url("/api/v1/write"));
    cfg.max_bytes = 100 * frame;
    cfg.backpressure_bytes = frame;
    cfg.backpressure_max_wait = Duration::from_millis(100);
    let p = Pipeline::start(cfg).await.unwrap();
    let started = Instant::now();
    for _ in 0..3 {
        p.submit(batch(Queue::RemoteWrite, vec![0u8; 100]))
            .await
            .unwrap();
    }
    let took = started.elapsed();
    assert!(
        took >= Duration::from_millis(150) && took < Duration::from_millis(1500),
        "{took:?}"
    );
    assert!(
        metric(
            &p,
            "ingest_backpressure_timeouts_total{queue=\"remote_write\"}"
        ) >= 2.0
    );
    p.shutdown().await;
}
