//! The Rust side of the browser runner protocol (see `run.mjs`): checks that Chromium and the
//! npm packages are installed, starts `node run.mjs`, learns the page port, sends the scenario
//! list and returns what the page observed, one JSON value per scenario id.
//!
//! Every wait is bounded, and the node process is killed when the [`Runner`] is dropped, so a
//! hung browser fails the test instead of hanging `cargo test`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::task::JoinHandle;

/// Debian's Chromium; the suite never downloads a browser of its own.
pub const CHROMIUM: &str = "/usr/bin/chromium";

/// Chromium start-up plus the page bundle: generous for a loaded 2-core machine.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// All scenarios together; run.mjs caps itself at 120 s as well.
const RESULTS_TIMEOUT: Duration = Duration::from_secs(150);

/// `tests/browser`, where package.json and run.mjs live.
pub fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join("browser")
}

/// Panics (fails the test, never skips it) with the command that fixes whatever is missing.
pub fn require_prerequisites() {
    let dir = browser_dir();
    let mut missing = Vec::new();
    if !Path::new(CHROMIUM).exists() {
        missing.push(format!("{CHROMIUM} (Debian package `chromium`)"));
    }
    if !dir.join("node_modules").join("playwright-core").is_dir()
        || !dir.join("node_modules").join("esbuild").is_dir()
    {
        missing.push(format!("{}/node_modules (npm ci)", dir.display()));
    }
    if std::process::Command::new("node")
        .arg("--version")
        .output()
        .map(|o| !o.status.success())
        .unwrap_or(true)
    {
        missing.push("node on PATH".to_owned());
    }
    assert!(
        missing.is_empty(),
        "browser suite prerequisites missing: {}. Run `bash .ci/setup-browser.sh` \
         (CI={:?}); this suite fails rather than skips.",
        missing.join(", "),
        std::env::var("CI").ok()
    );
}

/// A started `node run.mjs`, waiting for its scenario list.
pub struct Runner {
    /// Killed on drop so a failed assertion never leaves Chromium behind.
    _child: Child,
    /// Where the scenario list is written (one line).
    stdin: ChildStdin,
    /// The runner's protocol lines.
    lines: Lines<BufReader<ChildStdout>>,
    /// The runner's diagnostics, collected to explain a failure.
    stderr: JoinHandle<String>,
    /// Port of the page server on 127.0.0.1; token origins must name it.
    pub page_port: u16,
    /// Chromium's version as Playwright reports it.
    pub browser: String,
}

impl Runner {
    /// Starts the runner and waits until the page server listens and Chromium is up, with
    /// Chromium accepting certificates for the key whose SPKI hash (base64 SHA-256) is
    /// `spki`: the HTTPS edge's test certificate.
    pub async fn start_trusting(spki: Option<&str>) -> Runner {
        require_prerequisites();
        let mut command = Command::new("node");
        if let Some(spki) = spki {
            command.env("TRUST_SPKI", spki);
        }
        let mut child = command
            .arg("run.mjs")
            .current_dir(browser_dir())
            .env("CHROMIUM_PATH", CHROMIUM)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn `node run.mjs`");
        let stdin = child.stdin.take().expect("runner stdin");
        let stdout = child.stdout.take().expect("runner stdout");
        let mut stderr_pipe = child.stderr.take().expect("runner stderr");
        let stderr = tokio::spawn(async move {
            let mut text = String::new();
            let _ = stderr_pipe.read_to_string(&mut text).await;
            text
        });
        let mut runner = Runner {
            _child: child,
            stdin,
            lines: BufReader::new(stdout).lines(),
            stderr,
            page_port: 0,
            browser: String::new(),
        };
        let ready = runner.next_json(READY_TIMEOUT, "ready line").await;
        assert_eq!(ready["ready"], Value::Bool(true), "runner said: {ready}");
        runner.page_port = ready["page_port"]
            .as_u64()
            .and_then(|p| u16::try_from(p).ok())
            .expect("page_port in the ready line");
        runner.browser = ready["browser"].as_str().unwrap_or_default().to_owned();
        runner
    }

    /// Sends `{edge, scenarios}` and returns each scenario's result by its id.
    pub async fn run(mut self, config: &Value) -> HashMap<String, Value> {
        let line = format!("{config}\n");
        self.stdin
            .write_all(line.as_bytes())
            .await
            .expect("write the scenario list to the runner");
        self.stdin.flush().await.expect("flush runner stdin");
        let out = self.next_json(RESULTS_TIMEOUT, "results line").await;
        let results = out["results"]
            .as_array()
            .unwrap_or_else(|| panic!("runner results: {out}"));
        results
            .iter()
            .map(|r| (r["id"].as_str().unwrap_or_default().to_owned(), r.clone()))
            .collect()
    }

    /// Reads the next protocol line; on timeout or exit, fails with the runner's stderr.
    async fn next_json(&mut self, within: Duration, what: &str) -> Value {
        match tokio::time::timeout(within, self.lines.next_line()).await {
            Ok(Ok(Some(line))) => serde_json::from_str(&line)
                .unwrap_or_else(|e| panic!("runner {what} is not JSON ({e}): {line}")),
            other => {
                let _ = self._child.start_kill();
                let log = tokio::time::timeout(Duration::from_secs(5), &mut self.stderr)
                    .await
                    .ok()
                    .and_then(Result::ok)
                    .unwrap_or_default();
                panic!("browser runner gave no {what} ({other:?}); its stderr:\n{log}");
            }
        }
    }
}
