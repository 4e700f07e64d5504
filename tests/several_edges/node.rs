//! One edge as a child process of the binary (`ingest-edge serve`), on the shared PostgreSQL:
//! the "three edge processes on loopback". Each has its own data directory under the
//! test's temporary root, so a restart finds its snapshot.

use std::path::{Path, PathBuf};

use reqwest::Method;
use serde_json::Value;

use super::common::child::ChildEdge;
use super::common::{series_value, ADMIN_KEY};
use super::Reach;

pub struct Node {
    pub name: &'static str,
    pub proc: ChildEdge,
    /// `<root>/<name>/data`: the snapshot lives there across restarts.
    pub data: PathBuf,
    pub http: reqwest::Client,
}

impl Node {
    /// Starts `name` on `store_url`, its config and data under `root/name`.
    pub fn start(root: &Path, name: &'static str, store_url: &str) -> Node {
        let home = root.join(name);
        let data = home.join("data");
        std::fs::create_dir_all(&data).unwrap();
        let config = home.join("edge.toml");
        std::fs::write(&config, format!("[server]\nname = \"{name}\"\n")).unwrap();
        let proc = ChildEdge::serve_with(
            &data,
            ADMIN_KEY,
            &[("INGEST_EDGE_STORE_URL", store_url)],
            &["--config", config.to_str().unwrap()],
        );
        Node {
            name,
            proc,
            data,
            http: reqwest::Client::new(),
        }
    }

    /// Kills the process (no goodbye to the database) and starts it again on the same
    /// directory.
    pub fn restart(self, root: &Path, store_url: &str) -> Node {
        let name = self.name;
        drop(self);
        Node::start(root, name, store_url)
    }

    pub async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
        super::admin(self, method, path, body).await
    }

    pub async fn metrics(&self) -> String {
        let resp = self.http.get(self.ops_url("/metrics")).send().await;
        resp.unwrap().text().await.unwrap()
    }

    pub async fn metric_value(&self, series: &str) -> Option<f64> {
        series_value(&self.metrics().await, series)
    }
}

impl Reach for Node {
    fn http(&self) -> &reqwest::Client {
        &self.http
    }

    fn ingest_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.proc.ingest)
    }

    fn ops_url(&self, path: &str) -> String {
        format!("http://{}{path}", self.proc.ops)
    }
}
