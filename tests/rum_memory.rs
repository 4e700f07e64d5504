//! Memory per RUM request, measured from outside: the real binary runs as a child process and
//! its peak resident set (`VmHWM` in `/proc/<pid>/status`) is read before and after a hostile
//! body. An in-process edge cannot be measured this way (the test harness shares its heap).

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

const BIN: &str = env!("CARGO_BIN_EXE_ingest-edge");
const KEY: &str = "rum-memory-test-admin-key-0";
const ORIGIN: &str = "http://localhost:3000";

/// A `serve` child on port 0, killed when dropped so a failed assertion leaves no process.
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
        // Keeps draining after the address line so the child never blocks on a full pipe.
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                if let Some(rest) = line.split("listening ").nth(1) {
                    let _ = tx.send(rest.to_string());
                }
            }
        });
    }
    let line = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("edge logs its addresses");
    let addr = |k: &str| {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(k))
            .unwrap()
            .to_string()
    };
    Served {
        ingest: addr("ingest="),
        ops: addr("ops="),
        child,
    }
}

/// Peak resident set of a process in KiB.
fn vm_hwm_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/<pid>/status")
}

fn varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// `ExportTraceServiceRequest { resource_spans: [{ scope_spans: [{ spans: [empty; n] }] }] }`:
/// two bytes per span on the wire, a few hundred bytes per span once built.
fn empty_spans_request(n: usize) -> Vec<u8> {
    let spans_len = (2 * n) as u64;
    let mut scope = vec![0x12];
    varint(spans_len, &mut scope);
    let mut body = vec![0x0a];
    varint(scope.len() as u64 + spans_len, &mut body);
    body.extend_from_slice(&scope);
    body.reserve(2 * n);
    for _ in 0..n {
        body.extend_from_slice(&[0x12, 0x00]);
    }
    body
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

/// Issue 17, defect 2: ~8 KB of gzip inflating to 8 MiB of empty spans (just under the decoded
/// limit) used to make the edge build ~4 M `Span`s before refusing with `413` (peak RSS
/// ~1 GiB). Counting walks the wire format instead: the peak grows by the decoded body only.
#[test]
fn gzip_of_millions_of_empty_spans_is_refused_without_building_them() {
    let dir = tempfile::tempdir().unwrap();
    let edge = serve(dir.path());
    let http = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(60))
        .build()
        .unwrap();
    let created: serde_json::Value = http
        .post(format!("http://{}/api/v1/tokens", edge.ops))
        .bearer_auth(KEY)
        .json(
            &serde_json::json!({"name": "bomb", "type": "client", "client_type": "web",
            "origins": [ORIGIN], "environment": "test"}),
        )
        .send()
        .unwrap()
        .json()
        .unwrap();
    let secret = created["token"].as_str().unwrap().to_string();

    // 8 MiB decoded (the default `rum_max_decoded_bytes`) minus the 10 bytes of framing.
    let raw = empty_spans_request(((8 << 20) - 10) / 2);
    assert!(raw.len() <= 8 << 20, "{}", raw.len());
    let bomb = gzip(&raw);
    assert!(bomb.len() < 16 << 10, "{} bytes of gzip", bomb.len());
    drop(raw);

    let send = |body: Vec<u8>| {
        http.post(format!("http://{}/v1/traces", edge.ingest))
            .bearer_auth(&secret)
            .header("origin", ORIGIN)
            .header("content-type", "application/x-protobuf")
            .header("content-encoding", "gzip")
            .body(body)
            .send()
            .unwrap()
    };
    // Warm up with a small valid request so the baseline includes the request path itself.
    let small = gzip(&empty_spans_request(10));
    assert_eq!(send(small).status(), 200);

    let pid = edge.child.id();
    let before = vm_hwm_kib(pid);
    let resp = send(bomb);
    let status = resp.status().as_u16();
    let text = resp.text().unwrap();
    let after = vm_hwm_kib(pid);
    eprintln!("VmHWM before {before} KiB, after {after} KiB; answer {status} {text}");
    assert_eq!(status, 413, "{text}");
    assert!(
        after.saturating_sub(before) < 64 << 10,
        "peak RSS grew by {} KiB (from {before} to {after} KiB) for one 8 KB request",
        after - before
    );

    // One span more than fits: the decoded bound refuses it before anything is counted.
    let over = gzip(&empty_spans_request(((8 << 20) - 10) / 2 + 1));
    let resp = send(over);
    assert_eq!(resp.status().as_u16(), 413);
    assert_eq!(resp.text().unwrap(), "decompressed body too large\n");
    let last = vm_hwm_kib(pid);
    assert!(
        last.saturating_sub(before) < 64 << 10,
        "peak RSS grew from {before} to {last} KiB"
    );
}
