//! Crash safety of acknowledged data: the real binary is SIGKILLed in the middle of a load of
//! remote_write and RUM (traces, logs) requests, then restarted on the same data directory.
//! Every request that got a 2xx before the kill must reach the upstreams afterwards
//! (VictoriaMetrics for remote_write, a local OTLP receiver for RUM). Duplicates are allowed
//! (delivery is at-least-once); losses are not.

mod common;
#[path = "pipeline_support/upstreams.rs"]
mod upstreams;

use std::collections::BTreeSet;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::child::ChildEdge;
use common::series_value;
use serde_json::json;
use upstreams::{free_port, now_ms, otlp_logs, otlp_traces, rw_request, OtlpReceiver, Victoria};

const KEY: &str = "pipeline-kill-admin-key-0000";
const ORIGIN: &str = "http://localhost:3000";

/// The binary on `data_dir`, forwarding to the two upstreams.
fn serve(data_dir: &Path, rw_upstream: &str, otlp_upstream: &str) -> ChildEdge {
    // The default per-client-address budget of a client token (10/s) would throttle a load
    // that comes from one address; the test is about the spool, not the limiter. Small
    // segments, so the kill also meets segment rolls and deletions.
    let config = data_dir.join("edge-test.toml");
    std::fs::write(
        &config,
        "[limits.client]\nper_client_requests_per_second = 100000\nper_client_requests_burst = 100000\n\
         [pipeline]\nsegment_bytes = 32768\n",
    )
    .unwrap();
    let env = [
        ("INGEST_EDGE_REMOTE_WRITE_UPSTREAM", rw_upstream),
        ("INGEST_EDGE_OTLP_UPSTREAM", otlp_upstream),
    ];
    ChildEdge::serve_with(data_dir, KEY, &env, &["--config", config.to_str().unwrap()])
}

/// Records in the three spools, summed; `None` while the edge does not answer.
async fn spool_records(http: &reqwest::Client, edge: &ChildEdge) -> Option<f64> {
    let text = edge.metrics(http).await?;
    let mut total = 0.0;
    for q in ["remote_write", "traces", "logs"] {
        total += series_value(&text, &format!("ingest_spool_records{{queue=\"{q}\"}}"))?;
    }
    Some(total)
}

