//! One token's abuse-monitoring state, hung off its cache entry like its usage counters and
//! allocated on the token's first request that reaches it: a million idle tokens cost one
//! empty `OnceLock` each.
//!
//! The request path touches only atomics here (a counter add, a sketch register max, a flag
//! load), plus a mutex on refusals (`origin_not_allowed`), on one request in
//! [`CLIENT_SAMPLE`] (the top client addresses, `try_lock`: never waits), and on the first
//! request from an origin never seen before. The engine's own state (window, baselines,
//! signal states) sits behind a separate mutex that only the engine and admin reads take.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::sync::atomic::{
    AtomicBool, AtomicI64, AtomicU32, AtomicU64, AtomicUsize, Ordering::Relaxed,
};
use std::sync::{Mutex, OnceLock};

use super::event::{Action, Event, Signal};
use super::hll::{self, Hll};
use super::topk::TopK;
use super::window::{Baseline, Window};
use crate::origin::{OriginList, RequestOrigin};
use crate::reject::{Reason, Reject};

/// One request in this many updates the top client addresses (with its weight).
pub const CLIENT_SAMPLE: u64 = 16;
/// remote_write: one request in this many has its series hashed for `series_growth`.
pub const SERIES_SAMPLE: u64 = 4;
/// Keys kept by each top-K.
pub const TOP_K: usize = 16;
/// Origins first seen that a token remembers (oldest kept; later ones only counted).
pub const MAX_ORIGINS_SEEN: usize = 32;
/// Recent events kept per token.
pub const RECENT_EVENTS: usize = 16;
/// Longest origin string kept in a top-K or the first-seen list (a longer one is cut).
const MAX_ORIGIN_LEN: usize = 128;

/// A token's watch: empty until the token's first request.
#[derive(Default)]
pub struct Watch {
    state: OnceLock<Box<WatchState>>,
}

impl std::fmt::Debug for Watch {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Watch")
            .field("active", &self.state.get().is_some())
            .finish()
    }
}

impl Watch {
    /// The state, if the token ever had a request.
    pub fn get(&self) -> Option<&WatchState> {
        self.state.get().map(|b| &**b)
    }

    fn state(&self) -> &WatchState {
        self.state.get_or_init(|| Box::new(WatchState::new()))
    }

    /// The state, allocated if the token never had a request (an operator's expect-spike or
    /// reset on an idle token).
    pub fn state_for_admin(&self) -> &WatchState {
        self.state()
    }

    /// A request that passed the token and origin checks, from `peer`.
    #[inline]
    pub fn client(&self, peer: IpAddr) {
        let s = self.state();
        let i = s.clients_current.load(Relaxed) & 1;
        if let Some(h) = s.clients.get(i) {
            h.insert(hll::hash_addr(peer));
        }
        if s.requests.fetch_add(1, Relaxed) % CLIENT_SAMPLE == 0 {
            if let Ok(mut cold) = s.cold.try_lock() {
                cold.top_clients.add(&peer, CLIENT_SAMPLE);
            }
        }
    }

    /// `items` of a request that passed the checks before the body; `Err` while the token is
    /// throttled and its budget for this tick is spent (the items still count as traffic, so
    /// the signal that throttles does not clear because of its own refusals).
    #[inline]
    pub fn passed(&self, items: u64) -> Result<(), Reject> {
        let s = self.state();
        s.items.fetch_add(items, Relaxed);
        if s.throttled.load(Relaxed) {
            // A request passes while the budget is positive and may overdraw it: the debt is
            // carried into the next ticks, so requests larger than one tick's budget are
            // throttled to the cap rather than refused forever.
            let want = i64::try_from(items).unwrap_or(i64::MAX);
            let spent = s.budget.fetch_update(Relaxed, Relaxed, |b| {
                (b > 0).then(|| b.saturating_sub(want))
            });
            if spent.is_err() {
                let secs = s.retry_after.load(Relaxed);
                return Err(Reject::new(Reason::SpikeProtection).retry_after(secs));
            }
        }
        Ok(())
    }

