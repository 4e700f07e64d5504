//! Protobuf messages of Remote-Write 1.0 (`prometheus.WriteRequest`, as Prometheus sends it:
//! with exemplars, native histograms and metadata) and 2.0 (`io.prometheus.write.v2.Request`),
//! declared here with prost from the published `.proto` files, independently of the crate.

/// `prometheus.WriteRequest` (remote-write 1.0 plus the metadata Prometheus sends in field 3).
pub mod v1 {
    use super::hist::Histogram;

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct WriteRequest {
        #[prost(message, repeated, tag = "1")]
        pub timeseries: Vec<TimeSeries>,
        #[prost(message, repeated, tag = "3")]
        pub metadata: Vec<MetricMetadata>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TimeSeries {
        #[prost(message, repeated, tag = "1")]
        pub labels: Vec<Label>,
        #[prost(message, repeated, tag = "2")]
        pub samples: Vec<Sample>,
        #[prost(message, repeated, tag = "3")]
        pub exemplars: Vec<Exemplar>,
        #[prost(message, repeated, tag = "4")]
        pub histograms: Vec<Histogram>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Label {
        #[prost(string, tag = "1")]
        pub name: String,
        #[prost(string, tag = "2")]
        pub value: String,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Sample {
        #[prost(double, tag = "1")]
        pub value: f64,
        #[prost(int64, tag = "2")]
        pub timestamp: i64,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Exemplar {
        #[prost(message, repeated, tag = "1")]
        pub labels: Vec<Label>,
        #[prost(double, tag = "2")]
        pub value: f64,
        #[prost(int64, tag = "3")]
        pub timestamp: i64,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct MetricMetadata {
        #[prost(int32, tag = "1")]
        pub r#type: i32,
        #[prost(string, tag = "2")]
        pub metric_family_name: String,
        #[prost(string, tag = "4")]
        pub help: String,
        #[prost(string, tag = "5")]
        pub unit: String,
    }

    /// A label whose value is raw bytes: lets a test put invalid UTF-8 on the wire.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct RawLabel {
        #[prost(bytes = "vec", tag = "1")]
        pub name: Vec<u8>,
        #[prost(bytes = "vec", tag = "2")]
        pub value: Vec<u8>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct RawSeries {
        #[prost(message, repeated, tag = "1")]
        pub labels: Vec<RawLabel>,
        #[prost(message, repeated, tag = "2")]
        pub samples: Vec<Sample>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct RawRequest {
        #[prost(message, repeated, tag = "1")]
        pub timeseries: Vec<RawSeries>,
    }
}

/// `io.prometheus.write.v2.Request`.
pub mod v2 {
    use super::hist::Histogram;

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Request {
        #[prost(string, repeated, tag = "4")]
        pub symbols: Vec<String>,
        #[prost(message, repeated, tag = "5")]
        pub timeseries: Vec<TimeSeries>,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct TimeSeries {
        #[prost(uint32, repeated, tag = "1")]
        pub labels_refs: Vec<u32>,
        #[prost(message, repeated, tag = "2")]
        pub samples: Vec<Sample>,
        #[prost(message, repeated, tag = "3")]
        pub histograms: Vec<Histogram>,
        #[prost(message, repeated, tag = "4")]
        pub exemplars: Vec<Exemplar>,
        #[prost(message, optional, tag = "5")]
        pub metadata: Option<Metadata>,
        /// Retired `created_timestamp`: receivers must skip it.
        #[prost(int64, tag = "6")]
        pub retired_created_timestamp: i64,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Sample {
        #[prost(double, tag = "1")]
        pub value: f64,
        #[prost(int64, tag = "2")]
        pub timestamp: i64,
        #[prost(int64, tag = "3")]
        pub start_timestamp: i64,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Exemplar {
        #[prost(uint32, repeated, tag = "1")]
        pub labels_refs: Vec<u32>,
        #[prost(double, tag = "2")]
        pub value: f64,
        #[prost(int64, tag = "3")]
        pub timestamp: i64,
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Metadata {
        #[prost(int32, tag = "1")]
        pub r#type: i32,
        #[prost(uint32, tag = "3")]
        pub help_ref: u32,
        #[prost(uint32, tag = "4")]
        pub unit_ref: u32,
    }

    /// A request whose symbols are raw bytes: lets a test put invalid UTF-8 on the wire.
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct RawRequest {
        #[prost(bytes = "vec", repeated, tag = "4")]
        pub symbols: Vec<Vec<u8>>,
        #[prost(message, repeated, tag = "5")]
        pub timeseries: Vec<TimeSeries>,
    }
}

/// The native histogram message, identical in both versions.
pub mod hist {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Histogram {
        #[prost(oneof = "Count", tags = "1, 2")]
        pub count: Option<Count>,
        #[prost(double, tag = "3")]
        pub sum: f64,
        #[prost(sint32, tag = "4")]
        pub schema: i32,
        #[prost(double, tag = "5")]
        pub zero_threshold: f64,
        #[prost(oneof = "ZeroCount", tags = "6, 7")]
        pub zero_count: Option<ZeroCount>,
        #[prost(message, repeated, tag = "8")]
        pub negative_spans: Vec<BucketSpan>,
        #[prost(sint64, repeated, tag = "9")]
        pub negative_deltas: Vec<i64>,
        #[prost(double, repeated, tag = "10")]
        pub negative_counts: Vec<f64>,
        #[prost(message, repeated, tag = "11")]
        pub positive_spans: Vec<BucketSpan>,
        #[prost(sint64, repeated, tag = "12")]
        pub positive_deltas: Vec<i64>,
        #[prost(double, repeated, tag = "13")]
        pub positive_counts: Vec<f64>,
        #[prost(int32, tag = "14")]
        pub reset_hint: i32,
        #[prost(int64, tag = "15")]
        pub timestamp: i64,
        #[prost(double, repeated, tag = "16")]
        pub custom_values: Vec<f64>,
    }

    #[derive(Clone, Copy, PartialEq, prost::Oneof)]
    pub enum Count {
        #[prost(uint64, tag = "1")]
        Int(u64),
        #[prost(double, tag = "2")]
        Float(f64),
    }

    #[derive(Clone, Copy, PartialEq, prost::Oneof)]
    pub enum ZeroCount {
        #[prost(uint64, tag = "6")]
        Int(u64),
        #[prost(double, tag = "7")]
        Float(f64),
    }

    #[derive(Clone, PartialEq, prost::Message)]
    pub struct BucketSpan {
        #[prost(sint32, tag = "1")]
        pub offset: i32,
        #[prost(uint32, tag = "2")]
        pub length: u32,
    }

    fn span(offset: i32, length: u32) -> BucketSpan {
        BucketSpan { offset, length }
    }

    /// An integer exponential histogram: zero bucket 1, positive buckets 2 and 1 (deltas
    /// 2, -1), negative bucket 1: count 5. `count` overrides the right count.
    pub fn int(ts: i64, count: Option<u64>) -> Histogram {
        Histogram {
            count: Some(Count::Int(count.unwrap_or(5))),
            sum: 12.5,
            schema: 0,
            zero_threshold: 1e-128,
            zero_count: Some(ZeroCount::Int(1)),
            negative_spans: vec![span(0, 1)],
            negative_deltas: vec![1],
            positive_spans: vec![span(0, 2)],
            positive_deltas: vec![2, -1],
            timestamp: ts,
            ..Default::default()
        }
    }

    /// A float exponential histogram: zero bucket 0.5, positive 1.5 and 2.5: count 4.5.
    pub fn float(ts: i64) -> Histogram {
        Histogram {
            count: Some(Count::Float(4.5)),
            sum: 7.25,
            schema: 3,
            zero_threshold: 1e-128,
            zero_count: Some(ZeroCount::Float(0.5)),
            positive_spans: vec![span(-2, 2)],
            positive_counts: vec![1.5, 2.5],
            timestamp: ts,
            ..Default::default()
        }
    }

    /// The stale marker of a native histogram as Prometheus writes it: sum = StaleNaN, count 0,
    /// no buckets (RW1/RW2 Stale Markers).
    pub fn stale(ts: i64) -> Histogram {
        Histogram {
            count: Some(Count::Int(0)),
            sum: f64::from_bits(super::super::STALE_NAN),
            timestamp: ts,
            ..Default::default()
        }
    }

    /// A custom-bucket histogram (schema -53), bounds 1 and 5 plus +Inf: 1, 2, 1 = count 4.
    pub fn custom(ts: i64) -> Histogram {
        Histogram {
            count: Some(Count::Int(4)),
            sum: 9.0,
            schema: -53,
            positive_spans: vec![span(0, 3)],
            positive_deltas: vec![1, 1, -1],
            custom_values: vec![1.0, 5.0],
            timestamp: ts,
            ..Default::default()
        }
    }
}
