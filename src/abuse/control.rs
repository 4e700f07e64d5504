//! The operator's controls of the abuse monitor (SPEC §12), audited: expect a spike, reset a
//! token's learning. (`disable` / `enable` are token changes: `Registry::disable` / `enable`.)

use std::net::IpAddr;
use std::sync::atomic::Ordering::Relaxed;

use super::topk::Counted;
use super::watch::{SignalState, TOP_K};
use super::Monitor;
use crate::time::{rfc3339, unix_now};
use crate::token::cache::ActiveToken;
use crate::token::registry::{Registry, RegistryError};

/// Longest expected spike an operator may announce.
pub const MAX_EXPECT: u64 = 30 * 24 * 3600;

impl Monitor {
    /// For the next `secs` seconds a spike on token `id` neither flags, throttles nor blocks
    /// (the gauges still show it, and the baseline does not learn it). Audited as
    /// `expect_spike`. Returns the unix second it ends.
    pub async fn expect_spike_for(
        &self,
        registry: &Registry,
        id: &str,
        secs: u64,
        who: &str,
    ) -> Result<u64, RegistryError> {
        let t = registry
            .active(id)
            .filter(|t| !t.revoked)
            .ok_or_else(|| RegistryError::NotFound(id.to_owned()))?;
        let until = unix_now().saturating_add(secs.min(MAX_EXPECT));
        registry
            .note(id, who, "expect_spike", format!("until={}", rfc3339(until)))
            .await?;
        self.expect_spike(&t, until);
        Ok(until)
    }

    /// Forgets token `id`'s baselines, restarts its warm-up and lifts a throttle at once.
    /// Audited as `abuse_reset`.
    pub async fn reset_token(
        &self,
        registry: &Registry,
        id: &str,
        who: &str,
    ) -> Result<(), RegistryError> {
        let t = registry
            .active(id)
            .ok_or_else(|| RegistryError::NotFound(id.to_owned()))?;
        registry.note(id, who, "abuse_reset", String::new()).await?;
        self.reset(&t);
        Ok(())
    }
}

impl Monitor {
    /// Until `until` (unix seconds) a spike on the token neither flags nor acts.
    pub fn expect_spike(&self, t: &ActiveToken, until: u64) {
        let s = t.watch().state_for_admin();
        s.expect_until.store(until, Relaxed);
    }

    /// The `auth_storm` state and the addresses behind it.
    pub fn auth_view(&self) -> (SignalState, Vec<Counted<IpAddr>>) {
        let state = self.auth.lock().map(|a| a.signal).unwrap_or_default();
        let top = self
            .auth_top
            .lock()
            .map(|t| t.top(TOP_K))
            .unwrap_or_default();
        (state, top)
    }

    /// Forgets the token's baselines and window, restarts its warm-up, lifts a throttle.
    pub fn reset(&self, t: &ActiveToken) {
        let s = t.watch().state_for_admin();
        s.throttled.store(false, Relaxed);
        if let Ok(mut es) = s.engine.lock() {
            let (items, accepted, refusals, switched) = (
                es.last_items,
                es.last_accepted,
                es.last_origin_refusals,
                es.clients_switched,
            );
            *es = Default::default();
            (es.last_items, es.last_accepted, es.last_origin_refusals) =
                (items, accepted, refusals);
            es.clients_switched = switched;
            es.persisted_minute = s.last_used.load(Relaxed);
        }
    }
}
