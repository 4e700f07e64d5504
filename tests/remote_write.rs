//! remote_write conformance against a real edge on 127.0.0.1:0: hand-built Remote-Write 1.0
//! and 2.0 requests (own prost structs, see `rw_support`), valid and invalid in every way the
//! specs and SPEC §6 name, plus the real Prometheus 2.42 bodies in the shared fixtures.
//!
//! Each case names the rule it covers: RW1 = remote_write_spec.md, RW2 =
//! remote_write_spec_2_0.md, edge = SPEC §6/§7 and issue 3.

mod common;
mod rw_support;

use std::collections::BTreeMap;

use common::{fixtures, series_value, TestEdge};
use reqwest::header::HeaderMap;
use rw_support::*;

const WRITTEN: [&str; 3] = [
    "x-prometheus-remote-write-samples-written",
    "x-prometheus-remote-write-histograms-written",
    "x-prometheus-remote-write-exemplars-written",
];

async fn post(
    edge: &TestEdge,
    secret: &str,
    ct: Option<&str>,
    ce: Option<&str>,
    body: Vec<u8>,
) -> reqwest::Response {
    let version = if ct.is_some_and(|c| c.contains("v2")) {
        "2.0.0"
    } else {
        "0.1.0"
    };
    let mut req = edge
        .http
        .post(edge.ingest_url("/api/v1/write"))
        .bearer_auth(secret)
        .header("user-agent", "ingest-edge-conformance/1")
        .header("x-prometheus-remote-write-version", version)
        .body(body);
    if let Some(ct) = ct {
        req = req.header("content-type", ct);
    }
    if let Some(ce) = ce {
        req = req.header("content-encoding", ce);
    }
    req.send().await.unwrap()
}

async fn write(edge: &TestEdge, secret: &str, ct: &str, body: Vec<u8>) -> reqwest::Response {
    post(edge, secret, Some(ct), Some("snappy"), body).await
}

/// The three `*-Written` headers; `None` when there is none, panics when only some are there
/// (RW2 Required Written Response Headers: each a single 64-bit integer).
fn written(h: &HeaderMap) -> Option<[u64; 3]> {
    let v: Vec<Option<u64>> = WRITTEN
        .iter()
        .map(|n| {
            h.get(*n)
                .map(|v| v.to_str().unwrap().parse::<u64>().unwrap())
        })
        .collect();
    match v.as_slice() {
        [None, None, None] => None,
        [Some(a), Some(b), Some(c)] => Some([*a, *b, *c]),
        _ => panic!("only some Written headers: {h:?}"),
    }
}

/// samples, histograms, exemplars, metadata accepted for `id` (absent series = 0).
async fn counts(edge: &TestEdge, id: &str) -> [f64; 4] {
    let m = edge.metrics().await;
    ["samples", "histograms", "exemplars", "metadata"]
        .map(|k| series_value(&m, &format!("ingest_{k}_total{{token_id=\"{id}\"}}")).unwrap_or(0.0))
}

fn rejected(id: &str, reason: &str) -> String {
    format!(
        "ingest_rejected_total{{token_id=\"{id}\",endpoint=\"remote_write\",reason=\"{reason}\"}}"
    )
}

fn requests(id: &str, code: u16) -> String {
    format!("ingest_requests_total{{token_id=\"{id}\",endpoint=\"remote_write\",code=\"{code}\"}}")
}

/// Every remote_write rejection counter of `id`, by reason.
fn rejections(m: &str, id: &str) -> BTreeMap<String, f64> {
    let prefix =
        format!("ingest_rejected_total{{token_id=\"{id}\",endpoint=\"remote_write\",reason=\"");
    m.lines()
        .filter_map(|l| l.strip_prefix(&prefix))
        .filter_map(|rest| {
            let (reason, value) = rest.split_once("\"} ")?;
            Some((reason.to_string(), value.trim().parse().ok()?))
        })
        .collect()
}

