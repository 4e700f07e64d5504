//! The console (issue 12, SPEC §13) against a real edge on `127.0.0.1:0`.
//!
//! - `console_http_contract`: the embedded files (ETag, `304`, CSP), sign-in and sign-out, the
//!   session cookie's attributes, and the CSRF rule for cookie-authorised changes, with reqwest.
//! - `console_in_chromium`: `tests/console/run.mjs` drives the console in Debian's headless
//!   Chromium with the browser suite's playwright-core (`tests/browser/node_modules`, installed
//!   by `.ci/setup-browser.sh`): sign-in, create through the form, origin messages as you type,
//!   rotate, revoke, the audit trail, CSRF from the browser, sign-out, and the screenshots
//!   written to `target/console-screenshots/`.
//! - `console_abuse_reads_in_chromium`: the steps that need issue 11's reads and actions
//!   (usage series, `last_used_at`, disable/enable, abuse state): live usage from the OTel web
//!   SDK on an allowed origin, disable/enable, and an origin storm's badge and forged origin.
//!
//! Like the browser suite, the Chromium tests fail (never skip) without their prerequisites.

mod common;
#[path = "browser/runner.rs"]
#[allow(dead_code)]
mod runner;

#[path = "console/contract.rs"]
mod contract;

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use common::TestEdge;
use ingest_edge::config::RotationPeriod;
use reqwest::Method;
use serde_json::{json, Value};
use tokio::io::AsyncReadExt;
use tokio::process::Command;

/// The whole run, Chromium start-up included; run.mjs caps itself at 170 s.
const RUN_TIMEOUT: Duration = Duration::from_secs(200);

/// Tokens older than this are due for rotation in `console_in_chromium`: the neighbour
/// tokens made before the browser starts are older by the time the table is checked.
const ROTATION_PERIOD_SECS: u64 = 2;

/// Where the screenshots go: `target/console-screenshots/`.
fn screenshot_dir() -> PathBuf {
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    tmp.parent().unwrap_or(&tmp).join("console-screenshots")
}

