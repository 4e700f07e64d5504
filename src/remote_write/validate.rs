//! The rules a receiver holds every series to, shared by the 1.0 and 2.0 scanners
//! (`scan_v1`, `scan_v2`), which feed them borrowed strings as they walk the body.
//!
//! The first problem found rejects the whole request (the edge never writes part of a request,
//! so the `*-Written` counts of a rejected request are all 0).
//!
//! What the two specs require, and what is checked here:
//! - 1.0 and 2.0 label sets: at least one label, `__name__` present (a SHOULD in the text, but a
//!   series without a name cannot be stored by any receiver, so it is refused), no repeated
//!   name, no empty name or value, names and values valid UTF-8.
//! - Label order: 1.0 names must be sorted byte-wise. 2.0 names may come in any order: the
//!   2.0 text says sorted, but senders other than Prometheus emit map order and the Prometheus
//!   receiver sorts them, so the edge does too (SPEC §6). A sorted set is checked in one
//!   streaming pass; only an out-of-order one is sorted (in [`check_unique`]) to find repeats.
//! - 1.0 only: metric names match `[a-zA-Z_:][a-zA-Z0-9_:]*` and label names
//!   `[a-zA-Z_][a-zA-Z0-9_]*` (MUST in 1.0). In 2.0 these regexes are only a SHOULD and any
//!   UTF-8 name is legal, so 2.0 names are not held to them.
//! - 2.0 only: `symbols[0] == ""`, every reference in range, `labels_refs` of even length, and a
//!   series carries samples or histograms, never both and never neither.
//! - Native histograms of both versions: see [`super::histogram`].
//! - Receiver limits in the spirit of Mimir's distributor ([`Limits`]).
//!
//! Stale markers (NaN with bit pattern 0x7ff0000000000002), other NaNs and ±Inf are legal sample
//! values and are never looked at.

use std::cmp::Ordering;
use std::fmt;

use super::wire::WireError;
use super::{Limits, RwError};

/// What is wrong with one series; `Copy` so rejecting costs nothing. Displayed after
/// `series N:` in the 400 body.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Problem {
    /// The series has no labels at all.
    NoLabels,
    /// No `__name__` label.
    MissingMetricName,
    /// 1.0: a label name sorts before the previous one.
    LabelsNotSorted,
    /// Two labels share a name.
    DuplicateLabelName,
    /// A label name is the empty string.
    EmptyLabelName,
    /// A label value is the empty string.
    EmptyLabelValue,
    /// A 1.0 label name outside `[a-zA-Z_][a-zA-Z0-9_]*`.
    InvalidLabelName,
    /// A 1.0 metric name outside `[a-zA-Z_:][a-zA-Z0-9_:]*`.
    InvalidMetricName,
    /// A label (or exemplar label) string is not UTF-8: reported as an undecodable payload,
    /// exactly as a protobuf `string` field would be.
    InvalidUtf8,
    /// 2.0: a series with both samples and histograms.
    SamplesAndHistograms,
    /// 2.0: a series with neither samples nor histograms.
    NoSamplesOrHistograms,
    /// 2.0: a series label reference points past the symbols table.
    LabelRefOutOfRange,
    /// 2.0: series `labels_refs` of odd length.
    OddLabelRefs,
    /// 2.0: an exemplar label reference is out of range or its list has odd length.
    BadExemplarLabelRefs,
    /// 2.0: a metadata help or unit reference points past the symbols table.
    MetadataRefOutOfRange,
    /// A native histogram whose buckets do not add up to its count.
    HistogramCountMismatch,
    /// A native histogram whose spans do not match its bucket values.
    HistogramSpans,
    /// A native histogram with a negative (or, float, non-finite) bucket count.
    HistogramNegativeBucket,
    /// A native histogram mixing integer and float fields.
    HistogramMixedKinds,
    /// More labels than `Limits::max_label_names_per_series`.
    TooManyLabels,
    /// A label name longer than `Limits::max_label_name_len` bytes.
    LabelNameTooLong,
    /// A label value longer than `Limits::max_label_value_len` bytes.
    LabelValueTooLong,
    /// A sample, histogram or exemplar more than `Limits::max_future_ms` ahead of now.
    TooFarInFuture,
}

