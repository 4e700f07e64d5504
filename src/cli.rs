//! The command line: `serve`, and the control-plane client (`token ...`, `audit`) that talks
//! to the admin API of a running edge.
//!
//! The admin URL and key come from flags, then `INGEST_EDGE_ADMIN_URL` /
//! `INGEST_EDGE_ADMIN_KEY`, then the local edge's config (ops address, and the key file in the
//! data directory).

use std::io::{self, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use serde_json::Value;

use crate::config::Config;

#[derive(Parser, Debug)]
#[command(
    name = "ingest-edge",
    version,
    about = "Telemetry ingest edge: RUM and remote_write"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
// Parsed once per process: the size of the token variant (its flags) costs nothing.
#[allow(clippy::large_enum_variant)]
pub enum Command {
    /// Run the edge.
    Serve {
        /// Config file; built-in defaults apply where it (or a key) is absent.
        #[arg(long, default_value = "config/edge.toml")]
        config: PathBuf,
    },
    /// Manage tokens through the admin API.
    Token {
        #[command(flatten)]
        conn: Conn,
        #[command(subcommand)]
        action: TokenAction,
    },
    /// Abuse monitoring across tokens (this edge).
    Abuse {
        #[command(flatten)]
        conn: Conn,
        #[command(subcommand)]
        action: AbuseAction,
    },
    /// Show the audit trail of token changes.
    Audit {
        #[command(flatten)]
        conn: Conn,
        /// Newest events to show.
        #[arg(long, default_value_t = 50)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
    /// Inspect the local spool (reads the data directory; the edge may be running).
    Spool {
        /// Config file, for the data directory.
        #[arg(long, default_value = "config/edge.toml")]
        config: PathBuf,
        #[command(subcommand)]
        action: SpoolAction,
    },
    /// The token store: `migrate --to postgres://...` copies this edge's file store (tokens
    /// and audit trail in the data directory) into PostgreSQL, for several edges.
    Store {
        /// Config file, for the data directory and `server.name`.
        #[arg(long, default_value = "config/edge.toml", global = true)]
        config: PathBuf,
        #[command(subcommand)]
        action: StoreAction,
    },
}

#[derive(Subcommand, Debug)]
pub enum SpoolAction {
    /// Bytes, records and oldest record per queue.
    Stats {
        #[arg(long)]
        json: bool,
    },
    /// Pending records of a queue, oldest first, one JSON line each (metadata, not bodies).
    Dump {
        /// remote_write, traces or logs.
        queue: crate::pipeline::Queue,
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// The records the upstream refused instead of the pending ones.
        #[arg(long)]
        dead_letter: bool,
    },
}

/// How to reach the admin API.
#[derive(clap::Args, Debug)]
pub struct Conn {
    /// Admin API base URL, e.g. http://127.0.0.1:9464.
    #[arg(long, env = "INGEST_EDGE_ADMIN_URL", global = true)]
    admin_url: Option<String>,
    /// Admin key; default: the key file in the edge's data directory.
    #[arg(
        long,
        env = "INGEST_EDGE_ADMIN_KEY",
        global = true,
        hide_env_values = true
    )]
    admin_key: Option<String>,
    /// Config file of the local edge (for the defaults above).
    #[arg(long, default_value = "config/edge.toml", global = true)]
    config: PathBuf,
}

