//! The abuse engine: a task that ticks every `short_window / 6` (at least 100 ms), turns each
//! active token's counters into a window of rates and estimates, compares them with the
//! token's baselines, and on every change of a signal's state emits an [`Event`] and applies
//! the token's response (SPEC §12). Also the edge-wide `auth_storm`, and what the admin
//! reads see ([`Monitor::token_report`], [`Monitor::report`]).
//!
//! Evaluation ([`Monitor::evaluate`]) is pure over the token's state and the time it is given,
//! so its tests run on a fake clock; side effects (audit, disable, webhook) happen in
//! [`Monitor::run`] through the [`EventSink`].

use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::event::{Action, Event, EventKind, Signal};
use super::topk::TopK;
use super::watch::{SignalState, WatchState, TOP_K, TRACKED};
use super::window::{Bucket, Window};
use super::{Mode, Settings};
use crate::config::AbuseConfig;
use crate::edge::AppState;
use crate::time::unix_now;
use crate::token::cache::ActiveToken;

pub use super::sink::{EventHook, EventSink, WHO};
/// Fewer distinct clients than this are never a `client_storm` (a token used by one or two
/// machines would otherwise fire on its third).
pub const MIN_CLIENTS: f64 = 20.0;
/// How often changed `last_used_at` values are written to the store (one batched write).
const PERSIST_EVERY: Duration = Duration::from_secs(60);

/// The edge-wide `auth_storm` state.
#[derive(Default)]
pub(super) struct AuthState {
    window: Window,
    last: u64,
    pub(super) signal: SignalState,
}

/// The abuse monitor of one edge (in `AppState`).
pub struct Monitor {
    pub config: AbuseConfig,
    pub sink: EventSink,
    /// Missing/malformed/unknown token refusals, edge-wide.
    auth_refusals: AtomicU64,
    /// The addresses behind them (taken on refusals only).
    pub(super) auth_top: Mutex<TopK<IpAddr>>,
    pub(super) auth: Mutex<AuthState>,
}

/// What one evaluation decided for a token.
#[derive(Debug, Default)]
pub struct Decision {
    pub events: Vec<Event>,
    /// The token is to be disabled (`block`).
    pub disable: bool,
}

impl Monitor {
    pub fn new(config: AbuseConfig) -> Monitor {
        Monitor {
            config,
            sink: EventSink::default(),
            auth_refusals: AtomicU64::new(0),
            auth_top: Mutex::new(TopK::new(TOP_K)),
            auth: Mutex::default(),
        }
    }

    /// The engine's period.
    pub fn tick(&self) -> Duration {
        (self.config.short_window / 6).max(Duration::from_millis(100))
    }

    /// Buckets in the short window.
    fn ticks(&self) -> usize {
        let t = self.tick().as_secs_f64();
        ((self.config.short_window.as_secs_f64() / t).round() as usize).clamp(1, 8)
    }

    /// A missing, malformed or unknown token refusal from `peer`.
    pub fn auth_refused(&self, peer: IpAddr) {
        self.auth_refusals.fetch_add(1, Relaxed);
        if let Ok(mut top) = self.auth_top.lock() {
            top.add(&peer, 1);
        }
    }

    /// Runs the engine until shutdown.
    pub async fn run(state: Arc<AppState>, mut shutdown: watch::Receiver<bool>) {
        let monitor = &state.abuse;
        let mut tick = tokio::time::interval(monitor.tick());
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut last = Instant::now();
        let mut last_persist = Instant::now();
        loop {
            tokio::select! {
                _ = tick.tick() => {}
                _ = shutdown.changed() => return,
            }
            let now = Instant::now();
            let dt = now.duration_since(last).as_secs_f64();
            last = now;
            if dt <= 0.0 {
                continue;
            }
            let unix = unix_now();
            for token in state.registry.tokens() {
                let Some(w) = token.watch().get() else {
                    continue;
                };
                let d = monitor.evaluate(&token, w, unix, dt);
                for e in d.events {
                    monitor.sink.emit(&state, Some(w), e);
                }
                if d.disable && !token.disabled {
                    let state = Arc::clone(&state);
                    let id = token.id.to_string();
                    tokio::spawn(async move {
                        if let Err(e) = state.registry.disable(&id, WHO).await {
                            tracing::error!(token_id = %id, error = %e, "block failed");
                        }
                    });
                }
            }
            if let Some(e) = monitor.evaluate_auth(unix, dt) {
                monitor.sink.emit(&state, None, e);
            }
            if now.duration_since(last_persist) >= PERSIST_EVERY {
                last_persist = now;
                super::persist::last_used(&state).await;
            }
        }
    }

