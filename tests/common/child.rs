//! The real binary as a child process (`ingest-edge serve` on port 0, configured by
//! environment), for tests that measure it from outside: memory from `/proc/<pid>/status`.
//! An in-process edge cannot be measured that way (the test harness shares its heap).

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A `serve` child, killed when dropped so a failed assertion leaves no process behind.
pub struct ChildEdge {
    pub child: Child,
    /// `host:port` of the ingest listener.
    pub ingest: String,
    /// `host:port` of the ops listener.
    pub ops: String,
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
        Self::serve_with(data_dir, admin_key, &[])
    }

    /// Like [`ChildEdge::serve`], with more environment (`INGEST_EDGE_REDIS_URL`, ...).
    pub fn serve_with(data_dir: &Path, admin_key: &str, env: &[(&str, &str)]) -> ChildEdge {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ingest-edge"))
            .arg("serve")
            .envs(env.iter().copied())
            .env("INGEST_EDGE_INGEST_ADDR", "127.0.0.1:0")
            .env("INGEST_EDGE_OPS_ADDR", "127.0.0.1:0")
            .env("INGEST_EDGE_DATA_DIR", data_dir)
            .env("INGEST_EDGE_ADMIN_KEY", admin_key)
            .env("INGEST_EDGE_LOG", "info")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let tx = tx.clone();
            // Drains the pipe for the child's whole life, so logging never blocks it.
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if let Some(rest) = line.split("listening ").nth(1) {
                        let _ = tx.send(rest.to_string());
                    }
                }
            });
        }
        let mut edge = ChildEdge {
            child,
            ingest: String::new(),
            ops: String::new(),
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
