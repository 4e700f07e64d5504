//! RUM from a real browser (issue 6, SPEC §4 and §5): the OpenTelemetry web SDK, bundled with
//! esbuild from `tests/browser/node_modules`, runs in Debian's headless Chromium (driven by
//! playwright-core through `tests/browser/run.mjs`) against an edge started in-process. Every
//! scenario checks what the page's JavaScript observed *and* what the edge counted.
//!
//! The page is served by the runner on `127.0.0.1:<port>` and loaded as `http://localhost:<port>`
//! (allowed by the tokens), `http://127.0.0.1:<port>` (not allowed), and as
//! `http://app.localtest:<port>` / `http://a.b.localtest:<port>` (Chromium maps `*.localtest` to
//! 127.0.0.1), against the token pattern `http://*.localtest:<port>`.
//!
//! One scenario sends to a second edge over HTTPS (a test CA's certificate, accepted by
//! Chromium through `--ignore-certificate-errors-spki-list`), where Chromium must speak HTTP/2.
//!
//! Needs `/usr/bin/chromium` and `tests/browser/node_modules` (`.ci/setup-browser.sh` installs
//! both). Without them the suite fails; it never skips.

#[path = "browser/checks.rs"]
mod checks;
mod common;
#[path = "transport/pki.rs"]
mod pki;
#[path = "browser/runner.rs"]
mod runner;

use std::time::Instant;

use checks::{EdgeCounts, Observed};
use common::TestEdge;
use reqwest::Method;
use runner::Runner;
use serde_json::{json, Value};

/// One minimal OTLP JSON span, for the scenarios that use a plain `fetch`.
const ONE_SPAN: &str = r#"{"resourceSpans":[{"resource":{"attributes":[]},"scopeSpans":[{"scope":{"name":"browser-test"},"spans":[{"traceId":"7a45a473ee2442a0dd22ee14f4d3c294","spanId":"302c4bca8acd807e","name":"plain.fetch","kind":1,"startTimeUnixNano":"1795822429197000000","endTimeUnixNano":"1795822429197500000"}]}]}]}"#;

/// Spans exported by the SDK's OTLP exporter (scenario 1).
const EXPORTED_SPANS: u64 = 5;
/// Log records exported by the SDK's OTLP logs exporter (scenario 1, logs).
const EXPORTED_LOGS: u64 = 3;
/// Spans in the one beacon (scenario 2).
const BEACON_SPANS: u64 = 2;
/// Spans exported from the wildcard-matched origin (scenario 6).
const WILDCARD_SPANS: u64 = 2;
/// Requests the page fires at the rate-limited token, whose burst is 2 (scenario 5).
const LIMITED_REQUESTS: u64 = 5;

/// A web client token for the page's origins; `limits` only where a scenario needs them.
fn client_token(port: u16, name: &str, limits: Option<Value>) -> Value {
    let mut body = json!({
        "name": name,
        "type": "client",
        "client_type": "web",
        "environment": "test",
        "origins": [format!("http://localhost:{port}"), format!("http://*.localtest:{port}")],
    });
    if let Some(l) = limits {
        body["limits"] = l;
    }
    body
}

/// A page action: `post` a plain fetch `times` times.
fn post(url: String, headers: Value, times: u64) -> Value {
    json!({ "url": url, "headers": headers, "body": ONE_SPAN, "times": times })
}

fn scenario(id: &str, host: &str, action: &str, args: Value) -> Value {
    json!({ "id": id, "host": host, "action": action, "args": args })
}

