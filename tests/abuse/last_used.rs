//! `last_used_at`: set by accepted requests (minute precision), shown at once by the admin
//! API, written to the store by the engine in one batched write.

use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn last_used_at_is_shown_at_once_and_persisted_in_one_write() {
    let edge = edge("flag", |_| {}).await;
    let (used, token) = edge.remote_write_token().await;
    let (idle, _) = edge.remote_write_token().await;
    let (_, v) = edge
        .admin(
            reqwest::Method::GET,
            &format!("/api/v1/tokens/{used}"),
            None,
        )
        .await;
    assert!(v["last_used_at"].is_null(), "{v}");
    let client = reqwest::Client::new();
    assert_eq!(write(&edge, &client, &token, 3).await.0, 204);
    let (_, v) = edge
        .admin(
            reqwest::Method::GET,
            &format!("/api/v1/tokens/{used}"),
            None,
        )
        .await;
    let shown = v["last_used_at"].as_str().expect("last_used_at").to_owned();
    assert!(shown.ends_with(":00Z"), "minute precision: {shown}");
    let store = || std::fs::read_to_string(edge.data_dir.join("tokens.json")).unwrap();
    assert!(!store().contains("last_used_at"), "written per request");
    // What the engine does once a minute.
    ingest_edge::abuse::persist::last_used(state(&edge)).await;
    let text = store();
    let line = |id: &str| text.lines().find(|l| l.contains(id)).unwrap().to_owned();
    assert!(line(&used).contains("\"last_used_at\""), "{text}");
    assert!(!line(&idle).contains("last_used_at"));
    // Nothing changed since: no second write.
    let modified = std::fs::metadata(edge.data_dir.join("tokens.json"))
        .unwrap()
        .modified()
        .unwrap();
    ingest_edge::abuse::persist::last_used(state(&edge)).await;
    let again = std::fs::metadata(edge.data_dir.join("tokens.json"))
        .unwrap()
        .modified()
        .unwrap();
    assert_eq!(modified, again);
    edge.stop().await;
}
