//! `auth_storm`: 100,000 distinct unknown secrets from a few addresses.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant};

use ingest_edge::secret::{TokenSecret, TokenType};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::support::*;

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap()
}

/// Sends `n` requests with fresh unknown secrets over one keep-alive connection from
/// `from`, 100 pipelined at a time; returns how many `401` came back.
async fn storm(edge: std::net::SocketAddr, from: IpAddr, n: usize, deadline: Instant) -> usize {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind((from, 0).into()).unwrap();
    let mut s = socket.connect(edge).await.unwrap();
    let mut got = 0;
    let mut buf = vec![0u8; 1 << 16];
    let mut pending = Vec::new();
    while got < n && Instant::now() < deadline {
        let batch = (n - got).min(100);
        let mut out = Vec::new();
        for _ in 0..batch {
            let secret = TokenSecret::generate(TokenType::RemoteWrite);
            out.extend_from_slice(
                format!(
                    "POST /api/v1/write HTTP/1.1\r\nhost: x\r\nauthorization: Bearer {}\r\ncontent-length: 0\r\n\r\n",
                    secret.expose()
                )
                .as_bytes(),
            );
        }
        s.write_all(&out).await.unwrap();
        let mut seen = 0;
        while seen < batch && Instant::now() < deadline {
            let k = tokio::time::timeout(Duration::from_secs(5), s.read(&mut buf))
                .await
                .expect("responses keep coming")
                .unwrap();
            assert!(k > 0, "connection closed");
            pending.extend_from_slice(&buf[..k]);
            let text = String::from_utf8_lossy(&pending).to_string();
            let complete = text.matches("HTTP/1.1 401").count();
            // Keep only the tail that may hold a cut status line.
            if complete > 0 {
                seen += complete;
                let cut = text.rfind("HTTP/1.1 401").unwrap() + 12;
                pending = pending[cut.min(pending.len())..].to_vec();
            }
        }
        got += seen;
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_storm_of_unknown_secrets_is_flagged_in_bounded_memory() {
    let edge = edge("flag", |_| {}).await;
    let (_id, real) = edge.remote_write_token().await;
    let client = reqwest::Client::new();
    assert_eq!(write(&edge, &client, &real, 5).await.0, 204);
    let lines_before = edge.metrics().await.lines().count();
    let rss_before = rss_kib();

    let attack = Instant::now();
    let deadline = attack + Duration::from_secs(60);
    let addrs = [2u8, 3, 4, 5].map(|i| IpAddr::V4(Ipv4Addr::new(127, 0, 2, i)));
    let monitor = &state(&edge).abuse;
    let (counts, fired) = tokio::join!(
        futures_join(addrs.map(|a| storm(edge.ingest, a, 25_000, deadline))),
        wait_for(Duration::from_secs(60), || monitor.auth_view().0.active)
    );
    let total: usize = counts.iter().sum();
    let fired = fired.expect("auth_storm fires");
    eprintln!(
        "auth_storm: {fired:?} from attack start to signal; {total} refusals in {:?}",
        attack.elapsed()
    );
    assert_eq!(total, 100_000);
    assert!(fired < Duration::from_secs(2));
    let (_, top) = monitor.auth_view();
    let listed: Vec<String> = top.iter().map(|c| c.key.to_string()).collect();
    for a in addrs {
        assert!(listed.contains(&a.to_string()), "{listed:?}");
    }
    // Real tokens keep working; /metrics did not grow with the secrets.
    assert_eq!(write(&edge, &client, &real, 5).await.0, 204);
    let m = edge.metrics().await;
    let grown = m.lines().count().saturating_sub(lines_before);
    assert!(grown <= 8, "/metrics grew by {grown} lines");
    assert!(m.contains("ingest_token_anomaly{token_id=\"\",signal=\"auth_storm\"} 1"));
    assert!(m.contains(
        "ingest_abuse_events_total{token_id=\"\",signal=\"auth_storm\",action=\"flagged\"} 1"
    ));
    let rss_growth = rss_kib().saturating_sub(rss_before);
    eprintln!("auth_storm: RSS growth {rss_growth} KiB over 100,000 unknown secrets");
    assert!(rss_growth < 32 * 1024, "RSS grew {rss_growth} KiB");
    edge.stop().await;
}

/// Runs the futures concurrently and collects their outputs.
async fn futures_join<F: std::future::Future<Output = usize>>(fs: [F; 4]) -> [usize; 4] {
    let [a, b, c, d] = fs;
    let (a, b, c, d) = tokio::join!(a, b, c, d);
    [a, b, c, d]
}
