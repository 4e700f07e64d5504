//! The console's HTTP contract, with reqwest: embedded files, sessions, CSRF.

use reqwest::header::{HeaderMap, HeaderValue};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};

use crate::common::TestEdge;

/// The `Set-Cookie` of a sign-in, and the `name=value` pair to send back.
async fn sign_in(edge: &TestEdge, key: &str) -> (StatusCode, Option<String>, Option<String>) {
    let r = edge
        .http
        .post(edge.ops_url("/api/v1/session"))
        .json(&json!({ "key": key }))
        .send()
        .await
        .expect("sign in");
    let set = r
        .headers()
        .get("set-cookie")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let pair = set
        .as_deref()
        .and_then(|s| s.split(';').next())
        .map(str::to_owned);
    (r.status(), set, pair)
}

/// A cookie-authorised call with the given extra headers; returns status and body.
async fn with_cookie(
    edge: &TestEdge,
    cookie: &str,
    method: Method,
    path: &str,
    headers: &[(&'static str, String)],
    body: Option<Value>,
) -> (u16, Value) {
    let mut h = HeaderMap::new();
    h.insert("cookie", HeaderValue::from_str(cookie).expect("cookie"));
    for (k, v) in headers {
        h.insert(*k, HeaderValue::from_str(v).expect("header"));
    }
    let mut req = edge.http.request(method, edge.ops_url(path)).headers(h);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let r = req.send().await.expect("call");
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn token_count(edge: &TestEdge) -> usize {
    let (_, v) = edge.admin(Method::GET, "/api/v1/tokens", None).await;
    v["tokens"].as_array().map_or(0, Vec::len)
}

#[tokio::test]
async fn console_http_contract() {
    let edge = TestEdge::start().await;

    // The page and its files: CSP, ETag, 304 on a matching If-None-Match.
    let r = edge
        .http
        .get(edge.ops_url("/"))
        .send()
        .await
        .expect("GET /");
    assert_eq!(r.status(), 200);
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap_or_default()
        .to_owned();
    assert!(csp.starts_with("default-src 'self'"), "{csp}");
    let etag = r.headers()["etag"].clone();
    let page = r.text().await.expect("page");
    assert!(
        page.contains(r#"<script type="module" src="/console/app.js">"#),
        "{page}"
    );
    let r = edge
        .http
        .get(edge.ops_url("/"))
        .header("if-none-match", etag.clone())
        .send()
        .await
        .expect("revalidate");
    assert_eq!(r.status(), 304);
    let js = edge
        .http
        .get(edge.ops_url("/console/app.js"))
        .send()
        .await
        .expect("app.js");
    assert_eq!(js.status(), 200);
    assert_eq!(
        js.headers()["content-type"],
        "text/javascript; charset=utf-8"
    );
    assert_eq!(js.headers()["cache-control"], "no-cache");
    let missing = edge
        .http
        .get(edge.ops_url("/console/x.js"))
        .send()
        .await
        .expect("404");
    assert_eq!(missing.status(), 404);

    // Sign-in: a wrong key is 401 and sets nothing; the right one sets the session cookie.
    let (status, set, _) = sign_in(&edge, "wrong-key-0123456789").await;
    assert_eq!(status, 401);
    assert!(set.is_none());
    let (status, set, pair) = sign_in(&edge, &edge.admin_key).await;
    assert_eq!(status, 200);
    let set = set.expect("Set-Cookie");
    for attr in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"] {
        assert!(set.contains(attr), "{set} lacks {attr}");
    }
    let cookie = pair.expect("cookie pair");
    let id = cookie.split_once('=').map(|(_, v)| v).unwrap_or_default();
    assert_eq!(id.len(), 64, "256 random bits as hex: {cookie}");

    // The page asks whether it is signed in.
    let (status, v) = with_cookie(&edge, &cookie, Method::GET, "/api/v1/session", &[], None).await;
    assert_eq!(status, 200);
    assert!(v["expires_at"].is_string(), "{v}");
    let anonymous = edge
        .http
        .get(edge.ops_url("/api/v1/session"))
        .send()
        .await
        .expect("GET");
    assert_eq!(anonymous.status(), 401);

    // Reads need only the cookie; no cookie (and no key) is 401.
    let (status, _) = with_cookie(&edge, &cookie, Method::GET, "/api/v1/tokens", &[], None).await;
    assert_eq!(status, 200);
    let (status, _) = with_cookie(
        &edge,
        "ingest_edge_session=00",
        Method::GET,
        "/api/v1/tokens",
        &[],
        None,
    )
    .await;
    assert_eq!(status, 401);

    // Changes with the cookie: refused without the header, without Origin, or from another
    // origin, and nothing changes.
    let own = format!("http://{}", edge.ops);
    let xrw = ("x-requested-with", "ingest-edge".to_owned());
    let body = json!({"name": "via console", "type": "remote_write"});
    let refused: [&[(&'static str, String)]; 4] = [
        &[("origin", own.clone())],
        std::slice::from_ref(&xrw),
        &[xrw.clone(), ("origin", "http://localhost:1".to_owned())],
        &[xrw.clone(), ("origin", "null".to_owned())],
    ];
    for headers in refused {
        let (status, v) = with_cookie(
            &edge,
            &cookie,
            Method::POST,
            "/api/v1/tokens",
            headers,
            Some(body.clone()),
        )
        .await;
        assert_eq!(status, 403, "{headers:?}: {v}");
        assert_eq!(v["error"]["code"], "csrf");
    }
    assert_eq!(
        token_count(&edge).await,
        0,
        "a refused change changed something"
    );
    let ok = [xrw.clone(), ("origin", own.clone())];
    let (status, v) = with_cookie(
        &edge,
        &cookie,
        Method::POST,
        "/api/v1/tokens",
        &ok,
        Some(body.clone()),
    )
    .await;
    assert_eq!(status, 201, "{v}");
    let tid = v["id"].as_str().expect("id").to_owned();
    let (status, _) = with_cookie(
        &edge,
        &cookie,
        Method::DELETE,
        &format!("/api/v1/tokens/{tid}"),
        std::slice::from_ref(&xrw),
        None,
    )
    .await;
    assert_eq!(status, 403, "revoke without Origin");
    let (_, t) = edge
        .admin(Method::GET, &format!("/api/v1/tokens/{tid}"), None)
        .await;
    assert_eq!(t["status"], "active");

    // The bearer key works as before: no CSRF header needed.
    let (status, _) = edge
        .admin(Method::POST, "/api/v1/tokens", Some(body.clone()))
        .await;
    assert_eq!(status, 201);
    let wrong = edge
        .http
        .get(edge.ops_url("/api/v1/tokens"))
        .bearer_auth("wrong-key-0123456789")
        .header("cookie", &cookie)
        .send()
        .await
        .expect("wrong bearer");
    assert_eq!(
        wrong.status(),
        401,
        "a wrong key is not rescued by the cookie"
    );

    // Origin validation is the create path's: same details, nothing created.
    let before = token_count(&edge).await;
    let origins = json!(["https://ok.example.com", "example.com", "https://example.*"]);
    let (status, v) = edge
        .admin(
            Method::POST,
            "/api/v1/origins/validate",
            Some(json!({"origins": origins})),
        )
        .await;
    assert_eq!(status, 200);
    let details = v["details"].as_array().expect("details").clone();
    assert_eq!(details.len(), 2, "{v}");
    let (status, c) = edge
        .admin(
            Method::POST,
            "/api/v1/tokens",
            Some(json!({"name": "x", "type": "client", "origins": origins})),
        )
        .await;
    assert_eq!(status, 400);
    assert_eq!(c["error"]["details"], Value::Array(details));
    let (_, v) = edge
        .admin(
            Method::POST,
            "/api/v1/origins/validate",
            Some(json!({"origins": []})),
        )
        .await;
    assert_eq!(
        v["details"],
        json!(["a web client token needs at least one origin"])
    );
    assert_eq!(token_count(&edge).await, before);

    // Sign-out needs the CSRF check too, then ends the session on the server.
    let (status, _) = with_cookie(
        &edge,
        &cookie,
        Method::DELETE,
        "/api/v1/session",
        std::slice::from_ref(&xrw),
        None,
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) =
        with_cookie(&edge, &cookie, Method::DELETE, "/api/v1/session", &ok, None).await;
    assert_eq!(status, 204);
    let (status, _) = with_cookie(&edge, &cookie, Method::GET, "/api/v1/tokens", &[], None).await;
    assert_eq!(status, 401, "the old cookie after sign-out");
    edge.stop().await;
}
