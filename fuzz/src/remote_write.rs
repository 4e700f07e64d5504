//! Snappy + Remote-Write 1.0 and 2.0 decoding (`remote_write::Decoder::decode`, default limits).
//!
//! Input: byte 0 picks the version (even: 1.0, odd: 2.0), the rest is the snappy block body as
//! it arrives on the wire. Checked beyond "no panic":
//! - an accepted body's decoded size is within `max_decoded_bytes`;
//! - a reused decoder (buffers warm from earlier inputs) answers what a fresh one answers;
//! - against prost decoding the same bytes (the scanners' documented contract): where prost
//!   refuses the protobuf, the scanner refuses the body; where prost decodes it, the scanner
//!   does not call it `BadPayload`; and an accepted body's counts are prost's counts.

use std::cell::RefCell;

use ingest_edge::remote_write::proto_v1::WriteRequest;
use ingest_edge::remote_write::proto_v2::Request;
use ingest_edge::remote_write::{Decoder, Limits, RwError, Version, Written};
use prost::Message;

/// A fixed clock (2026-01-01), so a run is reproducible; the fixtures are older.
const NOW_MS: i64 = 1_767_225_600_000;

/// Prost materialises every message (far more memory than wire bytes), so the differential
/// check only runs on bodies that decode to at most this much.
const PROST_MAX_BYTES: usize = 256 << 10;

thread_local! {
    static WARM: RefCell<Decoder> = RefCell::new(Decoder::new());
}

pub fn check(data: &[u8]) {
    let (selector, body) = crate::split_first(data);
    let version = if selector % 2 == 0 {
        Version::V1
    } else {
        Version::V2
    };
    let limits = Limits::default();
    let warm = WARM.with(|d| d.borrow_mut().decode(version, body, &limits, NOW_MS));
    let fresh = Decoder::new().decode(version, body, &limits, NOW_MS);
    assert_eq!(warm, fresh, "a reused decoder answers differently");
    let Ok(raw) = snap::raw::Decoder::new().decompress_vec(body) else {
        assert!(fresh.is_err(), "snappy refuses a body the decoder accepted");
        return;
    };
    if fresh.is_ok() {
        assert!(
            raw.len() <= limits.max_decoded_bytes,
            "decoded past the limit"
        );
    }
    if raw.len() > PROST_MAX_BYTES {
        return;
    }
    let counts = match version {
        Version::V1 => WriteRequest::decode(&raw[..]).ok().map(|r| v1_counts(&r)),
        // `symbols` is a protobuf `string` held as bytes: add the UTF-8 check prost skips.
        Version::V2 => Request::decode(&raw[..])
            .ok()
            .filter(|r| r.symbols.iter().all(|s| std::str::from_utf8(s).is_ok()))
            .map(|r| v2_counts(&r)),
    };
    match (counts, fresh) {
        (None, Ok(w)) => panic!("prost refuses a body the scanner accepted ({w:?})"),
        (Some(_), Err(RwError::BadPayload)) => panic!("scanner calls a prost-decodable body bad"),
        (Some(want), Ok(got)) => match version {
            Version::V1 => assert_eq!(got, want, "1.0 counts differ from prost"),
            // 2.0 `metadata` counts series with metadata, a rule of its own: compare the rest.
            Version::V2 => assert_eq!(
                (got.samples, got.histograms, got.exemplars),
                (want.samples, want.histograms, want.exemplars),
                "2.0 counts differ from prost"
            ),
        },
        _ => {}
    }
}

fn v1_counts(req: &WriteRequest) -> Written {
    let sum = |f: fn(&ingest_edge::remote_write::proto_v1::TimeSeries) -> usize| {
        req.timeseries.iter().map(|t| f(t) as u64).sum()
    };
    Written {
        samples: sum(|t| t.samples.len()),
        histograms: sum(|t| t.histograms.len()),
        exemplars: sum(|t| t.exemplars.len()),
        metadata: req.metadata.len() as u64,
    }
}

fn v2_counts(req: &Request) -> Written {
    let sum = |f: fn(&ingest_edge::remote_write::proto_v2::TimeSeries) -> usize| {
        req.timeseries.iter().map(|t| f(t) as u64).sum()
    };
    Written {
        samples: sum(|t| t.samples.len()),
        histograms: sum(|t| t.histograms.len()),
        exemplars: sum(|t| t.exemplars.len()),
        metadata: 0,
    }
}
