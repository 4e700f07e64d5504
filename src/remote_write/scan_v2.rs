//! The 2.0 hot path: walks a decompressed `io.prometheus.write.v2.Request` with the wire
//! reader in two passes, without building the message. Pass one collects the symbols table
//! (borrowed slices, each checked for UTF-8 once) wherever it sits in the body; pass two
//! validates and counts the series, resolving label references against it. Native histograms
//! are decoded with their prost type ([`proto_v2::Histogram`]).
//!
//! Field numbers are those of [`super::proto_v2`]; the retired `TimeSeries` field 6 and any
//! other unknown field are skipped silently, as prost does.

use prost::Message;

use super::histogram::{self, HistogramView};
use super::proto_v2;
use super::validate::{check_time, check_unique, LabelSet, Names, Problem, Reject};
use super::wire::{read_varint, Fields, Value};
use super::{Limits, RwError, Written};

/// Validates a 2.0 request body and counts what it carries. `symbols` is scratch space from the
/// decoder, empty on entry; it is left filled with slices of `body`, at most
/// [`Limits::max_symbols`] of them (more is [`RwError::TooManySymbols`]).
///
/// Metadata counts the series whose metadata says anything (a type other than unspecified, or
/// a non-empty help or unit): 2.0 attaches metadata to every series, so an all-default one
/// carries no information.
pub(super) fn scan<'b>(
    body: &'b [u8],
    limits: &Limits,
    now_ms: i64,
    symbols: &mut Vec<&'b [u8]>,
) -> Result<Written, RwError> {
    let mut has_series = false;
    let max_symbols = limits.max_symbols();
    let mut fields = Fields::new(body);
    while let Some(field) = fields.next_field() {
        match field.map_err(|_| RwError::BadPayload)? {
            (4, value) => {
                let symbol = value.bytes().map_err(|_| RwError::BadPayload)?;
                if !symbol.is_ascii() {
                    std::str::from_utf8(symbol).map_err(|_| RwError::BadPayload)?;
                }
                // Counted before the push, so the table never grows past the limit.
                if symbols.len() >= max_symbols {
                    return Err(RwError::TooManySymbols { limit: max_symbols });
                }
                symbols.push(symbol);
            }
            (5, value) => {
                value.bytes().map_err(|_| RwError::BadPayload)?;
                has_series = true;
            }
            _ => {}
        }
    }
    match symbols.first() {
        Some([]) => {}
        // Only a request without series may come without the table: nothing refers into it.
        None if !has_series => {}
        _ => return Err(RwError::FirstSymbolNotEmpty),
    }

    let deadline = now_ms.saturating_add(limits.max_future_ms);
    let mut written = Written::default();
    let mut series = 0usize;
    // Names of an out-of-order series, for the repeat check; empty (no allocation) until one
    // comes, then reused for the rest of the request.
    let mut names = Vec::new();
    let mut fields = Fields::new(body);
    while let Some(field) = fields.next_field() {
        // Pass one proved every field well-formed.
        if let Ok((5, value)) = field {
            let msg = value.bytes().map_err(|_| RwError::BadPayload)?;
            timeseries(msg, symbols, limits, deadline, &mut written, &mut names)
                .map_err(|r| r.at(series))?;
            series += 1;
        }
    }
    Ok(written)
}

/// Metadata of one series as references, resolved once the series is read.
#[derive(Default)]
struct MetadataRefs {
    /// Metric type (0 = unspecified).
    kind: u64,
    /// Symbol index of HELP.
    help: u64,
    /// Symbol index of the unit.
    unit: u64,
}

fn timeseries<'b>(
    msg: &'b [u8],
    symbols: &[&'b [u8]],
    limits: &Limits,
    deadline: i64,
    written: &mut Written,
    names: &mut Vec<&'b [u8]>,
) -> Result<(), Reject> {
    let mut labels = LabelSet::new(Names::Utf8PreChecked);
    // A name reference waiting for its value (pairs may straddle packed chunks).
    let mut pending_name: Option<&'b [u8]> = None;
    let (mut samples, mut histograms) = (0u64, 0u64);
    let mut metadata: Option<MetadataRefs> = None;
    let mut fields = Fields::new(msg);
    while let Some(field) = fields.next_field() {
        let (tag, value) = field?;
        match tag {
            1 => for_each_ref(value, |r| {
                let symbol = lookup(symbols, r).ok_or(Problem::LabelRefOutOfRange)?;
                match pending_name.take() {
                    Some(name) => Ok(labels.push(name, symbol, limits)?),
                    None => {
                        pending_name = Some(symbol);
                        Ok(())
                    }
                }
            })?,
            2 => {
                sample(value.bytes()?, deadline)?;
                samples += 1;
            }
            3 => {
                native_histogram(value.bytes()?, deadline)?;
                histograms += 1;
            }
            4 => {
                exemplar(value.bytes()?, symbols.len(), deadline)?;
                written.exemplars += 1;
            }
            5 => merge_metadata(
                value.bytes()?,
                metadata.get_or_insert_with(Default::default),
            )?,
            _ => {}
        }
    }
    if pending_name.is_some() {
        return Err(Problem::OddLabelRefs.into());
    }
    if labels.out_of_order() {
        collect_names(msg, symbols, names)?;
        check_unique(names)?;
    }
    labels.finish()?;
    match (samples, histograms) {
        (0, 0) => return Err(Problem::NoSamplesOrHistograms.into()),
        (1.., 1..) => return Err(Problem::SamplesAndHistograms.into()),
        _ => {}
    }
    written.samples += samples;
    written.histograms += histograms;
    if let Some(md) = metadata {
        let help = lookup(symbols, md.help).ok_or(Problem::MetadataRefOutOfRange)?;
        let unit = lookup(symbols, md.unit).ok_or(Problem::MetadataRefOutOfRange)?;
        written.metadata += u64::from(md.kind != 0 || !help.is_empty() || !unit.is_empty());
    }
    Ok(())
}

