//! Real upstreams for the pipeline tests: a VictoriaMetrics process (Debian's
//! `victoria-metrics`) on 127.0.0.1 with a temporary storage directory, a small OTLP/HTTP
//! receiver (hyper, optionally over TLS) that records what it gets, and remote-write / OTLP request bodies that
//! carry a unique id per request so delivered data can be matched to acknowledged requests.
#![allow(dead_code)]

use std::collections::{BTreeMap, BTreeSet};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use prost::Message;
use tokio::net::TcpListener;

pub const VM_BIN: &str = "/usr/bin/victoria-metrics";

/// A port that was free a moment ago (for an upstream that starts later).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

pub fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_millis() as i64
}

/// Polls `cond` every 20 ms until it holds or `limit` passes; false on timeout.
pub async fn eventually<F, Fut>(limit: Duration, mut cond: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    loop {
        if cond().await {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

// --- remote-write v1 bodies ----------------------------------------------------------------

#[derive(Clone, PartialEq, Message)]
pub struct WriteRequest {
    #[prost(message, repeated, tag = "1")]
    pub timeseries: Vec<TimeSeries>,
}

#[derive(Clone, PartialEq, Message)]
pub struct TimeSeries {
    #[prost(message, repeated, tag = "1")]
    pub labels: Vec<Label>,
    #[prost(message, repeated, tag = "2")]
    pub samples: Vec<Sample>,
}

#[derive(Clone, PartialEq, Message)]
pub struct Label {
    #[prost(string, tag = "1")]
    pub name: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

#[derive(Clone, PartialEq, Message)]
pub struct Sample {
    #[prost(double, tag = "1")]
    pub value: f64,
    #[prost(int64, tag = "2")]
    pub timestamp: i64,
}

/// One sample as VictoriaMetrics returns it: (series labels, timestamp ms, value).
pub type Point = (BTreeMap<String, String>, i64, f64);

/// A v1 request for metric `name` with one series per `req` id, `per_series` samples each;
/// returns the snappy body and the points it carries.
pub fn rw_request(
    name: &str,
    req: u64,
    series: usize,
    per_series: usize,
    t0: i64,
) -> (Vec<u8>, Vec<Point>) {
    let mut points = Vec::new();
    let mut wr = WriteRequest::default();
    for s in 0..series {
        let labels: BTreeMap<String, String> = [
            ("__name__".to_string(), name.to_string()),
            ("req".to_string(), req.to_string()),
            ("series".to_string(), s.to_string()),
        ]
        .into();
        let mut ts = TimeSeries {
            labels: labels
                .iter()
                .map(|(k, v)| Label {
                    name: k.clone(),
                    value: v.clone(),
                })
                .collect(),
            samples: Vec::new(),
        };
        for i in 0..per_series {
            let t = t0 + i as i64 * 1000;
            let v = req as f64 * 1000.0 + s as f64 + i as f64 / 8.0;
            ts.samples.push(Sample {
                value: v,
                timestamp: t,
            });
            points.push((labels.clone(), t, v));
        }
        wr.timeseries.push(ts);
    }
    let body = snap::raw::Encoder::new()
        .compress_vec(&wr.encode_to_vec())
        .unwrap();
    (body, points)
}

/// OTLP JSON traces with one span named `kill-span-<id>`.
pub fn otlp_traces(id: u64) -> String {
    let ns = now_ms() as u128 * 1_000_000;
    format!(
        r#"{{"resourceSpans":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"pipeline-test"}}}}]}},"scopeSpans":[{{"scope":{{"name":"t"}},"spans":[{{"traceId":"{:032x}","spanId":"{:016x}","name":"kill-span-{id}","kind":1,"startTimeUnixNano":"{ns}","endTimeUnixNano":"{}"}}]}}]}}]}}"#,
        id + 1,
        id + 1,
        ns + 1000
    )
}

/// OTLP JSON logs with one record whose body is `kill-log-<id>`.
pub fn otlp_logs(id: u64) -> String {
    let ns = now_ms() as u128 * 1_000_000;
    format!(
        r#"{{"resourceLogs":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"pipeline-test"}}}}]}},"scopeLogs":[{{"scope":{{"name":"t"}},"logRecords":[{{"timeUnixNano":"{ns}","severityNumber":9,"body":{{"stringValue":"kill-log-{id}"}}}}]}}]}}]}}"#
    )
}

/// Ids `n` found after every `marker` in `text` (e.g. `kill-span-` -> 17).
pub fn ids_after(text: &str, marker: &str) -> Vec<u64> {
    text.match_indices(marker)
        .filter_map(|(i, _)| {
            let rest = text.get(i + marker.len()..)?;
            let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
        .collect()
}

// --- VictoriaMetrics ------------------------------------------------------------------------

pub struct Victoria {
    child: Child,
    pub port: u16,
    _dir: tempfile::TempDir,
    http: reqwest::Client,
}

impl Victoria {
    /// Starts VictoriaMetrics on `port` and waits (up to 30 s) until it is healthy.
    pub async fn start(port: u16) -> Victoria {
        let dir = tempfile::tempdir().unwrap();
        let child = Command::new(VM_BIN)
            .arg(format!("-httpListenAddr=127.0.0.1:{port}"))
            .arg(format!("-storageDataPath={}", dir.path().display()))
            .arg("-retentionPeriod=1y")
            .arg("-search.disableCache")
            .arg("-search.latencyOffset=0s")
            .arg("-loggerLevel=ERROR")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("victoria-metrics runs (apt-get install victoria-metrics)");
        let vm = Victoria {
            child,
            port,
            _dir: dir,
            http: reqwest::Client::new(),
        };
        let url = format!("http://127.0.0.1:{port}/health");
        let http = vm.http.clone();
        let up = eventually(Duration::from_secs(30), || {
            let (http, url) = (http.clone(), url.clone());
            async move { matches!(http.get(&url).send().await, Ok(r) if r.status().is_success()) }
        })
        .await;
        assert!(up, "victoria-metrics did not become healthy on port {port}");
        vm
    }

    pub fn write_url(&self) -> String {
        format!("http://127.0.0.1:{}/api/v1/write", self.port)
    }

    /// The body of a GET to VictoriaMetrics.
    async fn get_text(&self, path: &str, query: &[(&str, &str)]) -> String {
        self.http
            .get(format!("http://127.0.0.1:{}{path}", self.port))
            .query(query)
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// Remote-write requests VictoriaMetrics has received, from its own `/metrics`.
    pub async fn write_requests(&self) -> f64 {
        let text = self.get_text("/metrics", &[]).await;
        text.lines()
            .find(|l| l.starts_with("vm_http_requests_total{path=\"/api/v1/write\""))
            .and_then(|l| l.rsplit(' ').next()?.parse().ok())
            .unwrap_or_else(|| panic!("no write request counter in VictoriaMetrics' /metrics"))
    }

    /// Every point of the series matching `selector`, after making pending data searchable.
    pub async fn export(&self, selector: &str) -> Vec<Point> {
        let base = format!("http://127.0.0.1:{}", self.port);
        let r = self
            .http
            .get(format!("{base}/internal/force_flush"))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success(), "force_flush: {}", r.status());
        let text = self
            .get_text("/api/v1/export", &[("match[]", selector), ("start", "0")])
            .await;
        let mut points = Vec::new();
        for line in text.lines().filter(|l| !l.trim().is_empty()) {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            let labels: BTreeMap<String, String> = v["metric"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                .collect();
            let values = v["values"].as_array().unwrap();
            let stamps = v["timestamps"].as_array().unwrap();
            for (val, ts) in values.iter().zip(stamps) {
                points.push((labels.clone(), ts.as_i64().unwrap(), val.as_f64().unwrap()));
            }
        }
        points.sort_by(|a, b| (&a.0, a.1).cmp(&(&b.0, b.1)));
        points
    }

    /// `export(selector)` once it equals `want` (VictoriaMetrics answers 204 before new series
    /// are searchable), or whatever it holds after 15 s.
    pub async fn export_eventually(&self, selector: &str, want: &[Point]) -> Vec<Point> {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let got = self.export(selector).await;
            if got == want || Instant::now() > deadline {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The `req` label values present for metric `name`.
    pub async fn req_ids(&self, name: &str) -> BTreeSet<u64> {
        self.export(&format!("{{__name__=\"{name}\"}}"))
            .await
            .iter()
            .filter_map(|(l, _, _)| l.get("req")?.parse().ok())
            .collect()
    }
}

impl Drop for Victoria {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// --- OTLP receiver --------------------------------------------------------------------------

#[derive(Debug, Clone)]
pub struct Got {
    pub path: String,
    pub body: Bytes,
    /// The request's `Authorization` header (the HTTPS upstream tests check credentials).
    pub authorization: Option<String>,
}

/// Accepts every POST with `200 {}` after `delay`, and keeps what it got.
pub struct OtlpReceiver {
    pub addr: SocketAddr,
    pub got: Arc<Mutex<Vec<Got>>>,
    /// Whether it speaks HTTPS (see [`OtlpReceiver::start_tls`]).
    tls: bool,
    task: tokio::task::JoinHandle<()>,
}

impl OtlpReceiver {
    pub async fn start(delay: Duration) -> OtlpReceiver {
        Self::start_with(delay, None).await
    }

    /// The same receiver over HTTPS with `tls` (e.g. a `tls::TestCa` server config).
    pub async fn start_tls(
        delay: Duration,
        tls: Arc<tokio_rustls::rustls::ServerConfig>,
    ) -> OtlpReceiver {
        Self::start_with(delay, Some(tokio_rustls::TlsAcceptor::from(tls))).await
    }

    async fn start_with(delay: Duration, tls: Option<tokio_rustls::TlsAcceptor>) -> OtlpReceiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let got = Arc::new(Mutex::new(Vec::new()));
        let sink = got.clone();
        let is_tls = tls.is_some();
        let task = tokio::spawn(async move {
            let mut conns = tokio::task::JoinSet::new();
            while let Ok((stream, _)) = listener.accept().await {
                let sink = sink.clone();
                let tls = tls.clone();
                conns.spawn(async move {
                    match tls {
                        // A failed handshake (a client that does not trust the CA) records nothing.
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(stream).await {
                                serve_recording(stream, sink, delay).await;
                            }
                        }
                        None => serve_recording(stream, sink, delay).await,
                    }
                });
            }
        });
        OtlpReceiver {
            addr,
            got,
            tls: is_tls,
            task,
        }
    }

    pub fn base_url(&self) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// Ids after `marker` in every body received on `path`.
    pub fn ids(&self, path: &str, marker: &str) -> BTreeSet<u64> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .filter(|g| g.path == path)
            .flat_map(|g| ids_after(&String::from_utf8_lossy(&g.body), marker))
            .collect()
    }
}

/// One connection of the receiver: every request answered `200 {}` and recorded.
async fn serve_recording<I>(io: I, sink: Arc<Mutex<Vec<Got>>>, delay: Duration)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
        let sink = sink.clone();
        async move {
            let path = req.uri().path().to_string();
            let authorization = req
                .headers()
                .get("authorization")
                .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned());
            let body = req
                .into_body()
                .collect()
                .await
                .map(|c| c.to_bytes())
                .unwrap_or_default();
            tokio::time::sleep(delay).await;
            sink.lock().unwrap().push(Got {
                path,
                body,
                authorization,
            });
            Ok::<_, Infallible>(
                Response::builder()
                    .status(200)
                    .header("content-type", "application/json")
                    .body(Full::new(Bytes::from_static(b"{}")))
                    .unwrap(),
            )
        }
    });
    let _ = hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(io), svc)
        .await;
}

impl Drop for OtlpReceiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// The newest non-empty segment file of a queue (after the edge stopped).
pub fn last_segment(data_dir: &Path, queue: &str) -> std::path::PathBuf {
    let dir = data_dir.join("spool").join(queue);
    let mut segs: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .filter(|p| std::fs::metadata(p).unwrap().len() > 0)
        .collect();
    segs.sort();
    segs.pop().expect("a non-empty segment")
}
