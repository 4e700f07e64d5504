//! The admin API and token lifecycle against a real edge: create, list, show, patch, rotate
//! with grace, revoke, audit, persistence across restarts, concurrent writers.

mod common;

use common::TestEdge;
use reqwest::Method;
use serde_json::json;

const ORIGIN: &str = "http://localhost:3000";
const SPANS: &str = r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"x","kind":1,"startTimeUnixNano":"1","endTimeUnixNano":"2"}]}]}]}"#;

async fn send_rum(edge: &TestEdge, secret: &str, origin: &str) -> u16 {
    edge.http
        .post(edge.ingest_url("/v1/traces"))
        .bearer_auth(secret)
        .header("origin", origin)
        .header("content-type", "application/json")
        .body(SPANS)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn admin_key_is_required() {
    let edge = TestEdge::start().await;
    for key in [None, Some("wrong-key-wrong-key")] {
        let mut req = edge.http.get(edge.ops_url("/api/v1/tokens"));
        if let Some(k) = key {
            req = req.bearer_auth(k);
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 401);
        let v: serde_json::Value = r.json().await.unwrap();
        assert_eq!(v["error"]["code"], "unauthorized");
    }
}

#[tokio::test]
async fn create_list_show_never_return_the_secret_again() {
    let edge = TestEdge::start().await;
    let (id, secret) = edge.client_token(&[ORIGIN, "https://*.example.com"]).await;
    let (s, list) = edge.admin(Method::GET, "/api/v1/tokens", None).await;
    assert_eq!(s, 200);
    assert_eq!(list["tokens"][0]["id"], id);
    assert_eq!(
        list["tokens"][0]["origins"],
        json!([ORIGIN, "https://*.example.com"])
    );
    let (s, one) = edge
        .admin(Method::GET, &format!("/api/v1/tokens/{id}"), None)
        .await;
    assert_eq!(s, 200);
    assert_eq!(one["status"], "active");
    assert_eq!(one["type"], "client");
    for body in [list.to_string(), one.to_string()] {
        assert!(!body.contains(&secret));
        assert!(!body.contains("\"token\""));
    }
    let store = std::fs::read_to_string(edge.data_dir.join("tokens.json")).unwrap();
    assert!(!store.contains(&secret), "secret in the store file");
    let (s, _) = edge
        .admin(Method::GET, "/api/v1/tokens/tk_nope", None)
        .await;
    assert_eq!(s, 404);
}

#[tokio::test]
async fn bad_origins_are_refused_with_one_detail_per_entry() {
    let edge = TestEdge::start().await;
    let (s, v) = edge
        .admin(
            Method::POST,
            "/api/v1/tokens",
            Some(json!({"name": "x", "type": "client", "origins": ["example.com", "https://ok.example.com", "https://example.*", "*", "null", "https://a*.x.com"]})),
        )
        .await;
    assert_eq!(s, 400);
    let details = v["error"]["details"].as_array().unwrap();
    assert_eq!(details.len(), 5, "{v}");
    assert!(details[0].as_str().unwrap().contains("example.com"));
    let (s, _) = edge
        .admin(
            Method::POST,
            "/api/v1/tokens",
            Some(json!({"name": "x", "type": "client", "origins": []})),
        )
        .await;
    assert_eq!(s, 400);
    let (s, _) = edge
        .admin(
            Method::POST,
            "/api/v1/tokens",
            Some(json!({"name": "x", "type": "bogus"})),
        )
        .await;
    assert_eq!(s, 400);
}

#[tokio::test]
async fn patch_takes_effect_for_the_very_next_request() {
    let edge = TestEdge::start().await;
    let (id, secret) = edge.client_token(&[ORIGIN]).await;
    assert_eq!(send_rum(&edge, &secret, ORIGIN).await, 200);
    assert_eq!(
        send_rum(&edge, &secret, "https://new.example.com").await,
        403
    );
    let (s, v) = edge
        .admin(
            Method::PATCH,
            &format!("/api/v1/tokens/{id}"),
            Some(json!({"origins": ["https://*.example.com"], "name": "renamed"})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["name"], "renamed");
    assert_eq!(
        send_rum(&edge, &secret, "https://new.example.com").await,
        200
    );
    assert_eq!(send_rum(&edge, &secret, ORIGIN).await, 403);
    let (s, v) = edge
        .admin(
            Method::PATCH,
            &format!("/api/v1/tokens/{id}"),
            Some(json!({"origins": ["bad"]})),
        )
        .await;
    assert_eq!(s, 400, "{v}");
    let m = edge.metrics().await;
    assert!(m.contains(&format!(
        "ingest_token_info{{token_id=\"{id}\",name=\"renamed\""
    )));
}

#[tokio::test]
async fn rotation_keeps_both_secrets_during_grace_then_only_the_new_one() {
    let edge = TestEdge::start().await;
    let (id, old) = edge.client_token(&[ORIGIN]).await;
    let (s, v) = edge
        .admin(
            Method::POST,
            &format!("/api/v1/tokens/{id}/rotate"),
            Some(json!({"grace_period_seconds": 1})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    let new = v["token"].as_str().unwrap().to_string();
    assert_ne!(new, old);
    assert_eq!(v["id"], id);
    assert_eq!(send_rum(&edge, &old, ORIGIN).await, 200);
    assert_eq!(send_rum(&edge, &new, ORIGIN).await, 200);
    // Grace is whole seconds: two seconds later the old secret is past it.
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    assert_eq!(send_rum(&edge, &old, ORIGIN).await, 401);
    assert_eq!(send_rum(&edge, &new, ORIGIN).await, 200);
    let m = edge.metrics().await;
    let v = |s: String| common::series_value(&m, &s);
    assert_eq!(
        v(format!(
            "ingest_rum_items_total{{token_id=\"{id}\",signal=\"traces\"}}"
        )),
        Some(3.0)
    );
    assert_eq!(v(format!("ingest_rejected_total{{token_id=\"{id}\",endpoint=\"traces\",reason=\"revoked_token\"}}")), Some(1.0));
    // Immediate rotation and the cap.
    let (s, v) = edge
        .admin(
            Method::POST,
            &format!("/api/v1/tokens/{id}/rotate"),
            Some(json!({"grace_period_seconds": 0})),
        )
        .await;
    assert_eq!(s, 200);
    assert_eq!(send_rum(&edge, &new, ORIGIN).await, 401);
    assert_eq!(
        send_rum(&edge, v["token"].as_str().unwrap(), ORIGIN).await,
        200
    );
    let (s, _) = edge
        .admin(
            Method::POST,
            &format!("/api/v1/tokens/{id}/rotate"),
            Some(json!({"grace_period_seconds": 31 * 86400})),
        )
        .await;
    assert_eq!(s, 400);
    // Default grace: an empty body.
    let (s, v) = edge
        .admin(Method::POST, &format!("/api/v1/tokens/{id}/rotate"), None)
        .await;
    assert_eq!(s, 200, "{v}");
    assert!(v["previous_secret_valid_until"].is_string());
}

#[tokio::test]
async fn tokens_survive_a_restart_and_revoked_stays_revoked() {
    let dir = tempfile::tempdir().unwrap();
    let edge = TestEdge::start_in(dir.path(), |_| {}).await;
    let (keep_id, keep) = edge.client_token(&[ORIGIN]).await;
    let (gone_id, gone) = edge.client_token(&[ORIGIN]).await;
    let (s, _) = edge
        .admin(Method::DELETE, &format!("/api/v1/tokens/{gone_id}"), None)
        .await;
    assert_eq!(s, 200);
    assert_eq!(send_rum(&edge, &gone, ORIGIN).await, 401);
    edge.stop().await;

    let edge = TestEdge::start_in(dir.path(), |_| {}).await;
    assert_eq!(send_rum(&edge, &keep, ORIGIN).await, 200);
    assert_eq!(send_rum(&edge, &gone, ORIGIN).await, 401);
    let (_, v) = edge
        .admin(Method::GET, &format!("/api/v1/tokens/{gone_id}"), None)
        .await;
    assert_eq!(v["status"], "revoked");
    let (_, v) = edge
        .admin(Method::GET, &format!("/api/v1/tokens/{keep_id}"), None)
        .await;
    assert_eq!(v["status"], "active");
    let (_, audit) = edge.admin(Method::GET, "/api/v1/audit", None).await;
    let actions: Vec<_> = audit["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(actions, ["create", "create", "revoke"]);
    assert!(audit["events"][0]["who"]
        .as_str()
        .unwrap()
        .starts_with("key:"));
    let log = std::fs::read_to_string(dir.path().join("audit.log")).unwrap();
    assert!(!log.contains(&keep) && !log.contains(&gone));
}

#[tokio::test]
async fn concurrent_admin_writes_lose_nothing() {
    let edge = std::sync::Arc::new(TestEdge::start().await);
    let (id, _) = edge.client_token(&[ORIGIN]).await;
    let mut tasks = vec![];
    for i in 0..20 {
        let edge = edge.clone();
        let id = id.clone();
        tasks.push(tokio::spawn(async move {
            if i % 2 == 0 {
                edge.create_token(json!({"name": format!("t{i}"), "type": "remote_write"}))
                    .await;
            } else {
                let (s, _) = edge
                    .admin(
                        Method::PATCH,
                        &format!("/api/v1/tokens/{id}"),
                        Some(json!({"environment": format!("e{i}")})),
                    )
                    .await;
                assert_eq!(s, 200);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let (_, list) = edge.admin(Method::GET, "/api/v1/tokens", None).await;
    assert_eq!(list["tokens"].as_array().unwrap().len(), 11);
    let store: serde_json::Value =
        serde_json::from_slice(&std::fs::read(edge.data_dir.join("tokens.json")).unwrap()).unwrap();
    assert_eq!(store["tokens"].as_array().unwrap().len(), 11);
    let (_, audit) = edge
        .admin(Method::GET, "/api/v1/audit?limit=1000", None)
        .await;
    assert_eq!(audit["events"].as_array().unwrap().len(), 21);
}
