//! The real binary as an operator runs it: `serve` on port 0 configured by environment only,
//! the `token` and `audit` CLI against it (success and error paths), SIGKILL during a burst of
//! admin writes (crash safety), SIGTERM (graceful shutdown), and no secret in the logs.

mod common;

use std::path::Path;
use std::process::{Child, Command};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::child::ChildEdge;

const BIN: &str = env!("CARGO_BIN_EXE_ingest-edge");
const KEY: &str = "process-test-admin-key-000";

/// `serve` on `data_dir`, logging at debug level (the no-secret check reads every line).
fn serve(data_dir: &Path) -> ChildEdge {
    ChildEdge::serve_with(data_dir, KEY, &[("INGEST_EDGE_LOG", "debug")], &[])
}

fn cli(ops: &str, args: &[&str]) -> (bool, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .env("INGEST_EDGE_ADMIN_URL", format!("http://{ops}"))
        .env("INGEST_EDGE_ADMIN_KEY", KEY)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn kill(child: &mut Child, signal: &str) {
    Command::new("kill")
        .args([signal, &child.id().to_string()])
        .status()
        .unwrap();
}

#[test]
fn cli_end_to_end_and_no_secret_in_logs() {
    let dir = tempfile::tempdir().unwrap();
    let mut edge = serve(dir.path());
    let ops = edge.ops.clone();

    let (ok, out, err) = cli(
        &ops,
        &[
            "token",
            "create",
            "--type",
            "client",
            "--name",
            "Shop RUM",
            "--origin",
            "https://*.shop.example",
            "--environment",
            "production",
            "--json",
        ],
    );
    assert!(ok, "{err}");
    let created: serde_json::Value = serde_json::from_str(&out).unwrap();
    let id = created["id"].as_str().unwrap().to_string();
    let secret = created["token"].as_str().unwrap().to_string();

    let (ok, out, err) = cli(
        &ops,
        &[
            "token",
            "create",
            "--type",
            "remote_write",
            "--name",
            "prom-eu",
        ],
    );
    assert!(ok, "{err}");
    assert!(out.contains("shown once"), "{out}");
    let rw_secret = out.lines().last().unwrap().trim().to_string();

    // A bad origin: names the entry and the reason, exits non-zero.
    let (ok, _, err) = cli(
        &ops,
        &[
            "token",
            "create",
            "--type",
            "client",
            "--name",
            "x",
            "--origin",
            "example.com",
        ],
    );
    assert!(!ok);
    assert!(
        err.contains("example.com") && err.contains("scheme"),
        "{err}"
    );

    let (ok, out, _) = cli(&ops, &["token", "list"]);
    assert!(ok);
    assert!(
        out.contains(&id) && out.contains("Shop RUM") && out.contains("prom-eu"),
        "{out}"
    );
    assert!(!out.contains(&secret));

    let (ok, out, _) = cli(
        &ops,
        &[
            "token",
            "update",
            &id,
            "--name",
            "Shop RUM v2",
            "--origin",
            "https://www.shop.example",
        ],
    );
    assert!(ok, "{out}");
    assert!(
        out.contains("Shop RUM v2") && out.contains("https://www.shop.example"),
        "{out}"
    );

    let (ok, out, err) = cli(&ops, &["token", "rotate", &id, "--grace", "1h", "--json"]);
    assert!(ok, "{err}");
    let rotated: serde_json::Value = serde_json::from_str(&out).unwrap();
    let new_secret = rotated["token"].as_str().unwrap().to_string();
    assert_ne!(new_secret, secret);

    let (ok, out, _) = cli(&ops, &["token", "show", &id]);
    assert!(ok && out.contains("previous_secret_valid_until"), "{out}");

    let (ok, _, err) = cli(&ops, &["token", "show", "tk_doesnotexist"]);
    assert!(!ok && err.contains("404"), "{err}");

    let (ok, out, _) = cli(&ops, &["token", "revoke", &id]);
    assert!(ok && out.contains(&id));

    let (ok, out, _) = cli(&ops, &["audit"]);
    assert!(ok);
    for action in ["create", "update", "rotate", "revoke"] {
        assert!(out.contains(action), "{out}");
    }

    // Wrong key and unreachable edge: clear errors, non-zero exit.
    let out = Command::new(BIN)
        .args([
            "token",
            "list",
            "--admin-url",
            &format!("http://{ops}"),
            "--admin-key",
            "wrong-key-wrong-key",
        ])
        .env_remove("INGEST_EDGE_ADMIN_KEY")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("401"));
    let out = Command::new(BIN)
        .args([
            "token",
            "list",
            "--admin-url",
            "http://127.0.0.1:1",
            "--admin-key",
            KEY,
        ])
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("cannot reach"));

    // Traffic with secrets in the header and the query string.
    let http = reqwest::blocking::Client::new();
    for url in [
        format!("http://{}/v1/traces?token={new_secret}", edge.ingest),
        format!("http://{}/v1/traces?token={secret}", edge.ingest),
    ] {
        let _ = http
            .post(url)
            .header("origin", "https://www.shop.example")
            .header("content-type", "text/plain")
            .body("{}")
            .send()
            .unwrap();
    }
    let _ = http
        .post(format!("http://{}/api/v1/write", edge.ingest))
        .bearer_auth(&rw_secret)
        .body("x")
        .send()
        .unwrap();
    let metrics = http
        .get(format!("http://{ops}/metrics"))
        .send()
        .unwrap()
        .text()
        .unwrap();

    kill(&mut edge.child, "-TERM");
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        if let Some(s) = edge.child.try_wait().unwrap() {
            break s;
        }
        assert!(Instant::now() < deadline, "edge did not stop on SIGTERM");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert!(status.success(), "graceful shutdown exits 0: {status:?}");
    let log = edge.log.lock().unwrap().join("\n");
    assert!(log.contains("listening"));
    for s in [&secret, &new_secret, &rw_secret] {
        assert!(!log.contains(s.as_str()), "a secret reached the log");
        assert!(!metrics.contains(s.as_str()), "a secret reached /metrics");
    }
    assert!(!log.contains(KEY), "the admin key reached the log");
}

