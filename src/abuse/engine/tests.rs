//! The engine's rules on a fake clock: `evaluate` is called with made-up times.

use std::sync::Arc;
use std::time::Duration;

use super::*;
use crate::abuse::hll::mix;
use crate::abuse::AbuseOverrides;
use crate::secret::TokenType;
use crate::usage::TokenUsage;

fn monitor() -> Monitor {
    Monitor::new(AbuseConfig {
        mode: Mode::Throttle,
        short_window: Duration::from_secs(60),
        baseline_window: Duration::from_secs(3600),
        warmup: Duration::from_secs(600),
        ..AbuseConfig::default()
    })
}

fn token() -> ActiveToken {
    let limits = crate::config::LimitDefaults::default().remote_write;
    ActiveToken {
        id: Arc::from("tk_t"),
        token_type: TokenType::RemoteWrite,
        origins: Default::default(),
        tenant: None,
        usage: Arc::new(TokenUsage::new(Arc::from("tk_t"))),
        limiter: Arc::new(crate::ratelimit::TokenLimiter::new(limits, false)),
        revoked: false,
        disabled: false,
        abuse: AbuseOverrides::default(),
        name: "n".into(),
        environment: "".into(),
        client_type: None,
        attestation: None,
        age_base: 0,
        secrets: Box::default(),
    }
}

/// Ten seconds per tick (a 60 s window is six ticks); `items` per tick, all accepted unless
/// throttled. Returns the events of the run.
fn run(m: &Monitor, t: &ActiveToken, now: &mut u64, ticks: usize, items: u64) -> Vec<Event> {
    let mut events = Vec::new();
    for _ in 0..ticks {
        if t.watch().passed(items).is_ok() {
            t.watch().accepted(items, 0, *now);
        }
        *now += 10;
        let w = t.watch().get().unwrap();
        events.extend(m.evaluate(t, w, *now, 10.0).events);
    }
    events
}

#[test]
fn a_spike_throttles_at_the_cap_and_clears_without_being_learned() {
    let (m, t) = (monitor(), token());
    let mut now = 1_000_000;
    // 20 items/s for 20 minutes: warm.
    assert!(run(&m, &t, &mut now, 120, 200).is_empty());
    let base = m.token_report(&t).baseline_items_per_second;
    assert!((base - 20.0).abs() < 0.5, "{base}");
    // 20x: flagged and throttled within the window (six ticks).
    let events = run(&m, &t, &mut now, 6, 4000);
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(
        (events[0].signal, events[0].action),
        (Signal::Spike, Action::Throttled)
    );
    let w = t.watch().get().unwrap();
    assert!(w.throttled.load(Relaxed));
    // While throttled about spike_factor x baseline passes: 100 items/s of the 400.
    let accepted = w.accepted.load(Relaxed);
    run(&m, &t, &mut now, 30, 4000);
    let per_second = (w.accepted.load(Relaxed) - accepted) as f64 / 300.0;
    assert!((50.0..=150.0).contains(&per_second), "{per_second}");
    // Back to normal: cleared, and the baseline never learned the surge.
    let events = run(&m, &t, &mut now, 12, 200);
    assert_eq!(events.last().map(|e| e.action), Some(Action::Cleared));
    assert!(!w.throttled.load(Relaxed));
    let after = m.token_report(&t).baseline_items_per_second;
    assert!(after <= base * 1.01, "{base} -> {after}");
}

#[test]
fn an_expected_spike_is_shown_but_not_acted_on_and_reset_restarts_warmup() {
    let (m, t) = (monitor(), token());
    let mut now = 1_000_000;
    run(&m, &t, &mut now, 120, 200);
    m.expect_spike(&t, now + 3600);
    assert!(run(&m, &t, &mut now, 12, 4000).is_empty());
    let r = m.token_report(&t);
    assert!(
        r.signals[0].active && r.signals[0].action.is_none(),
        "{r:?}"
    );
    assert!(!r.throttled);
    m.reset(&t);
    let r = m.token_report(&t);
    assert!(!r.warm && r.baseline_items_per_second == 0.0);
}

#[test]
fn never_seen_series_make_series_growth_and_repeats_do_not() {
    let (m, t) = (monitor(), token());
    let mut now = 1_000_000;
    let feed = |m: &Monitor, now: &mut u64, from: u64, to: u64| {
        let hashes: Vec<u64> = (from..to).map(mix).collect();
        let mut events = Vec::new();
        for _ in 0..6 {
            t.watch().series(&hashes);
            t.watch().accepted(1, 0, *now);
            *now += 10;
            events.extend(m.evaluate(&t, t.watch().get().unwrap(), *now, 10.0).events);
        }
        events
    };
    // 1,000 series, then 100 new ones per minute: steady churn, learned.
    assert!(feed(&m, &mut now, 0, 1000).is_empty());
    for minute in 0..15 {
        let from = 1000 + minute * 100;
        assert!(feed(&m, &mut now, from, from + 100).is_empty());
    }
    // 20,000 new series in a minute.
    let events = feed(&m, &mut now, 100_000, 120_000);
    assert!(
        events.iter().any(|e| e.signal == Signal::SeriesGrowth),
        "{:?}",
        m.token_report(&t)
    );
}
