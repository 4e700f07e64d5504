//! The 1.0 fast path for names already seen (`names::KnownNames::in_step`, which skips the
//! name checks of a label whose name equals the last series' at its position) against the
//! slow path (every name fully checked): on many generated requests, valid and not, both must
//! give the same verdict, down to the series index and the problem.

use std::collections::BTreeMap;

use super::names::{IN_STEP, SLOW_ONLY};
use super::tests::{Rng, NOW};
use super::{scan_v1, Limits, RwError, Written};

/// Names valid and not: sorted and unsorted neighbours, bad grammar, empty, too long (over
/// the 12 bytes of [`limits`]), not UTF-8, lengths 1 to 3 and 4 to 16 and beyond.
const NAMES: &[&[u8]] = &[
    b"__name__",
    b"a",
    b"b9",
    b"le",
    b"job",
    b"pod",
    b"container",
    b"instance",
    b"method",
    b"zz",
    b"_x",
    b"9bad",
    b"bad-name",
    b"",
    b"namespace_long",
    b"\xffa",
    b"status_code",
];

const METRICS: &[&[u8]] = &[
    b"up",
    b"http_requests_total",
    b"a:b",
    b"1bad",
    b"with-dash",
    b"x",
    b"rate:5m_total_long_name_here",
    b"\xc3\xbc",
    b"grpc_server_handled_total",
    b"",
];

const VALUES: &[&[u8]] = &[
    b"GET",
    b"200",
    b"x",
    b"10.42.0.1:8080",
    b"checkout-7d9f8b6c5",
    b"",
    b"\xc3\xa9t\xc3\xa9",
    b"\xc3",
    b"a value longer than twenty",
    b"0.005",
];

fn limits() -> Limits {
    Limits {
        max_label_names_per_series: 6,
        max_label_name_len: 12,
        max_label_value_len: 20,
        ..Limits::default()
    }
}

fn put(out: &mut Vec<u8>, key: u8, bytes: &[u8]) {
    out.push(key);
    let mut len = bytes.len();
    while len >= 0x80 {
        out.push(len as u8 | 0x80);
        len >>= 7;
    }
    out.push(len as u8);
    out.extend_from_slice(bytes);
}

/// A valid set: `__name__` and up to 5 of the valid names of the pool, sorted.
fn valid_names(rng: &mut Rng) -> Vec<&'static [u8]> {
    let mut names = vec![&b"__name__"[..]];
    for &name in &NAMES[1..10] {
        if names.len() < 6 && rng.below(2) == 0 {
            names.push(name);
        }
    }
    names.sort();
    names
}

/// The names of a series after `base`: mostly the same, otherwise one change (a name
/// replaced by any of the pool, dropped, added, or two swapped) or a fresh set.
fn next_names(rng: &mut Rng, base: &[&'static [u8]]) -> Vec<&'static [u8]> {
    let mut names = base.to_vec();
    match rng.below(24) {
        0 | 1 | 3 if names.is_empty() => {}
        0 => {
            let at = rng.below(names.len());
            names[at] = rng.pick(NAMES);
        }
        1 => drop(names.remove(rng.below(names.len()))),
        2 => names.insert(rng.below(names.len() + 1), rng.pick(NAMES)),
        3 => {
            let (i, j) = (rng.below(names.len()), rng.below(names.len()));
            names.swap(i, j);
        }
        4 => {
            names = (0..rng.below(9)).map(|_| rng.pick(NAMES)).collect();
            if rng.below(2) == 0 {
                names.sort();
            }
        }
        _ => {}
    }
    names
}

fn series_body(rng: &mut Rng, names: &[&[u8]]) -> Vec<u8> {
    let mut body = Vec::new();
    for &name in names {
        let value = if name == b"__name__" {
            match rng.below(4) {
                0 => rng.pick(METRICS),
                _ => METRICS[rng.below(2)],
            }
        } else if rng.below(12) == 0 {
            rng.pick(VALUES)
        } else {
            b"ok"
        };
        let mut label = Vec::new();
        put(&mut label, 0x0a, name);
        put(&mut label, 0x12, value);
        put(&mut body, 0x0a, &label);
    }
    let ts = if rng.below(50) == 0 {
        NOW + 3_600_000
    } else {
        NOW - rng.below(1 << 20) as i64
    };
    let mut sample = vec![0x09];
    sample.extend_from_slice(&1.5f64.to_le_bytes());
    sample.push(0x10);
    let mut v = ts as u64;
    while v >= 0x80 {
        sample.push(v as u8 | 0x80);
        v >>= 7;
    }
    sample.push(v as u8);
    put(&mut body, 0x12, &sample);
    body
}

fn scan(body: &[u8], slow: bool) -> Result<Written, RwError> {
    SLOW_ONLY.with(|s| s.set(slow));
    let result = scan_v1::scan(body, &limits(), NOW);
    SLOW_ONLY.with(|s| s.set(false));
    result
}

/// 30,000 requests of 1 to 10 series: the fast and the slow path agree on each, and the
/// requests cover acceptance and every name and value refusal (so agreement means something),
/// with the fast path taken often.
#[test]
fn known_names_fast_path_agrees_with_full_checks() {
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    let mut outcomes: BTreeMap<String, usize> = BTreeMap::new();
    IN_STEP.with(|n| n.set(0));
    for _ in 0..30_000 {
        let mut body = Vec::new();
        let mut base = valid_names(&mut rng);
        for _ in 0..rng.below(10) + 1 {
            let names = next_names(&mut rng, &base);
            put(&mut body, 0x0a, &series_body(&mut rng, &names));
            // Sometimes the change sticks, or another set takes over.
            match rng.below(8) {
                0 => base = names,
                1 => base = valid_names(&mut rng),
                _ => {}
            }
        }
        let fast = scan(&body, false);
        let slow = scan(&body, true);
        assert_eq!(fast, slow, "{body:02x?}");
        let outcome = match fast {
            Ok(_) => "accepted".to_owned(),
            Err(RwError::InvalidSeries { problem, .. }) => format!("{problem:?}"),
            Err(e) => format!("{e:?}"),
        };
        *outcomes.entry(outcome).or_default() += 1;
    }
    let hits = IN_STEP.with(|n| n.get());
    assert!(hits > 60_000, "fast path taken {hits} times");
    for outcome in [
        "accepted",
        "TooManyLabels",
        "EmptyLabelName",
        "LabelNameTooLong",
        "LabelsNotSorted",
        "DuplicateLabelName",
        "EmptyLabelValue",
        "LabelValueTooLong",
        "InvalidLabelName",
        "InvalidMetricName",
        "InvalidUtf8",
        "MissingMetricName",
        "TooFarInFuture",
    ] {
        assert!(
            outcomes.get(outcome).copied().unwrap_or(0) >= 20,
            "{outcome}: {outcomes:?}"
        );
    }
}
