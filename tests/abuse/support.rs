//! Helpers of the abuse tests: an edge with second-long windows, paced senders, polling.
#![allow(dead_code)]

use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ingest_edge::abuse::report::TokenReport;
use ingest_edge::edge::AppState;
use serde_json::{json, Value};

use crate::common::TestEdge;
use crate::rw_support::{v1_n_samples, CT_V1};

/// An edge whose abuse windows run in about a second: a 1 s short window (ticks of 166 ms),
/// 2 s of warm-up, a 60 s baseline, and a non-durable pipeline (no fsync per request).
pub async fn edge(mode: &str, tune: impl FnOnce(&mut ingest_edge::Config)) -> TestEdge {
    let mode = mode.to_owned();
    TestEdge::start_with(move |c| {
        c.pipeline.durable = false;
        c.abuse = ingest_edge::config::AbuseConfig {
            mode: serde_json::from_value(json!(mode)).unwrap(),
            short_window: Duration::from_secs(1),
            baseline_window: Duration::from_secs(60),
            warmup: Duration::from_secs(2),
            spike_factor: 5.0,
            min_items_per_second: 5.0,
            origin_storm_per_second: 5.0,
            auth_storm_per_second: 100.0,
            ..Default::default()
        };
        tune(c);
    })
    .await
}

pub fn state(edge: &TestEdge) -> &Arc<AppState> {
    edge.edge.as_ref().unwrap().state()
}

pub fn report(edge: &TestEdge, id: &str) -> TokenReport {
    let s = state(edge);
    let t = s.registry.active(id).unwrap();
    s.abuse.token_report(&t)
}

pub fn signal_active(r: &TokenReport, signal: &str) -> bool {
    r.signals
        .iter()
        .any(|s| s.active && s.signal.label() == signal)
}

/// Sends one remote_write request of `n` samples; returns the status and body.
pub async fn write(
    edge: &TestEdge,
    client: &reqwest::Client,
    token: &str,
    n: usize,
) -> (u16, String, Option<String>) {
    let resp = client
        .post(edge.ingest_url("/api/v1/write"))
        .bearer_auth(token)
        .header("content-type", CT_V1)
        .header("content-encoding", "snappy")
        .body(v1_n_samples(n))
        .send()
        .await
        .unwrap();
    let status = resp.status().as_u16();
    let retry = resp
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    (status, resp.text().await.unwrap(), retry)
}

/// Statuses of a paced sender: one request of `n` samples every `every`, for `dur`.
pub async fn paced(
    edge: &TestEdge,
    token: &str,
    n: usize,
    every: Duration,
    dur: Duration,
) -> Vec<(u16, String, Option<String>)> {
    let client = reqwest::Client::new();
    let end = Instant::now() + dur;
    let mut tick = tokio::time::interval(every);
    let mut out = Vec::new();
    while Instant::now() < end && out.len() < 100_000 {
        tick.tick().await;
        out.push(write(edge, &client, token, n).await);
    }
    out
}

/// Polls `cond` every 20 ms for up to `limit`; returns how long it took, or `None`.
pub async fn wait_for(limit: Duration, mut cond: impl FnMut() -> bool) -> Option<Duration> {
    let start = Instant::now();
    while start.elapsed() < limit {
        if cond() {
            return Some(start.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    None
}

pub async fn audit(edge: &TestEdge) -> Vec<Value> {
    let (status, v) = edge
        .admin(reqwest::Method::GET, "/api/v1/audit?limit=1000", None)
        .await;
    assert_eq!(status, 200);
    v["events"].as_array().unwrap().clone()
}

/// Waits up to 3 s for an audit event (abuse events are audited in the background).
pub async fn await_audit(edge: &TestEdge, token: &str, action: &str, who: &str) -> bool {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(3) {
        if has_audit(&audit(edge).await, token, action, who) {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    false
}

pub fn has_audit(events: &[Value], token: &str, action: &str, who: &str) -> bool {
    events
        .iter()
        .any(|e| e["token_id"] == token && e["action"] == action && e["who"] == who)
}

/// A reqwest client whose connections come from `addr` (any of 127/8 works on Linux).
pub fn client_from(addr: IpAddr) -> reqwest::Client {
    // Plain http only: skip loading the system's root certificates, which costs milliseconds
    // per client and made a storm of 300 clients take seconds on a loaded machine.
    reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .local_address(addr)
        .build()
        .unwrap()
}
