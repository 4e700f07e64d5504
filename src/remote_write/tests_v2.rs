//! 2.0 conformance: every MUST of the 2.0 spec with a hand-built `io.prometheus.write.v2.Request`
//! (valid, and invalid in each way), encoded with the prost types of `proto_v2`.

use prost::Message;

use super::proto_v2::{Exemplar, Metadata, Request, Sample, TimeSeries};
use super::tests::{decode, NOW};
use super::tests_histogram::{float_histogram, int_histogram};
use super::{proto_v1, Problem, RwError, Version, Written};

/// Builds a request, interning strings into its symbols table as a sender does.
struct Builder {
    /// The table under construction; starts with the mandatory "".
    symbols: Vec<String>,
}

impl Builder {
    fn new() -> Builder {
        Builder {
            symbols: vec![String::new()],
        }
    }

    fn sym(&mut self, s: &str) -> u32 {
        let i = match self.symbols.iter().position(|x| x == s) {
            Some(i) => i,
            None => {
                self.symbols.push(s.to_owned());
                self.symbols.len() - 1
            }
        };
        i as u32
    }

    fn refs(&mut self, labels: &[(&str, &str)]) -> Vec<u32> {
        labels
            .iter()
            .flat_map(|(n, v)| [self.sym(n), self.sym(v)])
            .collect()
    }

    /// A series with one sample at `NOW`.
    fn series(&mut self, labels: &[(&str, &str)]) -> TimeSeries {
        TimeSeries {
            labels_refs: self.refs(labels),
            samples: vec![Sample {
                value: 1.0,
                timestamp: NOW,
                start_timestamp: NOW - 60_000,
            }],
            ..Default::default()
        }
    }

    fn request(self, timeseries: Vec<TimeSeries>) -> Vec<u8> {
        Request {
            symbols: self.symbols.into_iter().map(Into::into).collect(),
            timeseries,
        }
        .encode_to_vec()
    }
}

const UP: &[(&str, &str)] = &[("__name__", "up"), ("instance", "a:9090"), ("job", "prom")];

fn one(labels: &[(&str, &str)], edit: impl FnOnce(&mut Builder, &mut TimeSeries)) -> Vec<u8> {
    let mut b = Builder::new();
    let mut ts = b.series(labels);
    edit(&mut b, &mut ts);
    b.request(vec![ts])
}

fn invalid(series: usize, problem: Problem) -> Result<Written, RwError> {
    Err(RwError::InvalidSeries { series, problem })
}

fn written(
    samples: u64,
    histograms: u64,
    exemplars: u64,
    metadata: u64,
) -> Result<Written, RwError> {
    Ok(Written {
        samples,
        histograms,
        exemplars,
        metadata,
    })
}

/// Wraps hand-encoded series bytes as field 5 after the given symbols (lengths < 128).
fn with_raw_series(symbols: &[&str], series: &[u8]) -> Vec<u8> {
    let mut raw = Request {
        symbols: symbols
            .iter()
            .map(|s| s.as_bytes().to_vec().into())
            .collect(),
        timeseries: Vec::new(),
    }
    .encode_to_vec();
    assert!(series.len() < 128);
    raw.extend_from_slice(&[0x2a, series.len() as u8]);
    raw.extend_from_slice(series);
    raw
}

