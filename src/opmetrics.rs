//! Edge-wide operational metrics (not per token), through the `metrics` facade and a
//! `metrics-exporter-prometheus` recorder owned by this edge instance.
//!
//! The recorder is not installed globally: several edges run in one test process, and each
//! must render only its own series. Handles are registered once here and kept, so the request
//! path records without a registry lookup.
//!
//! Series (all declared here):
//! - `ingest_request_duration_seconds{endpoint}` histogram: ingest request handling time.
//! - `ingest_connections_active{listener}` gauge: open connections per listener.
//! - `ingest_tokens_cached` gauge: secrets in the request path's token cache.
//! - `ingest_connections_total{listener, protocol, tls}` counter: connections served, by
//!   protocol (`http1`, `h2`) and TLS (`true`, `false`); counted once the protocol is known
//!   (after the TLS handshake or the first bytes).

use std::time::Duration;

use metrics::{Counter, Gauge, Histogram, Key, Label, Level, Metadata, Recorder};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle, PrometheusRecorder};

use crate::server::Protocol;
use crate::usage::Endpoint;

/// How often the recorder's buffered histogram samples are folded into their buckets. Each
/// recorded duration is kept as a raw sample until then (~16 bytes), so without upkeep an
/// edge that nobody scrapes grows without bound (6 -> 95 MiB over 5.6 M requests). One
/// second bounds the buffer to a second of traffic (~3 MiB at 200k requests/s) for the cost
/// of folding three histograms.
pub const UPKEEP_INTERVAL: Duration = Duration::from_secs(1);

const META: Metadata<'static> = Metadata::new("ingest_edge", Level::INFO, Some(module_path!()));

pub struct OpMetrics {
    recorder: PrometheusRecorder,
    handle: PrometheusHandle,
    /// By `Endpoint as usize`.
    durations: [Histogram; 3],
    /// Ingest, ops.
    connections: [Gauge; 2],
    tokens_cached: Gauge,
    /// By listener, then `[http1 plain, http1 TLS, h2 plain, h2 TLS]`.
    connections_total: [[Counter; 4]; 2],
}

fn key(name: &'static str, label: Option<(&'static str, &'static str)>) -> Key {
    match label {
        Some((k, v)) => Key::from_parts(name, vec![Label::new(k, v)]),
        None => Key::from_name(name),
    }
}

impl OpMetrics {
    pub fn new() -> OpMetrics {
        let buckets = [
            0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
        ];
        let builder = PrometheusBuilder::new();
        let recorder = match builder.set_buckets(&buckets) {
            Ok(b) => b.build_recorder(),
            // Only an empty bucket list is refused; ours is a constant.
            Err(_) => PrometheusBuilder::new().build_recorder(),
        };
        recorder.describe_histogram(
            "ingest_request_duration_seconds".into(),
            Some(metrics::Unit::Seconds),
            "Time to handle one ingest request, by endpoint.".into(),
        );
        recorder.describe_gauge(
            "ingest_connections_active".into(),
            None,
            "Open connections per listener.".into(),
        );
        recorder.describe_gauge(
            "ingest_tokens_cached".into(),
            None,
            "Secrets in the token cache (active, in grace, revoked).".into(),
        );
        let durations = Endpoint::ALL.map(|e| {
            recorder.register_histogram(
                &key(
                    "ingest_request_duration_seconds",
                    Some(("endpoint", e.label())),
                ),
                &META,
            )
        });
        let connections = ["ingest", "ops"].map(|l| {
            recorder.register_gauge(
                &key("ingest_connections_active", Some(("listener", l))),
                &META,
            )
        });
        let tokens_cached = recorder.register_gauge(&key("ingest_tokens_cached", None), &META);
        recorder.describe_counter(
            "ingest_connections_total".into(),
            None,
            "Connections served, by listener, protocol and TLS.".into(),
        );
        let connections_total = ["ingest", "ops"].map(|l| {
            [
                ("http1", "false"),
                ("http1", "true"),
                ("h2", "false"),
                ("h2", "true"),
            ]
            .map(|(protocol, tls)| {
                let labels = vec![
                    Label::new("listener", l),
                    Label::new("protocol", protocol),
                    Label::new("tls", tls),
                ];
                recorder
                    .register_counter(&Key::from_parts("ingest_connections_total", labels), &META)
            })
        });
        let handle = recorder.handle();
        OpMetrics {
            recorder,
            handle,
            durations,
            connections,
            tokens_cached,
            connections_total,
        }
    }

    pub fn request_duration(&self, endpoint: Endpoint) -> &Histogram {
        &self.durations[endpoint as usize]
    }

    /// `listener`: 0 ingest, 1 ops.
    pub fn connections(&self, listener: usize) -> &Gauge {
        &self.connections[listener.min(1)]
    }

    /// Folds buffered histogram samples into their buckets. The recorder is built with
    /// `build_recorder`, which spawns no upkeep of its own: the edge calls this every
    /// [`UPKEEP_INTERVAL`], and `render` calls it too.
    pub fn run_upkeep(&self) {
        self.handle.run_upkeep();
    }

    /// A connection on `listener` (0 ingest, 1 ops) settled on `protocol`.
    pub fn connection_opened(&self, listener: usize, protocol: Protocol, tls: bool) {
        let by_listener = &self.connections_total[listener.min(1)];
        let i = match protocol {
            Protocol::Http1 => 0,
            Protocol::H2 => 2,
        } + usize::from(tls);
        if let Some(c) = by_listener.get(i) {
            c.increment(1);
        }
    }

    pub fn render(&self, tokens_cached: usize, out: &mut String) {
        self.tokens_cached.set(tokens_cached as f64);
        self.run_upkeep();
        out.push_str(&self.handle.render());
        // Keeps the recorder alive for as long as the handles that write into it.
        let _ = &self.recorder;
    }
}

impl Default for OpMetrics {
    fn default() -> Self {
        OpMetrics::new()
    }
}