/// Breaks a secret's checksum: well-formed in shape, but no token the edge could know.
fn corrupted(secret: &str) -> String {
    let mut s = secret.to_owned();
    let last = s.pop().unwrap_or('0');
    s.push(if last == 'A' { 'B' } else { 'A' });
    s
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn opentelemetry_web_sdk_in_chromium() {
    let started = Instant::now();
    let tls_dir = tempfile::tempdir().unwrap();
    let leaf = pki::Ca::new().leaf("edge", 1);
    let (cert, key) = leaf.write(tls_dir.path());
    let runner = Runner::start_trusting(Some(&leaf.spki_sha256)).await;
    let port = runner.page_port;
    let browser = runner.browser.clone();
    let edge = TestEdge::start().await;
    let ingest = edge.ingest_url("");
    let tls_edge = TestEdge::start_with(|c| {
        c.server.tls_cert_file = Some(cert);
        c.server.tls_key_file = Some(key);
    })
    .await;
    let (https_id, https) = tls_edge
        .create_token(client_token(port, "https", None))
        .await;
    let mut over_https = scenario(
        "https_h2",
        "localhost",
        "exportTraces",
        json!({"token": https, "spans": EXPORTED_SPANS}),
    );
    over_https["edge"] = json!(format!("https://127.0.0.1:{}", tls_edge.ingest.port()));

    let (otlp_id, otlp) = edge.create_token(client_token(port, "otlp", None)).await;
    let (logs_id, logs) = edge.create_token(client_token(port, "logs", None)).await;
    let (beacon_id, beacon) = edge.create_token(client_token(port, "beacon", None)).await;
    let (blocked_id, blocked) = edge.create_token(client_token(port, "blocked", None)).await;
    let (wild_id, wild) = edge.create_token(client_token(port, "wild", None)).await;
    let (revoked_id, revoked) = edge.create_token(client_token(port, "revoked", None)).await;
    let tiny = json!({"requests_per_second": 1, "requests_burst": 2});
    let (limited_id, limited) = edge
        .create_token(client_token(port, "limited", Some(tiny)))
        .await;
    // A mobile token (SPEC §14) lifted into a web page: Chromium adds `Origin`, so it is refused.
    let (mobile_id, mobile) = edge
        .create_token(
            json!({"name": "mobile", "type": "client", "client_type": "mobile",
            "environment": "test", "origins": ["android://com.example.shop"]}),
        )
        .await;
    let (status, body) = edge
        .admin(
            Method::DELETE,
            &format!("/api/v1/tokens/{revoked_id}"),
            None,
        )
        .await;
    assert!((200..300).contains(&status), "revoke: {status} {body}");

    let text_plain = json!({"Content-Type": "text/plain;charset=UTF-8"});
    let bearer = |t: &str| json!({"Content-Type": "application/json", "Authorization": format!("Bearer {t}")});
    let traces = format!("{ingest}/v1/traces");
    let with_token = |t: &str| format!("{traces}?token={t}");
    let scenarios = vec![
        scenario(
            "otlp",
            "localhost",
            "exportTraces",
            json!({"token": otlp, "spans": EXPORTED_SPANS}),
        ),
        scenario(
            "logs",
            "localhost",
            "exportLogs",
            json!({"token": logs, "records": EXPORTED_LOGS}),
        ),
        scenario(
            "beacon",
            "localhost",
            "beaconTraces",
            json!({"token": beacon, "spans": BEACON_SPANS}),
        ),
        // A simple request (no preflight) and a preflighted one from the refused origin.
        scenario(
            "blocked_simple",
            "127.0.0.1",
            "post",
            post(with_token(&blocked), text_plain.clone(), 1),
        ),
        scenario(
            "blocked_header",
            "127.0.0.1",
            "post",
            post(traces.clone(), bearer(&blocked), 1),
        ),
        // With `?token=` the preflight itself is refused: the POST is never sent.
        scenario(
            "blocked_preflight",
            "127.0.0.1",
            "post",
            post(
                with_token(&blocked),
                json!({"Content-Type": "application/json"}),
                1,
            ),
        ),
        scenario(
            "malformed",
            "localhost",
            "post",
            post(traces.clone(), bearer(&corrupted(&otlp)), 1),
        ),
        scenario(
            "revoked",
            "localhost",
            "post",
            post(traces.clone(), bearer(&revoked), 1),
        ),
        scenario(
            "limited",
            "localhost",
            "post",
            post(with_token(&limited), text_plain.clone(), LIMITED_REQUESTS),
        ),
        scenario(
            "wild_one_label",
            "app.localtest",
            "exportTraces",
            json!({"token": wild, "spans": WILDCARD_SPANS}),
        ),
        scenario(
            "wild_two_labels",
            "a.b.localtest",
            "post",
            post(traces.clone(), bearer(&wild), 1),
        ),
        scenario(
            "mobile_in_page",
            "localhost",
            "post",
            post(traces.clone(), bearer(&mobile), 1),
        ),
        over_https,
    ];
    let results = runner
        .run(&json!({"edge": ingest, "scenarios": scenarios}))
        .await;
    let seen = Observed::new(&results, port);
    let counts = EdgeCounts::new(&edge);

    // 1. The SDK exporter, token in a header: preflight passed, every span counted.
    seen.exported("otlp", "localhost", EXPORTED_SPANS);
    counts.accepted(&otlp_id, "traces", EXPORTED_SPANS, 1).await;
    counts.no_rejections(&otlp_id).await;
    seen.exported("logs", "localhost", EXPORTED_LOGS);
    counts.accepted(&logs_id, "logs", EXPORTED_LOGS, 1).await;
    counts.no_rejections(&logs_id).await;

    // 2. sendBeacon with the token in the query: queued, no preflight, counted.
    seen.beacon("beacon", BEACON_SPANS);
    counts.accepted(&beacon_id, "traces", BEACON_SPANS, 1).await;
    counts.no_rejections(&beacon_id).await;

    // 3. The refused origin: the page's fetch rejects; the edge counts only the rejections.
    seen.blocked("blocked_simple", "127.0.0.1", false);
    seen.blocked("blocked_header", "127.0.0.1", true);
    seen.preflight_refused("blocked_preflight");
    counts.origin_refused(&blocked_id, 2).await;
    counts.nothing_accepted(&blocked_id).await;

    // 4. A wrong token from an allowed origin: the page reads the 401.
    seen.status("malformed", 401);
    counts.rejected("", "malformed_token", 1).await;
    seen.status("revoked", 401);
    counts.rejected(&revoked_id, "revoked_token", 1).await;

    // 5. Rate limited: the page reads 429 and Retry-After; the edge agrees on every count.
    let (ok, throttled) = seen.rate_limited("limited", LIMITED_REQUESTS);
    counts.accepted(&limited_id, "traces", ok, ok).await;
    counts.code(&limited_id, "429", throttled).await;
    counts
        .rejected(&limited_id, "rate_limited", throttled)
        .await;

    // 6. `http://*.localtest:<port>`: one label matches, two labels do not.
    seen.exported("wild_one_label", "app.localtest", WILDCARD_SPANS);
    counts.accepted(&wild_id, "traces", WILDCARD_SPANS, 1).await;
    seen.blocked("wild_two_labels", "a.b.localtest", true);
    counts.origin_refused(&wild_id, 1).await;

    // 7. A mobile token used from a page: the browser's `Origin` gets it refused (no CORS, so
    // the fetch rejects), counted as the abuse signal `mobile_token_in_browser`.
    seen.blocked("mobile_in_page", "localhost", true);
    counts.origin_refused(&mobile_id, 1).await;
    counts.nothing_accepted(&mobile_id).await;
    counts
        .expect(
            &format!("ingest_mobile_token_in_browser_total{{token_id=\"{mobile_id}\"}}"),
            1,
        )
        .await;
    // 7. The SDK exporter over HTTPS: HTTP/2 for the preflight and the POST, every span counted.
    seen.exported("https_h2", "localhost", EXPORTED_SPANS);
    let protocols = seen.protocols("https_h2");
    assert!(
        !protocols.is_empty() && protocols.iter().all(|p| p == "h2"),
        "Chromium spoke {protocols:?} to the HTTPS edge"
    );
    EdgeCounts::new(&tls_edge)
        .accepted(&https_id, "traces", EXPORTED_SPANS, 1)
        .await;
    let h2_tls = tls_edge
        .metric_value("ingest_connections_total{listener=\"ingest\",protocol=\"h2\",tls=\"true\"}")
        .await
        .unwrap_or(0.0);
    assert!(h2_tls >= 1.0, "the edge counted no h2 TLS connection");
    tls_edge.stop().await;

    edge.stop().await;
    let mut timings: Vec<String> = results
        .iter()
        .map(|(id, r)| format!("{id} {} ms", r["ms"]))
        .collect();
    timings.sort();
    eprintln!(
        "browser suite: Chromium {browser}, {} scenarios in {:.1} s ({})",
        results.len(),
        started.elapsed().as_secs_f64(),
        timings.join(", ")
    );
}

/// Private Network Access: a preflight that asks gets `Access-Control-Allow-Private-Network`.
/// Chromium sends such preflights only from a less private address space than the edge's, which
/// a loopback-only test cannot stage, so this one speaks HTTP directly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_network_access_preflight() {
    let edge = TestEdge::start().await;
    let origin = "http://localhost:3000";
    let (_, secret) = edge.client_token(&[origin]).await;
    let preflight = |url: String, origin: &'static str, pna: bool| {
        let mut req = edge
            .http
            .request(Method::OPTIONS, url)
            .header("Origin", origin)
            .header("Access-Control-Request-Method", "POST")
            .header(
                "Access-Control-Request-Headers",
                "authorization,content-type",
            );
        if pna {
            req = req.header("Access-Control-Request-Private-Network", "true");
        }
        req.send()
    };
    let traces = edge.ingest_url("/v1/traces");
    let tokened = edge.ingest_url(&format!("/v1/traces?token={secret}"));

    for url in [traces.clone(), tokened.clone()] {
        let r = preflight(url.clone(), origin, true)
            .await
            .expect("preflight");
        let h = r.headers();
        assert_eq!(r.status(), 204, "{url}: {h:?}");
        assert_eq!(h["access-control-allow-origin"], origin);
        assert_eq!(h["access-control-allow-private-network"], "true");
        assert_eq!(h["access-control-allow-credentials"], "true");
        assert_eq!(h["access-control-allow-methods"], "POST, OPTIONS");
        assert_eq!(h["access-control-max-age"], "7200");
        let allowed = h["access-control-allow-headers"]
            .to_str()
            .unwrap_or_default();
        assert!(
            allowed.contains("authorization") && allowed.contains("content-type"),
            "{allowed}"
        );
        assert!(h.get_all("vary").iter().any(|v| v == "Origin"), "{h:?}");
    }

    let r = preflight(traces, origin, false).await.expect("preflight");
    assert_eq!(r.status(), 204);
    assert!(r
        .headers()
        .get("access-control-allow-private-network")
        .is_none());

    // The token names the origin it serves: a preflight from elsewhere gets nothing to use.
    let r = preflight(tokened, "http://127.0.0.1:3000", true)
        .await
        .expect("preflight");
    assert_eq!(r.status(), 403);
    assert!(r.headers().get("access-control-allow-origin").is_none());
    assert!(r
        .headers()
        .get("access-control-allow-private-network")
        .is_none());
    edge.stop().await;
}
