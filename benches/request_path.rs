//! The request path: token lookup + origin check against a large cache, OTLP JSON counting,
//! and whole RUM / remote_write requests through an in-process edge over loopback.

use std::sync::Arc;

#[path = "../tests/redis_support/redis.rs"]
mod redis_server;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use ingest_edge::config::LimitDefaults;
use ingest_edge::origin::{OriginList, RequestOrigin};
use ingest_edge::ratelimit::TokenLimiter;
use ingest_edge::rum::{count_items, Format, Signal};
use ingest_edge::secret::{TokenSecret, TokenType};
use ingest_edge::token::cache::{ActiveToken, Lookup, TokenCache};
use ingest_edge::usage::TokenUsage;

const TOKENS: usize = 100_000;

fn fixtures() -> std::path::PathBuf {
    let here = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    here.join("tests/fixtures")
}

fn cache_with_tokens(n: usize) -> (TokenCache, Vec<String>) {
    let cache = TokenCache::default();
    let origins = OriginList::parse_all(&[
        "https://*.example.com",
        "http://localhost:3000",
        "https://www.shop.example",
    ])
    .unwrap();
    let limits = LimitDefaults::default().client;
    // One clock for all, as the registry does (a clock of its own per token costs a CPUID,
    // a VM exit here, and 100,000 of them made up most of this bench's set-up).
    let clock = Arc::new(governor::clock::DefaultClock::default());
    let mut secrets = Vec::with_capacity(n);
    for i in 0..n {
        let secret = TokenSecret::generate(TokenType::Client);
        let id: Arc<str> = Arc::from(format!("tk_{i:012}").as_str());
        let token = Arc::new(ActiveToken {
            id: id.clone(),
            token_type: TokenType::Client,
            origins: origins.clone(),
            tenant: None,
            usage: Arc::new(TokenUsage::new(id)),
            limiter: Arc::new(TokenLimiter::with_shared_clock(limits, true, clock.clone())),
            revoked: false,
            disabled: false,
            abuse: Default::default(),
            name: "bench".into(),
            environment: "production".into(),
            client_type: None,
            attestation: None,
            age_base: 0,
            secrets: Box::default(),
        });
        cache.insert(secret.digest(), token, None);
        secrets.push(secret.expose().to_string());
    }
    (cache, secrets)
}

fn lookup_and_origin(c: &mut Criterion) {
    let (cache, secrets) = cache_with_tokens(TOKENS);
    let origin = b"https://app.example.com";
    let mut i = 0usize;
    c.bench_function("auth/parse+digest+lookup+origin (100k tokens)", |b| {
        b.iter(|| {
            i = (i + 7919) % secrets.len();
            let secret = TokenSecret::parse(&secrets[i]).unwrap();
            let Lookup::Active(t) = cache.lookup(&secret.digest(), 0) else {
                panic!("missing")
            };
            let o = RequestOrigin::parse(origin).unwrap();
            assert!(t.origins.allows(&o));
        })
    });
}

fn otlp_counting(c: &mut Criterion) {
    let body = std::fs::read(fixtures().join("otel-js-2.12/export_00.json.body")).unwrap();
    let mut g = c.benchmark_group("rum");
    g.throughput(Throughput::Bytes(body.len() as u64));
    g.bench_function("count_items/otlp-json fixture", |b| {
        b.iter(|| count_items(Signal::Traces, Format::Json, &body).unwrap())
    });
    g.finish();
}

/// What abuse monitoring adds to one request, measured alone so it can be set against the
/// whole requests below: the watch's hooks (client sketch, item counters, throttle flag,
/// last-used minute; for RUM the first-seen origin filter) and, for remote_write, on one
/// request in `SERIES_SAMPLE` (4), the label-set hash of every series of the fixture, its
/// per-request buffer and the sketch inserts. Per remote_write request on average:
/// unsampled + (sampled - unsampled) / 4.
fn monitoring(c: &mut Criterion) {
    use ingest_edge::abuse::hll::{fold_label, mix};
    use ingest_edge::remote_write::proto_v1::WriteRequest;
    let wire = std::fs::read(fixtures().join("prometheus-2.42/body_000.bin")).unwrap();
    let raw = snap::raw::Decoder::new().decompress_vec(&wire).unwrap();
    let req: WriteRequest = prost::Message::decode(raw.as_slice()).unwrap();
    let items = req
        .timeseries
        .iter()
        .map(|t| t.samples.len() as u64)
        .sum::<u64>();
    let peer: std::net::IpAddr = "10.1.2.3".parse().unwrap();
    let usage = TokenUsage::new(Arc::from("tk_bench"));
    let watch = &usage.watch;
    let mut hashes: Vec<u64> = Vec::new();
    let mut g = c.benchmark_group("abuse");
    g.bench_function("rw hooks, unsampled request", |b| {
        b.iter(|| {
            watch.client(peer);
            criterion::black_box(watch.sample_series());
            watch.passed(items).unwrap();
            watch.accepted(items, wire.len() as u64, 1_700_000_000);
        })
    });
    g.bench_function(
        format!(
            "rw hooks, sampled request ({} series hashed)",
            req.timeseries.len()
        ),
        |b| {
            b.iter(|| {
                hashes.clear();
                for ts in &req.timeseries {
                    let mut h = 0;
                    for l in &ts.labels {
                        h = fold_label(h, &l.name, &l.value);
                    }
                    hashes.push(mix(h));
                }
                watch.client(peer);
                watch.series(criterion::black_box(&hashes));
                watch.passed(items).unwrap();
                watch.accepted(items, wire.len() as u64, 1_700_000_000);
            })
        },
    );
    let origins = OriginList::parse_all(&["http://localhost:3000"]).unwrap();
    let origin = RequestOrigin::parse(b"http://localhost:3000").unwrap();
    g.bench_function("rum hooks per request", |b| {
        b.iter(|| {
            watch.client(peer);
            watch.origin_allowed(&origins, &origin);
            watch.passed(12).unwrap();
            watch.accepted(12, 3000, 1_700_000_000);
        })
    });
    g.finish();
}

