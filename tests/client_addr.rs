//! Client addresses behind proxies (SPEC §15) against a real edge on 127.0.0.1:0: the
//! per-client budget inside a client token follows the real client named by a trusted proxy's
//! `X-Forwarded-For` or by a PROXY v1/v2 header, never a header an untrusted peer wrote; with
//! `server.proxy_protocol` a connection without the header is closed.

mod common;

use std::num::NonZeroU32;
use std::time::Duration;

use common::TestEdge;
use ingest_edge::client_addr::TrustedProxies;
use ingest_edge::Config;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const ORIGIN: &str = "http://localhost:3000";
/// Requests one client address may send at once.
const BURST: u32 = 3;

/// A per-client budget of `BURST` requests, refilled slowly enough (1/s) that a test that
/// sends `BURST + 2` at once sees the refusal.
fn small_client_budget(c: &mut Config) {
    c.limits.client.per_client_requests_per_second = NonZeroU32::MIN;
    c.limits.client.per_client_requests_burst = NonZeroU32::new(BURST).unwrap();
}

async fn post_xff(edge: &TestEdge, token: &str, xff: Option<&str>) -> u16 {
    let mut req = edge
        .http
        .post(edge.ingest_url("/v1/traces"))
        .bearer_auth(token)
        .header("origin", ORIGIN)
        .header("content-type", "application/json")
        .body("{}");
    if let Some(x) = xff {
        req = req.header("x-forwarded-for", x);
    }
    req.send().await.unwrap().status().as_u16()
}

/// Sends `BURST + 2` requests as one client; returns their statuses.
async fn hammer(edge: &TestEdge, token: &str, xff: impl Fn(u32) -> Option<String>) -> Vec<u16> {
    let mut codes = Vec::new();
    for i in 0..BURST + 2 {
        codes.push(post_xff(edge, token, xff(i).as_deref()).await);
    }
    codes
}

#[tokio::test]
async fn trusted_proxy_budget_follows_each_forwarded_client() {
    let edge = TestEdge::start_with(|c| {
        small_client_budget(c);
        c.server.trusted_proxies = TrustedProxies::parse(&["127.0.0.0/8", "::1"]).unwrap();
    })
    .await;
    let (_, token) = edge.client_token(&[ORIGIN]).await;
    // The proxy appended the client it saw; whatever the client wrote left of it is ignored.
    let codes = hammer(&edge, &token, |i| Some(format!("10.{i}.0.1, 203.0.113.1"))).await;
    assert_eq!(
        codes.iter().filter(|&&c| c == 200).count(),
        BURST as usize,
        "{codes:?}"
    );
    assert_eq!(codes.last(), Some(&429), "{codes:?}");
    // Another real client behind the same proxy still has its whole budget.
    for _ in 0..BURST {
        assert_eq!(post_xff(&edge, &token, Some("203.0.113.2")).await, 200);
    }
    // A second trusted hop (127.0.0.9) is skipped: the client is still 203.0.113.1.
    assert_eq!(
        post_xff(&edge, &token, Some("203.0.113.1, 127.0.0.9")).await,
        429
    );
}

#[tokio::test]
async fn spoofed_forwarded_for_from_an_untrusted_peer_is_ignored() {
    let edge = TestEdge::start_with(|c| {
        small_client_budget(c);
        c.server.trusted_proxies = TrustedProxies::parse(&["10.0.0.0/8"]).unwrap();
    })
    .await;
    let (_, token) = edge.client_token(&[ORIGIN]).await;
    // A new "client" every request: were the header believed, none would be throttled.
    let codes = hammer(&edge, &token, |i| Some(format!("198.51.100.{i}"))).await;
    assert_eq!(
        codes.iter().filter(|&&c| c == 200).count(),
        BURST as usize,
        "{codes:?}"
    );
    assert_eq!(codes.last(), Some(&429), "{codes:?}");
    // Off by default: no trusted proxies, the header is never read either.
    let edge = TestEdge::start_with(small_client_budget).await;
    let (_, token) = edge.client_token(&[ORIGIN]).await;
    let codes = hammer(&edge, &token, |i| Some(format!("198.51.100.{i}"))).await;
    assert_eq!(codes.last(), Some(&429), "{codes:?}");
}

/// The PROXY v1 line for `client`.
fn v1(client: &str) -> Vec<u8> {
    format!("PROXY TCP4 {client} 127.0.0.1 50000 8080\r\n").into_bytes()
}

/// A PROXY v2 header (PROXY command, TCP over IPv4) for `client`.
fn v2(client: [u8; 4]) -> Vec<u8> {
    let mut h = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    h.extend([0x21, 0x11, 0, 12]);
    h.extend(client);
    h.extend([127, 0, 0, 1]);
    h.extend(50000u16.to_be_bytes());
    h.extend(8080u16.to_be_bytes());
    h
}

/// Writes `preface` then one RUM request on a fresh connection; returns the status, or `None`
/// when the edge closed the connection without answering.
async fn raw_post(edge: &TestEdge, preface: &[u8], token: &str) -> Option<u16> {
    let mut s = TcpStream::connect(edge.ingest).await.unwrap();
    let request = format!(
        "POST /v1/traces HTTP/1.1\r\nHost: edge\r\nAuthorization: Bearer {token}\r\n\
         Origin: {ORIGIN}\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\
         Connection: close\r\n\r\n{{}}"
    );
    let mut out = preface.to_vec();
    out.extend(request.as_bytes());
    // The edge may close before reading it all (no PROXY header): that is the answer.
    let _ = s.write_all(&out).await;
    let mut response = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut response))
        .await
        .expect("the edge answers or closes within 10 s");
    if read.is_err() || response.is_empty() {
        return None;
    }
    let text = String::from_utf8_lossy(&response);
    text.strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
}

#[tokio::test]
async fn proxy_protocol_v1_and_v2_name_the_client() {
    let edge = TestEdge::start_with(|c| {
        small_client_budget(c);
        c.server.proxy_protocol = true;
    })
    .await;
    // The ops listener (token creation) is not affected.
    let (_, token) = edge.client_token(&[ORIGIN]).await;
    let mut codes = Vec::new();
    for _ in 0..BURST + 1 {
        codes.push(raw_post(&edge, &v1("203.0.113.1"), &token).await);
    }
    assert_eq!(
        codes,
        [vec![Some(200); BURST as usize], vec![Some(429)]].concat()
    );
    // The same client through v2 is still over its budget; another one through v2 is not.
    assert_eq!(
        raw_post(&edge, &v2([203, 0, 113, 1]), &token).await,
        Some(429)
    );
    assert_eq!(
        raw_post(&edge, &v2([203, 0, 113, 2]), &token).await,
        Some(200)
    );
    assert_eq!(raw_post(&edge, &v1("203.0.113.3"), &token).await, Some(200));
}

#[tokio::test]
async fn without_a_proxy_header_the_connection_is_closed() {
    let edge = TestEdge::start_with(|c| c.server.proxy_protocol = true).await;
    let (_, token) = edge.client_token(&[ORIGIN]).await;
    assert_eq!(raw_post(&edge, b"", &token).await, None);
    assert_eq!(
        raw_post(&edge, b"PROXY TCP4 nonsense\r\n", &token).await,
        None
    );
    // The same request behind a header is answered.
    assert_eq!(raw_post(&edge, &v1("203.0.113.1"), &token).await, Some(200));
    // Plain HTTP clients get no answer at all.
    assert!(edge
        .http
        .get(edge.ingest_url("/healthz"))
        .send()
        .await
        .is_err());
}
