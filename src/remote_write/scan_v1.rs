//! The 1.0 hot path: walks a decompressed `prometheus.WriteRequest` with the wire reader,
//! validating and counting as it goes, without building the message. Label names and values
//! are borrowed slices of the body; the only allocations are for native histograms, which are
//! rare and decoded with their prost type ([`proto_v1::Histogram`]).
//!
//! Field numbers and wire types are those of [`super::proto_v1`]; unknown fields (and the
//! reserved tag 2) are skipped, a known field with the wrong wire type is an undecodable
//! payload, as with prost.

use prost::Message;

use super::histogram::{self, HistogramView};
use super::names::{check_legacy, check_value, KnownNames};
use super::proto_v1;
use super::validate::{check_time, LabelSet, Names, Problem, Reject};
use super::wire::{read_varint, varint_at_end, Fields, Value, WireError};
use super::{Limits, RwError, Written};

/// Validates a 1.0 request body and counts what it carries (metadata: one per entry).
pub(super) fn scan(body: &[u8], limits: &Limits, now_ms: i64) -> Result<Written, RwError> {
    let deadline = now_ms.saturating_add(limits.max_future_ms);
    let mut written = Written::default();
    let mut series = 0usize;
    let mut known = KnownNames::new();
    let mut fields = Fields::new(body);
    while let Some(field) = fields.next_field() {
        let (tag, value) = field.map_err(|_| RwError::BadPayload)?;
        match tag {
            1 => {
                let msg = value.bytes().map_err(|_| RwError::BadPayload)?;
                timeseries(msg, limits, deadline, &mut written, &mut known)
                    .map_err(|r| r.at(series))?;
                series += 1;
            }
            3 => {
                let msg = value.bytes().map_err(|_| RwError::BadPayload)?;
                metadata(msg).map_err(|_| RwError::BadPayload)?;
                written.metadata += 1;
            }
            _ => {}
        }
    }
    Ok(written)
}

/// One `TimeSeries`: labels checked as a set, samples, exemplars and histograms one by one.
fn timeseries<'b>(
    msg: &'b [u8],
    limits: &Limits,
    deadline: i64,
    written: &mut Written,
    known: &mut KnownNames<'b>,
) -> Result<(), Reject> {
    let mut labels = LabelSet::new(Names::Legacy);
    // What every encoder writes, labels and samples with one-byte keys and lengths, is read in
    // place; the first field of any other shape hands the rest to the general reader below.
    let mut rest = msg;
    // Whether every name so far equals the last series' name at its position.
    let mut in_step = true;
    loop {
        match rest {
            [0x0a, n, tail @ ..] if *n < 0x80 => {
                let (msg, tail) = tail
                    .split_at_checked(usize::from(*n))
                    .ok_or(Reject::Payload)?;
                let (name, value) = label(msg)?;
                let position = labels.len();
                if in_step && known.in_step(position, name) {
                    labels.push_known(name, value, limits)?;
                    check_value(name, value, known)?;
                } else {
                    in_step = false;
                    labels.push_inlined(name, value, limits)?;
                    check_legacy(name, value, position, known)?;
                }
                rest = tail;
            }
            [0x12, n, tail @ ..] if *n < 0x80 => {
                let (msg, tail) = tail
                    .split_at_checked(usize::from(*n))
                    .ok_or(Reject::Payload)?;
                sample(msg, deadline)?;
                written.samples += 1;
                rest = tail;
            }
            _ => break,
        }
    }
    let mut fields = Fields::new(rest);
    while let Some(field) = fields.next_field() {
        let (tag, value) = field?;
        match tag {
            1 => {
                let (name, value) = label(value.bytes()?)?;
                let position = labels.len();
                labels.push(name, value, limits)?;
                check_legacy(name, value, position, known)?;
            }
            2 => {
                sample(value.bytes()?, deadline)?;
                written.samples += 1;
            }
            3 => {
                exemplar(value.bytes()?, deadline)?;
                written.exemplars += 1;
            }
            4 => {
                native_histogram(value.bytes()?, deadline)?;
                written.histograms += 1;
            }
            _ => {}
        }
    }
    labels.finish()?;
    known.series_done(labels.len());
    Ok(())
}

