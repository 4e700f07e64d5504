//! The 1.0 name rules, `[a-zA-Z_][a-zA-Z0-9_]*` for label names and `[a-zA-Z_:][a-zA-Z0-9_:]*`
//! for metric names, checked eight bytes at a time: every label of every 1.0 series goes
//! through here, and a byte-by-byte table walk was a sixth of the decode cost (issue 16).
//!
//! Each 8-byte word is tested with byte-wise range checks in a `u64` (SWAR): once every byte is
//! known to be below 0x80, adding `0x80 - lo` to a byte sets its top bit exactly when it is at
//! least `lo`, and adding `0x7f - hi` exactly when it is above `hi`, with no carry into the next
//! byte. Letters are folded to lower case first (`| 0x20` maps exactly `A-Z` and `a-z` onto
//! `a-z`); digits and `:` are the one range `0-:`. Values are held to UTF-8 through the same
//! words (ASCII first). A name equal to the one at the same position in the previous series
//! ([`KnownNames`]) is not checked again, and a series whose names all equal the previous
//! series' skips the name checks of [`super::validate::LabelSet`] too; a metric name is
//! checked once per request while it stays among the last few seen.

/// Which of the two 1.0 name grammars.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Grammar {
    /// `[a-zA-Z_][a-zA-Z0-9_]*`.
    Label,
    /// `[a-zA-Z_:][a-zA-Z0-9_:]*`.
    Metric,
}

use super::validate::{Problem, METRIC_NAME};

/// Names (and metric names) of earlier 1.0 series that passed [`check_legacy`]: consecutive
/// series of one request nearly always share their label names, and comparing with the one at
/// the same position is cheaper than the grammar check it saves. Only names that passed are
/// kept, and equal bytes pass equally, so this changes no verdict.
pub(super) struct KnownNames<'b> {
    /// The label name at each position of the last series (empty: none yet).
    names: [&'b [u8]; KNOWN_NAMES],
    /// How many of `names` are the last complete series' own (at most [`KNOWN_NAMES`]): they
    /// are sorted, unique and passed every name check, so a series whose names equal them
    /// position by position needs none of those checks again ([`KnownNames::in_step`]).
    series_len: usize,
    /// Metric names (values of `__name__`) that passed, by a hash of their length and last
    /// byte ([`metric_slot`]): a batch interleaves the series of a few metrics (a histogram's
    /// buckets, several counters of one target), so remembering only the last one missed
    /// whenever the metric changed.
    metrics: [&'b [u8]; KNOWN_METRICS],
}

/// Positions [`KnownNames`] remembers; labels past it are always checked.
const KNOWN_NAMES: usize = 32;

/// Metric names [`KnownNames`] remembers (a power of two: [`metric_slot`] masks with it).
const KNOWN_METRICS: usize = 16;

impl<'b> KnownNames<'b> {
    pub(super) fn new() -> KnownNames<'b> {
        KnownNames {
            names: [&[]; KNOWN_NAMES],
            series_len: 0,
            metrics: [&[]; KNOWN_METRICS],
        }
    }

    /// Whether `name` at `position` is the last complete series' name there. When it is and so
    /// were the names before it (the caller keeps that), the pair passes the name checks of
    /// [`super::validate::LabelSet::push`] and [`check_legacy`] as it did then: it is not
    /// empty, within the length limit, above its predecessor (the same predecessor as then,
    /// and that series was sorted), and matches the grammar.
    #[inline(always)]
    pub(super) fn in_step(&self, position: usize, name: &[u8]) -> bool {
        #[cfg(test)]
        if SLOW_ONLY.with(|s| s.get()) {
            return false;
        }
        let known =
            position < self.series_len && self.names.get(position).is_some_and(|k| same(k, name));
        #[cfg(test)]
        IN_STEP.with(|n| n.set(n.get() + u64::from(known)));
        known
    }

    /// A series of `len` labels was accepted: its names are the first `len` of `names` (every
    /// one went through [`check_legacy`] or matched there already).
    #[inline]
    pub(super) fn series_done(&mut self, len: usize) {
        self.series_len = len.min(KNOWN_NAMES);
    }
}

#[cfg(test)]
thread_local! {
    /// Set by tests: [`KnownNames::in_step`] always says no, so every name takes the full
    /// checks (the slow path the fast one is compared with).
    pub(super) static SLOW_ONLY: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    /// How many times [`KnownNames::in_step`] said yes (so a test knows the fast path ran).
    pub(super) static IN_STEP: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// Where [`KnownNames::metrics`] keeps `value`.
#[inline(always)]
fn metric_slot(value: &[u8]) -> usize {
    let last = value.last().copied().unwrap_or(0);
    (value.len().wrapping_mul(31) + usize::from(last)) % KNOWN_METRICS
}

/// The 1.0-only rules for a pair [`super::validate::LabelSet::push`] accepted at `position` (0-based): the
/// metric name grammar for the value of `__name__`, the label name grammar for other names,
/// and UTF-8 for other values. An empty string never matches a known name: `push` refused it.
#[inline(always)]
pub(super) fn check_legacy<'b>(
    name: &'b [u8],
    value: &'b [u8],
    position: usize,
    known: &mut KnownNames<'b>,
) -> Result<(), Problem> {
    match known.names.get_mut(position) {
        Some(slot) if same(slot, name) => {}
        slot => {
            if name != METRIC_NAME && !matches(name, Grammar::Label) {
                return Err(Problem::InvalidLabelName);
            }
            if let Some(slot) = slot {
                *slot = name;
            }
        }
    }
    check_value(name, value, known)
}

