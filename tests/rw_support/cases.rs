//! The table of invalid remote-write requests: each one hand-built, each refused with `400`
//! (or `413`) and its own `reason`. `must` names the spec rule the case covers
//! (RW1 = remote_write_spec.md, RW2 = remote_write_spec_2_0.md; "edge" = SPEC §6 / issue 3).

use super::hist;
use super::*;

pub struct Case {
    pub name: &'static str,
    /// The spec rule this case checks.
    pub must: &'static str,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    pub status: u16,
    pub reason: &'static str,
}

pub(super) fn case(
    name: &'static str,
    must: &'static str,
    content_type: &'static str,
    body: Vec<u8>,
    reason: &'static str,
) -> Case {
    Case {
        name,
        must,
        content_type,
        body,
        status: 400,
        reason,
    }
}

pub(super) const INVALID: &str = "invalid_series";

pub(super) fn v1_one(pairs: &[(&str, &str)]) -> Vec<u8> {
    v1_series_body(vec![series(pairs, &[1.0])])
}

pub(super) fn v2_one(pairs: &[(&str, &str)]) -> Vec<u8> {
    let mut b = V2Builder::new();
    b.series(pairs, &[1.0]);
    b.body()
}

/// A v2 request built by `f` from a builder holding one valid series `m{job="x"}`.
pub(super) fn v2_with(f: impl FnOnce(&mut V2Builder)) -> Vec<u8> {
    let mut b = V2Builder::new();
    b.series(&[("__name__", "m"), ("job", "x")], &[1.0]);
    f(&mut b);
    b.body()
}

pub(super) fn long(n: usize) -> String {
    "a".repeat(n)
}

/// 31 label pairs (the default maximum is 30), sorted.
pub(super) fn many_labels(n: usize) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = (1..n)
        .map(|i| (format!("l{i:03}"), "v".to_string()))
        .collect();
    v.insert(0, ("__name__".into(), "m".into()));
    v
}

pub(super) fn pairs(v: &[(String, String)]) -> Vec<(&str, &str)> {
    v.iter().map(|(a, b)| (a.as_str(), b.as_str())).collect()
}

/// Every invalid request, v1 then v2.
pub fn invalid_cases() -> Vec<Case> {
    let mut all = v1_cases();
    all.extend(super::cases_v2::cases());
    all
}

