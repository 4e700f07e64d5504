//! Unit tests of RUM body handling: real JS SDK exports, OTLP JSON quirks, protobuf round trips,
//! and every way a body or a Content-Type is refused.

use super::*;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, InstrumentationScope, KeyValue};
use opentelemetry_proto::tonic::logs::v1::{LogRecord, ResourceLogs, ScopeLogs};
use opentelemetry_proto::tonic::resource::v1::Resource;
use opentelemetry_proto::tonic::trace::v1::{ResourceSpans, ScopeSpans, Span};
use prost::Message;

fn fixture(name: &str) -> Vec<u8> {
    let path = format!(
        "{}/tests/fixtures/otel-js-2.12/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read(&path).unwrap_or_else(|e| panic!("read {path}: {e}"))
}

fn traces_json(body: &str) -> Result<u64, RumError> {
    count_items(Signal::Traces, Format::Json, body.as_bytes())
}

fn logs_json(body: &str) -> Result<u64, RumError> {
    count_items(Signal::Logs, Format::Json, body.as_bytes())
}

/// Wraps span objects (JSON text) into a one-resource, one-scope trace export.
fn with_spans(spans: &str) -> String {
    format!(
        r#"{{"resourceSpans":[{{"resource":{{}},"scopeSpans":[{{"scope":{{}},"spans":[{spans}]}}]}}]}}"#
    )
}

#[test]
fn real_js_sdk_exports_count_one_span_each() {
    for name in ["export_00", "export_01"] {
        let body = fixture(&format!("{name}.json.body"));
        let request: serde_json::Value =
            serde_json::from_slice(&fixture(&format!("{name}.request.json"))).unwrap();
        let content_type = request["headers"]["Content-Type"].as_str().unwrap();
        let format = Format::from_content_type(Some(content_type.as_bytes())).unwrap();
        assert_eq!(format, Format::Json, "{name}: {content_type}");
        assert_eq!(count_items(Signal::Traces, format, &body), Ok(1), "{name}");
        // Cross-check the count with the published types, which do parse these exports.
        let typed: ExportTraceServiceRequest = serde_json::from_slice(&body).unwrap();
        let spans: usize = typed.resource_spans[0].scope_spans[0].spans.len();
        assert_eq!(spans, 1, "{name}");
        // Traces sent to /v1/logs carry no log record: the unknown field is ignored.
        assert_eq!(count_items(Signal::Logs, format, &body), Ok(0), "{name}");
    }
}

fn span(id: u8) -> Span {
    Span {
        trace_id: vec![id; 16],
        span_id: vec![id; 8],
        name: format!("span-{id}"),
        kind: 2,
        start_time_unix_nano: 1_795_822_428_659_000_000,
        end_time_unix_nano: 1_795_822_428_659_300_000,
        attributes: vec![KeyValue {
            key: "n".into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::IntValue(i64::from(id))),
            }),
        }],
        ..Default::default()
    }
}

/// 2 resources, 3 scopes, 5 spans.
fn trace_request() -> ExportTraceServiceRequest {
    let scope = |spans: Vec<Span>| ScopeSpans {
        scope: Some(InstrumentationScope {
            name: "test".into(),
            ..Default::default()
        }),
        spans,
        ..Default::default()
    };
    ExportTraceServiceRequest {
        resource_spans: vec![
            ResourceSpans {
                resource: Some(Resource::default()),
                scope_spans: vec![scope(vec![span(1), span(2)]), scope(vec![span(3)])],
                ..Default::default()
            },
            ResourceSpans {
                resource: None,
                scope_spans: vec![scope(vec![span(4), span(5)])],
                ..Default::default()
            },
        ],
    }
}

fn log_request() -> ExportLogsServiceRequest {
    let record = |n: u64| LogRecord {
        time_unix_nano: n,
        severity_number: 9,
        body: Some(AnyValue {
            value: Some(any_value::Value::StringValue(format!("log {n}"))),
        }),
        trace_id: vec![7; 16],
        span_id: vec![7; 8],
        ..Default::default()
    };
    ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![
                ScopeLogs {
                    log_records: vec![record(1), record(2), record(3)],
                    ..Default::default()
                },
                ScopeLogs {
                    log_records: vec![record(4)],
                    ..Default::default()
                },
            ],
            ..Default::default()
        }],
    }
}