impl Problem {
    /// Short human-readable text for the response body.
    pub fn as_str(self) -> &'static str {
        match self {
            Problem::NoLabels => "series has no labels",
            Problem::MissingMetricName => "missing __name__ label",
            Problem::LabelsNotSorted => "labels not sorted by name",
            Problem::DuplicateLabelName => "duplicate label name",
            Problem::EmptyLabelName => "empty label name",
            Problem::EmptyLabelValue => "empty label value",
            Problem::InvalidLabelName => "invalid label name",
            Problem::InvalidMetricName => "invalid metric name",
            Problem::InvalidUtf8 => "label is not valid UTF-8",
            Problem::SamplesAndHistograms => "series has both samples and histograms",
            Problem::NoSamplesOrHistograms => "series has neither samples nor histograms",
            Problem::LabelRefOutOfRange => "label reference out of symbols range",
            Problem::OddLabelRefs => "labels_refs has odd length",
            Problem::BadExemplarLabelRefs => "invalid exemplar labels_refs",
            Problem::MetadataRefOutOfRange => "metadata reference out of symbols range",
            Problem::HistogramCountMismatch => "histogram bucket counts do not match its count",
            Problem::HistogramSpans => "histogram spans do not match its buckets",
            Problem::HistogramNegativeBucket => "histogram has a negative bucket count",
            Problem::HistogramMixedKinds => "histogram mixes integer and float fields",
            Problem::TooManyLabels => "too many labels",
            Problem::LabelNameTooLong => "label name too long",
            Problem::LabelValueTooLong => "label value too long",
            Problem::TooFarInFuture => "timestamp too far in the future",
        }
    }
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which naming rules a label set is held to.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Names {
    /// 1.0: names must be sorted; the legacy regexes (a MUST) and UTF-8 of values are checked
    /// by the caller with [`super::names::check_legacy`].
    Legacy,
    /// 2.0: any non-empty UTF-8 name; symbols were checked for UTF-8 once up front.
    Utf8PreChecked,
}

pub(super) const METRIC_NAME: &[u8] = b"__name__";

/// Streaming check of one label set, fed (name, value) pairs in wire order; the pairs borrow
/// from the decoded body (`'b`), so nothing is copied.
pub(super) struct LabelSet<'b> {
    /// Naming rules in force.
    names: Names,
    /// Pairs seen so far.
    count: usize,
    /// Previous name, for the sort and uniqueness check.
    previous: &'b [u8],
    /// Whether `__name__` was seen.
    has_metric_name: bool,
    /// 2.0: a name sorted before its predecessor, so repeats may be apart and the caller must
    /// run [`check_unique`] over the whole set.
    out_of_order: bool,
    /// Hash of the label set so far, for the abuse monitor's `series_growth` (see
    /// [`series_hashes`]); only when the request is sampled ([`hash_series`]).
    hash: u64,
    hashing: bool,
}

/// Most series hashes kept per request (512 KiB per worker thread at most); a larger request's
/// further series are not looked at by the abuse monitor.
const MAX_SERIES_HASHES: usize = 1 << 16;

