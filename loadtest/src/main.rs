//! `loadtest`: drives ingest-edge (or any peer on loopback: vmagent, nginx) with realistic
//! remote-write and RUM traffic and reports throughput and latency percentiles; `loadtest sink`
//! is the blackhole upstream; `loadtest free-port` hands ports to the scripts.
//!
//! Flow of a run: parse flags -> build every body up front (`payload`) -> parse the loopback
//! target (`target`) -> `run::run` (workers, closed or open loop) -> `report` (text or JSON).
#![forbid(unsafe_code)]

mod conn;
mod observe;
mod payload;
mod report;
mod run;
mod sink;
mod target;
mod tokens;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use payload::{Mode, TokenIn, WorkloadSpec};

/// Longest run (or sink lifetime) accepted, so nothing started by a script outlives it long.
const MAX_DURATION: Duration = Duration::from_secs(3600);
/// Absolute ceiling of `--max-requests`.
const MAX_REQUESTS_CAP: u64 = 100_000_000;

#[derive(Parser, Debug)]
#[command(
    name = "loadtest",
    about = "Load generator for ingest-edge and its peers (loopback targets only)",
    args_conflicts_with_subcommands = true,
    subcommand_negates_reqs = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Blackhole HTTP server: answers every request with a fixed status, counting bytes.
    Sink(SinkArgs),
    /// Writes a token store with N copies of each token named `--template` in `--from` (fresh
    /// secrets), and the secrets to `<secrets-dir>/remote_write.txt` and `client.txt`.
    SeedTokens(SeedArgs),
    /// Prints N distinct free loopback TCP ports.
    FreePort {
        /// How many ports.
        #[arg(default_value_t = 1)]
        count: usize,
    },
}

#[derive(Args, Debug)]
struct SinkArgs {
    /// Loopback address to listen on (port 0: pick one; the bound address is printed first).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Status code of every answer.
    #[arg(long, default_value_t = 204)]
    status: u16,
    /// Stop by itself after this long.
    #[arg(long, default_value = "30m", value_parser = parse_duration)]
    lifetime: Duration,
}

#[derive(Args, Debug)]
struct SeedArgs {
    /// The edge's `tokens.json` holding the template tokens.
    #[arg(long)]
    from: PathBuf,
    /// Where to write the seeded store (put it in a data dir before the edge starts).
    #[arg(long)]
    to: PathBuf,
    /// Name of the template tokens (one per type is copied).
    #[arg(long, default_value = "bench")]
    template: String,
    /// Copies per template.
    #[arg(long, default_value_t = 10_000)]
    count: usize,
    /// Directory for the secrets files.
    #[arg(long)]
    secrets_dir: PathBuf,
}

