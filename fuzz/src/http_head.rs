//! HTTP/1 request heads (and h2c prefaces) through the whole router of a real edge.
//!
//! One edge per process, in-process on 127.0.0.1:0 (like `tests/common`'s `TestEdge`), with a
//! web client token for `https://app.example.com` and a remote-write token. Each input is
//! written as raw bytes to a new TCP connection to the ingest listener, with `@WEB@` and `@RW@`
//! replaced by the two secrets so the seeds (and their mutations) get past authentication, and
//! the answer is read with short timeouts (see `exchange`). Checked beyond "no
//! panic": the edge still answers `GET /healthz` with `200` on a new connection afterwards.
//! A panic inside the edge's tasks would not end the process by itself, so the edge runs with
//! a panic hook that aborts.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::OnceLock;
use std::time::Duration;

use ingest_edge::{Config, Edge};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::runtime::Runtime;

/// How long one exchange may take: a complete head is answered in well under a millisecond,
/// and an incomplete one ends at our half-close, so this only bounds a hang.
const EXCHANGE_TIMEOUT: Duration = Duration::from_secs(2);

/// The edge's answers are not read past this.
const MAX_ANSWER: usize = 64 << 10;

/// With no answer yet after this, the request is taken as incomplete and the write side closed.
const QUIET: Duration = Duration::from_millis(50);

/// Once some answer came, this long without more ends the exchange (a keep-alive connection).
const IDLE: Duration = Duration::from_millis(10);

struct Harness {
    rt: Runtime,
    ingest: SocketAddr,
    web_secret: Vec<u8>,
    rw_secret: Vec<u8>,
    /// `FUZZ_SHOW` is set: print the first line of each answer.
    show: bool,
    /// Kept so the listeners stay open for the life of the process.
    _edge: Edge,
}

static HARNESS: OnceLock<Harness> = OnceLock::new();

pub fn check(data: &[u8]) {
    let h = HARNESS.get_or_init(start);
    let input = substitute(data, &h.web_secret, &h.rw_secret);
    h.rt.block_on(async {
        let answer = exchange(h.ingest, &input).await;
        if h.show {
            // `FUZZ_SHOW=1 replay http_head FILE`: what the edge answered, to check a seed.
            let text = answer.as_deref().map(String::from_utf8_lossy);
            eprintln!(
                "{:?}",
                text.as_deref().map(|t| t.lines().next().unwrap_or(""))
            );
        }
        let answer = exchange(h.ingest, b"GET /healthz HTTP/1.1\r\nHost: fuzz\r\n\r\n").await;
        let answer = answer.unwrap_or_else(|e| panic!("the edge no longer answers: {e}"));
        assert!(
            answer.starts_with(b"HTTP/1.1 200"),
            "healthz after the input: {:?}",
            String::from_utf8_lossy(&answer[..answer.len().min(200)])
        );
    });
}

/// Writes `bytes` and reads the answer until EOF, until `IDLE` passes without a byte once some
/// answer came (the edge keeps a keep-alive connection open), or until `MAX_ANSWER`. If nothing
/// came within `QUIET`, the write side is closed so an incomplete request ends at once (half
/// closing right away would make hyper drop a complete request whose body is still being read).
async fn exchange(addr: SocketAddr, bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    let io = async {
        let mut conn = TcpStream::connect(addr).await?;
        // The edge may answer and close before reading everything: a write error is fine.
        let mut open = conn.write_all(bytes).await.is_ok();
        let mut answer = Vec::new();
        let mut chunk = [0u8; 8192];
        loop {
            let wait = if answer.is_empty() { QUIET } else { IDLE };
            match tokio::time::timeout(wait, conn.read(&mut chunk)).await {
                Ok(Ok(0)) => break,
                Ok(Ok(n)) if answer.len() < MAX_ANSWER => answer.extend_from_slice(&chunk[..n]),
                Ok(Ok(_)) => break,
                // A reset after the answer (unread input left behind) still ends the exchange.
                Ok(Err(_)) if !answer.is_empty() => break,
                Ok(Err(e)) => return Err(e),
                Err(_) if !answer.is_empty() => break,
                Err(_) if open => {
                    open = false;
                    let _ = conn.shutdown().await;
                }
                Err(_) => return Err(std::io::ErrorKind::TimedOut.into()),
            }
        }
        Ok(answer)
    };
    tokio::time::timeout(EXCHANGE_TIMEOUT, io)
        .await
        .unwrap_or_else(|_| Err(std::io::ErrorKind::TimedOut.into()))
}

