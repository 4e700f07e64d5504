//! RUM endpoints against a real edge on 127.0.0.1:0: tokens, origins, CORS, bodies, counting.

mod common;

use std::io::Write;

use common::{fixtures, TestEdge};
use reqwest::header::HeaderMap;
use serde_json::json;

const ORIGIN: &str = "http://localhost:3000";

fn fixture_body(n: u32) -> String {
    std::fs::read_to_string(fixtures().join(format!("otel-js-2.12/export_{n:02}.json.body")))
        .unwrap()
}

/// OTLP JSON with `n` spans in one scope.
fn spans_json(n: usize) -> String {
    let spans: Vec<_> = (0..n)
        .map(|i| {
            json!({"traceId": "5b8efff798038103d269b633813fc60c", "spanId": format!("eee19b7ec3c1b1{i:02x}"),
                   "name": "fetch", "kind": 3, "startTimeUnixNano": "1700000000000000000",
                   "endTimeUnixNano": "1700000000100000000"})
        })
        .collect();
    json!({"resourceSpans": [{"resource": {"attributes": []}, "scopeSpans": [{"scope": {"name": "t"}, "spans": spans}]}]})
        .to_string()
}

async fn post(
    edge: &TestEdge,
    path: &str,
    token: Option<&str>,
    origin: Option<&str>,
    content_type: &str,
    body: Vec<u8>,
) -> reqwest::Response {
    let mut req = edge
        .http
        .post(edge.ingest_url(path))
        .header("content-type", content_type)
        .body(body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(o) = origin {
        req = req.header("origin", o);
    }
    req.send().await.unwrap()
}

fn assert_cors(h: &HeaderMap, origin: &str) {
    assert_eq!(h["access-control-allow-origin"], origin);
    assert_eq!(h["access-control-allow-credentials"], "true");
    assert_eq!(h["vary"], "Origin");
    assert_eq!(h["access-control-expose-headers"], "Retry-After");
}

#[tokio::test]
async fn real_sdk_exports_are_accepted_and_counted() {
    let edge = TestEdge::start().await;
    let (id, secret) = edge.client_token(&[ORIGIN]).await;
    // export_00: fetch with the token in a header, application/json.
    let r = post(
        &edge,
        "/v1/traces",
        Some(&secret),
        Some(ORIGIN),
        "application/json",
        fixture_body(0).into_bytes(),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_cors(r.headers(), ORIGIN);
    assert_eq!(r.headers()["content-type"], "application/json");
    // export_01: sendBeacon, text/plain, ?token=.
    let r = edge
        .http
        .post(edge.ingest_url(&format!("/v1/traces?token={secret}")))
        .header("content-type", "text/plain;charset=UTF-8")
        .header("origin", ORIGIN)
        .body(fixture_body(1))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let m = edge.metrics().await;
    let v = |s: &str| common::series_value(&m, s);
    assert_eq!(
        v(&format!(
            "ingest_rum_items_total{{token_id=\"{id}\",signal=\"traces\"}}"
        )),
        Some(2.0)
    );
    assert_eq!(
        v(&format!(
            "ingest_requests_total{{token_id=\"{id}\",endpoint=\"traces\",code=\"200\"}}"
        )),
        Some(2.0)
    );
    let wire = (fixture_body(0).len() + fixture_body(1).len()) as f64;
    assert_eq!(
        v(&format!(
            "ingest_received_bytes_total{{token_id=\"{id}\",endpoint=\"traces\"}}"
        )),
        Some(wire)
    );
    assert!(!m.contains(&secret), "secret leaked into /metrics");
}

#[tokio::test]
async fn origins_are_enforced_with_the_right_cors_headers() {
    let edge = TestEdge::start().await;
    let (id, secret) = edge.client_token(&["https://*.example.com"]).await;
    let body = || spans_json(3).into_bytes();
    let ok = post(
        &edge,
        "/v1/traces",
        Some(&secret),
        Some("https://app.example.com"),
        "application/json",
        body(),
    )
    .await;
    assert_eq!(ok.status(), 200);
    assert_cors(ok.headers(), "https://app.example.com");
    for bad in [
        "https://example.com",
        "https://sub.app.example.com",
        "http://app.example.com",
        "https://app.example.com:8443",
        "https://evil.com",
    ] {
        let r = post(
            &edge,
            "/v1/traces",
            Some(&secret),
            Some(bad),
            "application/json",
            body(),
        )
        .await;
        assert_eq!(r.status(), 403, "{bad}");
        assert!(
            r.headers().get("access-control-allow-origin").is_none(),
            "{bad}"
        );
    }
    for missing in [None, Some("null")] {
        let r = post(
            &edge,
            "/v1/traces",
            Some(&secret),
            missing,
            "application/json",
            body(),
        )
        .await;
        assert_eq!(r.status(), 403);
        assert!(r.headers().get("access-control-allow-origin").is_none());
    }
    let m = edge.metrics().await;
    let v = |s: &str| common::series_value(&m, s);
    assert_eq!(
        v(&format!(
            "ingest_rum_items_total{{token_id=\"{id}\",signal=\"traces\"}}"
        )),
        Some(3.0)
    );
    assert_eq!(v(&format!("ingest_rejected_total{{token_id=\"{id}\",endpoint=\"traces\",reason=\"origin_not_allowed\"}}")), Some(5.0));
    assert_eq!(v(&format!("ingest_rejected_total{{token_id=\"{id}\",endpoint=\"traces\",reason=\"missing_origin\"}}")), Some(2.0));
    // Default port elided on the request side too.
    let r = post(
        &edge,
        "/v1/traces",
        Some(&secret),
        Some("https://app.example.com:443"),
        "application/json",
        body(),
    )
    .await;
    assert_eq!(r.status(), 200);
}

#[tokio::test]
async fn preflight_needs_no_token_and_checks_the_query_token() {
    let edge = TestEdge::start().await;
    let (_, secret) = edge.client_token(&[ORIGIN]).await;
    let preflight = |path: String, origin: &'static str| {
        edge.http
            .request(reqwest::Method::OPTIONS, edge.ingest_url(&path))
            .header("origin", origin)
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "content-type,authorization,x-not-allowed",
            )
            .header("access-control-request-private-network", "true")
            .send()
    };
    let r = preflight("/v1/traces".into(), ORIGIN).await.unwrap();
    assert_eq!(r.status(), 204);
    let h = r.headers();
    assert_cors(h, ORIGIN);
    assert_eq!(h["access-control-allow-methods"], "POST, OPTIONS");
    assert_eq!(
        h["access-control-allow-headers"],
        "content-type, authorization"
    );
    assert_eq!(h["access-control-max-age"], "7200");
    assert_eq!(h["access-control-allow-private-network"], "true");
    let r = preflight(format!("/v1/logs?token={secret}"), ORIGIN)
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    let r = preflight(format!("/v1/logs?token={secret}"), "https://evil.com")
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.headers().get("access-control-allow-origin").is_none());
}

