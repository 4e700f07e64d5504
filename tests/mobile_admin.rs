//! Mobile client tokens (SPEC §14) in the control plane, against a real edge on 127.0.0.1:0:
//! app identities in the admin API (one detail per bad entry, PATCH by client type,
//! attestation settings) and in the CLI (`token create --client-type mobile --origin ...`).

mod common;

use common::TestEdge;
use reqwest::Method;
use serde_json::{json, Value};

const APP: &str = "android://com.example.shop";

async fn mobile_token(edge: &TestEdge, origins: &[&str]) -> (String, String) {
    edge.create_token(
        json!({"name": "Shop app", "type": "client", "client_type": "mobile",
                             "origins": origins, "environment": "production"}),
    )
    .await
}

#[tokio::test]
async fn admin_api_takes_app_identities_for_mobile_tokens_only() {
    let edge = TestEdge::start().await;
    let (id, _) = mobile_token(
        &edge,
        &[APP, "ios://com.Example.Shop", "android://com.example.*"],
    )
    .await;
    let (s, v) = edge
        .admin(Method::GET, &format!("/api/v1/tokens/{id}"), None)
        .await;
    assert_eq!(s, 200);
    assert_eq!(v["client_type"], "mobile");
    assert_eq!(
        v["origins"],
        json!([APP, "ios://com.example.shop", "android://com.example.*"])
    );
    let info = format!(
        "ingest_token_info{{token_id=\"{id}\",name=\"Shop app\",type=\"client\",client_type=\"mobile\",environment=\"production\"}}"
    );
    assert_eq!(edge.metric_value(&info).await, Some(1.0));

    // One detail per bad entry, in order, each naming the entry and the reason.
    let (s, v) = edge
        .admin(
            Method::POST,
            "/api/v1/tokens",
            Some(json!({"name": "x", "type": "client", "client_type": "mobile",
                        "origins": [APP, "android://shop", "https://shop.example.com", "ios://com.ex_ample"]})),
        )
        .await;
    assert_eq!(s, 400, "{v}");
    let details: Vec<String> = v["error"]["details"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d.as_str().unwrap().to_string())
        .collect();
    assert_eq!(details.len(), 3, "{details:?}");
    assert!(
        details[0].contains("android://shop") && details[0].contains("two dot-separated labels")
    );
    assert!(
        details[1].contains("https://shop.example.com") && details[1].contains("not web origins")
    );
    assert!(
        details[2].contains("ios://com.ex_ample") && details[2].contains("letters, digits and '-'")
    );

    // A web token refuses app identities.
    let (s, v) = edge
        .admin(
            Method::POST,
            "/api/v1/tokens",
            Some(json!({"name": "x", "type": "client", "origins": ["https://a.example.com", APP]})),
        )
        .await;
    assert_eq!(s, 400);
    assert!(
        v["error"]["details"][0]
            .as_str()
            .unwrap()
            .contains("needs a mobile token"),
        "{v}"
    );

    // PATCH re-validates origins against the token's client type; switching type needs origins.
    let path = format!("/api/v1/tokens/{id}");
    let patch = |body: Value| edge.admin(Method::PATCH, &path, Some(body));
    assert_eq!(
        patch(json!({"origins": ["https://a.example.com"]})).await.0,
        400
    );
    let (s, v) = patch(json!({"origins": ["ios://com.example.widget"]})).await;
    assert_eq!(
        (s, v["origins"].clone()),
        (200, json!(["ios://com.example.widget"]))
    );
    assert_eq!(patch(json!({"client_type": "web"})).await.0, 400);
    let (s, v) = patch(json!({"client_type": "web", "origins": ["https://a.example.com"]})).await;
    assert_eq!((s, v["client_type"].clone()), (200, json!("web")), "{v}");
    // Attestation is for mobile tokens only.
    let att = json!({"mode": "report", "project_number": "123", "app_ids": ["1:123:android:ab"]});
    assert_eq!(patch(json!({"attestation": att})).await.0, 400);
    let (s, v) =
        patch(json!({"client_type": "mobile", "origins": [APP], "attestation": att})).await;
    assert_eq!(s, 200, "{v}");
    assert_eq!(v["attestation"]["mode"], "report");
    let (s, v) = patch(json!({"attestation": {"mode": "enforce", "project_number": "x1"}})).await;
    assert_eq!(s, 400);
    assert!(
        v["error"]["details"][0]
            .as_str()
            .unwrap()
            .contains("project_number"),
        "{v}"
    );
    let (s, v) = patch(json!({"attestation": {"mode": "off"}})).await;
    assert_eq!((s, v["attestation"].clone()), (200, Value::Null));
    edge.stop().await;
}

