//! Header checks, the snappy guard, error mapping and decoder reuse, plus the helpers the other
//! test files share. Requests are encoded with the prost types and compressed with `snap`.

use prost::Message;

use super::proto_v1::{Label, Sample, TimeSeries, WriteRequest};
use super::*;

/// The decoder's clock in every hand-built test.
pub(super) const NOW: i64 = 1_700_000_000_000;
/// Prometheus's stale marker.
/// A small deterministic generator (xorshift64, no crate), so failures reproduce.
pub(super) struct Rng(pub(super) u64);

impl Rng {
    pub(super) fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub(super) fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    pub(super) fn pick<'a>(&mut self, pool: &[&'a [u8]]) -> &'a [u8] {
        pool[self.below(pool.len())]
    }
}

pub(super) const STALE_NAN: u64 = 0x7ff0_0000_0000_0002;

pub(super) fn snappy(raw: &[u8]) -> Vec<u8> {
    snap::raw::Encoder::new()
        .compress_vec(raw)
        .expect("compress")
}

pub(super) fn decode(version: Version, raw: &[u8]) -> Result<Written, RwError> {
    Decoder::new().decode(version, &snappy(raw), &Limits::default(), NOW)
}

pub(super) fn label(name: &str, value: &str) -> Label {
    Label {
        name: name.as_bytes().to_vec().into(),
        value: value.as_bytes().to_vec().into(),
    }
}

pub(super) fn series(labels: &[(&str, &str)]) -> TimeSeries {
    TimeSeries {
        labels: labels.iter().map(|(n, v)| label(n, v)).collect(),
        samples: vec![Sample {
            value: 1.0,
            timestamp: NOW,
        }],
        ..Default::default()
    }
}

pub(super) fn request(series: Vec<TimeSeries>) -> WriteRequest {
    WriteRequest {
        timeseries: series,
        metadata: Vec::new(),
    }
}

pub(super) const UP: &[(&str, &str)] =
    &[("__name__", "up"), ("instance", "a:9090"), ("job", "prom")];

pub(super) fn invalid(series: usize, problem: Problem) -> Result<Written, RwError> {
    Err(RwError::InvalidSeries { series, problem })
}

pub(super) fn samples(n: u64) -> Result<Written, RwError> {
    Ok(Written {
        samples: n,
        ..Written::default()
    })
}

#[test]
fn content_type_selects_the_message() {
    let v2 = Ok(Version::V2);
    type Case<'a> = (Option<&'a [u8]>, Result<Version, RwError>);
    let cases: &[Case] = &[
        (None, Err(RwError::UnsupportedContentType)),
        (Some(b"application/x-protobuf"), Ok(Version::V1)),
        (Some(b"application/x-protobuf;proto=prometheus.WriteRequest"), Ok(Version::V1)),
        (Some(b"application/x-protobuf;proto=io.prometheus.write.v2.Request"), v2),
        (Some(b"Application/X-Protobuf ; Proto = \"io.prometheus.write.v2.Request\" "), v2),
        (Some(b"application/x-protobuf; charset=utf-8"), Ok(Version::V1)),
        (Some(b"application/x-protobuf;"), Ok(Version::V1)),
        (Some(b"application/json"), Err(RwError::UnsupportedContentType)),
        (Some(b""), Err(RwError::UnsupportedContentType)),
        (Some(b"application/x-protobuffer"), Err(RwError::UnsupportedContentType)),
        (Some(b"application/x-protobuf;proto=foo.Bar"), Err(RwError::UnsupportedContentType)),
        (Some(b"application/x-protobuf;proto"), Err(RwError::UnsupportedContentType)),
        (
            Some(b"application/x-protobuf;proto=io.prometheus.write.v2.request"),
            Err(RwError::UnsupportedContentType),
        ),
        (
            Some(b"application/x-protobuf;proto=prometheus.WriteRequest;proto=io.prometheus.write.v2.Request"),
            Err(RwError::UnsupportedContentType),
        ),
        (Some(b"application/x-protobuf\xff"), Err(RwError::UnsupportedContentType)),
    ];
    for (value, want) in cases {
        let shown = value.map(String::from_utf8_lossy);
        assert_eq!(&Version::from_content_type(*value), want, "{shown:?}");
    }
    for v in [Version::V1, Version::V2] {
        assert_eq!(
            Version::from_content_type(Some(v.content_type().as_bytes())),
            Ok(v)
        );
    }
}

#[test]
fn content_encoding_must_be_snappy() {
    for ok in [&b"snappy"[..], b"SNAPPY", b" Snappy "] {
        assert_eq!(check_encoding(Some(ok)), Ok(()));
    }
    for bad in [
        None,
        Some(&b"gzip"[..]),
        Some(b""),
        Some(b"snappy, gzip"),
        Some(b"x-snappy-framed"),
    ] {
        assert_eq!(check_encoding(bad), Err(RwError::UnsupportedEncoding));
    }
}

