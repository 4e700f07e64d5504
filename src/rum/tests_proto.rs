//! The protobuf walker (`rum/proto.rs`) against prost: rich bodies, every truncation, random
//! byte mutations and nesting around prost's recursion limit must get the same answer (the
//! same count, or a refusal) from both; and the early stop at the item limit.

use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{
    any_value, AnyValue, EntityRef, InstrumentationScope, KeyValue, KeyValueList,
};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::span::{Event, Link};
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span, Status};
use prost::Message;

use super::*;

fn kv(key: &str, value: any_value::Value) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
    }
}

/// One attribute of every `AnyValue` kind, arrays and kvlists included.
fn attributes() -> Vec<KeyValue> {
    use any_value::Value::*;
    vec![
        kv("s", StringValue("é".into())),
        kv("b", BoolValue(true)),
        kv("i", IntValue(-7)),
        kv("d", DoubleValue(1.5)),
        kv("x", BytesValue(vec![0, 255])),
        kv(
            "a",
            ArrayValue(opentelemetry_proto::tonic::common::v1::ArrayValue {
                values: vec![AnyValue {
                    value: Some(KvlistValue(KeyValueList {
                        values: vec![kv("k", IntValue(1))],
                    })),
                }],
            }),
        ),
    ]
}

fn resource() -> Option<Resource> {
    Some(Resource {
        attributes: attributes(),
        dropped_attributes_count: 2,
        entity_refs: vec![EntityRef {
            schema_url: "u".into(),
            r#type: "service".into(),
            id_keys: vec!["service.name".into()],
            description_keys: vec!["d".into()],
        }],
    })
}

fn scope() -> Option<InstrumentationScope> {
    Some(InstrumentationScope {
        name: "n".into(),
        version: "1".into(),
        attributes: attributes(),
        dropped_attributes_count: 1,
    })
}

fn rich_span(id: u8) -> Span {
    Span {
        trace_id: vec![id; 16],
        span_id: vec![id; 8],
        trace_state: "a=b".into(),
        parent_span_id: vec![1; 8],
        flags: 1,
        name: "GET /".into(),
        kind: 3,
        start_time_unix_nano: 1,
        end_time_unix_nano: 2,
        attributes: attributes(),
        dropped_attributes_count: 1,
        events: vec![Event {
            time_unix_nano: 3,
            name: "e".into(),
            attributes: attributes(),
            dropped_attributes_count: 0,
        }],
        dropped_events_count: 1,
        links: vec![Link {
            trace_id: vec![2; 16],
            span_id: vec![2; 8],
            trace_state: "c=d".into(),
            attributes: attributes(),
            dropped_attributes_count: 1,
            flags: 256,
        }],
        dropped_links_count: 1,
        status: Some(Status {
            message: "m".into(),
            code: 2,
        }),
    }
}

/// 2 resources, 3 scopes, 5 spans with every field set.
fn rich_traces() -> Vec<u8> {
    let scope_spans = |ids: &[u8]| ScopeSpans {
        scope: scope(),
        spans: ids.iter().map(|&i| rich_span(i)).collect(),
        schema_url: "s".into(),
    };
    ExportTraceServiceRequest {
        resource_spans: vec![
            ResourceSpans {
                resource: resource(),
                scope_spans: vec![scope_spans(&[1, 2]), scope_spans(&[3])],
                schema_url: "r".into(),
            },
            ResourceSpans {
                resource: None,
                scope_spans: vec![scope_spans(&[4, 5])],
                schema_url: String::new(),
            },
        ],
    }
    .encode_to_vec()
}

/// 1 resource, 2 scopes, 3 log records with every field set.
fn rich_logs() -> Vec<u8> {
    let record = |n: u64| LogRecord {
        time_unix_nano: n,
        observed_time_unix_nano: n + 1,
        severity_number: 9,
        severity_text: "INFO".into(),
        body: Some(AnyValue {
            value: Some(any_value::Value::StringValue("hello".into())),
        }),
        attributes: attributes(),
        dropped_attributes_count: 1,
        flags: 1,
        trace_id: vec![1; 16],
        span_id: vec![1; 8],
        event_name: "ev".into(),
    };
    let scope_logs = |records: Vec<LogRecord>| ScopeLogs {
        scope: scope(),
        log_records: records,
        schema_url: "s".into(),
    };
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            resource: resource(),
            scope_logs: vec![
                scope_logs(vec![record(1), record(2)]),
                scope_logs(vec![record(3)]),
            ],
            schema_url: "r".into(),
        }],
    }
    .encode_to_vec()
}

/// What prost says: the item count, or `None` when it refuses the body.
fn prost_count(signal: Signal, body: &[u8]) -> Option<u64> {
    match signal {
        Signal::Traces => ExportTraceServiceRequest::decode(body).ok().map(|r| {
            r.resource_spans
                .iter()
                .flat_map(|r| &r.scope_spans)
                .map(|s| s.spans.len() as u64)
                .sum()
        }),
        Signal::Logs => ExportLogsServiceRequest::decode(body).ok().map(|r| {
            r.resource_logs
                .iter()
                .flat_map(|r| &r.scope_logs)
                .map(|s| s.log_records.len() as u64)
                .sum()
        }),
    }
}

fn assert_agrees(signal: Signal, body: &[u8], what: &str) {
    let walked = count_items(signal, Format::Protobuf, body);
    match prost_count(signal, body) {
        Some(n) => assert_eq!(walked, Ok(n), "{what}: {body:02x?}"),
        None => assert_eq!(walked, Err(RumError::BadProtobuf), "{what}: {body:02x?}"),
    }
}

