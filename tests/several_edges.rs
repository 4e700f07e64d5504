//! Several edges on one PostgreSQL store (SPEC §16), against a real PostgreSQL started here on
//! loopback and three edges as child processes of the binary (issue 15): a change on one edge
//! holds on the others within 1 s (measured), a lost LISTEN session is caught up by the resync
//! (`outage.rs`), a database outage leaves tokens working, admin calls answering
//! `503 store_unavailable` and a restarted edge serving its snapshot until it is back
//! (`outage.rs`); `sslmode` as libpq (`tls.rs`); the store itself (`store.rs`, in-process
//! edges). SKIPPED (passes) without PostgreSQL's binaries; `.ci/setup.sh` installs them.

mod common;
#[path = "several_edges/node.rs"]
mod node;
#[path = "several_edges/outage.rs"]
mod outage;
#[path = "pg_support/postgres.rs"]
mod postgres;
#[path = "several_edges/store.rs"]
mod store;
#[path = "several_edges/tls.rs"]
mod tls;

use std::time::{Duration, Instant};

use common::{TestEdge, ADMIN_KEY};
use node::Node;
use postgres::Postgres;
use reqwest::Method;
use serde_json::{json, Value};

const ORIGIN: &str = "http://localhost:3000";
const SPANS: &str = r#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"x","kind":1,"startTimeUnixNano":"1","endTimeUnixNano":"2"}]}]}]}"#;
/// The contract (SPEC §16).
const WITHIN: Duration = Duration::from_secs(1);

fn database() -> Option<Postgres> {
    let pg = Postgres::start();
    if pg.is_none() {
        eprintln!("SKIPPED: PostgreSQL binaries not found under /usr/lib/postgresql (.ci/setup.sh installs them)");
    }
    pg
}

async fn edges(pg: &Postgres, names: &[&str]) -> Vec<TestEdge> {
    let mut out = Vec::new();
    for name in names {
        let url = pg.url();
        let name = (*name).to_owned();
        out.push(
            TestEdge::start_with(move |c| {
                c.store.url = url;
                c.server.name = name;
            })
            .await,
        );
    }
    out
}

/// An edge the tests talk to over HTTP: in-process ([`TestEdge`]) or a process ([`Node`]).
pub trait Reach {
    fn http(&self) -> &reqwest::Client;
    fn ingest_url(&self, path: &str) -> String;
    fn ops_url(&self, path: &str) -> String;
}

impl Reach for TestEdge {
    fn http(&self) -> &reqwest::Client {
        &self.http
    }

    fn ingest_url(&self, path: &str) -> String {
        TestEdge::ingest_url(self, path)
    }

    fn ops_url(&self, path: &str) -> String {
        TestEdge::ops_url(self, path)
    }
}

/// An admin call with the tests' key; status and JSON body.
async fn admin(edge: &impl Reach, method: Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut req = edge
        .http()
        .request(method, edge.ops_url(path))
        .bearer_auth(ADMIN_KEY);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let resp = req.send().await.unwrap();
    let status = resp.status().as_u16();
    (status, resp.json().await.unwrap_or(Value::Null))
}

async fn readyz(edge: &impl Reach) -> u16 {
    let resp = edge.http().get(edge.ops_url("/readyz")).send().await;
    resp.unwrap().status().as_u16()
}