#[derive(Args, Debug)]
struct RunArgs {
    /// URL to load, e.g. http://127.0.0.1:8080/api/v1/write (loopback only).
    #[arg(long, required = true)]
    target: Option<String>,
    /// Traffic kind.
    #[arg(long, value_enum, default_value_t = Mode::RwV1)]
    mode: Mode,
    /// Token to send (remote-write or client token).
    #[arg(long)]
    token: Option<String>,
    /// Where the token goes.
    #[arg(long, value_enum, default_value_t = TokenIn::Header)]
    token_in: TokenIn,
    /// Rotate over the tokens in this file (one per line): each request uses the next one, as
    /// a bearer header. Replaces `--token`.
    #[arg(long, conflicts_with = "token")]
    tokens_file: Option<PathBuf>,
    /// `loadtest sink` stats URL (http://127.0.0.1:PORT/__sink/stats): report what reached it
    /// during the window.
    #[arg(long)]
    observe_sink: Option<String>,
    /// The server's Prometheus `/metrics` URL, read at the same instants.
    #[arg(long)]
    observe_metrics: Option<String>,
    /// A series to read there: `name` (all series summed) or `name{k="v"}` (repeatable).
    #[arg(long)]
    observe_series: Vec<String>,
    /// `Origin` header to send (RUM), e.g. http://localhost:3000.
    #[arg(long)]
    origin: Option<String>,
    /// Measured duration, e.g. 10s, 500ms, 2m.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    /// Unmeasured lead-in before the measured window.
    #[arg(long, default_value = "0s", value_parser = parse_duration)]
    warmup: Duration,
    /// Concurrent keep-alive connections.
    #[arg(long, default_value_t = 4)]
    connections: usize,
    /// Open loop: fixed request rate (req/s) with latency from the intended send time.
    /// Without it: closed loop, every connection sends back to back.
    #[arg(long)]
    rate: Option<f64>,
    /// Per-request timeout.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    timeout: Duration,
    /// Hard cap on requests issued (warm-up included).
    #[arg(long, default_value_t = 10_000_000)]
    max_requests: u64,
    /// Distinct bodies rotated (synthetic modes).
    #[arg(long, default_value_t = 8)]
    bodies: usize,
    /// Samples per remote-write request (synthetic modes).
    #[arg(long, default_value_t = 2000)]
    samples: usize,
    /// Seed of the synthetic bodies.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Directory of `body_*.bin` for `--mode rw-fixtures`.
    #[arg(long, default_value = payload::DEFAULT_FIXTURES)]
    fixtures: PathBuf,
    /// Runtime worker threads (default: available cores).
    #[arg(long)]
    threads: Option<usize>,
    /// PEM file of the CA to trust for an `https://` target (no system roots: loopback only).
    #[arg(long)]
    tls_ca: Option<PathBuf>,
    /// HTTP/2: ALPN `h2` on `https://`, prior knowledge (h2c) on `http://`.
    #[arg(long)]
    h2: bool,
    /// Print the report as one JSON object.
    #[arg(long)]
    json: bool,
    /// Exit 1 unless there was at least one 2xx and no error or non-2xx answer.
    #[arg(long)]
    check: bool,
}

/// Parses `250ms`, `10s`, `2m`, `1h` or a bare number of seconds.
fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    let (num, unit) = s.split_at(split);
    let n: f64 = num.parse().map_err(|_| format!("bad duration {s:?}"))?;
    let secs = match unit {
        "ms" => n / 1000.0,
        "" | "s" => n,
        "m" => n * 60.0,
        "h" => n * 3600.0,
        _ => return Err(format!("bad duration unit in {s:?} (use ms, s, m, h)")),
    };
    let d = Duration::try_from_secs_f64(secs).map_err(|e| e.to_string())?;
    if d > MAX_DURATION {
        return Err(format!(
            "{s} is longer than the {}s limit",
            MAX_DURATION.as_secs()
        ));
    }
    Ok(d)
}

fn runtime(threads: Option<usize>) -> std::io::Result<tokio::runtime::Runtime> {
    let mut b = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = threads {
        b.worker_threads(n.max(1));
    }
    b.enable_all().build()
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Some(Command::Sink(a)) => run_sink(a),
        Some(Command::SeedTokens(a)) => {
            tokens::seed(&a.from, &a.to, &a.template, a.count, &a.secrets_dir).map(|done| {
                for (kind, n) in done {
                    println!("{kind} {n}");
                }
                ExitCode::SUCCESS
            })
        }
        Some(Command::FreePort { count }) => sink::free_ports(count.clamp(1, 64))
            .map(|ports| {
                let text: Vec<String> = ports.iter().map(u16::to_string).collect();
                println!("{}", text.join(" "));
                ExitCode::SUCCESS
            })
            .map_err(|e| e.to_string()),
        None => run_load(cli.run),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("loadtest: {e}");
            ExitCode::from(2)
        }
    }
}

fn run_sink(a: SinkArgs) -> Result<ExitCode, String> {
    let status = hyper::StatusCode::from_u16(a.status).map_err(|e| e.to_string())?;
    let rt = runtime(None).map_err(|e| e.to_string())?;
    rt.block_on(sink::serve(a.listen, status, a.lifetime))
        .map_err(|e| e.to_string())?;
    Ok(ExitCode::SUCCESS)
}

