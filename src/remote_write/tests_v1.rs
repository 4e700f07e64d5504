//! 1.0 conformance: every MUST of the 1.0 spec with a hand-built `prometheus.WriteRequest`
//! (valid, and invalid in each way).

use prost::Message;

use super::proto_v1::{Exemplar, MetricMetadata, Sample, TimeSeries, WriteRequest};
use super::tests::{decode, invalid, label, request, samples, series, NOW, STALE_NAN, UP};
use super::{Problem, RwError, Version, Written};

fn v1(req: &WriteRequest) -> Result<Written, RwError> {
    decode(Version::V1, &req.encode_to_vec())
}

/// Every 1.0 rule, one row each: valid requests and each way of being invalid.
#[test]
fn v1_conformance_table() {
    let mut metadata_req = request(vec![series(UP)]);
    metadata_req.metadata = vec![
        MetricMetadata {
            r#type: 1,
            metric_family_name: "up".into(),
            help: "Target is up.".into(),
            unit: String::new(),
        };
        3
    ];
    let special = request(vec![TimeSeries {
        samples: [
            f64::from_bits(STALE_NAN),
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ]
        .into_iter()
        .map(|value| Sample {
            value,
            timestamp: NOW,
        })
        .collect(),
        ..series(UP)
    }]);
    let exemplar_only = request(vec![TimeSeries {
        samples: Vec::new(),
        exemplars: vec![Exemplar {
            labels: vec![label("trace_id", "4bf92f3577b34da6a3ce929d0e0e4736")],
            value: 0.25,
            timestamp: NOW,
        }],
        ..series(UP)
    }]);
    let future = |ms: i64| {
        request(vec![TimeSeries {
            samples: vec![Sample {
                value: 1.0,
                timestamp: NOW + ms,
            }],
            ..series(UP)
        }])
    };
    let with_labels = |labels: Vec<(String, String)>| {
        let labels: Vec<(&str, &str)> = labels
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str()))
            .collect();
        request(vec![series(&labels)])
    };
    let n_labels = |n: usize| {
        let mut set = vec![("__name__".to_owned(), "m".to_owned())];
        set.extend((1..n).map(|i| (format!("l{i:02}"), "v".to_owned())));
        with_labels(set)
    };
    let name_of_len = |len: usize| {
        with_labels(vec![
            ("__name__".into(), "m".into()),
            ("a".repeat(len), "v".into()),
        ])
    };
    let value_of_len = |len: usize| {
        with_labels(vec![
            ("__name__".into(), "m".into()),
            ("a".into(), "v".repeat(len)),
        ])
    };
    let mut bad_utf8 = request(vec![series(UP)]);
    bad_utf8.timeseries[0].labels[2].value = vec![b'p', 0xff].into();
    let mut bad_utf8_exemplar = exemplar_only.clone();
    bad_utf8_exemplar.timeseries[0].exemplars[0].labels[0].value = vec![0xc3].into();
    let mut bad_utf8_metadata = raw_v1(&metadata_req);
    // A metadata entry whose help is not UTF-8 (protobuf `string`): field 3 of the request.
    bad_utf8_metadata.extend_from_slice(b"\x1a\x04\x22\x02\xc3\x28");

    let cases: Vec<(&str, Vec<u8>, Result<Written, RwError>)> = vec![
        ("empty request", Vec::new(), Ok(Written::default())),
        ("one series", raw_v1(&request(vec![series(UP)])), samples(1)),
        (
            "recording rule name with colons",
            raw_v1(&request(vec![series(&[("__name__", "job:up:sum")])])),
            samples(1),
        ),
        (
            "reserved __ label names are accepted",
            raw_v1(&request(vec![series(&[
                ("__name__", "up"),
                ("__tmp", "x"),
            ])])),
            samples(1),
        ),
        (
            "any UTF-8 value",
            raw_v1(&request(vec![series(&[
                ("__name__", "up"),
                ("city", "Zürich ☃"),
            ])])),
            samples(1),
        ),
        (
            "stale marker, NaN, +Inf, -Inf",
            raw_v1(&special),
            samples(4),
        ),
        (
            "metadata counted",
            raw_v1(&metadata_req),
            Ok(Written {
                samples: 1,
                metadata: 3,
                ..Written::default()
            }),
        ),
        (
            "exemplars counted",
            raw_v1(&exemplar_only),
            Ok(Written {
                exemplars: 1,
                ..Written::default()
            }),
        ),
        (
            "reserved field 2 skipped",
            [raw_v1(&request(vec![series(UP)])), b"\x12\x03abc".to_vec()].concat(),
            samples(1),
        ),
        ("30 labels is the limit", raw_v1(&n_labels(30)), samples(1)),
        (
            "1024-byte name is the limit",
            raw_v1(&name_of_len(1024)),
            samples(1),
        ),
        (
            "2048-byte value is the limit",
            raw_v1(&value_of_len(2048)),
            samples(1),
        ),
        (
            "10 minutes ahead is the limit",
            raw_v1(&future(600_000)),
            samples(1),
        ),
        (
            "old samples are fine",
            raw_v1(&future(-86_400_000 * 365)),
            samples(1),
        ),
        (
            "no labels",
            raw_v1(&request(vec![series(&[])])),
            invalid(0, Problem::NoLabels),
        ),
        (
            "missing __name__",
            raw_v1(&request(vec![series(&[("job", "x")])])),
            invalid(0, Problem::MissingMetricName),
        ),
        (
            "unsorted",
            raw_v1(&request(vec![series(&[
                ("__name__", "up"),
                ("job", "x"),
                ("instance", "y"),
            ])])),
            invalid(0, Problem::LabelsNotSorted),
        ),
        (
            "duplicate",
            raw_v1(&request(vec![series(&[
                ("__name__", "up"),
                ("job", "x"),
                ("job", "x"),
            ])])),
            invalid(0, Problem::DuplicateLabelName),
        ),
        (
            "empty name",
            raw_v1(&request(vec![series(&[("", "x"), ("__name__", "up")])])),
            invalid(0, Problem::EmptyLabelName),
        ),
        (
            "empty value",
            raw_v1(&request(vec![series(&[("__name__", "up"), ("job", "")])])),
            invalid(0, Problem::EmptyLabelValue),
        ),
        (
            "empty metric name",
            raw_v1(&request(vec![series(&[("__name__", "")])])),
            invalid(0, Problem::EmptyLabelValue),
        ),
        (
            "label name with a dash",
            raw_v1(&request(vec![series(&[
                ("__name__", "up"),
                ("foo-bar", "x"),
            ])])),
            invalid(0, Problem::InvalidLabelName),
        ),
        (
            "label name with a colon",
            raw_v1(&request(vec![series(&[("__name__", "up"), ("a:b", "x")])])),
            invalid(0, Problem::InvalidLabelName),
        ),
        (
            "label name starting with a digit",
            raw_v1(&request(vec![series(&[("0a", "x"), ("__name__", "up")])])),
            invalid(0, Problem::InvalidLabelName),
        ),
        (
            "metric name with a dash",
            raw_v1(&request(vec![series(&[("__name__", "http-requests")])])),
            invalid(0, Problem::InvalidMetricName),
        ),
        (
            "metric name starting with a digit",
            raw_v1(&request(vec![series(&[("__name__", "1up")])])),
            invalid(0, Problem::InvalidMetricName),
        ),
        (
            "UTF-8 metric name (2.0 only)",
            raw_v1(&request(vec![series(&[("__name__", "café")])])),
            invalid(0, Problem::InvalidMetricName),
        ),
        (
            "value not UTF-8",
            raw_v1(&bad_utf8),
            invalid(0, Problem::InvalidUtf8),
        ),
        (
            "exemplar label not UTF-8",
            raw_v1(&bad_utf8_exemplar),
            invalid(0, Problem::InvalidUtf8),
        ),
        (
            "metadata not UTF-8",
            bad_utf8_metadata,
            Err(RwError::BadPayload),
        ),
        (
            "31 labels",
            raw_v1(&n_labels(31)),
            invalid(0, Problem::TooManyLabels),
        ),
        (
            "1025-byte name",
            raw_v1(&name_of_len(1025)),
            invalid(0, Problem::LabelNameTooLong),
        ),
        (
            "2049-byte value",
            raw_v1(&value_of_len(2049)),
            invalid(0, Problem::LabelValueTooLong),
        ),
        (
            "sample too far ahead",
            raw_v1(&future(600_001)),
            invalid(0, Problem::TooFarInFuture),
        ),
        (
            "third series is reported",
            raw_v1(&request(vec![
                series(UP),
                series(UP),
                series(&[("job", "x")]),
            ])),
            invalid(2, Problem::MissingMetricName),
        ),
        (
            "hand-encoded series",
            hand_series(&[0x10, 0x01]),
            samples(1),
        ),
        (
            "timestamp as fixed64: wrong wire type",
            hand_series(&[0x11, 0, 0, 0, 0, 0, 0, 0, 0]),
            Err(RwError::BadPayload),
        ),
    ];
    for (name, raw, want) in cases {
        assert_eq!(decode(Version::V1, &raw), want, "{name}");
    }
}