/// `@WEB@` and `@RW@` become the two secrets.
fn substitute(data: &[u8], web: &[u8], rw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 64);
    let mut rest = data;
    while let Some((first, tail)) = rest.split_first() {
        if let Some(after) = rest.strip_prefix(b"@WEB@") {
            out.extend_from_slice(web);
            rest = after;
        } else if let Some(after) = rest.strip_prefix(b"@RW@") {
            out.extend_from_slice(rw);
            rest = after;
        } else {
            out.push(*first);
            rest = tail;
        }
    }
    out
}

fn start() -> Harness {
    // A panic on one of the edge's tasks is caught by tokio; abort so AFL sees it.
    let default_hook = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        default_hook(info);
        std::process::abort();
    }));
    let dir = data_dir();
    let mut config = Config::default();
    config.server.ingest_addr = SocketAddr::from(([127, 0, 0, 1], 0));
    config.server.ops_addr = SocketAddr::from(([127, 0, 0, 1], 0));
    config.data_dir.0 = dir;
    config.admin.key = Some(ADMIN_KEY.to_string());
    // In memory and small: no upstream is configured, and accepted data must not fill the disk.
    config.pipeline.durable = false;
    config.pipeline.max_bytes = 4 << 20;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a runtime");
    let edge = rt.block_on(Edge::start(config)).expect("the edge starts");
    let ops = edge.ops_addr();
    let web_secret = rt.block_on(create_token(
        ops,
        r#"{"name":"fuzz web","type":"client","client_type":"web","origins":["https://app.example.com"],"environment":"fuzz"}"#,
    ));
    let rw_secret = rt.block_on(create_token(
        ops,
        r#"{"name":"fuzz rw","type":"remote_write","environment":"fuzz"}"#,
    ));
    Harness {
        ingest: edge.ingest_addr(),
        rt,
        web_secret,
        rw_secret,
        show: std::env::var_os("FUZZ_SHOW").is_some(),
        _edge: edge,
    }
}

const ADMIN_KEY: &str = "fuzz-admin-key-0123456789";

/// Creates a token through the admin API and returns its secret (the `"token"` field).
async fn create_token(ops: SocketAddr, json: &str) -> Vec<u8> {
    let request = format!(
        "POST /api/v1/tokens HTTP/1.1\r\nHost: fuzz\r\nAuthorization: Bearer {ADMIN_KEY}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{json}",
        json.len()
    );
    let answer = exchange(ops, request.as_bytes())
        .await
        .expect("admin answers");
    let text = String::from_utf8_lossy(&answer);
    let secret = text
        .split_once("\"token\":\"")
        .and_then(|(_, rest)| rest.split_once('"'))
        .map(|(secret, _)| secret.as_bytes().to_vec());
    secret.unwrap_or_else(|| panic!("no token in the admin answer: {text}"))
}

/// A data directory per process; those of processes that are gone (AFL forks a new child every
/// few thousand inputs and kills it) are removed first, so a long run does not fill the disk.
fn data_dir() -> PathBuf {
    let tmp = std::env::temp_dir();
    if let Ok(entries) = std::fs::read_dir(&tmp) {
        for entry in entries.flatten() {
            let name = entry.file_name();
            let Some(pid) = name.to_str().and_then(|n| n.strip_prefix(DIR_PREFIX)) else {
                continue;
            };
            if !PathBuf::from("/proc").join(pid).exists() {
                let _ = std::fs::remove_dir_all(entry.path());
            }
        }
    }
    let dir = tmp.join(format!("{DIR_PREFIX}{}", std::process::id()));
    let _ = std::fs::create_dir_all(&dir);
    dir
}

const DIR_PREFIX: &str = "ingest-edge-fuzz-http-";
