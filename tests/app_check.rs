//! App Check attestation of mobile tokens (SPEC §14) against a real edge on 127.0.0.1:0 whose
//! `mobile.app_check_jwks_file` is a JWKS of the test keys (`tests/fixtures/app-check`):
//! tokens minted here, every wrong one refused with `attestation_failed` under `enforce` and
//! accepted and counted under `report`; `off` ignores the header; a rotated JWKS file is
//! picked up while the edge runs.

mod common;

use std::time::{Duration, Instant};

use base64::Engine as _;
use common::{fixtures, TestEdge};
use jsonwebtoken::{encode, Algorithm, EncodingKey, Header};
use serde_json::{json, Value};

const APP: &str = "android://com.example.shop";
const PROJECT: &str = "123456789012";
const FIREBASE_APP: &str = "1:123456789012:android:0a1b2c3d4e5f6789";

fn key(name: &str) -> Vec<u8> {
    std::fs::read(fixtures().join("app-check").join(name)).unwrap()
}

fn now() -> u64 {
    jsonwebtoken::get_current_timestamp()
}

fn claims() -> Value {
    json!({
        "iss": format!("https://firebaseappcheck.googleapis.com/{PROJECT}"),
        "aud": [format!("projects/{PROJECT}"), "projects/shop-prod"],
        "sub": FIREBASE_APP,
        "iat": now(),
        "exp": now() + 3600,
    })
}

fn with(field: &str, value: Value) -> Value {
    let mut c = claims();
    c[field] = value;
    c
}

fn mint_with(key_file: &str, kid: &str, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.into());
    encode(
        &header,
        claims,
        &EncodingKey::from_rsa_pem(&key(key_file)).unwrap(),
    )
    .unwrap()
}

fn mint(claims: &Value) -> String {
    mint_with("test-key.pem", "test-key-1", claims)
}

/// Every way a token is wrong, as the issue lists them (and a few more).
fn wrong_tokens() -> Vec<(&'static str, String)> {
    let b64 = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
    let mut hs = Header::new(Algorithm::HS256);
    hs.kid = Some("test-key-1".into());
    vec![
        ("expired", mint(&with("exp", json!(now() - 300)))),
        ("wrong audience", mint(&with("aud", json!("projects/999")))),
        (
            "wrong issuer",
            mint(&with(
                "iss",
                json!("https://firebaseappcheck.googleapis.com/999"),
            )),
        ),
        (
            "wrong app",
            mint(&with("sub", json!("1:123456789012:android:ffff"))),
        ),
        (
            "bad signature",
            mint_with("other-key.pem", "test-key-1", &claims()),
        ),
        (
            "alg none",
            format!(
                "{}.{}.",
                b64(br#"{"alg":"none","kid":"test-key-1"}"#),
                b64(claims().to_string().as_bytes())
            ),
        ),
        (
            "HS256 with the public key",
            encode(
                &hs,
                &claims(),
                &EncodingKey::from_secret(&key("test-key.pub.pem")),
            )
            .unwrap(),
        ),
        ("oversized", "a".repeat(5000)),
    ]
}

async fn start() -> (TestEdge, tempfile::TempDir) {
    let keys = tempfile::tempdir().unwrap();
    let jwks = keys.path().join("jwks.json");
    std::fs::copy(fixtures().join("app-check/jwks.json"), &jwks).unwrap();
    let edge = TestEdge::start_with(|c| c.mobile.app_check_jwks_file = Some(jwks)).await;
    (edge, keys)
}

async fn token(edge: &TestEdge, mode: &str) -> (String, String) {
    edge.create_token(
        json!({"name": format!("attest {mode}"), "type": "client", "client_type": "mobile",
        "origins": [APP], "environment": "test",
        "attestation": {"mode": mode, "project_number": PROJECT, "app_ids": [FIREBASE_APP]}}),
    )
    .await
}

async fn send(edge: &TestEdge, secret: &str, app_check: Option<&str>) -> u16 {
    let mut req = edge
        .http
        .post(edge.ingest_url("/v1/traces"))
        .bearer_auth(secret)
        .header("content-type", "application/json")
        .header("x-client-origin", APP)
        .body(r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"a"}]}]}]}"#);
    if let Some(t) = app_check {
        req = req.header("x-firebase-appcheck", t);
    }
    req.send().await.unwrap().status().as_u16()
}

