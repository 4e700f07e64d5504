//! What the admin reads see (SPEC §12 "Reads"): the public read API of the abuse monitor.
//! The admin API and the CLI call only these; everything returned is plain serializable data
//! (no lock held, no reference into the engine's state).

use std::net::IpAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use serde::Serialize;

use super::event::{Action, Event, Signal};
use super::history::{PointView, Range};
use super::topk::Counted;
use super::watch::{SignalState, TOP_K, TRACKED};
use super::{Monitor, Settings};
use crate::token::cache::ActiveToken;

/// One signal's state.
#[derive(Clone, Debug, Serialize)]
pub struct SignalReport {
    pub signal: Signal,
    pub active: bool,
    /// Unix seconds it became active.
    pub since: Option<u64>,
    /// What was done when it fired; `None` while active means muted (mode `off`, or a spike
    /// during expect-spike).
    pub action: Option<Action>,
    pub value: f64,
    pub threshold: f64,
}

impl SignalReport {
    fn new(signal: Signal, s: &SignalState) -> SignalReport {
        SignalReport {
            signal,
            active: s.active,
            since: s.active.then_some(s.since),
            action: s.announced,
            value: s.value,
            threshold: s.threshold,
        }
    }
}

/// An origin first seen on a token.
#[derive(Clone, Debug, Serialize)]
pub struct OriginSeen {
    pub origin: String,
    /// Unix seconds.
    pub at: u64,
}

/// `GET /api/v1/tokens/{id}/abuse`.
#[derive(Clone, Debug, Serialize)]
pub struct TokenReport {
    pub token_id: String,
    /// Settings in force (the token's over the config's).
    pub settings: Settings,
    /// Whether the token has learned `warmup` of history (spike, client_storm and
    /// series_growth need it).
    pub warm: bool,
    pub items_per_second: f64,
    pub baseline_items_per_second: f64,
    pub distinct_clients: f64,
    pub baseline_distinct_clients: f64,
    pub new_series_per_second: f64,
    pub baseline_new_series_per_second: f64,
    /// A throttle is in force (`429 spike_protection`).
    pub throttled: bool,
    /// Unix seconds until which a spike is expected.
    pub expect_spike_until: Option<u64>,
    /// Unix seconds (whole minute) of the last accepted request on this edge.
    pub last_used_at: Option<u64>,
    pub signals: Vec<SignalReport>,
    pub top_rejected_origins: Vec<Counted<String>>,
    /// Sampled (one request in 16, counts scaled back).
    pub top_clients: Vec<Counted<String>>,
    pub origins_first_seen: Vec<OriginSeen>,
    /// Newest last.
    pub recent_events: Vec<Event>,
}

/// A token with at least one active signal.
#[derive(Clone, Debug, Serialize)]
pub struct ActiveSignals {
    pub token_id: String,
    pub name: String,
    pub environment: String,
    pub signals: Vec<SignalReport>,
}

/// `GET /api/v1/abuse`.
#[derive(Clone, Debug, Serialize)]
pub struct EdgeReport {
    pub tokens: Vec<ActiveSignals>,
    /// Across tokens, newest last.
    pub recent_events: Vec<Event>,
    pub auth_storm: SignalReport,
    pub auth_storm_top_addresses: Vec<Counted<String>>,
}

/// `GET /api/v1/tokens/{id}/usage`.
#[derive(Clone, Debug, Serialize)]
pub struct UsageReport {
    pub step_seconds: u32,
    pub points: Vec<PointView>,
}

fn addrs(top: Vec<Counted<IpAddr>>) -> Vec<Counted<String>> {
    top.into_iter()
        .map(|c| Counted {
            key: c.key.to_string(),
            count: c.count,
            error: c.error,
        })
        .collect()
}

/// What `/metrics` shows of a token (cheap: no list is copied).
#[derive(Clone, Copy, Debug, Default)]
pub struct Gauges {
    pub items_per_second: f64,
    pub baseline_items_per_second: f64,
    pub distinct_clients: f64,
    /// Indexed like [`TRACKED`].
    pub active: [bool; 4],
}

/// The per-token signals, in [`Gauges::active`] order.
pub const GAUGE_SIGNALS: [Signal; 4] = TRACKED;

