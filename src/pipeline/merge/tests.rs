//! Merged bodies checked by independent decoders: snap + prost for remote_write (on the real
//! Prometheus 2.42 bodies), prost and serde_json for OTLP, and the edge's own counters.

use std::sync::Arc;

use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;

use super::*;
use crate::remote_write::{proto_v1, Decoder, Limits, Version};
use crate::rum::{count_items, Format, Signal};

const FIXTURES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");

fn fixture(path: &str) -> Bytes {
    let path = format!("{FIXTURES}/{path}");
    Bytes::from(std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}")))
}

fn spooled(queue: Queue, content_type: &str, encoding: Option<&str>, body: Bytes) -> Spooled {
    Spooled {
        queue,
        accepted_ms: 7,
        token_id: Arc::from("tok"),
        tenant: Some(Arc::from("team-a")),
        content_type: Arc::from(content_type),
        content_encoding: encoding.map(Arc::from),
        items: 2,
        json_piece: None,
        body,
    }
}

fn rw(body: Bytes) -> Spooled {
    spooled(
        Queue::RemoteWrite,
        "application/x-protobuf",
        Some("snappy"),
        body,
    )
}

fn json(queue: Queue, body: &str) -> Spooled {
    spooled(
        queue,
        "application/json",
        None,
        Bytes::copy_from_slice(body.as_bytes()),
    )
}

/// Merges `records` with no size limit in practice; panics unless all of them joined.
fn merge_all(records: Vec<Spooled>) -> Spooled {
    let mut it = records.into_iter();
    let mut group = Group::new(it.next().unwrap(), 1 << 30);
    for r in it {
        assert!(group.push(&r), "record refused");
    }
    let n = group.len();
    let (parts, merged) = group.finish();
    assert_eq!(parts.len(), n);
    merged.expect("more than one record gives a merged body")
}

#[test]
fn snappy_blocks_join_without_recompression() {
    let bodies: Vec<Bytes> = (0..6)
        .map(|i| fixture(&format!("prometheus-2.42/body_{i:03}.bin")))
        .collect();
    let merged = merge_all(bodies.iter().cloned().map(rw).collect());
    assert_eq!(merged.items, 12);
    assert_eq!(merged.tenant.as_deref(), Some("team-a"));
    let mut want = Vec::new();
    for b in &bodies {
        want.extend(snap::raw::Decoder::new().decompress_vec(b).unwrap());
    }
    let got = snap::raw::Decoder::new()
        .decompress_vec(&merged.body)
        .expect("the merged body is valid snappy");
    assert_eq!(got, want, "decodes to the concatenated protobufs");
    let req = proto_v1::WriteRequest::decode(&got[..]).unwrap();
    let samples: usize = req.timeseries.iter().map(|t| t.samples.len()).sum();
    assert_eq!((samples, req.metadata.len()), (2353, 202));
    // The edge's own decoder takes it as one request with everything in it.
    let wall = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64;
    let written = Decoder::new()
        .decode(Version::V1, &merged.body, &Limits::default(), wall)
        .unwrap();
    assert_eq!((written.samples, written.metadata), (2353, 202));
}

#[test]
fn remote_write_2_and_mixed_headers_stay_apart() {
    let body = fixture("prometheus-2.42/body_000.bin");
    let v2 = spooled(
        Queue::RemoteWrite,
        "application/x-protobuf;proto=io.prometheus.write.v2.Request",
        Some("snappy"),
        body.clone(),
    );
    let mut g = Group::new(v2.clone(), 1 << 30);
    assert!(!g.push(&v2), "2.0 symbol references are per request");
    assert!(g.finish().1.is_none());

    let mut g = Group::new(rw(body.clone()), 1 << 30);
    let mut other_tenant = rw(body.clone());
    other_tenant.tenant = Some(Arc::from("team-b"));
    assert!(!g.push(&other_tenant));
    let mut no_tenant = rw(body.clone());
    no_tenant.tenant = None;
    assert!(!g.push(&no_tenant));
    let mut named = rw(body.clone());
    named.content_type = Arc::from("application/x-protobuf;proto=prometheus.WriteRequest");
    assert!(!g.push(&named), "content types differ");
    assert!(!g.push(&json(Queue::Traces, "{\"resourceSpans\":[]}")));
    assert_eq!(g.len(), 1);
}

#[test]
fn size_limit_counts_uncompressed_bytes_and_zero_turns_merging_off() {
    let body = fixture("prometheus-2.42/body_001.bin");
    let raw_len = snap::raw::decompress_len(&body).unwrap() as u64;
    assert!(raw_len > body.len() as u64);
    let mut g = Group::new(rw(body.clone()), 2 * raw_len);
    assert!(g.push(&rw(body.clone())));
    assert!(!g.push(&rw(body.clone())), "a third would pass the limit");
    assert_eq!(g.len(), 2);

    let mut off = Group::new(rw(body.clone()), 0);
    assert!(!off.push(&rw(body)));
    assert!(off.finish().1.is_none());
}

