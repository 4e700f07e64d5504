//! Remote-Write 1.0 wire types: `prometheus.WriteRequest` and what it contains, written by hand
//! as prost messages (no build script), field numbers from prometheus/prometheus
//! `prompb/remote.proto` and `prompb/types.proto`.
//!
//! Strings that are hot (label names and values) are declared as protobuf `bytes`, which is the
//! same wire encoding as `string`: decoding them from a [`Bytes`] buffer is then a reference-count
//! bump instead of an allocation and a copy. UTF-8 is checked by the validator instead, with the
//! same outcome as a `string` field (an undecodable payload).
//!
//! These types are the owned model of the message: senders and tests encode with them, the hot
//! path decodes native histograms with them, and the `scan_v1` walker (which validates without
//! building them) is tested to agree with prost decoding them on what is well-formed.

use bytes::Bytes;

/// The whole 1.0 request body (after snappy).
#[derive(Clone, PartialEq, prost::Message)]
pub struct WriteRequest {
    /// The series with their samples, exemplars and native histograms.
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
    // Tag 2 is reserved (Cortex's `source`): prost skips it like any unknown field.
    /// Metric metadata (type, help, unit), sent by Prometheus in batches of its own.
    #[prost(message, repeated, tag = "3")]
    pub metadata: Vec<MetricMetadata>,
}

/// One series: its complete label set and what was observed for it.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TimeSeries {
    /// Identifies the series; sorted by name, unique, non-empty (validated, not trusted).
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    /// Float samples in timestamp order.
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
    /// Exemplars attached to this series (Prometheus sends them in series of their own).
    #[prost(message, repeated, tag = "3")]
    pub exemplars: Vec<Exemplar>,
    /// Native histogram samples.
    #[prost(message, repeated, tag = "4")]
    pub histograms: Vec<Histogram>,
}

/// One label pair; `bytes` on the wire-compatible side of `string` so decoding borrows.
#[derive(Clone, PartialEq, Eq, prost::Message)]
pub struct Label {
    /// Label name (UTF-8 and the name regex are checked by the validator).
    #[prost(bytes = "bytes", tag = "1")]
    pub name: Bytes,
    /// Label value (UTF-8 checked by the validator).
    #[prost(bytes = "bytes", tag = "2")]
    pub value: Bytes,
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
}

/// An exemplar: an example observation, typically carrying a trace id.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Exemplar {
    /// Optional labels such as `trace_id`.
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    /// The observed value.
    #[prost(double, tag = "2")]
    pub value: f64,
    /// Milliseconds since the Unix epoch.
    #[prost(int64, tag = "3")]
    pub timestamp: i64,
}

/// Metadata of one metric family.
#[derive(Clone, PartialEq, prost::Message)]
pub struct MetricMetadata {
    /// A `MetricType` value; unknown numbers are kept (forward compatible).
    #[prost(int32, tag = "1")]
    pub r#type: i32,
    /// The family name the metadata is about.
    #[prost(string, tag = "2")]
    pub metric_family_name: String,
    /// HELP text.
    #[prost(string, tag = "4")]
    pub help: String,
    /// Unit, if any.
    #[prost(string, tag = "5")]
    pub unit: String,
}

/// A native histogram sample (integer or float flavour), same layout as in 2.0 minus
/// `start_timestamp`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Histogram {
    /// Count of observations: `CountInt` for integer histograms, `CountFloat` for float ones.
    #[prost(oneof = "Count", tags = "1, 2")]
    pub count: Option<Count>,
    /// Sum of observations (NaN when NaN was observed, StaleNaN for a stale marker).
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
}

/// Total count of a histogram, integer or float.
#[derive(Clone, Copy, PartialEq, prost::Oneof)]
pub enum Count {
    /// Integer histogram.
    #[prost(uint64, tag = "1")]
    CountInt(u64),
    /// Float histogram.
    #[prost(double, tag = "2")]
    CountFloat(f64),
}

/// Zero-bucket count of a histogram, integer or float.
#[derive(Clone, Copy, PartialEq, prost::Oneof)]
pub enum ZeroCount {
    /// Integer histogram.
    #[prost(uint64, tag = "6")]
    ZeroCountInt(u64),
    /// Float histogram.
    #[prost(double, tag = "7")]
    ZeroCountFloat(f64),
}

/// A run of consecutive buckets.
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct BucketSpan {
    /// Gap to the previous span (or start index of the first one).
    #[prost(sint32, tag = "1")]
    pub offset: i32,
    /// Number of consecutive buckets in this span.
    #[prost(uint32, tag = "2")]
    pub length: u32,
}
