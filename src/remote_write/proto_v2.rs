//! Remote-Write 2.0 wire types: `io.prometheus.write.v2.Request`, written by hand as prost
//! messages, field numbers from prometheus/prometheus `prompb/io/prometheus/write/v2/types.proto`
//! (v2.0-rc.4).
//!
//! Deliberately absent: `TimeSeries` field 6 (the retired `created_timestamp`); a sender that
//! still sets it is decoded as if it had not, because prost skips unknown fields. The start
//! timestamp now lives on `Sample` (3) and `Histogram` (17).
//!
//! The histogram's oneofs and `BucketSpan` have the same wire layout as in 1.0 and are shared
//! with [`super::proto_v1`] so one validator serves both.

use bytes::Bytes;

pub use super::proto_v1::{BucketSpan, Count, ZeroCount};

/// The whole 2.0 request body (after snappy).
#[derive(Clone, PartialEq, prost::Message)]
pub struct Request {
    // Tags 1 to 3 are reserved so that a 1.0 body read with this schema comes out empty.
    /// Interned strings; `symbols[0]` must be `""`. Kept as `bytes` so decoding borrows; UTF-8
    /// is checked once per symbol by the validator.
    #[prost(bytes = "bytes", repeated, tag = "4")]
    pub symbols: Vec<Bytes>,
    /// The series.
    #[prost(message, repeated, tag = "5")]
    pub timeseries: Vec<TimeSeries>,
}

/// One series: label references plus either samples or histograms.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TimeSeries {
    /// Name/value pairs of indices into `Request::symbols`; even length, sorted by name.
    #[prost(uint32, repeated, tag = "1")]
    pub labels_refs: Vec<u32>,
    /// Float samples (never together with `histograms`).
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
    /// Native histogram samples (never together with `samples`).
    #[prost(message, repeated, tag = "3")]
    pub histograms: Vec<Histogram>,
    /// Exemplars attached to this series' samples.
    #[prost(message, repeated, tag = "4")]
    pub exemplars: Vec<Exemplar>,
    /// Type, help and unit of the series' metric.
    #[prost(message, optional, tag = "5")]
    pub metadata: Option<Metadata>,
    // Tag 6 (created_timestamp) is reserved: skipped silently.
}

/// One float sample.
#[derive(Clone, Copy, PartialEq, prost::Message)]
pub struct Sample {
    /// The value; NaN, ±Inf and the stale marker bit pattern are all legal.
    #[prost(double, tag = "1")]
    pub value: f64,
    /// Milliseconds since the Unix epoch.
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
    /// When the counter started counting, in ms; 0 means unset.
    #[prost(int64, tag = "3")]
    pub start_timestamp: i64,
}

/// An exemplar attached to a series.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Exemplar {
    /// Optional name/value symbol references (even length).
    #[prost(uint32, repeated, tag = "1")]
    pub labels_refs: Vec<u32>,
    /// The observed value.
    #[prost(double, tag = "2")]
    pub value: f64,
    /// Milliseconds since the Unix epoch.
    #[prost(int64, tag = "3")]
    pub timestamp: i64,
}

/// Metadata of the series' metric, by symbol reference.
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct Metadata {
    /// A `MetricType` value, 0 = unspecified; unknown numbers are kept.
    #[prost(int32, tag = "1")]
    pub r#type: i32,
    /// Symbol index of the HELP text (0 = none).
    #[prost(uint32, tag = "3")]
    pub help_ref: u32,
    /// Symbol index of the unit (0 = none).
    #[prost(uint32, tag = "4")]
    pub unit_ref: u32,
}

/// A native histogram sample: the 1.0 layout plus `start_timestamp`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Histogram {
    /// Count of observations: `CountInt` for integer histograms, `CountFloat` for float ones.
    #[prost(oneof = "Count", tags = "1, 2")]
    pub count: Option<Count>,
    /// Sum of observations.
    #[prost(double, tag = "3")]
    pub sum: f64,
    /// Bucket schema (-4..=8 exponential, -53 custom buckets).
    #[prost(sint32, tag = "4")]
    pub schema: i32,
    /// Width of the zero bucket.
    #[prost(double, tag = "5")]
    pub zero_threshold: f64,
    /// Observations in the zero bucket, same flavour as `count`.
    #[prost(oneof = "ZeroCount", tags = "6, 7")]
    pub zero_count: Option<ZeroCount>,
    /// Spans of the negative buckets.
    #[prost(message, repeated, tag = "8")]
    pub negative_spans: Vec<BucketSpan>,
    /// Integer histograms: delta of each negative bucket to the previous one.
    #[prost(sint64, repeated, tag = "9")]
    pub negative_deltas: Vec<i64>,
    /// Float histograms: absolute count of each negative bucket.
    #[prost(double, repeated, tag = "10")]
    pub negative_counts: Vec<f64>,
    /// Spans of the positive buckets.
    #[prost(message, repeated, tag = "11")]
    pub positive_spans: Vec<BucketSpan>,
    /// Integer histograms: delta of each positive bucket to the previous one.
    #[prost(sint64, repeated, tag = "12")]
    pub positive_deltas: Vec<i64>,
    /// Float histograms: absolute count of each positive bucket.
    #[prost(double, repeated, tag = "13")]
    pub positive_counts: Vec<f64>,
    /// Counter-reset hint (0 unknown, 1 yes, 2 no, 3 gauge).
    #[prost(int32, tag = "14")]
    pub reset_hint: i32,
    /// Milliseconds since the Unix epoch.
    #[prost(int64, tag = "15")]
    pub timestamp: i64,
    /// Upper bounds of custom buckets (schema -53).
    #[prost(double, repeated, tag = "16")]
    pub custom_values: Vec<f64>,
    /// When the histogram started counting, in ms; 0 means unset.
    #[prost(int64, tag = "17")]
    pub start_timestamp: i64,
}