async fn send_rum(edge: &impl Reach, secret: &str) -> u16 {
    edge.http()
        .post(edge.ingest_url("/v1/traces"))
        .bearer_auth(secret)
        .header("origin", ORIGIN)
        .header("content-type", "application/json")
        .body(SPANS)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// How long after `since` until `edge` answers `secret` as `want` says (polled every 5 ms,
/// for at most `bound`); `None` if it never did.
async fn until(
    edge: &impl Reach,
    secret: &str,
    want: fn(u16) -> bool,
    since: Instant,
    bound: Duration,
) -> Option<Duration> {
    while since.elapsed() < bound {
        if want(send_rum(edge, secret).await) {
            return Some(since.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    None
}

fn accepted(s: u16) -> bool {
    s == 200
}

fn refused(s: u16) -> bool {
    s == 401
}

/// A client token for [`ORIGIN`], created on `edge`: (id, secret).
async fn create(edge: &impl Reach) -> (String, String) {
    let body = json!({"name": "test client", "type": "client", "client_type": "web",
        "origins": [ORIGIN], "environment": "test"});
    let (s, v) = admin(edge, Method::POST, "/api/v1/tokens", Some(body)).await;
    assert_eq!(s, 201, "create: {v}");
    let field = |k: &str| v[k].as_str().unwrap().to_owned();
    (field("id"), field("token"))
}

/// Three edge processes on `pg`, under `root`.
fn three(pg: &Postgres, root: &std::path::Path) -> [Node; 3] {
    let url = pg.url();
    ["edge-a", "edge-b", "edge-c"].map(|name| Node::start(root, name, &url))
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i.min(sorted.len() - 1)]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn create_rotate_and_revoke_reach_every_edge_process_within_a_second() {
    let Some(pg) = database() else { return };
    let root = tempfile::tempdir().unwrap();
    let all = three(&pg, root.path());
    let [a, b, c] = &all;
    let mut created = Vec::new();
    let mut rotated = Vec::new();
    let mut revoked = Vec::new();
    for _ in 0..20 {
        // Create on A: usable on B and C.
        let (id, secret) = create(a).await;
        let t = Instant::now();
        let (on_b, on_c) = tokio::join!(
            until(b, &secret, accepted, t, Duration::from_secs(5)),
            until(c, &secret, accepted, t, Duration::from_secs(5)),
        );
        for d in [on_b, on_c] {
            created.push(d.expect("a token created on A never worked on B or C"));
        }
        // Rotate on B without grace: the old secret is refused on A and C.
        let (s, v) = b
            .admin(
                Method::POST,
                &format!("/api/v1/tokens/{id}/rotate"),
                Some(json!({"grace_period_seconds": 0})),
            )
            .await;
        assert_eq!(s, 200, "{v}");
        let new_secret = v["token"].as_str().unwrap().to_owned();
        let t = Instant::now();
        let (on_a, on_c) = tokio::join!(
            until(a, &secret, refused, t, Duration::from_secs(5)),
            until(c, &secret, refused, t, Duration::from_secs(5)),
        );
        for d in [on_a, on_c] {
            rotated.push(d.expect("a rotated-out secret kept working on A or C"));
        }
        assert_eq!(send_rum(a, &new_secret).await, 200, "the new secret on A");
        // Revoke on B: refused on A and C.
        let (s, v) = b
            .admin(Method::DELETE, &format!("/api/v1/tokens/{id}"), None)
            .await;
        assert_eq!(s, 200, "{v}");
        let t = Instant::now();
        let (on_a, on_c) = tokio::join!(
            until(a, &new_secret, refused, t, Duration::from_secs(5)),
            until(c, &new_secret, refused, t, Duration::from_secs(5)),
        );
        for d in [on_a, on_c] {
            revoked.push(d.expect("a revoked token kept working on A or C"));
        }
    }
    for (what, times) in [
        ("create", &mut created),
        ("rotate", &mut rotated),
        ("revoke", &mut revoked),
    ] {
        times.sort();
        let max = *times.last().unwrap();
        println!(
            "propagation of {what} ({} edge-changes): p50 {:?}, max {max:?}",
            times.len(),
            percentile(times, 0.5)
        );
        assert!(max <= WITHIN, "{what} took {max:?} to reach an edge");
    }
    // Every edge wrote its own changes to the one audit trail, under its own name.
    let writers =
        pg.sql("SELECT string_agg(DISTINCT edge, ',' ORDER BY edge) FROM ingest_edge_audit");
    assert_eq!(writers, "edge-a,edge-b");
    let (s, v) = c.admin(Method::GET, "/api/v1/audit?limit=3", None).await;
    assert_eq!(s, 200, "{v}");
    let edges: Vec<&str> = v["events"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|e| e["edge"].as_str())
        .collect();
    assert_eq!(
        edges,
        ["edge-a", "edge-b", "edge-b"],
        "the last create, rotate and revoke: {v}"
    );
    // The URL is logged, without its password.
    for e in &all {
        let log = e.proc.log_text();
        assert!(
            log.contains("postgres://postgres:***@127.0.0.1"),
            "{}: {log}",
            e.name
        );
        assert!(!log.contains("never-logged-pw"), "{}: {log}", e.name);
    }
}
