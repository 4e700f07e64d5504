//! Memory of an edge that nobody scrapes: the real binary as a child process, measured from
//! its `/proc/<pid>/status` after many requests and again after as many more. Every ingest
//! request records its duration into a histogram whose samples the exporter buffers until
//! upkeep runs; without periodic upkeep that buffer grew ~16 bytes per request, forever.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

mod common;

use common::child::ChildEdge;

/// Requests per measured phase. The unfixed edge grew ~17.8 bytes per request here (7.0 MiB
/// per 400k), so two phases grow it ~5 MiB, against ~0.3 MiB of allocator noise with
/// upkeep running. A debug-build edge answers ~30k of these per second: ~12 s in all.
const PHASE: usize = 150_000;
/// Requests before the baseline: connection buffers, allocator arenas, first histogram blocks.
const WARM_UP: usize = 50_000;
/// Requests written before reading their answers: pipelining keeps a debug-build edge busy
/// without a client per request, and a small window stays within any pipelining bound.
const WINDOW: usize = 32;
/// Client connections (one thread each).
const CONNECTIONS: usize = 2;

/// Sends `n` requests that each record a duration (`GET /v1/traces`: 405, no token, no
/// body) over one keep-alive connection. Returns how many were answered before `deadline`.
fn hammer(addr: &str, n: usize, deadline: Instant) -> usize {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
    let request = b"GET /v1/traces HTTP/1.1\r\nHost: edge\r\n\r\n";
    let batch: Vec<u8> = request.repeat(WINDOW);
    let needle = b"HTTP/1.1 405";
    let mut buf = vec![0u8; 64 << 10];
    let mut done = 0;
    while done < n && Instant::now() < deadline {
        let k = WINDOW.min(n - done);
        s.write_all(&batch[..request.len() * k]).unwrap();
        let (mut seen, mut carry) = (0, Vec::new());
        while seen < k {
            let got = s.read(&mut buf).unwrap();
            assert!(got > 0, "the edge closed the connection");
            carry.extend_from_slice(&buf[..got]);
            seen += carry.windows(needle.len()).filter(|w| w == needle).count();
            let keep = carry.len().saturating_sub(needle.len() - 1);
            carry.drain(..keep);
        }
        done += k;
    }
    done
}

/// `requests` spread over the connections; returns how many were answered.
fn phase(addr: &str, requests: usize, deadline: Instant) -> usize {
    std::thread::scope(|scope| {
        let workers: Vec<_> = (0..CONNECTIONS)
            .map(|_| scope.spawn(|| hammer(addr, requests / CONNECTIONS, deadline)))
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).sum()
    })
}

#[test]
fn rss_stays_flat_when_nobody_scrapes_metrics() {
    let dir = tempfile::tempdir().unwrap();
    let edge = ChildEdge::serve(dir.path(), "metrics-memory-test-admin-key");
    // Room for a machine 7x slower than the measurement above.
    let deadline = Instant::now() + Duration::from_secs(90);
    let warm = phase(&edge.ingest, WARM_UP, deadline);
    let base = edge.status_kib("VmRSS");
    let started = Instant::now();
    let first = phase(&edge.ingest, PHASE, deadline);
    let after_first = edge.status_kib("VmRSS");
    let second = phase(&edge.ingest, PHASE, deadline);
    let after_second = edge.status_kib("VmRSS");
    let secs = started.elapsed().as_secs_f64();
    let requests = warm + first + second;
    eprintln!(
        "requests: {requests} ({:.0}/s); VmRSS KiB: {base} -> {after_first} -> {after_second}",
        (first + second) as f64 / secs
    );
    assert_eq!(first + second, 2 * PHASE, "the load did not finish in time");
    let growth_kib = after_second.saturating_sub(base);
    assert!(
        growth_kib < 2048,
        "VmRSS grew {growth_kib} KiB over {} requests with nobody scraping \
         ({base} -> {after_first} -> {after_second} KiB)",
        first + second
    );
}