/// A request with one series `up` encoded by hand, with `sample` as its one sample message.
fn hand_series(sample: &[u8]) -> Vec<u8> {
    let mut ts = b"\x0a\x0e\x0a\x08__name__\x12\x02up".to_vec();
    ts.extend_from_slice(&[0x12, sample.len() as u8]);
    ts.extend_from_slice(sample);
    [vec![0x0a, ts.len() as u8], ts].concat()
}

fn raw_v1(req: &WriteRequest) -> Vec<u8> {
    req.encode_to_vec()
}

#[test]
fn future_exemplars_are_refused() {
    let req = request(vec![TimeSeries {
        exemplars: vec![Exemplar {
            labels: Vec::new(),
            value: 1.0,
            timestamp: NOW + 600_001,
        }],
        ..series(UP)
    }]);
    assert_eq!(v1(&req), invalid(0, Problem::TooFarInFuture));
}

/// A name the previous series had at the same position is not checked again
/// (`names::KnownNames`): a different name at a known position, or a bad metric name after a
/// good one, is still refused in whichever series it comes.
#[test]
fn later_series_are_held_to_the_name_rules() {
    let good = series(UP);
    let cases = [
        (
            series(&[("__name__", "up"), ("inst-ance", "a"), ("job", "prom")]),
            Problem::InvalidLabelName,
        ),
        (
            series(&[("__name__", "up"), ("instance", "a"), ("jöb", "prom")]),
            Problem::InvalidLabelName,
        ),
        (
            series(&[("__name__", "up-2"), ("instance", "a"), ("job", "prom")]),
            Problem::InvalidMetricName,
        ),
        (
            series(&[("__name__", "2up"), ("instance", "a"), ("job", "prom")]),
            Problem::InvalidMetricName,
        ),
    ];
    for (bad, problem) in cases {
        let req = request(vec![good.clone(), good.clone(), bad, good.clone()]);
        assert_eq!(v1(&req), invalid(2, problem));
    }
    assert_eq!(v1(&request(vec![good.clone(), good.clone()])), samples(2));
}
