//! What one *active* token costs in memory, and where: a counting global allocator (this test
//! binary only; the library stays `forbid(unsafe_code)`) reads the bytes still allocated after
//! N tokens each had one request, per component (abuse watch, limiters, usage counters) and
//! through the real request path of an in-process edge (token store seeded with N client
//! tokens, one RUM request each).
//!
//! `cargo test --test active_token_memory -- --nocapture` prints the figures of the README's
//! memory statement; the assertions are the bounds it promises.
#![allow(unsafe_code)]

mod common;

use std::alloc::{GlobalAlloc, Layout, System};
use std::net::IpAddr;
use std::sync::atomic::{AtomicIsize, Ordering::Relaxed};
use std::sync::Arc;

use common::TestEdge;
use ingest_edge::abuse::Watch;
use ingest_edge::ratelimit::TokenLimiter;
use ingest_edge::secret::{TokenSecret, TokenType};
use ingest_edge::token::StoredSecret;
use ingest_edge::usage::{Endpoint, TokenUsage};

/// Bytes allocated and not yet freed, by every thread of this process.
static LIVE: AtomicIsize = AtomicIsize::new(0);

struct Counting;

// SAFETY: every call is forwarded to the system allocator unchanged; only a counter is added.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Relaxed);
        System.alloc(layout)
    }
    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Relaxed);
        System.alloc_zeroed(layout)
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Relaxed);
        System.dealloc(ptr, layout)
    }
    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LIVE.fetch_add(new_size as isize - layout.size() as isize, Relaxed);
        System.realloc(ptr, layout, new_size)
    }
}

#[global_allocator]
static ALLOCATOR: Counting = Counting;

/// The tests of this file measure one at a time: the counter is process-wide.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// Tokens activated per measurement: enough that fixed costs vanish in the average.
const N: usize = 2_000;

/// Bytes per item that `f` leaves allocated, over `N` items built by `make` and activated by
/// `f` (the items' own allocation before activation is excluded).
fn per_active<T>(make: impl Fn(usize) -> T, f: impl Fn(usize, &T)) -> isize {
    let items: Vec<T> = (0..N).map(&make).collect();
    let before = LIVE.load(Relaxed);
    for (i, t) in items.iter().enumerate() {
        f(i, t);
    }
    let after = LIVE.load(Relaxed);
    drop(items);
    (after - before) / N as isize
}

fn addr(i: usize) -> IpAddr {
    IpAddr::from([10, 0, (i >> 8) as u8, i as u8])
}

#[test]
fn per_component_cost_of_an_active_token() {
    let _one = ONE_AT_A_TIME.blocking_lock();
    let watch_rum = per_active(
        |_| Watch::default(),
        |i, w| {
            w.client(addr(i));
            w.passed(10).unwrap();
            w.accepted(10, 4000, 60);
        },
    );
    let watch_rw = per_active(
        |_| Watch::default(),
        |i, w| {
            w.client(addr(i));
            w.passed(10).unwrap();
            w.accepted(10, 4000, 60);
            w.series(&[1, 2, 3]);
        },
    );
    let limits = ingest_edge::config::Config::default().limits.client;
    let limiter_client = per_active(
        |_| TokenLimiter::new(limits, true),
        |i, l| {
            l.check_request(addr(i)).unwrap();
            l.check_items(10).unwrap();
        },
    );
    let limiter_rw = per_active(
        |_| TokenLimiter::new(limits, false),
        |i, l| {
            l.check_request(addr(i)).unwrap();
            l.check_items(10).unwrap();
        },
    );
    let usage = per_active(
        |i| TokenUsage::new(Arc::from(format!("tk_{i}"))),
        |_, u| {
            u.request(Endpoint::Traces, 200);
            u.rum_items(Endpoint::Traces, 10);
        },
    );
    eprintln!(
        "active token, bytes: watch (RUM) {watch_rum}, watch (remote_write) {watch_rw}, \
         limiters (client token, one client) {limiter_client}, limiters (remote_write) \
         {limiter_rw}, usage counters {usage}"
    );
    // The bounds of the README's figures (before the sparse sketches and the lazy refusal
    // counters: watch 3,656 and 5,736 B, usage 1,000 B).
    assert!(watch_rum < 2_048, "watch (RUM): {watch_rum} B");
    assert!(watch_rw < 2_304, "watch (remote_write): {watch_rw} B");
    assert!(usage < 640, "usage: {usage} B");
    // governor's keyed limiter over a DashMap of 4 cache-padded shards (DashMap::default()
    // would be cores x 4 of them: 1,436 B on 2 cores, more on bigger machines).
    assert!(
        limiter_client < 1_024,
        "limiters (client): {limiter_client} B"
    );
}