/// The CLI wraps the same API: `token create --client-type mobile --origin android://...`,
/// a bad app identity exits non-zero with its reason, `token update` sets attestation.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_creates_and_updates_mobile_tokens() {
    let edge = TestEdge::start().await;
    let cli = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_ingest-edge"))
            .args(["token"])
            .args(args)
            .args([
                "--admin-url",
                &edge.ops_url(""),
                "--admin-key",
                &edge.admin_key,
            ])
            .env_remove("INGEST_EDGE_ADMIN_URL")
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (ok, out, err) = tokio::task::block_in_place(|| {
        cli(&[
            "create",
            "--type",
            "client",
            "--client-type",
            "mobile",
            "--name",
            "Shop app",
            "--origin",
            APP,
            "--json",
        ])
    });
    assert!(ok, "{out}{err}");
    let created: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(created["client_type"], "mobile");
    assert_eq!(created["origins"], json!([APP]));
    let id = created["id"].as_str().unwrap().to_string();

    let (ok, _, err) = tokio::task::block_in_place(|| {
        cli(&[
            "create",
            "--type",
            "client",
            "--client-type",
            "mobile",
            "--name",
            "x",
            "--origin",
            "android://shop",
        ])
    });
    assert!(!ok);
    assert!(
        err.contains("android://shop") && err.contains("two dot-separated labels"),
        "{err}"
    );

    let (ok, out, err) = tokio::task::block_in_place(|| {
        cli(&[
            "update",
            &id,
            "--attestation",
            "enforce",
            "--project-number",
            "123456789012",
            "--app-id",
            "1:123456789012:android:ab12",
            "--json",
        ])
    });
    assert!(ok, "{out}{err}");
    let updated: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(updated["attestation"]["mode"], "enforce");
    assert_eq!(
        updated["attestation"]["app_ids"],
        json!(["1:123456789012:android:ab12"])
    );
    edge.stop().await;
}

/// The console's live check (`POST /api/v1/origins/validate`) applies the client type's rules.
#[tokio::test]
async fn origin_validation_follows_the_client_type() {
    let edge = TestEdge::start().await;
    let validate = |body: Value| edge.admin(Method::POST, "/api/v1/origins/validate", Some(body));
    let (s, v) =
        validate(json!({"origins": [APP, "ios://com.example.*"], "client_type": "mobile"})).await;
    assert_eq!((s, v["details"].clone()), (200, json!([])));
    let (_, v) =
        validate(json!({"origins": [APP, "android://shop"], "client_type": "mobile"})).await;
    let details = v["details"].as_array().unwrap();
    assert_eq!(details.len(), 1, "{v}");
    assert!(details[0].as_str().unwrap().contains("android://shop"));
    let (_, v) = validate(json!({"origins": [APP]})).await;
    assert!(
        v["details"][0]
            .as_str()
            .unwrap()
            .contains("needs a mobile token"),
        "{v}"
    );
    let (_, v) =
        validate(json!({"origins": ["https://a.example.com"], "client_type": "mobile"})).await;
    assert!(
        v["details"][0]
            .as_str()
            .unwrap()
            .contains("not web origins"),
        "{v}"
    );
    edge.stop().await;
}
