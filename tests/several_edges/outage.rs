//! Three edge processes through the failures of SPEC §16: a LISTEN session killed by
//! `pg_terminate_backend` (the resync catches the revoke it missed), then PostgreSQL stopped
//! (tokens keep working on every edge, admin calls `503 store_unavailable`, an edge restarted
//! meanwhile serves its snapshot, a fresh one is not ready), then PostgreSQL back (a change
//! made on another edge arrives everywhere, the fresh edge becomes ready, and no edge loses its
//! LISTEN session again to an admin connection the outage left closed).

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::json;

use super::node::Node;
use super::{
    accepted, admin, create, database, readyz, refused, send_rum, three, until, Reach, ORIGIN,
};

/// Resync after a reconnect (SPEC §16).
const RESYNC: Duration = Duration::from_secs(5);

/// Waits (at most 10 s) until `node`'s snapshot holds `id` revoked.
async fn snapshot_has_revoke(node: &Node, id: &str) {
    let snapshot = node.data.join("snapshot/tokens.json");
    let revoked = format!("\"id\":\"{id}\"");
    let t = Instant::now();
    while !std::fs::read_to_string(&snapshot).is_ok_and(|s| {
        s.lines()
            .any(|l| l.contains(&revoked) && l.contains("revoked_at"))
    }) {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "the revoke never reached {}'s snapshot",
            node.name
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn lost_session_outage_and_restart_with_edge_processes() {
    let Some(pg) = database() else { return };
    let root = tempfile::tempdir().unwrap();
    let url = pg.url();
    let [a, b, c] = three(&pg, root.path());
    // A fourth edge takes no call during the outage, so its admin connection, closed by the
    // database meanwhile, is still held when the database is back (see the end).
    let quiet = Node::start(root.path(), "edge-d", &url);
    let (id, secret) = create(&a).await;
    let (_, kept) = create(&a).await;
    for e in [&a, &b, &c] {
        let t = Instant::now();
        until(e, &kept, accepted, t, Duration::from_secs(5))
            .await
            .expect("known on every edge");
    }

    // C's LISTEN session dies; the revoke's notification is lost to it: the resync on
    // reconnect must catch it (SPEC: within 5 s of reconnecting).
    let killed = pg.sql(
        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity \
         WHERE application_name = 'ingest-edge follow edge-c'",
    );
    assert_eq!(killed, "1", "edge-c's LISTEN session");
    let (s, v) = a
        .admin(Method::DELETE, &format!("/api/v1/tokens/{id}"), None)
        .await;
    assert_eq!(s, 200, "{v}");
    let t = Instant::now();
    let caught = until(&c, &secret, refused, t, Duration::from_secs(10)).await;
    println!("revoke during a lost LISTEN session reached edge-c after {caught:?}");
    assert!(caught.is_some_and(|d| d <= RESYNC), "{caught:?}");
    snapshot_has_revoke(&c, &id).await;

    // The database goes down: tokens keep working from the cache, admin calls are 503.
    pg.stop();
    for e in [&a, &b, &c] {
        assert_eq!(send_rum(e, &kept).await, 200, "{}: a known token", e.name);
        assert_eq!(
            send_rum(e, &secret).await,
            401,
            "{}: a revoked token",
            e.name
        );
    }
    let body = json!({"name": "x", "type": "client", "client_type": "web",
        "origins": [ORIGIN], "environment": "test"});
    let resp = b
        .http
        .post(b.ops_url("/api/v1/tokens"))
        .bearer_auth(super::ADMIN_KEY)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status().as_u16(), 503);
    assert!(resp.headers().get("retry-after").is_some(), "Retry-After");
    let v: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(v["error"]["code"], "store_unavailable", "{v}");
    for read in ["/api/v1/tokens", "/api/v1/audit"] {
        let (s, v) = b.admin(Method::GET, read, None).await;
        let code = v["error"]["code"].as_str();
        assert_eq!((s, code), (503, Some("store_unavailable")), "{read}");
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let stale = b
        .metric_value("ingest_store_staleness_seconds")
        .await
        .expect("the staleness gauge");
    assert!(stale >= 1.0, "staleness during the outage: {stale}");
    assert!(!b.metrics().await.contains("never-logged-pw"));

    // C restarts meanwhile and serves its snapshot; a fresh edge has nothing to serve.
    let c = c.restart(root.path(), &url);
    assert_eq!(readyz(&c).await, 200, "edge-c serving its snapshot");
    assert!(c.proc.log_text().contains("serving the local snapshot"));
    assert_eq!(
        send_rum(&c, &kept).await,
        200,
        "a known token from the snapshot"
    );
    assert_eq!(
        send_rum(&c, &secret).await,
        401,
        "a revoked token from the snapshot"
    );
    let f = Node::start(root.path(), "edge-f", &url);
    assert_eq!(readyz(&f).await, 503, "no database, no snapshot");
    assert_eq!(send_rum(&f, &kept).await, 401);

    // Back: a change made on B (once it answers) reaches every edge; F becomes ready.
    pg.start_again();
    let back = Instant::now();
    let (id2, secret2) = loop {
        let body = json!({"name": "after", "type": "client", "client_type": "web",
            "origins": [ORIGIN], "environment": "test"});
        let (s, v) = admin(&b, Method::POST, "/api/v1/tokens", Some(body)).await;
        if s == 201 {
            let field = |k: &str| v[k].as_str().unwrap().to_owned();
            break (field("id"), field("token"));
        }
        assert_eq!(s, 503, "{v}");
        assert!(
            back.elapsed() < Duration::from_secs(10),
            "admin calls never came back"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    println!(
        "admin calls answered again {:?} after PostgreSQL started",
        back.elapsed()
    );
    // The quiet edge's first admin call after the outage: its old connection is dead, the
    // call is not (no 503 once the database answers).
    let (s, v) = quiet.admin(Method::GET, "/api/v1/tokens", None).await;
    assert_eq!(s, 200, "edge-d's first admin call after the outage: {v}");
    let t = Instant::now();
    for e in [&a, &c, &quiet, &f] {
        let d = until(e, &secret2, accepted, t, Duration::from_secs(10)).await;
        println!(
            "after the outage, a token created on edge-b reached {} after {d:?}",
            e.name
        );
        assert!(d.is_some_and(|d| d <= RESYNC), "{id2} on {}: {d:?}", e.name);
    }
    // The first snapshot rewrite after the outage meets an admin connection the database
    // closed: retried, it must not cost the LISTEN session a second reconnect.
    tokio::time::sleep(Duration::from_millis(500)).await;
    for e in [&a, &b, &quiet] {
        let log = e.proc.log_text();
        let lost = log.matches("change feed lost").count();
        assert_eq!(
            lost, 1,
            "{}: the feed was lost again after the outage: {log}",
            e.name
        );
    }
    while readyz(&f).await != 200 {
        assert!(
            back.elapsed() < Duration::from_secs(10),
            "edge-f never ready"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(send_rum(&f, &kept).await, 200, "edge-f loaded everything");
    for e in [&a, &c] {
        let stale = e.metric_value("ingest_store_staleness_seconds").await;
        assert!(
            stale.is_some_and(|s| s < 1.0),
            "{}: staleness after: {stale:?}",
            e.name
        );
    }
}