#[test]
fn errors_map_to_status_and_reason() {
    let series = |problem| RwError::InvalidSeries { series: 0, problem };
    let cases = [
        (
            RwError::UnsupportedContentType,
            415,
            "unsupported_media_type",
        ),
        (RwError::UnsupportedEncoding, 415, "unsupported_media_type"),
        (
            RwError::TooLarge {
                declared: 9,
                limit: 1,
            },
            413,
            "too_large",
        ),
        (RwError::BadEncoding, 400, "bad_encoding"),
        (RwError::BadPayload, 400, "bad_payload"),
        (RwError::FirstSymbolNotEmpty, 400, "invalid_series"),
        (series(Problem::LabelsNotSorted), 400, "invalid_series"),
        (series(Problem::SamplesAndHistograms), 400, "invalid_series"),
        (
            series(Problem::HistogramCountMismatch),
            400,
            "invalid_series",
        ),
        (series(Problem::InvalidUtf8), 400, "bad_payload"),
        (series(Problem::TooManyLabels), 400, "too_many_labels"),
        (
            series(Problem::LabelNameTooLong),
            400,
            "label_name_too_long",
        ),
        (
            series(Problem::LabelValueTooLong),
            400,
            "label_value_too_long",
        ),
        (
            series(Problem::TooFarInFuture),
            400,
            "sample_too_far_in_future",
        ),
    ];
    for (err, status, reason) in cases {
        assert_eq!((err.status(), err.reason()), (status, reason), "{err:?}");
    }
    let err = RwError::InvalidSeries {
        series: 3,
        problem: Problem::LabelsNotSorted,
    };
    assert_eq!(err.to_string(), "series 3: labels not sorted by name");
}

#[test]
fn snappy_header_declaring_4_gib_is_refused_before_allocating() {
    // Varint 2^32: the declared length of a 4 GiB block, followed by nothing.
    let body = [0x80, 0x80, 0x80, 0x80, 0x10];
    let mut decoder = Decoder::new();
    let got = decoder.decode(Version::V1, &body, &Limits::default(), NOW);
    assert_eq!(
        got,
        Err(RwError::TooLarge {
            declared: 1 << 32,
            limit: 32 << 20
        })
    );
    assert_eq!(got.map_err(|e| e.status()), Err(413));
    assert_eq!(decoder.buffer_capacity(), 0, "nothing may be allocated");
}

#[test]
fn decoded_limit_is_inclusive() {
    let raw = request(vec![series(UP)]).encode_to_vec();
    let body = snappy(&raw);
    let mut limits = Limits {
        max_decoded_bytes: raw.len(),
        ..Limits::default()
    };
    assert_eq!(
        Decoder::new().decode(Version::V1, &body, &limits, NOW),
        samples(1)
    );
    limits.max_decoded_bytes -= 1;
    let got = Decoder::new().decode(Version::V1, &body, &limits, NOW);
    assert!(matches!(got, Err(RwError::TooLarge { .. })), "{got:?}");
}

#[test]
fn broken_snappy_is_bad_encoding() {
    let good = snappy(&request(vec![series(UP)]).encode_to_vec());
    let mut truncated = good.clone();
    truncated.truncate(good.len() / 2);
    let mut longer_claim = good.clone();
    longer_claim[0] += 1; // header says one byte more than the block holds
    let cases: [&[u8]; 5] = [
        &[],
        &[0x80],
        &[0x05, 0xff, 0xff, 0xff],
        &truncated,
        &longer_claim,
    ];
    for body in cases {
        let got = Decoder::new().decode(Version::V1, body, &Limits::default(), NOW);
        assert_eq!(got, Err(RwError::BadEncoding), "{body:x?}");
    }
}

#[test]
fn garbage_protobuf_is_bad_payload() {
    let cases: [&[u8]; 6] = [
        b"\xff\xff\xff", // unterminated varint key
        b"\x2a\x05ab",   // length beyond the end
        b"\x08",         // varint missing
        b"\x0c",         // end group without start
        b"\x00\x01",     // tag 0
        b"\x0b\x10\x01", // group never closed
    ];
    for raw in cases {
        for version in [Version::V1, Version::V2] {
            assert_eq!(
                decode(version, raw),
                Err(RwError::BadPayload),
                "{version:?} {raw:x?}"
            );
        }
    }
    // 1.0: a label whose name arrives as a varint (wrong wire type).
    assert_eq!(
        decode(Version::V1, b"\x0a\x04\x0a\x02\x08\x01"),
        Err(RwError::BadPayload)
    );
}

#[test]
fn decoder_is_reusable_after_errors() {
    let mut decoder = Decoder::new();
    let limits = Limits::default();
    let good = snappy(&request(vec![series(UP), series(UP)]).encode_to_vec());
    for _ in 0..3 {
        assert_eq!(decoder.decode(Version::V1, &good, &limits, NOW), samples(2));
        assert_eq!(
            decoder.decode(Version::V1, b"\x03xx", &limits, NOW),
            Err(RwError::BadEncoding)
        );
        assert_eq!(
            decoder.decode(Version::V1, &snappy(b"\xff"), &limits, NOW),
            Err(RwError::BadPayload)
        );
    }
}

#[test]
fn buffer_is_kept_for_normal_requests_and_dropped_after_huge_ones() {
    let mut decoder = Decoder::new();
    let limits = Limits::default();
    let small = snappy(&request(vec![series(UP); 100]).encode_to_vec());
    assert_eq!(
        decoder.decode(Version::V1, &small, &limits, NOW),
        samples(100)
    );
    let warm = decoder.buffer_capacity();
    assert!(warm > 0);
    assert_eq!(
        decoder.decode(Version::V1, &small, &limits, NOW),
        samples(100)
    );
    assert_eq!(
        decoder.buffer_capacity(),
        warm,
        "a warm decoder reuses its buffer"
    );

    let huge = WriteRequest {
        timeseries: Vec::new(),
        metadata: vec![super::proto_v1::MetricMetadata {
            r#type: 1,
            metric_family_name: "m".into(),
            help: "h".repeat(5 << 20),
            unit: String::new(),
        }],
    };
    let huge = snappy(&huge.encode_to_vec());
    let got = decoder.decode(Version::V1, &huge, &limits, NOW);
    assert_eq!(got.map(|w| w.metadata), Ok(1));
    assert_eq!(
        decoder.buffer_capacity(),
        0,
        "a one-off 5 MiB buffer is not pinned"
    );
}
