//! Connection-level abuse against a real edge (issue 17): clients that never read their
//! responses, oversized header sections, refusals sent before the body was read, and admin
//! requests declaring huge bodies. Every loop is bounded in count and time.

mod common;

use std::time::{Duration, Instant};

use common::TestEdge;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

const ORIGIN: &str = "http://localhost:3000";
const HEALTHZ: &[u8] = b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n";

/// Reads one response (head and a `Content-Length` body). `None` when the connection ended
/// (EOF, reset) before a whole response arrived.
async fn read_response<R: AsyncRead + Unpin>(
    s: &mut R,
    limit: Duration,
) -> Option<(String, String)> {
    let read = async {
        let mut buf = Vec::new();
        let mut chunk = [0u8; 4096];
        loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).to_ascii_lowercase();
                let len: usize = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .and_then(|v| v.trim().parse().ok())
                    .unwrap_or(0);
                if buf.len() >= end + 4 + len {
                    let body = String::from_utf8_lossy(&buf[end + 4..end + 4 + len]).into_owned();
                    return Some((head, body));
                }
            }
            match s.read(&mut chunk).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    };
    tokio::time::timeout(limit, read).await.ok().flatten()
}

/// Defect 4: sockets that pipeline requests and never read held every connection slot forever.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_that_never_read_lose_their_slots() {
    let write_timeout = Duration::from_millis(500);
    let edge = TestEdge::start_with(|c| {
        c.server.max_connections = 8;
        c.server.write_timeout = write_timeout;
        // Only the write timeout may free the slots here.
        c.server.header_read_timeout = Duration::from_secs(60);
    })
    .await;
    let addr = edge.ingest;
    let pipelined = HEALTHZ.repeat(30_000);
    let mut hogs = Vec::new();
    for _ in 0..8 {
        let socket = TcpSocket::new_v4().unwrap();
        socket.set_recv_buffer_size(4096).unwrap();
        let mut s = socket.connect(addr).await.unwrap();
        let data = pipelined.clone();
        // Writes until the edge stops reading (or closes); never reads. Held to the end.
        hogs.push(tokio::spawn(async move {
            let _ = tokio::time::timeout(Duration::from_secs(20), s.write_all(&data)).await;
            s
        }));
    }
    // Let the hogs fill their buffers and the edge's write side block.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let started = Instant::now();
    let mut fresh = TcpStream::connect(addr).await.unwrap();
    fresh.write_all(HEALTHZ).await.unwrap();
    let answer = read_response(&mut fresh, write_timeout + Duration::from_secs(10)).await;
    let waited = started.elapsed();
    eprintln!("fresh client answered after {waited:?}");
    assert!(
        answer
            .as_ref()
            .is_some_and(|(h, _)| h.starts_with("http/1.1 200")),
        "a fresh client got {answer:?} after {waited:?} while 8 non-reading sockets held the cap"
    );
    for h in hogs {
        h.abort();
    }
}

/// Defect 10: a single 100 KB header was accepted; the header section is capped (431).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_100_kb_header_is_refused_and_normal_headers_pass() {
    let edge = TestEdge::start().await;
    for size in [40_000usize, 100_000, 300_000] {
        let mut s = TcpStream::connect(edge.ingest).await.unwrap();
        let req = format!(
            "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n",
            "a".repeat(size)
        );
        // The edge may close while the rest is still being written: that is a refusal too.
        let _ = s.write_all(req.as_bytes()).await;
        let answer = read_response(&mut s, Duration::from_secs(5)).await;
        if let Some((head, _)) = &answer {
            assert!(head.starts_with("http/1.1 431"), "{size} B header: {head}");
        }
        assert!(
            answer.is_some() || size > 100_000,
            "{size} B header: no 431, the connection just ended"
        );
    }
    let mut s = TcpStream::connect(edge.ingest).await.unwrap();
    let req = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nCookie: {}\r\nBaggage: {}\r\n\r\n",
        "c".repeat(8000),
        "b".repeat(8000)
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let answer = read_response(&mut s, Duration::from_secs(5)).await;
    assert!(
        answer
            .as_ref()
            .is_some_and(|(h, _)| h.starts_with("http/1.1 200")),
        "16 KB of ordinary headers: {answer:?}"
    );
}