/// Acknowledged request ids per kind.
#[derive(Default)]
struct Acked {
    rw: BTreeSet<u64>,
    traces: BTreeSet<u64>,
    logs: BTreeSet<u64>,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_under_load_loses_no_acknowledged_request() {
    let vm = Victoria::start(free_port()).await;
    // A slow OTLP upstream, so RUM data is still in the spool when the edge dies.
    let otlp = OtlpReceiver::start(Duration::from_millis(5)).await;
    let data = tempfile::tempdir().unwrap();
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    let edge = serve(data.path(), &vm.write_url(), &otlp.base_url());
    let limits = json!({"requests_per_second": 1000000, "requests_burst": 1000000,
                        "items_per_second": 1000000000u64, "items_burst": 1000000000u64});
    let (_, rw_token) = edge
        .create_token(
            &http,
            json!({"name": "kill rw", "type": "remote_write", "limits": limits}),
        )
        .await;
    let (_, client_token) = edge
        .create_token(
            &http,
            json!({"name": "kill rum", "type": "client", "client_type": "web", "origins": [ORIGIN], "limits": limits}),
        )
        .await;

    let acked = Arc::new(Mutex::new(Acked::default()));
    let next_id = Arc::new(AtomicU64::new(0));
    let killed = Arc::new(AtomicBool::new(false));
    let t0 = now_ms() - 3_600_000;
    let mut workers = tokio::task::JoinSet::new();
    for w in 0..6u64 {
        let (http, ingest) = (http.clone(), edge.ingest.clone());
        let (rw_token, client_token) = (rw_token.clone(), client_token.clone());
        let (acked, next_id, killed) = (acked.clone(), next_id.clone(), killed.clone());
        workers.spawn(async move {
            let deadline = Instant::now() + Duration::from_secs(20);
            while Instant::now() < deadline {
                let id = next_id.fetch_add(1, Ordering::Relaxed);
                let req = match w % 3 {
                    0 => {
                        let (body, _) = rw_request("edge_kill_test", id, 2, 3, t0 + id as i64);
                        http.post(format!("http://{ingest}/api/v1/write"))
                            .bearer_auth(&rw_token)
                            .header("content-type", "application/x-protobuf")
                            .header("content-encoding", "snappy")
                            .header("x-prometheus-remote-write-version", "0.1.0")
                            .body(body)
                    }
                    1 => http
                        .post(format!("http://{ingest}/v1/traces"))
                        .bearer_auth(&client_token)
                        .header("origin", ORIGIN)
                        .header("content-type", "application/json")
                        .body(otlp_traces(id)),
                    _ => http
                        .post(format!("http://{ingest}/v1/logs"))
                        .bearer_auth(&client_token)
                        .header("origin", ORIGIN)
                        .header("content-type", "application/json")
                        .body(otlp_logs(id)),
                };
                match req.send().await {
                    Ok(r) if r.status().is_success() => {
                        let mut a = acked.lock().unwrap();
                        match w % 3 {
                            0 => a.rw.insert(id),
                            1 => a.traces.insert(id),
                            _ => a.logs.insert(id),
                        };
                    }
                    // Throttled (per-client budget) or overloaded: not acknowledged, not counted.
                    Ok(r) => assert!(
                        killed.load(Ordering::Relaxed) || matches!(r.status().as_u16(), 429 | 503),
                        "unexpected status {} before the kill",
                        r.status()
                    ),
                    Err(_) if killed.load(Ordering::Relaxed) => return,
                    Err(e) => panic!("request failed before the kill: {e}"),
                }
                if killed.load(Ordering::Relaxed) {
                    return;
                }
            }
        });
    }
    // Kill in the middle of the load, once a fair amount was acknowledged.
    let loaded = upstreams::eventually(Duration::from_secs(20), || async {
        let a = acked.lock().unwrap();
        a.rw.len() >= 500 && a.traces.len() >= 500 && a.logs.len() >= 500
    })
    .await;
    {
        let a = acked.lock().unwrap();
        assert!(
            loaded,
            "load did not get going: rw={} traces={} logs={}",
            a.rw.len(),
            a.traces.len(),
            a.logs.len()
        );
    }
    let mut edge = edge;
    killed.store(true, Ordering::Relaxed);
    edge.child.kill().unwrap(); // SIGKILL
    edge.child.wait().unwrap();
    while let Some(r) = workers.join_next().await {
        r.unwrap();
    }
    let acked = std::mem::take(&mut *acked.lock().unwrap());
    let at_kill = (
        vm.req_ids("edge_kill_test").await.len(),
        otlp.ids("/v1/traces", "kill-span-").len(),
        otlp.ids("/v1/logs", "kill-log-").len(),
    );

    let edge = serve(data.path(), &vm.write_url(), &otlp.base_url());
    let drained = upstreams::eventually(Duration::from_secs(60), || async {
        spool_records(&http, &edge).await == Some(0.0)
    })
    .await;
    // What recovery found (cut tails, records to resend), for reading a failure.
    let recovery: Vec<String> = edge
        .log_text()
        .lines()
        .filter(|l| l.contains("spool recovered") || l.contains("WARN") || l.contains("ERROR"))
        .map(str::to_owned)
        .collect();
    eprintln!("edge after restart:\n{}", recovery.join("\n"));
    assert!(drained, "spool drained after restart");
    // VictoriaMetrics answers 204 before new series are searchable: give it a moment.
    upstreams::eventually(Duration::from_secs(15), || async {
        acked.rw.is_subset(&vm.req_ids("edge_kill_test").await)
    })
    .await;
    let delivered_rw = vm.req_ids("edge_kill_test").await;
    let delivered_traces = otlp.ids("/v1/traces", "kill-span-");
    let delivered_logs = otlp.ids("/v1/logs", "kill-log-");
    let lost_rw: Vec<_> = acked.rw.difference(&delivered_rw).collect();
    let lost_traces: Vec<_> = acked.traces.difference(&delivered_traces).collect();
    let lost_logs: Vec<_> = acked.logs.difference(&delivered_logs).collect();
    eprintln!(
        "kill test: acknowledged rw={} traces={} logs={}; delivered before the kill rw={} traces={} logs={}; \
         lost after restart rw={} traces={} logs={}",
        acked.rw.len(), acked.traces.len(), acked.logs.len(),
        at_kill.0, at_kill.1, at_kill.2,
        lost_rw.len(), lost_traces.len(), lost_logs.len()
    );
    assert!(
        lost_rw.is_empty(),
        "acknowledged remote_write requests lost: {lost_rw:?}"
    );
    assert!(
        lost_traces.is_empty(),
        "acknowledged trace requests lost: {lost_traces:?}"
    );
    assert!(
        lost_logs.is_empty(),
        "acknowledged log requests lost: {lost_logs:?}"
    );
}
