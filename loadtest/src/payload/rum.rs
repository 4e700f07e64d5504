//! Deterministic OTLP/HTTP JSON trace exports shaped like the OpenTelemetry JS web SDK's
//! (`documentLoad`, `documentFetch`, `resourceFetch`, `click` spans with their usual
//! attributes and timing events; the JSON encoding the JS exporter uses: ids in hex,
//! nanosecond times as strings), sized 2-4 KB each.

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

/// Smallest export we emit; spans are added until a body reaches it.
pub const MIN_BYTES: usize = 2048;
/// Largest export we emit.
pub const MAX_BYTES: usize = 4096;

const PAGES: [&str; 4] = ["/", "/cart", "/checkout", "/product/42"];
const ASSETS: [&str; 5] = [
    "/static/js/main.5f3a1c.js",
    "/static/css/app.91be02.css",
    "/api/v1/cart",
    "/img/hero.avif",
    "/api/v1/recommendations?limit=8",
];

fn hex(rng: &mut StdRng, bytes: usize) -> String {
    (0..bytes)
        .map(|_| format!("{:02x}", rng.gen::<u8>()))
        .collect()
}

fn attr(key: &str, value: Value) -> Value {
    let typed = match value {
        Value::Number(n) if n.is_i64() || n.is_u64() => json!({ "intValue": n.to_string() }),
        Value::Number(n) => json!({ "doubleValue": n }),
        Value::Bool(b) => json!({ "boolValue": b }),
        other => json!({ "stringValue": other }),
    };
    json!({ "key": key, "value": typed })
}

fn event(name: &str, t: u64) -> Value {
    json!({ "attributes": [], "name": name, "timeUnixNano": t.to_string(), "droppedAttributesCount": 0 })
}

fn span(rng: &mut StdRng, trace_id: &str, parent: Option<&str>, origin: &str, t0: u64) -> Value {
    let kind = rng.gen_range(0..3u8);
    let start = t0 + rng.gen_range(0..2_000_000_000u64);
    let dur = rng.gen_range(200_000..900_000_000u64);
    let (name, attributes, events) = match kind {
        0 => {
            let asset = ASSETS[rng.gen_range(0..ASSETS.len())];
            let url = format!("{origin}{asset}");
            let attrs = vec![
                attr("http.url", json!(url)),
                attr("http.method", json!("GET")),
                attr("http.status_code", json!(200)),
                attr(
                    "http.response_content_length",
                    json!(rng.gen_range(200..400_000u32)),
                ),
                attr(
                    "http.user_agent",
                    json!("Mozilla/5.0 (X11; Linux x86_64) Chrome/156.0"),
                ),
            ];
            let steps = [
                "fetchStart",
                "connectStart",
                "requestStart",
                "responseStart",
                "responseEnd",
            ];
            let evs = steps
                .iter()
                .enumerate()
                .map(|(i, n)| event(n, start + dur / 5 * i as u64))
                .collect();
            ("resourceFetch", attrs, evs)
        }
        1 => {
            let page = PAGES[rng.gen_range(0..PAGES.len())];
            let attrs = vec![
                attr("event_type", json!("click")),
                attr("target_element", json!("BUTTON")),
                attr("target_xpath", json!("//*[@id=\"add-to-cart\"]")),
                attr("http.url", json!(format!("{origin}{page}"))),
            ];
            ("click", attrs, Vec::new())
        }
        _ => {
            let page = PAGES[rng.gen_range(0..PAGES.len())];
            let attrs = vec![
                attr("http.url", json!(format!("{origin}{page}"))),
                attr(
                    "http.user_agent",
                    json!("Mozilla/5.0 (X11; Linux x86_64) Chrome/156.0"),
                ),
                attr("app.request_id", json!(hex(rng, 16))),
            ];
            let steps = [
                "fetchStart",
                "domInteractive",
                "domComplete",
                "loadEventEnd",
            ];
            let evs = steps
                .iter()
                .enumerate()
                .map(|(i, n)| event(n, start + dur / 4 * i as u64))
                .collect();
            ("documentLoad", attrs, evs)
        }
    };
    let mut span = json!({
        "traceId": trace_id,
        "spanId": hex(rng, 8),
        "name": name,
        "kind": 1,
        "startTimeUnixNano": start.to_string(),
        "endTimeUnixNano": (start + dur).to_string(),
        "attributes": attributes,
        "droppedAttributesCount": 0,
        "events": events,
        "droppedEventsCount": 0,
        "status": { "code": 0 },
        "links": [],
        "droppedLinksCount": 0,
        "flags": 257
    });
    if let (Some(p), Some(obj)) = (parent, span.as_object_mut()) {
        obj.insert("parentSpanId".to_string(), json!(p));
    }
    span
}

/// One export from `seed`: its JSON bytes (2-4 KB) and its span count.
pub fn generate(seed: u64, origin: &str) -> (Vec<u8>, u64) {
    let mut rng = StdRng::seed_from_u64(seed);
    let t0 = 1_795_822_428_000_000_000u64 + seed * 1_000_000_000;
    let trace_id = hex(&mut rng, 16);
    let resource = json!({
        "attributes": [
            attr("service.name", json!("shop-frontend")),
            attr("service.version", json!("1.14.2")),
            attr("deployment.environment", json!("production")),
            attr("telemetry.sdk.language", json!("webjs")),
            attr("telemetry.sdk.name", json!("opentelemetry")),
            attr("telemetry.sdk.version", json!("2.12.0")),
            attr("session.id", json!(hex(&mut rng, 16))),
            attr("app.page_origin", json!(origin)),
        ],
        "droppedAttributesCount": 0
    });
    let mut spans: Vec<Value> = Vec::new();
    let mut root: Option<String> = None;
    loop {
        let s = span(&mut rng, &trace_id, root.as_deref(), origin, t0);
        if root.is_none() {
            root = s.get("spanId").and_then(Value::as_str).map(str::to_string);
        }
        spans.push(s);
        let export = json!({ "resourceSpans": [{
            "resource": resource,
            "scopeSpans": [{
                "scope": { "name": "@opentelemetry/instrumentation-document-load", "version": "0.50.0" },
                "spans": spans
            }]
        }]});
        let bytes = serde_json::to_vec(&export).unwrap_or_default();
        // A span adds well under 1 KB, so stopping at the first size >= MIN_BYTES stays
        // under MAX_BYTES (the test checks every seed used by default).
        if bytes.len() >= MIN_BYTES || spans.len() >= 32 {
            debug_assert!(bytes.len() <= MAX_BYTES, "{} bytes", bytes.len());
            return (bytes, spans.len() as u64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_counts_and_determinism() {
        for seed in 0..32 {
            let (body, spans) = generate(seed, "http://localhost:3000");
            assert!(
                (MIN_BYTES..=MAX_BYTES).contains(&body.len()),
                "{} bytes",
                body.len()
            );
            let v: Value = serde_json::from_slice(&body).unwrap();
            let got = v["resourceSpans"][0]["scopeSpans"][0]["spans"]
                .as_array()
                .unwrap()
                .len();
            assert_eq!(got as u64, spans);
            assert!(spans >= 2);
            assert_eq!(generate(seed, "http://localhost:3000").0, body);
        }
        assert_ne!(generate(1, "http://a").0, generate(2, "http://a").0);
    }
}
