//! A real remote-write client: Debian's Prometheus 2.42 (`/usr/bin/prometheus`, installed by
//! `.ci/setup.sh`) scrapes itself every second and remote-writes to an edge on 127.0.0.1:0.
//! The edge must count exactly the samples and metadata Prometheus says it sent, Prometheus
//! must see no failure, and once the token is revoked Prometheus must see its writes refused
//! (401) and the edge must count them as `revoked_token`. A second case remote-writes over
//! HTTPS, trusting a test CA through `tls_config.ca_file`.

mod common;
#[path = "transport/pki.rs"]
mod pki;

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{series_value, TestEdge};

const PROMETHEUS: &str = "/usr/bin/prometheus";

/// The Prometheus child process, killed (and reaped) when the test ends, pass or fail.
struct Prometheus(Child);

impl Drop for Prometheus {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// The sum of every series of metric `name` (any labels) in a text exposition.
fn sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter_map(|l| l.strip_prefix(name))
        .filter(|rest| rest.starts_with('{') || rest.starts_with(' '))
        .filter_map(|rest| rest.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// What Prometheus says it sent: samples, metadata, failed samples, retried samples.
async fn prom_sent(http: &reqwest::Client, url: &str) -> Option<[f64; 4]> {
    let text = http.get(url).send().await.ok()?.text().await.ok()?;
    let s = |n: &str| sum(&text, &format!("prometheus_remote_storage_{n}"));
    Some([
        s("samples_total"),
        s("metadata_total"),
        s("samples_failed_total"),
        s("samples_retried_total"),
    ])
}

async fn edge_got(edge: &TestEdge, id: &str) -> [f64; 2] {
    let m = edge.metrics().await;
    ["samples", "metadata"]
        .map(|k| series_value(&m, &format!("ingest_{k}_total{{token_id=\"{id}\"}}")).unwrap_or(0.0))
}

fn config(prom_port: u16, edge: &TestEdge, secret: &str) -> String {
    config_for(prom_port, &format!("http://{}", edge.ingest), secret)
}

/// `base` is the edge's scheme and address; an HTTPS edge adds its `tls_config` after it.
fn config_for(prom_port: u16, base: &str, secret: &str) -> String {
    format!(
        r#"global:
  scrape_interval: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: prometheus
    static_configs:
      - targets: ["127.0.0.1:{prom_port}"]
remote_write:
  - url: "{base}/api/v1/write"
    remote_timeout: 5s
    authorization:
      credentials: "{secret}"
    send_exemplars: true
    metadata_config:
      send: true
      send_interval: 1s
    queue_config:
      batch_send_deadline: 1s
      min_backoff: 100ms
      max_backoff: 1s
"#
    )
}

/// Starts Prometheus on `port` with `config`, logging into `dir/prometheus.log`.
fn start_prometheus(dir: &Path, port: u16, config: &str) -> Prometheus {
    let cfg = dir.join("prometheus.yml");
    std::fs::write(&cfg, config).unwrap();
    let log = std::fs::File::create(dir.join("prometheus.log")).unwrap();
    Prometheus(
        Command::new(PROMETHEUS)
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start prometheus"),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_prometheus_remote_writes_over_https_with_a_ca_file() {
    if !Path::new(PROMETHEUS).exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{PROMETHEUS} is missing in CI"
        );
        eprintln!("SKIPPED: {PROMETHEUS} not installed (run .ci/setup.sh)");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let ca = pki::Ca::new();
    let ca_file = ca.write(dir.path());
    let (cert, key) = ca.leaf("edge", 1).write(dir.path());
    let edge = TestEdge::start_with(|c| {
        c.server.tls_cert_file = Some(cert);
        c.server.tls_key_file = Some(key);
    })
    .await;
    let (id, secret) = edge.remote_write_token().await;
    let port = free_port();
    let mut config = config_for(
        port,
        &format!("https://127.0.0.1:{}", edge.ingest.port()),
        &secret,
    );
    config.push_str(&format!(
        "    tls_config:\n      ca_file: \"{}\"\n",
        ca_file.display()
    ));
    let _prom = start_prometheus(dir.path(), port, &config);
    let log = || std::fs::read_to_string(dir.path().join("prometheus.log")).unwrap_or_default();
    let url = format!("http://127.0.0.1:{port}/metrics");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let got = edge_got(&edge, &id).await;
        if got[0] >= 500.0 && got[1] > 0.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "edge got only {got:?} over HTTPS in 40 s; prometheus says {:?}\n{}",
            prom_sent(&http, &url).await,
            log()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let sent = prom_sent(&http, &url).await.expect("prometheus /metrics");
    assert_eq!(
        sent[2],
        0.0,
        "prometheus failed samples over HTTPS\n{}",
        log()
    );
    let m = edge.metrics().await;
    let tls_conns: f64 = ["http1", "h2"]
        .iter()
        .filter_map(|p| {
            series_value(
                &m,
                &format!(
                    "ingest_connections_total{{listener=\"ingest\",protocol=\"{p}\",tls=\"true\"}}"
                ),
            )
        })
        .sum();
    assert!(tls_conns >= 1.0, "no TLS connection counted");
    eprintln!(
        "prometheus over HTTPS: {} samples; connections: {}",
        sent[0],
        m.lines()
            .filter(|l| l.starts_with("ingest_connections_total") && !l.ends_with(" 0"))
            .collect::<Vec<_>>()
            .join(", ")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn real_prometheus_remote_writes_and_is_refused_once_revoked() {
    if !Path::new(PROMETHEUS).exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{PROMETHEUS} is missing in CI: .ci/setup.sh installs Debian's prometheus package"
        );
        eprintln!("SKIPPED: {PROMETHEUS} not installed (run .ci/setup.sh)");
        return;
    }
    let started = Instant::now();
    let edge = TestEdge::start().await;
    let (id, secret) = edge.remote_write_token().await;
    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = dir.path().join("prometheus.yml");
    std::fs::write(&cfg, config(port, &edge, &secret)).unwrap();
    let log_path = dir.path().join("prometheus.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let _prom = Prometheus(
        Command::new(PROMETHEUS)
            .arg(format!("--config.file={}", cfg.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().unwrap())
            .stderr(log)
            .spawn()
            .expect("start prometheus"),
    );
    let log = || std::fs::read_to_string(&log_path).unwrap_or_default();
    let url = format!("http://127.0.0.1:{port}/metrics");
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();

    // 1. Wait (at most 40 s) for a few scrapes' worth of samples to have reached the edge.
    let deadline = Instant::now() + Duration::from_secs(40);
    loop {
        let got = edge_got(&edge, &id).await;
        if got[0] >= 1500.0 && got[1] > 0.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "edge got only {got:?} in 40 s; prometheus says {:?}\n{}",
            prom_sent(&http, &url).await,
            log()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }

    // 2. Both sides keep moving: read Prometheus, the edge, Prometheus again, and accept when
    // all three agree (at most 40 attempts, between two sends of a 1 s deadline).
    let mut last = None;
    for _ in 0..40 {
        let p1 = prom_sent(&http, &url).await.expect("prometheus /metrics");
        let e = edge_got(&edge, &id).await;
        let p2 = prom_sent(&http, &url).await.expect("prometheus /metrics");
        if p1 == p2 && p1[0] == e[0] && p1[1] == e[1] {
            last = Some(p1);
            break;
        }
        last = None;
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let [samples, metadata, failed, retried] =
        last.unwrap_or_else(|| panic!("prometheus and edge never agreed\n{}", log()));
    eprintln!(
        "prometheus sent {samples} samples and {metadata} metadata; the edge counted the same"
    );
    assert!(samples >= 1500.0);
    assert_eq!(failed, 0.0, "prometheus failed samples\n{}", log());
    assert_eq!(retried, 0.0, "prometheus retried samples\n{}", log());
    let m = edge.metrics().await;
    let ok = series_value(
        &m,
        &format!(
            "ingest_requests_total{{token_id=\"{id}\",endpoint=\"remote_write\",code=\"204\"}}"
        ),
    );
    assert!(ok.unwrap_or(0.0) >= 2.0, "requests: {ok:?}");
    assert!(!m.contains(&secret), "secret in /metrics");

    // 3. Revoke: Prometheus' next writes get 401 (not retried: failed), the edge counts them.
    let (s, _) = edge
        .admin(
            reqwest::Method::DELETE,
            &format!("/api/v1/tokens/{id}"),
            None,
        )
        .await;
    assert_eq!(s, 200);
    let revoked = format!(
        "ingest_rejected_total{{token_id=\"{id}\",endpoint=\"remote_write\",reason=\"revoked_token\"}}"
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let failed = prom_sent(&http, &url).await.map(|p| p[2]).unwrap_or(0.0);
        let counted = edge.metric_value(&revoked).await.unwrap_or(0.0);
        if failed > 0.0 && counted > 0.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "after revoking: prometheus failed {failed}, edge counted {counted}\n{}",
            log()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // Nothing is accepted any more: the count stands still over two batch deadlines.
    let before = edge_got(&edge, &id).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        edge_got(&edge, &id).await,
        before,
        "samples accepted after revocation"
    );
    assert!(log().contains("401"), "prometheus logs the 401:\n{}", log());
    assert!(
        started.elapsed() < Duration::from_secs(90),
        "took {:?}",
        started.elapsed()
    );
}