/// Runs one suite of `run.mjs`; returns each step's result by id, failing with the runner's
/// stderr when it does not answer.
async fn run_suite(suite: &str, edge: &TestEdge) -> (u16, HashMap<String, Value>) {
    runner::require_prerequisites();
    let config = json!({
        "suite": suite,
        "console": format!("http://{}", edge.ops),
        "ingest": format!("http://{}", edge.ingest),
        "admin_key": edge.admin_key,
        "screenshots": screenshot_dir(),
    });
    let dir = runner::browser_dir().with_file_name("console");
    let mut child = Command::new("node")
        .arg("run.mjs")
        .current_dir(&dir)
        .env("CHROMIUM_PATH", runner::CHROMIUM)
        .env("CONSOLE_TEST", config.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("spawn `node run.mjs` in tests/console");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut stderr = child.stderr.take().expect("stderr");
    let mut out = String::new();
    let mut err = String::new();
    let read = async {
        let (a, b) = tokio::join!(
            stdout.read_to_string(&mut out),
            stderr.read_to_string(&mut err)
        );
        a.and(b)
    };
    let finished = tokio::time::timeout(RUN_TIMEOUT, read).await;
    let _ = child.start_kill();
    let line = out.lines().find(|l| l.starts_with('{')).unwrap_or_default();
    let parsed: Value = serde_json::from_str(line).unwrap_or_else(|e| {
        panic!("console runner ({finished:?}) gave no result ({e}): {out}\nstderr:\n{err}")
    });
    let port = parsed["page_port"].as_u64().unwrap_or(0) as u16;
    let results = parsed["results"]
        .as_array()
        .unwrap_or_else(|| panic!("results: {parsed}\nstderr:\n{err}"))
        .iter()
        .map(|r| (r["id"].as_str().unwrap_or_default().to_owned(), r.clone()))
        .collect::<HashMap<_, _>>();
    let failed: Vec<String> = results
        .values()
        .filter(|r| r["ok"] != Value::Bool(true))
        .map(|r| format!("{}: {}", r["id"], r["error"]))
        .collect();
    assert!(
        failed.is_empty(),
        "console steps failed:\n{}\nrunner stderr:\n{err}",
        failed.join("\n")
    );
    (port, results)
}

fn timings(results: &HashMap<String, Value>) -> String {
    let mut t: Vec<String> = results
        .iter()
        .map(|(id, r)| format!("{id} {} ms", r["ms"]))
        .collect();
    t.sort();
    t.join(", ")
}

/// Width and height of a PNG, from its IHDR chunk.
fn png_size(bytes: &[u8]) -> Option<(u32, u32)> {
    let w = bytes.get(16..20)?;
    let h = bytes.get(20..24)?;
    (bytes.starts_with(b"\x89PNG")).then(|| {
        (
            u32::from_be_bytes([w[0], w[1], w[2], w[3]]),
            u32::from_be_bytes([h[0], h[1], h[2], h[3]]),
        )
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_in_chromium() {
    let started = Instant::now();
    // A short rotation period, so the table shows its "Rotation due" badge.
    let edge = TestEdge::start_with(|c| {
        c.admin.rotation_period = RotationPeriod(Duration::from_secs(ROTATION_PERIOD_SECS))
    })
    .await;
    // Neighbours in the table, for the filters and the screenshots.
    edge.remote_write_token().await;
    edge.create_token(
        json!({"name": "Marketing site", "type": "client", "client_type": "web",
        "origins": ["https://*.example.com"], "environment": "staging"}),
    )
    .await;
    let (port, results) = run_suite("core", &edge).await;

    // The form made exactly the token it showed, with both origins (one wildcard).
    let created = &results["create"]["data"];
    let id = created["id"].as_str().expect("token id");
    let (status, token) = edge
        .admin(Method::GET, &format!("/api/v1/tokens/{id}"), None)
        .await;
    assert_eq!(status, 200, "{token}");
    assert_eq!(
        token["origins"],
        json!([
            format!("http://localhost:{port}"),
            format!("http://*.localtest:{port}")
        ])
    );
    assert_eq!(token["name"], "Checkout RUM");
    assert_eq!(token["environment"], "production");
    assert_eq!(token["status"], "revoked", "revoked through the dialog");
    assert_eq!(
        token["limits"],
        json!({"requests_per_second": 250}),
        "edited"
    );

    // The message shown as the operator typed is the API's own, for validate and for create.
    let shown = &results["bad_origin"]["data"]["shown"];
    let bad = json!({"origins": [format!("http://localhost:{port}"), "localhost:3000"]});
    let (status, v) = edge
        .admin(Method::POST, "/api/v1/origins/validate", Some(bad.clone()))
        .await;
    assert_eq!(status, 200);
    assert_eq!(&v["details"], shown);
    let mut create = json!({"name": "Refused", "type": "client", "client_type": "web"});
    create["origins"] = bad["origins"].clone();
    let (status, v) = edge
        .admin(Method::POST, "/api/v1/tokens", Some(create))
        .await;
    assert_eq!(status, 400);
    assert_eq!(&v["error"]["details"], shown);

    // Rotation with a 1 h grace: the old secret keeps working, the trail says so.
    let (_, audit) = edge.admin(Method::GET, "/api/v1/audit", None).await;
    let events: Vec<&Value> = audit["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter(|e| e["token_id"] == id)
        .collect();
    let actions: Vec<&str> = events.iter().filter_map(|e| e["action"].as_str()).collect();
    assert_eq!(actions, ["create", "update", "update", "rotate", "revoke"]);
    // The form sends only what changed, so the trail names exactly that.
    assert_eq!(events[1]["detail"], "name,limits");
    assert_eq!(events[2]["detail"], "name");
    let rotate = events[3]["detail"].as_str().unwrap_or_default();
    assert!(rotate.contains("3600"), "rotate detail: {rotate}");

    // Screenshots: three screens, two sizes, each as wide as its viewport.
    for screen in ["token-list", "token-page", "create-form"] {
        for (w, h) in [(1280, 800), (390, 844)] {
            let file = screenshot_dir().join(format!("{screen}-{w}x{h}.png"));
            let bytes = std::fs::read(&file).unwrap_or_else(|e| panic!("{file:?}: {e}"));
            let (pw, ph) = png_size(&bytes).unwrap_or_else(|| panic!("{file:?} is no PNG"));
            assert_eq!(pw, w, "{file:?} width");
            assert!(ph >= h, "{file:?} height {ph}");
        }
    }
    edge.stop().await;
    eprintln!(
        "console suite (core): {} steps in {:.1} s ({})",
        results.len(),
        started.elapsed().as_secs_f64(),
        timings(&results)
    );
}

/// Needs issue 11's admin reads and actions; fails until they are merged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn console_abuse_reads_in_chromium() {
    let started = Instant::now();
    let edge = TestEdge::start().await;
    let (_, results) = run_suite("abuse", &edge).await;
    let (_, list) = edge.admin(Method::GET, "/api/v1/tokens", None).await;
    let live = list["tokens"]
        .as_array()
        .and_then(|l| l.iter().find(|t| t["name"] == "Live RUM"))
        .cloned()
        .unwrap_or(Value::Null);
    assert!(live["last_used_at"].is_string(), "last_used_at: {live}");
    assert_eq!(live["status"], "active");
    edge.stop().await;
    eprintln!(
        "console suite (abuse reads): {} steps in {:.1} s ({})",
        results.len(),
        started.elapsed().as_secs_f64(),
        timings(&results)
    );
}
