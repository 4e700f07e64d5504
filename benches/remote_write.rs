//! Remote-write decode + validate throughput: the Prometheus 2.42 fixtures, and a synthetic,
//! deterministic 2000-sample request (Prometheus's default batch size) in 1.0 and 2.0 form with
//! realistic Kubernetes label sets (10 labels per series). Throughput is in samples, so
//! criterion prints samples/s (one core: the decoder is single-threaded).

use std::collections::HashMap;
use std::hint::black_box;

use criterion::{criterion_group, Criterion, Throughput};
use ingest_edge::remote_write::{proto_v1, proto_v2, Decoder, Limits, Version};
use prost::Message;

const FIXTURES: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/prometheus-2.42"
);
/// Timestamps of the synthetic requests; also the decoder's "now".
const NOW_MS: i64 = 1_700_000_000_000;
const SERIES: usize = 2000;

/// The label sets of the synthetic request, sorted by name as senders must.
fn label_sets() -> Vec<Vec<(String, String)>> {
    const METRICS: [&str; 5] = [
        "http_request_duration_seconds_bucket",
        "http_requests_total",
        "grpc_server_handled_total",
        "container_cpu_usage_seconds_total",
        "process_resident_memory_bytes",
    ];
    const METHODS: [&str; 4] = ["GET", "POST", "PUT", "DELETE"];
    const CODES: [&str; 5] = ["200", "201", "404", "500", "503"];
    const LE: [&str; 8] = ["0.005", "0.01", "0.05", "0.1", "0.5", "1", "5", "+Inf"];
    (0..SERIES)
        .map(|i| {
            let pod = format!("checkout-7d9f8b6c5-{:05x}", (i * 7919) % 100_000);
            let mut set = vec![
                ("__name__".to_owned(), METRICS[i % 5].to_owned()),
                ("container".to_owned(), format!("app-{}", i % 3)),
                (
                    "instance".to_owned(),
                    format!("10.42.{}.{}:8080", i / 250, i % 250),
                ),
                ("job".to_owned(), "kubernetes-pods".to_owned()),
                ("le".to_owned(), LE[i % 8].to_owned()),
                ("method".to_owned(), METHODS[i % 4].to_owned()),
                ("namespace".to_owned(), format!("team-{}", i % 7)),
                ("pod".to_owned(), pod),
                ("service".to_owned(), "checkout".to_owned()),
                ("status_code".to_owned(), CODES[i % 5].to_owned()),
            ];
            set.sort();
            set
        })
        .collect()
}

fn synthetic_v1() -> Vec<u8> {
    let timeseries = label_sets()
        .into_iter()
        .enumerate()
        .map(|(i, set)| proto_v1::TimeSeries {
            labels: set
                .into_iter()
                .map(|(n, v)| proto_v1::Label {
                    name: n.into(),
                    value: v.into(),
                })
                .collect(),
            samples: vec![proto_v1::Sample {
                value: i as f64 * 1.5,
                timestamp: NOW_MS - (i as i64 % 15_000),
            }],
            ..Default::default()
        })
        .collect();
    let req = proto_v1::WriteRequest {
        timeseries,
        metadata: Vec::new(),
    };
    compress(&req.encode_to_vec())
}

fn synthetic_v2() -> Vec<u8> {
    let mut symbols: Vec<String> = vec![String::new()];
    let mut index: HashMap<String, u32> = HashMap::new();
    let mut intern = |s: &str| -> u32 {
        *index.entry(s.to_owned()).or_insert_with(|| {
            symbols.push(s.to_owned());
            (symbols.len() - 1) as u32
        })
    };
    let help = intern("Synthetic benchmark metric.");
    let timeseries: Vec<proto_v2::TimeSeries> = label_sets()
        .into_iter()
        .enumerate()
        .map(|(i, set)| proto_v2::TimeSeries {
            labels_refs: set
                .iter()
                .flat_map(|(n, v)| [intern(n), intern(v)])
                .collect(),
            samples: vec![proto_v2::Sample {
                value: i as f64 * 1.5,
                timestamp: NOW_MS - (i as i64 % 15_000),
                start_timestamp: NOW_MS - 3_600_000,
            }],
            metadata: Some(proto_v2::Metadata {
                r#type: 1,
                help_ref: help,
                unit_ref: 0,
            }),
            ..Default::default()
        })
        .collect();
    let req = proto_v2::Request {
        symbols: symbols.into_iter().map(Into::into).collect(),
        timeseries,
    };
    compress(&req.encode_to_vec())
}

