//! Hostile clients against a real edge: slow headers and bodies are cut off, the connection
//! cap holds, a flood of unknown tokens grows nothing and does not stop good tokens.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::TestEdge;

const ORIGIN: &str = "http://localhost:3000";

fn read_all_with_deadline(s: &mut TcpStream, limit: Duration) -> (String, Duration) {
    let start = Instant::now();
    s.set_read_timeout(Some(limit)).unwrap();
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match s.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(_) => break,
        }
        if start.elapsed() > limit {
            break;
        }
    }
    (String::from_utf8_lossy(&out).into_owned(), start.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_body_gets_408_and_slow_headers_are_cut_off() {
    let edge = TestEdge::start_with(|c| {
        c.server.body_read_timeout = Duration::from_millis(500);
        c.server.header_read_timeout = Duration::from_millis(500);
    })
    .await;
    let (_, secret) = edge.client_token(&[ORIGIN]).await;
    let addr = edge.ingest;
    let body_case = tokio::task::spawn_blocking(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        write!(
            s,
            "POST /v1/traces HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {secret}\r\nOrigin: {ORIGIN}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{\"resource"
        )
        .unwrap();
        read_all_with_deadline(&mut s, Duration::from_secs(5))
    })
    .await
    .unwrap();
    assert!(body_case.0.starts_with("HTTP/1.1 408"), "{}", body_case.0);
    assert!(
        body_case.1 < Duration::from_secs(3),
        "took {:?}",
        body_case.1
    );

    let header_case = tokio::task::spawn_blocking(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        s.write_all(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            .unwrap();
        read_all_with_deadline(&mut s, Duration::from_secs(5))
    })
    .await
    .unwrap();
    assert!(
        header_case.1 < Duration::from_secs(3),
        "slowloris connection kept for {:?}",
        header_case.1
    );
    assert!(!header_case.0.contains("200 OK"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn connection_cap_holds_and_frees() {
    let edge = TestEdge::start_with(|c| {
        c.server.max_connections = 2;
        c.server.header_read_timeout = Duration::from_secs(30);
    })
    .await;
    let addr = edge.ingest;
    let result = tokio::task::spawn_blocking(move || {
        let idle1 = TcpStream::connect(addr).unwrap();
        let _idle2 = TcpStream::connect(addr).unwrap();
        std::thread::sleep(Duration::from_millis(200));
        let mut third = TcpStream::connect(addr).unwrap();
        third
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .unwrap();
        let (blocked, _) = read_all_with_deadline(&mut third, Duration::from_millis(700));
        drop(idle1);
        let (served, _) = read_all_with_deadline(&mut third, Duration::from_secs(5));
        (blocked, served)
    })
    .await
    .unwrap();
    assert_eq!(
        result.0, "",
        "a third connection was served past the cap of 2"
    );
    assert!(result.1.starts_with("HTTP/1.1 200"), "{}", result.1);
}

#[tokio::test]
async fn unknown_token_flood_grows_nothing_and_good_tokens_pass() {
    let edge = TestEdge::start().await;
    let (id, secret) = edge.client_token(&[ORIGIN]).await;
    let before = edge.metrics().await.len();
    let body = r#"{"resourceSpans":[]}"#;
    let mut tasks = vec![];
    for _ in 0..8 {
        let http = edge.http.clone();
        let url = edge.ingest_url("/v1/traces");
        tasks.push(tokio::spawn(async move {
            for _ in 0..250 {
                let t = ingest_edge::secret::TokenSecret::generate(
                    ingest_edge::secret::TokenType::Client,
                );
                let r = http
                    .post(&url)
                    .bearer_auth(t.expose())
                    .header("origin", "https://attacker.example")
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .unwrap();
                assert_eq!(r.status(), 401);
            }
        }));
    }
    let good = edge
        .http
        .post(edge.ingest_url("/v1/traces"))
        .bearer_auth(&secret)
        .header("origin", ORIGIN)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(good.status(), 200);
    for t in tasks {
        t.await.unwrap();
    }
    let m = edge.metrics().await;
    assert_eq!(
        common::series_value(
            &m,
            "ingest_rejected_total{token_id=\"\",endpoint=\"traces\",reason=\"unknown_token\"}"
        ),
        Some(2000.0)
    );
    // Only fixed series were added: the unknown-token rejections and request codes, not one per token.
    assert!(
        m.len() < before + 2000,
        "metrics grew from {before} to {} bytes",
        m.len()
    );
    assert_eq!(
        m.matches("token_id=").count(),
        m.matches("token_id=\"\"").count() + m.matches(&format!("token_id=\"{id}\"")).count()
    );
    assert_eq!(
        edge.edge.as_ref().unwrap().state().registry.cache().len(),
        1
    );
}

/// Issue 17, defect 7: a span attribute nested 100,000 arrays deep was accepted (`200`) and
/// forwarded, because skipped JSON values escaped serde_json's depth limit.
#[tokio::test]
async fn deeply_nested_json_is_refused_and_not_forwarded() {
    let edge = TestEdge::start().await;
    let (id, secret) = edge.client_token(&[ORIGIN]).await;
    let send = |body: String| {
        edge.http
            .post(edge.ingest_url("/v1/traces"))
            .bearer_auth(&secret)
            .header("origin", ORIGIN)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let nested = |levels: usize| {
        format!(
            r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{{"attributes":{}{}}}]}}]}}]}}"#,
            "[".repeat(levels),
            "]".repeat(levels)
        )
    };
    for body in [nested(100_000), "[".repeat(1 << 20)] {
        let r = send(body).await.unwrap();
        assert_eq!(r.status(), 400);
        // RUM refusals are an OTLP `Status` in the request's format (SPEC §15).
        assert_eq!(
            r.text().await.unwrap(),
            r#"{"code":3,"message":"JSON nested deeper than 128 levels"}"#
        );
    }
    // The attribute value is enclosed in 7 levels: 121 more is exactly the limit.
    let r = send(nested(121)).await.unwrap();
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    assert_eq!(send(nested(122)).await.unwrap().status(), 400);
    let m = edge.metrics().await;
    let v = |s: String| common::series_value(&m, &s);
    assert_eq!(
        v(format!(
            "ingest_rejected_total{{token_id=\"{id}\",endpoint=\"traces\",reason=\"bad_payload\"}}"
        )),
        Some(3.0)
    );
    // Only the one request within the limit reached the pipeline.
    assert_eq!(
        v(format!(
            "ingest_rum_items_total{{token_id=\"{id}\",signal=\"traces\"}}"
        )),
        Some(1.0)
    );
}

