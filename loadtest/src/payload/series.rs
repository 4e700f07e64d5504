//! Deterministic synthetic Prometheus series, shaped like what a Kubernetes Prometheus scrapes:
//! per pod a few families (a request-duration histogram, a request counter, memory and CPU),
//! 8-12 labels each (`__name__, cluster, container, instance, job, namespace, pod, service`
//! plus `method, route, status_code, le` where they belong), labels sorted by name.
//!
//! The same seed always gives the same series, so two runs (and two servers in one run) see
//! byte-identical bodies.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::proto::{
    LabelV1, MetadataV2, RequestV2, Sample, TimeSeriesV1, TimeSeriesV2, WriteRequestV1,
};

/// Prometheus metric type, as numbered by the remote-write 2.0 `MetricType` enum.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Counter = 1,
    Gauge = 2,
    Histogram = 3,
}

/// One series with its single sample (a real sender batches one sample per series per scrape).
#[derive(Clone, Debug)]
pub struct Series {
    /// Sorted by name, unique, non-empty values.
    pub labels: Vec<(String, String)>,
    /// The sample value.
    pub value: f64,
    /// Metric type, sent as v2 metadata.
    pub kind: Kind,
    /// HELP text, sent as v2 metadata.
    pub help: &'static str,
    /// Unit (may be empty), sent as v2 metadata.
    pub unit: &'static str,
}

const NAMESPACES: [&str; 6] = [
    "checkout", "payments", "catalog", "search", "auth", "frontend",
];
const CONTAINERS: [&str; 4] = ["app", "api", "worker", "sidecar"];
const METHODS: [&str; 2] = ["GET", "POST"];
const STATUSES: [&str; 3] = ["200", "404", "500"];
const ROUTES: [&str; 4] = [
    "/api/v1/items",
    "/api/v1/cart",
    "/healthz",
    "/api/v1/users/:id",
];
const BUCKETS: [&str; 11] = [
    "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "+Inf",
];

/// Labels shared by every family of one pod.
struct Pod {
    /// `(name, value)` pairs for cluster, container, instance, job, namespace, pod, service.
    base: Vec<(String, String)>,
}

fn pod(rng: &mut StdRng, index: u64) -> Pod {
    let namespace = NAMESPACES[rng.gen_range(0..NAMESPACES.len())];
    let container = CONTAINERS[rng.gen_range(0..CONTAINERS.len())];
    let service = format!("{namespace}-{container}");
    let hash: u32 = rng.gen();
    let pod = format!("{service}-{:08x}-{:05x}", hash, index & 0xfffff);
    let instance = format!(
        "10.{}.{}.{}:{}",
        rng.gen_range(0..=255u8),
        rng.gen_range(0..=255u8),
        rng.gen_range(1..=254u8),
        [8080, 9090, 9100][rng.gen_range(0..3usize)]
    );
    let base = vec![
        (
            "cluster".to_string(),
            format!("prod-eu-{}", rng.gen_range(1..=3u8)),
        ),
        ("container".to_string(), container.to_string()),
        ("instance".to_string(), instance),
        ("job".to_string(), format!("kubernetes-pods/{namespace}")),
        ("namespace".to_string(), namespace.to_string()),
        ("pod".to_string(), pod),
        ("service".to_string(), service),
    ];
    Pod { base }
}

fn series(pod: &Pod, name: &str, extra: &[(&str, &str)], value: f64, kind: Kind) -> Series {
    let mut labels = Vec::with_capacity(pod.base.len() + extra.len() + 1);
    labels.push(("__name__".to_string(), name.to_string()));
    labels.extend(pod.base.iter().cloned());
    labels.extend(extra.iter().map(|(n, v)| (n.to_string(), v.to_string())));
    labels.sort_by(|a, b| a.0.cmp(&b.0));
    let (help, unit) = match name {
        "http_request_duration_seconds_bucket" => ("Request latency.", "seconds"),
        "http_requests_total" => ("Requests served.", ""),
        "container_memory_working_set_bytes" => ("Working set.", "bytes"),
        _ => ("CPU time consumed.", "seconds"),
    };
    Series {
        labels,
        value,
        kind,
        help,
        unit,
    }
}

/// Exactly `count` series from `seed`: pods are drawn one after another and all of a pod's
/// families are emitted until the count is reached.
pub fn generate(seed: u64, count: usize) -> Vec<Series> {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out = Vec::with_capacity(count);
    let mut pod_index = 0u64;
    while out.len() < count {
        let p = pod(&mut rng, pod_index);
        pod_index += 1;
        let gauge = rng.gen_range(5.0e7..2.0e9f64).round();
        out.push(series(
            &p,
            "container_memory_working_set_bytes",
            &[],
            gauge,
            Kind::Gauge,
        ));
        let cpu = rng.gen_range(10.0..50_000.0f64);
        out.push(series(
            &p,
            "process_cpu_seconds_total",
            &[],
            cpu,
            Kind::Counter,
        ));
        for method in METHODS {
            let route = ROUTES[rng.gen_range(0..ROUTES.len())];
            for status in STATUSES {
                let total = rng.gen_range(0..1_000_000u32) as f64;
                let extra = [
                    ("method", method),
                    ("route", route),
                    ("status_code", status),
                ];
                out.push(series(
                    &p,
                    "http_requests_total",
                    &extra,
                    total,
                    Kind::Counter,
                ));
                let mut cumulative = 0.0;
                for le in BUCKETS {
                    cumulative += (total / 20.0 * rng.gen::<f64>()).round();
                    let extra = [
                        ("le", le),
                        ("method", method),
                        ("route", route),
                        ("status_code", status),
                    ];
                    let name = "http_request_duration_seconds_bucket";
                    out.push(series(&p, name, &extra, cumulative, Kind::Histogram));
                }
            }
        }
    }
    out.truncate(count);
    out
}