    /// One tick of one token: `dt` seconds since the previous one, `now` in unix seconds.
    pub fn evaluate(&self, t: &ActiveToken, w: &WatchState, now: u64, dt: f64) -> Decision {
        let mut decision = Decision::default();
        let Ok(mut es) = w.engine.lock() else {
            return decision;
        };
        let cfg = &self.config;
        let settings = t.abuse.resolve(cfg);
        let short = cfg.short_window.as_secs();
        let items = w.items.load(Relaxed);
        let accepted = w.accepted.load(Relaxed);
        let refusals = w.origin_refusals.load(Relaxed);
        if !es.started && accepted > es.last_accepted {
            es.started = true;
        }
        // Client sketches: switch every short window; the estimate is over both.
        if now.saturating_sub(es.clients_switched) >= short.max(1) {
            let next = (w.clients_current.load(Relaxed) + 1) & 1;
            if let Some(h) = w.clients.get(next) {
                h.clear();
            }
            w.clients_current.store(next, Relaxed);
            es.clients_switched = now;
        }
        let clients = w.clients[0].union_estimate(&w.clients[1]);
        let mut new_series = 0.0;
        if let Some(s) = w.series.get() {
            if now.saturating_sub(es.series_switched) >= cfg.baseline_window.as_secs().max(1) {
                let next = (w.series_current.load(Relaxed) + 1) & 1;
                if let Some(h) = s.get(next) {
                    h.clear();
                }
                w.series_current.store(next, Relaxed);
                es.series_switched = now;
                es.last_series = s[0].union_estimate(&s[1]);
            }
            let u = s[0].union_estimate(&s[1]);
            new_series = (u - es.last_series).max(0.0);
            es.last_series = u;
        }
        let bucket = Bucket {
            secs: dt as f32,
            items: delta(items, es.last_items),
            accepted: delta(accepted, es.last_accepted),
            origin_refusals: delta(refusals, es.last_origin_refusals),
            clients: clients as f32,
            new_series: new_series as f32,
            tainted: false,
        };
        (es.last_items, es.last_accepted, es.last_origin_refusals) = (items, accepted, refusals);
        let left = es.window.push(bucket, self.ticks());
        es.items_rate = es.window.rate(|b| f64::from(b.items));
        es.clients = clients;
        es.series_rate = es.window.rate(|b| f64::from(b.new_series));
        let origin_rate = es.window.rate(|b| f64::from(b.origin_refusals));

        let warm = es.items_baseline.covered >= cfg.warmup.as_secs_f64();
        let f = settings.spike_factor;
        let items_limit = (f * es.items_baseline.value).max(settings.min_items_per_second);
        let clients_limit = (f * es.clients_baseline.value).max(MIN_CLIENTS);
        let series_limit = (f * es.series_baseline.value).max(settings.min_items_per_second);
        let measured = [
            (
                warm && es.items_rate > items_limit,
                es.items_rate,
                items_limit,
            ),
            (warm && clients > clients_limit, clients, clients_limit),
            (
                warm && es.series_rate > series_limit,
                es.series_rate,
                series_limit,
            ),
            (
                origin_rate > cfg.origin_storm_per_second,
                origin_rate,
                cfg.origin_storm_per_second,
            ),
        ];
        let any = measured.iter().any(|m| m.0);
        if any {
            es.window.taint();
        } else if let Some(l) = left.filter(|l| es.started && !l.tainted) {
            let (secs, window) = (f64::from(l.secs), cfg.baseline_window.as_secs_f64());
            es.items_baseline
                .learn(f64::from(l.accepted) / secs, secs, window);
            es.clients_baseline
                .learn(f64::from(l.clients), secs, window);
            es.series_baseline
                .learn(f64::from(l.new_series) / secs, secs, window);
        }
        let expecting = w.expect_until.load(Relaxed) > now;
        for (i, (signal, (cond, value, threshold))) in TRACKED.iter().zip(measured).enumerate() {
            let baseline = match signal {
                Signal::Spike => es.items_baseline.value,
                Signal::ClientStorm => es.clients_baseline.value,
                Signal::SeriesGrowth => es.series_baseline.value,
                _ => 0.0,
            };
            let s = &mut es.signals[i];
            s.value = value;
            s.threshold = threshold;
            let muted = settings.mode == Mode::Off || (*signal == Signal::Spike && expecting);
            if cond && !s.active {
                *s = SignalState {
                    active: true,
                    since: now,
                    announced: None,
                    value,
                    threshold,
                };
            }
            if cond && s.announced.is_none() && !muted {
                let action = response(*signal, settings);
                s.announced = Some(action);
                decision.disable |= action == Action::Blocked;
                decision
                    .events
                    .push(event(t, *signal, action, value, baseline, now));
            }
            if !cond && s.active {
                if s.announced.is_some() {
                    decision
                        .events
                        .push(event(t, *signal, Action::Cleared, value, baseline, now));
                }
                s.active = false;
                s.announced = None;
            }
        }
        // The throttle: a cap of factor x baseline while a signal that throttles lasts.
        let throttling = es
            .signals
            .iter()
            .any(|s| s.active && s.announced == Some(Action::Throttled));
        if throttling {
            let cap = f * es
                .items_baseline
                .value
                .max(settings.min_items_per_second / f);
            let refill = (cap * dt).ceil() as i64;
            if !w.throttled.load(Relaxed) {
                w.budget.store(refill, Relaxed);
            } else {
                let _ = w.budget.fetch_update(Relaxed, Relaxed, |b| {
                    Some(b.saturating_add(refill).min(refill))
                });
            }
            w.retry_after
                .store(self.tick().as_secs().max(1) as u32, Relaxed);
        }
        w.throttled.store(throttling, Relaxed);
        drop(es);
        if let Ok(mut h) = w.history.lock() {
            let (requests, rejected) = t.usage.totals();
            h.add(
                now,
                super::history::Totals {
                    requests,
                    items: accepted,
                    bytes: w.accepted_bytes.load(Relaxed),
                    rejected,
                },
            );
        }
        if let Ok(mut cold) = w.cold.lock() {
            for origin in std::mem::take(&mut cold.new_origins) {
                let mut e = event(t, Signal::NewOrigin, Action::Flagged, 0.0, 0.0, now);
                e.name = format!("{} (origin {origin})", e.name);
                decision.events.push(e);
            }
            if std::mem::take(&mut cold.mobile_in_browser_pending) {
                // Flag only: the requests are refused anyway.
                let e = event(
                    t,
                    Signal::MobileTokenInBrowser,
                    Action::Flagged,
                    1.0,
                    0.0,
                    now,
                );
                decision.events.push(e);
            }
        }
        decision
    }

