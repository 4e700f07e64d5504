//! Content negotiation (RW2 Content-Type / Content-Encoding, 415), the checks made from the
//! headers alone before the body is read, and forward compatibility (unknown fields skipped).

use std::time::Duration;

use super::*;

/// A raw request head for `raw_exchange` with our token and the given extra headers.
pub fn head(secret: &str, extra: &[&str]) -> String {
    let mut h = format!(
        "POST /api/v1/write HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer {secret}\r\nUser-Agent: t/1"
    );
    for e in extra {
        h.push_str("\r\n");
        h.push_str(e);
    }
    h
}

#[tokio::test]
async fn headers_decide_before_the_body_is_read() {
    let edge = TestEdge::start().await;
    let (id, secret) = edge.remote_write_token().await;
    let big = "Content-Length: 104857600";
    let chunked = "Transfer-Encoding: chunked";
    let some = vec![b'x'; 1024];
    let mut chunk = b"400\r\n".to_vec();
    chunk.extend_from_slice(&some);
    let ct1 = "Content-Type: application/x-protobuf";
    let ct2 = "Content-Type: application/x-protobuf;proto=io.prometheus.write.v2.Request";
    // 100 MB announced (or an endless chunked stream), 1 KiB sent: the answer must come from
    // the headers alone, long before the 30 s body timeout.
    let cases: [(&[&str], &[u8], u16); 6] = [
        // RW2 Unsupported Request Content: 415 for the content type (edge: before the body).
        (
            &[
                "Content-Type: application/json",
                "Content-Encoding: snappy",
                big,
            ],
            &some,
            415,
        ),
        // RW2 Unsupported Request Content: 415 for the encoding.
        (&[ct1, "Content-Encoding: gzip", big], &some, 415),
        (&[ct1, big], &some, 415),
        (&[ct1, chunked], &chunk, 415),
        (&[ct2, "Content-Encoding: zstd", chunked], &chunk, 415),
        // edge: Content-Length over the 16 MiB wire limit is 413 at once.
        (&[ct1, "Content-Encoding: snappy", big], &some, 413),
    ];
    for (extra, body, want) in cases {
        let (status, text, took) = raw_exchange(edge.ingest, &head(&secret, extra), body).await;
        assert_eq!(status, want, "{extra:?}: {text}");
        assert!(took < Duration::from_secs(2), "{extra:?} took {took:?}");
    }
    let m = edge.metrics().await;
    assert_eq!(
        series_value(&m, &rejected(&id, "unsupported_media_type")),
        Some(5.0)
    );
    assert_eq!(series_value(&m, &rejected(&id, "too_large")), Some(1.0));
}

#[tokio::test]
async fn content_type_and_encoding_are_negotiated() {
    let edge = TestEdge::start().await;
    let (id, secret) = edge.remote_write_token().await;
    let v1 = || v1_n_samples(2);
    let v2 = || {
        let mut b = V2Builder::new();
        b.series(&[("__name__", "m")], &[1.0, 2.0]);
        b.body()
    };
    // RW2 Content-Type/Encoding follow RFC 9110: media type and codings are case-insensitive,
    // whitespace around ';' and quoted parameter values are allowed.
    let accepted: [(&str, &str, bool); 5] = [
        (
            "application/x-protobuf; proto=prometheus.WriteRequest",
            "snappy",
            false,
        ),
        (
            "Application/X-Protobuf;proto=io.prometheus.write.v2.Request",
            "snappy",
            true,
        ),
        (
            "application/x-protobuf ; proto=\"io.prometheus.write.v2.Request\"",
            "snappy",
            true,
        ),
        (CT_V1, "Snappy", false),
        (CT_V2, "SNAPPY", true),
    ];
    let mut failures = Vec::new();
    for (ct, ce, is_v2) in accepted {
        let r = post(
            &edge,
            &secret,
            Some(ct),
            Some(ce),
            if is_v2 { v2() } else { v1() },
        )
        .await;
        let (status, h) = (r.status(), written(r.headers()));
        if status != 204 || h != is_v2.then_some([2, 0, 0]) {
            failures.push(format!(
                "{ct:?} + {ce:?}: {status} {h:?} {:?}",
                r.text().await.unwrap()
            ));
        }
    }
    // RW2 Unsupported Request Content: MUST 415 for an unsupported content type or encoding.
    let refused: [(Option<&str>, Option<&str>); 12] = [
        (None, Some("snappy")),
        (Some("application/json"), Some("snappy")),
        (Some("text/plain"), Some("snappy")),
        (Some("application/octet-stream"), Some("snappy")),
        (Some("application/protobuf"), Some("snappy")),
        (
            Some("application/x-protobuf;proto=io.prometheus.write.v3.Request"),
            Some("snappy"),
        ),
        (Some("application/x-protobuf;proto=foo.Bar"), Some("snappy")),
        (Some(CT_V1), None),
        (Some(CT_V1), Some("gzip")),
        (Some(CT_V1), Some("identity")),
        (Some(CT_V2), Some("zstd")),
        (Some(CT_V1), Some("snappy, gzip")),
    ];
    for (ct, ce) in refused {
        let r = post(&edge, &secret, ct, ce, v1()).await;
        if r.status() != 415 {
            failures.push(format!("{ct:?} + {ce:?}: want 415, got {}", r.status()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    let m = edge.metrics().await;
    assert_eq!(
        series_value(&m, &rejected(&id, "unsupported_media_type")),
        Some(12.0)
    );
    assert_eq!(series_value(&m, &requests(&id, 415)), Some(12.0));
    assert_eq!(counts(&edge, &id).await[0], 10.0);
}

/// Fields a later minor version may add (and v1's field 2, which Cortex/Mimir senders set).
fn unknown_fields(out: &mut Vec<u8>) {
    pb_varint(2, 1, out);
    pb_varint(99, 7, out);
    pb_bytes(100, b"future", out);
}

#[tokio::test]
async fn unknown_fields_are_skipped() {
    let edge = TestEdge::start().await;
    let (id, secret) = edge.remote_write_token().await;
    // RW1 Compatibility: 1.x receivers MUST read any 1.x sender (minor versions add fields).
    let mut ts = prost::Message::encode_to_vec(&series(&[("__name__", "m")], &[1.0, 2.0]));
    pb_bytes(9, b"x", &mut ts);
    let mut raw = Vec::new();
    pb_bytes(1, &ts, &mut raw);
    unknown_fields(&mut raw);
    let r = write(&edge, &secret, CT_V1, snappy(&raw)).await;
    assert_eq!(r.status(), 204, "{}", r.text().await.unwrap());
    // RW2 Compatibility: 2.x receivers MUST read any 2.x sender; new optional fields may come.
    let mut b = V2Builder::new();
    b.series(&[("__name__", "m")], &[1.0, 2.0, 3.0]);
    let mut ts = prost::Message::encode_to_vec(&b.req.timeseries[0]);
    pb_varint(42, 1, &mut ts);
    let mut raw = Vec::new();
    for s in &b.req.symbols {
        pb_bytes(4, s.as_bytes(), &mut raw);
    }
    pb_bytes(5, &ts, &mut raw);
    pb_bytes(100, b"future", &mut raw);
    let r = write(&edge, &secret, CT_V2, snappy(&raw)).await;
    assert_eq!(r.status(), 204, "{}", r.text().await.unwrap());
    assert_eq!(written(r.headers()), Some([3, 0, 0]));
    assert_eq!(counts(&edge, &id).await, [5.0, 0.0, 0.0, 0.0]);
}
