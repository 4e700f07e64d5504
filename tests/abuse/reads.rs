//! The admin API's abuse-monitoring reads (SPEC §12 "Reads") against a real edge: a token's
//! usage series, its abuse state, and the edge-wide view.

use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::*;

fn spans() -> String {
    serde_json::json!({"resourceSpans": [{"scopeSpans": [{"spans": [
        {"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b100", "name": "a",
         "startTimeUnixNano": "1700000000000000000", "endTimeUnixNano": "1700000000100000000"},
        {"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b101", "name": "b",
         "startTimeUnixNano": "1700000000000000000", "endTimeUnixNano": "1700000000100000000"}]}]}]})
    .to_string()
}

async fn post(edge: &crate::common::TestEdge, token: &str, origin: &str) -> u16 {
    edge.http
        .post(edge.ingest_url("/v1/traces"))
        .bearer_auth(token)
        .header("content-type", "application/json")
        .header("origin", origin)
        .body(spans())
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Sums a field over the points of a usage answer.
fn total(usage: &Value, field: &str) -> u64 {
    usage["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p[field].as_u64().unwrap())
        .sum()
}

fn rejected(usage: &Value, reason: &str) -> u64 {
    usage["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["rejected"][reason].as_u64().unwrap_or(0))
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn usage_series_abuse_state_and_the_edge_view_read_back_what_was_sent() {
    let edge = edge("flag", |_| {}).await;
    let (id, token) = edge.client_token(&["https://*.example.com"]).await;
    let forged = "https://forged-reads.test";
    for _ in 0..3 {
        assert_eq!(post(&edge, &token, "https://app.example.com").await, 200);
    }
    for _ in 0..2 {
        assert_eq!(post(&edge, &token, forged).await, 403);
    }
    // The history is fed by the monitor's tick: poll until it has all five requests.
    let path = format!("/api/v1/tokens/{id}/usage");
    let start = Instant::now();
    let usage = loop {
        let (status, v) = edge.admin(reqwest::Method::GET, &path, None).await;
        assert_eq!(status, 200, "{v}");
        if total(&v, "requests") >= 5 || start.elapsed() > Duration::from_secs(5) {
            break v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(usage["step_seconds"], 60, "{usage}");
    assert_eq!(total(&usage, "requests"), 5, "{usage}");
    assert_eq!(total(&usage, "items"), 6, "{usage}");
    assert_eq!(
        total(&usage, "bytes"),
        3 * spans().len() as u64,
        "accepted bytes as received: {usage}"
    );
    assert_eq!(rejected(&usage, "origin_not_allowed"), 2, "{usage}");
    for (range, step) in [("24h", 600), ("7d", 3600)] {
        let (status, v) = edge
            .admin(reqwest::Method::GET, &format!("{path}?range={range}"), None)
            .await;
        assert_eq!(status, 200);
        assert_eq!(v["step_seconds"], step, "{v}");
        assert_eq!(total(&v, "requests"), 5, "{v}");
        assert_eq!(total(&v, "items"), 6, "{v}");
    }
    let (status, v) = edge
        .admin(reqwest::Method::GET, &format!("{path}?range=2h"), None)
        .await;
    assert_eq!(status, 400);
    assert_eq!(v["error"]["code"], "invalid_range", "{v}");
    let (status, _) = edge
        .admin(
            reqwest::Method::GET,
            "/api/v1/tokens/tk_nosuchtoken0/usage",
            None,
        )
        .await;
    assert_eq!(status, 404);

    // The abuse state names the forged origin; /metrics never does.
    let (status, v) = edge
        .admin(
            reqwest::Method::GET,
            &format!("/api/v1/tokens/{id}/abuse"),
            None,
        )
        .await;
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["token_id"], id.as_str());
    assert_eq!(v["top_rejected_origins"][0]["key"], forged, "{v}");
    assert_eq!(v["top_rejected_origins"][0]["count"], 2, "{v}");
    assert!(!edge.metrics().await.contains("forged-reads"));

    // A storm of forged origins: the edge-wide view lists the token with origin_storm active.
    let attack = Instant::now();
    let mut listed = false;
    while attack.elapsed() < Duration::from_secs(5) && !listed {
        for _ in 0..10 {
            assert_eq!(post(&edge, &token, forged).await, 403);
        }
        let (status, v) = edge
            .admin(reqwest::Method::GET, "/api/v1/abuse", None)
            .await;
        assert_eq!(status, 200, "{v}");
        listed = v["tokens"].as_array().unwrap().iter().any(|t| {
            t["token_id"] == id.as_str()
                && t["signals"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|s| s["signal"] == "origin_storm" && s["active"] == true)
        });
    }
    assert!(listed, "origin_storm listed in GET /api/v1/abuse");

    // Unknown secrets: the addresses behind them are in the edge-wide view.
    for _ in 0..20 {
        let status = edge
            .http
            .post(edge.ingest_url("/api/v1/write"))
            .bearer_auth("iew_0000000000000000000000000000000000")
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 401);
    }
    let (_, v) = edge
        .admin(reqwest::Method::GET, "/api/v1/abuse", None)
        .await;
    let top = v["auth_storm_top_addresses"].as_array().unwrap();
    assert!(top.iter().any(|a| a["key"] == "127.0.0.1"), "{v}");
    assert_eq!(v["auth_storm"]["signal"], "auth_storm", "{v}");
    edge.stop().await;
}

/// Runs the real CLI against `edge`; returns stdout, failing the test on a non-zero exit.
fn cli(edge: &crate::common::TestEdge, args: &[&str]) -> String {
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_ingest-edge"))
        .args(args)
        .env("INGEST_EDGE_ADMIN_URL", format!("http://{}", edge.ops))
        .env("INGEST_EDGE_ADMIN_KEY", &edge.admin_key)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_disables_enables_expects_a_spike_and_reads_usage_and_abuse() {
    let edge = edge("flag", |_| {}).await;
    let (id, token) = edge.client_token(&["https://*.example.com"]).await;
    assert_eq!(post(&edge, &token, "https://app.example.com").await, 200);

    let out = tokio::task::block_in_place(|| cli(&edge, &["token", "disable", &id]));
    assert_eq!(out.trim(), format!("{id}: disabled"));
    assert_eq!(post(&edge, &token, "https://app.example.com").await, 403);
    let out = tokio::task::block_in_place(|| cli(&edge, &["token", "enable", &id]));
    assert_eq!(out.trim(), format!("{id}: active"));
    assert_eq!(post(&edge, &token, "https://app.example.com").await, 200);

    let before = ingest_edge::time::unix_now();
    let out =
        tokio::task::block_in_place(|| cli(&edge, &["token", "expect-spike", &id, "--for", "2h"]));
    assert!(out.contains("spike expected until"), "{out}");
    let until = report(&edge, &id)
        .expect_spike_until
        .expect("expect-spike set");
    assert!(
        (before + 7190..=before + 7210).contains(&until),
        "{until} vs {before}"
    );

    // Usage as JSON: the two accepted requests (4 spans) once the monitor has ticked.
    let start = Instant::now();
    let usage: Value = loop {
        let out = tokio::task::block_in_place(|| {
            cli(&edge, &["token", "usage", &id, "--range", "24h", "--json"])
        });
        let v: Value = serde_json::from_str(&out).unwrap();
        if total(&v, "items") >= 4 || start.elapsed() > Duration::from_secs(5) {
            break v;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(usage["step_seconds"], 600);
    assert_eq!(total(&usage, "items"), 4, "{usage}");
    let table = tokio::task::block_in_place(|| cli(&edge, &["token", "usage", &id]));
    assert!(
        table.lines().last().unwrap().starts_with("total"),
        "{table}"
    );

    let list: Value = serde_json::from_str(&tokio::task::block_in_place(|| {
        cli(&edge, &["abuse", "list", "--json"])
    }))
    .unwrap();
    assert!(
        list["tokens"].is_array() && list["recent_events"].is_array(),
        "{list}"
    );
    let abuse = tokio::task::block_in_place(|| cli(&edge, &["token", "abuse", &id]));
    assert!(abuse.starts_with("mode flag"), "{abuse}");
    let out = tokio::task::block_in_place(|| cli(&edge, &["token", "abuse-reset", &id]));
    assert!(out.contains("warm-up restarted"), "{out}");

    let events = audit(&edge).await;
    for action in ["disable", "enable", "expect_spike", "abuse_reset"] {
        assert!(
            events
                .iter()
                .any(|e| e["token_id"] == id.as_str() && e["action"] == action),
            "{action} audited: {events:?}"
        );
    }
    edge.stop().await;
}