#[test]
fn protobuf_round_trip_counts_spans_and_log_records() {
    let traces = trace_request().encode_to_vec();
    assert_eq!(
        count_items(Signal::Traces, Format::Protobuf, &traces),
        Ok(5)
    );
    let logs = log_request().encode_to_vec();
    assert_eq!(count_items(Signal::Logs, Format::Protobuf, &logs), Ok(4));
}

#[test]
fn json_written_by_the_published_types_is_counted() {
    let traces = serde_json::to_vec(&trace_request()).unwrap();
    assert_eq!(count_items(Signal::Traces, Format::Json, &traces), Ok(5));
    let logs = serde_json::to_vec(&log_request()).unwrap();
    assert_eq!(count_items(Signal::Logs, Format::Json, &logs), Ok(4));
}

#[test]
fn js_sdk_style_logs_are_counted() {
    // `body: {}` is what the JS SDK sends for a log record without a body.
    let body = r#"{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"shop"}}],"droppedAttributesCount":0},"scopeLogs":[{"scope":{"name":"s"},"logRecords":[
        {"timeUnixNano":"1795822428659000000","observedTimeUnixNano":"1795822428659000001","severityNumber":9,"severityText":"INFO","body":{"stringValue":"hi"},"attributes":[],"droppedAttributesCount":0,"flags":1,"traceId":"bbb5a1cff7e8e42a9f65b267bad49cd2","spanId":"b05a5a78ea1e127d","eventName":"click"},
        {"timeUnixNano":1795822428659000000,"observedTimeUnixNano":1795822428659000001,"body":{},"attributes":[{"key":"k","value":{}}]}
    ]}]}]}"#;
    assert_eq!(logs_json(body), Ok(2));
}

