//! The few protobuf messages of Prometheus remote-write 1.0 (`prometheus.WriteRequest`) and
//! 2.0 (`io.prometheus.write.v2.Request`) that the generator writes, declared by hand with
//! prost derives so the load generator does not depend on the edge's own decoder (a generator
//! that shares the server's types could hide a bug both sides agree on).
//!
//! Only the fields we emit are declared; field numbers follow the published `.proto` files.

/// remote-write 1.0 `prometheus.WriteRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct WriteRequestV1 {
    /// One entry per series; labels are inlined as strings in each.
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeriesV1>,
}

/// remote-write 1.0 `prometheus.TimeSeries`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TimeSeriesV1 {
    /// Sorted by name, `__name__` first (it sorts first in byte order).
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<LabelV1>,
    /// Oldest first.
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
}

/// remote-write 1.0 `prometheus.Label`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct LabelV1 {
    /// Label name, e.g. `namespace`.
    #[prost(string, tag = "1")]
    pub name: String,
    /// Label value, never empty (empty means "absent" in Prometheus).
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `Sample` has the same shape in 1.0 and 2.0.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Sample {
    /// The float value.
    #[prost(double, tag = "1")]
    pub value: f64,
    /// Milliseconds since the Unix epoch.
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

/// remote-write 2.0 `io.prometheus.write.v2.Request` (fields 1-3 are reserved there).
#[derive(Clone, PartialEq, prost::Message)]
pub struct RequestV2 {
    /// Interned strings; index 0 must be the empty string.
    #[prost(string, repeated, tag = "4")]
    pub symbols: Vec<String>,
    /// Series referring to `symbols` by index.
    #[prost(message, repeated, tag = "5")]
    pub timeseries: Vec<TimeSeriesV2>,
}

/// remote-write 2.0 `TimeSeries`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct TimeSeriesV2 {
    /// Pairs of (name, value) symbol indices, sorted by label name.
    #[prost(uint32, repeated, tag = "1")]
    pub labels_refs: Vec<u32>,
    /// Oldest first.
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
    /// Type/help/unit, which 2.0 senders should always send.
    #[prost(message, optional, tag = "5")]
    pub metadata: Option<MetadataV2>,
    /// Counter start time in ms (0 = unset); real senders set it for counters.
    #[prost(int64, tag = "6")]
    pub created_timestamp: i64,
}

/// remote-write 2.0 `Metadata`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct MetadataV2 {
    /// `MetricType` enum value: 1 counter, 2 gauge, 3 histogram.
    #[prost(int32, tag = "1")]
    pub r#type: i32,
    /// Index of the help text in `symbols`.
    #[prost(uint32, tag = "3")]
    pub help_ref: u32,
    /// Index of the unit in `symbols` (0 = none).
    #[prost(uint32, tag = "4")]
    pub unit_ref: u32,
}