/// Defect 11: a refusal sent before the body was read could close a keep-alive connection
/// without `Connection: close`; the client's next request then hit a dead socket.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refusals_before_the_body_never_silently_close_keep_alive() {
    let edge = TestEdge::start_with(|c| {
        // Bodies above 100 KB are refused on their declared length (413), the rest on the token (401).
        c.body.rum_max_wire_bytes = 100_000;
    })
    .await;
    let unknown =
        ingest_edge::secret::TokenSecret::generate(ingest_edge::secret::TokenType::Client);
    let sizes = [1_000usize, 10_000, 60_000, 70_000, 150_000, 200_000];
    let (mut kept, mut closed) = (0, 0);
    let deadline = Instant::now() + Duration::from_secs(60);
    for i in 0..200 {
        assert!(Instant::now() < deadline, "200 rounds took over 60 s");
        let size = sizes[i % sizes.len()];
        let s = TcpStream::connect(edge.ingest).await.unwrap();
        let (mut rd, wr) = s.into_split();
        let head = format!(
            "POST /v1/traces HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nOrigin: {ORIGIN}\r\nContent-Type: application/json\r\nContent-Length: {size}\r\n\r\n",
            unknown.expose()
        );
        let writer = tokio::spawn(async move {
            let mut wr = wr;
            wr.write_all(head.as_bytes()).await?;
            wr.write_all(&vec![b' '; size]).await?;
            Ok::<_, std::io::Error>(wr)
        });
        let first = read_response(&mut rd, Duration::from_secs(10)).await;
        let (head, _) = first.unwrap_or_else(|| panic!("round {i} ({size} B): no first response"));
        assert!(
            head.starts_with("http/1.1 401") || head.starts_with("http/1.1 413"),
            "{head}"
        );
        if head.contains("connection: close") {
            closed += 1;
            continue;
        }
        let mut wr = writer.await.unwrap().unwrap_or_else(|e| {
            panic!("round {i} ({size} B): body write failed on a kept connection: {e}")
        });
        wr.write_all(HEALTHZ)
            .await
            .unwrap_or_else(|e| panic!("round {i} ({size} B): kept connection dead on reuse: {e}"));
        let second = read_response(&mut rd, Duration::from_secs(10)).await;
        assert!(
            second.as_ref().is_some_and(|(h, _)| h.starts_with("http/1.1 200")),
            "round {i} ({size} B): the first response kept the connection, the second got {second:?}"
        );
        kept += 1;
    }
    // Bodies of at most 64 KiB are drained and their connection kept; larger ones are closed.
    let small = (0..200)
        .filter(|i| sizes[i % sizes.len()] <= 64 << 10)
        .count();
    assert_eq!((kept, closed), (small, 200 - small));
}

/// An admin request declaring a 10 GB body waited for the body timeout (408) instead of
/// being refused on its declared length.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn admin_request_declaring_10_gb_is_413_at_once() {
    let edge = TestEdge::start_with(|c| c.server.body_read_timeout = Duration::from_secs(20)).await;
    let mut s = TcpStream::connect(edge.ops).await.unwrap();
    let req = format!(
        "POST /api/v1/tokens HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 10000000000\r\n\r\n{{\"name\":",
        edge.admin_key
    );
    s.write_all(req.as_bytes()).await.unwrap();
    let started = Instant::now();
    let answer = read_response(&mut s, Duration::from_secs(5)).await;
    assert!(
        answer
            .as_ref()
            .is_some_and(|(h, _)| h.starts_with("http/1.1 413")),
        "{answer:?} after {:?}",
        started.elapsed()
    );
    // A normal admin call still works.
    let (id, _) = edge.remote_write_token().await;
    assert!(id.starts_with("tk_"));
}
