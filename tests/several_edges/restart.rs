//! An edge restarted while PostgreSQL is down serves its local snapshot; a fresh one is not
//! ready until the database answers.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;

use super::common::TestEdge;
use super::{accepted, create, database, edges, send_rum, until, ORIGIN};

async fn readyz(edge: &TestEdge) -> u16 {
    edge.http
        .get(edge.ops_url("/readyz"))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_edge_restarted_during_an_outage_serves_its_snapshot() {
    let Some(pg) = database() else { return };
    let a = edges(&pg, &["edge-a"]).await.pop().unwrap();
    let c_dir = tempfile::tempdir().unwrap();
    let with_store = |name: &'static str| {
        let url = pg.url();
        move |c: &mut ingest_edge::Config| {
            c.store.url = url;
            c.server.name = name.into();
        }
    };
    let c = TestEdge::start_in(c_dir.path(), with_store("edge-c")).await;
    let (_, kept) = create(&a).await;
    let (gone_id, gone) = create(&a).await;
    let (s, v) = a
        .admin(Method::DELETE, &format!("/api/v1/tokens/{gone_id}"), None)
        .await;
    assert_eq!(s, 200, "{v}");
    // C's snapshot catches up with the revoke (written at most every 2 s).
    let snapshot = c_dir.path().join("snapshot/tokens.json");
    let revoked = format!("\"id\":\"{gone_id}\"");
    let t = Instant::now();
    while !std::fs::read_to_string(&snapshot).is_ok_and(|s| {
        s.lines()
            .any(|l| l.contains(&revoked) && l.contains("revoked_at"))
    }) {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "the revoke never reached the snapshot"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Database down; C restarts and serves the snapshot; a fresh edge has nothing to serve.
    pg.stop();
    c.stop().await;
    let c = TestEdge::start_in(c_dir.path(), with_store("edge-c")).await;
    assert_eq!(readyz(&c).await, 200, "serving its snapshot");
    assert_eq!(
        send_rum(&c, &kept).await,
        200,
        "a known token from the snapshot"
    );
    assert_eq!(
        send_rum(&c, &gone).await,
        401,
        "a revoked token from the snapshot"
    );
    let fresh = edges(&pg, &["edge-f"]).await.pop().unwrap();
    assert_eq!(readyz(&fresh).await, 503, "no database, no snapshot");
    assert_eq!(send_rum(&fresh, &kept).await, 401);

    // Back: the fresh edge loads everything and becomes ready; a new token reaches both.
    pg.start_again();
    let back = Instant::now();
    while readyz(&fresh).await != 200 {
        assert!(
            back.elapsed() < Duration::from_secs(10),
            "never ready after the outage"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(send_rum(&fresh, &kept).await, 200);
    let (_, later) = loop {
        let (s, v) = a
            .admin(
                Method::POST,
                "/api/v1/tokens",
                Some(
                    json!({"name": "later", "type": "client", "client_type": "web",
                    "origins": [ORIGIN], "environment": "test"}),
                ),
            )
            .await;
        if s == 201 {
            break (
                v["id"].as_str().unwrap().to_owned(),
                v["token"].as_str().unwrap().to_owned(),
            );
        }
        assert!(back.elapsed() < Duration::from_secs(10), "{s} {v}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let t = Instant::now();
    for e in [&c, &fresh] {
        let d = until(e, &later, accepted, t, Duration::from_secs(5)).await;
        assert!(
            d.is_some(),
            "a token created after the outage never arrived"
        );
    }
    for e in [a, c, fresh] {
        e.stop().await;
    }
}
