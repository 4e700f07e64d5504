//! HTTPS upstreams (SPEC §15) against a local TLS receiver with a throwaway CA: the edge
//! forwards RUM and remote_write over https when `pipeline.upstream_ca_file` trusts the CA,
//! sends the configured bearer or Basic credentials to both upstreams, and without the CA
//! file keeps retrying (nothing dead-lettered, nothing lost) until an edge that trusts it
//! delivers the same record.

mod common;
#[path = "pipeline_support/tls.rs"]
mod tls;
#[path = "pipeline_support/upstreams.rs"]
mod upstreams;

use std::path::Path;
use std::time::Duration;

use common::TestEdge;
use ingest_edge::Config;
use tls::TestCa;
use upstreams::{eventually, now_ms, otlp_traces, rw_request, OtlpReceiver};

const ORIGIN: &str = "http://localhost:3000";
const WAIT: Duration = Duration::from_secs(20);

/// Both upstreams on `receiver`, quick retries.
fn upstreams_on(c: &mut Config, receiver: &OtlpReceiver) {
    c.pipeline.otlp_upstream = Some(receiver.base_url());
    c.pipeline.remote_write_upstream = Some(format!("{}/api/v1/write", receiver.base_url()));
    c.pipeline.retry_max_backoff = Duration::from_millis(200);
}

/// One RUM export (span id `id`) and one remote_write request, both accepted.
async fn send_both(edge: &TestEdge, id: u64) {
    let (_, client) = edge.client_token(&[ORIGIN]).await;
    let r = edge
        .http
        .post(edge.ingest_url("/v1/traces"))
        .bearer_auth(&client)
        .header("origin", ORIGIN)
        .header("content-type", "application/json")
        .body(otlp_traces(id))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let (_, rw) = edge.remote_write_token().await;
    let (body, _) = rw_request("https_test", id, 2, 3, now_ms());
    let r = edge
        .http
        .post(edge.ingest_url("/api/v1/write"))
        .bearer_auth(&rw)
        .header("content-type", "application/x-protobuf")
        .header("content-encoding", "snappy")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
}

/// Waits until the receiver got both requests; returns their `Authorization` headers.
async fn authorizations(receiver: &OtlpReceiver) -> Vec<Option<String>> {
    let both = || {
        let got = receiver.got.lock().unwrap();
        ["/v1/traces", "/api/v1/write"]
            .iter()
            .all(|p| got.iter().any(|g| g.path == *p))
    };
    assert!(
        eventually(WAIT, || async { both() }).await,
        "not delivered over https: {:?}",
        receiver.got.lock().unwrap()
    );
    let got = receiver.got.lock().unwrap();
    got.iter().map(|g| g.authorization.clone()).collect()
}

fn write_secret(dir: &Path, name: &str, secret: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    // The trailing newline an editor leaves is not part of the secret.
    std::fs::write(&path, format!("{secret}\n")).unwrap();
    path
}

#[tokio::test]
async fn bearer_token_reaches_both_https_upstreams() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(dir.path());
    let receiver = OtlpReceiver::start_tls(Duration::ZERO, ca.server.clone()).await;
    let token = write_secret(dir.path(), "token", "upstream-bearer-7f3a");
    let edge = TestEdge::start_with(|c| {
        upstreams_on(c, &receiver);
        c.pipeline.upstream_ca_file = Some(ca.ca_file.clone());
        c.pipeline.upstream_bearer_token_file = Some(token);
    })
    .await;
    send_both(&edge, 1).await;
    let auth = authorizations(&receiver).await;
    assert!(!auth.is_empty());
    for a in auth {
        assert_eq!(a.as_deref(), Some("Bearer upstream-bearer-7f3a"));
    }
    assert!(receiver.ids("/v1/traces", "kill-span-").contains(&1));
}

#[tokio::test]
async fn basic_credentials_reach_both_https_upstreams() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(dir.path());
    let receiver = OtlpReceiver::start_tls(Duration::ZERO, ca.server.clone()).await;
    let password = write_secret(dir.path(), "password", "pa55:word");
    let edge = TestEdge::start_with(|c| {
        upstreams_on(c, &receiver);
        c.pipeline.upstream_ca_file = Some(ca.ca_file.clone());
        c.pipeline.upstream_username = Some("edge-1".into());
        c.pipeline.upstream_password_file = Some(password);
    })
    .await;
    send_both(&edge, 2).await;
    for a in authorizations(&receiver).await {
        // base64("edge-1:pa55:word")
        assert_eq!(a.as_deref(), Some("Basic ZWRnZS0xOnBhNTU6d29yZA=="));
    }
    // The secret is in no metric.
    assert!(!edge.metrics().await.contains("pa55"));
}

#[tokio::test]
async fn without_the_ca_file_delivery_is_retried_not_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let data = tempfile::tempdir().unwrap();
    let ca = TestCa::new(dir.path());
    let receiver = OtlpReceiver::start_tls(Duration::ZERO, ca.server.clone()).await;
    let edge = TestEdge::start_in(data.path(), |c| upstreams_on(c, &receiver)).await;
    send_both(&edge, 3).await;
    let retries = |queue: &'static str| {
        let edge = &edge;
        async move {
            edge.metric_value(&format!(
                "ingest_forward_retries_total{{queue=\"{queue}\"}}"
            ))
            .await
            .unwrap_or(0.0)
        }
    };
    assert!(
        eventually(WAIT, || async {
            retries("traces").await >= 2.0 && retries("remote_write").await >= 2.0
        })
        .await,
        "the untrusted upstream was not retried"
    );
    assert!(receiver.got.lock().unwrap().is_empty());
    for queue in ["traces", "remote_write"] {
        let dead = edge
            .metric_value(&format!("ingest_dead_lettered_total{{queue=\"{queue}\"}}"))
            .await
            .unwrap_or(0.0);
        assert_eq!(
            dead, 0.0,
            "{queue}: an unverified certificate is not a final refusal"
        );
    }
    edge.stop().await;
    // The same spool, now with the CA: the waiting records arrive.
    let edge = TestEdge::start_in(data.path(), |c| {
        upstreams_on(c, &receiver);
        c.pipeline.upstream_ca_file = Some(ca.ca_file.clone());
    })
    .await;
    authorizations(&receiver).await;
    assert!(receiver.ids("/v1/traces", "kill-span-").contains(&3));
    edge.stop().await;
}