fn v1_cases() -> Vec<Case> {
    let ln = long(1025);
    let lv = long(2049);
    let many = many_labels(31);
    let future = now_ms() + 11 * 60 * 1000;
    let valid = series(&[("__name__", "ok"), ("job", "x")], &[1.0, 2.0]);
    let mut truncated = prost::Message::encode_to_vec(&v1::WriteRequest {
        timeseries: vec![valid.clone()],
        metadata: vec![],
    });
    truncated.truncate(truncated.len() - 3);
    let good_snappy = v1_series_body(vec![valid.clone()]);
    let framed = {
        use std::io::Write;
        let raw = prost::Message::encode_to_vec(&v1::WriteRequest {
            timeseries: vec![valid.clone()],
            metadata: vec![],
        });
        let mut w = snap::write::FrameEncoder::new(Vec::new());
        w.write_all(&raw).unwrap();
        w.into_inner().unwrap()
    };
    let v1_future = {
        let mut s = series(&[("__name__", "m")], &[1.0]);
        s.samples[0].timestamp = future;
        v1_series_body(vec![s])
    };
    let v1_hist_mismatch = {
        let mut s = series(&[("__name__", "h")], &[]);
        s.histograms = vec![hist::int(now_ms() - 1000, Some(9))];
        v1_series_body(vec![s])
    };
    let bad_utf8 = snappy(&prost::Message::encode_to_vec(&v1::RawRequest {
        timeseries: vec![v1::RawSeries {
            labels: vec![
                v1::RawLabel {
                    name: b"__name__".to_vec(),
                    value: b"m".to_vec(),
                },
                v1::RawLabel {
                    name: b"job".to_vec(),
                    value: vec![0xff, 0xfe, 0x41],
                },
            ],
            samples: vec![v1::Sample {
                value: 1.0,
                timestamp: now_ms(),
            }],
        }],
    }));

    vec![
        // ---- v1: labels (RW1 §Labels) ----
        case(
            "v1 no labels",
            "RW1 Labels: complete label set; __name__ (edge: required)",
            CT_V1,
            v1_one(&[]),
            INVALID,
        ),
        case(
            "v1 missing __name__",
            "RW1 Labels: SHOULD contain __name__ (edge: required)",
            CT_V1,
            v1_one(&[("job", "x")]),
            INVALID,
        ),
        case(
            "v1 unsorted names",
            "RW1 Labels: MUST have label names sorted",
            CT_V1,
            v1_one(&[("__name__", "m"), ("job", "x"), ("instance", "i")]),
            INVALID,
        ),
        case(
            "v1 duplicate names",
            "RW1 Labels: MUST NOT contain repeated label names",
            CT_V1,
            v1_one(&[("__name__", "m"), ("job", "x"), ("job", "y")]),
            INVALID,
        ),
        case(
            "v1 empty name",
            "RW1 Labels: MUST NOT contain empty label names",
            CT_V1,
            v1_one(&[("", "v"), ("__name__", "m")]),
            INVALID,
        ),
        case(
            "v1 empty value",
            "RW1 Labels: MUST NOT contain empty label values",
            CT_V1,
            v1_one(&[("__name__", "m"), ("job", "")]),
            INVALID,
        ),
        case(
            "v1 empty metric name",
            "RW1 Labels: MUST NOT contain empty label values",
            CT_V1,
            v1_one(&[("__name__", "")]),
            INVALID,
        ),
        case(
            "v1 label name with '-'",
            "RW1 Labels: label names MUST match [a-zA-Z_][a-zA-Z0-9_]*",
            CT_V1,
            v1_one(&[("__name__", "m"), ("bad-name", "x")]),
            INVALID,
        ),
        case(
            "v1 label name starting with a digit",
            "RW1 Labels: label name regex",
            CT_V1,
            v1_one(&[("0abc", "x"), ("__name__", "m")]),
            INVALID,
        ),
        case(
            "v1 label name with ':'",
            "RW1 Labels: label name regex (no ':')",
            CT_V1,
            v1_one(&[("__name__", "m"), ("a:b", "x")]),
            INVALID,
        ),
        case(
            "v1 metric name starting with a digit",
            "RW1 Labels: metric names MUST match [a-zA-Z_:][a-zA-Z0-9_:]*",
            CT_V1,
            v1_one(&[("__name__", "1m")]),
            INVALID,
        ),
        case(
            "v1 metric name with '-'",
            "RW1 Labels: metric name regex",
            CT_V1,
            v1_one(&[("__name__", "my-metric")]),
            INVALID,
        ),
        case(
            "v1 metric name with non-ASCII",
            "RW1 Labels: metric name regex",
            CT_V1,
            v1_one(&[("__name__", "métric")]),
            INVALID,
        ),
        case(
            "v1 label value not UTF-8",
            "RW1 Labels: label values are UTF-8; protobuf 3 strings",
            CT_V1,
            bad_utf8,
            "bad_payload",
        ),
        case(
            "v1 one bad series among good ones",
            "RW1 Labels: MUST return 400 for requests that contain any invalid samples",
            CT_V1,
            v1_series_body(vec![
                valid.clone(),
                series(&[("__name__", "m"), ("b", "x"), ("a", "y")], &[1.0]),
            ]),
            INVALID,
        ),
        case(
            "v1 histogram count mismatch",
            "edge: histogram count = zero + buckets",
            CT_V1,
            v1_hist_mismatch,
            INVALID,
        ),
        // ---- v1: receiver limits (RW1 "Receivers MAY impose limits"; issue 3 defaults) ----
        case(
            "v1 31 label names",
            "edge limit: max 30 label names",
            CT_V1,
            v1_one(&pairs(&many)),
            "too_many_labels",
        ),
        case(
            "v1 label name of 1025 bytes",
            "edge limit: label name <= 1024",
            CT_V1,
            v1_one(&[("__name__", "m"), (ln.as_str(), "x")]),
            "label_name_too_long",
        ),
        case(
            "v1 label value of 2049 bytes",
            "edge limit: label value <= 2048",
            CT_V1,
            v1_one(&[("__name__", "m"), ("job", lv.as_str())]),
            "label_value_too_long",
        ),
        case(
            "v1 sample 11 min in the future",
            "edge limit: max 10 min in the future",
            CT_V1,
            v1_future,
            "sample_too_far_in_future",
        ),
        // ---- v1: wire format (RW1 §Protocol) ----
        case(
            "v1 truncated protobuf",
            "RW1 Protocol: MUST be protobuf 3 with the schema",
            CT_V1,
            snappy(&truncated),
            "bad_payload",
        ),
        case(
            "v1 protobuf wire type mismatch",
            "RW1 Protocol: MUST use the schema above",
            CT_V1,
            snappy(&[0x08, 0x01]),
            "bad_payload",
        ),
        case(
            "v1 not protobuf at all",
            "RW1 Protocol: MUST be protobuf 3",
            CT_V1,
            snappy(&[0xff, 0xff, 0xff, 0xff]),
            "bad_payload",
        ),
        case(
            "v1 truncated snappy",
            "RW1 Protocol: MUST be snappy compressed",
            CT_V1,
            good_snappy[..good_snappy.len() - 4].to_vec(),
            "bad_encoding",
        ),
        case(
            "v1 snappy framed format",
            "RW1 Protocol: framed format MUST NOT be used",
            CT_V1,
            framed,
            "bad_encoding",
        ),
        case(
            "v1 snappy header larger than the data",
            "RW1 Protocol: snappy block format",
            CT_V1,
            snappy_header(100, snappy_payload(&good_snappy)),
            "bad_encoding",
        ),
    ]
}