fn stale() -> f64 {
    f64::from_bits(STALE_NAN)
}

/// A v1 request with every kind of data: 10 samples (stale marker, NaN, ±Inf among them),
/// 4 native histograms (int, float, custom buckets, stale marker), 2 exemplars, 2 metadata.
fn v1_full() -> Vec<u8> {
    let t = now_ms() - 5000;
    let mut api = series(
        &[
            ("__name__", "http_requests_total"),
            ("code", "200"),
            ("job", "api"),
        ],
        &[1.0, 2.0, 3.0],
    );
    api.exemplars = vec![
        v1::Exemplar {
            labels: labels(&[("trace_id", "4bf92f3577b34da6a3ce929d0e0e4736")]),
            value: 1.0,
            timestamp: t,
        },
        v1::Exemplar {
            labels: labels(&[("span_id", "00f067aa0ba902b7")]),
            value: 3.0,
            timestamp: t + 1,
        },
    ];
    let mut hist = series(&[("__name__", "rpc_latency_seconds"), ("job", "api")], &[]);
    hist.histograms = vec![
        hist::int(t, None),
        hist::float(t + 1),
        hist::custom(t + 2),
        hist::stale(t + 3),
    ];
    v1_body(&v1::WriteRequest {
        timeseries: vec![
            api,
            // RW1 Labels: ':' is valid in metric names, '_'-led label names are valid, label
            // values MAY be any UTF-8.
            series(
                &[
                    ("__name__", "ns:rule:rate5m"),
                    ("_private", "ünïcødé ☃ \"q\" \\ \n"),
                ],
                &[0.5],
            ),
            // RW1 Stale Markers: 0x7ff0000000000002 is a valid value; so are NaN and ±Inf.
            series(
                &[("__name__", "up"), ("instance", "a:9090")],
                &[
                    stale(),
                    f64::NAN,
                    f64::INFINITY,
                    f64::NEG_INFINITY,
                    0.0,
                    -0.0,
                ],
            ),
            hist,
        ],
        metadata: vec![
            v1::MetricMetadata {
                r#type: 1,
                metric_family_name: "http_requests_total".into(),
                help: "Requests.".into(),
                unit: String::new(),
            },
            v1::MetricMetadata {
                r#type: 3,
                metric_family_name: "rpc_latency_seconds".into(),
                help: "Latency.".into(),
                unit: "seconds".into(),
            },
        ],
    })
}

#[tokio::test]
async fn valid_v1_requests_are_accepted_and_counted_exactly() {
    let edge = TestEdge::start().await;
    let (id, secret) = edge.remote_write_token().await;
    // RW2 Content-Type: both v1 spellings select prometheus.WriteRequest.
    for ct in [CT_V1, CT_V1_PROTO] {
        let r = write(&edge, &secret, ct, v1_full()).await;
        // RW1 Retries: MUST respond 2xx on success (204, SPEC §6); body empty (SHOULD).
        assert_eq!(r.status(), 204, "{ct}");
        // RW2 Written headers: none on v1 responses (edge).
        assert_eq!(written(r.headers()), None, "{ct}");
        assert!(r.bytes().await.unwrap().is_empty());
    }
    assert_eq!(counts(&edge, &id).await, [20.0, 8.0, 4.0, 4.0]);
    // RW1 Negotiation: a sender starts with an empty 1.x request; it must succeed.
    let r = write(&edge, &secret, CT_V1, snappy(&[])).await;
    assert_eq!(r.status(), 204);
    assert_eq!(written(r.headers()), None);
    assert_eq!(counts(&edge, &id).await, [20.0, 8.0, 4.0, 4.0]);
    assert_eq!(edge.metric_value(&requests(&id, 204)).await, Some(3.0));
}

