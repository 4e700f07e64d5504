//! Memory a remote_write request may leave behind, measured from outside: the real binary as a
//! child process (`ingest-edge serve`, configured by environment as in `tests/process.rs`),
//! hostile bodies sent over HTTP, then `VmRSS` / `VmHWM` read from `/proc/<pid>/status`.
//!
//! Issue 17, defect 3: a 2.0 body of ~32 MiB of empty symbols (`22 00`, 1.57 MB on the wire)
//! was accepted, and every worker thread kept a 256 MiB symbols table afterwards (RSS ~533 MiB
//! on two workers). The symbol count is now limited and the per-thread buffers shrink back.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_ingest-edge");
const KEY: &str = "rw-memory-test-admin-key-00";
const V2: &str = "application/x-protobuf;proto=io.prometheus.write.v2.Request";

/// Killed on drop, so a failed assertion does not leave an edge running.
struct Served {
    child: Child,
    ingest: String,
    ops: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(data_dir: &Path) -> Served {
    let mut child = Command::new(BIN)
        .arg("serve")
        .env("INGEST_EDGE_INGEST_ADDR", "127.0.0.1:0")
        .env("INGEST_EDGE_OPS_ADDR", "127.0.0.1:0")
        .env("INGEST_EDGE_DATA_DIR", data_dir)
        .env("INGEST_EDGE_ADMIN_KEY", KEY)
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
    let mut served = Served {
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
    served.ingest = addr("ingest=");
    served.ops = addr("ops=");
    served
}

/// `(VmRSS, VmHWM)` of a process, in KiB.
fn memory_kib(pid: u32) -> (u64, u64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("{name} in {status}"))
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// A 2.0 request that is nothing but `n` empty symbols (field 4, length 0): the densest
/// symbols table the wire format allows, 2 bytes per entry.
fn empty_symbols(n: usize) -> Vec<u8> {
    let body = [0x22u8, 0x00].repeat(n);
    snap::raw::Encoder::new().compress_vec(&body).unwrap()
}

#[test]
fn dense_v2_symbols_leave_no_memory_behind() {
    let dir = tempfile::tempdir().unwrap();
    let edge = serve(dir.path());
    let http = reqwest::blocking::Client::new();
    let created: serde_json::Value = http
        .post(format!("http://{}/api/v1/tokens", edge.ops))
        .bearer_auth(KEY)
        .json(&serde_json::json!({"name": "rw", "type": "remote_write"}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let secret = created["token"].as_str().unwrap().to_string();
    // 16 Mi symbols: 32 MiB decoded, exactly the default decoded limit.
    let body = empty_symbols(16 << 20);
    assert!(body.len() < 2 << 20, "{} bytes on the wire", body.len());
    let before = memory_kib(edge.child.id());

    // Several senders at once, so that every worker thread decodes at least one.
    let url = format!("http://{}/api/v1/write", edge.ingest);
    let senders: Vec<_> = (0..4)
        .map(|_| {
            let (url, secret, body) = (url.clone(), secret.clone(), body.clone());
            std::thread::spawn(move || {
                let http = reqwest::blocking::Client::builder()
                    .timeout(Duration::from_secs(60))
                    .build()
                    .unwrap();
                (0..3)
                    .map(|_| {
                        let r = http
                            .post(&url)
                            .bearer_auth(&secret)
                            .header("content-type", V2)
                            .header("content-encoding", "snappy")
                            .body(body.clone())
                            .send()
                            .unwrap();
                        (r.status().as_u16(), r.text().unwrap_or_default())
                    })
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let answers: Vec<(u16, String)> = senders
        .into_iter()
        .flat_map(|s| s.join().unwrap())
        .collect();
    let (rss, hwm) = memory_kib(edge.child.id());
    eprintln!(
        "VmRSS before {} KiB, after {rss} KiB, VmHWM {hwm} KiB; answers {:?}",
        before.0,
        answers.first()
    );
    for (status, text) in &answers {
        assert_eq!(*status, 413, "{text}");
        assert!(text.contains("symbols"), "{text}");
    }
    assert!(rss < 150 << 10, "VmRSS {rss} KiB after the requests");
}