/// `n` web client tokens for `http://localhost:3000`, written as the data directory's store;
/// returns their secrets.
fn seed_store(dir: &std::path::Path, n: usize) -> Vec<String> {
    let origins = ingest_edge::origin::OriginList::parse_all(&["http://localhost:3000"]).unwrap();
    let mut secrets = Vec::with_capacity(n);
    let records: Vec<_> = (0..n)
        .map(|i| {
            let secret = TokenSecret::generate(TokenType::Client);
            secrets.push(secret.expose().to_string());
            ingest_edge::token::TokenRecord {
                id: format!("tk_{i:012}"),
                name: format!("token {i}"),
                token_type: TokenType::Client,
                client_type: Some(ingest_edge::token::ClientType::Web),
                origins: origins.clone(),
                environment: "production".into(),
                tenant: None,
                limits: Default::default(),
                disabled_at: None,
                abuse: Default::default(),
                last_used_at: None,
                created_at: 1_700_000_000,
                rotated_at: None,
                revoked_at: None,
                last_event: None,
                attestation: None,
                secrets: vec![StoredSecret {
                    digest: secret.digest(),
                    expires_at: None,
                }],
            }
        })
        .collect();
    let file = serde_json::json!({"version": 1, "tokens": records});
    std::fs::write(dir.join("tokens.json"), serde_json::to_vec(&file).unwrap()).unwrap();
    secrets
}

/// The whole cost through the real request path: N client tokens, one RUM request each, on
/// one keep-alive connection; the bytes still allocated afterwards (and after the abuse
/// engine has ticked over them: window, history) per token.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_path_cost_of_an_active_token() {
    let _one = ONE_AT_A_TIME.lock().await;
    const WARM: usize = 50;
    let dir = tempfile::tempdir().unwrap();
    let secrets = seed_store(dir.path(), N + WARM);
    let edge = TestEdge::start_in(dir.path(), |_| {}).await;
    let body = serde_json::json!({"resourceSpans": [{"resource": {"attributes": []},
        "scopeSpans": [{"scope": {"name": "t"}, "spans": [{"traceId": "5b8efff798038103d269b633813fc60c",
        "spanId": "eee19b7ec3c1b100", "name": "fetch", "kind": 3,
        "startTimeUnixNano": "1700000000000000000", "endTimeUnixNano": "1700000000100000000"}]}]}]})
    .to_string();
    let send = |secret: &str| {
        edge.http
            .post(edge.ingest_url("/v1/traces"))
            .header("content-type", "application/json")
            .header("origin", "http://localhost:3000")
            .bearer_auth(secret)
            .body(body.clone())
            .send()
    };
    // Connection, buffers, the engine's first tick: paid once, not per token.
    for s in &secrets[..WARM] {
        assert_eq!(send(s).await.unwrap().status(), 200);
    }
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let before = LIVE.load(Relaxed);
    let started = std::time::Instant::now();
    for s in &secrets[WARM..] {
        assert_eq!(send(s).await.unwrap().status(), 200);
        assert!(started.elapsed().as_secs() < 120, "requests too slow");
    }
    let after_requests = LIVE.load(Relaxed);
    tokio::time::sleep(std::time::Duration::from_millis(1500)).await;
    let after_ticks = LIVE.load(Relaxed);
    let per = |live: isize| (live - before) / N as isize;
    eprintln!(
        "active client token through the request path: {} B after its request, {} B once \
         the abuse engine ticked",
        per(after_requests),
        per(after_ticks)
    );
    // 6,104 B before the sparse sketches and lazy refusal counters (history rings: up to
    // 576 B more then, 144 B now, once the engine feeds the first point).
    assert!(per(after_ticks) < 4_608, "{} B", per(after_ticks));
    edge.stop().await;
}
