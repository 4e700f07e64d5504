//! The shared test harness: a real edge in-process on `127.0.0.1:0`, with its own data
//! directory, and helpers to create tokens and read `/metrics`.
#![allow(dead_code)]

pub mod child;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use ingest_edge::{Config, Edge};
use serde_json::{json, Value};

pub const ADMIN_KEY: &str = "test-admin-key-0123456789";

pub struct TestEdge {
    pub edge: Option<Edge>,
    pub ingest: SocketAddr,
    pub ops: SocketAddr,
    pub admin_key: String,
    pub data_dir: PathBuf,
    /// Kept so the directory lives as long as the edge (unless the test owns the dir).
    _tmp: Option<tempfile::TempDir>,
    pub http: reqwest::Client,
}

/// A config for tests: ephemeral ports, the given data dir, a fixed admin key.
pub fn test_config(data_dir: &Path) -> Config {
    let mut c = Config::default();
    c.server.ingest_addr = "127.0.0.1:0".parse().unwrap();
    c.server.ops_addr = "127.0.0.1:0".parse().unwrap();
    c.data_dir.0 = data_dir.to_owned();
    c.admin.key = Some(ADMIN_KEY.to_string());
    c
}

impl TestEdge {
    pub async fn start() -> TestEdge {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(f: impl FnOnce(&mut Config)) -> TestEdge {
        let tmp = tempfile::tempdir().unwrap();
        let mut config = test_config(tmp.path());
        f(&mut config);
        Self::from_config(config, Some(tmp)).await
    }

    /// Starts on an existing data directory (restart tests).
    pub async fn start_in(data_dir: &Path, f: impl FnOnce(&mut Config)) -> TestEdge {
        let mut config = test_config(data_dir);
        f(&mut config);
        Self::from_config(config, None).await
    }

    async fn from_config(config: Config, tmp: Option<tempfile::TempDir>) -> TestEdge {
        let data_dir = config.data_dir.0.clone();
        let edge = Edge::start(config).await.expect("edge starts");
        TestEdge {
            ingest: edge.ingest_addr(),
            ops: edge.ops_addr(),
            admin_key: edge.admin_key().to_string(),
            edge: Some(edge),
            data_dir,
            _tmp: tmp,
            http: reqwest::Client::new(),
        }
    }

    pub fn ingest_url(&self, path: &str) -> String {
        format!("http://{}{}", self.ingest, path)
    }

    pub fn ops_url(&self, path: &str) -> String {
        format!("http://{}{}", self.ops, path)
    }

    /// Admin call; returns status and JSON body.
    pub async fn admin(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> (u16, Value) {
        let mut req = self
            .http
            .request(method, self.ops_url(path))
            .bearer_auth(&self.admin_key);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.unwrap();
        let status = resp.status().as_u16();
        let value = resp.json().await.unwrap_or(Value::Null);
        (status, value)
    }

    /// Creates a token; returns (id, secret). Panics unless `201`.
    pub async fn create_token(&self, body: Value) -> (String, String) {
        let (status, v) = self
            .admin(reqwest::Method::POST, "/api/v1/tokens", Some(body))
            .await;
        assert_eq!(status, 201, "create token: {v}");
        (
            v["id"].as_str().unwrap().to_string(),
            v["token"].as_str().unwrap().to_string(),
        )
    }

    /// A client token for `origins` with generous limits.
    pub async fn client_token(&self, origins: &[&str]) -> (String, String) {
        self.create_token(json!({"name": "test client", "type": "client", "client_type": "web", "origins": origins, "environment": "test"}))
            .await
    }

    pub async fn remote_write_token(&self) -> (String, String) {
        self.create_token(json!({"name": "test rw", "type": "remote_write", "environment": "test"}))
            .await
    }

    pub async fn metrics(&self) -> String {
        self.http
            .get(self.ops_url("/metrics"))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// The value of one exact series, e.g. `ingest_samples_total{token_id="tk_x"}`.
    pub async fn metric_value(&self, series: &str) -> Option<f64> {
        series_value(&self.metrics().await, series)
    }

    pub async fn stop(mut self) {
        if let Some(e) = self.edge.take() {
            e.shutdown().await;
        }
    }
}

/// Finds `series` (name and labels exactly as rendered) in a text exposition.
pub fn series_value(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(series)
                .and_then(|rest| rest.strip_prefix(' '))
        })
        .and_then(|v| v.trim().parse().ok())
}

/// The fixtures kept in the repository (`tests/fixtures`: captured Prometheus and OTel JS requests).
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures")
}
