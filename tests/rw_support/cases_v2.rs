//! The v2 (`io.prometheus.write.v2.Request`) half of the invalid-request table.

use super::cases::*;
use super::*;

pub(super) fn cases() -> Vec<Case> {
    let ln = long(1025);
    let lv = long(2049);
    let many = many_labels(31);
    let future = now_ms() + 11 * 60 * 1000;
    let v2_bad_utf8 = {
        let b = V2Builder::new();
        let mut raw = v2::RawRequest {
            symbols: b
                .req
                .symbols
                .iter()
                .map(|s| s.as_bytes().to_vec())
                .collect(),
            timeseries: vec![],
        };
        raw.symbols
            .extend([b"__name__".to_vec(), vec![b'm', 0xc3, 0x28]]);
        raw.timeseries.push(v2::TimeSeries {
            labels_refs: vec![1, 2],
            samples: vec![v2::Sample {
                value: 1.0,
                timestamp: now_ms(),
                start_timestamp: 0,
            }],
            ..Default::default()
        });
        snappy(&prost::Message::encode_to_vec(&raw))
    };

    vec![
        // ---- v2: symbols (RW2 §Symbols) ----
        case(
            "v2 symbols[0] not empty",
            "RW2 Symbols: first element MUST be an empty string",
            CT_V2,
            v2_with(|b| b.req.symbols[0] = "x".into()),
            INVALID,
        ),
        case(
            "v2 no symbols table",
            "RW2 Symbols: the symbols table MUST be provided",
            CT_V2,
            v2_with(|b| b.req.symbols.clear()),
            INVALID,
        ),
        case(
            "v2 label ref out of range",
            "RW2 Symbols: references MUST point to an existing index",
            CT_V2,
            v2_with(|b| {
                let n = b.req.symbols.len() as u32;
                b.req.timeseries[0].labels_refs[3] = n;
            }),
            INVALID,
        ),
        case(
            "v2 odd labels_refs",
            "RW2 TimeSeries: labels_refs length is a multiple of two",
            CT_V2,
            v2_with(|b| {
                b.req.timeseries[0].labels_refs.pop();
            }),
            INVALID,
        ),
        case(
            "v2 exemplar ref out of range",
            "RW2 Symbols: references MUST point to an existing index",
            CT_V2,
            v2_with(|b| {
                b.req.timeseries[0].exemplars.push(v2::Exemplar {
                    labels_refs: vec![1, 999],
                    value: 1.0,
                    timestamp: now_ms(),
                })
            }),
            INVALID,
        ),
        case(
            "v2 odd exemplar labels_refs",
            "RW2 Exemplar: labels_refs length is a multiple of 2",
            CT_V2,
            v2_with(|b| {
                b.req.timeseries[0].exemplars.push(v2::Exemplar {
                    labels_refs: vec![1],
                    value: 1.0,
                    timestamp: now_ms(),
                })
            }),
            INVALID,
        ),
        case(
            "v2 metadata help_ref out of range",
            "RW2 Symbols: references MUST point to an existing index",
            CT_V2,
            v2_with(|b| {
                b.req.timeseries[0].metadata = Some(v2::Metadata {
                    r#type: 2,
                    help_ref: 4242,
                    unit_ref: 0,
                })
            }),
            INVALID,
        ),
        case(
            "v2 symbol not UTF-8",
            "RW2 Labels: MUST be any sequence of UTF-8 characters",
            CT_V2,
            v2_bad_utf8,
            "bad_payload",
        ),
        // ---- v2: series (RW2 §Protobuf Message, §Series Labels) ----
        case(
            "v2 no labels",
            "RW2 TimeSeries: labels_refs MUST be provided",
            CT_V2,
            v2_one(&[]),
            INVALID,
        ),
        case(
            "v2 missing __name__",
            "RW2 Series Labels: SHOULD contain __name__ (edge: required)",
            CT_V2,
            v2_one(&[("job", "x")]),
            INVALID,
        ),
        // Unsorted 2.0 names are accepted (SPEC §6, as the Prometheus receiver does); a repeat
        // that sorting brings together is still refused.
        case(
            "v2 unsorted names with a repeat apart",
            "RW2 Series Labels: MUST NOT contain repeated label names (in any order)",
            CT_V2,
            v2_one(&[
                ("job", "x"),
                ("__name__", "m"),
                ("instance", "i"),
                ("job", "y"),
            ]),
            INVALID,
        ),
        case(
            "v2 duplicate names",
            "RW2 Series Labels: MUST NOT contain repeated label names",
            CT_V2,
            v2_one(&[("__name__", "m"), ("job", "x"), ("job", "y")]),
            INVALID,
        ),
        case(
            "v2 empty name",
            "RW2 Series Labels: MUST NOT contain empty label names",
            CT_V2,
            v2_one(&[("", "v"), ("__name__", "m")]),
            INVALID,
        ),
        case(
            "v2 empty value",
            "RW2 Series Labels: MUST NOT contain empty label values",
            CT_V2,
            v2_one(&[("__name__", "m"), ("job", "")]),
            INVALID,
        ),
        case(
            "v2 samples and histograms",
            "RW2 TimeSeries: MUST NOT include both samples and histograms",
            CT_V2,
            v2_with(|b| {
                b.req.timeseries[0]
                    .histograms
                    .push(hist::int(now_ms() - 1000, None))
            }),
            INVALID,
        ),
        case(
            "v2 neither samples nor histograms",
            "RW2 TimeSeries: at least one sample or histogram MUST be provided",
            CT_V2,
            v2_with(|b| b.req.timeseries[0].samples.clear()),
            INVALID,
        ),
        case(
            "v2 int histogram count mismatch",
            "edge: histogram count = zero + buckets",
            CT_V2,
            v2_with(|b| {
                let t = &mut b.req.timeseries[0];
                t.samples.clear();
                t.histograms.push(hist::int(now_ms() - 1000, Some(50)));
            }),
            INVALID,
        ),
        case(
            "v2 float histogram count mismatch",
            "edge: histogram count = zero + buckets",
            CT_V2,
            v2_with(|b| {
                let t = &mut b.req.timeseries[0];
                t.samples.clear();
                let mut h = hist::float(now_ms() - 1000);
                h.count = Some(hist::Count::Float(10.0));
                t.histograms.push(h);
            }),
            INVALID,
        ),
        case(
            "v2 one bad series among good ones",
            "RW2 Invalid Samples: MUST return 400 for any invalid sample",
            CT_V2,
            // The bad series repeats a name (unsorted names alone are valid in 2.0).
            v2_with(|b| {
                b.series(
                    &[("__name__", "m2"), ("b", "x"), ("a", "y"), ("b", "z")],
                    &[1.0],
                );
            }),
            INVALID,
        ),
        // ---- v2: receiver limits ----
        case(
            "v2 31 label names",
            "edge limit: max 30 label names",
            CT_V2,
            v2_one(&pairs(&many)),
            "too_many_labels",
        ),
        case(
            "v2 label name of 1025 bytes",
            "edge limit: label name <= 1024",
            CT_V2,
            v2_one(&[("__name__", "m"), (ln.as_str(), "x")]),
            "label_name_too_long",
        ),
        case(
            "v2 label value of 2049 bytes",
            "edge limit: label value <= 2048",
            CT_V2,
            v2_one(&[("__name__", "m"), ("job", lv.as_str())]),
            "label_value_too_long",
        ),
        case(
            "v2 sample 11 min in the future",
            "edge limit: max 10 min in the future",
            CT_V2,
            v2_with(|b| b.req.timeseries[0].samples[0].timestamp = future),
            "sample_too_far_in_future",
        ),
        case(
            "v2 histogram 11 min in the future",
            "edge limit: max 10 min in the future",
            CT_V2,
            v2_with(|b| {
                let t = &mut b.req.timeseries[0];
                t.samples.clear();
                t.histograms.push(hist::int(future, None));
            }),
            "sample_too_far_in_future",
        ),
        // ---- v2: wire format ----
        case(
            "v2 not protobuf at all",
            "RW2 Protocol: MUST use binary wire format",
            CT_V2,
            snappy(&[0xff, 0xff, 0xff, 0xff]),
            "bad_payload",
        ),
        case(
            "v2 truncated snappy",
            "RW2 Protocol: MUST be compressed with snappy",
            CT_V2,
            {
                let b = v2_one(&[("__name__", "m")]);
                b[..b.len() - 2].to_vec()
            },
            "bad_encoding",
        ),
    ]
}
