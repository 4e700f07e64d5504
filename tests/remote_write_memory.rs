//! Memory a remote_write request may leave behind, measured from outside: the real binary as a
//! child process (`ingest-edge serve`, configured by environment as in `tests/process.rs`),
//! hostile bodies sent over HTTP, then `VmRSS` / `VmHWM` read from `/proc/<pid>/status`.
//!
//! Issue 17, defect 3: a 2.0 body of ~32 MiB of empty symbols (`22 00`, 1.57 MB on the wire)
//! was accepted, and every worker thread kept a 256 MiB symbols table afterwards (RSS ~533 MiB
//! on two workers). The symbol count is now limited and the per-thread buffers shrink back.

mod common;

use common::child::ChildEdge;
use std::time::Duration;

const KEY: &str = "rw-memory-test-admin-key-00";
const V2: &str = "application/x-protobuf;proto=io.prometheus.write.v2.Request";

/// A 2.0 request that is nothing but `n` empty symbols (field 4, length 0): the densest
/// symbols table the wire format allows, 2 bytes per entry.
fn empty_symbols(n: usize) -> Vec<u8> {
    let body = [0x22u8, 0x00].repeat(n);
    snap::raw::Encoder::new().compress_vec(&body).unwrap()
}

#[test]
fn dense_v2_symbols_leave_no_memory_behind() {
    let dir = tempfile::tempdir().unwrap();
    let edge = ChildEdge::serve(dir.path(), KEY);
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
    let before = (edge.status_kib("VmRSS"), edge.status_kib("VmHWM"));

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
    let (rss, hwm) = (edge.status_kib("VmRSS"), edge.status_kib("VmHWM"));
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