#[test]
fn v2_conformance_table() {
    let symbols_first_not_empty = Request {
        symbols: vec!["__name__".into(), "up".into()],
        timeseries: vec![TimeSeries {
            labels_refs: vec![0, 1],
            samples: vec![Sample {
                value: 1.0,
                timestamp: NOW,
                start_timestamp: 0,
            }],
            ..Default::default()
        }],
    }
    .encode_to_vec();
    let no_symbols = Request {
        symbols: Vec::new(),
        timeseries: vec![TimeSeries::default()],
    }
    .encode_to_vec();
    let series_after_symbols_swapped = {
        let mut b = Builder::new();
        let ts = b.series(UP).encode_to_vec();
        let symbols = Request {
            symbols: b.symbols.iter().map(|s| s.clone().into()).collect(),
            timeseries: Vec::new(),
        };
        let mut raw = vec![0x2a, ts.len() as u8];
        raw.extend_from_slice(&ts);
        raw.extend_from_slice(&symbols.encode_to_vec());
        raw
    };
    // `__name__`=up as refs 1, 2; then the retired field 6 (created_timestamp) and a sample.
    let retired_field_6 = with_raw_series(
        &["", "__name__", "up"],
        b"\x0a\x02\x01\x02\x30\x05\x12\x02\x10\x01",
    );
    // The same labels as unpacked varints (two occurrences of field 1).
    let unpacked_refs =
        with_raw_series(&["", "__name__", "up"], b"\x08\x01\x08\x02\x12\x02\x10\x01");
    let bad_utf8_symbol = Request {
        symbols: vec!["".into(), bytes::Bytes::from_static(b"up\xc3\x28")],
        timeseries: Vec::new(),
    }
    .encode_to_vec();
    let v1_body = proto_v1::WriteRequest {
        timeseries: vec![proto_v1::TimeSeries {
            samples: vec![proto_v1::Sample {
                value: 1.0,
                timestamp: NOW,
            }],
            ..Default::default()
        }],
        metadata: Vec::new(),
    }
    .encode_to_vec();
    let stale = f64::from_bits(0x7ff0_0000_0000_0002);
    let n_labels = |n: usize| {
        let names: Vec<String> = (1..n).map(|i| format!("l{i:02}")).collect();
        let mut set = vec![("__name__", "m")];
        set.extend(names.iter().map(|n| (n.as_str(), "v")));
        one(&set, |_, _| {})
    };
    let long_name = "a".repeat(1025);
    let long_value = "v".repeat(2049);

    let cases: Vec<(&str, Vec<u8>, Result<Written, RwError>)> = vec![
        ("empty request", Vec::new(), Ok(Written::default())),
        (
            "only the symbols table",
            Builder::new().request(Vec::new()),
            Ok(Written::default()),
        ),
        ("one series", one(UP, |_, _| {}), written(1, 0, 0, 0)),
        (
            "a 1.0 body read as 2.0 is empty",
            v1_body,
            Ok(Written::default()),
        ),
        (
            "UTF-8 names are legal in 2.0",
            one(
                &[("__name__", "café.latency"), ("http.method", "GET")],
                |_, _| {},
            ),
            written(1, 0, 0, 0),
        ),
        (
            "stale marker, NaN, ±Inf",
            one(UP, |_, ts| {
                ts.samples = [stale, f64::NAN, f64::INFINITY, f64::NEG_INFINITY]
                    .into_iter()
                    .map(|value| Sample {
                        value,
                        timestamp: NOW,
                        start_timestamp: 0,
                    })
                    .collect();
            }),
            written(4, 0, 0, 0),
        ),
        (
            "integer histogram",
            one(UP, |_, ts| {
                ts.samples.clear();
                ts.histograms = vec![v2_histogram(int_histogram(NOW))];
            }),
            written(0, 1, 0, 0),
        ),
        (
            "float histogram",
            one(UP, |_, ts| {
                ts.samples.clear();
                ts.histograms = vec![v2_histogram(float_histogram(NOW))];
            }),
            written(0, 1, 0, 0),
        ),
        (
            "exemplar with trace_id",
            one(UP, |b, ts| {
                ts.exemplars = vec![Exemplar {
                    labels_refs: b.refs(&[("trace_id", "4bf92f35")]),
                    value: 1.0,
                    timestamp: NOW,
                }];
            }),
            written(1, 0, 1, 0),
        ),
        (
            "metadata with a type counts",
            one(UP, |_, ts| {
                ts.metadata = Some(Metadata {
                    r#type: 2,
                    help_ref: 0,
                    unit_ref: 0,
                })
            }),
            written(1, 0, 0, 1),
        ),
        (
            "metadata with only help counts",
            one(UP, |b, ts| {
                ts.metadata = Some(Metadata {
                    r#type: 0,
                    help_ref: b.sym("Up."),
                    unit_ref: 0,
                })
            }),
            written(1, 0, 0, 1),
        ),
        (
            "all-default metadata does not count",
            one(UP, |_, ts| ts.metadata = Some(Metadata::default())),
            written(1, 0, 0, 0),
        ),
        (
            "series after the symbols table",
            series_after_symbols_swapped,
            written(1, 0, 0, 0),
        ),
        (
            "retired field 6 skipped",
            retired_field_6,
            written(1, 0, 0, 0),
        ),
        ("unpacked labels_refs", unpacked_refs, written(1, 0, 0, 0)),
        (
            "symbols[0] not empty",
            symbols_first_not_empty,
            Err(RwError::FirstSymbolNotEmpty),
        ),
        (
            "series without a symbols table",
            no_symbols,
            Err(RwError::FirstSymbolNotEmpty),
        ),
        (
            "symbol not UTF-8",
            bad_utf8_symbol,
            Err(RwError::BadPayload),
        ),
        (
            "no labels_refs",
            one(&[], |_, _| {}),
            invalid(0, Problem::NoLabels),
        ),
        (
            "odd labels_refs",
            one(UP, |_, ts| {
                ts.labels_refs.pop();
            }),
            invalid(0, Problem::OddLabelRefs),
        ),
        (
            "label ref out of range",
            one(UP, |b, ts| ts.labels_refs[5] = b.symbols.len() as u32),
            invalid(0, Problem::LabelRefOutOfRange),
        ),
        (
            "missing __name__",
            one(&[("job", "x")], |_, _| {}),
            invalid(0, Problem::MissingMetricName),
        ),
        // SPEC §6: 2.0 senders emit map order, so names in any order are accepted (sorted
        // when validated); a repeat is still refused wherever it sits.
        (
            "unsorted",
            one(
                &[("job", "x"), ("__name__", "up"), ("instance", "y")],
                |_, _| {},
            ),
            written(1, 0, 0, 0),
        ),
        (
            "unsorted, repeat apart",
            one(
                &[
                    ("job", "x"),
                    ("__name__", "up"),
                    ("instance", "y"),
                    ("job", "z"),
                ],
                |_, _| {},
            ),
            invalid(0, Problem::DuplicateLabelName),
        ),
        (
            "unsorted, repeat adjacent",
            one(
                &[("job", "x"), ("__name__", "up"), ("__name__", "down")],
                |_, _| {},
            ),
            invalid(0, Problem::DuplicateLabelName),
        ),
        (
            "duplicate",
            one(&[("__name__", "up"), ("job", "x"), ("job", "y")], |_, _| {}),
            invalid(0, Problem::DuplicateLabelName),
        ),
        (
            "empty name (ref 0)",
            one(UP, |_, ts| {
                ts.labels_refs.insert(0, 1);
                ts.labels_refs.insert(0, 0);
            }),
            invalid(0, Problem::EmptyLabelName),
        ),
        (
            "empty value (ref 0)",
            one(UP, |_, ts| ts.labels_refs[1] = 0),
            invalid(0, Problem::EmptyLabelValue),
        ),
        (
            "samples and histograms",
            one(UP, |_, ts| {
                ts.histograms = vec![v2_histogram(int_histogram(NOW))]
            }),
            invalid(0, Problem::SamplesAndHistograms),
        ),
        (
            "neither samples nor histograms",
            one(UP, |_, ts| ts.samples.clear()),
            invalid(0, Problem::NoSamplesOrHistograms),
        ),
        (
            "exemplar ref out of range",
            one(UP, |_, ts| {
                ts.exemplars = vec![Exemplar {
                    labels_refs: vec![1, 99],
                    value: 1.0,
                    timestamp: NOW,
                }]
            }),
            invalid(0, Problem::BadExemplarLabelRefs),
        ),
        (
            "exemplar odd refs",
            one(UP, |_, ts| {
                ts.exemplars = vec![Exemplar {
                    labels_refs: vec![1],
                    value: 1.0,
                    timestamp: NOW,
                }]
            }),
            invalid(0, Problem::BadExemplarLabelRefs),
        ),
        (
            "metadata help ref out of range",
            one(UP, |_, ts| {
                ts.metadata = Some(Metadata {
                    r#type: 1,
                    help_ref: 99,
                    unit_ref: 0,
                })
            }),
            invalid(0, Problem::MetadataRefOutOfRange),
        ),
        (
            "metadata unit ref out of range",
            one(UP, |_, ts| {
                ts.metadata = Some(Metadata {
                    r#type: 1,
                    help_ref: 0,
                    unit_ref: 99,
                })
            }),
            invalid(0, Problem::MetadataRefOutOfRange),
        ),
        (
            "histogram count mismatch",
            one(UP, |_, ts| {
                ts.samples.clear();
                let mut h = v2_histogram(int_histogram(NOW));
                h.count = Some(proto_v1::Count::CountInt(99));
                ts.histograms = vec![h];
            }),
            invalid(0, Problem::HistogramCountMismatch),
        ),
        (
            "31 labels",
            n_labels(31),
            invalid(0, Problem::TooManyLabels),
        ),
        ("30 labels", n_labels(30), written(1, 0, 0, 0)),
        (
            "label name too long",
            one(&[("__name__", "up"), (&long_name, "x")], |_, _| {}),
            invalid(0, Problem::LabelNameTooLong),
        ),
        (
            "label value too long",
            one(&[("__name__", "up"), ("a", &long_value)], |_, _| {}),
            invalid(0, Problem::LabelValueTooLong),
        ),
        (
            "sample too far ahead",
            one(UP, |_, ts| ts.samples[0].timestamp = NOW + 600_001),
            invalid(0, Problem::TooFarInFuture),
        ),
        (
            "histogram too far ahead",
            one(UP, |_, ts| {
                ts.samples.clear();
                ts.histograms = vec![v2_histogram(int_histogram(NOW + 600_001))];
            }),
            invalid(0, Problem::TooFarInFuture),
        ),
        (
            "second series is reported",
            {
                let mut b = Builder::new();
                let (good, bad) = (b.series(UP), b.series(&[("job", "x")]));
                b.request(vec![good, bad])
            },
            invalid(1, Problem::MissingMetricName),
        ),
    ];
    for (name, raw, want) in cases {
        assert_eq!(decode(Version::V2, &raw), want, "{name}");
    }
}

