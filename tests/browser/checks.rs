//! Assertions for the browser suite: [`Observed`] reads what the page (and Chromium's network
//! log) reported for a scenario, [`EdgeCounts`] reads the edge's per-token counters. Each
//! failure message carries the whole scenario result or the token's metric lines, so a failure
//! explains itself.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::common::TestEdge;

/// What the runner returned, by scenario id.
pub struct Observed<'a> {
    /// Runner results by scenario id.
    results: &'a HashMap<String, Value>,
    /// The page server's port, part of every origin.
    port: u16,
}

fn list(v: &Value) -> &[Value] {
    v.as_array().map(Vec::as_slice).unwrap_or_default()
}

impl<'a> Observed<'a> {
    pub fn new(results: &'a HashMap<String, Value>, port: u16) -> Self {
        Observed { results, port }
    }

    fn get(&self, id: &str) -> &'a Value {
        self.results
            .get(id)
            .unwrap_or_else(|| panic!("no result for scenario {id}: {:?}", self.results))
    }

    /// The page really ran on `host` (the runner's server saw that Host header).
    fn served_from(&self, id: &str, host: &str) -> &'a Value {
        let r = self.get(id);
        assert_eq!(
            r["origin"],
            format!("http://{host}:{}", self.port),
            "{id}: {r}"
        );
        assert_eq!(
            r["served_host"],
            format!("{host}:{}", self.port),
            "{id}: {r}"
        );
        r
    }

    /// The SDK exporter reported success for `items` items, after one passed preflight and one
    /// `200` POST.
    pub fn exported(&self, id: &str, host: &str, items: u64) {
        let r = self.served_from(id, host);
        let results = list(&r["page"]["results"]);
        assert!(!results.is_empty(), "{id}: the SDK exported nothing: {r}");
        for e in results {
            assert_eq!(e["code"], 0, "{id}: export failed: {r}");
        }
        let sent: u64 = results.iter().filter_map(|e| e["items"].as_u64()).sum();
        assert_eq!(sent, items, "{id}: items the SDK exported: {r}");
        let pre = list(&r["network"]["preflights"]);
        assert_eq!(pre.len(), 1, "{id}: one preflight expected: {r}");
        assert_eq!(pre[0]["status"], 204, "{id}: preflight: {r}");
        assert!(
            pre[0]["cors"].is_null() && pre[0]["failed"].is_null(),
            "{id}: {r}"
        );
        let posts = list(&r["network"]["requests"]);
        assert_eq!(posts.len(), 1, "{id}: one POST expected: {r}");
        assert_eq!(posts[0]["method"], "POST", "{id}: {r}");
        assert_eq!(posts[0]["status"], 200, "{id}: {r}");
    }

    /// What each request to the edge spoke (Chromium's `response.protocol`: `h2`,
    /// `http/1.1`), preflights included.
    pub fn protocols(&self, id: &str) -> Vec<String> {
        let r = self.get(id);
        ["preflights", "requests"]
            .iter()
            .flat_map(|k| list(&r["network"][k]))
            .map(|e| e["protocol"].as_str().unwrap_or("none").to_owned())
            .collect()
    }

    /// `navigator.sendBeacon` queued the SDK's JSON; Chromium sent it without a preflight and
    /// got `200`.
    pub fn beacon(&self, id: &str, spans: u64) {
        let r = self.served_from(id, "localhost");
        assert_eq!(
            r["page"]["queued"], true,
            "{id}: sendBeacon returned false: {r}"
        );
        assert_eq!(r["page"]["spans"], spans, "{id}: {r}");
        assert!(list(&r["network"]["preflights"]).is_empty(), "{id}: {r}");
        let posts = list(&r["network"]["requests"]);
        assert_eq!(posts.len(), 1, "{id}: {r}");
        assert_eq!(posts[0]["type"], "Ping", "{id}: not a beacon: {r}");
        assert_eq!(posts[0]["status"], 200, "{id}: {r}");
        let url = posts[0]["url"].as_str().unwrap_or_default();
        assert!(url.contains("/v1/traces?token="), "{id}: {r}");
    }

    /// The POST reached the edge, but the browser hid the answer: the page's fetch rejected with
    /// a `TypeError` and Chromium names the missing `Access-Control-Allow-Origin`.
    pub fn blocked(&self, id: &str, host: &str, preflighted: bool) {
        let r = self.served_from(id, host);
        let responses = list(&r["page"]["responses"]);
        assert_eq!(responses.len(), 1, "{id}: {r}");
        assert_eq!(
            responses[0]["error"], "TypeError",
            "{id}: fetch did not reject: {r}"
        );
        assert!(
            responses[0]["status"].is_null(),
            "{id}: the page read a status: {r}"
        );
        let pre = list(&r["network"]["preflights"]);
        if preflighted {
            // Without `?token=` the edge cannot know the token yet: the preflight passes and
            // the POST is refused.
            assert_eq!(pre.len(), 1, "{id}: {r}");
            assert_eq!(pre[0]["status"], 204, "{id}: {r}");
        } else {
            assert!(
                pre.is_empty(),
                "{id}: a simple request needs no preflight: {r}"
            );
        }
        let posts = list(&r["network"]["requests"]);
        assert_eq!(posts.len(), 1, "{id}: {r}");
        assert_eq!(posts[0]["method"], "POST", "{id}: {r}");
        assert_eq!(posts[0]["cors"], "MissingAllowOriginHeader", "{id}: {r}");
    }

    /// With `?token=` the preflight itself is refused (`403`), so the POST is never sent.
    pub fn preflight_refused(&self, id: &str) {
        let r = self.served_from(id, "127.0.0.1");
        let responses = list(&r["page"]["responses"]);
        assert_eq!(responses.len(), 1, "{id}: {r}");
        assert_eq!(
            responses[0]["error"], "TypeError",
            "{id}: fetch did not reject: {r}"
        );
        let pre = list(&r["network"]["preflights"]);
        assert_eq!(pre.len(), 1, "{id}: {r}");
        assert_eq!(pre[0]["status"], 403, "{id}: {r}");
        // Chromium reports the POST it never sent as failed for want of a preflight grant.
        for post in list(&r["network"]["requests"]) {
            assert!(post["status"].is_null(), "{id}: a POST got an answer: {r}");
            assert_eq!(
                post["cors"], "PreflightMissingAllowOriginHeader",
                "{id}: {r}"
            );
        }
    }

    /// The page read `status` from the edge's error response (CORS headers on errors).
    pub fn status(&self, id: &str, status: u16) {
        let r = self.served_from(id, "localhost");
        let responses = list(&r["page"]["responses"]);
        assert_eq!(responses.len(), 1, "{id}: {r}");
        assert!(responses[0]["error"].is_null(), "{id}: fetch rejected: {r}");
        assert_eq!(responses[0]["status"], status, "{id}: {r}");
        let body = responses[0]["body"].as_str().unwrap_or_default();
        assert!(
            !body.is_empty(),
            "{id}: the page could not read the body: {r}"
        );
        // SPEC §15: the body is a JSON `google.rpc.Status` (the page posts JSON) with a
        // non-zero code and the reason.
        let status: Value = serde_json::from_str(body)
            .unwrap_or_else(|e| panic!("{id}: body is not JSON ({e}): {r}"));
        assert!(
            status["code"].as_i64().is_some_and(|c| c != 0),
            "{id}: no gRPC code: {r}"
        );
        assert!(
            status["message"].as_str().is_some_and(|m| !m.is_empty()),
            "{id}: no message: {r}"
        );
    }

    /// Returns (accepted, throttled). The page read every status; the burst of 2 passed; each
    /// `429` carried a `Retry-After` the page could read (exposed by CORS).
    pub fn rate_limited(&self, id: &str, sent: u64) -> (u64, u64) {
        let r = self.served_from(id, "localhost");
        let responses = list(&r["page"]["responses"]);
        assert_eq!(responses.len() as u64, sent, "{id}: {r}");
        let (mut ok, mut throttled) = (0, 0);
        for (i, resp) in responses.iter().enumerate() {
            assert!(resp["error"].is_null(), "{id}: fetch #{i} rejected: {r}");
            match resp["status"].as_u64() {
                Some(200) => ok += 1,
                Some(429) => {
                    throttled += 1;
                    let after = resp["retryAfter"].as_str().unwrap_or_default();
                    let secs: u64 = after
                        .parse()
                        .unwrap_or_else(|_| panic!("{id}: Retry-After {after:?} unreadable: {r}"));
                    assert!(secs >= 1, "{id}: Retry-After {secs}: {r}");
                }
                other => panic!("{id}: fetch #{i} got {other:?}: {r}"),
            }
        }
        assert_eq!(
            responses[0]["status"], 200,
            "{id}: the burst should pass: {r}"
        );
        assert_eq!(
            responses[1]["status"], 200,
            "{id}: the burst should pass: {r}"
        );
        assert!(throttled >= 1, "{id}: never throttled: {r}");
        (ok, throttled)
    }
}