    /// `items` and `bytes` (as received) of an accepted request (what the baseline learns),
    /// at `now` (unix seconds).
    #[inline]
    pub fn accepted(&self, items: u64, bytes: u64, now: u64) {
        let s = self.state();
        s.accepted.fetch_add(items, Relaxed);
        s.accepted_bytes.fetch_add(bytes, Relaxed);
        let minute = now - now % 60;
        if s.last_used.load(Relaxed) != minute {
            s.last_used.store(minute, Relaxed);
        }
    }

    /// remote_write: whether this request's series are to be hashed (one request in
    /// [`SERIES_SAMPLE`]; a series comes back every scrape, so it is seen within a few).
    #[inline]
    pub fn sample_series(&self) -> bool {
        self.get()
            .is_none_or(|s| s.requests.load(Relaxed) % SERIES_SAMPLE == 1)
    }

    /// remote_write: the label-set hashes of a request's series.
    pub fn series(&self, hashes: &[u64]) {
        if hashes.is_empty() {
            return;
        }
        let s = self.state();
        let sketches = s.series.get_or_init(|| Box::new([Hll::new(), Hll::new()]));
        let i = s.series_current.load(Relaxed) & 1;
        if let Some(h) = sketches.get(i) {
            for &x in hashes {
                h.insert(x);
            }
        }
    }

    /// A mobile token arrived with a browser `Origin` (it was lifted into a web page): queued
    /// for one `mobile_token_in_browser` event per token per edge run (the refusals go on
    /// being counted in `ingest_mobile_token_in_browser_total`).
    pub fn mobile_token_in_browser(&self) {
        if let Ok(mut cold) = self.state().cold.lock() {
            if !cold.mobile_in_browser_seen {
                cold.mobile_in_browser_seen = true;
                cold.mobile_in_browser_pending = true;
            }
        }
    }

    /// An `origin_not_allowed` refusal on this token.
    pub fn origin_refused(&self, origin: Option<&RequestOrigin>) {
        let s = self.state();
        s.origin_refusals.fetch_add(1, Relaxed);
        if let (Some(o), Ok(mut cold)) = (origin, s.cold.lock()) {
            cold.rejected_origins.add(&cut(o.as_str()), 1);
        }
    }

    /// An allowed origin: the first time one matched only by a wildcard is seen, it is queued
    /// for a `new_origin` event. A 512-bit filter answers "seen" with one load; a false
    /// "seen" (a hash collision in a full filter) can only miss an informational event.
    #[inline]
    pub fn origin_allowed(&self, origins: &OriginList, origin: &RequestOrigin) {
        let s = self.state();
        let h = hll::hash_bytes(0x6f72_6967, origin.as_str().as_bytes());
        let (word, bit) = (((h >> 6) & 7) as usize, 1u64 << (h & 63));
        let Some(w) = s.origin_filter.get(word) else {
            return;
        };
        if w.load(Relaxed) & bit != 0 {
            return;
        }
        w.fetch_or(bit, Relaxed);
        if !origins.allows_only_by_wildcard(origin) {
            return;
        }
        if let Ok(mut cold) = s.cold.lock() {
            let key = cut(origin.as_str());
            if cold.origins_seen.iter().any(|(o, _)| *o == key) {
                return;
            }
            if cold.origins_seen.len() < MAX_ORIGINS_SEEN {
                cold.origins_seen
                    .push((key.clone(), crate::time::unix_now()));
                cold.new_origins.push(key);
            }
        }
    }
}

fn cut(s: &str) -> Box<str> {
    let mut end = s.len().min(MAX_ORIGIN_LEN);
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    s.get(..end).unwrap_or("").into()
}

