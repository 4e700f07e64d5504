//! The real binary as a child process (`ingest-edge serve` on port 0, configured by
//! environment), for tests that measure it from outside: memory from `/proc/<pid>/status`,
//! or several edges as separate processes (`tests/several_edges.rs`). An in-process edge
//! cannot be measured that way (the test harness shares its heap and runtime).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A `serve` child, killed when dropped so a failed assertion leaves no process behind.
pub struct ChildEdge {
    pub child: Child,
    /// `host:port` of the ingest listener.
    pub ingest: String,
    /// `host:port` of the ops listener.
    pub ops: String,
    /// Every line the child wrote (stdout and stderr), for tests of what it logs.
    pub log: Arc<Mutex<Vec<String>>>,
    /// Its admin API key, for [`ChildEdge::create_token`].
    pub admin_key: String,
}

impl Drop for ChildEdge {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl ChildEdge {
    /// Starts `ingest-edge serve` on `data_dir` with `admin_key`, and waits until it logs
    /// its addresses.
    pub fn serve(data_dir: &Path, admin_key: &str) -> ChildEdge {
        Self::serve_with(data_dir, admin_key, &[], &[])
    }

    /// As [`ChildEdge::serve`], with more environment (`INGEST_EDGE_STORE_URL`; it may also
    /// override the defaults above, `INGEST_EDGE_LOG=debug`) and arguments after `serve`
    /// (`--config FILE`).
    pub fn serve_with(
        data_dir: &Path,
        admin_key: &str,
        env: &[(&str, &str)],
        args: &[&str],
    ) -> ChildEdge {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ingest-edge"))
            .arg("serve")
            .args(args)
            .env("INGEST_EDGE_INGEST_ADDR", "127.0.0.1:0")
            .env("INGEST_EDGE_OPS_ADDR", "127.0.0.1:0")
            .env("INGEST_EDGE_DATA_DIR", data_dir)
            .env("INGEST_EDGE_ADMIN_KEY", admin_key)
            .env("INGEST_EDGE_LOG", "info")
            .envs(env.iter().copied())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let log = Arc::new(Mutex::new(Vec::new()));
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let tx = tx.clone();
            let log = log.clone();
            // Drains the pipe for the child's whole life, so logging never blocks it.
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if let Some(rest) = line.split("listening ").nth(1) {
                        let _ = tx.send(rest.to_string());
                    }
                    log.lock().unwrap().push(line);
                }
            });
        }
        let mut edge = ChildEdge {
            child,
            ingest: String::new(),
            ops: String::new(),
            log,
            admin_key: admin_key.to_owned(),
        };
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .expect("edge logs its addresses");
        let addr = |k: &str| {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(k))
                .unwrap()
                .to_string()
        };
        edge.ingest = addr("ingest=");
        edge.ops = addr("ops=");
        edge
    }

    /// Creates a token through the admin API; returns (id, secret). Panics unless `201`.
    pub async fn create_token(
        &self,
        http: &reqwest::Client,
        body: serde_json::Value,
    ) -> (String, String) {
        let resp = http
            .post(format!("http://{}/api/v1/tokens", self.ops))
            .bearer_auth(&self.admin_key)
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status().as_u16(), 201, "creating {body}");
        let v: serde_json::Value = resp.json().await.unwrap();
        (
            v["id"].as_str().unwrap().to_owned(),
            v["token"].as_str().unwrap().to_owned(),
        )
    }

    /// Its `/metrics` text; `None` while the ops listener does not answer.
    pub async fn metrics(&self, http: &reqwest::Client) -> Option<String> {
        let resp = http
            .get(format!("http://{}/metrics", self.ops))
            .send()
            .await
            .ok()?;
        resp.text().await.ok()
    }

    /// What the child logged so far, one line each.
    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    /// A `kB` field of `/proc/<pid>/status` (`VmRSS`, `VmHWM`), in KiB.
    pub fn status_kib(&self, field: &str) -> u64 {
        let pid = self.child.id();
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("{field} in {status}"))
    }
}
