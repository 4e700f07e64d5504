//! `client_storm`: one token suddenly used from many client addresses (distinct loopback
//! addresses: Linux routes all of 127/8 to `lo`).

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use ingest_edge::abuse::hll::STANDARD_ERROR;

use crate::rw_support::{v1_n_samples, CT_V1};
use crate::support::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_client_addresses_are_a_client_storm_counted_within_the_sketch_error() {
    // A 3 s window so that the whole storm, even on a loaded machine, falls in the span of
    // the two client sketches (one to two windows).
    let edge = edge("flag", |c| {
        c.abuse.short_window = Duration::from_secs(3);
        c.abuse.warmup = Duration::from_secs(1);
    })
    .await;
    let (id, token) = edge.remote_write_token().await;
    paced(
        &edge,
        &token,
        10,
        Duration::from_millis(100),
        Duration::from_millis(5000),
    )
    .await;
    let r = report(&edge, &id);
    assert!(r.warm && r.distinct_clients < 1.5, "{r:?}");

    const ADDRESSES: u32 = 300;
    let attack = Instant::now();
    // Sent 30 at a time, so that the whole storm lands well inside one window even on a
    // loaded machine (one after the other it took up to 5 s here).
    let url = edge.ingest_url("/api/v1/write");
    let mut storm = tokio::task::JoinSet::new();
    for i in 0..ADDRESSES {
        let addr = IpAddr::V4(Ipv4Addr::from(u32::from(Ipv4Addr::new(127, 0, 1, 0)) + i));
        let (url, token) = (url.clone(), token.clone());
        storm.spawn(async move {
            client_from(addr)
                .post(url)
                .bearer_auth(token)
                .header("content-type", CT_V1)
                .header("content-encoding", "snappy")
                .body(v1_n_samples(1))
                .send()
                .await
                .map(|r| r.status().as_u16())
        });
        if storm.len() >= 30 {
            let status = storm.join_next().await.unwrap().unwrap().unwrap();
            assert_eq!(status, 204);
        }
    }
    while let Some(status) = storm.join_next().await {
        assert_eq!(status.unwrap().unwrap(), 204);
    }
    let sent = attack.elapsed();
    let fired = wait_for(Duration::from_secs(3), || {
        signal_active(&report(&edge, &id), "client_storm")
    })
    .await
    .expect("client_storm fires");
    eprintln!(
        "client_storm: {:?} from attack start to signal ({ADDRESSES} addresses sent in {sent:?})",
        attack.elapsed()
    );
    let _ = fired;
    // The signal may fire at a tick in the middle of the storm: let two more ticks pass so
    // the estimate covers all of it (the sketches span at least one 3 s window).
    tokio::time::sleep(Duration::from_millis(1100)).await;
    // 300 new addresses and 127.0.0.1, all within the sketches' span.
    let estimate = report(&edge, &id).distinct_clients;
    let truth = f64::from(ADDRESSES + 1);
    assert!(
        (estimate - truth).abs() <= 3.0 * STANDARD_ERROR * truth,
        "estimate {estimate} vs {truth} (storm sent in {sent:?})"
    );
    let m = edge.metrics().await;
    let gauge = crate::common::series_value(
        &m,
        &format!("ingest_token_distinct_clients{{token_id=\"{id}\"}}"),
    )
    .expect("gauge");
    assert!(
        (gauge - truth).abs() <= 3.0 * STANDARD_ERROR * truth,
        "gauge {gauge}"
    );
    // Space-Saving keeps any key above total / capacity: the steady client (50 of 350
    // requests) is listed; the order may differ (a newcomer inherits the count it replaced).
    let top = report(&edge, &id).top_clients;
    assert!(top.iter().any(|c| c.key == "127.0.0.1"), "{top:?}");
    edge.stop().await;
}
