//! HTTP/2 with prior knowledge (h2c) on the plain listener: the same per-request limits per
//! stream, the SETTINGS the edge announces, and the two attacks on HTTP/2 itself.

use std::time::{Duration, Instant};

use bytes::Bytes;
use reqwest::Version;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::common::TestEdge;
use super::*;

fn h2c_client() -> reqwest::Client {
    reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap()
}

fn base(edge: &TestEdge) -> String {
    format!("http://{}", edge.ingest)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn h2c_remote_write_and_rum_are_served_with_the_per_request_limits() {
    let edge = TestEdge::start_with(|c| {
        c.body.rum_max_wire_bytes = 4096;
        c.server.max_header_bytes = 4096;
    })
    .await;
    let (rw_id, rw) = edge.remote_write_token().await;
    let (_, rum) = edge.client_token(&[ORIGIN]).await;
    let http = h2c_client();
    let base = base(&edge);

    let r = rw_request(&http, &base, &rw, rw_body())
        .send()
        .await
        .unwrap();
    assert_eq!(r.version(), Version::HTTP_2);
    assert_eq!(r.status(), 204, "{:?}", r.text().await);
    let samples = edge
        .metric_value(&format!("ingest_samples_total{{token_id=\"{rw_id}\"}}"))
        .await
        .unwrap_or(0.0);
    assert!(samples > 0.0, "no samples counted over h2c");
    let r = rum_request(&http, &base, &rum).send().await.unwrap();
    assert_eq!(r.version(), Version::HTTP_2);
    assert_eq!(r.status(), 200);
    // No `Connection: close` on an HTTP/2 refusal: the body is larger than the limit.
    let r = http
        .post(format!("{base}/v1/traces"))
        .bearer_auth(&rum)
        .header("origin", ORIGIN)
        .header("content-type", "application/json")
        .body(vec![b' '; 10_000])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 413);
    assert!(r.headers().get("connection").is_none());
    // A header list over `max_header_bytes` is refused; the connection goes on.
    let r = http
        .get(format!("{base}/healthz"))
        .header("x-big", "a".repeat(8000))
        .send()
        .await;
    assert!(
        r.as_ref().map_or(true, |r| r.status() == 431),
        "an 8 KB header passed a 4 KB limit: {r:?}"
    );
    let r = rum_request(&http, &base, &rum).send().await.unwrap();
    assert_eq!(r.status(), 200);
    // A plain HTTP/1.1 client still gets HTTP/1.1 on the same port.
    let r = rum_request(&reqwest::Client::new(), &base, &rum)
        .send()
        .await
        .unwrap();
    assert_eq!(r.version(), Version::HTTP_11);
    assert_eq!(r.status(), 200);
    assert_eq!(connections(&edge, "h2", false).await, 1.0);
    edge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_edge_announces_its_stream_limit() {
    let edge = TestEdge::start_with(|c| c.server.h2_max_concurrent_streams = 7).await;
    let tcp = TcpStream::connect(edge.ingest).await.unwrap();
    let (client, conn) = h2::client::handshake(tcp).await.unwrap();
    let driver = tokio::spawn(conn);
    // The server's SETTINGS arrive with the first exchange.
    let mut client = client.ready().await.unwrap();
    let req = hyper::Request::get(format!("http://{}/healthz", edge.ingest))
        .body(())
        .unwrap();
    let (resp, _) = client.send_request(req, true).unwrap();
    assert_eq!(resp.await.unwrap().status(), 200);
    assert_eq!(client.current_max_send_streams(), 7);
    driver.abort();
    edge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rapid_reset_closes_the_connection_and_good_clients_keep_working() {
    let edge =
        TestEdge::start_with(|c| c.server.header_read_timeout = Duration::from_secs(60)).await;
    let (_, rw) = edge.remote_write_token().await;
    let tcp = TcpStream::connect(edge.ingest).await.unwrap();
    let (mut client, conn) = h2::client::handshake(tcp).await.unwrap();
    let driver = tokio::spawn(conn);
    let uri = format!("http://{}/api/v1/write", edge.ingest);
    let started = Instant::now();
    let mut opened = 0u32;
    // Bounded: 20 000 streams or 10 s, whichever comes first.
    while opened < 20_000 && started.elapsed() < Duration::from_secs(10) {
        let Ok(ready) = client.clone().ready().await else {
            break;
        };
        client = ready;
        let req = hyper::Request::post(&uri)
            .header("authorization", format!("Bearer {rw}"))
            .body(())
            .unwrap();
        let Ok((_, mut stream)) = client.send_request(req, false) else {
            break;
        };
        stream.send_reset(h2::Reason::CANCEL);
        opened += 1;
    }
    let ended = tokio::time::timeout(Duration::from_secs(5), driver)
        .await
        .expect("the connection stayed open under rapid reset")
        .unwrap();
    let err = ended.expect_err("the connection ended without an error");
    assert!(
        err.is_go_away() || err.is_io(),
        "closed, but not by GOAWAY: {err:?}"
    );
    assert!(opened < 20_000, "all 20 000 reset streams were accepted");
    eprintln!("rapid reset: connection closed after {opened} streams");
    // The edge is up and a good client is served.
    let http = h2c_client();
    let r = rw_request(&http, &base(&edge), &rw, rw_body())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 204);
    edge.stop().await;
}

/// One HTTP/2 frame: 9-byte header and payload.
fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut f = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    f.extend_from_slice(&stream.to_be_bytes());
    f.extend_from_slice(payload);
    f
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_continuation_flood_closes_the_connection_and_the_edge_stays_up() {
    let edge =
        TestEdge::start_with(|c| c.server.header_read_timeout = Duration::from_secs(60)).await;
    let mut tcp = TcpStream::connect(edge.ingest).await.unwrap();
    tcp.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        .await
        .unwrap();
    tcp.write_all(&frame(0x4, 0, 0, &[])).await.unwrap(); // SETTINGS
                                                          // HEADERS on stream 1 without END_HEADERS: :method POST, :scheme http, :path /.
    tcp.write_all(&frame(0x1, 0x1, 1, &[0x83, 0x86, 0x84]))
        .await
        .unwrap();
    // Each CONTINUATION: one literal header `x-a: <1000 x 'a'>`, never END_HEADERS.
    let mut block = vec![0x00, 0x03, b'x', b'-', b'a', 0x7f, 0xe9, 0x06];
    block.extend(std::iter::repeat_n(b'a', 1000));
    let continuation = Bytes::from(frame(0x9, 0, 1, &block));
    let writer = tokio::spawn(async move {
        let mut sent = 0u32;
        // Bounded: 10 000 frames (10 MB), 40 000 times the 32 KiB header limit.
        while sent < 10_000 {
            if tcp.write_all(&continuation).await.is_err() {
                break;
            }
            sent += 1;
        }
        (sent, tcp)
    });
    let (sent, mut tcp) = tokio::time::timeout(Duration::from_secs(10), writer)
        .await
        .expect("writing the flood did not finish in 10 s")
        .unwrap();
    // Closed: whatever the edge sent (SETTINGS, GOAWAY) ends with EOF or a reset.
    let mut rest = Vec::new();
    let closed = tokio::time::timeout(Duration::from_secs(5), tcp.read_to_end(&mut rest)).await;
    assert!(
        closed.is_ok(),
        "connection still open 5 s after {sent} CONTINUATION frames"
    );
    eprintln!("CONTINUATION flood: {sent} frames written before the close");
    edge_is_up(&edge, &base(&edge), &h2c_client()).await;
    edge.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_h2_connection_and_a_silent_one_are_closed() {
    let edge =
        TestEdge::start_with(|c| c.server.header_read_timeout = Duration::from_millis(500)).await;
    // Silent: connects and sends nothing (neither HTTP/1.1 nor a preface).
    let mut silent = TcpStream::connect(edge.ingest).await.unwrap();
    let mut buf = Vec::new();
    tokio::time::timeout(Duration::from_secs(5), silent.read_to_end(&mut buf))
        .await
        .expect("a silent connection kept its slot")
        .unwrap();
    // Idle h2: one request, then nothing: GOAWAY after the idle period.
    let tcp = TcpStream::connect(edge.ingest).await.unwrap();
    let (client, conn) = h2::client::handshake(tcp).await.unwrap();
    let driver = tokio::spawn(conn);
    let mut client = client.ready().await.unwrap();
    let req = hyper::Request::get(format!("http://{}/healthz", edge.ingest))
        .body(())
        .unwrap();
    let (resp, _) = client.send_request(req, true).unwrap();
    assert_eq!(resp.await.unwrap().status(), 200);
    tokio::time::timeout(Duration::from_secs(5), driver)
        .await
        .expect("an idle h2 connection stayed open")
        .unwrap()
        .ok();
    edge.stop().await;
}