#[derive(Subcommand, Debug)]
pub enum TokenAction {
    /// Create a token; its secret is printed once.
    Create {
        #[arg(long = "type", value_parser = ["client", "remote_write"])]
        token_type: String,
        #[arg(long)]
        name: String,
        /// Allowed origin (client tokens), repeatable: --origin https://*.example.com
        #[arg(long = "origin")]
        origins: Vec<String>,
        #[arg(long)]
        environment: Option<String>,
        /// Upstream tenant (sent in the configured tenant header).
        #[arg(long)]
        tenant: Option<String>,
        #[command(flatten)]
        limits: LimitArgs,
        #[command(flatten)]
        mobile: MobileArgs,
        #[arg(long)]
        json: bool,
    },
    /// List tokens (no secrets). `!` marks tokens due for rotation.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show one token (no secret).
    Show {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Change name, origins, environment, tenant or limits.
    Update {
        id: String,
        #[arg(long)]
        name: Option<String>,
        /// Replaces the whole origin list; repeatable.
        #[arg(long = "origin")]
        origins: Vec<String>,
        #[arg(long)]
        environment: Option<String>,
        #[arg(long)]
        tenant: Option<String>,
        #[command(flatten)]
        limits: LimitArgs,
        #[command(flatten)]
        mobile: MobileArgs,
        #[arg(long)]
        json: bool,
    },
    /// New secret; the old one keeps working for the grace period (default 24h, max 30 days).
    Rotate {
        id: String,
        /// e.g. 24h, 15m, 0s (immediate).
        #[arg(long, value_parser = humantime::parse_duration)]
        grace: Option<std::time::Duration>,
        #[arg(long)]
        json: bool,
    },
    /// Revoke: the secret stops working at once.
    Revoke {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Switch a token off (`403 token_disabled`) until `enable`; reversible, unlike revoke.
    Disable {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Switch a disabled token on again.
    Enable {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// A planned surge: for this long a spike neither flags nor throttles nor blocks.
    ExpectSpike {
        id: String,
        /// e.g. 2h, 30m (at most 7 days).
        #[arg(long = "for", value_parser = humantime::parse_duration)]
        duration: std::time::Duration,
    },
    /// Forget the token's baselines, restart its warm-up, lift a throttle at once.
    AbuseReset { id: String },
    /// Requests, items, bytes and refusals over time (this edge).
    Usage {
        id: String,
        /// 1h (1 min steps), 24h (10 min) or 7d (1 h).
        #[arg(long, default_value = "1h", value_parser = ["1h", "24h", "7d"])]
        range: String,
        #[arg(long)]
        json: bool,
    },
    /// Signals, top rejected origins, top clients, new origins and recent events.
    Abuse {
        id: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand, Debug)]
pub enum AbuseAction {
    /// Tokens with an active signal, recent events, and the addresses behind auth storms.
    List {
        #[arg(long)]
        json: bool,
    },
}

/// Client type and App Check settings (SPEC §14), for `create` and `update`.
#[derive(clap::Args, Debug, Default)]
pub struct MobileArgs {
    /// `web` (browser `Origin`, CORS) or `mobile` (`X-Client-Origin`, origins
    /// android://<application id> or ios://<bundle id>). On update, give the new --origin list too.
    #[arg(long = "client-type", value_parser = ["web", "mobile"])]
    client_type: Option<String>,
    /// App Check attestation of a mobile token.
    #[arg(long, value_parser = ["off", "report", "enforce"])]
    attestation: Option<String>,
    /// Firebase project number (with --attestation report|enforce).
    #[arg(long)]
    project_number: Option<String>,
    /// Firebase app id accepted as the App Check `sub`; repeatable.
    #[arg(long = "app-id")]
    app_ids: Vec<String>,
}

impl MobileArgs {
    /// Adds `client_type` and `attestation` to an admin API body.
    fn apply(&self, body: &mut Value) -> Result<(), String> {
        if let Some(c) = &self.client_type {
            body["client_type"] = Value::from(c.as_str());
        }
        match &self.attestation {
            Some(mode) => {
                body["attestation"] = serde_json::json!({
                    "mode": mode,
                    "project_number": self.project_number.clone().unwrap_or_default(),
                    "app_ids": self.app_ids,
                });
                Ok(())
            }
            None if self.project_number.is_some() || !self.app_ids.is_empty() => {
                Err("--project-number and --app-id need --attestation report|enforce".into())
            }
            None => Ok(()),
        }
    }
}

/// Per-token limit overrides.
#[derive(clap::Args, Debug, Default)]
pub struct LimitArgs {
    #[arg(long)]
    requests_per_second: Option<u32>,
    #[arg(long)]
    requests_burst: Option<u32>,
    #[arg(long)]
    items_per_second: Option<u32>,
    #[arg(long)]
    items_burst: Option<u32>,
}

impl LimitArgs {
    fn to_json(&self) -> Option<Value> {
        let mut m = serde_json::Map::new();
        for (k, v) in [
            ("requests_per_second", self.requests_per_second),
            ("requests_burst", self.requests_burst),
            ("items_per_second", self.items_per_second),
            ("items_burst", self.items_burst),
        ] {
            if let Some(v) = v {
                m.insert(k.into(), v.into());
            }
        }
        (!m.is_empty()).then_some(Value::Object(m))
    }
}

/// Why a command did not finish normally.
#[derive(Debug)]
pub enum CliError {
    /// Shown as `error: ...`; exit status 1.
    Message(String),
    /// Whoever read stdout went away (`... | head`): stop quietly with status 0, as Unix
    /// filters do, instead of reporting the lost output as a failure.
    ClosedPipe,
}

impl From<String> for CliError {
    fn from(message: String) -> CliError {
        CliError::Message(message)
    }
}

impl From<&str> for CliError {
    fn from(message: &str) -> CliError {
        CliError::Message(message.to_owned())
    }
}

impl From<io::Error> for CliError {
    fn from(e: io::Error) -> CliError {
        if e.kind() == io::ErrorKind::BrokenPipe {
            CliError::ClosedPipe
        } else {
            CliError::Message(format!("cannot write the output: {e}"))
        }
    }
}

pub fn run(cli: Cli) -> ExitCode {
    // The commands write through one locked handle with `writeln!`, never `println!`, which
    // panics when the reader of a pipe has gone. `serve` logs to stdout from other threads, so
    // it must not hold the lock.
    let result = match cli.command {
        Command::Serve { config } => serve(&config),
        Command::Token { conn, action } => with_stdout(|out| token(&conn, action, out)),
        Command::Audit { conn, limit, json } => with_stdout(|out| audit(&conn, limit, json, out)),
        Command::Abuse {
            conn,
            action: AbuseAction::List { json },
        } => with_stdout(|out| abuse_list(&conn, json, out)),
        Command::Spool { config, action } => with_stdout(|out| spool(&config, action, out)),
        Command::Store { config, action } => with_stdout(|out| store::run(&config, action, out)),
    };
    match result {
        Ok(()) | Err(CliError::ClosedPipe) => ExitCode::SUCCESS,
        Err(CliError::Message(message)) => {
            // Not `eprintln!`: a closed stderr must not turn an error into a panic either.
            let _ = writeln!(io::stderr(), "error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Runs `command` with stdout locked, then writes out what is still buffered: a reader gone
/// by then is the same quiet end as one gone earlier.
fn with_stdout(
    command: impl FnOnce(&mut io::StdoutLock<'static>) -> Result<(), CliError>,
) -> Result<(), CliError> {
    let mut out = io::stdout().lock();
    command(&mut out)?;
    out.flush()?;
    Ok(())
}

fn serve(path: &std::path::Path) -> Result<(), CliError> {
    let explicit = path != std::path::Path::new("config/edge.toml");
    let config = Config::load(path, explicit).map_err(|e| e.to_string())?;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_new(config.log_filter())
                .map_err(|e| format!("invalid log filter {:?}: {e}", config.log_filter()))?,
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| e.to_string())?;
    runtime.block_on(async {
        let edge = crate::Edge::start(config)
            .await
            .map_err(|e| e.to_string())?;
        wait_for_signal().await;
        tracing::info!("shutting down");
        edge.shutdown().await;
        Ok::<(), String>(())
    })?;
    Ok(())
}

fn spool(
    config: &std::path::Path,
    action: SpoolAction,
    out: &mut impl Write,
) -> Result<(), CliError> {
    use crate::pipeline::{dead_letter_dump, spool_dump, spool_stats, PipelineError};
    let config = Config::load(config, false).map_err(|e| e.to_string())?;
    let dir = &config.data_dir.0;
    match action {
        SpoolAction::Stats { json } => {
            let stats = spool_stats(dir).map_err(|e| e.to_string())?;
            if json {
                let text = serde_json::to_string_pretty(&stats).map_err(|e| e.to_string())?;
                writeln!(out, "{text}")?;
            } else {
                write!(out, "{stats}")?;
            }
        }
        SpoolAction::Dump {
            queue,
            limit,
            dead_letter,
        } => {
            let dump = if dead_letter {
                dead_letter_dump
            } else {
                spool_dump
            };
            dump(dir, queue, limit, out).map_err(|e| match e {
                PipelineError::Io { source, .. } if source.kind() == io::ErrorKind::BrokenPipe => {
                    CliError::ClosedPipe
                }
                other => CliError::Message(other.to_string()),
            })?;
        }
    }
    Ok(())
}

async fn wait_for_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = term.recv() => {},
                _ = tokio::signal::ctrl_c() => {},
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

mod abuse;
mod client;
use abuse::abuse_list;
mod store;
use client::{audit, token};
pub use store::StoreAction;