/// The shared 1.0 test histograms, as 2.0 messages with a start timestamp.
fn v2_histogram(h: proto_v1::Histogram) -> super::proto_v2::Histogram {
    super::proto_v2::Histogram {
        count: h.count,
        sum: h.sum,
        schema: h.schema,
        zero_threshold: h.zero_threshold,
        zero_count: h.zero_count,
        negative_spans: h.negative_spans,
        negative_deltas: h.negative_deltas,
        negative_counts: h.negative_counts,
        positive_spans: h.positive_spans,
        positive_deltas: h.positive_deltas,
        positive_counts: h.positive_counts,
        reset_hint: h.reset_hint,
        timestamp: h.timestamp,
        custom_values: h.custom_values,
        start_timestamp: h.timestamp - 60_000,
    }
}

/// Out-of-order series among sorted ones are all counted, and the names buffer reused across
/// series does not leak one series' names into the next one's repeat check.
#[test]
fn unsorted_series_are_accepted_and_counted() {
    let mut b = Builder::new();
    let series = vec![
        b.series(&[("job", "a"), ("__name__", "up"), ("instance", "i")]),
        b.series(UP),
        b.series(&[("zone", "z"), ("__name__", "up"), ("job", "b")]),
        b.series(&[("instance", "j"), ("__name__", "up")]),
    ];
    let body = b.request(series);
    assert_eq!(decode(Version::V2, &body), written(4, 0, 0, 0));

    let mut b = Builder::new();
    let series = vec![
        b.series(&[("job", "a"), ("__name__", "up")]),
        b.series(&[("zone", "z"), ("__name__", "up"), ("zone", "y")]),
    ];
    let body = b.request(series);
    assert_eq!(
        decode(Version::V2, &body),
        invalid(1, Problem::DuplicateLabelName)
    );
}