/// The counters and sketches of an active token.
pub struct WatchState {
    /// Items that passed the token and origin checks (the current rate).
    pub(super) items: AtomicU64,
    /// Items accepted (the baseline).
    pub(super) accepted: AtomicU64,
    /// Bytes (as received) of accepted requests (the usage history).
    pub(super) accepted_bytes: AtomicU64,
    /// `origin_not_allowed` refusals.
    pub(super) origin_refusals: AtomicU64,
    /// Requests seen, for sampling the top clients.
    requests: AtomicU64,
    /// Two client sketches: the engine clears and switches to the other every short window,
    /// and estimates the union (one to two windows of clients).
    pub(super) clients: [Hll; 2],
    pub(super) clients_current: AtomicUsize,
    /// Series sketches (remote_write only, allocated on the first series), switched every
    /// baseline window like the client sketches.
    pub(super) series: OnceLock<Box<[Hll; 2]>>,
    pub(super) series_current: AtomicUsize,
    /// Origins already seen (a bit per hash).
    origin_filter: [AtomicU64; 8],
    /// Set by the engine while a `throttle` response is in force.
    pub(super) throttled: AtomicBool,
    /// Items the token may still pass in this tick while throttled (refilled each tick).
    pub(super) budget: AtomicI64,
    /// `Retry-After` of a `spike_protection` refusal.
    pub(super) retry_after: AtomicU32,
    /// Unix seconds, whole minute, of the last accepted request (0: none on this edge).
    pub(super) last_used: AtomicU64,
    /// Unix seconds until which a spike is expected (neither flagged nor acted on).
    pub(super) expect_until: AtomicU64,
    /// Events emitted for this token, by signal and action (`ingest_abuse_events_total`).
    pub(super) events: [[AtomicU64; 4]; 8],
    pub(super) cold: Mutex<Cold>,
    pub(super) engine: Mutex<EngineState>,
    /// Usage over time for the admin read (fed by the engine).
    pub(super) history: Mutex<super::history::History>,
}

/// What the request path updates only under a lock (refusals, samples, first sightings).
pub struct Cold {
    pub rejected_origins: TopK<Box<str>>,
    pub top_clients: TopK<IpAddr>,
    /// Origins first seen (matched by a wildcard), with the unix second of the sighting.
    pub origins_seen: Vec<(Box<str>, u64)>,
    /// First sightings the engine has not announced yet.
    pub new_origins: Vec<Box<str>>,
    /// A mobile token came with a browser `Origin` (SPEC §14) and the engine has not
    /// announced it yet; `mobile_in_browser_seen` keeps it to one event per edge run.
    pub mobile_in_browser_pending: bool,
    pub mobile_in_browser_seen: bool,
    pub recent: VecDeque<Event>,
}

/// The state of one signal on one token.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct SignalState {
    pub active: bool,
    /// Unix seconds it became active.
    pub since: u64,
    /// What was done when it fired (`None`: not announced: mode off, or a spike expected).
    pub announced: Option<Action>,
    pub value: f64,
    /// The threshold it is compared with.
    pub threshold: f64,
}

/// The engine's view of one token.
#[derive(Debug, Default)]
pub struct EngineState {
    pub window: Window,
    /// Accepted items per second.
    pub items_baseline: Baseline,
    /// Distinct clients per short window.
    pub clients_baseline: Baseline,
    /// Never-seen series per second.
    pub series_baseline: Baseline,
    /// Counter totals at the previous tick.
    pub last_items: u64,
    pub last_accepted: u64,
    pub last_origin_refusals: u64,
    /// Union estimate of the series sketches at the previous tick.
    pub last_series: f64,
    /// Unix seconds of the last switch of the client / series sketches.
    pub clients_switched: u64,
    pub series_switched: u64,
    /// Learning starts with the first accepted item (and again after a reset).
    pub started: bool,
    /// Indexed like [`TRACKED`].
    pub signals: [SignalState; 4],
    /// `last_used` as last persisted.
    pub persisted_minute: u64,
    /// Current values for the gauges.
    pub items_rate: f64,
    pub clients: f64,
    pub series_rate: f64,
}

/// The per-token signals the engine evaluates, in [`EngineState::signals`] order.
pub const TRACKED: [Signal; 4] = [
    Signal::Spike,
    Signal::ClientStorm,
    Signal::SeriesGrowth,
    Signal::OriginStorm,
];

