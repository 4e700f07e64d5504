//! OTLP counting (`rum::count_items` and `count_items_up_to`) for traces and logs, JSON and
//! protobuf.
//!
//! Input: byte 0 picks the signal (bit 0) and format (bit 1), byte 1 is the item limit, the rest
//! is the decompressed body. Checked beyond "no panic":
//! - a count from `count_items_up_to` never exceeds its limit, agrees with the whole count when
//!   that is within the limit, and is `TooManyItems` when the whole count is over it;
//! - JSON is counted whole whatever the limit (same answer both ways);
//! - protobuf: the walker accepts exactly what prost accepts for the `opentelemetry-proto`
//!   types (its documented contract) and counts the spans or log records prost builds.

use ingest_edge::rum::{count_items, count_items_up_to, Format, RumError, Signal};
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use prost::Message;

/// Prost materialises every message (an empty span: 2 bytes on the wire, ~250 built), so the
/// differential check only runs on bodies up to this size.
const PROST_MAX_BYTES: usize = 64 << 10;

pub fn check(data: &[u8]) {
    let (selector, rest) = crate::split_first(data);
    let (limit, body) = crate::split_first(rest);
    let signal = if selector & 1 == 0 {
        Signal::Traces
    } else {
        Signal::Logs
    };
    let format = if selector & 2 == 0 {
        Format::Json
    } else {
        Format::Protobuf
    };
    let max = u64::from(limit);
    let whole = count_items(signal, format, body);
    let bounded = count_items_up_to(signal, format, body, max);
    match format {
        Format::Json => assert_eq!(bounded, whole, "JSON counted differently under a limit"),
        Format::Protobuf => {
            if let Ok(n) = bounded {
                assert!(n <= max, "count {n} over the limit {max}");
                assert_eq!(whole, Ok(n), "bounded count differs from the whole count");
            }
            match whole {
                Ok(n) if n <= max => assert_eq!(bounded, Ok(n)),
                Ok(_) => assert_eq!(bounded, Err(RumError::TooManyItems)),
                Err(_) => assert!(bounded.is_err(), "bounded accepted what whole refused"),
            }
            if body.len() <= PROST_MAX_BYTES {
                let prost = match signal {
                    Signal::Traces => ExportTraceServiceRequest::decode(body).map(|r| {
                        let spans = r.resource_spans.iter().flat_map(|r| &r.scope_spans);
                        spans.map(|s| s.spans.len() as u64).sum::<u64>()
                    }),
                    Signal::Logs => ExportLogsServiceRequest::decode(body).map(|r| {
                        let logs = r.resource_logs.iter().flat_map(|r| &r.scope_logs);
                        logs.map(|s| s.log_records.len() as u64).sum::<u64>()
                    }),
                };
                match (prost, whole) {
                    (Ok(want), got) => assert_eq!(got, Ok(want), "walker differs from prost"),
                    (Err(e), Ok(n)) => panic!("walker counted {n}, prost refused: {e}"),
                    (Err(_), Err(_)) => {}
                }
            }
        }
    }
}
