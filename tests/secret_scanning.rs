//! `POST /api/v1/secret-scanning/github` (SPEC §12) against a real edge on 127.0.0.1: reports
//! signed like GitHub signs them (ECDSA P-256 / SHA-256, DER, base64) with a key pair made
//! here, the keys file in GitHub's format.

mod common;
mod rw_support;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use base64::Engine as _;
use common::TestEdge;
use ingest_edge::config::LeakedSecretAction;
use ingest_edge::secret::{TokenSecret, TokenType};
use p256::ecdsa::signature::Signer as _;
use p256::ecdsa::{Signature, SigningKey};
use p256::pkcs8::{EncodePublicKey as _, LineEnding};
use reqwest::Method;
use serde_json::{json, Value};
use sha2::{Digest as _, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const KEY_ID: &str = "test-key-1";

/// A signing key, and the keys file that publishes its public half.
struct Github {
    key: SigningKey,
    dir: tempfile::TempDir,
}

impl Github {
    fn new() -> Github {
        let g = Github {
            key: SigningKey::random(&mut rand::rngs::OsRng),
            dir: tempfile::tempdir().unwrap(),
        };
        g.publish(&[(KEY_ID, &g.key)]);
        g
    }

    fn keys_file(&self) -> PathBuf {
        self.dir.path().join("github-keys.json")
    }

    /// Writes GitHub's `public_keys` JSON for these keys.
    fn publish(&self, keys: &[(&str, &SigningKey)]) {
        let public_keys: Vec<Value> = keys
            .iter()
            .map(|(id, k)| {
                let pem = k.verifying_key().to_public_key_pem(LineEnding::LF).unwrap();
                json!({"key_identifier": id, "key": pem, "is_current": true})
            })
            .collect();
        let text = serde_json::to_vec(&json!({ "public_keys": public_keys })).unwrap();
        // Written aside and renamed, as a refresh job should, so a reader never sees half.
        let tmp = self.dir.path().join("github-keys.json.tmp");
        std::fs::write(&tmp, text).unwrap();
        std::fs::rename(tmp, self.keys_file()).unwrap();
    }

    async fn start_edge(&self, action: LeakedSecretAction) -> TestEdge {
        let path = self.keys_file();
        TestEdge::start_with(move |c| {
            c.abuse.secret_scanning_keys_file = path.display().to_string();
            c.abuse.leaked_secret_action = action;
        })
        .await
    }
}

fn sign(key: &SigningKey, body: &[u8]) -> String {
    let sig: Signature = key.sign(body);
    base64::engine::general_purpose::STANDARD.encode(sig.to_der().as_bytes())
}

fn report_body(tokens: &[&str]) -> Vec<u8> {
    let reports: Vec<Value> = tokens
        .iter()
        .map(|t| {
            json!({"token": t, "type": "ingest_edge_remote_write",
                        "url": "https://github.com/octocat/hello/blob/main/prometheus.yml",
                        "source": "content"})
        })
        .collect();
    serde_json::to_vec(&reports).unwrap()
}

/// POSTs `body` with the given key id and signature; returns status and JSON answer.
async fn report(
    edge: &TestEdge,
    key_id: Option<&str>,
    signature: Option<&str>,
    body: Vec<u8>,
) -> (u16, Value) {
    let mut req = edge
        .http
        .post(edge.ingest_url("/api/v1/secret-scanning/github"))
        .header("content-type", "application/json")
        .body(body);
    if let Some(k) = key_id {
        req = req.header("Github-Public-Key-Identifier", k);
    }
    if let Some(s) = signature {
        req = req.header("Github-Public-Key-Signature", s);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn signed_report(edge: &TestEdge, github: &Github, tokens: &[&str]) -> (u16, Value) {
    let body = report_body(tokens);
    let sig = sign(&github.key, &body);
    report(edge, Some(KEY_ID), Some(&sig), body).await
}

fn sha256_hex(s: &str) -> String {
    Sha256::digest(s.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn remote_write(edge: &TestEdge, secret: &str) -> u16 {
    edge.http
        .post(edge.ingest_url("/api/v1/write"))
        .bearer_auth(secret)
        .header("content-type", rw_support::CT_V1)
        .header("content-encoding", "snappy")
        .header("x-prometheus-remote-write-version", "0.1.0")
        .body(rw_support::v1_n_samples(2))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Audit events about `token_id` with this action.
async fn audited(edge: &TestEdge, token_id: &str, action: &str) -> Vec<Value> {
    let (status, v) = edge.admin(Method::GET, "/api/v1/audit", None).await;
    assert_eq!(status, 200);
    v["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["token_id"] == token_id && e["action"] == action)
        .cloned()
        .collect()
}

#[tokio::test]
async fn a_leaked_remote_write_secret_is_revoked_at_once_and_a_replay_changes_nothing() {
    let github = Github::new();
    let edge = github.start_edge(LeakedSecretAction::Revoke).await;
    let (id, secret) = edge.remote_write_token().await;
    assert_eq!(remote_write(&edge, &secret).await, 204);
    let unknown = TokenSecret::generate(TokenType::RemoteWrite);
    let tokens = [
        secret.as_str(),
        unknown.expose(),
        "iew_notawellformedsecret",
        "ghp_somebodyelses",
    ];

    let started = Instant::now();
    let (status, answer) = signed_report(&edge, &github, &tokens).await;
    assert_eq!(status, 200, "{answer}");
    let expected = json!([{"token_hash": sha256_hex(&secret),
                           "token_type": "ingest_edge_remote_write", "label": "true_positive"}]);
    assert_eq!(answer, expected, "only our known secret is answered");
    assert_eq!(remote_write(&edge, &secret).await, 401, "revoked at once");
    let revoked_in = started.elapsed();

    let revokes = audited(&edge, &id, "revoke").await;
    assert_eq!(revokes.len(), 1, "{revokes:?}");
    assert_eq!(revokes[0]["who"], "secret-scanning:github");
    let (_, record) = edge
        .admin(Method::GET, &format!("/api/v1/tokens/{id}"), None)
        .await;
    assert_eq!(record["status"], "revoked", "{record}");

    // GitHub sends the same report again.
    let (status, again) = signed_report(&edge, &github, &tokens).await;
    assert_eq!(status, 200);
    assert_eq!(again, expected);
    assert_eq!(audited(&edge, &id, "revoke").await.len(), 1);

    let m = edge.metrics().await;
    let value = |s: &str| common::series_value(&m, s);
    assert_eq!(
        value("ingest_secret_scanning_reports_total{label=\"true_positive\"}"),
        Some(2.0)
    );
    assert_eq!(
        value("ingest_secret_scanning_reports_total{label=\"unknown\"}"),
        Some(6.0)
    );
    assert!(!m.contains(&secret[4..]), "no secret in /metrics");
    println!("report to revoked remote_write: {revoked_in:?}");
    edge.stop().await;
}

#[tokio::test]
async fn a_client_secret_is_a_false_positive_and_keeps_working() {
    let github = Github::new();
    let edge = github.start_edge(LeakedSecretAction::Revoke).await;
    let (id, secret) = edge.client_token(&["https://app.example.com"]).await;
    let (status, answer) = signed_report(&edge, &github, &[&secret]).await;
    assert_eq!(status, 200);
    assert_eq!(
        answer,
        json!([{"token_hash": sha256_hex(&secret), "token_type": "ingest_edge_client",
                "label": "false_positive"}])
    );
    let rum = edge
        .http
        .post(edge.ingest_url("/v1/traces"))
        .bearer_auth(&secret)
        .header("origin", "https://app.example.com")
        .header("content-type", "application/json")
        .body(r#"{"resourceSpans":[]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(rum.status(), 200, "a public client secret is not revoked");
    assert!(audited(&edge, &id, "revoke").await.is_empty());
    edge.stop().await;
}

#[tokio::test]
async fn a_bad_signature_or_an_unknown_key_is_401_and_revokes_nothing() {
    let github = Github::new();
    let edge = github.start_edge(LeakedSecretAction::Revoke).await;
    let (id, secret) = edge.remote_write_token().await;
    let body = report_body(&[&secret]);
    let good = sign(&github.key, &body);

    let forger = SigningKey::random(&mut rand::rngs::OsRng);
    let forged = sign(&forger, &body);
    let mut tampered = report_body(&[&secret]);
    tampered.extend_from_slice(b" ");
    for (what, key_id, sig, body) in [
        (
            "another key's signature",
            Some(KEY_ID),
            Some(forged.as_str()),
            body.clone(),
        ),
        (
            "a changed body",
            Some(KEY_ID),
            Some(good.as_str()),
            tampered,
        ),
        (
            "an unknown key id",
            Some("nope"),
            Some(good.as_str()),
            body.clone(),
        ),
        ("no signature", Some(KEY_ID), None, body.clone()),
        ("no key id", None, Some(good.as_str()), body.clone()),
        (
            "a signature that is not DER",
            Some(KEY_ID),
            Some("AAAA"),
            body.clone(),
        ),
    ] {
        let (status, _) = report(&edge, key_id, sig, body).await;
        assert_eq!(status, 401, "{what}");
    }
    assert_eq!(remote_write(&edge, &secret).await, 204, "nothing revoked");
    assert!(audited(&edge, &id, "revoke").await.is_empty());

    // GitHub rotates its key: the refreshed file is read on the next report, without restart.
    github.publish(&[(KEY_ID, &github.key), ("rotated", &forger)]);
    let (status, answer) = report(&edge, Some("rotated"), Some(&forged), body).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer[0]["label"], "true_positive");
    assert_eq!(remote_write(&edge, &secret).await, 401);
    edge.stop().await;
}

#[tokio::test]
async fn flag_only_keeps_the_token_working_and_audits_once() {
    let github = Github::new();
    let edge = github.start_edge(LeakedSecretAction::Flag).await;
    let (id, secret) = edge.remote_write_token().await;
    for _ in 0..2 {
        let (status, answer) = signed_report(&edge, &github, &[&secret]).await;
        assert_eq!(status, 200);
        assert_eq!(answer[0]["label"], "true_positive");
        assert_eq!(answer[0]["token_hash"], sha256_hex(&secret));
    }
    assert_eq!(
        remote_write(&edge, &secret).await,
        204,
        "flagged, not revoked"
    );
    assert!(audited(&edge, &id, "revoke").await.is_empty());
    let flags = audited(&edge, &id, "abuse.leaked_secret").await;
    assert_eq!(flags.len(), 1, "{flags:?}");
    assert_eq!(flags[0]["who"], "secret-scanning:github");
    edge.stop().await;
}

#[tokio::test]
async fn without_a_keys_file_the_endpoint_is_404() {
    let edge = TestEdge::start().await;
    let body = report_body(&["iew_x"]);
    let (status, _) = report(&edge, Some(KEY_ID), Some("AAAA"), body).await;
    assert_eq!(status, 404);
    edge.stop().await;
}

/// Bodies the receiver answered 200, as JSON.
async fn receiver() -> (String, Arc<Mutex<Vec<Value>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let got: Arc<Mutex<Vec<Value>>> = Arc::default();
    let sink = got.clone();
    tokio::spawn(async move {
        while let Ok((mut conn, _)) = listener.accept().await {
            let mut buf = Vec::new();
            let mut chunk = [0u8; 4096];
            let body = loop {
                let Ok(n) = conn.read(&mut chunk).await else {
                    break None;
                };
                if n == 0 {
                    break None;
                }
                buf.extend_from_slice(&chunk[..n]);
                let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") else {
                    continue;
                };
                let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                if buf.len() >= end + 4 + len {
                    break Some(buf[end + 4..end + 4 + len].to_vec());
                }
            };
            if let Some(body) = body {
                sink.lock()
                    .unwrap()
                    .push(serde_json::from_slice(&body).unwrap());
            }
            let _ = conn
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n")
                .await;
        }
    });
    (url, got)
}

#[tokio::test]
async fn a_leak_reaches_the_webhook_once() {
    let github = Github::new();
    let (url, got) = receiver().await;
    let path = github.keys_file();
    let edge = TestEdge::start_with(move |c| {
        c.abuse.secret_scanning_keys_file = path.display().to_string();
        c.abuse.webhook_url = url;
    })
    .await;
    let (id, secret) = edge.remote_write_token().await;
    assert_eq!(signed_report(&edge, &github, &[&secret]).await.0, 200);
    let deadline = Instant::now() + Duration::from_secs(10);
    while got.lock().unwrap().is_empty() {
        assert!(Instant::now() < deadline, "no webhook delivery");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    assert_eq!(signed_report(&edge, &github, &[&secret]).await.0, 200);
    // The replay would be delivered well within this if it were published.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let events = got.lock().unwrap().clone();
    assert_eq!(events.len(), 1, "{events:?}");
    let e = &events[0];
    assert_eq!(e["event"], "secret.leaked");
    assert_eq!(e["signal"], "leaked_secret");
    assert_eq!(e["action"], "revoked");
    assert_eq!(e["token_id"], id.as_str());
    assert_eq!(e["name"], "test rw");
    assert_eq!(e["environment"], "test");
    assert!(e["id"].as_str().unwrap().starts_with("ev_"));
    let m = edge.metrics().await;
    assert_eq!(
        common::series_value(&m, "ingest_webhook_deliveries_total{result=\"ok\"}"),
        Some(1.0)
    );
    edge.stop().await;
}
