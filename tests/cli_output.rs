//! The CLI's output when its reader goes away: the real binary against a real edge, with its
//! stdout a pipe that is closed after the first line (what `ingest-edge token list | head`
//! does). A Unix filter stops quietly there; it must not panic.

mod common;

use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::TestEdge;
use serde_json::json;

const BIN: &str = env!("CARGO_BIN_EXE_ingest-edge");

/// Tokens to create: their pretty JSON (~600 bytes each) must be well past a pipe's 64 KiB
/// buffer, so the CLI is still writing when the reader goes away.
const TOKENS: usize = 400;

/// Runs `args` against `edge`, reads one line of its stdout, closes the pipe, and returns
/// the exit code (`None`: killed by a signal) and stderr.
fn first_line_then_close(edge: &TestEdge, args: &[&str]) -> (Option<i32>, String, String) {
    let mut child = Command::new(BIN)
        .args(args)
        .env("INGEST_EDGE_ADMIN_URL", format!("http://{}", edge.ops))
        .env("INGEST_EDGE_ADMIN_KEY", &edge.admin_key)
        .env("RUST_BACKTRACE", "1")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut first = String::new();
    {
        let mut out = BufReader::with_capacity(64, child.stdout.take().unwrap());
        out.read_line(&mut first).unwrap();
        // Dropping the reader closes the pipe's read end.
    }
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break s;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("the CLI did not exit within 30 s after its stdout closed");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    (status.code(), first, stderr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn token_list_into_a_closed_pipe_exits_quietly() {
    let edge = TestEdge::start().await;
    for i in 0..TOKENS {
        edge.create_token(json!({
            "name": format!("pipe test token {i} with a name long enough to take room"),
            "type": "client",
            "client_type": "web",
            "origins": ["https://app.example.com", "https://*.shop.example.com"],
            "environment": "production",
        }))
        .await;
    }
    let edge = std::sync::Arc::new(edge);
    for args in [
        &["token", "list", "--json"][..],
        &["token", "list"][..],
        &["audit", "--json", "--limit", "1000"][..],
    ] {
        let e = edge.clone();
        let (code, first, stderr) =
            tokio::task::spawn_blocking(move || first_line_then_close(&e, args))
                .await
                .unwrap();
        assert!(
            !first.is_empty(),
            "{args:?}: no output at all; stderr: {stderr}"
        );
        assert!(
            !stderr.contains("panicked"),
            "{args:?}: the CLI panicked on a closed pipe: {stderr}"
        );
        assert_ne!(code, Some(101), "{args:?}: panic exit status; {stderr}");
        assert_eq!(code, Some(0), "{args:?}: exit; stderr: {stderr}");
        assert!(
            stderr.is_empty(),
            "{args:?}: a closed pipe is not an error: {stderr}"
        );
    }
}