impl Monitor {
    /// The gauges of a token with traffic on this edge.
    pub fn gauges(&self, t: &ActiveToken) -> Option<Gauges> {
        let w = t.watch().get()?;
        let es = w.engine.lock().ok()?;
        Some(Gauges {
            items_per_second: es.items_rate,
            baseline_items_per_second: es.items_baseline.value,
            distinct_clients: es.clients,
            active: es.signals.map(|s| s.active),
        })
    }

    /// The abuse view of one token (an idle token reports zeros).
    pub fn token_report(&self, t: &ActiveToken) -> TokenReport {
        let settings = t.abuse.resolve(&self.config);
        let mut r = TokenReport {
            token_id: t.id.to_string(),
            settings,
            warm: false,
            items_per_second: 0.0,
            baseline_items_per_second: 0.0,
            distinct_clients: 0.0,
            baseline_distinct_clients: 0.0,
            new_series_per_second: 0.0,
            baseline_new_series_per_second: 0.0,
            throttled: false,
            expect_spike_until: None,
            last_used_at: None,
            signals: Vec::new(),
            top_rejected_origins: Vec::new(),
            top_clients: Vec::new(),
            origins_first_seen: Vec::new(),
            recent_events: Vec::new(),
        };
        let Some(w) = t.watch().get() else {
            return r;
        };
        r.throttled = w.throttled.load(Relaxed);
        r.expect_spike_until = Some(w.expect_until.load(Relaxed)).filter(|u| *u > 0);
        r.last_used_at = w.last_used();
        if let Ok(es) = w.engine.lock() {
            r.warm = es.items_baseline.covered >= self.config.warmup.as_secs_f64();
            r.items_per_second = es.items_rate;
            r.baseline_items_per_second = es.items_baseline.value;
            r.distinct_clients = es.clients;
            r.baseline_distinct_clients = es.clients_baseline.value;
            r.new_series_per_second = es.series_rate;
            r.baseline_new_series_per_second = es.series_baseline.value;
            r.signals = TRACKED
                .iter()
                .zip(&es.signals)
                .map(|(sig, s)| SignalReport::new(*sig, s))
                .collect();
        }
        if let Ok(cold) = w.cold.lock() {
            r.top_rejected_origins = cold
                .rejected_origins
                .top(TOP_K)
                .into_iter()
                .map(|c| Counted {
                    key: c.key.to_string(),
                    count: c.count,
                    error: c.error,
                })
                .collect();
            r.top_clients = addrs(cold.top_clients.top(TOP_K));
            r.origins_first_seen = cold
                .origins_seen
                .iter()
                .map(|(o, at)| OriginSeen {
                    origin: o.to_string(),
                    at: *at,
                })
                .collect();
            r.recent_events = cold.recent.iter().cloned().collect();
        }
        r
    }

    /// The edge-wide view: tokens with an active signal, recent events, `auth_storm`.
    pub fn report(&self, tokens: &[Arc<ActiveToken>]) -> EdgeReport {
        let mut active = Vec::new();
        for t in tokens {
            let Some(w) = t.watch().get() else { continue };
            let Ok(es) = w.engine.lock() else { continue };
            if es.signals.iter().any(|s| s.active) {
                active.push(ActiveSignals {
                    token_id: t.id.to_string(),
                    name: t.name.to_string(),
                    environment: t.environment.to_string(),
                    signals: TRACKED
                        .iter()
                        .zip(&es.signals)
                        .filter(|(_, s)| s.active)
                        .map(|(sig, s)| SignalReport::new(*sig, s))
                        .collect(),
                });
            }
        }
        active.sort_by(|a, b| a.token_id.cmp(&b.token_id));
        let (auth_storm, top) = self.auth_view();
        EdgeReport {
            tokens: active,
            recent_events: self.sink.recent(),
            auth_storm: SignalReport::new(Signal::AuthStorm, &auth_storm),
            auth_storm_top_addresses: addrs(top),
        }
    }

    /// The token's usage over `range` (empty for a token without requests on this edge).
    pub fn usage(&self, t: &ActiveToken, range: Range, now: u64) -> UsageReport {
        let (step_seconds, points) = t
            .watch()
            .get()
            .and_then(|w| w.history.lock().ok().map(|h| h.points(range, now)))
            .unwrap_or_else(|| (range.step(), Vec::new()));
        UsageReport {
            step_seconds,
            points,
        }
    }
}