#[tokio::test]
async fn token_errors() {
    let edge = TestEdge::start().await;
    let (id, secret) = edge.client_token(&[ORIGIN]).await;
    let (_, rw_secret) = edge.remote_write_token().await;
    let body = || spans_json(1).into_bytes();
    let cases: [(Option<String>, u16, &str); 4] = [
        (None, 401, "missing_token"),
        (Some("not-a-token".into()), 401, "malformed_token"),
        (
            Some(secret.replace(&secret[4..8], "AAAA")),
            401,
            "malformed_token",
        ),
        (Some(rw_secret.clone()), 403, "wrong_token_type"),
    ];
    for (token, status, _) in &cases {
        let r = post(
            &edge,
            "/v1/traces",
            token.as_deref(),
            Some(ORIGIN),
            "application/json",
            body(),
        )
        .await;
        assert_eq!(r.status(), *status, "{token:?}");
    }
    // Well-formed (CRC-valid) but never issued: unknown, after a lookup.
    let stranger =
        ingest_edge::secret::TokenSecret::generate(ingest_edge::secret::TokenType::Client);
    let r = post(
        &edge,
        "/v1/traces",
        Some(stranger.expose()),
        Some(ORIGIN),
        "application/json",
        body(),
    )
    .await;
    assert_eq!(r.status(), 401);
    // Every kind of malformation: prefix, length, alphabet, checksum.
    let mut bad_checksum = secret.clone();
    let last = bad_checksum.pop().unwrap();
    bad_checksum.push(if last == 'a' { 'b' } else { 'a' });
    for bad in [
        secret.replacen("iec_", "xyz_", 1),
        format!("{secret}0"),
        secret[..secret.len() - 1].to_string(),
        secret.replacen(&secret[5..6], "-", 1),
        bad_checksum,
    ] {
        let r = post(
            &edge,
            "/v1/traces",
            Some(&bad),
            Some(ORIGIN),
            "application/json",
            body(),
        )
        .await;
        assert_eq!(r.status(), 401, "{bad}");
    }
    // Token errors carry CORS headers so the page can read the status.
    let r = post(
        &edge,
        "/v1/traces",
        Some("bad"),
        Some(ORIGIN),
        "application/json",
        body(),
    )
    .await;
    assert_eq!(r.headers()["access-control-allow-origin"], ORIGIN);
    // Header and query tokens that differ.
    let r = edge
        .http
        .post(edge.ingest_url(&format!("/v1/traces?token={secret}")))
        .bearer_auth("other")
        .header("origin", ORIGIN)
        .header("content-type", "application/json")
        .body(body())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    // Revoked.
    let (s, _) = edge
        .admin(
            reqwest::Method::DELETE,
            &format!("/api/v1/tokens/{id}"),
            None,
        )
        .await;
    assert_eq!(s, 200);
    let r = post(
        &edge,
        "/v1/traces",
        Some(&secret),
        Some(ORIGIN),
        "application/json",
        body(),
    )
    .await;
    assert_eq!(r.status(), 401);
    let m = edge.metrics().await;
    assert_eq!(common::series_value(&m, &format!("ingest_rejected_total{{token_id=\"{id}\",endpoint=\"traces\",reason=\"revoked_token\"}}")), Some(1.0));
    assert_eq!(
        common::series_value(
            &m,
            "ingest_rejected_total{token_id=\"\",endpoint=\"traces\",reason=\"malformed_token\"}"
        ),
        Some(8.0)
    );
    assert_eq!(
        common::series_value(
            &m,
            "ingest_rejected_total{token_id=\"\",endpoint=\"traces\",reason=\"unknown_token\"}"
        ),
        Some(1.0)
    );
    assert_eq!(
        common::series_value(
            &m,
            "ingest_rejected_total{token_id=\"\",endpoint=\"traces\",reason=\"missing_token\"}"
        ),
        Some(1.0)
    );
    assert!(!m.contains(&secret) && !m.contains(&rw_secret));
}