impl WatchState {
    fn new() -> WatchState {
        WatchState {
            items: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
            accepted_bytes: AtomicU64::new(0),
            origin_refusals: AtomicU64::new(0),
            requests: AtomicU64::new(0),
            clients: [Hll::new(), Hll::new()],
            clients_current: AtomicUsize::new(0),
            series: OnceLock::new(),
            series_current: AtomicUsize::new(0),
            origin_filter: Default::default(),
            throttled: AtomicBool::new(false),
            budget: AtomicI64::new(0),
            retry_after: AtomicU32::new(1),
            last_used: AtomicU64::new(0),
            expect_until: AtomicU64::new(0),
            events: Default::default(),
            cold: Mutex::new(Cold {
                rejected_origins: TopK::new(TOP_K),
                top_clients: TopK::new(TOP_K),
                origins_seen: Vec::new(),
                new_origins: Vec::new(),
                mobile_in_browser_pending: false,
                mobile_in_browser_seen: false,
                recent: VecDeque::new(),
            }),
            engine: Mutex::new(EngineState::default()),
            history: Mutex::default(),
        }
    }

    /// Bytes this state holds (inline and heap), top-K keys at their bound: the figure of
    /// the README's memory statement.
    pub fn bytes_at_bound(&self) -> usize {
        let inline = std::mem::size_of::<WatchState>() + std::mem::size_of::<Box<WatchState>>();
        let sketches = 2 * hll::REGISTERS;
        let series = if self.series.get().is_some() {
            2 * hll::REGISTERS
        } else {
            0
        };
        let top = TOP_K
            * (std::mem::size_of::<super::topk::Counted<Box<str>>>()
                + MAX_ORIGIN_LEN
                + std::mem::size_of::<super::topk::Counted<IpAddr>>());
        let seen = MAX_ORIGINS_SEEN * (std::mem::size_of::<(Box<str>, u64)>() + MAX_ORIGIN_LEN);
        let events = RECENT_EVENTS * (std::mem::size_of::<Event>() + 64);
        inline + sketches + series + top + seen + events + super::history::MAX_BYTES
    }

    pub fn last_used(&self) -> Option<u64> {
        Some(self.last_used.load(Relaxed)).filter(|m| *m > 0)
    }

    pub fn events_total(&self, signal: Signal, action: Action) -> u64 {
        let a = action_index(action);
        self.events
            .get(signal as usize)
            .and_then(|row| row.get(a))
            .map_or(0, |c| c.load(Relaxed))
    }
}

/// Index of an action in the per-signal event counters (`revoked` has none here).
pub(super) fn action_index(action: Action) -> usize {
    match action {
        Action::Flagged => 0,
        Action::Throttled => 1,
        Action::Blocked => 2,
        Action::Cleared | Action::Revoked => 3,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The README's memory figure: what one active token's watch holds at most, and what
    /// 10,000 active tokens allocate in fact (run alone for a quiet RSS:
    /// `cargo test --lib abuse::watch -- --nocapture`).
    #[test]
    fn memory_per_active_token_is_bounded() {
        fn rss_kib() -> u64 {
            std::fs::read_to_string("/proc/self/status")
                .ok()
                .and_then(|s| {
                    s.lines()
                        .find_map(|l| l.strip_prefix("VmRSS:"))
                        .and_then(|v| v.split_whitespace().next()?.parse().ok())
                })
                .unwrap_or(0)
        }
        let before = rss_kib();
        let watches: Vec<Watch> = (0..10_000).map(|_| Watch::default()).collect();
        for (i, w) in watches.iter().enumerate() {
            w.client(IpAddr::from([10, 0, (i >> 8) as u8, i as u8]));
            w.passed(10).unwrap();
            w.accepted(10, 100, 60);
            w.series(&[1, 2, 3]);
        }
        let rss = rss_kib().saturating_sub(before);
        let state = watches[0].get().unwrap();
        let bound = state.bytes_at_bound();
        eprintln!(
            "watch: size_of WatchState {} B, bound per active token {} B; \
             10,000 active tokens (sketches touched): RSS +{} KiB",
            std::mem::size_of::<WatchState>(),
            bound,
            rss
        );
        assert!(bound < 40 << 10, "{bound}");
        // Fresh state: sketches, counters, empty top-K and history (pages really touched).
        assert!(rss < 10_000 * 8, "{rss} KiB");
        assert!(std::mem::size_of::<Watch>() <= 16);
    }
}
