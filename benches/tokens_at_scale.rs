//! Token population at scale (issue 7 targets): start-up time and RSS with N tokens in the
//! store (default 1,000,000), lookup + origin check latency against that cache, and `/metrics`
//! rendering with 10,000 active tokens. Prints one JSON line per figure.
//!
//! `cargo bench --bench tokens_at_scale` (N via `TOKENS=...`). Not criterion: start-up and RSS
//! are one-shot measurements.

use std::hint::black_box;
use std::time::Instant;

use ingest_edge::origin::RequestOrigin;
use ingest_edge::secret::{TokenSecret, TokenType};
use ingest_edge::token::cache::Lookup;
use ingest_edge::token::StoredSecret;

fn rss_kib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

fn rss_kib_of(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0)
}

/// Starts `ingest-edge serve` on `data_dir`, waits for its "listening" log line (tokens
/// loaded, sockets bound), and returns (milliseconds until then, its RSS in KiB).
fn process_startup(data_dir: &std::path::Path) -> (u128, u64) {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};
    let started = Instant::now();
    let mut child = Command::new(env!("CARGO_BIN_EXE_ingest-edge"))
        .arg("serve")
        .env("INGEST_EDGE_INGEST_ADDR", "127.0.0.1:0")
        .env("INGEST_EDGE_OPS_ADDR", "127.0.0.1:0")
        .env("INGEST_EDGE_DATA_DIR", data_dir)
        .env("INGEST_EDGE_ADMIN_KEY", "bench-admin-key-0123456789")
        .env("INGEST_EDGE_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start ingest-edge");
    let (tx, rx) = std::sync::mpsc::channel();
    for stream in [
        Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
        Box::new(child.stderr.take().unwrap()),
    ] {
        let tx = tx.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stream).lines().map_while(Result::ok) {
                if line.contains("listening ") {
                    let _ = tx.send(());
                }
            }
        });
    }
    let ready = rx.recv_timeout(std::time::Duration::from_secs(120));
    let elapsed = started.elapsed().as_millis();
    let at_ready = rss_kib_of(child.id());
    // Memory freed during the load (the file's bytes, the parsed list) leaves the resident set
    // after the allocator's purge delay: the steady state is what the machine must provide.
    std::thread::sleep(std::time::Duration::from_secs(2));
    let rss = rss_kib_of(child.id());
    eprintln!(
        "ingest-edge RSS at ready {} MiB, 2 s later {} MiB",
        at_ready / 1024,
        rss / 1024
    );
    let _ = child.kill();
    let _ = child.wait();
    ready.expect("ingest-edge logs that it listens");
    (elapsed, rss)
}

fn main() {
    // `cargo bench` passes `--bench`; nothing else to parse.
    let n: usize = std::env::var("TOKENS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().unwrap();
    // `KEEP_STORE=DIR` also copies the generated store there, for profiling the binary alone.
    let keep = std::env::var_os("KEEP_STORE");
    let origins = ingest_edge::origin::OriginList::parse_all(&[
        "https://*.example.com",
        "http://localhost:3000",
    ])
    .unwrap();
    let mut secrets = Vec::with_capacity(1000);
    let mut records = Vec::with_capacity(n);
    for i in 0..n {
        let secret = TokenSecret::generate(TokenType::Client);
        if i % (n / 1000).max(1) == 0 {
            secrets.push(secret.expose().to_string());
        }
        records.push(ingest_edge::token::TokenRecord {
            id: format!("tk_{i:012}"),
            name: format!("token {i}"),
            token_type: TokenType::Client,
            client_type: Some(ingest_edge::token::ClientType::Web),
            origins: origins.clone(),
            environment: "production".into(),
            tenant: None,
            limits: Default::default(),
            disabled_at: None,
            abuse: Default::default(),
            last_used_at: None,
            created_at: 1_700_000_000,
            rotated_at: None,
            revoked_at: None,
            last_event: None,
            attestation: None,
            secrets: vec![StoredSecret {
                digest: secret.digest(),
                expires_at: None,
            }],
        });
    }
    let file = serde_json::json!({"version": 1, "tokens": records});
    std::fs::write(
        dir.path().join("tokens.json"),
        serde_json::to_vec(&file).unwrap(),
    )
    .unwrap();
    drop(file);
    drop(records);
    if let Some(keep) = keep {
        std::fs::create_dir_all(&keep).unwrap();
        std::fs::copy(
            dir.path().join("tokens.json"),
            std::path::Path::new(&keep).join("tokens.json"),
        )
        .unwrap();
    }

    // The real binary on that store: time until it listens, and its whole resident set.
    let (process_ms, process_rss_kib) = process_startup(dir.path());
    println!(
        "{{\"tokens\": {n}, \"process_startup_ms\": {process_ms}, \"process_rss_mib\": {}}}",
        process_rss_kib / 1024
    );

    let rss_before = rss_kib();

    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    let start = Instant::now();
    let edge = rt.block_on(async {
        let mut cfg = ingest_edge::Config::default();
        cfg.server.ingest_addr = "127.0.0.1:0".parse().unwrap();
        cfg.server.ops_addr = "127.0.0.1:0".parse().unwrap();
        cfg.data_dir.0 = dir.path().to_owned();
        cfg.admin.key = Some("bench-admin-key-0123456789".into());
        ingest_edge::Edge::start(cfg).await.unwrap()
    });
    let startup = start.elapsed();
    let rss_after = rss_kib();
    println!(
        "{{\"tokens\": {n}, \"startup_ms\": {}, \"rss_growth_mib\": {}, \"rss_total_mib\": {}}}",
        startup.as_millis(),
        rss_after.saturating_sub(rss_before) / 1024,
        rss_after / 1024
    );

    let cache = edge.state().registry.cache();
    let iterations = 2_000_000;
    let start = Instant::now();
    for i in 0..iterations {
        let s = &secrets[i % secrets.len()];
        let secret = TokenSecret::parse(s).unwrap();
        let Lookup::Active(t) = cache.lookup(&secret.digest(), 0) else {
            panic!("missing token")
        };
        let o = RequestOrigin::parse(b"https://app.example.com").unwrap();
        black_box(t.origins.allows(&o));
    }
    println!(
        "{{\"lookup_plus_origin_ns\": {:.1}, \"cache_entries\": {}}}",
        start.elapsed().as_nanos() as f64 / iterations as f64,
        cache.len()
    );

    // /metrics with 10k tokens that have traffic.
    let active = 10_000.min(n);
    let listed = rt.block_on(edge.state().registry.list()).unwrap();
    for (i, e) in listed.iter().take(active).enumerate() {
        let Some(s) = e.secrets.first() else { continue };
        if let Lookup::Active(t) = cache.lookup(&s.digest, 0) {
            t.usage.request(ingest_edge::usage::Endpoint::Traces, 200);
            t.usage
                .rum_items(ingest_edge::usage::Endpoint::Traces, i as u64);
        }
    }
    let start = Instant::now();
    let mut out = String::new();
    let view = edge.state().registry.tokens();
    edge.state().usage.render(&mut out, &view);
    println!(
        "{{\"metrics_render_ms\": {}, \"metrics_bytes\": {}, \"tokens_with_traffic\": {active}, \"tokens_total\": {n}}}",
        start.elapsed().as_millis(),
        out.len()
    );
    rt.block_on(edge.shutdown());
}
