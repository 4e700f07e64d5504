//! Cost of the per-request origin check: parsing the `Origin` header and matching it against
//! a token's allowed origins (three patterns, one with a wildcard), as the RUM path does.

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion};
use ingest_edge::origin::{OriginList, RequestOrigin};

fn origin_check(c: &mut Criterion) {
    let list = match OriginList::parse_all(&[
        "https://www.example.com",
        "http://localhost:3000",
        "https://*.apps.example.com",
    ]) {
        Ok(list) => list,
        Err(bad) => panic!("bench patterns must parse: {bad:?}"),
    };
    let mut group = c.benchmark_group("origin");
    for (name, header) in [
        ("allowed_wildcard", &b"https://prod.apps.example.com"[..]),
        ("allowed_exact_last_miss", &b"https://evil.example.org"[..]),
        ("slow_path_uppercase", &b"HTTPS://Prod.Apps.Example.com"[..]),
    ] {
        group.bench_function(name, |b| {
            b.iter(|| match RequestOrigin::parse(black_box(header)) {
                Ok(origin) => list.allows(&origin),
                Err(_) => false,
            })
        });
    }
    let parsed = match RequestOrigin::parse(b"https://prod.apps.example.com") {
        Ok(origin) => origin,
        Err(e) => panic!("bench origin must parse: {e}"),
    };
    group.bench_function("allows_only", |b| {
        b.iter(|| list.allows(black_box(&parsed)))
    });
    group.finish();
}

criterion_group!(benches, origin_check);
criterion_main!(benches);
