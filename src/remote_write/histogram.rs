//! Consistency check of one native histogram sample, shared by 1.0 and 2.0 (same wire layout).
//!
//! The rules follow Prometheus's own `Histogram.Validate` / `FloatHistogram.Validate`:
//! - every span after the first has a non-negative offset, and the span lengths add up to the
//!   number of bucket values on that side;
//! - an integer histogram (`count_int`, or no count at all) carries bucket *deltas* and an
//!   integer zero count; a float histogram (`count_float`) carries absolute bucket *counts* and a
//!   float zero count; mixing the two flavours is refused;
//! - no bucket may end up negative (integer: the running sum of deltas; float: each count, which
//!   must also be finite);
//! - buckets + zero bucket == count, except when `sum` is NaN (a NaN was observed, which lands
//!   in no bucket, or the sample is a stale marker): then buckets + zero bucket <= count;
//! - float histograms get the same rule within a relative 1e-6 (absolute for counts below 1),
//!   and count itself must be a finite non-negative number. Prometheus skips the float
//!   comparison altogether for fear of rounding; a tolerance that wide absorbs any rounding a
//!   sum of bucket counts can accumulate while still catching a count that does not belong to
//!   its buckets.

use super::proto_v1::{BucketSpan, Count, ZeroCount};
use super::validate::Problem;

/// The fields of a histogram that the check needs, borrowed from either version's message.
pub(super) struct HistogramView<'a> {
    /// Total count, integer or float.
    pub count: Option<Count>,
    /// Sum of observations: NaN relaxes the integer count equality.
    pub sum: f64,
    /// Zero-bucket count, integer or float.
    pub zero_count: Option<ZeroCount>,
    /// Negative side spans.
    pub negative_spans: &'a [BucketSpan],
    /// Negative side deltas (integer flavour).
    pub negative_deltas: &'a [i64],
    /// Negative side counts (float flavour).
    pub negative_counts: &'a [f64],
    /// Positive side spans.
    pub positive_spans: &'a [BucketSpan],
    /// Positive side deltas (integer flavour).
    pub positive_deltas: &'a [i64],
    /// Positive side counts (float flavour).
    pub positive_counts: &'a [f64],
}

/// Checks one histogram sample; the first inconsistency found is returned.
pub(super) fn check(h: &HistogramView<'_>) -> Result<(), Problem> {
    match h.count {
        Some(Count::CountFloat(count)) => check_float(h, count),
        Some(Count::CountInt(count)) => check_int(h, count),
        // proto3 drops a zero oneof member only when it was never set: treat as integer 0.
        None => check_int(h, 0),
    }
}

fn check_int(h: &HistogramView<'_>, count: u64) -> Result<(), Problem> {
    if !h.negative_counts.is_empty()
        || !h.positive_counts.is_empty()
        || matches!(h.zero_count, Some(ZeroCount::ZeroCountFloat(_)))
    {
        return Err(Problem::HistogramMixedKinds);
    }
    check_spans(h.negative_spans, h.negative_deltas.len())?;
    check_spans(h.positive_spans, h.positive_deltas.len())?;
    let zero = match h.zero_count {
        Some(ZeroCount::ZeroCountInt(z)) => z,
        _ => 0,
    };
    // u128 so that no sum of u64-sized buckets can overflow.
    let total = u128::from(zero)
        + int_bucket_total(h.negative_deltas)?
        + int_bucket_total(h.positive_deltas)?;
    let count = u128::from(count);
    let consistent = if h.sum.is_nan() {
        total <= count
    } else {
        total == count
    };
    if consistent {
        Ok(())
    } else {
        Err(Problem::HistogramCountMismatch)
    }
}

/// Sum of the absolute bucket counts encoded as deltas; a bucket going negative is an error.
fn int_bucket_total(deltas: &[i64]) -> Result<u128, Problem> {
    let mut current: i64 = 0;
    let mut total: u128 = 0;
    for &delta in deltas {
        current = current
            .checked_add(delta)
            .ok_or(Problem::HistogramNegativeBucket)?;
        let abs = u64::try_from(current).map_err(|_| Problem::HistogramNegativeBucket)?;
        total += u128::from(abs);
    }
    Ok(total)
}

/// Relative slack allowed between a float histogram's count and its buckets.
const FLOAT_TOLERANCE: f64 = 1e-6;

fn check_float(h: &HistogramView<'_>, count: f64) -> Result<(), Problem> {
    if !h.negative_deltas.is_empty()
        || !h.positive_deltas.is_empty()
        || matches!(h.zero_count, Some(ZeroCount::ZeroCountInt(_)))
    {
        return Err(Problem::HistogramMixedKinds);
    }
    check_spans(h.negative_spans, h.negative_counts.len())?;
    check_spans(h.positive_spans, h.positive_counts.len())?;
    if !is_count(count) {
        return Err(Problem::HistogramCountMismatch);
    }
    let zero = match h.zero_count {
        Some(ZeroCount::ZeroCountFloat(z)) => z,
        _ => 0.0,
    };
    let mut total = 0.0;
    for &c in std::iter::once(&zero)
        .chain(h.negative_counts)
        .chain(h.positive_counts)
    {
        if !is_count(c) {
            return Err(Problem::HistogramNegativeBucket);
        }
        total += c;
    }
    let tolerance = FLOAT_TOLERANCE * count.max(1.0);
    let consistent = if h.sum.is_nan() {
        total <= count + tolerance
    } else {
        (total - count).abs() <= tolerance
    };
    if consistent {
        Ok(())
    } else {
        Err(Problem::HistogramCountMismatch)
    }
}

/// A float count is a finite number that is not negative (NaN fails both tests).
fn is_count(c: f64) -> bool {
    c.is_finite() && c >= 0.0
}

fn check_spans(spans: &[BucketSpan], buckets: usize) -> Result<(), Problem> {
    let mut covered: u64 = 0;
    for (i, span) in spans.iter().enumerate() {
        if i > 0 && span.offset < 0 {
            return Err(Problem::HistogramSpans);
        }
        covered += u64::from(span.length);
    }
    if covered == buckets as u64 {
        Ok(())
    } else {
        Err(Problem::HistogramSpans)
    }
}
