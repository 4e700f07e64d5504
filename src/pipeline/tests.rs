//! Pipeline tests: durability and recovery of the spool, the size bound, group commit, the
//! in-memory mode and shutdown; forwarding is in `tests/forwarding.rs`.

mod backpressure;
mod forwarding;
mod mock;

use std::fs;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

use super::segment::{list_segments, segment_path};
use super::*;
use mock::{wait_until, Mock};

pub(super) const RW_V1: &str = "application/x-protobuf";
pub(super) const RW_V2: &str = "application/x-protobuf;proto=io.prometheus.write.v2.Request";

pub(super) fn batch(queue: Queue, body: impl Into<Bytes>) -> Batch {
    let (content_type, content_encoding) = match queue {
        Queue::RemoteWrite => (RW_V1, Some("snappy")),
        _ => ("application/json", None),
    };
    Batch {
        queue,
        token_id: Arc::from("tok-1"),
        tenant: Some(Arc::from("team-a")),
        content_type,
        content_encoding,
        body: body.into(),
        items: 3,
        json_piece: None,
    }
}

pub(super) fn config(dir: &Path) -> PipelineConfig {
    let mut cfg = PipelineConfig::new(dir);
    cfg.retry_max_backoff = Duration::from_millis(20);
    cfg.upstream_timeout = Duration::from_secs(5);
    cfg.tenant_header = Some("X-Scope-OrgID".into());
    // These tests use opaque bodies and follow one request per record; merging needs real
    // bodies and is tested on its own (`forwarding::merged_*`).
    cfg.forward_batch_bytes = 0;
    cfg
}

pub(super) fn metric(p: &Pipeline, series: &str) -> f64 {
    let mut out = String::new();
    p.render_metrics(&mut out);
    out.lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("no series {series} in\n{out}"))
}

/// Non-empty segment files of a queue, oldest first.
pub(super) fn segments(dir: &Path, queue: Queue) -> Vec<PathBuf> {
    let qdir = queue_dir(dir, queue);
    list_segments(&qdir)
        .unwrap()
        .into_iter()
        .map(|id| segment_path(&qdir, id))
        .filter(|p| fs::metadata(p).unwrap().len() > 0)
        .collect()
}