/// The value rules of [`check_legacy`] alone, for a name known to pass (see
/// [`KnownNames::in_step`]): the metric name grammar for `__name__`, else UTF-8.
#[inline(always)]
pub(super) fn check_value<'b>(
    name: &[u8],
    value: &'b [u8],
    known: &mut KnownNames<'b>,
) -> Result<(), Problem> {
    if name == METRIC_NAME {
        // The grammar implies ASCII, hence UTF-8.
        if let Some(slot) = known.metrics.get_mut(metric_slot(value)) {
            if !same(slot, value) {
                if !matches(value, Grammar::Metric) {
                    return Err(Problem::InvalidMetricName);
                }
                *slot = value;
            }
            return Ok(());
        }
        return if matches(value, Grammar::Metric) {
            Ok(())
        } else {
            Err(Problem::InvalidMetricName)
        };
    }
    // ASCII (the usual case) is UTF-8; the word-at-a-time ASCII test is cheaper.
    if !all_words(value, |w| w & HIGH == 0) && std::str::from_utf8(value).is_err() {
        return Err(Problem::InvalidUtf8);
    }
    Ok(())
}

/// `a == b`, inlined for the short strings label names are (a call to `memcmp` per label was
/// 7 % of the decode): equal lengths, then two overlapping words.
#[inline(always)]
pub(super) fn same(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    if a.len() <= 16 {
        if let (Some((&a0, _)), Some((_, &a1)), Some((&b0, _)), Some((_, &b1))) = (
            a.split_first_chunk::<8>(),
            a.split_last_chunk::<8>(),
            b.split_first_chunk::<8>(),
            b.split_last_chunk::<8>(),
        ) {
            return u64::from_le_bytes(a0) == u64::from_le_bytes(b0)
                && u64::from_le_bytes(a1) == u64::from_le_bytes(b1);
        }
        if let (Some((&a0, _)), Some((_, &a1)), Some((&b0, _)), Some((_, &b1))) = (
            a.split_first_chunk::<4>(),
            a.split_last_chunk::<4>(),
            b.split_first_chunk::<4>(),
            b.split_last_chunk::<4>(),
        ) {
            return u32::from_le_bytes(a0) == u32::from_le_bytes(b0)
                && u32::from_le_bytes(a1) == u32::from_le_bytes(b1);
        }
        // 0 to 3 bytes: the first, middle and last cover them.
        return a.first() == b.first()
            && a.get(a.len() / 2) == b.get(b.len() / 2)
            && a.last() == b.last();
    }
    if a.len() <= 64 {
        // Metric names: words of 8, the last one overlapping.
        let (mut x, mut y) = (a, b);
        while let (Some((&xw, xt)), Some((&yw, yt))) =
            (x.split_first_chunk::<8>(), y.split_first_chunk::<8>())
        {
            if xw != yw {
                return false;
            }
            (x, y) = (xt, yt);
        }
        return a.last_chunk::<8>() == b.last_chunk::<8>();
    }
    a == b
}

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = ONES * 0x80;

/// Whether `s` matches `grammar` (the empty string does not).
#[inline]
pub(super) fn matches(s: &[u8], grammar: Grammar) -> bool {
    match s.first() {
        Some(first) if !first.is_ascii_digit() => all_name_chars(s, grammar),
        _ => false,
    }
}

/// Every byte of `s` is a name character of `grammar`.
#[inline]
fn all_name_chars(s: &[u8], grammar: Grammar) -> bool {
    let colon = grammar == Grammar::Metric;
    all_words(s, |w| word_ok(w, colon))
}

