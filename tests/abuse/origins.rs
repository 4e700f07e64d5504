//! `origin_storm` and `new_origin`: a public client token replayed with a forged `Origin`.

use std::time::{Duration, Instant};

use crate::support::*;

fn spans() -> String {
    serde_json::json!({"resourceSpans": [{"resource": {"attributes": []}, "scopeSpans": [{"scope": {"name": "t"}, "spans": [
        {"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b100", "name": "fetch", "kind": 3,
         "startTimeUnixNano": "1700000000000000000", "endTimeUnixNano": "1700000000100000000"}]}]}]})
    .to_string()
}

async fn post(
    edge: &crate::common::TestEdge,
    client: &reqwest::Client,
    token: &str,
    origin: &str,
) -> u16 {
    client
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_forged_origin_replay_is_an_origin_storm_and_never_a_label() {
    let edge = edge("flag", |_| {}).await;
    let (id, token) = edge.client_token(&["https://*.example.com"]).await;
    let client = reqwest::Client::new();
    assert_eq!(
        post(&edge, &client, &token, "https://app.example.com").await,
        200
    );

    let forged = "https://evil-replay.test";
    let attack = Instant::now();
    let mut fired = None;
    let mut sent = 0;
    while attack.elapsed() < Duration::from_secs(3) && fired.is_none() {
        assert_eq!(post(&edge, &client, &token, forged).await, 403);
        sent += 1;
        if signal_active(&report(&edge, &id), "origin_storm") {
            fired = Some(attack.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let fired = fired.expect("origin_storm fires");
    eprintln!("origin_storm: {fired:?} from attack start to signal ({sent} requests)");
    assert!(fired < Duration::from_secs(2));
    let r = report(&edge, &id);
    assert_eq!(r.top_rejected_origins[0].key, forged, "{r:?}");
    assert!(r.top_rejected_origins[0].count >= sent - 1);
    // new_origin: the allowed origin matched by the wildcard was announced once.
    assert_eq!(r.origins_first_seen.len(), 1);
    assert_eq!(r.origins_first_seen[0].origin, "https://app.example.com");
    wait_for(Duration::from_secs(1), || {
        report(&edge, &id)
            .recent_events
            .iter()
            .any(|e| e.signal.label() == "new_origin")
    })
    .await
    .expect("new_origin event");
    let m = edge.metrics().await;
    assert!(m.contains(&format!(
        "ingest_token_anomaly{{token_id=\"{id}\",signal=\"origin_storm\"}} 1"
    )));
    assert!(m.contains(&format!(
        "ingest_abuse_events_total{{token_id=\"{id}\",signal=\"origin_storm\",action=\"flagged\"}} 1"
    )));
    assert!(!m.contains("evil-replay"), "an origin became a label");
    assert!(!m.contains("app.example.com"), "an origin became a label");
    edge.stop().await;
}
