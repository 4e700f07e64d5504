//! Paced RUM traffic against the child edges, with each request's status and latency, and the
//! reads of their `/metrics`.

use std::time::{Duration, Instant};

use crate::common::child::ChildEdge;
use crate::common::series_value;

pub const KEY: &str = "global-limits-test-admin-key";
const ORIGIN: &str = "http://localhost:3000";
const SPANS: &str = r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"x","kind":1,"startTimeUnixNano":"1","endTimeUnixNano":"2"}]}]}]}"#;

pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .pool_max_idle_per_host(64)
        .build()
        .unwrap()
}

/// A web client token (a remote_write one when `name` starts with `rw-`) limited to `rps`
/// requests/s with `burst`; items and the per-client budget (every request here comes from
/// 127.0.0.1) far above what the test sends.
pub async fn create_token(
    http: &reqwest::Client,
    edge: &ChildEdge,
    name: &str,
    rps: u32,
    burst: u32,
) -> (String, String) {
    let limits = serde_json::json!({"requests_per_second": rps, "requests_burst": burst,
        "items_per_second": 100000000, "items_burst": 100000000,
        "per_client_requests_per_second": 100000, "per_client_requests_burst": 100000});
    let body = if name.starts_with("rw-") {
        serde_json::json!({"name": name, "type": "remote_write", "environment": "test",
            "limits": limits})
    } else {
        serde_json::json!({"name": name, "type": "client", "client_type": "web",
            "origins": [ORIGIN], "environment": "test", "limits": limits})
    };
    edge.create_token(http, body).await
}

/// What one paced run got.
pub struct Run {
    pub accepted: u32,
    /// Every request's latency, sorted.
    pub latencies: Vec<Duration>,
}

impl Run {
    pub fn merged(runs: &[&Run]) -> Run {
        let mut latencies: Vec<_> = runs.iter().flat_map(|r| r.latencies.clone()).collect();
        latencies.sort();
        Run {
            accepted: runs.iter().map(|r| r.accepted).sum(),
            latencies,
        }
    }

    pub fn quantile(&self, q: f64) -> Duration {
        let i = ((self.latencies.len() as f64 - 1.0) * q).round() as usize;
        self.latencies.get(i).copied().unwrap_or_default()
    }

    pub fn max(&self) -> Duration {
        self.latencies.last().copied().unwrap_or_default()
    }

    pub fn latency(&self) -> String {
        format!(
            "{} requests, p50 {:?}, p99 {:?}, max {:?}",
            self.latencies.len(),
            self.quantile(0.5),
            self.quantile(0.99),
            self.max()
        )
    }
}

/// No request of `other` waited much longer than the usual ones (a breaker that did not
/// open would hold requests for the 2 s of a pause, or for every 50 ms timeout).
pub fn assert_no_cliff(what: &str, usual: &Run, other: &Run) {
    let slack = Duration::from_millis(100);
    assert!(
        other.quantile(0.99) <= usual.quantile(0.99) + slack,
        "{what}: p99 {:?} against usually {:?}",
        other.quantile(0.99),
        usual.quantile(0.99)
    );
    assert!(
        other.max() <= usual.max() + slack + Duration::from_millis(100),
        "{what}: max {:?} against usually {:?}",
        other.max(),
        usual.max()
    );
}

pub struct Edges {
    http: reqwest::Client,
    pub edges: Vec<ChildEdge>,
}

impl Edges {
    pub fn new(http: reqwest::Client, edges: Vec<ChildEdge>) -> Edges {
        Edges { http, edges }
    }

    /// `rate` requests/s in total for `duration`, round-robin over the `targets` edges, each
    /// request on its own task (a slow answer does not slow the pace). Bounded: rate ×
    /// duration requests, each with a 10 s client timeout.
    pub async fn run(&self, secret: &str, targets: &[usize], rate: u32, duration: Duration) -> Run {
        self.run_with(targets, rate, duration, |edge| {
            self.http
                .post(format!("http://{}/v1/traces", edge.ingest))
                .bearer_auth(secret)
                .header("origin", ORIGIN)
                .header("content-type", "application/json")
                .body(SPANS)
        })
        .await
    }

    /// Like [`Edges::run`], with Prometheus 2.42's first captured remote_write body.
    pub async fn run_remote_write(
        &self,
        secret: &str,
        targets: &[usize],
        rate: u32,
        duration: Duration,
    ) -> Run {
        let body =
            std::fs::read(crate::common::fixtures().join("prometheus-2.42/body_000.bin")).unwrap();
        self.run_with(targets, rate, duration, |edge| {
            self.http
                .post(format!("http://{}/api/v1/write", edge.ingest))
                .bearer_auth(secret)
                .header("content-type", "application/x-protobuf")
                .header("content-encoding", "snappy")
                .header("x-prometheus-remote-write-version", "0.1.0")
                .body(body.clone())
        })
        .await
    }

    async fn run_with(
        &self,
        targets: &[usize],
        rate: u32,
        duration: Duration,
        request: impl Fn(&ChildEdge) -> reqwest::RequestBuilder,
    ) -> Run {
        let total = (f64::from(rate) * duration.as_secs_f64()) as usize;
        let mut tick = tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(rate)));
        let mut tasks = Vec::with_capacity(total);
        for i in 0..total {
            tick.tick().await;
            let req = request(&self.edges[targets[i % targets.len()]]);
            tasks.push(tokio::spawn(async move {
                let start = Instant::now();
                let status = req.send().await.map(|r| r.status().as_u16());
                (status, start.elapsed())
            }));
        }
        let mut run = Run {
            accepted: 0,
            latencies: Vec::with_capacity(total),
        };
        for t in tasks {
            let (status, took) = t.await.unwrap();
            match status {
                Ok(200 | 204) => run.accepted += 1,
                Ok(429) => {}
                other => panic!("unexpected answer {other:?}"),
            }
            run.latencies.push(took);
        }
        run.latencies.sort();
        run
    }

    async fn metrics(&self, edge: &ChildEdge) -> String {
        edge.metrics(&self.http).await.expect("/metrics answers")
    }

    /// One unlabelled series of every edge.
    pub async fn gauges(&self, name: &str) -> Vec<f64> {
        let mut out = Vec::new();
        for e in &self.edges {
            out.push(series_value(&self.metrics(e).await, name).unwrap_or(f64::NAN));
        }
        out
    }

    /// Waits until `name` is `value` on every edge; panics past `within`.
    pub async fn wait_gauge(&self, name: &str, value: f64, within: Duration) {
        let start = Instant::now();
        loop {
            let got = self.gauges(name).await;
            if got.iter().all(|v| *v == value) {
                return;
            }
            assert!(
                start.elapsed() < within,
                "{name} is {got:?} after {within:?}, want {value}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The sum over the edges of every `ingest_requests_total` series with code 200 or 204.
    pub async fn accepted_requests(&self) -> f64 {
        let mut sum = 0.0;
        for e in &self.edges {
            for line in self.metrics(e).await.lines() {
                let ok = line.contains("code=\"200\"") || line.contains("code=\"204\"");
                if line.starts_with("ingest_requests_total{") && ok {
                    sum += line
                        .rsplit(' ')
                        .next()
                        .and_then(|v| v.parse::<f64>().ok())
                        .unwrap_or(0.0);
                }
            }
        }
        sum
    }
}
