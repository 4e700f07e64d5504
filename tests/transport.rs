//! Transport (SPEC §15): TLS on the ingest listener with certificates picked up again while
//! connections stay open, HTTP/2 by ALPN and by prior knowledge (h2c), the per-stream limits,
//! and the HTTP/2 abuse cases (rapid reset, CONTINUATION flood). Every case runs against a
//! real edge on 127.0.0.1:0 with real clients: reqwest (hyper, rustls) for well-behaved
//! traffic, the `h2` crate and raw frames for hostile traffic.

mod common;
#[path = "transport/h2.rs"]
mod h2c;
#[path = "transport/pki.rs"]
mod pki;
#[path = "transport/tls.rs"]
mod tls;

use std::path::Path;

use common::{fixtures, TestEdge};
use serde_json::json;

pub const ORIGIN: &str = "http://localhost:3000";

/// Starts an edge whose ingest listener presents `dir/cert.pem` + `dir/key.pem`.
pub async fn tls_edge(dir: &Path, f: impl FnOnce(&mut ingest_edge::Config)) -> TestEdge {
    let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
    TestEdge::start_with(|c| {
        c.server.tls_cert_file = Some(cert);
        c.server.tls_key_file = Some(key);
        f(c)
    })
    .await
}

/// A client that trusts only `ca_pem`, offers h2 and http/1.1 by ALPN, and reports the
/// peer certificate.
pub fn tls_client(ca_pem: &str) -> reqwest::Client {
    reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap())
        .tls_info(true)
        .build()
        .unwrap()
}

/// A real Prometheus 2.42 remote_write body (Remote-Write 1.0, snappy).
pub fn rw_body() -> Vec<u8> {
    std::fs::read(fixtures().join("prometheus-2.42/body_000.bin")).unwrap()
}

pub fn rw_request(
    http: &reqwest::Client,
    base: &str,
    secret: &str,
    body: Vec<u8>,
) -> reqwest::RequestBuilder {
    http.post(format!("{base}/api/v1/write"))
        .bearer_auth(secret)
        .header("content-type", "application/x-protobuf")
        .header("content-encoding", "snappy")
        .header("x-prometheus-remote-write-version", "0.1.0")
        .body(body)
}

/// OTLP JSON with one span.
pub fn rum_body() -> String {
    json!({"resourceSpans": [{"resource": {"attributes": []}, "scopeSpans": [{"scope": {"name": "t"},
        "spans": [{"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b100",
                   "name": "fetch", "kind": 3, "startTimeUnixNano": "1700000000000000000",
                   "endTimeUnixNano": "1700000000100000000"}]}]}]})
    .to_string()
}

pub fn rum_request(http: &reqwest::Client, base: &str, secret: &str) -> reqwest::RequestBuilder {
    http.post(format!("{base}/v1/traces"))
        .bearer_auth(secret)
        .header("origin", ORIGIN)
        .header("content-type", "application/json")
        .body(rum_body())
}

/// `ingest_connections_total` for the ingest listener.
pub async fn connections(edge: &TestEdge, protocol: &str, tls: bool) -> f64 {
    edge.metric_value(&format!(
        "ingest_connections_total{{listener=\"ingest\",protocol=\"{protocol}\",tls=\"{tls}\"}}"
    ))
    .await
    .unwrap_or(0.0)
}

/// The edge still answers a plain request on a fresh connection.
pub async fn edge_is_up(edge: &TestEdge, base: &str, http: &reqwest::Client) {
    let r = http.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200, "edge no longer serves after the attack");
    let _ = edge;
}
