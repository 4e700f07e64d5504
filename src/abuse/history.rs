//! A token's usage over time for `GET /api/v1/tokens/{id}/usage?range=1h|24h|7d` (SPEC §12):
//! three rings of points at 60 s, 600 s and 3600 s steps, fed by the engine's tick from the
//! token's counters (never by the request path).
//!
//! Bound: 60 + 144 + 168 = 372 points of 48 bytes (plus 8 bytes per refusal reason seen in a
//! step), 17.5 KiB ([`MAX_BYTES`]) for a token busy for a week; rings grow as steps pass (never
//! past the points they keep), so a token active for ten minutes holds twelve points. Only
//! tokens that had a request have a history.

use std::collections::{BTreeMap, VecDeque};

use serde::Serialize;

use crate::reject::Reason;

/// One step of one ring.
#[derive(Clone, Debug, Default)]
struct Point {
    /// Minutes since the epoch of the step's start.
    minute: u32,
    requests: u32,
    items: u64,
    bytes: u64,
    /// Refusals by reason index, only the reasons seen (usually none).
    rejected: Vec<(u8, u32)>,
}

/// The counters the history is fed with (cumulative; the history keeps the deltas).
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Totals {
    pub requests: u64,
    pub items: u64,
    pub bytes: u64,
    pub rejected: [u64; Reason::ALL.len()],
}

/// The ranges of the usage read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Range {
    Hour,
    Day,
    Week,
}

impl Range {
    pub fn parse(s: &str) -> Option<Range> {
        match s {
            "1h" => Some(Range::Hour),
            "24h" => Some(Range::Day),
            "7d" => Some(Range::Week),
            _ => None,
        }
    }

    fn ring(self) -> usize {
        self as usize
    }

    /// Seconds per point.
    pub fn step(self) -> u32 {
        RINGS[self.ring()].0
    }
}

/// Bytes of a full history (refusal reasons aside).
pub const MAX_BYTES: usize =
    (60 + 144 + 168) * std::mem::size_of::<Point>() + 3 * std::mem::size_of::<VecDeque<Point>>();

/// (step in seconds, points kept) of each ring, in [`Range`] order.
const RINGS: [(u32, usize); 3] = [(60, 60), (600, 144), (3600, 168)];

#[derive(Debug, Default)]
pub struct History {
    last: Totals,
    rings: [VecDeque<Point>; 3],
}

/// A point as the admin API returns it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PointView {
    /// Unix seconds of the step's start.
    pub t: u64,
    pub requests: u64,
    pub items: u64,
    pub bytes: u64,
    pub rejected: BTreeMap<&'static str, u64>,
}

impl History {
    /// Adds what changed since the previous call to the steps containing `now`.
    pub fn add(&mut self, now: u64, totals: Totals) {
        let last = std::mem::replace(&mut self.last, totals);
        let d = |a: u64, b: u64| a.saturating_sub(b);
        let (requests, items, bytes) = (
            d(totals.requests, last.requests),
            d(totals.items, last.items),
            d(totals.bytes, last.bytes),
        );
        let rejected: Vec<(u8, u32)> = (0..Reason::ALL.len())
            .filter_map(|i| {
                let n = d(totals.rejected[i], last.rejected[i]);
                (n > 0).then(|| (i as u8, u32::try_from(n).unwrap_or(u32::MAX)))
            })
            .collect();
        if requests == 0 && items == 0 && bytes == 0 && rejected.is_empty() {
            return;
        }
        for (ring, (step, keep)) in self.rings.iter_mut().zip(RINGS) {
            let start = u32::try_from(now / 60 - (now % u64::from(step)) / 60).unwrap_or(0);
            if ring.back().is_none_or(|p| p.minute != start) {
                if ring.len() >= keep {
                    ring.pop_front();
                } else if ring.len() == ring.capacity() {
                    // Doubling as `push_back` would, but never past `keep` (its doubling
                    // would hold 256 slots for the 144 and 168 points kept), and from one
                    // slot, not its four: a token active for a minute holds 3 points, not 12.
                    ring.reserve_exact(ring.len().max(1).min(keep - ring.len()));
                }
                ring.push_back(Point {
                    minute: start,
                    ..Point::default()
                });
            }
            if let Some(p) = ring.back_mut() {
                p.requests = p
                    .requests
                    .saturating_add(u32::try_from(requests).unwrap_or(u32::MAX));
                p.items += items;
                p.bytes += bytes;
                for &(reason, n) in &rejected {
                    match p.rejected.iter_mut().find(|(r, _)| *r == reason) {
                        Some((_, m)) => *m = m.saturating_add(n),
                        None => p.rejected.push((reason, n)),
                    }
                }
            }
        }
    }

    /// The points of `range` within its span back from `now` (steps without traffic are
    /// left out), oldest first, and the step in seconds.
    pub fn points(&self, range: Range, now: u64) -> (u32, Vec<PointView>) {
        let (step, keep) = RINGS[range.ring()];
        let from = now.saturating_sub(u64::from(step) * keep as u64);
        let points = self.rings[range.ring()]
            .iter()
            .filter(|p| u64::from(p.minute) * 60 >= from)
            .map(|p| PointView {
                t: u64::from(p.minute) * 60,
                requests: u64::from(p.requests),
                items: p.items,
                bytes: p.bytes,
                rejected: p
                    .rejected
                    .iter()
                    .filter_map(|(r, n)| {
                        Reason::ALL
                            .get(usize::from(*r))
                            .map(|r| (r.label(), u64::from(*n)))
                    })
                    .collect(),
            })
            .collect();
        (step, points)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn steps_collect_deltas_and_rings_stay_bounded() {
        let mut h = History::default();
        let mut t = Totals::default();
        let start = 1_700_000_000 - 1_700_000_000 % 3600;
        for minute in 0..200u64 {
            t.requests += 2;
            t.items += 10;
            t.bytes += 100;
            t.rejected[Reason::RateLimited.index()] += 1;
            h.add(start + minute * 60 + 5, t);
        }
        let now = start + 199 * 60 + 5;
        let (step, hour) = h.points(Range::Hour, now);
        assert_eq!(step, 60);
        assert_eq!(hour.len(), 60);
        assert_eq!(hour[0].requests, 2);
        assert_eq!(hour[0].rejected.get("rate_limited"), Some(&1));
        let (_, day) = h.points(Range::Day, now);
        assert_eq!(day.len(), 20);
        assert_eq!(day[0].items, 100);
        let (_, week) = h.points(Range::Week, now);
        assert_eq!(week.len(), 4);
        assert_eq!(week.iter().map(|p| p.items).sum::<u64>(), 2000);
    }

    #[test]
    fn a_week_of_steps_stays_within_the_stated_bound() {
        let mut h = History::default();
        let mut t = Totals::default();
        let start = 1_700_000_000 - 1_700_000_000 % 3600;
        for minute in 0..(8 * 24 * 60) {
            t.requests += 1;
            h.add(start + minute * 60, t);
        }
        let capacity: Vec<usize> = h.rings.iter().map(VecDeque::capacity).collect();
        assert_eq!(capacity, [60, 144, 168]);
        let held = capacity.iter().sum::<usize>() * std::mem::size_of::<Point>()
            + std::mem::size_of_val(&h.rings);
        assert_eq!(held, MAX_BYTES);
        assert_eq!(std::mem::size_of::<Point>(), 48);
    }
}
