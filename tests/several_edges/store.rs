//! The store itself: concurrent migrations, compare-and-set, usage writes, and the file
//! store copied into PostgreSQL by `ingest-edge store migrate`.

use std::time::Duration;

use reqwest::Method;

use super::common::TestEdge;
use super::{accepted, create, database, edges, send_rum, until};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_migrations_lost_updates_and_usage_writes() {
    use ingest_edge::token::store::pg::PgStore;
    use ingest_edge::token::store::{StoreError, TokenStore};
    let Some(pg) = database() else { return };
    let url = pg.url();
    // Three edges migrating an empty database at once take turns (the advisory lock).
    let starts: Vec<_> = (0..3)
        .map(|i| {
            let url = url.clone();
            std::thread::spawn(move || PgStore::connect(&url, &format!("m{i}")).map(drop))
        })
        .collect();
    for s in starts {
        s.join()
            .unwrap()
            .expect("a concurrent start migrates or finds the schema");
    }
    assert_eq!(pg.sql("SELECT count(*) FROM ingest_edge_migrations"), "1");

    let a = edges(&pg, &["edge-a"]).await.pop().unwrap();
    let (id, _) = create(&a).await;
    let rev = || {
        pg.sql(&format!(
            "SELECT revision FROM ingest_edge_tokens WHERE id = '{id}'"
        ))
    };
    let before = rev();
    let store = {
        let url = url.clone();
        std::sync::Arc::new(
            tokio::task::spawn_blocking(move || PgStore::connect(&url, "direct").unwrap())
                .await
                .unwrap(),
        )
    };
    let (st, id2) = (store.clone(), id.clone());
    let used = tokio::task::spawn_blocking(move || {
        // Usage writes touch only last_used_at, and only forward.
        st.record_last_used(&[(id2.clone(), 1_000)]).unwrap();
        st.record_last_used(&[(id2.clone(), 900)]).unwrap();
        st.get(&id2).unwrap().unwrap().last_used_at
    })
    .await
    .unwrap();
    assert_eq!(used, Some(1_000));
    assert_eq!(rev(), before, "a usage write is no change to announce");
    let (st, id2) = (store.clone(), id.clone());
    let outcome = tokio::task::spawn_blocking(move || {
        let read = st.get(&id2).unwrap().expect("the token");
        // A change read before another one and written after it is refused, not applied.
        let mut first = read.clone();
        first.name = "first".into();
        first.last_event = Some(1);
        let mut late = read.clone();
        late.name = "late".into();
        late.last_event = Some(2);
        let ok = st.replace(Some(&read), &first);
        let lost = st.replace(Some(&read), &late);
        let name = st.get(&id2).unwrap().unwrap().name;
        (
            ok.is_ok(),
            matches!(lost, Err(StoreError::Conflict(_))),
            name,
        )
    })
    .await
    .unwrap();
    assert_eq!(outcome, (true, true, "first".to_owned()));
    assert!(rev() > before, "a real change gets a new revision");
    let (s, v) = a
        .admin(Method::GET, &format!("/api/v1/tokens/{id}"), None)
        .await;
    assert_eq!((s, v["name"].as_str()), (200, Some("first")), "{v}");
    a.stop().await;
    // The client's own runtime must be dropped off the async workers.
    tokio::task::spawn_blocking(move || drop(store))
        .await
        .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_migrate_copies_a_file_store_into_postgres() {
    let Some(pg) = database() else { return };
    // One edge on its files: a token in use, a revoked one, their audit trail.
    let dir = tempfile::tempdir().unwrap();
    let single = TestEdge::start_in(dir.path(), |_| {}).await;
    let (_, kept) = create(&single).await;
    let (gone_id, gone) = create(&single).await;
    let (s, _) = single
        .admin(Method::DELETE, &format!("/api/v1/tokens/{gone_id}"), None)
        .await;
    assert_eq!(s, 200);
    single.stop().await;
    let config = dir.path().join("edge.toml");
    std::fs::write(
        &config,
        format!(
            "data_dir = {:?}\n[server]\nname = \"migrator\"\n",
            dir.path()
        ),
    )
    .unwrap();
    let migrate = || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_ingest-edge"))
            .args(["store", "migrate", "--config"])
            .arg(&config)
            .args(["--to", &pg.url()])
            .output()
            .unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "{text}");
        assert!(
            !text.contains("never-logged-pw"),
            "the password printed: {text}"
        );
        text
    };
    let first = migrate();
    assert!(first.contains("tokens: 2 copied, 0 already"), "{first}");
    assert!(first.contains("audit trail: 3 events copied"), "{first}");
    // Again: nothing copied twice.
    let again = migrate();
    assert!(again.contains("tokens: 0 copied, 2 already"), "{again}");
    assert!(again.contains("audit trail: not copied"), "{again}");

    let edge = edges(&pg, &["edge-a"]).await.pop().unwrap();
    let t = std::time::Instant::now();
    assert!(until(&edge, &kept, accepted, t, Duration::from_secs(1))
        .await
        .is_some());
    assert_eq!(send_rum(&edge, &gone).await, 401, "revoked stays revoked");
    let (s, v) = edge.admin(Method::GET, "/api/v1/audit", None).await;
    assert_eq!(s, 200);
    let actions: Vec<&str> = v["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert_eq!(actions, ["create", "create", "revoke"], "{v}");
    edge.stop().await;
}

/// Start-up reconciliation looks at the edge's own last change: another edge's later change
/// to the same token does not make it look lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_change_superseded_by_another_edge_is_not_marked_lost_at_restart() {
    let Some(pg) = database() else { return };
    let mut both = edges(&pg, &["edge-a", "edge-b"]).await;
    let b = both.pop().unwrap();
    let a = both.pop().unwrap();
    let (id, _) = create(&a).await;
    let t = std::time::Instant::now();
    while b
        .admin(Method::GET, &format!("/api/v1/tokens/{id}"), None)
        .await
        .0
        != 200
    {
        assert!(t.elapsed() < Duration::from_secs(1), "never reached edge-b");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let (s, v) = b
        .admin(
            Method::PATCH,
            &format!("/api/v1/tokens/{id}"),
            Some(serde_json::json!({"name": "renamed on b"})),
        )
        .await;
    assert_eq!(s, 200, "{v}");
    a.stop().await;
    let a = edges(&pg, &["edge-a"]).await.pop().unwrap();
    let (s, v) = a.admin(Method::GET, "/api/v1/audit", None).await;
    assert_eq!(s, 200);
    let actions: Vec<&str> = v["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    assert_eq!(actions, ["create", "update"], "{v}");
    for e in [a, b] {
        e.stop().await;
    }
}