fn span_request(names: &[&str]) -> ExportTraceServiceRequest {
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans: names
                    .iter()
                    .map(|n| Span {
                        name: n.to_string(),
                        ..Span::default()
                    })
                    .collect(),
                ..ScopeSpans::default()
            }],
            ..ResourceSpans::default()
        }],
    }
}

#[test]
fn otlp_protobuf_bodies_concatenate() {
    let a = span_request(&["a1", "a2"]);
    let b = span_request(&["b1"]);
    let proto = |m: &ExportTraceServiceRequest| {
        spooled(
            Queue::Traces,
            "application/x-protobuf",
            None,
            m.encode_to_vec().into(),
        )
    };
    let merged = merge_all(vec![proto(&a), proto(&b)]);
    let got = ExportTraceServiceRequest::decode(&merged.body[..]).unwrap();
    let mut want = a.clone();
    want.resource_spans.extend(b.resource_spans);
    assert_eq!(got, want);
    assert_eq!(
        count_items(Signal::Traces, Format::Protobuf, &merged.body),
        Ok(3)
    );
}

#[test]
fn otlp_json_arrays_are_spliced() {
    let bodies = [
        fixture("otel-js-2.12/export_00.json.body"),
        fixture("otel-js-2.12/export_01.json.body"),
    ];
    let text = |b: &Bytes| std::str::from_utf8(b).unwrap().to_owned();
    let mut records: Vec<Spooled> = bodies
        .iter()
        .map(|b| json(Queue::Traces, &text(b)))
        .collect();
    // Whitespace and empty arrays are allowed around and inside the array.
    records.push(json(Queue::Traces, " { \"resourceSpans\" : [ ] } "));
    records.push(json(
        Queue::Traces,
        "{\n  \"resourceSpans\": [ {\"scopeSpans\":[{\"spans\":[{\"name\":\"x\"}]}]} ]\n}",
    ));
    let merged = merge_all(records);
    let got: serde_json::Value = serde_json::from_slice(&merged.body).expect("valid JSON");
    let mut want = Vec::new();
    for b in &bodies {
        let v: serde_json::Value = serde_json::from_slice(b).unwrap();
        want.extend(v["resourceSpans"].as_array().unwrap().iter().cloned());
    }
    want.push(serde_json::json!({"scopeSpans":[{"spans":[{"name":"x"}]}]}));
    assert_eq!(got, serde_json::json!({ "resourceSpans": want }));
    let single: u64 = bodies
        .iter()
        .map(|b| count_items(Signal::Traces, Format::Json, b).unwrap())
        .sum();
    assert_eq!(
        count_items(Signal::Traces, Format::Json, &merged.body),
        Ok(single + 1)
    );
    // The published OTLP types read it too.
    let typed: ExportTraceServiceRequest = serde_json::from_slice(&merged.body).unwrap();
    assert_eq!(typed.resource_spans.len(), want.len());
}

#[test]
fn json_logs_use_their_own_key() {
    let a = json(Queue::Logs, "{\"resourceLogs\":[{\"a\":1}]}");
    let b = json(Queue::Logs, "{\"resourceLogs\":[{\"b\":2},{\"c\":3}]}");
    let merged = merge_all(vec![a, b]);
    assert_eq!(
        &merged.body[..],
        &b"{\"resourceLogs\":[{\"a\":1},{\"b\":2},{\"c\":3}]}"[..]
    );
    let mut g = Group::new(json(Queue::Logs, "{\"resourceLogs\":[]}"), 1 << 20);
    assert!(!g.push(&json(Queue::Logs, "{\"resourceSpans\":[]}")));
}

#[test]
fn json_of_another_shape_goes_alone() {
    let good = "{\"resourceSpans\":[{\"a\":1}]}";
    for odd in [
        "{\"resourceSpans\":[],\"extra\":1}",
        "{\"resourceSpans\":null}",
        "{\"resourceSpans\":{}}",
        "{}",
        "[]",
        "{\"resourceSpans\":[}",
        "{\"resourceSpans\":[],\"resourceSpans\":[]}",
    ] {
        let mut g = Group::new(json(Queue::Traces, good), 1 << 20);
        assert!(!g.push(&json(Queue::Traces, odd)), "{odd}");
        let mut g = Group::new(json(Queue::Traces, odd), 1 << 20);
        assert!(!g.push(&json(Queue::Traces, good)), "{odd} first");
        let (parts, merged) = g.finish();
        assert_eq!((parts.len(), merged), (1, None));
    }
}

#[test]
fn varints_round_trip() {
    for v in [
        0u64,
        1,
        127,
        128,
        300,
        1 << 21,
        u64::from(u32::MAX),
        u64::MAX,
    ] {
        let mut buf = Vec::new();
        put_varint(&mut buf, v);
        assert_eq!(read_varint(&buf), Some((v, buf.len())));
    }
    assert_eq!(read_varint(&[0x80, 0x80]), None);
    assert_eq!(read_varint(&[]), None);
}
