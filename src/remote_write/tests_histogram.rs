//! Native histogram rules (shared by 1.0 and 2.0, exercised here through 1.0), and the test
//! histograms the other files reuse.

use prost::Message;

use super::proto_v1::{BucketSpan, Count, Histogram, TimeSeries, WriteRequest, ZeroCount};
use super::tests::{decode, invalid, series, NOW, STALE_NAN, UP};
use super::{Problem, RwError, Version, Written};

/// An integer histogram: 2 in the zero bucket, buckets 3 and 5 on the positive side
/// (deltas 3, +2) and 1 on the negative side: count 11.
pub(super) fn int_histogram(timestamp: i64) -> Histogram {
    Histogram {
        count: Some(Count::CountInt(11)),
        sum: 17.5,
        schema: 3,
        zero_threshold: 1e-128,
        zero_count: Some(ZeroCount::ZeroCountInt(2)),
        negative_spans: vec![BucketSpan {
            offset: 0,
            length: 1,
        }],
        negative_deltas: vec![1],
        positive_spans: vec![
            BucketSpan {
                offset: -2,
                length: 1,
            },
            BucketSpan {
                offset: 1,
                length: 1,
            },
        ],
        positive_deltas: vec![3, 2],
        timestamp,
        ..Default::default()
    }
}

/// The same histogram in float form.
pub(super) fn float_histogram(timestamp: i64) -> Histogram {
    Histogram {
        count: Some(Count::CountFloat(11.0)),
        zero_count: Some(ZeroCount::ZeroCountFloat(2.0)),
        negative_deltas: Vec::new(),
        negative_counts: vec![1.0],
        positive_deltas: Vec::new(),
        positive_counts: vec![3.0, 5.0],
        ..int_histogram(timestamp)
    }
}

#[test]
fn v1_native_histograms() {
    let with = |h: Histogram| {
        WriteRequest {
            metadata: Vec::new(),
            timeseries: vec![TimeSeries {
                samples: Vec::new(),
                histograms: vec![h],
                ..series(UP)
            }],
        }
        .encode_to_vec()
    };
    let one = Ok(Written {
        histograms: 1,
        ..Written::default()
    });
    let bad = |p| invalid(0, p);
    let cases: Vec<(&str, Histogram, Result<Written, RwError>)> = vec![
        ("integer", int_histogram(NOW), one),
        ("float", float_histogram(NOW), one),
        (
            "empty integer (no count at all)",
            Histogram {
                timestamp: NOW,
                ..Default::default()
            },
            one,
        ),
        (
            "stale marker",
            Histogram {
                sum: f64::from_bits(STALE_NAN),
                count: Some(Count::CountInt(0)),
                timestamp: NOW,
                ..Default::default()
            },
            one,
        ),
        (
            "NaN observed: count above buckets",
            Histogram {
                sum: f64::NAN,
                count: Some(Count::CountInt(12)),
                ..int_histogram(NOW)
            },
            one,
        ),
        (
            "float rounding tolerated",
            Histogram {
                count: Some(Count::CountFloat(10.999_999_999)),
                ..float_histogram(NOW)
            },
            one,
        ),
        (
            "float rounding tolerated upwards",
            Histogram {
                count: Some(Count::CountFloat(11.000_000_01)),
                ..float_histogram(NOW)
            },
            one,
        ),
        (
            "float, NaN observed: count above buckets",
            Histogram {
                sum: f64::NAN,
                count: Some(Count::CountFloat(12.0)),
                ..float_histogram(NOW)
            },
            one,
        ),
        (
            "float count above buckets",
            Histogram {
                count: Some(Count::CountFloat(12.0)),
                ..float_histogram(NOW)
            },
            bad(Problem::HistogramCountMismatch),
        ),
        (
            "float, NaN observed: count below buckets",
            Histogram {
                sum: f64::NAN,
                count: Some(Count::CountFloat(10.0)),
                ..float_histogram(NOW)
            },
            bad(Problem::HistogramCountMismatch),
        ),
        (
            "integer count too high",
            Histogram {
                count: Some(Count::CountInt(12)),
                ..int_histogram(NOW)
            },
            bad(Problem::HistogramCountMismatch),
        ),
        (
            "integer count too low",
            Histogram {
                count: Some(Count::CountInt(10)),
                ..int_histogram(NOW)
            },
            bad(Problem::HistogramCountMismatch),
        ),
        (
            "NaN observed: count below buckets",
            Histogram {
                sum: f64::NAN,
                count: Some(Count::CountInt(10)),
                ..int_histogram(NOW)
            },
            bad(Problem::HistogramCountMismatch),
        ),
        (
            "float count below buckets",
            Histogram {
                count: Some(Count::CountFloat(10.0)),
                ..float_histogram(NOW)
            },
            bad(Problem::HistogramCountMismatch),
        ),
        (
            "float count NaN",
            Histogram {
                count: Some(Count::CountFloat(f64::NAN)),
                ..float_histogram(NOW)
            },
            bad(Problem::HistogramCountMismatch),
        ),
        (
            "spans longer than buckets",
            Histogram {
                positive_deltas: vec![3],
                ..int_histogram(NOW)
            },
            bad(Problem::HistogramSpans),
        ),
        (
            "negative offset after first span",
            Histogram {
                positive_spans: vec![
                    BucketSpan {
                        offset: 0,
                        length: 1,
                    },
                    BucketSpan {
                        offset: -1,
                        length: 1,
                    },
                ],
                ..int_histogram(NOW)
            },
            bad(Problem::HistogramSpans),
        ),
        (
            "bucket going negative",
            Histogram {
                positive_deltas: vec![3, -4],
                count: Some(Count::CountInt(4)),
                ..int_histogram(NOW)
            },
            bad(Problem::HistogramNegativeBucket),
        ),
        (
            "negative float bucket",
            Histogram {
                positive_counts: vec![3.0, -5.0],
                ..float_histogram(NOW)
            },
            bad(Problem::HistogramNegativeBucket),
        ),
        (
            "integer with float buckets",
            Histogram {
                positive_counts: vec![3.0, 5.0],
                ..int_histogram(NOW)
            },
            bad(Problem::HistogramMixedKinds),
        ),
        (
            "float with deltas",
            Histogram {
                positive_deltas: vec![3, 2],
                ..float_histogram(NOW)
            },
            bad(Problem::HistogramMixedKinds),
        ),
        (
            "in the future",
            int_histogram(NOW + 600_001),
            bad(Problem::TooFarInFuture),
        ),
    ];
    for (name, h, want) in cases {
        assert_eq!(decode(Version::V1, &with(h)), want, "{name}");
    }
}
