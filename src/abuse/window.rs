//! The short window and the slow baseline of one token, kept by the engine (never touched by
//! the request path).
//!
//! Each engine tick closes a [`Bucket`] from the deltas of the token's counters. The short
//! window is the last `ticks` buckets; a bucket is learned by the [`Baseline`] only when it
//! leaves the window, and only if no signal was active while it was in it (`tainted`): the
//! first ticks of an attack, before it crosses the threshold, are never learned either.
//! Time comes in as arguments (`secs` of each bucket), so tests run the logic on a fake clock.

/// Buckets kept: the window is at most this many ticks.
pub const MAX_TICKS: usize = 8;

/// One tick's worth of a token's traffic.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Bucket {
    /// Length of the tick.
    pub secs: f32,
    /// Items of requests that passed the token and origin checks (`spike_protection` refusals
    /// included): what the current rate measures.
    pub items: u32,
    /// Items of accepted requests: what the baseline learns.
    pub accepted: u32,
    /// `origin_not_allowed` refusals.
    pub origin_refusals: u32,
    /// Distinct client addresses over the short window, estimated at the end of the tick.
    pub clients: f32,
    /// Never-seen series in this tick (estimated).
    pub new_series: f32,
    /// A signal was active while this bucket was in the window: the baseline never learns it.
    pub tainted: bool,
}

/// The last few buckets, oldest first.
#[derive(Clone, Debug, Default)]
pub struct Window {
    ring: [Bucket; MAX_TICKS],
    /// Index of the oldest bucket.
    head: usize,
    len: usize,
}

impl Window {
    /// Adds the newest bucket; returns the one that left a window of `ticks` buckets.
    pub fn push(&mut self, bucket: Bucket, ticks: usize) -> Option<Bucket> {
        let ticks = ticks.clamp(1, MAX_TICKS);
        let mut left = None;
        if self.len == ticks || self.len == MAX_TICKS {
            left = Some(self.ring[self.head]);
            self.head = (self.head + 1) % MAX_TICKS;
            self.len -= 1;
        }
        self.ring[(self.head + self.len) % MAX_TICKS] = bucket;
        self.len += 1;
        left
    }

    fn iter(&self) -> impl Iterator<Item = &Bucket> {
        (0..self.len).map(move |i| &self.ring[(self.head + i) % MAX_TICKS])
    }

    /// Marks every bucket in the window as not to be learned.
    pub fn taint(&mut self) {
        for i in 0..self.len {
            self.ring[(self.head + i) % MAX_TICKS].tainted = true;
        }
    }

    /// Seconds the window covers.
    pub fn secs(&self) -> f64 {
        self.iter().map(|b| f64::from(b.secs)).sum()
    }

    /// Per-second rate of one field over the window.
    pub fn rate(&self, field: impl Fn(&Bucket) -> f64) -> f64 {
        let secs = self.secs();
        if secs <= 0.0 {
            return 0.0;
        }
        self.iter().map(field).sum::<f64>() / secs
    }

    /// The newest bucket.
    pub fn last(&self) -> Option<&Bucket> {
        self.iter().last()
    }

    pub fn clear(&mut self) {
        *self = Window::default();
    }
}

/// A slow average: until it has learned `window` seconds, the mean of everything learned so
/// far; then an exponentially weighted mean with time constant `window`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Baseline {
    pub value: f64,
    /// Seconds learned (tainted time does not count).
    pub covered: f64,
}

impl Baseline {
    pub fn learn(&mut self, value: f64, secs: f64, window: f64) {
        if secs <= 0.0 || !value.is_finite() {
            return;
        }
        if self.covered < window {
            self.value = (self.value * self.covered + value * secs) / (self.covered + secs);
        } else {
            let alpha = 1.0 - (-secs / window).exp();
            self.value += alpha * (value - self.value);
        }
        self.covered += secs;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bucket(items: u32) -> Bucket {
        Bucket {
            secs: 1.0,
            items,
            accepted: items,
            ..Bucket::default()
        }
    }

    #[test]
    fn the_window_keeps_the_last_ticks_and_hands_back_the_oldest() {
        let mut w = Window::default();
        for i in 0..6 {
            assert_eq!(w.push(bucket(i), 6), None);
        }
        assert_eq!(w.rate(|b| f64::from(b.items)), 15.0 / 6.0);
        assert_eq!(w.push(bucket(60), 6).map(|b| b.items), Some(0));
        assert_eq!(w.rate(|b| f64::from(b.items)), 75.0 / 6.0);
        assert_eq!(w.last().map(|b| b.items), Some(60));
    }

    #[test]
    fn baseline_is_the_mean_until_it_covers_its_window_then_decays() {
        let mut b = Baseline::default();
        for v in [10.0, 20.0, 30.0] {
            b.learn(v, 1.0, 10.0);
        }
        assert!((b.value - 20.0).abs() < 1e-9);
        for _ in 0..7 {
            b.learn(20.0, 1.0, 10.0);
        }
        // Past its window one sample of 1000 moves it by about a tenth, not to 1000.
        b.learn(1000.0, 1.0, 10.0);
        assert!(b.value > 100.0 && b.value < 120.0, "{}", b.value);
    }

    /// A fake clock run of the whole rule: steady traffic, then a surge that is flagged
    /// (the engine taints the window): the baseline learns nothing of the surge.
    #[test]
    fn a_tainted_surge_is_never_learned() {
        let mut w = Window::default();
        let mut b = Baseline::default();
        let feed = |w: &mut Window, b: &mut Baseline, items: u32, signal: bool| {
            let left = w.push(bucket(items), 6);
            if signal {
                w.taint();
            }
            if let Some(l) = left.filter(|l| !l.tainted) {
                b.learn(f64::from(l.accepted), f64::from(l.secs), 3600.0);
            }
        };
        for _ in 0..60 {
            feed(&mut w, &mut b, 50, false);
        }
        let before = b.value;
        // The surge: the first tick is below the short-window threshold, later ones are not.
        for i in 0..30 {
            let signal = w.rate(|b| f64::from(b.items)) > 5.0 * before || i > 0;
            feed(&mut w, &mut b, 1000, signal);
        }
        assert_eq!(b.value, before);
    }
}