/// `test` holds for 8-byte words that together hold every byte of `s` and nothing else (true
/// for the empty string): words of 8, the last one overlapping the previous (re-testing a byte
/// is harmless); 4 to 7 bytes as two overlapping halves; 1 to 3 as their first, middle and
/// last byte, repeated.
#[inline(always)]
fn all_words(s: &[u8], test: impl Fn(u64) -> bool) -> bool {
    if s.len() >= 8 {
        let mut rest = s;
        while let Some((&word, tail)) = rest.split_first_chunk::<8>() {
            if !test(u64::from_le_bytes(word)) {
                return false;
            }
            rest = tail;
        }
        return rest.is_empty()
            || s.split_last_chunk::<8>()
                .is_some_and(|(_, &w)| test(u64::from_le_bytes(w)));
    }
    if let (Some((&a, _)), Some((_, &b))) = (s.split_first_chunk::<4>(), s.split_last_chunk::<4>())
    {
        return test(u64::from(u32::from_le_bytes(a)) | u64::from(u32::from_le_bytes(b)) << 32);
    }
    match (s.first(), s.get(s.len() / 2), s.last()) {
        (Some(&a), Some(&b), Some(&c)) => {
            // Bytes a b c a b c a b, in registers (an array would go through memory).
            let abc = u64::from(a) | u64::from(b) << 8 | u64::from(c) << 16;
            let twice = abc | abc << 24;
            test(twice | twice << 48)
        }
        _ => true,
    }
}

/// One byte (the rule as written, for the tests).
#[cfg(test)]
fn byte_ok(b: u8, colon: bool) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || (colon && b == b':')
}

/// All 8 bytes of `w` are name characters (`colon`: `:` is one).
#[inline(always)]
fn word_ok(w: u64, colon: bool) -> bool {
    if w & HIGH != 0 {
        return false;
    }
    let letters = in_range(w | (ONES * 0x20), b'a', b'z');
    let digits = in_range(w, b'0', if colon { b':' } else { b'9' });
    let underscore = in_range(w, b'_', b'_');
    letters | digits | underscore == HIGH
}

/// The top bit of each byte of `w` (all below 0x80) set when that byte is in `lo..=hi`.
#[inline(always)]
fn in_range(w: u64, lo: u8, hi: u8) -> u64 {
    let at_least_lo = w.wrapping_add(ONES * u64::from(0x80 - lo));
    let above_hi = w.wrapping_add(ONES * u64::from(0x7f - hi));
    at_least_lo & !above_hi & HIGH
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rule as written in the spec, one byte at a time.
    fn reference(s: &[u8], grammar: Grammar) -> bool {
        let colon = grammar == Grammar::Metric;
        match s.first() {
            Some(f) if !f.is_ascii_digit() => s.iter().all(|&b| byte_ok(b, colon)),
            _ => false,
        }
    }

    /// Every byte value at every position of names of every length up to 20 (and an empty
    /// one), in both grammars, agrees with the byte-wise rule.
    #[test]
    fn word_check_agrees_with_bytewise_rule() {
        let mut checked = 0;
        for grammar in [Grammar::Label, Grammar::Metric] {
            assert!(!matches(b"", grammar));
            for len in 1..=20usize {
                for pos in 0..len {
                    for b in 0..=255u8 {
                        let mut s = vec![b'a'; len];
                        s[pos] = b;
                        assert_eq!(
                            matches(&s, grammar),
                            reference(&s, grammar),
                            "{s:?} {}",
                            grammar == Grammar::Metric
                        );
                        checked += 1;
                    }
                }
            }
        }
        assert_eq!(checked, 2 * 256 * (1..=20).sum::<usize>());
        assert!(matches(b"http_requests_total:rate5m", Grammar::Metric));
        assert!(!matches(b"http_requests_total:rate5m", Grammar::Label));
        assert!(matches(b"_Status_Code_9", Grammar::Label));
        assert!(!matches(b"9code", Grammar::Label));
        assert!(!matches(b"status-code", Grammar::Label));
    }

    /// `same` agrees with `==` on every pair of strings up to 80 bytes that differ in one byte
    /// (at every position, by every bit) or in length, and on equal ones.
    #[test]
    fn same_agrees_with_eq() {
        let mut unequal = 0;
        for len in 0..=80usize {
            let a: Vec<u8> = (0..len as u8).map(|i| b'0' + i).collect();
            assert!(same(&a, &a.clone()));
            for other in [len.saturating_sub(1), len + 1] {
                let b: Vec<u8> = (0..other as u8).map(|i| b'0' + i).collect();
                assert_eq!(same(&a, &b), a == b);
            }
            for pos in 0..len {
                for bit in 0..8 {
                    let mut b = a.clone();
                    b[pos] ^= 1 << bit;
                    assert!(!same(&a, &b), "{a:?} {b:?}");
                    unequal += 1;
                }
            }
        }
        assert_eq!(unequal, 8 * (0..=80).sum::<usize>());
    }

    /// The word-at-a-time ASCII test of values agrees with `is_ascii` for every byte at every
    /// position of strings up to 20 bytes.
    #[test]
    fn word_ascii_agrees_with_is_ascii() {
        assert!(all_words(b"", |w| w & HIGH == 0));
        for len in 1..=20usize {
            for pos in 0..len {
                for b in 0..=255u8 {
                    let mut s = vec![b'a'; len];
                    s[pos] = b;
                    assert_eq!(all_words(&s, |w| w & HIGH == 0), s.is_ascii(), "{s:?}");
                }
            }
        }
    }
}
