//! Forwarding tests against a scriptable local upstream: headers per queue, retries with
//! `Retry-After`, order, the dead letter, acknowledged-segment deletion, upstream outages.

use std::time::Duration;

use super::mock::{wait_until, Mock};
use super::{batch, config, metric, segments, RW_V1, RW_V2};
use crate::pipeline::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwards_each_queue_with_its_headers() {
    let tmp = tempfile::tempdir().unwrap();
    let up = Mock::start().await;
    let mut cfg = config(tmp.path());
    cfg.remote_write_upstream = Some(up.url("/api/v1/write"));
    cfg.otlp_upstream = Some(up.url("/otlp/"));
    let p = Pipeline::start(cfg).await.unwrap();
    p.submit(batch(Queue::RemoteWrite, &b"v1-body"[..]))
        .await
        .unwrap();
    let mut v2 = batch(Queue::RemoteWrite, &b"v2-body"[..]);
    v2.content_type = RW_V2;
    v2.tenant = None;
    p.submit(v2).await.unwrap();
    p.submit(batch(Queue::Traces, &b"{\"resourceSpans\":[]}"[..]))
        .await
        .unwrap();
    p.submit(batch(Queue::Logs, &b"{\"resourceLogs\":[]}"[..]))
        .await
        .unwrap();
    wait_until("4 deliveries", || up.received().len() == 4).await;
    let mut got = up.received();
    got.sort_by_key(|r| r.body.clone());
    let h = |i: usize, name: &str| {
        got[i]
            .headers
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
    };
    // Sorted by body: "v1-body", "v2-body", "{\"resourceLogs...", "{\"resourceSpans...".
    assert_eq!(&got[0].body[..], b"v1-body");
    assert_eq!(got[0].path, "/api/v1/write");
    assert_eq!(h(0, "content-type").as_deref(), Some(RW_V1));
    assert_eq!(h(0, "content-encoding").as_deref(), Some("snappy"));
    assert_eq!(
        h(0, "x-prometheus-remote-write-version").as_deref(),
        Some("0.1.0")
    );
    assert_eq!(h(0, "x-scope-orgid").as_deref(), Some("team-a"));
    assert_eq!(&got[1].body[..], b"v2-body");
    assert_eq!(h(1, "content-type").as_deref(), Some(RW_V2));
    assert_eq!(
        h(1, "x-prometheus-remote-write-version").as_deref(),
        Some("2.0.0")
    );
    assert_eq!(h(1, "x-scope-orgid"), None);
    assert_eq!(got[2].path, "/otlp/v1/logs");
    assert_eq!(got[3].path, "/otlp/v1/traces");
    assert_eq!(h(2, "content-type").as_deref(), Some("application/json"));
    assert_eq!(h(2, "content-encoding"), None);
    assert_eq!(h(2, "x-prometheus-remote-write-version"), None);
    assert_eq!(h(3, "x-scope-orgid").as_deref(), Some("team-a"));
    wait_until("backlog empty", || {
        Queue::ALL.iter().all(|q| p.backlog(*q).0 == 0)
    })
    .await;
    assert_eq!(
        metric(&p, "ingest_forwarded_records_total{queue=\"remote_write\"}"),
        2.0
    );
    assert_eq!(
        metric(&p, "ingest_forwarded_items_total{queue=\"remote_write\"}"),
        6.0
    );
    assert_eq!(
        metric(
            &p,
            "ingest_upstream_request_duration_seconds_count{queue=\"logs\"}"
        ),
        1.0
    );
    p.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_honour_retry_after_and_keep_order() {
    let tmp = tempfile::tempdir().unwrap();
    let up = Mock::start().await;
    up.script(&[(500, None), (429, Some("1")), (502, None)]);
    let mut cfg = config(tmp.path());
    cfg.remote_write_upstream = Some(up.url("/w"));
    let p = Pipeline::start(cfg).await.unwrap();
    for i in 0..5u8 {
        p.submit(batch(Queue::RemoteWrite, vec![i; 10]))
            .await
            .unwrap();
    }
    wait_until("5 delivered", || up.delivered().len() == 5).await;
    let got = up.received();
    assert_eq!(got.len(), 8);
    assert!(
        got.iter().take(4).all(|r| r.body[0] == 0),
        "head of line retried first"
    );
    let waited = got[2].at - got[1].at;
    assert!(
        waited >= Duration::from_millis(950),
        "Retry-After ignored: {waited:?}"
    );
    let order: Vec<u8> = up.delivered().iter().map(|b| b[0]).collect();
    assert_eq!(order, vec![0, 1, 2, 3, 4]);
    assert_eq!(
        metric(&p, "ingest_forward_retries_total{queue=\"remote_write\"}"),
        3.0
    );
    p.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn final_refusals_are_dead_lettered_not_retried() {
    let tmp = tempfile::tempdir().unwrap();
    let up = Mock::start().await;
    up.script(&[(400, None), (413, None)]);
    let mut cfg = config(tmp.path());
    cfg.otlp_upstream = Some(up.url(""));
    let p = Pipeline::start(cfg).await.unwrap();
    for i in 0..3u8 {
        p.submit(batch(Queue::Traces, vec![b'a' + i; 10]))
            .await
            .unwrap();
    }
    wait_until("backlog empty", || p.backlog(Queue::Traces).0 == 0).await;
    assert_eq!(up.received().len(), 3, "no retries of a 4xx");
    assert_eq!(
        metric(&p, "ingest_dead_lettered_total{queue=\"traces\"}"),
        2.0
    );
    assert_eq!(
        metric(&p, "ingest_forwarded_records_total{queue=\"traces\"}"),
        1.0
    );
    p.shutdown().await;
    let mut out = Vec::new();
    assert_eq!(
        dead_letter_dump(tmp.path(), Queue::Traces, 10, &mut out).unwrap(),
        2
    );
    assert_eq!(
        spool_stats(tmp.path()).unwrap().queues[1].dead_letter_records,
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn delivered_segments_are_deleted_and_not_resent_after_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let up = Mock::start().await;
    let mut cfg = config(tmp.path());
    cfg.segment_bytes = 1000;
    cfg.remote_write_upstream = Some(up.url("/w"));
    let p = Pipeline::start(cfg.clone()).await.unwrap();
    for i in 0..40u8 {
        p.submit(batch(Queue::RemoteWrite, vec![i; 150]))
            .await
            .unwrap();
    }
    wait_until("40 delivered", || up.delivered().len() == 40).await;
    wait_until("segments deleted", || {
        segments(tmp.path(), Queue::RemoteWrite).len() <= 2
    })
    .await;
    p.shutdown().await;
    let p = Pipeline::start(cfg).await.unwrap();
    assert_eq!(p.backlog(Queue::RemoteWrite), (0, 0));
    p.submit(batch(Queue::RemoteWrite, vec![99; 150]))
        .await
        .unwrap();
    wait_until("41st delivered", || up.received().len() >= 41).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(
        up.received().len(),
        41,
        "nothing delivered before the restart was sent again"
    );
    assert_eq!(up.received()[40].body[0], 99);
    p.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_down_then_up_loses_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    // Reserve a port, then close it: connection refused until the mock binds it.
    let addr = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let mut cfg = config(tmp.path());
    cfg.remote_write_upstream = Some(format!("http://{addr}/w"));
    cfg.forward_concurrency = 4;
    let p = Pipeline::start(cfg).await.unwrap();
    for i in 0..20u8 {
        p.submit(batch(Queue::RemoteWrite, vec![i; 10]))
            .await
            .unwrap();
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(metric(&p, "ingest_forward_retries_total{queue=\"remote_write\"}") > 0.0);
    assert_eq!(p.backlog(Queue::RemoteWrite).0, 20);
    let up = Mock::start_on(addr).await;
    wait_until("backlog empty", || p.backlog(Queue::RemoteWrite).0 == 0).await;
    let mut got: Vec<u8> = up.delivered().iter().map(|b| b[0]).collect();
    got.sort_unstable();
    assert_eq!(got, (0..20).collect::<Vec<u8>>());
    p.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarding_is_not_paced_by_the_ack_timer() {
    let tmp = tempfile::tempdir().unwrap();
    let up = Mock::start().await;
    let mut cfg = config(tmp.path());
    cfg.remote_write_upstream = Some(up.url("/w"));
    let p = Pipeline::start(cfg).await.unwrap();
    for i in 0..300u32 {
        p.submit(batch(Queue::RemoteWrite, i.to_le_bytes().to_vec()))
            .await
            .unwrap();
    }
    let started = std::time::Instant::now();
    wait_until("300 delivered", || up.delivered().len() == 300).await;
    // One record per persist tick (200 ms) would take a minute.
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    p.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_garbled_ack_file_means_resending_not_losing() {
    let tmp = tempfile::tempdir().unwrap();
    let up = Mock::start().await;
    let mut cfg = config(tmp.path());
    cfg.remote_write_upstream = Some(up.url("/w"));
    let p = Pipeline::start(cfg.clone()).await.unwrap();
    for i in 0..5u8 {
        p.submit(batch(Queue::RemoteWrite, vec![i; 10]))
            .await
            .unwrap();
    }
    wait_until("5 delivered", || up.delivered().len() == 5).await;
    p.shutdown().await;
    let ack = queue_dir(tmp.path(), Queue::RemoteWrite).join("ack");
    std::fs::write(&ack, b"garbage").unwrap();
    let p = Pipeline::start(cfg).await.unwrap();
    wait_until("resent", || up.delivered().len() == 10).await;
    let mut again: Vec<u8> = up.delivered()[5..].iter().map(|b| b[0]).collect();
    again.sort_unstable();
    assert_eq!(
        again,
        vec![0, 1, 2, 3, 4],
        "at-least-once: everything still on disk is sent again"
    );
    p.shutdown().await;
}

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

/// Submits `batches` to a pipeline without upstream, then restarts it with `up` as upstream,
/// so the forwarder finds them all waiting at once (the backlog case merging is for).
async fn backlog_then_forward(
    dir: &std::path::Path,
    batches: Vec<Batch>,
    up: &Mock,
    batch_bytes: u64,
) -> Pipeline {
    let mut cfg = config(dir);
    cfg.forward_batch_bytes = batch_bytes;
    let p = Pipeline::start(cfg.clone()).await.unwrap();
    for b in batches {
        p.submit(b).await.unwrap();
    }
    p.shutdown().await;
    cfg.remote_write_upstream = Some(up.url("/w"));
    cfg.otlp_upstream = Some(up.url(""));
    Pipeline::start(cfg).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merged_remote_write_keeps_every_sample_in_order() {
    use crate::remote_write::proto_v1::WriteRequest;
    use prost::Message;
    let tmp = tempfile::tempdir().unwrap();
    let up = Mock::start().await;
    let bodies: Vec<Vec<u8>> = (0..30)
        .map(|i| {
            std::fs::read(format!("{FIXTURES}/prometheus-2.42/body_{:03}.bin", i % 6)).unwrap()
        })
        .collect();
    let batches = bodies
        .iter()
        .map(|b| batch(Queue::RemoteWrite, b.clone()))
        .collect();
    let p = backlog_then_forward(tmp.path(), batches, &up, 4 << 20).await;
    wait_until("backlog empty", || p.backlog(Queue::RemoteWrite).0 == 0).await;
    let got = up.delivered();
    assert_eq!(got.len(), 1, "30 waiting records go as one request");
    let unsnap = |b: &[u8]| snap::raw::Decoder::new().decompress_vec(b).unwrap();
    let want: Vec<u8> = bodies.iter().flat_map(|b| unsnap(b)).collect();
    assert_eq!(unsnap(&got[0]), want, "the same bytes, in spool order");
    let req = WriteRequest::decode(&unsnap(&got[0])[..]).unwrap();
    let samples: usize = req.timeseries.iter().map(|t| t.samples.len()).sum();
    assert_eq!(samples, 5 * 2353);
    let headers = &up.received()[0].headers;
    assert_eq!(headers.get("content-encoding").unwrap(), "snappy");
    assert_eq!(headers.get("x-scope-orgid").unwrap(), "team-a");
    assert_eq!(
        metric(&p, "ingest_forwarded_records_total{queue=\"remote_write\"}"),
        30.0
    );
    assert_eq!(
        metric(&p, "ingest_forwarded_items_total{queue=\"remote_write\"}"),
        90.0
    );
    p.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merged_requests_respect_the_size_limit() {
    let tmp = tempfile::tempdir().unwrap();
    let up = Mock::start().await;
    let body = std::fs::read(format!("{FIXTURES}/prometheus-2.42/body_001.bin")).unwrap();
    let raw = snap::raw::decompress_len(&body).unwrap() as u64;
    let batches = (0..10)
        .map(|_| batch(Queue::RemoteWrite, body.clone()))
        .collect();
    let p = backlog_then_forward(tmp.path(), batches, &up, 3 * raw).await;
    wait_until("backlog empty", || p.backlog(Queue::RemoteWrite).0 == 0).await;
    let sizes: Vec<usize> = up
        .delivered()
        .iter()
        .map(|b| snap::raw::decompress_len(b).unwrap())
        .collect();
    assert_eq!(
        sizes,
        vec![
            3 * raw as usize,
            3 * raw as usize,
            3 * raw as usize,
            raw as usize
        ]
    );
    p.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merged_refusal_is_split_and_only_the_refused_record_dead_lettered() {
    let tmp = tempfile::tempdir().unwrap();
    let up = Mock::start().await;
    // The merged request is refused; then, one by one, only the second record is.
    up.script(&[(400, None), (204, None), (400, None)]);
    let batches = (0..5)
        .map(|i| {
            batch(
                Queue::Traces,
                format!("{{\"resourceSpans\":[{{\"n\":{i}}}]}}"),
            )
        })
        .collect();
    let p = backlog_then_forward(tmp.path(), batches, &up, 4 << 20).await;
    wait_until("backlog empty", || p.backlog(Queue::Traces).0 == 0).await;
    let bodies: Vec<String> = up
        .received()
        .iter()
        .map(|r| String::from_utf8(r.body.to_vec()).unwrap())
        .collect();
    let mut want =
        vec!["{\"resourceSpans\":[{\"n\":0},{\"n\":1},{\"n\":2},{\"n\":3},{\"n\":4}]}".to_string()];
    want.extend((0..5).map(|i| format!("{{\"resourceSpans\":[{{\"n\":{i}}}]}}")));
    assert_eq!(bodies, want);
    assert_eq!(
        metric(&p, "ingest_dead_lettered_total{queue=\"traces\"}"),
        1.0
    );
    assert_eq!(
        metric(&p, "ingest_forwarded_records_total{queue=\"traces\"}"),
        4.0
    );
    p.shutdown().await;
    let mut out = Vec::new();
    assert_eq!(
        dead_letter_dump(tmp.path(), Queue::Traces, 10, &mut out).unwrap(),
        1
    );
    // The parked record is the refused one (the dump shows metadata; the body is in the file).
    let dead_dir = queue_dir(tmp.path(), Queue::Traces).join("dead");
    let mut parked = Vec::new();
    for entry in std::fs::read_dir(dead_dir).unwrap() {
        parked.extend(std::fs::read(entry.unwrap().path()).unwrap());
    }
    let parked = String::from_utf8_lossy(&parked);
    assert!(parked.contains("{\"n\":1}"), "{parked}");
    assert!(!parked.contains("{\"n\":0}"), "{parked}");
}
