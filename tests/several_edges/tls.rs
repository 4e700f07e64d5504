//! `sslmode` honoured (SPEC §16) against a PostgreSQL that serves TLS only (`hostssl` alone in
//! `pg_hba.conf`), with a CA and a server certificate for `localhost` made by `openssl`.

use std::time::Duration;

use ingest_edge::token::store::pg::PgStore;
use reqwest::Method;
use serde_json::json;

use super::node::Node;
use super::postgres::Postgres;
use super::{readyz, ORIGIN};

/// The store URL for `host`, with `query` (`sslmode=...&sslrootcert=...`).
fn url(pg: &Postgres, host: &str, query: &str) -> String {
    format!(
        "postgres://postgres:never-logged-pw@{host}:{}/edges?{query}",
        pg.port
    )
}

/// `PgStore::connect` (which runs the migrations, so a real session), off the async workers.
async fn connect(url: String) -> Result<(), String> {
    tokio::task::spawn_blocking(move || PgStore::connect(&url, "tls").map(drop))
        .await
        .unwrap()
        .map_err(|e| e.to_string())
}

/// Sessions of `application_name` LIKE `name%` that run over TLS.
fn encrypted_sessions(pg: &Postgres, name: &str) -> u32 {
    pg.sql(&format!(
        "SELECT count(*) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) \
         WHERE a.application_name LIKE '{name}%' AND s.ssl"
    ))
    .parse()
    .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sslmode_as_libpq_reads_it() {
    let Some(pg) = Postgres::start_tls() else {
        eprintln!("SKIPPED: PostgreSQL binaries not found");
        return;
    };
    let (ca, other) = (pg.ca("ca"), pg.ca("other-ca"));
    let (ca, other) = (ca.display(), other.display());
    let ok = [
        ("localhost", format!("sslmode=verify-full&sslrootcert={ca}")),
        // The certificate names `localhost` only: verify-ca does not look at the name.
        ("127.0.0.1", format!("sslmode=verify-ca&sslrootcert={ca}")),
        // No root: encryption without a check (libpq's require and prefer).
        ("127.0.0.1", "sslmode=require".to_owned()),
        ("127.0.0.1", String::new()),
    ];
    for (host, query) in ok {
        let r = connect(url(&pg, host, &query)).await;
        assert!(r.is_ok(), "{host} {query}: {r:?}");
    }
    let refused = [
        (
            "127.0.0.1",
            format!("sslmode=verify-full&sslrootcert={ca}"),
            "certificate not valid for name \"127.0.0.1\"",
        ),
        (
            "localhost",
            format!("sslmode=verify-full&sslrootcert={other}"),
            "UnknownIssuer",
        ),
        // require with a root is verify-ca (libpq).
        (
            "127.0.0.1",
            format!("sslmode=require&sslrootcert={other}"),
            "UnknownIssuer",
        ),
        ("127.0.0.1", "sslmode=disable".to_owned(), "no encryption"),
    ];
    for (host, query, why) in refused {
        let e = connect(url(&pg, host, &query)).await.unwrap_err();
        assert!(e.contains(why), "{host} {query}: {e}");
        assert!(!e.contains("never-logged-pw"), "{e}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_edge_with_verify_full_connects_and_a_wrong_ca_is_refused() {
    let Some(pg) = Postgres::start_tls() else {
        return;
    };
    let root = tempfile::tempdir().unwrap();
    let good = url(
        &pg,
        "localhost",
        &format!("sslmode=verify-full&sslrootcert={}", pg.ca("ca").display()),
    );
    let a = Node::start(root.path(), "edge-a", &good);
    assert_eq!(readyz(&a).await, 200);
    let body = json!({"name": "t", "type": "client", "client_type": "web",
        "origins": [ORIGIN], "environment": "test"});
    let (s, v) = a
        .admin(Method::POST, "/api/v1/tokens", Some(body.clone()))
        .await;
    assert_eq!(s, 201, "{v}");
    // Its admin session and its LISTEN session, both encrypted.
    let t = std::time::Instant::now();
    while encrypted_sessions(&pg, "ingest-edge") < 2 {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "no encrypted LISTEN session"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(encrypted_sessions(&pg, "ingest-edge follow edge-a"), 1);

    let wrong = url(
        &pg,
        "localhost",
        &format!(
            "sslmode=verify-full&sslrootcert={}",
            pg.ca("other-ca").display()
        ),
    );
    let b = Node::start(root.path(), "edge-b", &wrong);
    assert_eq!(readyz(&b).await, 503, "no database it trusts, no snapshot");
    let (s, v) = b.admin(Method::POST, "/api/v1/tokens", Some(body)).await;
    assert_eq!(
        (s, v["error"]["code"].as_str()),
        (503, Some("store_unavailable"))
    );
    let log = b.proc.log_text();
    assert!(log.contains("UnknownIssuer"), "the log says why: {log}");
    assert!(!log.contains("never-logged-pw"), "{log}");
}
