//! Helpers of tests/prometheus_rules.rs: the Prometheus child, its query API, and the
//! extraction of metric names and dashboard queries; a webhook receiver for the edge.
#![allow(dead_code)]

use std::collections::BTreeSet;
use std::process::Child;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The Prometheus child process, killed (and reaped) when the test ends, pass or fail.
pub struct Prometheus(pub Child);

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A webhook receiver: refuses the first delivery (500) and accepts the rest, so both
/// `result` values of `ingest_webhook_deliveries_total` appear.
pub async fn webhook_receiver() -> std::net::SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        for n in 0..1000u32 {
            let Ok((mut s, _)) = listener.accept().await else {
                return;
            };
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                // Headers, then Content-Length bytes of body (bounded by the 10 s timeout).
                let read = async {
                    loop {
                        let n = s.read(&mut chunk).await.unwrap_or(0);
                        if n == 0 {
                            return;
                        }
                        buf.extend_from_slice(&chunk[..n]);
                        let text = String::from_utf8_lossy(&buf).to_ascii_lowercase();
                        if let Some(end) = text.find("\r\n\r\n") {
                            let len = text[..end]
                                .lines()
                                .find_map(|l| l.strip_prefix("content-length:"))
                                .and_then(|v| v.trim().parse::<usize>().ok())
                                .unwrap_or(0);
                            if buf.len() >= end + 4 + len {
                                return;
                            }
                        }
                    }
                };
                let _ = tokio::time::timeout(Duration::from_secs(10), read).await;
                let status = if n == 0 {
                    "500 Internal Server Error"
                } else {
                    "200 OK"
                };
                let resp =
                    format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
                let _ = s.write_all(resp.as_bytes()).await;
            });
        }
    });
    addr
}

/// An instant query: the result vector, or Prometheus' error (a parse error included).
pub async fn query(http: &reqwest::Client, port: u16, q: &str) -> Result<Vec<Value>, String> {
    let url = url::Url::parse_with_params(
        &format!("http://127.0.0.1:{port}/api/v1/query"),
        &[("query", q)],
    )
    .unwrap();
    let v: Value = http
        .get(url)
        .send()
        .await
        .map_err(|e| e.to_string())?
        .json()
        .await
        .map_err(|e| e.to_string())?;
    if v["status"] != "success" {
        return Err(format!("{}: {}", v["errorType"], v["error"]));
    }
    Ok(v["data"]["result"].as_array().cloned().unwrap_or_default())
}

/// The metric names an expression reads: identifiers starting `ingest_` outside strings.
pub fn metric_names(expr: &str) -> BTreeSet<String> {
    let b = expr.as_bytes();
    let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_' || c == b':';
    let mut names = BTreeSet::new();
    let mut i = 0;
    while i < b.len() {
        if matches!(b[i], b'"' | b'\'' | b'`') {
            let q = b[i];
            i += 1;
            while i < b.len() && b[i] != q {
                i += if b[i] == b'\\' { 2 } else { 1 };
            }
            i += 1;
        } else if word(b[i]) {
            let start = i;
            while i < b.len() && word(b[i]) {
                i += 1;
            }
            let w = &expr[start..i];
            if w.starts_with("ingest_") {
                names.insert(w.to_string());
            }
        } else {
            i += 1;
        }
    }
    names
}

/// Every dashboard query: panel targets (rows' nested panels too) and query variables, the
/// Grafana-only `label_values(SELECTOR, LABEL)` as the PromQL that answers it.
pub fn dashboard_queries(v: &Value, out: &mut Vec<(String, String)>) {
    match v {
        Value::Object(m) => {
            if let (Some(title), Some(targets)) = (m.get("title"), m.get("targets")) {
                for t in targets.as_array().into_iter().flatten() {
                    if let Some(e) = t["expr"].as_str() {
                        out.push((format!("panel {title} {}", t["refId"]), e.to_string()));
                    }
                }
            }
            if m.get("type").and_then(Value::as_str) == Some("query") {
                let q = m["query"]["query"].as_str().or(m["query"].as_str());
                let q = q.expect("query variable without a query");
                let args = q
                    .strip_prefix("label_values(")
                    .and_then(|r| r.strip_suffix(')'))
                    .and_then(|r| r.rsplit_once(','))
                    .unwrap_or_else(|| panic!("unsupported variable query {q}"));
                let promql = format!("count by ({}) ({})", args.1.trim(), args.0.trim());
                out.push((format!("variable {}", m["name"]), promql));
            }
            m.values().for_each(|v| dashboard_queries(v, out));
        }
        Value::Array(a) => a.iter().for_each(|v| dashboard_queries(v, out)),
        _ => {}
    }
}