#[test]
fn rich_bodies_are_counted_as_prost_counts_them() {
    let traces = rich_traces();
    let logs = rich_logs();
    assert_eq!(
        count_items(Signal::Traces, Format::Protobuf, &traces),
        Ok(5)
    );
    assert_eq!(count_items(Signal::Logs, Format::Protobuf, &logs), Ok(3));
    // Each body read as the other signal: unknown fields skipped or wrong wire types refused,
    // whichever prost does.
    assert_agrees(Signal::Logs, &traces, "traces as logs");
    assert_agrees(Signal::Traces, &logs, "logs as traces");
}

#[test]
fn every_truncation_gets_prosts_answer() {
    for (signal, body) in [(Signal::Traces, rich_traces()), (Signal::Logs, rich_logs())] {
        for len in 0..body.len() {
            assert_agrees(signal, &body[..len], &format!("first {len} bytes"));
        }
    }
}

#[test]
fn random_mutations_get_prosts_answer() {
    // xorshift64: deterministic, so a failure reproduces.
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut refused = 0;
    for (signal, body) in [(Signal::Traces, rich_traces()), (Signal::Logs, rich_logs())] {
        for round in 0..5_000 {
            let mut mutated = body.clone();
            for _ in 0..1 + next() % 3 {
                let at = (next() % mutated.len() as u64) as usize;
                let byte = match next() % 4 {
                    // Bytes that are keys, lengths and continuation bits most of the time.
                    0 => 0x80 | (next() as u8),
                    1 => (next() as u8) & 0x7f,
                    2 => 0xff,
                    _ => next() as u8,
                };
                if let Some(b) = mutated.get_mut(at) {
                    *b = byte;
                }
            }
            if prost_count(signal, &mutated).is_none() {
                refused += 1;
            }
            assert_agrees(signal, &mutated, &format!("round {round}"));
        }
    }
    // The mutations reach both answers, so the comparison is not vacuous.
    assert!(
        (1_000..9_000).contains(&refused),
        "{refused} of 10,000 refused"
    );
}

fn varint(mut v: usize, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A length-delimited field `tag` holding `payload`.
fn field(tag: usize, payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 6);
    varint(tag << 3 | 2, &mut out);
    varint(payload.len(), &mut out);
    out.extend_from_slice(payload);
    out
}

/// A trace request whose one span has one attribute whose value nests `below` messages
/// (AnyValue, ArrayValue, AnyValue, ...): the innermost sits at depth 4 + `below` (the request
/// is depth 0) and ends with `extra`.
fn nested(below: usize, extra: &[u8]) -> Vec<u8> {
    // Odd levels are AnyValues (an int value), even ones ArrayValues.
    let mut inner = if below % 2 == 1 {
        vec![0x18, 0x01]
    } else {
        vec![]
    };
    inner.extend_from_slice(extra);
    for level in (2..=below).rev() {
        // An ArrayValue is an AnyValue's field 5; an AnyValue an ArrayValue's field 1.
        inner = field(if level % 2 == 0 { 5 } else { 1 }, &inner);
    }
    let mut key_value = field(1, b"k");
    key_value.extend(field(2, &inner));
    field(1, &field(2, &field(2, &field(9, &key_value))))
}

#[test]
fn nesting_around_prosts_recursion_limit_gets_prosts_answer() {
    let (mut accepted, mut refused) = (0, 0);
    for below in 90..=100 {
        // An unknown varint (field 13), an empty unknown group (field 14), a group holding a
        // varint: prost refuses each once its budget is spent, at different depths.
        for extra in [
            &[][..],
            &[0x68, 0x01],
            &[0x73, 0x74],
            &[0x73, 0x68, 0x01, 0x74],
        ] {
            let body = nested(below, extra);
            match prost_count(Signal::Traces, &body) {
                Some(_) => accepted += 1,
                None => refused += 1,
            }
            assert_agrees(
                Signal::Traces,
                &body,
                &format!("{below} deep, {extra:02x?}"),
            );
        }
    }
    // Groups nested in the request itself (unknown field 15), with and without a varint.
    for groups in 97..=102 {
        for inside in [&[][..], &[0x68, 0x01]] {
            let mut body = vec![0x7b; groups];
            body.extend_from_slice(inside);
            body.extend(std::iter::repeat_n(0x7c, groups));
            match prost_count(Signal::Traces, &body) {
                Some(_) => accepted += 1,
                None => refused += 1,
            }
            assert_agrees(Signal::Traces, &body, &format!("{groups} groups"));
        }
    }
    assert!(
        accepted > 10 && refused > 10,
        "{accepted} accepted, {refused} refused"
    );
}

#[test]
fn counting_stops_past_the_limit() {
    let body = rich_traces();
    let up_to = |max| count_items_up_to(Signal::Traces, Format::Protobuf, &body, max);
    assert_eq!(up_to(5), Ok(5));
    assert_eq!(up_to(4), Err(RumError::TooManyItems));
    assert_eq!(up_to(0), Err(RumError::TooManyItems));
    // The stop happens before the rest is read: garbage after the limit is not looked at.
    let mut spans = vec![0x12, 0x00, 0x12, 0x00, 0x12, 0x00, 0xff];
    let mut bomb = vec![0x0a, spans.len() as u8 + 2, 0x12, spans.len() as u8];
    bomb.append(&mut spans);
    let bomb_up_to = |max| count_items_up_to(Signal::Traces, Format::Protobuf, &bomb, max);
    assert_eq!(bomb_up_to(2), Err(RumError::TooManyItems));
    assert_eq!(bomb_up_to(3), Err(RumError::BadProtobuf));
    let error = RumError::TooManyItems;
    assert_eq!((error.status(), error.reason()), (413, "too_large"));
    // JSON is counted whole whatever the limit.
    assert_eq!(
        count_items_up_to(Signal::Traces, Format::Json, b"{}", 0),
        Ok(0)
    );
}
