//! Cross-checks of the JSON fast path against the serde walk: real exports, every truncation
//! and many single-byte changes of them, and the timestamps it leaves to the walk.

use super::super::walk;
use super::*;
use crate::rum::outline;

/// A logs body with what the fast path must get right or leave alone: numbers in every
/// form, `null`, escapes, nested attribute values, an empty object and array.
const LOGS: &str = r#" {"resourceLogs":[{"resource":{"attributes":[{"key":"k","value":{"intValue":-12}}]},
    "scopeLogs":[{"scope":null,"logRecords":[
    {"timeUnixNano":"1795822428659000000","observedTimeUnixNano":1795822428659000001,"severityNumber":9,
     "body":{"stringValue":"h\u00e9\n\"]}"},"attributes":[{"key":"a","value":{"doubleValue":-0.5e-3}},
     {"key":"b","value":{"arrayValue":{"values":[true,false,null,{},[]]}}}],"traceId":"BBB5a1cff7e8e42a9f65b267bad49cd2",
     "spanId":"","flags":0},{"timeUnixNano":null,"x\u0041":1}]}]}]}
"#;

fn bodies() -> Vec<(Signal, Vec<u8>, u64)> {
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/otel-js-2.12");
    let mut all = vec![(Signal::Logs, LOGS.as_bytes().to_vec(), 2)];
    for name in ["export_00.json.body", "export_01.json.body"] {
        let body = std::fs::read(format!("{dir}/{name}")).unwrap();
        all.push((Signal::Traces, body, 1));
    }
    all
}

/// Where the fast path vouches for a body, the walk accepts it with the same count, the
/// nesting pass accepts it too and notes the same outline.
fn agrees(signal: Signal, body: &[u8]) -> bool {
    let Ok(text) = std::str::from_utf8(body) else {
        return true;
    };
    let key = match signal {
        Signal::Traces => "resourceSpans",
        Signal::Logs => "resourceLogs",
    };
    match count(signal, body) {
        Some((items, top)) => {
            walk(signal, text) == Ok(items)
                && outline::scan(body).is_ok_and(|o| o.items(body, key) == top.items(body, key))
        }
        None => true,
    }
}

fn fast_items(signal: Signal, body: &[u8]) -> Option<u64> {
    count(signal, body).map(|(items, _)| items)
}

#[test]
fn real_bodies_take_the_fast_path() {
    for (signal, body, items) in bodies() {
        let fast = fast_items(signal, &body);
        // The escaped key in LOGS sends it to the walk; the SDK's exports do not.
        let expected = (signal == Signal::Traces).then_some(items);
        assert_eq!(fast, expected, "{}", String::from_utf8_lossy(&body));
        let text = std::str::from_utf8(&body).unwrap();
        assert_eq!(walk(signal, text), Ok(items));
    }
    let plain = LOGS.replace(r#""x\u0041""#, r#""xA""#);
    assert_eq!(fast_items(Signal::Logs, plain.as_bytes()), Some(2));
}

#[test]
fn every_truncation_and_byte_change_agrees_with_the_walk() {
    let swaps = *b"\"\\{}[],:0-.eE n\x01x9";
    let mut checked = 0usize;
    for (signal, body, _) in bodies() {
        for cut in 0..body.len() {
            let shown = String::from_utf8_lossy(&body[..cut]).into_owned();
            assert!(agrees(signal, &body[..cut]), "cut at {cut}: {shown}");
        }
        for at in 0..body.len() {
            for &b in &swaps {
                let mut changed = body.clone();
                changed[at] = b;
                let shown = String::from_utf8_lossy(&changed).into_owned();
                assert!(agrees(signal, &changed), "byte {at} as {b:?}: {shown}");
                checked += 1;
            }
        }
    }
    assert!(checked > 10_000, "{checked}");
}

#[test]
fn timestamps_beyond_what_the_fast_path_reads_go_to_the_walk() {
    let span = |nanos: &str| {
        format!(
            r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{{"startTimeUnixNano":{nanos}}}]}}]}}]}}"#
        )
    };
    for nanos in [
        "1.5e3",
        "18446744073709551615",
        "\"18446744073709551615\"",
        "-0",
        "01",
        "\"+1\"",
    ] {
        let body = span(nanos);
        assert_eq!(fast_items(Signal::Traces, body.as_bytes()), None, "{nanos}");
    }
    for nanos in [
        "0",
        "1795822428659000000",
        "\"0123\"",
        "null",
        "9999999999999999999",
    ] {
        let body = span(nanos);
        assert_eq!(
            fast_items(Signal::Traces, body.as_bytes()),
            Some(1),
            "{nanos}"
        );
        assert_eq!(walk(Signal::Traces, &body), Ok(1), "{nanos}");
    }
}

#[test]
fn nesting_is_held_to_the_limit_empty_arrays_included() {
    // The attribute value sits inside 7 levels of spine (see rum::tests).
    let nested = |levels: usize, inner: &str| {
        let value = format!("{}{inner}{}", "[".repeat(levels), "]".repeat(levels));
        format!(
            r#"{{"resourceSpans":[{{"scopeSpans":[{{"spans":[{{"attributes":{value}}}]}}]}}]}}"#
        )
    };
    let room = MAX_JSON_DEPTH - 7;
    assert_eq!(
        fast_items(Signal::Traces, nested(room, "").as_bytes()),
        Some(1)
    );
    assert_eq!(
        fast_items(Signal::Traces, nested(room - 1, "{}").as_bytes()),
        Some(1)
    );
    for body in [nested(room + 1, ""), nested(room, "{}"), nested(room, "1")] {
        let fast = fast_items(Signal::Traces, body.as_bytes());
        let deep = outline::scan(body.as_bytes()).is_err();
        assert!(fast.is_none() || !deep, "{body}");
    }
    assert_eq!(
        fast_items(Signal::Traces, nested(room, "{}").as_bytes()),
        None
    );
}