/// A `Label` as (name, value).
#[inline(always)]
fn label(msg: &[u8]) -> Result<(&[u8], &[u8]), WireError> {
    // Every encoder writes a label as `0x0a len name 0x12 len value` with one-byte lengths:
    // take that shape directly, anything else through the general reader.
    if let [0x0a, n, rest @ ..] = msg {
        if let Some((name, [0x12, m, value @ ..])) = rest.split_at_checked(usize::from(*n)) {
            if *n < 0x80 && *m < 0x80 && value.len() == usize::from(*m) {
                return Ok((name, value));
            }
        }
    }
    label_general(msg)
}

/// Any encoding of a `Label`; a repeated field keeps its last occurrence, as in protobuf.
#[inline(never)]
fn label_general(msg: &[u8]) -> Result<(&[u8], &[u8]), WireError> {
    let (mut name, mut value): (&[u8], &[u8]) = (&[], &[]);
    let mut fields = Fields::new(msg);
    while let Some(field) = fields.next_field() {
        match field? {
            (1, v) => name = v.bytes()?,
            (2, v) => value = v.bytes()?,
            _ => {}
        }
    }
    Ok((name, value))
}

/// A `Sample`; only its timestamp matters here (every f64 value is legal, stale markers too).
#[inline]
fn sample(msg: &[u8], deadline: i64) -> Result<(), Reject> {
    // The usual shape: `0x09 <8-byte value> 0x10 <timestamp varint>`.
    if let Some((&[0x09, ..], [0x10, ts @ ..])) = msg.split_first_chunk::<9>() {
        if let Some(timestamp) = varint_at_end(msg, ts.len()) {
            return Ok(check_time(timestamp as i64, deadline)?);
        }
        let mut ts = ts;
        let timestamp = read_varint(&mut ts)? as i64;
        if ts.is_empty() {
            return Ok(check_time(timestamp, deadline)?);
        }
    }
    let mut timestamp = 0;
    let mut fields = Fields::new(msg);
    while let Some(field) = fields.next_field() {
        match field? {
            (1, Value::Fixed64(_)) => {}
            (2, Value::Varint(ts)) => timestamp = ts as i64,
            (1 | 2, _) => return Err(Reject::Payload),
            _ => {}
        }
    }
    Ok(check_time(timestamp, deadline)?)
}

/// An `Exemplar`: labels must be UTF-8 (they are protobuf strings), timestamp not in the future.
fn exemplar(msg: &[u8], deadline: i64) -> Result<(), Reject> {
    let mut timestamp = 0;
    let mut fields = Fields::new(msg);
    while let Some(field) = fields.next_field() {
        match field? {
            (1, v) => {
                let (name, value) = label(v.bytes()?)?;
                if std::str::from_utf8(name).is_err() || std::str::from_utf8(value).is_err() {
                    return Err(Problem::InvalidUtf8.into());
                }
            }
            (2, Value::Fixed64(_)) => {}
            (3, Value::Varint(ts)) => timestamp = ts as i64,
            (2 | 3, _) => return Err(Reject::Payload),
            _ => {}
        }
    }
    Ok(check_time(timestamp, deadline)?)
}

/// A native histogram, decoded with prost (it needs its bucket vectors) and checked.
fn native_histogram(msg: &[u8], deadline: i64) -> Result<(), Reject> {
    let h = proto_v1::Histogram::decode(msg).map_err(|_| Reject::Payload)?;
    check_time(h.timestamp, deadline)?;
    histogram::check(&HistogramView {
        count: h.count,
        sum: h.sum,
        zero_count: h.zero_count,
        negative_spans: &h.negative_spans,
        negative_deltas: &h.negative_deltas,
        negative_counts: &h.negative_counts,
        positive_spans: &h.positive_spans,
        positive_deltas: &h.positive_deltas,
        positive_counts: &h.positive_counts,
    })?;
    Ok(())
}

/// A `MetricMetadata` entry: only decodability matters (its strings must be UTF-8).
fn metadata(msg: &[u8]) -> Result<(), WireError> {
    let mut fields = Fields::new(msg);
    while let Some(field) = fields.next_field() {
        match field? {
            (1, Value::Varint(_)) => {}
            (2 | 4 | 5, Value::Len(s)) => {
                std::str::from_utf8(s).map_err(|_| WireError)?;
            }
            (1 | 2 | 4 | 5, _) => return Err(WireError),
            _ => {}
        }
    }
    Ok(())
}
