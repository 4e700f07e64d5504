//! The scanners against independent decoders: the real Prometheus 2.42 bodies counted by a
//! separate wire walker and by prost, and mutated bodies where the scanners must agree with
//! prost on what is decodable (and never panic).

use prost::Message;

use super::tests::{snappy, Rng, NOW};
use super::{proto_v1, proto_v2, Decoder, Limits, RwError, Version, Written};

const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/prometheus-2.42"
);

/// (samples, metadata) per fixture body; none carries exemplars or native histograms
/// (Prometheus scraping itself). Counted by `wire_counts`, then frozen here.
const FIXTURE_COUNTS: [(u64, u64); 6] =
    [(353, 0), (500, 0), (500, 0), (500, 0), (0, 202), (500, 0)];

fn fixture(i: usize) -> Vec<u8> {
    let path = format!("{FIXTURES}/body_{i:03}.bin");
    std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The fixtures hold the wall-clock timestamps of their recording: judge them by today.
fn wall_ms() -> i64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
    since.map_or(NOW, |d| d.as_millis() as i64)
}

/// A protobuf walker sharing no code with the scanners: (tag, length-delimited payload).
fn wire_fields(mut msg: &[u8]) -> Vec<(u64, Option<&[u8]>)> {
    fn varint(b: &mut &[u8]) -> u64 {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let (first, rest) = b.split_first().expect("truncated varint");
            *b = rest;
            v |= u64::from(first & 0x7f) << shift;
            if first & 0x80 == 0 {
                break;
            }
        }
        v
    }
    let mut out = Vec::new();
    while !msg.is_empty() {
        let key = varint(&mut msg);
        let payload = match key & 7 {
            0 => {
                varint(&mut msg);
                None
            }
            1 => {
                msg = &msg[8..];
                None
            }
            2 => {
                let len = varint(&mut msg) as usize;
                let (payload, rest) = msg.split_at(len);
                msg = rest;
                Some(payload)
            }
            5 => {
                msg = &msg[4..];
                None
            }
            wt => panic!("unexpected wire type {wt}"),
        };
        out.push((key >> 3, payload));
    }
    out
}

/// What a 1.0 body carries, by counting field occurrences.
fn wire_counts(raw: &[u8]) -> Written {
    let mut w = Written::default();
    for (tag, payload) in wire_fields(raw) {
        match (tag, payload) {
            (1, Some(series)) => {
                for (inner, _) in wire_fields(series) {
                    match inner {
                        2 => w.samples += 1,
                        3 => w.exemplars += 1,
                        4 => w.histograms += 1,
                        _ => {}
                    }
                }
            }
            (3, Some(_)) => w.metadata += 1,
            _ => {}
        }
    }
    w
}

fn prost_counts(req: &proto_v1::WriteRequest) -> Written {
    Written {
        samples: req.timeseries.iter().map(|t| t.samples.len() as u64).sum(),
        histograms: req
            .timeseries
            .iter()
            .map(|t| t.histograms.len() as u64)
            .sum(),
        exemplars: req
            .timeseries
            .iter()
            .map(|t| t.exemplars.len() as u64)
            .sum(),
        metadata: req.metadata.len() as u64,
    }
}

#[test]
fn every_prometheus_2_42_fixture_is_accepted_and_counted_exactly() {
    let mut decoder = Decoder::new();
    for (i, &(samples, metadata)) in FIXTURE_COUNTS.iter().enumerate() {
        let body = fixture(i);
        let raw = snap::raw::Decoder::new()
            .decompress_vec(&body)
            .expect("fixture is snappy");
        let want = Written {
            samples,
            metadata,
            ..Written::default()
        };
        assert_eq!(wire_counts(&raw), want, "body_{i:03}: wire walker");
        let req = proto_v1::WriteRequest::decode(&raw[..]).expect("prost decodes the fixture");
        assert_eq!(prost_counts(&req), want, "body_{i:03}: prost");
        let got = decoder.decode(Version::V1, &body, &Limits::default(), wall_ms());
        assert_eq!(got, Ok(want), "body_{i:03}: decoder");
    }
    let total: u64 = FIXTURE_COUNTS.iter().map(|c| c.0).sum();
    assert_eq!(total, 2353);
}