fn whole_requests(c: &mut Criterion) {
    whole_requests_with(c, None, "");
}

/// The RUM request again with the token's limits in a real Redis on loopback (one round trip
/// for the request check, one for the item check), next to the local limiter's above.
fn whole_requests_global_limits(c: &mut Criterion) {
    let Some(redis) = redis_server::Redis::start() else {
        eprintln!("SKIPPED: redis-server not found");
        return;
    };
    whole_requests_with(c, Some(redis.url()), ", limits in Redis");
}

fn whole_requests_with(c: &mut Criterion, redis_url: Option<String>, suffix: &str) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let (edge, rum_secret, rw_secret) = rt.block_on(async {
        let mut cfg = ingest_edge::Config::default();
        if let Some(url) = redis_url.clone() {
            cfg.limits.redis_url = ingest_edge::config::RedisUrl(url);
        }
        cfg.server.ingest_addr = "127.0.0.1:0".parse().unwrap();
        cfg.server.ops_addr = "127.0.0.1:0".parse().unwrap();
        cfg.data_dir.0 = dir.path().to_owned();
        cfg.admin.key = Some("bench-admin-key-0123456789".into());
        cfg.pipeline.max_bytes = 1 << 40;
        let edge = ingest_edge::Edge::start(cfg).await.unwrap();
        let http = reqwest::Client::new();
        let mut secrets = vec![];
        for body in [
            serde_json::json!({"name": "b", "type": "client", "origins": ["http://localhost:3000"],
                "limits": {"requests_per_second": 4000000, "requests_burst": 4000000, "items_per_second": 4000000, "items_burst": 4000000,
                           "per_client_requests_per_second": 4000000, "per_client_requests_burst": 4000000}}),
            serde_json::json!({"name": "b", "type": "remote_write",
                "limits": {"requests_per_second": 4000000, "requests_burst": 4000000, "items_per_second": 4000000, "items_burst": 4000000}}),
        ] {
            let v: serde_json::Value = http
                .post(format!("http://{}/api/v1/tokens", edge.ops_addr()))
                .bearer_auth(edge.admin_key())
                .json(&body)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            secrets.push(v["token"].as_str().unwrap().to_string());
        }
        if redis_url.is_some() {
            let active = |m: &str| m.contains("ingest_global_limits_active 1");
            for _ in 0..100 {
                let m = http
                    .get(format!("http://{}/metrics", edge.ops_addr()))
                    .send()
                    .await
                    .unwrap()
                    .text()
                    .await
                    .unwrap();
                if active(&m) {
                    break;
                }
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
        }
        (edge, secrets[0].clone(), secrets[1].clone())
    });
    let http = reqwest::Client::new();
    let rum_body = std::fs::read(fixtures().join("otel-js-2.12/export_00.json.body")).unwrap();
    let rw_body = std::fs::read(fixtures().join("prometheus-2.42/body_000.bin")).unwrap();
    let rum_url = format!("http://{}/v1/traces", edge.ingest_addr());
    let rw_url = format!("http://{}/api/v1/write", edge.ingest_addr());
    c.bench_function(
        &format!("http/rum request (loopback, keep-alive){suffix}"),
        |b| {
            b.to_async(&rt).iter_batched(
                || rum_body.clone(),
                |body| {
                    let req = http
                        .post(&rum_url)
                        .bearer_auth(&rum_secret)
                        .header("origin", "http://localhost:3000")
                        .header("content-type", "application/json")
                        .body(body);
                    async move { assert_eq!(req.send().await.unwrap().status(), 200) }
                },
                BatchSize::SmallInput,
            )
        },
    );
    c.bench_function(
        &format!("http/remote_write fixture request (loopback, keep-alive){suffix}"),
        |b| {
            b.to_async(&rt).iter_batched(
                || rw_body.clone(),
                |body| {
                    let req = http
                        .post(&rw_url)
                        .bearer_auth(&rw_secret)
                        .header("content-type", "application/x-protobuf")
                        .header("content-encoding", "snappy")
                        .body(body);
                    async move { assert_eq!(req.send().await.unwrap().status(), 204) }
                },
                BatchSize::SmallInput,
            )
        },
    );
    rt.block_on(edge.shutdown());
}

criterion_group!(
    benches,
    lookup_and_origin,
    otlp_counting,
    monitoring,
    whole_requests,
    whole_requests_global_limits
);
criterion_main!(benches);
