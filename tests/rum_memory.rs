//! Memory per RUM request, measured from outside: the real binary runs as a child process and
//! its peak resident set (`VmHWM` in `/proc/<pid>/status`) is read before and after a hostile
//! body. An in-process edge cannot be measured this way (the test harness shares its heap).

use std::io::Write;

mod common;

use common::child::ChildEdge;
use std::time::Duration;

const KEY: &str = "rum-memory-test-admin-key-0";
const ORIGIN: &str = "http://localhost:3000";

fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// `ExportTraceServiceRequest { resource_spans: [{ scope_spans: [{ spans: [empty; n] }] }] }`:
/// two bytes per span on the wire, a few hundred bytes per span once built.
fn empty_spans_request(n: usize) -> Vec<u8> {
    let spans_len = (2 * n) as u64;
    let mut scope = vec![0x12];
    varint(spans_len, &mut scope);
    let mut body = vec![0x0a];
    varint(scope.len() as u64 + spans_len, &mut body);
    body.extend_from_slice(&scope);
    body.reserve(2 * n);
    for _ in 0..n {
        body.extend_from_slice(&[0x12, 0x00]);
    }
    body
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// Issue 17, defect 2: ~8 KB of gzip inflating to 8 MiB of empty spans (just under the decoded
/// limit) used to make the edge build ~4 M `Span`s before refusing with `413` (peak RSS
/// ~1 GiB). Counting walks the wire format instead: the peak grows by the decoded body only.
#[test]
fn gzip_of_millions_of_empty_spans_is_refused_without_building_them() {
    let dir = tempfile::tempdir().unwrap();
    let edge = ChildEdge::serve(dir.path(), KEY);
    let http = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let created: serde_json::Value = http
        .post(format!("http://{}/api/v1/tokens", edge.ops))
        .bearer_auth(KEY)
        .json(
            &serde_json::json!({"name": "bomb", "type": "client", "client_type": "web",
            "origins": [ORIGIN], "environment": "test"}),
        )
        .send()
        .unwrap()
        .json()
        .unwrap();
    let secret = created["token"].as_str().unwrap().to_string();

    // 8 MiB decoded (the default `rum_max_decoded_bytes`) minus the 10 bytes of framing.
    let raw = empty_spans_request(((8 << 20) - 10) / 2);
    assert!(raw.len() <= 8 << 20, "{}", raw.len());
    let bomb = gzip(&raw);
    assert!(bomb.len() < 16 << 10, "{} bytes of gzip", bomb.len());
    drop(raw);

    let send = |body: Vec<u8>| {
        http.post(format!("http://{}/v1/traces", edge.ingest))
            .bearer_auth(&secret)
            .header("origin", ORIGIN)
            .header("content-type", "application/x-protobuf")
            .header("content-encoding", "gzip")
            .body(body)
            .send()
            .unwrap()
    };
    // Warm up with a small valid request so the baseline includes the request path itself.
    let small = gzip(&empty_spans_request(10));
    assert_eq!(send(small).status(), 200);

    let before = edge.status_kib("VmHWM");
    let resp = send(bomb);
    let status = resp.status().as_u16();
    let text = resp.text().unwrap();
    let after = edge.status_kib("VmHWM");
    eprintln!("VmHWM before {before} KiB, after {after} KiB; answer {status} {text}");
    assert_eq!(status, 413, "{text}");
    assert!(
        after.saturating_sub(before) < 64 << 10,
        "peak RSS grew by {} KiB (from {before} to {after} KiB) for one 8 KB request",
        after - before
    );

    // One span more than fits: the decoded bound refuses it before anything is counted.
    let over = gzip(&empty_spans_request(((8 << 20) - 10) / 2 + 1));
    let resp = send(over);
    assert_eq!(resp.status().as_u16(), 413);
    // RUM errors are an OTLP `Status` in the request's format (SPEC §15): protobuf here,
    // code 3 (INVALID_ARGUMENT) and the reason as its message.
    let reason = b"decompressed body too large";
    let mut status = vec![0x08, 0x03, 0x12, reason.len() as u8];
    status.extend_from_slice(reason);
    assert_eq!(resp.bytes().unwrap().as_ref(), status.as_slice());
    let last = edge.status_kib("VmHWM");
    assert!(
        last.saturating_sub(before) < 64 << 10,
        "peak RSS grew from {before} to {last} KiB"
    );
}