#[test]
fn empty_requests_are_valid_with_zero_items() {
    for signal in [Signal::Traces, Signal::Logs] {
        assert_eq!(count_items(signal, Format::Json, b"{}"), Ok(0));
        assert_eq!(count_items(signal, Format::Json, b" {\n} \n"), Ok(0));
        assert_eq!(count_items(signal, Format::Protobuf, b""), Ok(0));
    }
    assert_eq!(traces_json(r#"{"resourceSpans":[]}"#), Ok(0));
    assert_eq!(traces_json(r#"{"resourceSpans":null}"#), Ok(0));
    assert_eq!(traces_json(r#"{"resourceSpans":[{}]}"#), Ok(0));
    assert_eq!(
        traces_json(r#"{"resourceSpans":[{"scopeSpans":[{}]}]}"#),
        Ok(0)
    );
    assert_eq!(
        logs_json(r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[]}]}]}"#),
        Ok(0)
    );
}

#[test]
fn otlp_json_quirks_are_accepted() {
    let quirks = [
        // Upper-case hex ids; int64 as strings and as numbers; kind as an integer.
        r#"{"traceId":"5B8EFFF798038103D269B633813FC60C","spanId":"B05A5A78EA1E127D","parentSpanId":"","kind":2,"startTimeUnixNano":"1795822428659000000","endTimeUnixNano":1795822428659300000}"#,
        // Exponent notation and null for unset fields.
        r#"{"startTimeUnixNano":1.7958e18,"traceId":null,"name":null,"attributes":null,"status":null}"#,
        // AnyValue forms: intValue as a string and as a number, arrays, kvlists, bytes, empty.
        r#"{"attributes":[{"key":"a","value":{"intValue":"12"}},{"key":"b","value":{"intValue":12}},
            {"key":"c","value":{"arrayValue":{"values":[{"intValue":1},{"stringValue":"x"},{}]}}},
            {"key":"d","value":{"kvlistValue":{"values":[{"key":"e","value":{"boolValue":true}}]}}},
            {"key":"f","value":{"bytesValue":"AQID"}},{"key":"g","value":{"doubleValue":"NaN"}},{"key":"h","value":{}}]}"#,
        // Events, links, status, flags, and fields this receiver has never heard of.
        r#"{"events":[{"timeUnixNano":"1","name":"e"}],"links":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"b05a5a78ea1e127d","flags":256}],"status":{"code":2,"message":"x"},"flags":257,"futureField":{"deep":[1,{"x":null}]}}"#,
        // Escaped keys and strings.
        r#"{"n\u0061me":"\u00e9\n","trace\u0049d":"00000000000000000000000000000001"}"#,
    ];
    for span in quirks {
        assert_eq!(traces_json(&with_spans(span)), Ok(1), "{span}");
    }
    let unknown_everywhere = r#"{"x":1,"resourceSpans":[{"y":[],"resource":{"z":2},"scopeSpans":[{"schemaUrl":"u","spans":[{},{}],"w":{}}]}],"v":null}"#;
    assert_eq!(traces_json(unknown_everywhere), Ok(2));
}

#[test]
fn garbage_is_refused() {
    let not_json: [&[u8]; 7] = [
        b"",
        b"not json",
        b"{",
        b"{} x",
        b"{}{}",
        b"{\"resourceSpans\":[]",
        b"{\"a\":\"\xff\"}",
    ];
    for body in not_json {
        let shown = String::from_utf8_lossy(body);
        assert_eq!(
            count_items(Signal::Traces, Format::Json, body),
            Err(RumError::BadJson),
            "{shown}"
        );
        assert_eq!(
            count_items(Signal::Logs, Format::Json, body),
            Err(RumError::BadJson),
            "{shown}"
        );
    }
    let mut truncated = trace_request().encode_to_vec();
    truncated.pop();
    let not_protobuf: [&[u8]; 4] = [
        b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff",
        b"{}",
        b"\x0a\x05ab",
        &truncated,
    ];
    for body in not_protobuf {
        for signal in [Signal::Traces, Signal::Logs] {
            assert_eq!(
                count_items(signal, Format::Protobuf, body),
                Err(RumError::BadProtobuf),
                "{body:?}"
            );
        }
    }
}

#[test]
fn wrong_shapes_are_refused() {
    let wrong = [
        "null".to_string(),
        "[]".to_string(),
        r#""resourceSpans""#.to_string(),
        r#"{"resourceSpans":5}"#.to_string(),
        r#"{"resourceSpans":{}}"#.to_string(),
        r#"{"resourceSpans":[5]}"#.to_string(),
        r#"{"resourceSpans":[null]}"#.to_string(),
        r#"{"resourceSpans":[{"resource":5}]}"#.to_string(),
        r#"{"resourceSpans":[{"scopeSpans":{}}]}"#.to_string(),
        r#"{"resourceSpans":[{"scopeSpans":[{"scope":[]}]}]}"#.to_string(),
        r#"{"resourceSpans":[{"scopeSpans":[{"spans":"x"}]}]}"#.to_string(),
        r#"{"resourceSpans":[],"resourceSpans":[]}"#.to_string(),
        r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{}],"spans":[{}]}]}]}"#.to_string(),
        with_spans("1"),
        with_spans("null"),
        with_spans("[]"),
        with_spans(r#"{"traceId":"bbb5a1cff7e8e42a9f65b267bad49c"}"#),
        with_spans(r#"{"traceId":"zzb5a1cff7e8e42a9f65b267bad49cd2"}"#),
        with_spans(r#"{"spanId":"b05a5a78ea1e127d00"}"#),
        with_spans(r#"{"parentSpanId":5}"#),
        with_spans(r#"{"startTimeUnixNano":-1}"#),
        with_spans(r#"{"endTimeUnixNano":"soon"}"#),
        with_spans(r#"{"endTimeUnixNano":1.5}"#),
        with_spans(r#"{"endTimeUnixNano":"18446744073709551616"}"#),
    ];
    for body in &wrong {
        assert_eq!(traces_json(body), Err(RumError::BadJson), "{body}");
    }
    assert_eq!(logs_json(r#"{"resourceLogs":5}"#), Err(RumError::BadJson));
    assert_eq!(
        logs_json(r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[1]}]}]}"#),
        Err(RumError::BadJson)
    );
    assert_eq!(
        logs_json(
            r#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"observedTimeUnixNano":"x"}]}]}]}"#
        ),
        Err(RumError::BadJson)
    );
}

#[test]
fn hostile_nesting_neither_overflows_the_stack_nor_miscounts() {
    // Issue 17: serde_json skips ignored values without its depth limit, so these were accepted
    // (and forwarded). Refused now, in one pass and without recursion.
    let deep = "[".repeat(100_000) + &"]".repeat(100_000);
    assert_eq!(
        traces_json(&format!(r#"{{"x":{deep}}}"#)),
        Err(RumError::JsonTooDeep)
    );
    assert_eq!(
        traces_json(&with_spans(&format!(r#"{{"attributes":{deep}}}"#))),
        Err(RumError::JsonTooDeep)
    );
    let unbalanced = "[".repeat(100_000) + &"]".repeat(99_999);
    assert_eq!(
        traces_json(&with_spans(&format!(r#"{{"attributes":{unbalanced}}}"#))),
        Err(RumError::JsonTooDeep)
    );
    // 1 MB of `[` alone: no stack overflow.
    assert_eq!(
        traces_json(&"[".repeat(1 << 20)),
        Err(RumError::JsonTooDeep)
    );
    // `with_spans` encloses an attribute value in 7 levels (request, resourceSpans, one
    // resource, scopeSpans, one scope, spans, the span): exactly the limit passes, one more not.
    let nested = |levels: usize| {
        with_spans(&format!(
            r#"{{"attributes":{}{}}}"#,
            "[".repeat(levels),
            "]".repeat(levels)
        ))
    };
    let room = MAX_JSON_DEPTH - 7;
    assert_eq!(traces_json(&nested(room)), Ok(1));
    assert_eq!(traces_json(&nested(room + 1)), Err(RumError::JsonTooDeep));
    // Brackets inside strings (escaped quotes included) are not nesting.
    let in_strings = format!(r#"{{"x":"{}\"{}"}}"#, "[".repeat(500), "{".repeat(500));
    assert_eq!(traces_json(&in_strings), Ok(0));
    assert_eq!(logs_json(&in_strings), Ok(0));
    let error = RumError::JsonTooDeep;
    assert_eq!((error.status(), error.reason()), (400, "bad_payload"));
    assert_eq!(error.to_string(), "JSON nested deeper than 128 levels");
}

#[test]
fn content_type_table() {
    type Row = (Option<&'static [u8]>, Result<Format, RumError>);
    let table: [Row; 16] = [
        (Some(b"application/json"), Ok(Format::Json)),
        (Some(b"application/json; charset=utf-8"), Ok(Format::Json)),
        (Some(b"Application/JSON"), Ok(Format::Json)),
        (Some(b"text/plain"), Ok(Format::Json)),
        (Some(b"text/plain;charset=UTF-8"), Ok(Format::Json)),
        (Some(b" TEXT/PLAIN ; charset=utf-8"), Ok(Format::Json)),
        (Some(b"application/x-protobuf"), Ok(Format::Protobuf)),
        (
            Some(b"application/X-Protobuf;proto=x"),
            Ok(Format::Protobuf),
        ),
        (None, Err(RumError::UnsupportedMediaType)),
        (Some(b""), Err(RumError::UnsupportedMediaType)),
        (
            Some(b"application/protobuf-ish"),
            Err(RumError::UnsupportedMediaType),
        ),
        (
            Some(b"application/jsonx"),
            Err(RumError::UnsupportedMediaType),
        ),
        (Some(b"text/html"), Err(RumError::UnsupportedMediaType)),
        (
            Some(b"multipart/form-data; boundary=x"),
            Err(RumError::UnsupportedMediaType),
        ),
        (
            Some(b"application/x-www-form-urlencoded"),
            Err(RumError::UnsupportedMediaType),
        ),
        (
            Some(b"application/\xffjson"),
            Err(RumError::UnsupportedMediaType),
        ),
    ];
    for (value, expected) in table {
        assert_eq!(Format::from_content_type(value), expected, "{value:?}");
    }
    assert_eq!(Format::Json.content_type(), "application/json");
    assert_eq!(Format::Protobuf.content_type(), "application/x-protobuf");
}

#[test]
fn responses_and_error_mapping() {
    assert_eq!(empty_response(Format::Json), b"{}");
    assert!(empty_response(Format::Protobuf).is_empty());
    // Both really are an empty response message of the published types.
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceResponse;
    let decoded = ExportTraceServiceResponse::decode(empty_response(Format::Protobuf)).unwrap();
    assert_eq!(decoded, ExportTraceServiceResponse::default());
    let json: serde_json::Value = serde_json::from_slice(empty_response(Format::Json)).unwrap();
    assert_eq!(json, serde_json::json!({}));

    assert_eq!(Signal::Traces.as_str(), "traces");
    assert_eq!(Signal::Logs.as_str(), "logs");
    assert_eq!(RumError::UnsupportedMediaType.status(), 415);
    assert_eq!(
        RumError::UnsupportedMediaType.reason(),
        "unsupported_media_type"
    );
    for error in [RumError::BadJson, RumError::BadProtobuf] {
        assert_eq!(error.status(), 400);
        assert_eq!(error.reason(), "bad_payload");
        assert!(!error.to_string().is_empty());
    }
}