pub(super) fn dump(dir: &Path, queue: Queue) -> Vec<serde_json::Value> {
    let mut out = Vec::new();
    spool_dump(dir, queue, usize::MAX, &mut out).unwrap();
    String::from_utf8(out)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn accepted_batches_survive_a_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let p = Pipeline::start(config(tmp.path())).await.unwrap();
    for i in 0..10u8 {
        p.submit(batch(Queue::RemoteWrite, vec![i; 100]))
            .await
            .unwrap();
    }
    p.submit(batch(Queue::Logs, &b"{\"log\":1}"[..]))
        .await
        .unwrap();
    assert_eq!(p.backlog(Queue::RemoteWrite).0, 10);
    // No shutdown: dropping is the closest in-process thing to a crash (no final ack write).
    drop(p);
    let p = Pipeline::start(config(tmp.path())).await.unwrap();
    assert_eq!(p.backlog(Queue::RemoteWrite).0, 10);
    assert_eq!(p.backlog(Queue::Logs).0, 1);
    assert_eq!(p.backlog(Queue::Traces), (0, 0));
    p.shutdown().await;
    let rows = dump(tmp.path(), Queue::RemoteWrite);
    assert_eq!(rows.len(), 10);
    assert_eq!(rows[0]["token_id"], "tok-1");
    assert_eq!(rows[0]["tenant"], "team-a");
    assert_eq!(rows[0]["content_encoding"], "snappy");
    assert_eq!(rows[0]["body_bytes"], 100);
    let stats = spool_stats(tmp.path()).unwrap();
    let rw = &stats.queues[0];
    assert_eq!(
        (rw.queue, rw.pending_records, rw.bad_tail_bytes),
        ("remote_write", 10, 0)
    );
    assert!(rw.oldest_pending_ms.is_some());
    assert_eq!(stats.queues[2].pending_records, 1);
    assert!(stats.to_string().contains("remote_write"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn torn_tail_is_cut_and_everything_before_it_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let p = Pipeline::start(config(tmp.path())).await.unwrap();
    for i in 0..5u8 {
        p.submit(batch(Queue::Traces, vec![i; 50])).await.unwrap();
    }
    p.shutdown().await;
    let seg = segments(tmp.path(), Queue::Traces).pop().unwrap();
    let good_len = fs::metadata(&seg).unwrap().len();
    // A crash in the middle of writing a sixth record: its first 30 bytes made it to disk.
    let sixth = record::encode_frame(&batch(Queue::Traces, vec![9u8; 50]), 1).unwrap();
    let mut data = fs::read(&seg).unwrap();
    data.extend_from_slice(&sixth[..30]);
    fs::write(&seg, &data).unwrap();
    assert_eq!(
        spool_stats(tmp.path()).unwrap().queues[1].bad_tail_bytes,
        30
    );

    let p = Pipeline::start(config(tmp.path())).await.unwrap();
    assert_eq!(p.backlog(Queue::Traces).0, 5);
    assert_eq!(fs::metadata(&seg).unwrap().len(), good_len, "torn tail cut");
    p.submit(batch(Queue::Traces, vec![7u8; 50])).await.unwrap();
    p.shutdown().await;
    let p = Pipeline::start(config(tmp.path())).await.unwrap();
    assert_eq!(
        p.backlog(Queue::Traces).0,
        6,
        "appends after recovery are readable"
    );
    p.shutdown().await;
    let bodies: Vec<_> = dump(tmp.path(), Queue::Traces)
        .iter()
        .map(|r| r["body_bytes"].clone())
        .collect();
    assert_eq!(bodies.len(), 6);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_record_is_cut_with_the_rest_of_its_segment() {
    let tmp = tempfile::tempdir().unwrap();
    let p = Pipeline::start(config(tmp.path())).await.unwrap();
    for i in 0..4u8 {
        p.submit(batch(Queue::RemoteWrite, vec![i; 40]))
            .await
            .unwrap();
    }
    p.shutdown().await;
    let seg = segments(tmp.path(), Queue::RemoteWrite).pop().unwrap();
    let mut data = fs::read(&seg).unwrap();
    let frame_len = data.len() / 4;
    // Flip one body byte of the third record (bit rot, or a write torn inside the page cache).
    data[2 * frame_len + frame_len - 5] ^= 0xff;
    fs::write(&seg, &data).unwrap();
    let p = Pipeline::start(config(tmp.path())).await.unwrap();
    assert_eq!(p.backlog(Queue::RemoteWrite).0, 2);
    assert_eq!(fs::metadata(&seg).unwrap().len(), 2 * frame_len as u64);
    p.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_share_fsyncs() {
    let tmp = tempfile::tempdir().unwrap();
    let p = Pipeline::start(config(tmp.path())).await.unwrap();
    let n = 400;
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let p = p.clone();
        tasks.spawn(async move {
            p.submit(batch(Queue::RemoteWrite, vec![(i % 251) as u8; 200]))
                .await
        });
    }
    while let Some(r) = tasks.join_next().await {
        r.unwrap().unwrap();
    }
    let fsyncs = metric(&p, "ingest_spool_fsyncs_total{queue=\"remote_write\"}");
    assert_eq!(p.backlog(Queue::RemoteWrite).0, n as u64);
    assert!(
        fsyncs >= 1.0 && fsyncs < (n / 4) as f64,
        "{fsyncs} fsyncs for {n} appends"
    );
    p.shutdown().await;
    assert_eq!(
        spool_stats(tmp.path()).unwrap().queues[0].pending_records,
        n as u64
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_spool_refuses_then_recovers_as_the_upstream_drains() {
    let tmp = tempfile::tempdir().unwrap();
    let up = Mock::start().await;
    up.script(&[(503, None); 15]);
    let frame = record::encode_frame(&batch(Queue::RemoteWrite, vec![0u8; 100]), 0)
        .unwrap()
        .len() as u64;
    let mut cfg = config(tmp.path());
    cfg.max_bytes = 10 * frame;
    cfg.remote_write_upstream = Some(up.url("/api/v1/write"));
    let p = Pipeline::start(cfg).await.unwrap();
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
    wait_until("drain", || p.backlog(Queue::RemoteWrite).0 == 0).await;
    p.submit(batch(Queue::RemoteWrite, vec![0u8; 100]))
        .await
        .unwrap();
    wait_until("11th delivered", || up.delivered().len() == 11).await;
    assert!(metric(&p, "ingest_forward_retries_total{queue=\"remote_write\"}") >= 15.0);
    p.shutdown().await;

    // Without an upstream nothing drains, and the hint says so.
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = config(tmp.path());
    cfg.max_bytes = 2 * frame;
    let p = Pipeline::start(cfg).await.unwrap();
    for _ in 0..2 {
        p.submit(batch(Queue::RemoteWrite, vec![0u8; 100]))
            .await
            .unwrap();
    }
    let full = p.submit(batch(Queue::RemoteWrite, vec![0u8; 100])).await;
    assert!(matches!(
        full,
        Err(HandoffError::Overloaded {
            retry_after_secs: 30
        })
    ));
    p.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_mode_forwards_and_is_bounded() {
    let tmp = tempfile::tempdir().unwrap();
    let up = Mock::start().await;
    let mut cfg = config(tmp.path());
    cfg.durable = false;
    cfg.remote_write_upstream = Some(up.url("/w"));
    let p = Pipeline::start(cfg.clone()).await.unwrap();
    for i in 0..5u8 {
        p.submit(batch(Queue::RemoteWrite, vec![i; 10]))
            .await
            .unwrap();
    }
    wait_until("5 delivered", || up.delivered().len() == 5).await;
    wait_until("backlog empty", || p.backlog(Queue::RemoteWrite) == (0, 0)).await;
    p.shutdown().await;
    assert!(
        !queue_dir(tmp.path(), Queue::RemoteWrite).exists(),
        "memory mode writes no spool"
    );
    cfg.max_bytes = 400;
    cfg.remote_write_upstream = None;
    let p = Pipeline::start(cfg).await.unwrap();
    p.submit(batch(Queue::RemoteWrite, vec![0; 100]))
        .await
        .unwrap();
    p.submit(batch(Queue::RemoteWrite, vec![0; 100]))
        .await
        .unwrap();
    let full = p.submit(batch(Queue::RemoteWrite, vec![0; 100])).await;
    assert!(matches!(full, Err(HandoffError::Overloaded { .. })));
    p.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_finishes_appends_then_refuses() {
    let tmp = tempfile::tempdir().unwrap();
    let p = Pipeline::start(config(tmp.path())).await.unwrap();
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..50u8 {
        let p = p.clone();
        tasks.spawn(async move { p.submit(batch(Queue::Logs, vec![i; 10])).await });
    }
    let started = Instant::now();
    let mut ok = 0;
    p.shutdown().await;
    while let Some(r) = tasks.join_next().await {
        ok += usize::from(r.unwrap().is_ok());
    }
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(matches!(
        p.submit(batch(Queue::Logs, vec![1])).await,
        Err(HandoffError::Closed)
    ));
    // Every append that reported success is on disk.
    assert_eq!(
        spool_stats(tmp.path()).unwrap().queues[2].pending_records,
        ok as u64
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_config_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let mut cfg = config(tmp.path());
    // https is allowed since SPEC §15 (TLS to upstreams); other schemes are not.
    cfg.remote_write_upstream = Some("ftp://127.0.0.1:1/w".into());
    assert!(matches!(
        Pipeline::start(cfg).await,
        Err(PipelineError::Config(_))
    ));
    // A CA file or a credential file that cannot be read stops the start, not a delivery.
    let mut cfg = config(tmp.path());
    cfg.upstream_ca_file = Some(tmp.path().join("missing-ca.pem"));
    assert!(matches!(
        Pipeline::start(cfg).await,
        Err(PipelineError::Config(_))
    ));
    let not_pem = tmp.path().join("not.pem");
    std::fs::write(&not_pem, "hello").unwrap();
    let mut cfg = config(tmp.path());
    cfg.upstream_ca_file = Some(not_pem);
    assert!(matches!(
        Pipeline::start(cfg).await,
        Err(PipelineError::Config(_))
    ));
    let mut cfg = config(tmp.path());
    cfg.upstream_credentials = Credentials::BearerFile(tmp.path().join("missing-token"));
    assert!(matches!(
        Pipeline::start(cfg).await,
        Err(PipelineError::Config(_))
    ));
    let mut cfg = config(tmp.path());
    cfg.max_bytes = 0;
    assert!(Pipeline::start(cfg).await.is_err());
    assert!("bogus".parse::<Queue>().is_err());
    assert_eq!("traces".parse::<Queue>().unwrap(), Queue::Traces);
}