/// Encodes a remote-write 1.0 `WriteRequest` (uncompressed protobuf).
pub fn encode_v1(series: &[Series], timestamp_ms: i64) -> Vec<u8> {
    let req = WriteRequestV1 {
        timeseries: series
            .iter()
            .map(|s| TimeSeriesV1 {
                labels: s
                    .labels
                    .iter()
                    .map(|(name, value)| LabelV1 {
                        name: name.clone(),
                        value: value.clone(),
                    })
                    .collect(),
                samples: vec![Sample {
                    value: s.value,
                    timestamp: timestamp_ms,
                }],
            })
            .collect(),
    };
    prost::Message::encode_to_vec(&req)
}

/// Interns strings for the 2.0 symbol table; index 0 is the mandatory empty string.
struct Symbols {
    /// The table in insertion order.
    table: Vec<String>,
    /// Reverse index, so each string is stored once.
    index: std::collections::HashMap<String, u32>,
}

impl Symbols {
    fn new() -> Self {
        let mut s = Symbols {
            table: Vec::new(),
            index: std::collections::HashMap::new(),
        };
        s.intern("");
        s
    }

    fn intern(&mut self, value: &str) -> u32 {
        if let Some(&i) = self.index.get(value) {
            return i;
        }
        let i = u32::try_from(self.table.len()).unwrap_or(u32::MAX);
        self.table.push(value.to_string());
        self.index.insert(value.to_string(), i);
        i
    }
}

/// Encodes a remote-write 2.0 `Request` (uncompressed protobuf) with metadata and, for
/// counters and histograms, a created timestamp.
pub fn encode_v2(series: &[Series], timestamp_ms: i64) -> Vec<u8> {
    let mut symbols = Symbols::new();
    let timeseries = series
        .iter()
        .map(|s| {
            let mut labels_refs = Vec::with_capacity(s.labels.len() * 2);
            for (name, value) in &s.labels {
                labels_refs.push(symbols.intern(name));
                labels_refs.push(symbols.intern(value));
            }
            let metadata = MetadataV2 {
                r#type: s.kind as i32,
                help_ref: symbols.intern(s.help),
                unit_ref: symbols.intern(s.unit),
            };
            let created_timestamp = match s.kind {
                Kind::Gauge => 0,
                Kind::Counter | Kind::Histogram => timestamp_ms - 86_400_000,
            };
            TimeSeriesV2 {
                labels_refs,
                samples: vec![Sample {
                    value: s.value,
                    timestamp: timestamp_ms,
                }],
                metadata: Some(metadata),
                created_timestamp,
            }
        })
        .collect();
    let req = RequestV2 {
        symbols: symbols.table,
        timeseries,
    };
    prost::Message::encode_to_vec(&req)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_count_sorted_unique_labels_in_range() {
        let series = generate(7, 2000);
        assert_eq!(series.len(), 2000);
        for s in &series {
            assert!(
                (8..=12).contains(&s.labels.len()),
                "{} labels",
                s.labels.len()
            );
            assert_eq!(s.labels[0].0, "__name__");
            assert!(
                s.labels.windows(2).all(|w| w[0].0 < w[1].0),
                "sorted+unique: {:?}",
                s.labels
            );
            assert!(s.labels.iter().all(|(n, v)| !n.is_empty() && !v.is_empty()));
        }
        let max = series.iter().map(|s| s.labels.len()).max();
        let min = series.iter().map(|s| s.labels.len()).min();
        assert_eq!((min, max), (Some(8), Some(12)));
    }

    #[test]
    fn deterministic_and_seed_dependent() {
        let a = encode_v1(&generate(1, 500), 1_700_000_000_000);
        let b = encode_v1(&generate(1, 500), 1_700_000_000_000);
        let c = encode_v1(&generate(2, 500), 1_700_000_000_000);
        assert_eq!(a, b);
        assert_ne!(a, c);
    }

    #[test]
    fn v1_and_v2_round_trip() {
        let series = generate(3, 2000);
        let v1 = encode_v1(&series, 42);
        let back: WriteRequestV1 = prost::Message::decode(v1.as_slice()).unwrap();
        assert_eq!(back.timeseries.len(), 2000);
        assert_eq!(back.timeseries[10].labels[0].value, series[10].labels[0].1);

        let v2 = encode_v2(&series, 42);
        let back: RequestV2 = prost::Message::decode(v2.as_slice()).unwrap();
        assert_eq!(back.symbols[0], "");
        assert_eq!(back.timeseries.len(), 2000);
        let ts = &back.timeseries[10];
        let name = &back.symbols[ts.labels_refs[1] as usize];
        assert_eq!(name, &series[10].labels[0].1);
        assert!(ts
            .labels_refs
            .iter()
            .all(|&r| (r as usize) < back.symbols.len()));
        assert!(v2.len() < v1.len(), "interning must shrink the message");
    }
}
