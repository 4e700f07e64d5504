//! Every query we ship runs against a real Prometheus scraping a real edge (SPEC §12, "every
//! query is checked"): Debian's Prometheus 2.42 loads `config/alerts.yml`, scrapes the edge's
//! ops `/metrics` every second and remote-writes to it; the test sends RUM traffic, refusals
//! and an origin storm, then runs every rule expression and every dashboard query
//! (`config/grafana/ingest-edge.json`, template variables filled in) through `/api/v1/query`.
//!
//! Each must parse; every metric it names must have series (an alert compares against a
//! threshold, so the whole expression may rightly be empty); each rule must evaluate without
//! error inside Prometheus; each dashboard query whose metrics all exist must return data.

mod common;
#[path = "rules_support/queries.rs"]
mod queries;

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::TestEdge;
use ingest_edge::Config;
use queries::{dashboard_queries, free_port, metric_names, query, webhook_receiver, Prometheus};
use serde_json::{json, Value};

const PROMETHEUS: &str = "/usr/bin/prometheus";
const ORIGIN: &str = "http://localhost:3000";
const RULES: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/config/alerts.yml");
const DASHBOARD: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/config/grafana/ingest-edge.json"
);

/// Short abuse windows and a webhook, so the abuse metrics exist within seconds. `[abuse]` is
/// unknown to a Config without abuse monitoring (deny_unknown_fields): then the edge runs
/// without it, and the abuse and webhook metric names are reported missing below.
fn abuse_config(webhook: std::net::SocketAddr) -> Option<Config> {
    let text = format!(
        "[abuse]\nshort_window = \"2s\"\nbaseline_window = \"10s\"\nwarmup = \"1s\"\n\
         webhook_url = \"http://{webhook}/hook\"\n"
    );
    match Config::from_toml(&text) {
        Ok(c) => Some(c),
        Err(e) => {
            eprintln!("NOTE: this edge has no [abuse] config ({e}); running without it");
            None
        }
    }
}