/// Also noticed in issue 17: a 10 KB single-label Origin was accepted and echoed back, and of
/// two Origin headers the first was used.
#[tokio::test]
async fn long_or_repeated_origins_are_refused_and_never_echoed() {
    let edge = TestEdge::start().await;
    let (id, secret) = edge.client_token(&[ORIGIN]).await;
    let addr = edge.ingest;
    let exchange = move |request: String| {
        tokio::task::spawn_blocking(move || {
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(request.as_bytes()).unwrap();
            read_all_with_deadline(&mut s, Duration::from_secs(5)).0
        })
    };
    let long = format!("http://{}", "a".repeat(10_000));
    let preflight = |origins: &[&str]| {
        let lines: String = origins.iter().map(|o| format!("Origin: {o}\r\n")).collect();
        format!(
            "OPTIONS /v1/traces HTTP/1.1\r\nHost: x\r\n{lines}Access-Control-Request-Method: POST\r\nConnection: close\r\n\r\n"
        )
    };
    let post = |origins: &[&str]| {
        let lines: String = origins.iter().map(|o| format!("Origin: {o}\r\n")).collect();
        format!(
            "POST /v1/traces HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {secret}\r\n{lines}Content-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n{{}}"
        )
    };
    // The control: one good Origin is served and echoed.
    let ok = exchange(post(&[ORIGIN])).await.unwrap();
    assert!(ok.starts_with("HTTP/1.1 200"), "{ok}");
    assert!(ok
        .to_ascii_lowercase()
        .contains(&format!("access-control-allow-origin: {ORIGIN}")));

    for request in [preflight(&[&long]), post(&[&long])] {
        let answer = exchange(request).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 403"), "{answer:.200}");
        assert!(!answer.contains("aaaaaaaaaa"), "the long origin was echoed");
        assert!(!answer
            .to_ascii_lowercase()
            .contains("access-control-allow-origin"));
    }
    for request in [
        preflight(&[ORIGIN, "https://evil.example"]),
        post(&[ORIGIN, "https://evil.example"]),
        post(&[ORIGIN, ORIGIN]),
    ] {
        let answer = exchange(request).await.unwrap();
        assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
        assert!(
            answer.ends_with(r#"{"code":3,"message":"more than one Origin header"}"#),
            "{answer}"
        );
        assert!(!answer
            .to_ascii_lowercase()
            .contains("access-control-allow-origin"));
    }
    let m = edge.metrics().await;
    let v = |s: &str| common::series_value(&m, s);
    assert_eq!(
        v("ingest_rejected_total{token_id=\"\",endpoint=\"traces\",reason=\"bad_origin\"}"),
        Some(3.0)
    );
    assert_eq!(
        v(&format!(
            "ingest_rejected_total{{token_id=\"{id}\",endpoint=\"traces\",reason=\"missing_origin\"}}"
        )),
        Some(1.0)
    );
}
