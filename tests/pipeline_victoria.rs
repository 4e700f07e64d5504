//! The pipeline against a real upstream (VictoriaMetrics, started here on 127.0.0.1): exact
//! delivery of remote_write samples, an upstream that is down for a while, a spool whose tail
//! was torn or corrupted, and a full spool (503 + Retry-After) that recovers once drained.

mod common;
#[path = "pipeline_support/upstreams.rs"]
mod upstreams;

use std::time::Duration;

use common::TestEdge;
use upstreams::{free_port, last_segment, now_ms, rw_request, Point, Victoria};

/// Sends one v1 remote-write request; returns the status and the Retry-After header.
async fn post_rw(edge: &TestEdge, token: &str, body: Vec<u8>) -> (u16, Option<String>) {
    let resp = edge
        .http
        .post(edge.ingest_url("/api/v1/write"))
        .bearer_auth(token)
        .header("content-type", "application/x-protobuf")
        .header("content-encoding", "snappy")
        .header("x-prometheus-remote-write-version", "0.1.0")
        .body(body)
        .send()
        .await
        .unwrap();
    let retry_after = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_string());
    (resp.status().as_u16(), retry_after)
}

/// Sends requests `ids` for metric `name`, each must be accepted; returns the points sent.
async fn send(edge: &TestEdge, token: &str, name: &str, ids: std::ops::Range<u64>) -> Vec<Point> {
    let t0 = now_ms() - 3_600_000;
    let mut sent = Vec::new();
    for req in ids {
        let (body, points) = rw_request(name, req, 3, 4, t0 + req as i64 * 10_000);
        let (status, _) = post_rw(edge, token, body).await;
        assert_eq!(status, 204, "request {req}");
        sent.extend(points);
    }
    sent.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    sent
}

async fn series(edge: &TestEdge, series: &str) -> f64 {
    edge.metric_value(series).await.unwrap_or(-1.0)
}

