//! Changes made by other edges, and how current this edge's view of them is (SPEC §16).

use std::sync::atomic::Ordering::Relaxed;

use super::Registry;
use crate::token::TokenRecord;

impl Registry {
    /// Applies a change another edge made (read from the shared store): the same cache update
    /// as a local change, secrets the previous version had and this one has not included.
    pub fn apply_remote(&self, record: TokenRecord) {
        self.apply(record);
    }

    /// The shared store's changes reach this edge through a follower (`token::follow`):
    /// from now on `/metrics` shows how stale its view may be.
    /// Staleness counts from here (an edge started from its snapshot: from its start).
    pub fn set_following(&self) {
        self.synced_at_ms.store(now_ms(), Relaxed);
        self.following.store(true, Relaxed);
    }

    /// The view is known to be current (a catch-up succeeded, or the change feed is up).
    pub fn mark_synced(&self) {
        self.synced_at_ms.store(now_ms(), Relaxed);
        self.loaded.store(true, Relaxed);
    }

    /// Started with no tokens at all: not ready until the first catch-up.
    pub fn set_unloaded(&self) {
        self.loaded.store(false, Relaxed);
    }

    /// Whether the edge has a view of the tokens to serve (`/readyz`).
    pub fn is_loaded(&self) -> bool {
        self.loaded.load(Relaxed)
    }

    /// Seconds since the view was last known current; `None` with a store of this edge only.
    pub fn staleness_seconds(&self) -> Option<f64> {
        self.following.load(Relaxed).then(|| {
            let at = self.synced_at_ms.load(Relaxed);
            now_ms().saturating_sub(at) as f64 / 1000.0
        })
    }
}

/// This machine's clock (staleness only; catch-ups use the database's).
fn now_ms() -> u64 {
    u64::try_from(crate::time::unix_now_ms()).unwrap_or(0)
}