/// A v2 request with every kind of data; returns it and its (samples, histograms, exemplars,
/// metadata): 9, 4, 3, 7.
fn v2_full() -> (Vec<u8>, [u64; 4]) {
    let t = now_ms() - 5000;
    let mut b = V2Builder::new();
    let trace = b.refs(&[("trace_id", "4bf92f3577b34da6a3ce929d0e0e4736")]);
    let (help, unit) = (b.sym("Requests."), b.sym("seconds"));
    let meta = |ty| {
        Some(v2::Metadata {
            r#type: ty,
            help_ref: help,
            unit_ref: unit,
        })
    };
    let s = b.series(
        &[
            ("__name__", "http_requests_total"),
            ("code", "200"),
            ("job", "api"),
        ],
        &[1.0, 2.0, 3.0],
    );
    // RW2 Samples: start_timestamp may be set (0 = unset).
    for x in &mut s.samples {
        x.start_timestamp = t - 60_000;
    }
    s.exemplars = vec![
        v2::Exemplar {
            labels_refs: trace.clone(),
            value: 1.0,
            timestamp: t,
        },
        v2::Exemplar {
            labels_refs: vec![],
            value: 2.0,
            timestamp: t + 1,
        },
    ];
    s.metadata = meta(1);
    // RW2 Stale Markers / values: StaleNaN, NaN, ±Inf accepted.
    let s = b.series(
        &[("__name__", "up"), ("instance", "a:9090")],
        &[stale(), f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 0.0],
    );
    s.metadata = meta(2);
    // Issue 3: the retired series field 6 (created_timestamp) is skipped silently.
    s.retired_created_timestamp = t - 60_000;
    b.series(
        &[("__name__", "ns:rule:rate5m"), ("_private", "ünïcødé ☃")],
        &[0.5],
    )
    .metadata = meta(2);
    for (name, h, ty) in [
        ("h_int", hist::int(t, None), 3),
        ("h_float", hist::float(t), 4),
        ("h_custom", hist::custom(t), 3),
        ("h_stale", hist::stale(t), 3),
    ] {
        let s = b.series(&[("__name__", name), ("job", "api")], &[]);
        s.histograms.push(h);
        s.metadata = meta(ty);
        if name == "h_int" {
            s.exemplars.push(v2::Exemplar {
                labels_refs: trace.clone(),
                value: 0.7,
                timestamp: t,
            });
        }
    }
    (b.body(), [9, 4, 3, 7])
}

#[tokio::test]
async fn valid_v2_requests_are_accepted_with_exact_written_headers() {
    let edge = TestEdge::start().await;
    let (id, secret) = edge.remote_write_token().await;
    let (body, [s, h, e, m]) = v2_full();
    let r = write(&edge, &secret, CT_V2, body).await;
    // RW2 Response: 2xx (204) when everything was written; body empty.
    assert_eq!(r.status(), 204, "{}", r.text().await.unwrap());
    // RW2 Written headers: MUST be present with the precise counts.
    assert_eq!(written(r.headers()), Some([s, h, e]));
    assert!(r.bytes().await.unwrap().is_empty());
    assert_eq!(
        counts(&edge, &id).await,
        [s as f64, h as f64, e as f64, m as f64]
    );
    // RW2 Content-Type: the receiver MUST use the header to pick the schema: the same v2 body
    // read as prometheus.WriteRequest is an empty message (fields 4/5 unknown there).
    let (body, _) = v2_full();
    let r = write(&edge, &secret, CT_V1, body).await;
    assert_eq!(r.status(), 204);
    assert_eq!(written(r.headers()), None);
    // A v2 request with only the symbols table: nothing to write, 0 written.
    let r = write(&edge, &secret, CT_V2, V2Builder::new().body()).await;
    assert_eq!(r.status(), 204);
    assert_eq!(written(r.headers()), Some([0, 0, 0]));
    assert_eq!(
        counts(&edge, &id).await,
        [s as f64, h as f64, e as f64, m as f64]
    );
}