fn compress(raw: &[u8]) -> Vec<u8> {
    snap::raw::Encoder::new()
        .compress_vec(raw)
        .expect("benchmark input compresses")
}

fn bench(c: &mut Criterion) {
    let limits = Limits::default();
    let mut group = c.benchmark_group("remote_write_decode");
    let mut cases: Vec<(String, Version, Vec<u8>)> = vec![
        ("synthetic_2000_v1".into(), Version::V1, synthetic_v1()),
        ("synthetic_2000_v2".into(), Version::V2, synthetic_v2()),
    ];
    for i in 0..6 {
        let path = format!("{FIXTURES}/body_{i:03}.bin");
        let body = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        cases.push((format!("prometheus_2_42_body_{i:03}"), Version::V1, body));
    }
    // The fixtures carry the wall-clock timestamps of their recording: judge them by today.
    let wall_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(NOW_MS, |d| d.as_millis() as i64);
    for (name, version, body) in &cases {
        let now = if name.starts_with("synthetic") {
            NOW_MS
        } else {
            wall_ms
        };
        let mut decoder = Decoder::new();
        let written = decoder
            .decode(*version, body, &limits, now)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        // The metadata-only fixture carries no samples: count its entries instead.
        let elements = if written.samples > 0 {
            written.samples
        } else {
            written.metadata
        };
        group.throughput(Throughput::Elements(elements));
        group.bench_function(name.as_str(), |b| {
            b.iter(|| decoder.decode(*version, black_box(body), &limits, now))
        });
    }
    group.finish();
}

/// Without criterion: `RW_DECODE_ITERS=N` decodes each synthetic request N times and exits, so
/// that `valgrind --tool=callgrind --toggle-collect='*Decoder::decode*'` counts instructions per
/// sample free of the noise of a shared machine (criterion's warm-up and analysis would dominate
/// the count). Instructions per sample = Ir / (2 * N * 2000) over both versions, or run one with
/// `RW_DECODE_ONLY=v1` / `v2`; `RW_DECODE_ONLY=fixtures` decodes the five Prometheus 2.42
/// bodies that carry samples instead (2,353 samples per round, judged by today's clock).
fn count_run(iters: u64) {
    let limits = Limits::default();
    let only = std::env::var("RW_DECODE_ONLY").unwrap_or_default();
    let mut cases = vec![
        ("v1".to_owned(), Version::V1, synthetic_v1(), NOW_MS),
        ("v2".to_owned(), Version::V2, synthetic_v2(), NOW_MS),
    ];
    if only == "fixtures" {
        let wall_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(NOW_MS, |d| d.as_millis() as i64);
        cases = [0, 1, 2, 3, 5]
            .iter()
            .map(|i| {
                let path = format!("{FIXTURES}/body_{i:03}.bin");
                let body = std::fs::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
                (format!("fixture {i}"), Version::V1, body, wall_ms)
            })
            .collect();
    }
    let mut decoder = Decoder::new();
    for (name, version, body, now) in &cases {
        if !only.is_empty() && only != "fixtures" && only != *name {
            continue;
        }
        let mut samples = 0;
        for _ in 0..iters {
            let written = decoder
                .decode(*version, black_box(body), &limits, *now)
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            samples += written.samples;
        }
        println!("{name}: {samples} samples decoded");
    }
}

criterion_group!(benches, bench);

fn main() {
    if let Some(iters) = std::env::var("RW_DECODE_ITERS")
        .ok()
        .and_then(|n| n.parse().ok())
    {
        count_run(iters);
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
