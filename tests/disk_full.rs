//! A full disk under a real edge: the spool's data directory is a small tmpfs that the test
//! fills. Refused appends answer `503` without creating a file each, and once space is freed
//! the edge accepts again and every acknowledged record is still in the spool.
//!
//! Mounting needs root (the CI and dev containers run as root); elsewhere the test says it
//! could not mount and returns, and the writer's unit tests still cover the repair logic.

mod common;

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use common::TestEdge;
use ingest_edge::pipeline::{queue_dir, spool_stats, Queue};
use serde_json::json;

const ORIGIN: &str = "http://localhost:3000";

/// A tmpfs of `size` mounted on a fresh directory, unmounted on drop.
struct Tmpfs {
    dir: tempfile::TempDir,
}

impl Tmpfs {
    fn mount(size: &str) -> Option<Tmpfs> {
        let dir = tempfile::tempdir().ok()?;
        let ok = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(dir.path())
            .status()
            .is_ok_and(|s| s.success());
        ok.then_some(Tmpfs { dir })
    }

    fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        // Lazy: a failed test may still hold files open in the edge it leaves behind.
        let _ = Command::new("umount")
            .arg("-l")
            .arg(self.dir.path())
            .status();
    }
}

/// Writes zeros to `path` until the filesystem refuses (bounded by the tmpfs size).
fn fill(path: &Path) -> PathBuf {
    let file = path.join("filler");
    let mut f = std::fs::File::create(&file).unwrap();
    let chunk = vec![0u8; 4096];
    for _ in 0..(64 << 20) / chunk.len() {
        if f.write_all(&chunk).and_then(|()| f.sync_data()).is_err() {
            return file;
        }
    }
    panic!("the tmpfs never filled up");
}

fn spans(i: usize) -> String {
    format!(
        r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"request {i} {pad}","kind":1,"startTimeUnixNano":"1","endTimeUnixNano":"2"}}]}}]}}]}}"#,
        pad = "x".repeat(1500)
    )
}

async fn send(edge: &TestEdge, secret: &str, i: usize) -> u16 {
    edge.http
        .post(edge.ingest_url("/v1/traces"))
        .bearer_auth(secret)
        .header("origin", ORIGIN)
        .header("content-type", "application/json")
        .body(spans(i))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

fn segment_files(dir: &Path) -> usize {
    std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .is_ok_and(|e| e.file_name().to_string_lossy().ends_with(".seg"))
        })
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_disk_refuses_without_piling_up_segments_and_recovers() {
    let Some(fs) = Tmpfs::mount("8m") else {
        eprintln!("SKIPPED: cannot mount a tmpfs here (needs root)");
        return;
    };
    let data_dir = fs.path().to_owned();
    let edge = TestEdge::start_in(&data_dir, |_| {}).await;
    let limits = json!({"requests_per_second": 1000, "requests_burst": 1000,
        "items_per_second": 1000, "items_burst": 1000,
        "per_client_requests_per_second": 1000, "per_client_requests_burst": 1000});
    let (_, secret) = edge
        .create_token(
            json!({"name": "disk full", "type": "client", "client_type": "web",
            "origins": [ORIGIN], "limits": limits}),
        )
        .await;
    let traces = queue_dir(&data_dir, Queue::Traces);
    let mut accepted = 0u64;
    for i in 0..5 {
        assert_eq!(send(&edge, &secret, i).await, 200);
        accepted += 1;
    }
    let before = segment_files(&traces);

    let filler = fill(&data_dir);
    // The active segment's last page may still have room for a record or two.
    let mut first_refused = None;
    for i in 0..20 {
        match send(&edge, &secret, 50 + i).await {
            200 => accepted += 1,
            503 => {
                first_refused = Some(i);
                break;
            }
            other => panic!("status {other} on a full disk"),
        }
    }
    assert!(first_refused.is_some(), "a full disk never refused");
    for i in 0..40 {
        assert_eq!(
            send(&edge, &secret, 100 + i).await,
            503,
            "request {i} on a full disk"
        );
    }
    let during = segment_files(&traces);
    assert!(
        during <= before + 1,
        "40 refused appends left {during} segment files (had {before})"
    );

    std::fs::remove_file(&filler).unwrap();
    for i in 0..10 {
        assert_eq!(
            send(&edge, &secret, 200 + i).await,
            200,
            "after space was freed"
        );
        accepted += 1;
    }
    assert!(segment_files(&traces) <= before + 1);
    edge.stop().await;

    let stats = spool_stats(&data_dir).unwrap();
    let q = stats.queues.iter().find(|q| q.queue == "traces").unwrap();
    assert_eq!(
        q.pending_records, accepted,
        "every acknowledged record is in the spool"
    );
    assert_eq!(
        q.bad_tail_bytes, 0,
        "refused appends left no garbage behind"
    );
}
