//! Mobile client tokens (SPEC §14) on the ingest path, against a real edge on 127.0.0.1:0:
//! `X-Client-Origin`, a mobile token lifted into a browser, no CORS, web tokens ignoring the
//! mobile headers, per-install budgets. The admin API and CLI are in `tests/mobile_admin.rs`,
//! real OpenTelemetry senders in `tests/mobile_senders.rs`, App Check in `tests/app_check.rs`.

mod common;

use common::TestEdge;
use reqwest::Method;
use serde_json::{json, Value};

const APP: &str = "android://com.example.shop";

/// OTLP JSON with `n` spans.
fn spans_json(n: usize) -> String {
    let spans: Vec<_> = (0..n)
        .map(|i| {
            json!({"traceId": "5b8efff798038103d269b633813fc60c", "spanId": format!("eee19b7ec3c1b1{i:02x}"),
                   "name": "tap", "kind": 1, "startTimeUnixNano": "1700000000000000000",
                   "endTimeUnixNano": "1700000000100000000"})
        })
        .collect();
    json!({"resourceSpans": [{"resource": {"attributes": []}, "scopeSpans": [{"scope": {"name": "t"}, "spans": spans}]}]})
        .to_string()
}

/// `POST /v1/traces` with `n` spans and the given extra headers.
async fn send(
    edge: &TestEdge,
    secret: &str,
    headers: &[(&str, &str)],
    n: usize,
) -> reqwest::Response {
    let mut req = edge
        .http
        .post(edge.ingest_url("/v1/traces"))
        .bearer_auth(secret)
        .header("content-type", "application/json")
        .body(spans_json(n));
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap()
}

async fn mobile_token(edge: &TestEdge, origins: &[&str], extra: Value) -> (String, String) {
    let mut body = json!({"name": "Shop app", "type": "client", "client_type": "mobile",
                          "origins": origins, "environment": "production"});
    if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    edge.create_token(body).await
}

async fn metric(edge: &TestEdge, series: &str) -> f64 {
    edge.metric_value(series).await.unwrap_or(0.0)
}

#[tokio::test]
async fn x_client_origin_is_checked_and_a_browser_origin_is_refused() {
    let edge = TestEdge::start().await;
    let (id, secret) = mobile_token(
        &edge,
        &["android://com.example.*", "ios://com.example.shop"],
        json!({}),
    )
    .await;
    let rejected = |reason: &str| {
        format!(
            "ingest_rejected_total{{token_id=\"{id}\",endpoint=\"traces\",reason=\"{reason}\"}}"
        )
    };

    let r = send(&edge, &secret, &[("x-client-origin", APP)], 3).await;
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()
            .keys()
            .all(|k| !k.as_str().starts_with("access-control-")),
        "no CORS for mobile tokens: {:?}",
        r.headers()
    );
    let r = send(
        &edge,
        &secret,
        &[("x-client-origin", "ios://COM.EXAMPLE.SHOP")],
        2,
    )
    .await;
    assert_eq!(r.status(), 200);

    for bad in [
        "android://com.other.shop",
        "android://com.example.shop.debug",
        "ios://com.example.widget",
        "android://com.example.*",
        "com.example.shop",
        "https://shop.example.com",
    ] {
        let r = send(&edge, &secret, &[("x-client-origin", bad)], 1).await;
        assert_eq!(r.status(), 403, "{bad}");
    }
    assert_eq!(
        send(&edge, &secret, &[], 1).await.status(),
        403,
        "missing X-Client-Origin"
    );
    assert_eq!(metric(&edge, &rejected("origin_not_allowed")).await, 7.0);

    // Lifted into a web page: refused even with a valid app identity, no CORS, counted.
    for origin in ["https://evil.example.com", "null"] {
        let r = send(
            &edge,
            &secret,
            &[("x-client-origin", APP), ("origin", origin)],
            1,
        )
        .await;
        assert_eq!(r.status(), 403);
        assert!(r.headers().get("access-control-allow-origin").is_none());
    }
    let browser = format!("ingest_mobile_token_in_browser_total{{token_id=\"{id}\"}}");
    assert_eq!(metric(&edge, &browser).await, 2.0);
    assert_eq!(metric(&edge, &rejected("origin_not_allowed")).await, 9.0);
    let items = format!("ingest_rum_items_total{{token_id=\"{id}\",signal=\"traces\"}}");
    assert_eq!(metric(&edge, &items).await, 5.0);
    edge.stop().await;
}

#[tokio::test]
async fn web_tokens_ignore_the_mobile_headers() {
    let edge = TestEdge::start().await;
    let (id, secret) = edge.client_token(&["https://app.example.com"]).await;
    // No Origin: refused as before, whatever X-Client-Origin says.
    let r = send(
        &edge,
        &secret,
        &[("x-client-origin", APP), ("x-client-id", "install-1")],
        1,
    )
    .await;
    assert_eq!(r.status(), 403);
    let missing = format!(
        "ingest_rejected_total{{token_id=\"{id}\",endpoint=\"traces\",reason=\"missing_origin\"}}"
    );
    assert_eq!(metric(&edge, &missing).await, 1.0);
    let r = send(
        &edge,
        &secret,
        &[
            ("origin", "https://app.example.com"),
            ("x-client-origin", "android://x.y"),
        ],
        1,
    )
    .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        r.headers()["access-control-allow-origin"],
        "https://app.example.com"
    );
    let browser = format!("ingest_mobile_token_in_browser_total{{token_id=\"{id}\"}}");
    assert_eq!(
        edge.metric_value(&browser).await,
        None,
        "web tokens have no mobile series"
    );

    // X-Client-Id does not key a web token's per-client budget: a fresh id per request from
    // one address still spends that address's budget.
    let (_, tight) = edge
        .create_token(
            json!({"name": "tight", "type": "client", "origins": ["https://app.example.com"],
            "limits": {"per_client_requests_per_second": 1, "per_client_requests_burst": 3}}),
        )
        .await;
    let mut statuses = Vec::new();
    for i in 0..8 {
        let id = format!("fresh-install-{i}");
        let h = [
            ("origin", "https://app.example.com"),
            ("x-client-id", id.as_str()),
        ];
        statuses.push(send(&edge, &tight, &h, 1).await.status().as_u16());
    }
    assert!(
        statuses.iter().filter(|s| **s == 429).count() >= 4,
        "{statuses:?}"
    );
    edge.stop().await;
}

