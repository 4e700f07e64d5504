//! `rediss://`: the shared limits over TLS to a real `redis-server` whose certificate comes
//! from a private CA named by `limits.redis_ca_file`; and the same server, not verifiable
//! against the system's roots, is never used (the handshake fails, limits stay local).

use std::time::{Duration, Instant};

use ingest_edge::config::RedisUrl;
use serde_json::json;

use crate::common::TestEdge;
use crate::pki::Ca;
use crate::redis_server::Redis;

const ORIGIN: &str = "http://localhost:3000";
const SPANS: &str = r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"x","kind":1,"startTimeUnixNano":"1","endTimeUnixNano":"2"}]}]}]}"#;

/// Waits until `series` satisfies `ok` on `edge`; panics with its last value after `within`.
async fn wait_metric(edge: &TestEdge, series: &str, within: Duration, ok: impl Fn(f64) -> bool) {
    let start = Instant::now();
    loop {
        let v = edge.metric_value(series).await;
        if v.is_some_and(&ok) {
            return;
        }
        assert!(
            start.elapsed() < within,
            "{series} is {v:?} after {within:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn limits_hold_over_tls_with_a_private_ca_and_an_unverified_server_is_never_used() {
    let pki = tempfile::tempdir().unwrap();
    let ca = Ca::new();
    let ca_file = ca.write(pki.path());
    let (cert, key) = ca.leaf("redis", 1).write(pki.path());
    let Some(redis) = Redis::start_tls(&cert, &key, &ca_file) else {
        eprintln!("SKIPPED: redis-server not found (.ci/setup.sh installs Debian's redis-server)");
        return;
    };
    let url = redis.tls_url().unwrap();

    let edge = TestEdge::start_with(|c| {
        c.limits.redis_url = RedisUrl(url.clone());
        c.limits.redis_ca_file = Some(ca_file.clone());
    })
    .await;
    wait_metric(
        &edge,
        "ingest_global_limits_active",
        Duration::from_secs(10),
        |v| v == 1.0,
    )
    .await;
    let (id, secret) = edge
        .create_token(
            json!({"name": "tls", "type": "client", "client_type": "web",
            "origins": [ORIGIN], "limits": {"requests_per_second": 1, "requests_burst": 2,
            "per_client_requests_per_second": 1000, "per_client_requests_burst": 1000}}),
        )
        .await;
    let mut codes = Vec::new();
    for _ in 0..3 {
        let r = edge
            .http
            .post(edge.ingest_url("/v1/traces"))
            .bearer_auth(&secret)
            .header("origin", ORIGIN)
            .header("content-type", "application/json")
            .body(SPANS)
            .send()
            .await
            .unwrap();
        codes.push(r.status().as_u16());
    }
    assert_eq!(codes, [200, 200, 429], "burst 2, then the limit");
    // Decided in Redis (over TLS), not by the local fall-back.
    let key = format!("ingest-edge:{{{id}}}:requests");
    assert_eq!(
        redis.command(&["EXISTS", &key]).as_deref(),
        Some(":1\r\n"),
        "{key}"
    );
    assert_eq!(
        edge.metric_value("ingest_global_limits_fallback_checks_total")
            .await,
        Some(0.0)
    );

    // No CA file: the system's roots do not know the private CA, so the edge refuses the
    // server's certificate, counts the failure and keeps its limits local.
    let blind = TestEdge::start_with(|c| c.limits.redis_url = RedisUrl(url.clone())).await;
    wait_metric(
        &blind,
        "ingest_global_limits_redis_errors_total",
        Duration::from_secs(10),
        |v| v >= 1.0,
    )
    .await;
    assert_eq!(
        blind.metric_value("ingest_global_limits_active").await,
        Some(0.0)
    );
    edge.stop().await;
    blind.stop().await;
}