fn run_load(a: RunArgs) -> Result<ExitCode, String> {
    let url = a.target.ok_or("--target is required")?;
    if a.connections == 0 || a.connections > 4096 {
        return Err("--connections must be 1..=4096".into());
    }
    if let Some(r) = a.rate {
        if !(r.is_finite() && r > 0.0 && r <= 10_000_000.0) {
            return Err("--rate must be in (0, 1e7]".into());
        }
    }
    if a.tokens_file.is_some() && a.token_in == TokenIn::Query {
        return Err("--tokens-file sends bearer headers: not with --token-in query".into());
    }
    let rotate = match &a.tokens_file {
        Some(path) => tokens::load(path)?,
        None => Vec::new(),
    };
    let observer = if a.observe_sink.is_some() || a.observe_metrics.is_some() {
        let parse = |u: &Option<String>| {
            u.as_deref()
                .map(|u| target::Target::parse(u, None).map_err(|e| e.to_string()))
                .transpose()
        };
        let series = a
            .observe_series
            .iter()
            .map(|s| observe::Series::parse(s))
            .collect::<Result<Vec<_>, _>>()?;
        Some(observe::Observer {
            sink: parse(&a.observe_sink)?,
            metrics: parse(&a.observe_metrics)?,
            series,
        })
    } else {
        None
    };
    let query_token = match a.token_in {
        TokenIn::Query => a.token.as_deref(),
        TokenIn::Header => None,
    };
    let target = target::Target::parse(&url, query_token).map_err(|e| e.to_string())?;
    let spec = WorkloadSpec {
        mode: a.mode,
        bodies: a.bodies,
        samples: a.samples,
        seed: a.seed,
        fixtures: a.fixtures,
        token: a.token,
        token_in: a.token_in,
        origin: a.origin,
    };
    let workload = payload::build(&spec).map_err(|e| e.to_string())?;
    let connector = conn::Connector::new(&target, a.tls_ca.as_deref(), a.h2)?;
    let cfg = run::RunConfig {
        connector,
        target,
        workload,
        connections: a.connections,
        rate: a.rate,
        duration: a.duration,
        warmup: a.warmup,
        timeout: a.timeout,
        max_requests: a.max_requests.min(MAX_REQUESTS_CAP),
        tokens: run::bearer_headers(&rotate)?,
        observer,
    };
    let rt = runtime(a.threads).map_err(|e| e.to_string())?;
    let report = rt.block_on(run::run(cfg));
    if a.json {
        println!(
            "{}",
            serde_json::to_string(&report).map_err(|e| e.to_string())?
        );
    } else {
        println!("{}", report.text());
    }
    let healthy = report.ok > 0 && report.errors == 0 && report.non_2xx == 0;
    if a.check && !healthy {
        eprintln!(
            "loadtest: check failed: ok {} non-2xx {} errors {} status {:?} errors {:?}",
            report.ok, report.non_2xx, report.errors, report.status, report.error_kinds
        );
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms"), Ok(Duration::from_millis(250)));
        assert_eq!(parse_duration("10s"), Ok(Duration::from_secs(10)));
        assert_eq!(parse_duration("3"), Ok(Duration::from_secs(3)));
        assert_eq!(parse_duration("1.5m"), Ok(Duration::from_secs(90)));
        assert!(parse_duration("2h").is_err());
        assert!(parse_duration("5x").is_err());
        assert!(parse_duration("s").is_err());
    }

    #[test]
    fn cli_parses() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
        let c = Cli::try_parse_from(["loadtest", "sink", "--listen", "127.0.0.1:0"]).unwrap();
        assert!(matches!(c.command, Some(Command::Sink(_))));
        assert!(
            Cli::try_parse_from(["loadtest", "--mode", "rum"]).is_err(),
            "target required"
        );
        let c = Cli::try_parse_from([
            "loadtest",
            "--target",
            "http://127.0.0.1:1/",
            "--rate",
            "50",
        ])
        .unwrap();
        assert_eq!(c.run.rate, Some(50.0));
    }
}