#[tokio::test]
async fn bodies_gzip_protobuf_limits_and_garbage() {
    let edge = TestEdge::start_with(|c| c.body.rum_max_wire_bytes = 64 << 10).await;
    let (id, secret) = edge.client_token(&[ORIGIN]).await;
    // gzip
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(spans_json(4).as_bytes()).unwrap();
    let r = edge
        .http
        .post(edge.ingest_url("/v1/traces"))
        .bearer_auth(&secret)
        .header("origin", ORIGIN)
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body(gz.finish().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    // protobuf
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
    use prost::Message;
    let logs = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: vec![LogRecord::default(), LogRecord::default()],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let r = post(
        &edge,
        "/v1/logs",
        Some(&secret),
        Some(ORIGIN),
        "application/x-protobuf",
        logs.encode_to_vec(),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/x-protobuf");
    // too large, garbage, unsupported type
    let big = vec![b' '; 65 << 10];
    assert_eq!(
        post(
            &edge,
            "/v1/traces",
            Some(&secret),
            Some(ORIGIN),
            "application/json",
            big
        )
        .await
        .status(),
        413
    );
    let r = post(
        &edge,
        "/v1/traces",
        Some(&secret),
        Some(ORIGIN),
        "application/json",
        b"{not json".to_vec(),
    )
    .await;
    assert_eq!(r.status(), 400);
    assert_eq!(r.headers()["access-control-allow-origin"], ORIGIN);
    assert_eq!(
        post(
            &edge,
            "/v1/traces",
            Some(&secret),
            Some(ORIGIN),
            "image/png",
            b"x".to_vec()
        )
        .await
        .status(),
        415
    );
    let m = edge.metrics().await;
    let v = |s: String| common::series_value(&m, &s);
    assert_eq!(
        v(format!(
            "ingest_rum_items_total{{token_id=\"{id}\",signal=\"traces\"}}"
        )),
        Some(4.0)
    );
    assert_eq!(
        v(format!(
            "ingest_rum_items_total{{token_id=\"{id}\",signal=\"logs\"}}"
        )),
        Some(2.0)
    );
    assert_eq!(
        v(format!(
            "ingest_rejected_total{{token_id=\"{id}\",endpoint=\"traces\",reason=\"too_large\"}}"
        )),
        Some(1.0)
    );
    assert_eq!(
        v(format!(
            "ingest_rejected_total{{token_id=\"{id}\",endpoint=\"traces\",reason=\"bad_payload\"}}"
        )),
        Some(1.0)
    );
    assert_eq!(v(format!("ingest_rejected_total{{token_id=\"{id}\",endpoint=\"traces\",reason=\"unsupported_media_type\"}}")), Some(1.0));
    let decoded = spans_json(4).len() as f64;
    assert!(
        v(format!(
            "ingest_decoded_bytes_total{{token_id=\"{id}\",endpoint=\"traces\"}}"
        ))
        .unwrap()
            >= decoded
    );
}

#[tokio::test]
async fn rate_limit_then_429_with_retry_after_and_other_tokens_unaffected() {
    let edge = TestEdge::start().await;
    let (id, secret) = edge
        .create_token(
            json!({"name": "tiny", "type": "client", "origins": [ORIGIN],
            "limits": {"requests_per_second": 1, "requests_burst": 3}}),
        )
        .await;
    let (_, other) = edge.client_token(&[ORIGIN]).await;
    let mut codes = vec![];
    let mut retry_after = None;
    for _ in 0..5 {
        let r = post(
            &edge,
            "/v1/traces",
            Some(&secret),
            Some(ORIGIN),
            "application/json",
            spans_json(1).into_bytes(),
        )
        .await;
        codes.push(r.status().as_u16());
        if r.status() == 429 {
            assert_cors(r.headers(), ORIGIN);
            retry_after = r
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().parse::<u32>().unwrap());
        }
    }
    assert_eq!(codes, [200, 200, 200, 429, 429]);
    let ra = retry_after.expect("Retry-After on 429");
    assert!((1..=2).contains(&ra), "Retry-After {ra}");
    let r = post(
        &edge,
        "/v1/traces",
        Some(&other),
        Some(ORIGIN),
        "application/json",
        spans_json(1).into_bytes(),
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        edge.metric_value(&format!("ingest_rejected_total{{token_id=\"{id}\",endpoint=\"traces\",reason=\"rate_limited\"}}")).await,
        Some(2.0)
    );
}

#[tokio::test]
async fn items_over_the_burst_are_413_and_over_the_rate_429() {
    let edge = TestEdge::start().await;
    let (_, secret) = edge
        .create_token(
            json!({"name": "items", "type": "client", "origins": [ORIGIN],
            "limits": {"items_per_second": 1, "items_burst": 10}}),
        )
        .await;
    let send = |n| {
        post(
            &edge,
            "/v1/traces",
            Some(&secret),
            Some(ORIGIN),
            "application/json",
            spans_json(n).into_bytes(),
        )
    };
    assert_eq!(send(11).await.status(), 413);
    assert_eq!(send(8).await.status(), 200);
    assert_eq!(send(8).await.status(), 429);
}