#[test]
fn sigkill_during_admin_writes_keeps_every_acknowledged_change() {
    let dir = tempfile::tempdir().unwrap();
    let mut edge = serve(dir.path());
    let ops = edge.ops.clone();
    let acked = Arc::new(Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut writers = vec![];
    for w in 0..4 {
        let (ops, acked, stop) = (ops.clone(), acked.clone(), stop.clone());
        writers.push(std::thread::spawn(move || {
            let http = reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap();
            let deadline = Instant::now() + Duration::from_secs(20);
            for i in 0..10_000 {
                if stop.load(std::sync::atomic::Ordering::SeqCst) || Instant::now() > deadline {
                    break;
                }
                let r = http
                    .post(format!("http://{ops}/api/v1/tokens"))
                    .bearer_auth(KEY)
                    .json(&serde_json::json!({"name": format!("w{w}-{i}"), "type": "remote_write"}))
                    .send();
                match r {
                    Ok(r) if r.status() == 201 => {
                        let v: serde_json::Value = r.json().unwrap();
                        acked
                            .lock()
                            .unwrap()
                            .push(v["id"].as_str().unwrap().to_string());
                    }
                    _ => break,
                }
            }
        }));
    }
    // Let the burst run, then kill mid-flight.
    let start = Instant::now();
    while acked.lock().unwrap().len() < 40 && start.elapsed() < Duration::from_secs(15) {
        std::thread::sleep(Duration::from_millis(5));
    }
    kill(&mut edge.child, "-KILL");
    let _ = edge.child.wait();
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    for w in writers {
        w.join().unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    assert!(
        acked.len() >= 40,
        "only {} creates before the kill",
        acked.len()
    );

    let mut again = serve(dir.path());
    let http = reqwest::blocking::Client::new();
    let list: serde_json::Value = http
        .get(format!("http://{}/api/v1/tokens", again.ops))
        .bearer_auth(KEY)
        .send()
        .unwrap()
        .json()
        .unwrap();
    let ids: std::collections::HashSet<String> = list["tokens"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["id"].as_str().unwrap().to_string())
        .collect();
    let lost: Vec<_> = acked.iter().filter(|id| !ids.contains(*id)).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged creates lost: {lost:?}",
        lost.len()
    );
    // The trail is complete across the kill: every stored token has its create event, and a
    // create whose token is not stored (killed between the two writes) is marked not_applied.
    let audit: serde_json::Value = http
        .get(format!("http://{}/api/v1/audit?limit=10000", again.ops))
        .bearer_auth(KEY)
        .send()
        .unwrap()
        .json()
        .unwrap();
    let events = audit["events"].as_array().unwrap();
    let created: std::collections::HashSet<&str> = events
        .iter()
        .filter(|e| e["action"] == "create")
        .map(|e| e["token_id"].as_str().unwrap())
        .collect();
    let unaudited: Vec<_> = ids
        .iter()
        .filter(|id| !created.contains(id.as_str()))
        .collect();
    assert!(
        unaudited.is_empty(),
        "tokens with no create event: {unaudited:?}"
    );
    for e in events.iter().filter(|e| e["action"] == "create") {
        let id = e["token_id"].as_str().unwrap();
        let marked = events
            .iter()
            .any(|m| m["action"] == "not_applied" && m["refers_to"] == e["id"]);
        assert!(
            ids.contains(id) || marked,
            "create of {id} neither stored nor marked"
        );
    }
    kill(&mut again.child, "-KILL");
    let _ = again.child.wait();
}

#[test]
fn spool_cli_shows_what_was_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let mut edge = serve(dir.path());
    let http = reqwest::blocking::Client::new();
    let created: serde_json::Value = http
        .post(format!("http://{}/api/v1/tokens", edge.ops))
        .bearer_auth(KEY)
        .json(&serde_json::json!({"name": "rw", "type": "remote_write"}))
        .send()
        .unwrap()
        .json()
        .unwrap();
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let body = std::fs::read(here.join("tests/fixtures/prometheus-2.42/body_000.bin")).unwrap();
    for _ in 0..3 {
        let r = http
            .post(format!("http://{}/api/v1/write", edge.ingest))
            .bearer_auth(created["token"].as_str().unwrap())
            .header("content-type", "application/x-protobuf")
            .header("content-encoding", "snappy")
            .body(body.clone())
            .send()
            .unwrap();
        assert_eq!(r.status(), 204);
    }
    let spool = |args: &[&str]| {
        let out = Command::new(BIN)
            .arg("spool")
            .args(args)
            .env("INGEST_EDGE_DATA_DIR", dir.path())
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let stats: serde_json::Value = serde_json::from_str(&spool(&["stats", "--json"])).unwrap();
    let rw = stats["queues"]
        .as_array()
        .unwrap()
        .iter()
        .find(|q| q["queue"] == "remote_write")
        .unwrap_or_else(|| panic!("{stats}"));
    assert_eq!(rw["pending_records"], 3, "{stats}");
    // Each record holds the original compressed body plus its framing and metadata.
    assert!(
        rw["pending_bytes"].as_u64().unwrap() >= 3 * body.len() as u64,
        "{stats}"
    );
    let dump = spool(&["dump", "remote_write", "--limit", "10"]);
    assert_eq!(dump.lines().count(), 3, "{dump}");
    assert!(dump.contains(created["id"].as_str().unwrap()), "{dump}");
    assert!(!dump.contains(created["token"].as_str().unwrap()));
    kill(&mut edge.child, "-KILL");
    let _ = edge.child.wait();
}