#[tokio::test]
async fn limits_at_their_boundary_are_accepted() {
    let edge = TestEdge::start().await;
    let (id, secret) = edge.remote_write_token().await;
    let (name, value) = ("n".repeat(1024), "v".repeat(2048));
    let mut thirty: Vec<(String, String)> =
        (1..30).map(|i| (format!("l{i:02}"), "v".into())).collect();
    thirty.insert(0, ("__name__".into(), "m".into()));
    let thirty: Vec<(&str, &str)> = thirty
        .iter()
        .map(|(a, b)| (a.as_str(), b.as_str()))
        .collect();
    let edge_cases: [&[(&str, &str)]; 3] = [
        &thirty,
        &[("__name__", "m"), (&name, "x")],
        &[("__name__", "m"), ("job", &value)],
    ];
    let soon = now_ms() + 9 * 60 * 1000;
    // v1: 30 labels, a 1024-byte name, a 2048-byte value, a sample 9 min ahead.
    let mut ts: Vec<v1::TimeSeries> = edge_cases.iter().map(|p| series(p, &[1.0])).collect();
    ts.push(series(&[("__name__", "future")], &[1.0]));
    ts[3].samples[0].timestamp = soon;
    let r = write(&edge, &secret, CT_V1, v1_series_body(ts)).await;
    assert_eq!(r.status(), 204, "{}", r.text().await.unwrap());
    // v2: the same.
    let mut b = V2Builder::new();
    for p in edge_cases {
        b.series(p, &[1.0]);
    }
    b.series(&[("__name__", "future")], &[1.0]).samples[0].timestamp = soon;
    let r = write(&edge, &secret, CT_V2, b.body()).await;
    assert_eq!(r.status(), 204, "{}", r.text().await.unwrap());
    assert_eq!(written(r.headers()), Some([4, 0, 0]));
    assert_eq!(counts(&edge, &id).await[0], 8.0);
}

#[tokio::test]
async fn invalid_requests_are_refused_with_their_reason() {
    let edge = TestEdge::start().await;
    let (id, secret) = edge.remote_write_token().await;
    let mut failures = Vec::new();
    let mut before = rejections(&edge.metrics().await, &id);
    for c in cases::invalid_cases() {
        let v2 = c.content_type == CT_V2;
        let r = write(&edge, &secret, c.content_type, c.body).await;
        let status = r.status().as_u16();
        let hdrs = written(r.headers());
        let text = r.text().await.unwrap();
        let after = rejections(&edge.metrics().await, &id);
        let moved: Vec<_> = after
            .iter()
            .filter(|(k, v)| before.get(*k) != Some(v))
            .map(|(k, _)| k.clone())
            .collect();
        // RW1/RW2 Invalid Samples: 400 (MUST) with a human-readable message (RW2 MUST).
        let mut bad = Vec::new();
        if status != c.status {
            bad.push(format!("status {status}"));
        }
        if text.trim().is_empty() {
            bad.push("empty error body".into());
        }
        if moved != [c.reason] {
            bad.push(format!("reasons counted {moved:?}"));
        }
        // RW2 Written headers on failure too (0 written, all or nothing); none on v1.
        if hdrs != (if v2 { Some([0, 0, 0]) } else { None }) {
            bad.push(format!("written headers {hdrs:?}"));
        }
        if !bad.is_empty() {
            failures.push(format!(
                "{} [{}]: want {} {}; got {} (body {text:?})",
                c.name,
                c.must,
                c.status,
                c.reason,
                bad.join(", ")
            ));
        }
        before = after;
    }
    assert!(
        failures.is_empty(),
        "{} case(s) failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // All or nothing: not one sample of a refused request is counted.
    assert_eq!(counts(&edge, &id).await, [0.0; 4]);
}

#[path = "remote_write/clients.rs"]
mod clients;
#[path = "remote_write/limits.rs"]
mod limits;
#[path = "remote_write/media.rs"]
mod media;
