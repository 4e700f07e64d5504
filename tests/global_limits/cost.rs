//! The per-request cost of the shared limit next to the local one, against a real Redis on
//! loopback: one check at a time (the round trip) and 32 at once (pipelined on the one
//! multiplexed connection). Printed for the README; asserted only loosely (a loaded CI
//! machine must not fail it), and that every check was admitted by the right path.

use std::num::NonZeroU32;
use std::time::{Duration, Instant};

use ingest_edge::config::{LimitDefaults, LimitOverrides};
use ingest_edge::ratelimit::global::GlobalLimits;
use ingest_edge::ratelimit::{Client, TokenLimiter};

const N: u32 = 2000;
const CLIENT: Client<'static> = Client::Addr(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shared_limit_costs_one_round_trip_per_check() {
    let Some(redis) = crate::redis() else { return };
    let big = NonZeroU32::new(1_000_000_000);
    let limits = LimitDefaults::default().remote_write.with(&LimitOverrides {
        requests_per_second: big,
        requests_burst: big,
        ..LimitOverrides::default()
    });
    let limiter = std::sync::Arc::new(TokenLimiter::new(limits, false));
    let global = GlobalLimits::new(&redis.url(), None, "cost").unwrap();
    let (_stop, stopped) = tokio::sync::watch::channel(false);
    tokio::spawn(std::sync::Arc::clone(&global).run(stopped));
    let start = Instant::now();
    while !global.is_active() {
        assert!(start.elapsed() < Duration::from_secs(5), "never connected");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    let t = Instant::now();
    for _ in 0..N {
        limiter.check_client(CLIENT).unwrap();
    }
    let local = t.elapsed() / N;

    let t = Instant::now();
    for _ in 0..N {
        global
            .check_request(&limiter, "tk_cost", CLIENT)
            .await
            .unwrap();
    }
    let sequential = t.elapsed() / N;

    let t = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..32 {
        let (g, l) = (global.clone(), limiter.clone());
        tasks.push(tokio::spawn(async move {
            for _ in 0..N / 32 {
                g.check_request(&l, "tk_cost", CLIENT).await.unwrap();
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let concurrent = t.elapsed() / (N / 32 * 32);

    // The alternative, prototyped: a lease of LEASE units taken from Redis by the same script
    // (one item check of LEASE), spent locally one request at a time.
    const LEASE: u32 = 16;
    let left = std::sync::atomic::AtomicU32::new(0);
    let t = Instant::now();
    for _ in 0..N {
        let spent = left.fetch_update(
            std::sync::atomic::Ordering::AcqRel,
            std::sync::atomic::Ordering::Acquire,
            |v| v.checked_sub(1),
        );
        if spent.is_err() {
            global
                .check_items(&limiter, "tk_lease", u64::from(LEASE))
                .await
                .unwrap();
            left.store(LEASE - 1, std::sync::atomic::Ordering::Release);
        }
    }
    let leased = t.elapsed() / N;
    eprintln!(
        "per check: local {local:?}; Redis one at a time {sequential:?} (the round trip), \
         32 at once {concurrent:?} per check (pipelined); a lease of {LEASE} {leased:?}"
    );
    assert!(global.is_active(), "no check fell back");
    let mut metrics = String::new();
    global.render_metrics(&mut metrics);
    assert!(
        metrics.contains("ingest_global_limits_fallback_checks_total 0\n"),
        "{metrics}"
    );
    assert!(sequential < Duration::from_millis(50) && local < sequential);
    drop(redis);
}