    /// One tick of the edge-wide `auth_storm`.
    fn evaluate_auth(&self, now: u64, dt: f64) -> Option<Event> {
        let mut a = self.auth.lock().ok()?;
        let total = self.auth_refusals.load(Relaxed);
        let bucket = Bucket {
            secs: dt as f32,
            items: delta(total, a.last),
            ..Bucket::default()
        };
        a.last = total;
        a.window.push(bucket, self.ticks());
        let rate = a.window.rate(|b| f64::from(b.items));
        let limit = self.config.auth_storm_per_second;
        a.signal.value = rate;
        a.signal.threshold = limit;
        let cond = rate > limit && self.config.mode != Mode::Off;
        let action = match (cond, a.signal.active) {
            (true, false) => {
                a.signal.active = true;
                a.signal.since = now;
                a.signal.announced = Some(Action::Flagged);
                Action::Flagged
            }
            (false, true) => {
                a.signal.active = false;
                a.signal.announced = None;
                if let Ok(mut top) = self.auth_top.lock() {
                    top.clear();
                }
                Action::Cleared
            }
            _ => return None,
        };
        let kind = kind(action);
        Some(Event::new(
            kind,
            "",
            "",
            "",
            Signal::AuthStorm,
            action,
            rate,
            limit,
            now,
        ))
    }
}

fn delta(now: u64, before: u64) -> u32 {
    u32::try_from(now.saturating_sub(before)).unwrap_or(u32::MAX)
}

/// What a firing signal gets: `origin_storm` only flags (its traffic is refused anyway).
fn response(signal: Signal, settings: Settings) -> Action {
    match (signal, settings.mode) {
        (Signal::OriginStorm, _) | (_, Mode::Off | Mode::Flag) => Action::Flagged,
        (_, Mode::Throttle) => Action::Throttled,
        (_, Mode::Block) => Action::Blocked,
    }
}

fn kind(action: Action) -> EventKind {
    match action {
        Action::Flagged => EventKind::Flagged,
        Action::Throttled => EventKind::Throttled,
        Action::Blocked => EventKind::Blocked,
        Action::Cleared => EventKind::Cleared,
        Action::Revoked => EventKind::SecretLeaked,
    }
}

fn event(
    t: &ActiveToken,
    signal: Signal,
    action: Action,
    value: f64,
    base: f64,
    now: u64,
) -> Event {
    Event::new(
        kind(action),
        &t.id,
        &t.name,
        &t.environment,
        signal,
        action,
        value,
        base,
        now,
    )
}

#[cfg(test)]
mod tests;
