//! Size limits (checked from the headers, before the body; the snappy length header before any
//! allocation), rate limits with the configurable throttle status, and the full hand-off.

use std::time::{Duration, Instant};

use super::media::head;

use serde_json::json;

use super::*;

#[tokio::test]
async fn snappy_length_header_is_checked_before_decompressing() {
    let edge = TestEdge::start().await;
    let (id, secret) = edge.remote_write_token().await;
    // A few bytes of body declaring 4 GiB, 4 GiB - 1 and 32 MiB + 1 decompressed (the default
    // limit is 32 MiB): refused from the preamble, without allocating it.
    let declared = [1u64 << 32, u64::from(u32::MAX), (32 << 20) + 1];
    let mut failures = Vec::new();
    for d in declared {
        for ct in [CT_V1, CT_V2] {
            let started = Instant::now();
            let r = write(
                &edge,
                &secret,
                ct,
                snappy_header(d, &[0, 1, 2, 3, 4, 5, 6, 7]),
            )
            .await;
            let took = started.elapsed();
            if r.status() != 413 || took > Duration::from_secs(1) {
                failures.push(format!(
                    "{d} {ct}: {} in {took:?}: {}",
                    r.status(),
                    r.text().await.unwrap()
                ));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert_eq!(
        edge.metric_value(&rejected(&id, "too_large")).await,
        Some(6.0)
    );
}

#[tokio::test]
async fn a_declared_length_the_body_cannot_hold_is_bad_encoding() {
    // Issue 17: within the limit, but 2 bytes of snappy decode to at most 42: refused as
    // undecodable before a 32 MiB buffer is zero-filled for it.
    let edge = TestEdge::start().await;
    let (id, secret) = edge.remote_write_token().await;
    for ct in [CT_V1, CT_V2] {
        let r = write(&edge, &secret, ct, snappy_header(32 << 20, &[0, 0])).await;
        assert_eq!(r.status(), 400, "{ct}");
    }
    assert_eq!(
        edge.metric_value(&rejected(&id, "bad_encoding")).await,
        Some(2.0)
    );
}

#[tokio::test]
async fn decoded_size_limit_is_configurable() {
    let edge = TestEdge::start_with(|c| c.body.remote_write_max_decoded_bytes = 4096).await;
    let (id, secret) = edge.remote_write_token().await;
    let (small, large) = (v1_n_samples(20), v1_n_samples(300));
    assert!(snap::raw::decompress_len(&small).unwrap() < 4096);
    assert!(snap::raw::decompress_len(&large).unwrap() > 4096);
    assert!(
        large.len() < 4096,
        "on the wire it is small: the decoded size decides"
    );
    assert_eq!(write(&edge, &secret, CT_V1, small).await.status(), 204);
    assert_eq!(write(&edge, &secret, CT_V1, large).await.status(), 413);
    assert_eq!(
        edge.metric_value(&rejected(&id, "too_large")).await,
        Some(1.0)
    );
    assert_eq!(counts(&edge, &id).await[0], 20.0);
}

/// A v1 body that snappy cannot shrink: `n` series with 1000 pseudo-random characters each.
fn incompressible(n: usize) -> Vec<u8> {
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut value = || -> String {
        (0..1000)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 7;
                x ^= x << 17;
                char::from(
                    b"abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
                        [(x % 62) as usize],
                )
            })
            .collect()
    };
    v1_series_body(
        (0..n)
            .map(|i| series(&[("__name__", &format!("m{i}")), ("v", &value())], &[1.0]))
            .collect(),
    )
}

#[tokio::test]
async fn wire_size_limit_applies_with_and_without_content_length() {
    let edge = TestEdge::start_with(|c| c.body.remote_write_max_wire_bytes = 4096).await;
    let (id, secret) = edge.remote_write_token().await;
    let (small, large) = (incompressible(3), incompressible(5));
    assert!(
        small.len() < 4096 && large.len() > 4096,
        "{} {}",
        small.len(),
        large.len()
    );
    assert_eq!(write(&edge, &secret, CT_V1, small).await.status(), 204);
    // With a Content-Length: refused from the header.
    assert_eq!(
        write(&edge, &secret, CT_V1, large.clone()).await.status(),
        413
    );
    // Chunked, no Content-Length: refused while reading.
    let mut body = Vec::new();
    for part in large.chunks(1000) {
        body.extend_from_slice(format!("{:x}\r\n", part.len()).as_bytes());
        body.extend_from_slice(part);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(b"0\r\n\r\n");
    let extra = [
        "Content-Type: application/x-protobuf",
        "Content-Encoding: snappy",
        "Transfer-Encoding: chunked",
    ];
    let (status, text, _) = raw_exchange(edge.ingest, &head(&secret, &extra), &body).await;
    assert_eq!(status, 413, "{text}");
    assert_eq!(
        edge.metric_value(&rejected(&id, "too_large")).await,
        Some(2.0)
    );
    assert_eq!(counts(&edge, &id).await[0], 3.0);
}

fn retry_after(r: &reqwest::Response) -> u64 {
    r.headers()
        .get("retry-after")
        .unwrap_or_else(|| panic!("no Retry-After on {}", r.status()))
        .to_str()
        .unwrap()
        .parse()
        .unwrap()
}

/// Items over the token's budget: `status` (429 or 503) with a sane Retry-After; more than
/// the burst in one request: 413; another token is unaffected.
async fn item_budget(status: u16) {
    let edge = TestEdge::start_with(|c| c.remote_write.throttle_status = status).await;
    let limits = json!({"items_per_second": 1, "items_burst": 3000});
    let (id, secret) = edge
        .create_token(json!({"name": "slow", "type": "remote_write", "limits": limits}))
        .await;
    let (other_id, other) = edge.remote_write_token().await;
    assert_eq!(
        write(&edge, &secret, CT_V1, v1_n_samples(2000))
            .await
            .status(),
        204
    );
    // RW1/RW2 Retries: 429 (or 5xx, retried by every sender) when throttled; Retry-After MAY.
    let r = write(&edge, &secret, CT_V1, v1_n_samples(2000)).await;
    assert_eq!(r.status(), status);
    let ra = retry_after(&r);
    assert!((1..=3000).contains(&ra), "Retry-After {ra}");
    assert_eq!(written(r.headers()), None);
    let mut b = V2Builder::new();
    for i in 0..2000 {
        b.series(&[("__name__", &format!("m{i}"))], &[1.0]);
    }
    let r = write(&edge, &secret, CT_V2, b.body()).await;
    assert_eq!(r.status(), status);
    assert!(retry_after(&r) >= 1);
    assert_eq!(written(r.headers()), Some([0, 0, 0]));
    // SPEC §7: more items than items_burst can never pass: 413 naming the limit.
    let r = write(&edge, &secret, CT_V1, v1_n_samples(3001)).await;
    assert_eq!(r.status(), 413);
    let text = r.text().await.unwrap();
    assert!(text.contains("burst") || text.contains("3000"), "{text}");
    assert_eq!(
        write(&edge, &other, CT_V1, v1_n_samples(2000))
            .await
            .status(),
        204
    );
    let m = edge.metrics().await;
    let v = |s: String| series_value(&m, &s);
    assert_eq!(v(rejected(&id, "rate_limited")), Some(2.0));
    assert_eq!(v(rejected(&id, "too_large")), Some(1.0));
    assert_eq!(v(requests(&id, status)), Some(2.0));
    assert_eq!(
        v(format!("ingest_samples_total{{token_id=\"{id}\"}}")),
        Some(2000.0)
    );
    assert_eq!(
        v(format!("ingest_samples_total{{token_id=\"{other_id}\"}}")),
        Some(2000.0)
    );
}

#[tokio::test]
async fn items_over_budget_are_429_with_retry_after() {
    item_budget(429).await;
}

#[tokio::test]
async fn throttle_status_503_is_configurable() {
    item_budget(503).await;
}

#[tokio::test]
async fn request_rate_is_limited_per_token() {
    let edge = TestEdge::start().await;
    let limits = json!({"requests_per_second": 1, "requests_burst": 2});
    let (id, secret) = edge
        .create_token(json!({"name": "chatty", "type": "remote_write", "limits": limits}))
        .await;
    let mut statuses = Vec::new();
    for _ in 0..3 {
        statuses.push(write(&edge, &secret, CT_V1, v1_n_samples(1)).await);
    }
    let codes: Vec<u16> = statuses.iter().map(|r| r.status().as_u16()).collect();
    assert_eq!(codes, [204, 204, 429]);
    assert!(retry_after(&statuses[2]) >= 1);
    assert_eq!(
        edge.metric_value(&rejected(&id, "rate_limited")).await,
        Some(1.0)
    );
}

#[tokio::test]
async fn full_hand_off_is_503_and_nothing_is_counted() {
    let edge = TestEdge::start_with(|c| c.pipeline.max_bytes = 64).await;
    let (id, secret) = edge.remote_write_token().await;
    // RW1 Retries: a write that fails and should be retried MUST get a 5xx.
    let r = write(&edge, &secret, CT_V1, v1_n_samples(5)).await;
    assert_eq!(r.status(), 503);
    assert!(retry_after(&r) >= 1);
    let m = edge.metrics().await;
    assert_eq!(series_value(&m, &rejected(&id, "overloaded")), Some(1.0));
    assert_eq!(counts(&edge, &id).await, [0.0; 4]);
}
