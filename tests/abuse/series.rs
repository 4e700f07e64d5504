//! `series_growth`: a remote-write token suddenly sending never-seen series (hashed in the
//! edge's validator, one request in four).

use std::time::{Duration, Instant};

use crate::rw_support::{series, v1_series_body, CT_V1};
use crate::support::*;

async fn send(
    edge: &crate::common::TestEdge,
    client: &reqwest::Client,
    token: &str,
    from: usize,
    n: usize,
) -> u16 {
    let body = v1_series_body(
        (from..from + n)
            .map(|i| {
                series(
                    &[
                        ("__name__", "m"),
                        ("job", "t"),
                        ("pod", &format!("pod-{i:06}")),
                    ],
                    &[1.0],
                )
            })
            .collect(),
    );
    client
        .post(edge.ingest_url("/api/v1/write"))
        .bearer_auth(token)
        .header("content-type", CT_V1)
        .header("content-encoding", "snappy")
        .body(body)
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn never_seen_series_are_series_growth() {
    let edge = edge("flag", |c| c.abuse.min_items_per_second = 50.0).await;
    let (id, token) = edge.remote_write_token().await;
    let client = reqwest::Client::new();
    // The same 100 series every 100 ms: learned, no growth.
    let steady = Instant::now();
    while steady.elapsed() < Duration::from_millis(3500) {
        assert_eq!(send(&edge, &client, &token, 0, 100).await, 204);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let r = report(&edge, &id);
    assert!(r.warm && !signal_active(&r, "series_growth"), "{r:?}");
    // 500 new series per request.
    let attack = Instant::now();
    let mut next = 1_000;
    let mut fired = None;
    while attack.elapsed() < Duration::from_secs(4) && fired.is_none() {
        assert_eq!(send(&edge, &client, &token, next, 500).await, 204);
        next += 500;
        if signal_active(&report(&edge, &id), "series_growth") {
            fired = Some(attack.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let fired = fired.expect("series_growth fires");
    eprintln!("series_growth: {fired:?} from attack start to signal");
    assert!(fired < Duration::from_secs(2), "{fired:?}");
    let r = report(&edge, &id);
    assert!(r.new_series_per_second > 250.0, "{r:?}");
    edge.stop().await;
}