/// Waits (up to 30 s) until the edge has forwarded `n` remote_write records.
async fn wait_forwarded(edge: &TestEdge, n: u64) {
    let ok = upstreams::eventually(Duration::from_secs(30), || async {
        series(
            edge,
            "ingest_forwarded_records_total{queue=\"remote_write\"}",
        )
        .await
            == n as f64
    })
    .await;
    assert!(
        ok,
        "forwarded {} of {n}",
        series(
            edge,
            "ingest_forwarded_records_total{queue=\"remote_write\"}"
        )
        .await
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remote_write_reaches_victoria_metrics_exactly() {
    let vm = Victoria::start(free_port()).await;
    let url = vm.write_url();
    let edge = TestEdge::start_with(|c| c.pipeline.remote_write_upstream = Some(url)).await;
    let (_, token) = edge.remote_write_token().await;
    let sent = send(&edge, &token, "edge_exact_test", 0..20).await;
    wait_forwarded(&edge, 20).await;
    let got = vm
        .export_eventually("{__name__=\"edge_exact_test\"}", &sent)
        .await;
    assert_eq!(got.len(), 20 * 3 * 4);
    assert_eq!(got, sent, "VictoriaMetrics holds exactly the samples sent");
    assert_eq!(
        series(&edge, "ingest_spool_records{queue=\"remote_write\"}").await,
        0.0
    );
    edge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn upstream_down_for_a_while_loses_nothing() {
    let port = free_port();
    let edge = TestEdge::start_with(|c| {
        c.pipeline.remote_write_upstream = Some(format!("http://127.0.0.1:{port}/api/v1/write"));
        c.pipeline.retry_max_backoff = Duration::from_millis(200);
    })
    .await;
    let (_, token) = edge.remote_write_token().await;
    let sent = send(&edge, &token, "edge_down_test", 0..15).await;
    let retried = upstreams::eventually(Duration::from_secs(10), || async {
        series(
            &edge,
            "ingest_forward_retries_total{queue=\"remote_write\"}",
        )
        .await
            >= 3.0
    })
    .await;
    assert!(
        retried,
        "the forwarder keeps retrying while the upstream is down"
    );
    assert_eq!(
        series(&edge, "ingest_spool_records{queue=\"remote_write\"}").await,
        15.0
    );
    assert_eq!(
        series(
            &edge,
            "ingest_forwarded_records_total{queue=\"remote_write\"}"
        )
        .await,
        0.0
    );
    let vm = Victoria::start(port).await;
    wait_forwarded(&edge, 15).await;
    assert_eq!(
        vm.export_eventually("{__name__=\"edge_down_test\"}", &sent)
            .await,
        sent
    );
    // The backlog went out merged: the head record that was being retried, then the other
    // 14 together (VictoriaMetrics decoded the merged body: every sample is there).
    let requests = vm.write_requests().await;
    assert!(
        (1.0..=3.0).contains(&requests),
        "{requests} write requests for 15 records"
    );
    edge.stop().await;
}

/// Fills a spool (no upstream) with `n` requests, damages its tail with `damage`, restarts the
/// edge with VictoriaMetrics as upstream; returns the points of the first `keep` requests and
/// what VictoriaMetrics holds.
async fn damaged_tail(
    name: &str,
    n: u64,
    keep: usize,
    damage: impl FnOnce(&mut Vec<u8>),
) -> (Vec<Point>, Vec<Point>) {
    let dir = tempfile::tempdir().unwrap();
    let edge = TestEdge::start_in(dir.path(), |_| {}).await;
    let (_, token) = edge.remote_write_token().await;
    let mut per_request = Vec::new();
    for req in 0..n {
        per_request.push(send(&edge, &token, name, req..req + 1).await);
    }
    edge.stop().await;
    let seg = last_segment(dir.path(), "remote_write");
    let mut data = std::fs::read(&seg).unwrap();
    damage(&mut data);
    std::fs::write(&seg, &data).unwrap();
    let stats = ingest_edge::pipeline::spool_stats(dir.path()).unwrap();
    assert!(
        stats.queues[0].bad_tail_bytes > 0,
        "damage visible to `spool stats`"
    );

    let vm = Victoria::start(free_port()).await;
    let url = vm.write_url();
    let edge =
        TestEdge::start_in(dir.path(), |c| c.pipeline.remote_write_upstream = Some(url)).await;
    // Everything before the damage, and only that, is recovered and delivered.
    wait_forwarded(&edge, keep as u64).await;
    let mut want: Vec<Point> = per_request[..keep].concat();
    want.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
    let got = vm
        .export_eventually(&format!("{{__name__=\"{name}\"}}"), &want)
        .await;
    edge.stop().await;
    (want, got)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn torn_spool_tail_is_cut_and_everything_acknowledged_arrives() {
    // A crash while a record was being written: only its first bytes reached the disk.
    let (want, got) = damaged_tail("edge_torn_test", 8, 8, |data| {
        let torn: Vec<u8> = data[..40].to_vec();
        data.extend_from_slice(&torn);
    })
    .await;
    assert_eq!(
        got, want,
        "all 8 acknowledged requests delivered, the torn record dropped"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupted_spool_record_is_cut_and_the_records_before_it_arrive() {
    // Bit rot in the last record: its checksum fails, it is cut, the 5 before it are delivered.
    let (want, got) = damaged_tail("edge_corrupt_test", 6, 5, |data| {
        let last = data.len() - 1;
        data[last] ^= 0x55;
    })
    .await;
    assert_eq!(got, want);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_spool_answers_503_and_recovers_when_the_upstream_drains_it() {
    let port = free_port();
    let edge = TestEdge::start_with(|c| {
        c.pipeline.remote_write_upstream = Some(format!("http://127.0.0.1:{port}/api/v1/write"));
        c.pipeline.retry_max_backoff = Duration::from_millis(200);
        c.pipeline.max_bytes = 16 * 1024;
    })
    .await;
    let (token_id, token) = edge.remote_write_token().await;
    let t0 = now_ms() - 3_600_000;
    let mut acked = std::collections::BTreeSet::new();
    let mut refused = None;
    for req in 0..2000u64 {
        let (body, _) = rw_request("edge_full_test", req, 3, 4, t0 + req as i64 * 1000);
        match post_rw(&edge, &token, body).await {
            (204, _) => {
                acked.insert(req);
            }
            (status, retry_after) => {
                refused = Some((req, status, retry_after));
                break;
            }
        }
    }
    let (next, status, retry_after) = refused.expect("the spool fills up");
    assert_eq!(status, 503);
    assert!(
        retry_after.is_some_and(|s| s.parse::<u32>().unwrap() >= 1),
        "Retry-After sent"
    );
    assert!(
        acked.len() >= 10,
        "only {} accepted before full",
        acked.len()
    );
    let metrics = edge.metrics().await;
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("ingest_rejected_total")
                && l.contains(&format!("token_id=\"{token_id}\""))
                && l.contains("reason=\"overloaded\"")
                && !l.ends_with(" 0")),
        "overloaded counted:\n{metrics}"
    );

    let vm = Victoria::start(port).await;
    wait_forwarded(&edge, acked.len() as u64).await;
    let (body, _) = rw_request("edge_full_test", next, 3, 4, t0 + next as i64 * 1000);
    assert_eq!(
        post_rw(&edge, &token, body).await.0,
        204,
        "accepted again once drained"
    );
    acked.insert(next);
    wait_forwarded(&edge, acked.len() as u64).await;
    let ok = upstreams::eventually(Duration::from_secs(15), || async {
        vm.req_ids("edge_full_test").await == acked
    })
    .await;
    assert!(
        ok,
        "VictoriaMetrics holds exactly the acknowledged requests"
    );
    edge.stop().await;
}