/// The edge's per-token counters, read from the ops `/metrics`.
pub struct EdgeCounts<'a> {
    /// The edge under test.
    edge: &'a TestEdge,
}

impl<'a> EdgeCounts<'a> {
    pub fn new(edge: &'a TestEdge) -> Self {
        EdgeCounts { edge }
    }

    /// Waits (at most 5 s) for `series` to read `want` (absent reads 0), so a counter still on
    /// its way is not taken for a wrong one; then asserts.
    pub async fn expect(&self, series: &str, want: u64) {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let text = self.edge.metrics().await;
            let got = crate::common::series_value(&text, series).unwrap_or(0.0);
            if got == want as f64 {
                return;
            }
            if Instant::now() >= deadline {
                let ingest: Vec<&str> = text.lines().filter(|l| l.starts_with("ingest_")).collect();
                panic!(
                    "{series} = {got}, want {want}; edge counters:\n{}",
                    ingest.join("\n")
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// `items` spans or log records accepted in `requests` requests answered `200`.
    pub async fn accepted(&self, id: &str, signal: &str, items: u64, requests: u64) {
        let items_series =
            format!("ingest_rum_items_total{{token_id=\"{id}\",signal=\"{signal}\"}}");
        self.expect(&items_series, items).await;
        self.expect(&requests_series(id, signal, "200"), requests)
            .await;
    }

    /// `n` requests refused because of their origin.
    pub async fn origin_refused(&self, id: &str, n: u64) {
        self.rejected(id, "origin_not_allowed", n).await;
        self.code(id, "403", n).await;
    }

    /// No rejection of any reason, on any endpoint, was counted for the token.
    pub async fn no_rejections(&self, id: &str) {
        let text = self.edge.metrics().await;
        let prefix = format!("ingest_rejected_total{{token_id=\"{id}\",");
        let counted: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with(&prefix) && !l.ends_with(" 0"))
            .collect();
        assert!(counted.is_empty(), "rejections for {id}: {counted:?}");
    }

    /// Not one request accepted, not one span counted.
    pub async fn nothing_accepted(&self, id: &str) {
        self.code(id, "200", 0).await;
        let items = format!("ingest_rum_items_total{{token_id=\"{id}\",signal=\"traces\"}}");
        self.expect(&items, 0).await;
    }

    pub async fn rejected(&self, id: &str, reason: &str, n: u64) {
        let series = format!(
            "ingest_rejected_total{{token_id=\"{id}\",endpoint=\"traces\",reason=\"{reason}\"}}"
        );
        self.expect(&series, n).await;
    }

    pub async fn code(&self, id: &str, code: &str, n: u64) {
        self.expect(&requests_series(id, "traces", code), n).await;
    }
}

fn requests_series(id: &str, endpoint: &str, code: &str) -> String {
    format!("ingest_requests_total{{token_id=\"{id}\",endpoint=\"{endpoint}\",code=\"{code}\"}}")
}