/// Flips, deletes, inserts or overwrites a few bytes.
fn mutate(raw: &[u8], rng: &mut Rng) -> Vec<u8> {
    let mut out = raw.to_vec();
    for _ in 0..1 + rng.below(3) {
        if out.is_empty() {
            out.push(rng.next() as u8);
            continue;
        }
        let at = rng.below(out.len());
        match rng.below(4) {
            0 => out[at] ^= 1 << rng.below(8),
            1 => drop(out.remove(at)),
            2 => out.insert(at, rng.next() as u8),
            _ => out[at] = [0x00, 0x7f, 0x80, 0xff, 0x0a, 0x12][rng.below(6)],
        }
    }
    out
}

/// Wherever prost fails to decode a body, the scanner refuses it too; wherever prost decodes
/// it, the scanner does not call it undecodable (it may still refuse it for a rule, or for a
/// string prost does not check because the types hold labels as bytes).
#[test]
fn scanners_agree_with_prost_on_mutated_bodies() {
    let v1_seed = small_v1();
    let v2_seed = small_v2();
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut decoder = Decoder::new();
    let limits = Limits::default();
    for round in 0..4000 {
        let (version, seed) = match round % 2 {
            0 => (Version::V1, &v1_seed),
            _ => (Version::V2, &v2_seed),
        };
        let raw = mutate(seed, &mut rng);
        let prost_ok = match version {
            Version::V1 => proto_v1::WriteRequest::decode(&raw[..]).is_ok(),
            // `symbols` is a protobuf `string` held as bytes: add the UTF-8 check prost skips.
            Version::V2 => proto_v2::Request::decode(&raw[..])
                .is_ok_and(|r| r.symbols.iter().all(|s| std::str::from_utf8(s).is_ok())),
        };
        let got = decoder.decode(version, &snappy(&raw), &limits, wall_ms());
        if prost_ok {
            assert_ne!(got, Err(RwError::BadPayload), "round {round}: {raw:x?}");
        } else {
            assert!(
                got.is_err(),
                "round {round}: prost refused, scanner accepted {raw:x?}"
            );
        }
    }
}

/// A 1.0 body with a bit of everything: labels, samples, an exemplar, a native histogram and
/// metadata.
fn small_v1() -> Vec<u8> {
    let label = |n: &str, v: &str| proto_v1::Label {
        name: n.as_bytes().to_vec().into(),
        value: v.as_bytes().to_vec().into(),
    };
    let series = proto_v1::TimeSeries {
        labels: vec![label("__name__", "rpc_seconds"), label("job", "api")],
        samples: vec![proto_v1::Sample {
            value: 0.5,
            timestamp: NOW,
        }],
        exemplars: vec![proto_v1::Exemplar {
            labels: vec![label("trace_id", "abc")],
            value: 0.5,
            timestamp: NOW,
        }],
        histograms: vec![super::tests_histogram::int_histogram(NOW)],
    };
    proto_v1::WriteRequest {
        timeseries: vec![series.clone(), series],
        metadata: vec![proto_v1::MetricMetadata {
            r#type: 3,
            metric_family_name: "rpc_seconds".into(),
            help: "RPC latency.".into(),
            unit: "seconds".into(),
        }],
    }
    .encode_to_vec()
}

/// A 2.0 body with samples, exemplars, metadata and a histogram series.
fn small_v2() -> Vec<u8> {
    let symbols = [
        "",
        "__name__",
        "http_requests_total",
        "job",
        "api",
        "trace_id",
        "abc",
        "Help.",
    ];
    let series = |i: i64| proto_v2::TimeSeries {
        labels_refs: vec![1, 2, 3, 4],
        samples: vec![proto_v2::Sample {
            value: i as f64,
            timestamp: NOW + i,
            start_timestamp: NOW - 1,
        }],
        exemplars: vec![proto_v2::Exemplar {
            labels_refs: vec![5, 6],
            value: 0.5,
            timestamp: NOW,
        }],
        metadata: Some(proto_v2::Metadata {
            r#type: 1,
            help_ref: 7,
            unit_ref: 0,
        }),
        ..Default::default()
    };
    let mut histogram_series = series(9);
    histogram_series.samples.clear();
    histogram_series.histograms = vec![proto_v2::Histogram {
        count: Some(proto_v1::Count::CountInt(3)),
        positive_spans: vec![proto_v1::BucketSpan {
            offset: 0,
            length: 2,
        }],
        positive_deltas: vec![1, 1],
        timestamp: NOW,
        ..Default::default()
    }];
    proto_v2::Request {
        symbols: symbols
            .iter()
            .map(|s| s.as_bytes().to_vec().into())
            .collect(),
        timeseries: vec![series(0), series(1), histogram_series],
    }
    .encode_to_vec()
}
