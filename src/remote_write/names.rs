//! The 1.0 name rules, `[a-zA-Z_][a-zA-Z0-9_]*` for label names and `[a-zA-Z_:][a-zA-Z0-9_:]*`
//! for metric names, checked eight bytes at a time: every label of every 1.0 series goes
//! through here, and a byte-by-byte table walk was a sixth of the decode cost (issue 16).
//!
//! Each 8-byte word is tested with byte-wise range checks in a `u64` (SWAR): once every byte is
//! known to be below 0x80, adding `0x80 - lo` to a byte sets its top bit exactly when it is at
//! least `lo`, and adding `0x7f - hi` exactly when it is above `hi`, with no carry into the next
//! byte. Letters are folded to lower case first (`| 0x20` maps exactly `A-Z` and `a-z` onto
//! `a-z`); digits and `:` are the one range `0-:`. A name equal to the one at the same position
//! in the previous series ([`KnownNames`]) is not checked again.

/// Which of the two 1.0 name grammars.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(super) enum Grammar {
    /// `[a-zA-Z_][a-zA-Z0-9_]*`.
    Label,
    /// `[a-zA-Z_:][a-zA-Z0-9_:]*`.
    Metric,
}

use super::validate::{Problem, METRIC_NAME};

/// Names (and metric names) of the previous 1.0 series that passed [`check_legacy`], by
/// position: consecutive series of one request nearly always share their label names, and
/// comparing with the one at the same position is cheaper than the grammar check it saves.
/// Only names that passed are kept, and equal bytes pass equally, so this changes no verdict.
pub(super) struct KnownNames<'b> {
    /// The label name at each position of the previous series (empty: none yet).
    names: [&'b [u8]; KNOWN_NAMES],
    /// The last metric name (value of `__name__`) that passed.
    metric: &'b [u8],
}

/// Positions [`KnownNames`] remembers; labels past it are always checked.
const KNOWN_NAMES: usize = 32;

impl<'b> KnownNames<'b> {
    pub(super) fn new() -> KnownNames<'b> {
        KnownNames {
            names: [&[]; KNOWN_NAMES],
            metric: &[],
        }
    }
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
    if name == METRIC_NAME {
        // The grammar implies ASCII, hence UTF-8.
        if known.metric != value {
            if !matches(value, Grammar::Metric) {
                return Err(Problem::InvalidMetricName);
            }
            known.metric = value;
        }
        return Ok(());
    }
    match known.names.get_mut(position) {
        Some(slot) if *slot == name => {}
        slot => {
            if !matches(name, Grammar::Label) {
                return Err(Problem::InvalidLabelName);
            }
            if let Some(slot) = slot {
                *slot = name;
            }
        }
    }
    // ASCII (the usual case) is UTF-8; the word-at-a-time ASCII test is cheaper.
    if !value.is_ascii() && std::str::from_utf8(value).is_err() {
        return Err(Problem::InvalidUtf8);
    }
    Ok(())
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

/// Every byte of `s` is a name character of `grammar`: words of 8, the last one overlapping
/// the previous (re-testing a byte is harmless); 4 to 7 bytes as two overlapping halves.
#[inline]
fn all_name_chars(s: &[u8], grammar: Grammar) -> bool {
    let last = grammar == Grammar::Metric;
    if s.len() >= 8 {
        let mut rest = s;
        while let Some((&word, tail)) = rest.split_first_chunk::<8>() {
            if !word_ok(u64::from_le_bytes(word), last) {
                return false;
            }
            rest = tail;
        }
        return rest.is_empty()
            || s.split_last_chunk::<8>()
                .is_some_and(|(_, &w)| word_ok(u64::from_le_bytes(w), last));
    }
    if let (Some((&a, _)), Some((_, &b))) = (s.split_first_chunk::<4>(), s.split_last_chunk::<4>())
    {
        let word = u64::from(u32::from_le_bytes(a)) | u64::from(u32::from_le_bytes(b)) << 32;
        return word_ok(word, last);
    }
    s.iter().all(|&b| byte_ok(b, last))
}

/// One byte, for names shorter than 4.
#[inline]
fn byte_ok(b: u8, colon: bool) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || (colon && b == b':')
}

/// All 8 bytes of `w` are name characters (`colon`: `:` is one).
#[inline(always)]
fn word_ok(w: u64, colon: bool) -> bool {
    if w & HIGH != 0 {
        return false;
    }
    let letters = in_range(w | ONES * 0x20, b'a', b'z');
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
}
