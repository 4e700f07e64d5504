//! Real non-browser OpenTelemetry senders as mobile apps are, against a real edge on
//! 127.0.0.1:0 with a mobile token: the OpenTelemetry JS SDK under Node (what React Native apps
//! use: `@opentelemetry/sdk-trace-base` + the OTLP HTTP exporter with custom headers,
//! `tests/mobile/send.mjs`) and Python's `opentelemetry-exporter-otlp-proto-http` from PyPI
//! (`tests/mobile/send.py`, OTLP protobuf). Each: every span counted exactly; a wrong app id is
//! `403`; the same token with a browser `Origin` is refused and counted.
//!
//! Needs `tests/mobile/node_modules` and `target/mobile-venv` (`bash .ci/setup-mobile.sh`
//! installs both). Without them the suite fails; it never skips.

mod common;

use std::path::{Path, PathBuf};
use std::time::Duration;

use common::TestEdge;
use serde_json::{json, Value};

const ANDROID: &str = "android://com.example.shop";
const IOS: &str = "ios://com.example.Shop";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn mobile_dir() -> PathBuf {
    repo().join("tests/mobile")
}

fn venv_python() -> PathBuf {
    repo().join("target/mobile-venv/bin/python")
}

/// Panics (fails the test, never skips it) with the command that fixes what is missing.
fn require_prerequisites() {
    let mut missing = Vec::new();
    if !mobile_dir()
        .join("node_modules/@opentelemetry/exporter-trace-otlp-http")
        .is_dir()
    {
        missing.push("tests/mobile/node_modules");
    }
    if !venv_python().exists() {
        missing.push("target/mobile-venv");
    }
    assert!(
        missing.is_empty(),
        "missing {missing:?}: run `bash .ci/setup-mobile.sh`; this suite fails rather than skips"
    );
}

enum Sender {
    Node,
    Python,
}

/// Runs one sender process (bounded to 60 s) and returns its JSON report.
async fn run(
    sender: Sender,
    edge: &TestEdge,
    secret: &str,
    app: &str,
    id: &str,
    spans: usize,
) -> Value {
    require_prerequisites();
    let mut cmd = match sender {
        Sender::Node => {
            let mut c = tokio::process::Command::new("node");
            c.arg(mobile_dir().join("send.mjs"));
            c
        }
        Sender::Python => {
            let mut c = tokio::process::Command::new(venv_python());
            c.arg(mobile_dir().join("send.py"));
            c
        }
    };
    cmd.env("EDGE_URL", edge.ingest_url("/v1/traces"))
        .env("TOKEN", secret)
        .env("CLIENT_ORIGIN", app)
        .env("CLIENT_ID", id)
        .env("SPANS", spans.to_string())
        // Only 127.0.0.0/8: no proxy from the environment.
        .env("NO_PROXY", "*")
        .env_remove("HTTP_PROXY")
        .env_remove("http_proxy")
        .current_dir(mobile_dir())
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .expect("sender finished within 60 s")
        .expect("sender started");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "sender failed: {}\nstdout: {stdout}\nstderr: {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    let line = stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line)
        .unwrap_or_else(|e| panic!("sender output is not JSON ({e}): {stdout}"))
}

async fn mobile_token(edge: &TestEdge) -> (String, String) {
    edge.create_token(
        json!({"name": "Shop app", "type": "client", "client_type": "mobile",
        "origins": [ANDROID, IOS], "environment": "test"}),
    )
    .await
}

async fn metric(edge: &TestEdge, series: &str) -> f64 {
    edge.metric_value(series).await.unwrap_or(0.0)
}

fn items(id: &str) -> String {
    format!("ingest_rum_items_total{{token_id=\"{id}\",signal=\"traces\"}}")
}

fn refused(id: &str) -> String {
    format!("ingest_rejected_total{{token_id=\"{id}\",endpoint=\"traces\",reason=\"origin_not_allowed\"}}")
}

/// The same token and app identity, but with the `Origin` a browser adds to every
/// cross-origin `fetch` (what Chromium sends when the token is lifted into a page).
async fn from_a_browser(edge: &TestEdge, secret: &str) -> u16 {
    edge.http
        .post(edge.ingest_url("/v1/traces"))
        .bearer_auth(secret)
        .header("content-type", "application/json")
        .header("origin", "https://shop-clone.example.com")
        .header("x-client-origin", ANDROID)
        .body(r#"{"resourceSpans":[]}"#)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn opentelemetry_js_under_node_as_a_mobile_app() {
    let edge = TestEdge::start().await;
    let (id, secret) = mobile_token(&edge).await;
    let report = run(
        Sender::Node,
        &edge,
        &secret,
        ANDROID,
        "3f6c2a1e-install-1",
        37,
    )
    .await;
    assert_eq!(
        report["results"],
        json!([{"code": 0, "status": null, "message": null}]),
        "{report}"
    );
    assert_eq!(metric(&edge, &items(&id)).await, 37.0);

    let report = run(
        Sender::Node,
        &edge,
        &secret,
        "android://com.evil.shop",
        "install-2",
        5,
    )
    .await;
    let results = report["results"].as_array().unwrap();
    assert_eq!(results.len(), 1, "{report}");
    assert_eq!(
        (results[0]["code"].clone(), results[0]["status"].clone()),
        (json!(1), json!(403)),
        "{report}"
    );
    assert_eq!(
        metric(&edge, &items(&id)).await,
        37.0,
        "nothing counted from the wrong app"
    );
    assert_eq!(metric(&edge, &refused(&id)).await, 1.0);

    assert_eq!(from_a_browser(&edge, &secret).await, 403);
    let browser = format!("ingest_mobile_token_in_browser_total{{token_id=\"{id}\"}}");
    assert_eq!(metric(&edge, &browser).await, 1.0);
    edge.stop().await;
}

#[tokio::test]
async fn python_otlp_proto_http_exporter_as_a_mobile_app() {
    let edge = TestEdge::start().await;
    let (id, secret) = mobile_token(&edge).await;
    // iOS bundle ids compare ignoring case: the app sends its own spelling.
    let report = run(
        Sender::Python,
        &edge,
        &secret,
        "ios://com.example.shop",
        "py-install_1",
        53,
    )
    .await;
    assert_eq!(report["results"], json!(["SUCCESS"]), "{report}");
    assert_eq!(metric(&edge, &items(&id)).await, 53.0);

    let report = run(
        Sender::Python,
        &edge,
        &secret,
        "ios://com.example.widget",
        "py-install_2",
        4,
    )
    .await;
    assert_eq!(report["results"], json!(["FAILURE"]), "{report}");
    assert_eq!(metric(&edge, &items(&id)).await, 53.0);
    assert_eq!(metric(&edge, &refused(&id)).await, 1.0);
    let forbidden =
        format!("ingest_requests_total{{token_id=\"{id}\",endpoint=\"traces\",code=\"403\"}}");
    assert_eq!(
        metric(&edge, &forbidden).await,
        1.0,
        "the wrong app id is a 403"
    );

    assert_eq!(from_a_browser(&edge, &secret).await, 403);
    edge.stop().await;
}
