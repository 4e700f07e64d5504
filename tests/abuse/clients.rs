//! `client_storm`: one token suddenly used from many client addresses (distinct loopback
//! addresses: Linux routes all of 127/8 to `lo`).

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use ingest_edge::abuse::hll::STANDARD_ERROR;

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
    for i in 0..ADDRESSES {
        let addr = IpAddr::V4(Ipv4Addr::from(u32::from(Ipv4Addr::new(127, 0, 1, 0)) + i));
        let status = write(&edge, &client_from(addr), &token, 1).await.0;
        assert_eq!(status, 204);
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