/// The label names of a series whose references were already read (every one in range, an
/// even count), into `names`; only for the rare out-of-order series.
#[cold]
fn collect_names<'b>(
    msg: &'b [u8],
    symbols: &[&'b [u8]],
    names: &mut Vec<&'b [u8]>,
) -> Result<(), Reject> {
    names.clear();
    let mut is_name = true;
    let mut fields = Fields::new(msg);
    while let Some(field) = fields.next_field() {
        if let (1, value) = field? {
            for_each_ref(value, |r| {
                if is_name {
                    names.push(lookup(symbols, r).ok_or(Problem::LabelRefOutOfRange)?);
                }
                is_name = !is_name;
                Ok(())
            })?;
        }
    }
    Ok(())
}

#[inline]
fn lookup<'b>(symbols: &[&'b [u8]], r: u64) -> Option<&'b [u8]> {
    usize::try_from(r)
        .ok()
        .and_then(|i| symbols.get(i))
        .copied()
}

/// Reads one occurrence of a repeated `uint32` field, packed or not, calling `each` per value.
#[inline]
fn for_each_ref(
    value: Value<'_>,
    mut each: impl FnMut(u64) -> Result<(), Reject>,
) -> Result<(), Reject> {
    match value {
        Value::Varint(v) => each(v),
        Value::Len(mut packed) => {
            while !packed.is_empty() {
                each(read_varint(&mut packed)?)?;
            }
            Ok(())
        }
        _ => Err(Reject::Payload),
    }
}

/// A `Sample`: value (any f64) and start timestamp are not judged, the timestamp is.
#[inline]
fn sample(msg: &[u8], deadline: i64) -> Result<(), Reject> {
    let mut timestamp = 0;
    let mut fields = Fields::new(msg);
    while let Some(field) = fields.next_field() {
        match field? {
            (1, Value::Fixed64(_)) | (3, Value::Varint(_)) => {}
            (2, Value::Varint(ts)) => timestamp = ts as i64,
            (1..=3, _) => return Err(Reject::Payload),
            _ => {}
        }
    }
    Ok(check_time(timestamp, deadline)?)
}

/// An `Exemplar`: label references in range and paired, timestamp not in the future.
fn exemplar(msg: &[u8], symbol_count: usize, deadline: i64) -> Result<(), Reject> {
    let mut timestamp = 0;
    let mut refs = 0usize;
    let mut fields = Fields::new(msg);
    while let Some(field) = fields.next_field() {
        match field? {
            (1, v) => for_each_ref(v, |r| {
                refs += 1;
                match usize::try_from(r) {
                    Ok(i) if i < symbol_count => Ok(()),
                    _ => Err(Problem::BadExemplarLabelRefs.into()),
                }
            })?,
            (2, Value::Fixed64(_)) => {}
            (3, Value::Varint(ts)) => timestamp = ts as i64,
            (2 | 3, _) => return Err(Reject::Payload),
            _ => {}
        }
    }
    if refs % 2 != 0 {
        return Err(Problem::BadExemplarLabelRefs.into());
    }
    Ok(check_time(timestamp, deadline)?)
}

/// Merges one `Metadata` occurrence (a repeated occurrence merges, as protobuf says).
fn merge_metadata(msg: &[u8], md: &mut MetadataRefs) -> Result<(), Reject> {
    let mut fields = Fields::new(msg);
    while let Some(field) = fields.next_field() {
        match field? {
            (1, Value::Varint(v)) => md.kind = v,
            (3, Value::Varint(v)) => md.help = v,
            (4, Value::Varint(v)) => md.unit = v,
            (1 | 3 | 4, _) => return Err(Reject::Payload),
            _ => {}
        }
    }
    Ok(())
}

/// A native histogram, decoded with prost (it needs its bucket vectors) and checked.
fn native_histogram(msg: &[u8], deadline: i64) -> Result<(), Reject> {
    let h = proto_v2::Histogram::decode(msg).map_err(|_| Reject::Payload)?;
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