async fn metric(edge: &TestEdge, series: &str) -> f64 {
    edge.metric_value(series).await.unwrap_or(0.0)
}

#[tokio::test]
async fn enforce_refuses_and_report_counts_every_wrong_token() {
    let (edge, _keys) = start().await;
    let (enforce_id, enforce) = token(&edge, "enforce").await;
    let (report_id, report) = token(&edge, "report").await;
    let (off_id, off) = token(&edge, "off").await;

    let valid = mint(&claims());
    for secret in [&enforce, &report, &off] {
        assert_eq!(send(&edge, secret, Some(&valid)).await, 200);
    }
    let wrong = wrong_tokens();
    for (what, t) in &wrong {
        assert_eq!(send(&edge, &enforce, Some(t)).await, 401, "enforce: {what}");
        assert_eq!(send(&edge, &report, Some(t)).await, 200, "report: {what}");
        assert_eq!(send(&edge, &off, Some(t)).await, 200, "off: {what}");
    }
    assert_eq!(send(&edge, &enforce, None).await, 401, "enforce: missing");
    assert_eq!(send(&edge, &report, None).await, 200, "report: missing");
    assert_eq!(send(&edge, &off, None).await, 200, "off: missing");

    let n = wrong.len() as f64 + 1.0;
    let refused = format!(
        "ingest_rejected_total{{token_id=\"{enforce_id}\",endpoint=\"traces\",reason=\"attestation_failed\"}}"
    );
    assert_eq!(metric(&edge, &refused).await, n);
    let failures = |id: &str| format!("ingest_attestation_failures_total{{token_id=\"{id}\"}}");
    assert_eq!(metric(&edge, &failures(&report_id)).await, n);
    assert_eq!(
        edge.metric_value(&failures(&enforce_id)).await,
        Some(0.0),
        "enforce refuses, it does not count as report"
    );
    assert_eq!(edge.metric_value(&failures(&off_id)).await, Some(0.0));
    let items = |id: &str| format!("ingest_rum_items_total{{token_id=\"{id}\",signal=\"traces\"}}");
    assert_eq!(metric(&edge, &items(&enforce_id)).await, 1.0);
    assert_eq!(metric(&edge, &items(&report_id)).await, n + 1.0);
    edge.stop().await;
}

#[tokio::test]
async fn a_rotated_jwks_file_is_picked_up_while_running() {
    let (edge, keys) = start().await;
    let (_, enforce) = token(&edge, "enforce").await;
    let old = mint(&claims());
    let new = mint_with("other-key.pem", "test-key-2", &claims());
    assert_eq!(send(&edge, &enforce, Some(&old)).await, 200);
    assert_eq!(send(&edge, &enforce, Some(&new)).await, 401);
    // What the cron job does: write a temp file, rename it over the old one.
    let tmp = keys.path().join("jwks.json.tmp");
    std::fs::copy(fixtures().join("app-check/jwks-rotated.json"), &tmp).unwrap();
    std::fs::rename(&tmp, keys.path().join("jwks.json")).unwrap();
    let deadline = Instant::now() + Duration::from_secs(15);
    while send(&edge, &enforce, Some(&new)).await != 200 {
        assert!(
            Instant::now() < deadline,
            "the new key was not picked up within 15 s"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert_eq!(
        send(&edge, &enforce, Some(&old)).await,
        401,
        "the old key is gone"
    );
    edge.stop().await;
}