/// A preflight naming a mobile token in `?token=` is refused: no page may use it.
#[tokio::test]
async fn preflight_with_a_mobile_token_is_refused() {
    let edge = TestEdge::start().await;
    let (_, secret) = mobile_token(&edge, &[APP], json!({})).await;
    let r = edge
        .http
        .request(
            Method::OPTIONS,
            edge.ingest_url(&format!("/v1/traces?token={secret}")),
        )
        .header("origin", "https://app.example.com")
        .header("access-control-request-method", "POST")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.headers().get("access-control-allow-origin").is_none());
    edge.stop().await;
}

/// Two installs behind one address (the test client): one hammers its budget away, the other
/// keeps working; requests without a usable install id share the address's budget.
#[tokio::test]
async fn per_install_budgets_behind_one_address() {
    let edge = TestEdge::start().await;
    let limits =
        json!({"limits": {"per_client_requests_per_second": 1, "per_client_requests_burst": 5}});
    let (id, secret) = mobile_token(&edge, &[APP], limits).await;
    let hammer = [("x-client-origin", APP), ("x-client-id", "install-hammer")];
    let (mut ok, mut throttled) = (0, 0);
    let start = std::time::Instant::now();
    for _ in 0..40 {
        match send(&edge, &secret, &hammer, 1).await.status().as_u16() {
            200 => ok += 1,
            429 => throttled += 1,
            other => panic!("unexpected {other}"),
        }
    }
    let elapsed = start.elapsed().as_secs();
    // Burst 5 plus at most one refill per second of the loop.
    assert!(ok >= 5 && ok <= 5 + elapsed + 1, "ok {ok} in {elapsed} s");
    assert!(throttled >= 30, "throttled {throttled}");
    let quiet = [("x-client-origin", APP), ("x-client-id", "install-quiet_2")];
    for _ in 0..5 {
        assert_eq!(send(&edge, &secret, &quiet, 1).await.status(), 200);
    }
    // No id, or an unusable one (too long, bad characters): keyed by the address, which the
    // hammering install did not spend.
    let long = "x".repeat(65);
    for bad_id in ["", "a b", "a.b", long.as_str()] {
        let mut h = vec![("x-client-origin", APP)];
        if !bad_id.is_empty() {
            h.push(("x-client-id", bad_id));
        }
        assert_eq!(
            send(&edge, &secret, &h, 1).await.status(),
            200,
            "id {bad_id:?}"
        );
    }
    let mut refused = 0;
    for _ in 0..10 {
        if send(&edge, &secret, &[("x-client-origin", APP)], 1)
            .await
            .status()
            == 429
        {
            refused += 1;
        }
    }
    assert!(refused >= 5, "the address budget is its own: {refused}");
    let limited = format!(
        "ingest_rejected_total{{token_id=\"{id}\",endpoint=\"traces\",reason=\"rate_limited\"}}"
    );
    assert_eq!(
        metric(&edge, &limited).await,
        f64::from(throttled + refused)
    );
    edge.stop().await;
}

/// A mobile token lifted into a page raises the abuse event `mobile_token_in_browser`, once
/// per token per edge run however often the page retries (SPEC §12, §14).
#[tokio::test]
async fn a_mobile_token_in_a_browser_is_an_abuse_event() {
    let edge = TestEdge::start_with(|c| {
        c.abuse.short_window = std::time::Duration::from_secs(1);
    })
    .await;
    let (id, secret) = mobile_token(&edge, &[APP], json!({})).await;
    let lifted = [
        ("x-client-origin", APP),
        ("origin", "https://clone.example.com"),
    ];
    for _ in 0..3 {
        assert_eq!(send(&edge, &secret, &lifted, 1).await.status(), 403);
    }
    let event = format!(
        "ingest_abuse_events_total{{token_id=\"{id}\",signal=\"mobile_token_in_browser\",action=\"flagged\"}}"
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while metric(&edge, &event).await < 1.0 {
        assert!(
            std::time::Instant::now() < deadline,
            "no abuse event within 10 s"
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    for _ in 0..3 {
        assert_eq!(send(&edge, &secret, &lifted, 1).await.status(), 403);
    }
    // Several engine ticks (166 ms each) later: still the one event, six refusals counted.
    tokio::time::sleep(std::time::Duration::from_millis(800)).await;
    assert_eq!(metric(&edge, &event).await, 1.0);
    let browser = format!("ingest_mobile_token_in_browser_total{{token_id=\"{id}\"}}");
    assert_eq!(metric(&edge, &browser).await, 6.0);
    // A correct request from the app is not affected.
    assert_eq!(
        send(&edge, &secret, &[("x-client-origin", APP)], 1)
            .await
            .status(),
        200
    );
    edge.stop().await;
}