thread_local! {
    /// The label-set hashes of the series of the request this thread decoded last.
    static SERIES_HASHES: std::cell::RefCell<Vec<u64>> = const { std::cell::RefCell::new(Vec::new()) };
    /// Whether the next request this thread decodes has its series hashed.
    static HASHING: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Whether the series of the next request this thread decodes are hashed (the abuse monitor
/// samples requests: a series is sent again every scrape, so it is seen soon enough, and the
/// other requests cost nothing).
pub fn hash_series(on: bool) {
    HASHING.with(|h| h.set(on));
}

/// Forgets the previous request's series hashes (the decoder calls it first).
pub(super) fn clear_series_hashes() {
    SERIES_HASHES.with(|h| h.borrow_mut().clear());
}

/// Hands `f` the label-set hashes of the series of the request this thread decoded last
/// (call it right after `Decoder::decode`, before any `.await`).
pub fn series_hashes<R>(f: impl FnOnce(&[u64]) -> R) -> R {
    SERIES_HASHES.with(|h| f(&h.borrow()))
}

impl<'b> LabelSet<'b> {
    pub(super) fn new(names: Names) -> LabelSet<'b> {
        LabelSet {
            names,
            count: 0,
            previous: &[],
            has_metric_name: false,
            out_of_order: false,
            hash: 0,
            hashing: HASHING.with(|h| h.get()),
        }
    }

    /// Checks the next pair against the previous ones and the limits (1.0 callers then run
    /// [`super::names::check_legacy`] on it). Never inlined: this is the 2.0 reference
    /// closure's call, and that closure is only inlined itself while it stays small.
    #[inline(never)]
    pub(super) fn push(
        &mut self,
        name: &'b [u8],
        value: &'b [u8],
        limits: &Limits,
    ) -> Result<(), Problem> {
        self.push_inlined(name, value, limits)
    }

    /// [`LabelSet::push`], always inlined: the 1.0 label loop calls it once per label, and a
    /// call kept the limits and the set out of registers.
    #[inline(always)]
    pub(super) fn push_inlined(
        &mut self,
        name: &'b [u8],
        value: &'b [u8],
        limits: &Limits,
    ) -> Result<(), Problem> {
        self.count += 1;
        if self.count > limits.max_label_names_per_series {
            return Err(Problem::TooManyLabels);
        }
        if name.is_empty() {
            return Err(Problem::EmptyLabelName);
        }
        if name.len() > limits.max_label_name_len {
            return Err(Problem::LabelNameTooLong);
        }
        match compare(name, self.previous) {
            Ordering::Greater => {}
            Ordering::Equal => return Err(Problem::DuplicateLabelName),
            // 2.0 allows any order; repeats are then found by `check_unique`.
            Ordering::Less if self.names == Names::Utf8PreChecked => self.out_of_order = true,
            Ordering::Less => return Err(Problem::LabelsNotSorted),
        }
        self.previous = name;
        self.take_value(name, value, limits)
    }

    /// [`LabelSet::push_inlined`] for a 1.0 name known to pass every name check at this
    /// position ([`super::names::KnownNames::in_step`]): the checks that remain, in the same
    /// order, so a refusal names the same problem. The label count needs none either: the
    /// series this one keeps in step with was accepted with at least this many labels.
    #[inline(always)]
    pub(super) fn push_known(
        &mut self,
        name: &'b [u8],
        value: &'b [u8],
        limits: &Limits,
    ) -> Result<(), Problem> {
        self.count += 1;
        self.previous = name;
        self.take_value(name, value, limits)
    }

    /// What every push checks and records after the name: the value's limits, the series
    /// hash, whether the metric name is there.
    #[inline(always)]
    fn take_value(
        &mut self,
        name: &'b [u8],
        value: &'b [u8],
        limits: &Limits,
    ) -> Result<(), Problem> {
        // Empty or too long in one comparison (empty wraps around to the largest length).
        if value.len().wrapping_sub(1) >= limits.max_label_value_len {
            return Err(if value.is_empty() {
                Problem::EmptyLabelValue
            } else {
                Problem::LabelValueTooLong
            });
        }
        if self.hashing {
            self.hash = crate::abuse::hll::fold_label(self.hash, name, value);
        }
        self.has_metric_name |= name == METRIC_NAME;
        Ok(())
    }

    /// Labels pushed so far.
    pub(super) fn len(&self) -> usize {
        self.count
    }

    /// Whether the names came out of order (2.0 only), so that the streaming check could not
    /// see every repeat: the caller then passes all names to [`check_unique`].
    pub(super) fn out_of_order(&self) -> bool {
        self.out_of_order
    }

    /// The checks that need the whole set: not empty, `__name__` present.
    pub(super) fn finish(&self) -> Result<(), Problem> {
        if self.count == 0 {
            Err(Problem::NoLabels)
        } else if !self.has_metric_name {
            Err(Problem::MissingMetricName)
        } else if !self.hashing {
            Ok(())
        } else {
            let hash = crate::abuse::hll::mix(self.hash);
            SERIES_HASHES.with(|h| {
                let mut h = h.borrow_mut();
                if h.len() < MAX_SERIES_HASHES {
                    h.push(hash);
                }
            });
            Ok(())
        }
    }
}

/// Sorts `names` (a 2.0 set that came out of order) and refuses a repeated one. The caller's
/// buffer is reused, so a sorted request never allocates for this.
pub(super) fn check_unique(names: &mut [&[u8]]) -> Result<(), Problem> {
    names.sort_unstable_by(|a, b| compare(a, b));
    if names.windows(2).any(|w| w.first() == w.last()) {
        return Err(Problem::DuplicateLabelName);
    }
    Ok(())
}

/// Byte-wise order; label names are short and usually differ in the first byte, where this
/// beats a call to `memcmp`.
#[inline]
fn compare(a: &[u8], b: &[u8]) -> Ordering {
    for (x, y) in a.iter().zip(b) {
        if x != y {
            return x.cmp(y);
        }
    }
    a.len().cmp(&b.len())
}

/// `Err` when `ts` is after `deadline` (now + `max_future_ms`).
#[inline]
pub(super) fn check_time(ts: i64, deadline: i64) -> Result<(), Problem> {
    if ts > deadline {
        Err(Problem::TooFarInFuture)
    } else {
        Ok(())
    }
}

/// Why a series (or the request) is refused, before the series index is attached.
pub(super) enum Reject {
    /// Not decodable as the declared message.
    Payload,
    /// Decodable, but breaks a rule.
    Problem(Problem),
}

impl Reject {
    /// The error for series number `series`.
    pub(super) fn at(self, series: usize) -> RwError {
        match self {
            Reject::Payload => RwError::BadPayload,
            Reject::Problem(problem) => RwError::InvalidSeries { series, problem },
        }
    }
}

impl From<Problem> for Reject {
    fn from(p: Problem) -> Reject {
        Reject::Problem(p)
    }
}

impl From<WireError> for Reject {
    fn from(_: WireError) -> Reject {
        Reject::Payload
    }
}