fn prometheus_config(port: u16, edge: &TestEdge, secret: &str) -> String {
    format!(
        r#"global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - "{RULES}"
scrape_configs:
  - job_name: prometheus
    static_configs:
      - targets: ["127.0.0.1:{port}"]
  - job_name: ingest-edge
    static_configs:
      - targets: ["{ops}"]
remote_write:
  - url: "http://{ingest}/api/v1/write"
    authorization:
      credentials: "{secret}"
    queue_config:
      batch_send_deadline: 1s
"#,
        ops = edge.ops,
        ingest = edge.ingest
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_rule_and_dashboard_query_parses_and_has_data() {
    if !Path::new(PROMETHEUS).exists() {
        assert!(
            std::env::var_os("CI").is_none(),
            "{PROMETHEUS} is missing in CI: .ci/setup.sh installs Debian's prometheus package"
        );
        eprintln!("SKIPPED: {PROMETHEUS} not installed (run .ci/setup.sh)");
        return;
    }
    let started = Instant::now();
    let abuse = abuse_config(webhook_receiver().await);
    let edge = TestEdge::start_with(|c| {
        if let Some(mut a) = abuse {
            a.data_dir = c.data_dir.clone();
            a.server.ingest_addr = c.server.ingest_addr;
            a.server.ops_addr = c.server.ops_addr;
            a.admin.key = c.admin.key.clone();
            *c = a;
        }
    })
    .await;
    let (rum, rum_secret) = edge.client_token(&[ORIGIN]).await;
    let (rw, rw_secret) = edge.remote_write_token().await;
    let (limited, limited_secret) = edge
        .create_token(
            json!({"name": "limited", "type": "client", "client_type": "web",
            "origins": [ORIGIN], "environment": "test",
            "limits": {"requests_per_second": 1, "requests_burst": 1}}),
        )
        .await;

    let dir = tempfile::tempdir().unwrap();
    let port = free_port();
    let cfg = dir.path().join("prometheus.yml");
    std::fs::write(&cfg, prometheus_config(port, &edge, &rw_secret)).unwrap();
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
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();

    // Prometheus scrapes the edge before the traffic starts, so it sees the origin storm's
    // anomaly gauge while it is active (at most 20 s).
    let deadline = Instant::now() + Duration::from_secs(20);
    while !query(&http, port, r#"up{job="ingest-edge"} == 1"#)
        .await
        .is_ok_and(|r| !r.is_empty())
    {
        assert!(
            Instant::now() < deadline,
            "prometheus never scraped the edge\n{}",
            log()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Traffic: accepted spans, a foreign Origin at 10/s for 3 s (an origin_storm on a 2 s
    // window) and a missing one, unknown / malformed / missing tokens, a token over its limit.
    let spans = r#"{"resourceSpans":[{"resource":{"attributes":[]},"scopeSpans":[{"scope":{"name":"t"},"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b100","name":"fetch","kind":3,"startTimeUnixNano":"1700000000000000000","endTimeUnixNano":"1700000000100000000"}]}]}]}"#;
    let unknown =
        ingest_edge::secret::TokenSecret::generate(ingest_edge::secret::TokenType::Client);
    let mut codes = BTreeMap::<(&str, u16), u32>::new();
    let sends: Vec<(&str, Option<&str>, Option<&str>, u32)> = vec![
        ("accepted", Some(&rum_secret), Some(ORIGIN), 5),
        (
            "foreign origin",
            Some(&rum_secret),
            Some("https://evil.example"),
            30,
        ),
        ("missing origin", Some(&rum_secret), None, 2),
        ("unknown token", Some(unknown.expose()), Some(ORIGIN), 3),
        ("malformed token", Some("not-a-token"), Some(ORIGIN), 2),
        ("missing token", None, Some(ORIGIN), 2),
        ("rate limited", Some(&limited_secret), Some(ORIGIN), 5),
    ];
    for (what, token, origin, times) in sends {
        for _ in 0..times {
            let mut req = edge
                .http
                .post(edge.ingest_url("/v1/traces"))
                .header("content-type", "application/json")
                .body(spans);
            if let Some(t) = token {
                req = req.bearer_auth(t);
            }
            if let Some(o) = origin {
                req = req.header("origin", o);
            }
            let status = req.send().await.unwrap().status().as_u16();
            if what == "foreign origin" {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            *codes.entry((what, status)).or_default() += 1;
        }
    }
    eprintln!("traffic sent (what, status) -> count: {codes:?}");
    assert_eq!(codes.get(&("accepted", 200)), Some(&5), "{codes:?}");
    assert_eq!(codes.get(&("foreign origin", 403)), Some(&30), "{codes:?}");
    assert!(codes.contains_key(&("rate limited", 429)), "{codes:?}");

    // Wait (at most 30 s) until the last counter the traffic created (rate_limited) and the
    // remote-write samples each have three scrapes (every counter has the two samples rate()
    // needs), and every rule has been evaluated at least once.
    let ready = [
        format!("count_over_time(ingest_samples_total{{token_id=\"{rw}\"}}[1m]) >= 3"),
        r#"count_over_time(ingest_rejected_total{reason="rate_limited"}[1m]) >= 3"#.to_string(),
    ];
    let deadline = Instant::now() + Duration::from_secs(30);
    let rules = loop {
        let mut scraped = true;
        for q in &ready {
            scraped &= query(&http, port, q).await.is_ok_and(|r| !r.is_empty());
        }
        let rules: Option<Vec<Value>> = async {
            let url = format!("http://127.0.0.1:{port}/api/v1/rules");
            let v: Value = http.get(url).send().await.ok()?.json().await.ok()?;
            let groups = v["data"]["groups"].as_array()?;
            Some(
                groups
                    .iter()
                    .flat_map(|g| g["rules"].as_array().cloned().unwrap_or_default())
                    .collect(),
            )
        }
        .await;
        let evaluated = |r: &Vec<Value>| {
            !r.is_empty()
                && r.iter().all(|r| {
                    r["health"] != "unknown" && r["lastEvaluation"] != "0001-01-01T00:00:00Z"
                })
        };
        match rules {
            Some(r) if scraped && evaluated(&r) => break r,
            _ => {}
        }
        assert!(
            Instant::now() < deadline,
            "no scrapes or rule evaluations in 30 s\n{}",
            log()
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    };

    // Every rule of the file is loaded: Prometheus' list against the file's `- alert:` and
    // `- record:` lines (so no rule escapes the checks below).
    let in_file: BTreeSet<String> = std::fs::read_to_string(RULES)
        .unwrap()
        .lines()
        .filter_map(|l| {
            let l = l.trim_start().strip_prefix("- ")?;
            let name = l
                .strip_prefix("alert:")
                .or_else(|| l.strip_prefix("record:"))?;
            Some(name.trim().to_string())
        })
        .collect();
    let loaded: BTreeSet<String> = rules
        .iter()
        .filter_map(|r| Some(r["name"].as_str()?.to_string()))
        .collect();
    assert_eq!(
        loaded, in_file,
        "rules Prometheus loaded vs config/alerts.yml"
    );
    assert!(in_file.len() >= 7, "{in_file:?}");

    let mut queries: Vec<(String, String)> = rules
        .iter()
        .map(|r| {
            (
                format!("rule {}", r["name"]),
                r["query"].as_str().unwrap_or("").to_string(),
            )
        })
        .collect();
    let n_rules = queries.len();
    let dashboard: Value =
        serde_json::from_str(&std::fs::read_to_string(DASHBOARD).unwrap()).unwrap();
    dashboard_queries(&dashboard, &mut queries);
    assert!(
        queries.len() - n_rules >= 15,
        "dashboard queries found: {}",
        queries.len() - n_rules
    );
    // Grafana's variables, as a user with every token of these tests selected would see them.
    let tokens = format!("{rum}|{rw}|{limited}");
    let vars = [
        ("$__rate_interval", "1m"),
        ("$__interval", "15s"),
        ("$token_id", tokens.as_str()),
        ("$environment", ".*"),
        ("$spike_factor", "5"),
    ];

    let mut failures = Vec::new();
    let mut names = BTreeMap::<String, usize>::new();
    let mut rows = Vec::new();
    for (source, raw) in &queries {
        let mut q = raw.clone();
        for (var, value) in vars {
            q = q.replace(var, value);
        }
        if q.contains('$') {
            failures.push(format!(
                "{source}: a template variable the test does not know: {q}"
            ));
            continue;
        }
        let used = metric_names(&q);
        for name in &used {
            if !names.contains_key(name) {
                // count() of nothing is an empty vector, not 0.
                let n = query(&http, port, &format!("count({name})")).await;
                let n = n
                    .ok()
                    .and_then(|r| r.first()?["value"][1].as_str()?.parse().ok());
                names.insert(name.clone(), n.unwrap_or(0));
            }
        }
        match query(&http, port, &q).await {
            Err(e) => failures.push(format!("{source}: does not parse: {e}\n  {q}")),
            Ok(result) => {
                let all_exist = used.iter().all(|n| names[n] > 0);
                if !source.starts_with("rule") && all_exist && result.is_empty() {
                    failures.push(format!(
                        "{source}: no data although its metrics exist\n  {q}"
                    ));
                }
                rows.push((source.clone(), result.len(), used));
            }
        }
    }
    for r in &rules {
        if r["health"] != "ok" {
            failures.push(format!(
                "rule {}: health {} {}",
                r["name"], r["health"], r["lastError"]
            ));
        }
    }
    eprintln!("query -> series returned (metrics read):");
    for (source, n, used) in &rows {
        eprintln!("  {n:>3}  {source}  {used:?}");
    }
    eprintln!("metric -> series in Prometheus:");
    for (name, n) in &names {
        eprintln!("  {n:>3}  {name}");
    }
    let missing: Vec<&String> = names
        .iter()
        .filter(|(_, n)| **n == 0)
        .map(|(k, _)| k)
        .collect();
    if !missing.is_empty() {
        failures.push(format!(
            "metrics with no series (not exported by this edge): {missing:?}"
        ));
    }
    assert!(
        failures.is_empty(),
        "{} problems:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        started.elapsed() < Duration::from_secs(60),
        "took {:?}",
        started.elapsed()
    );
}

/// The extractor the "has data" check relies on: names outside strings, whole words only.
#[test]
fn metric_names_skip_strings_and_label_names() {
    let q = r#"sum by (token_id) (rate(ingest_rejected_total{reason="ingest_fake", token_id!=""}[5m]))
        / on (token_id) group_left (name) topk by (token_id) (1, ingest_token_info) > 0.2"#;
    let names: Vec<String> = metric_names(q).into_iter().collect();
    assert_eq!(names, ["ingest_rejected_total", "ingest_token_info"]);
}
