//! The operator's controls of the abuse monitor (SPEC §12), audited: expect a spike, reset a
//! token's learning. (`disable` / `enable` are token changes: `Registry::disable` / `enable`.)

use super::Monitor;
use crate::time::{rfc3339, unix_now};
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
            .append_audit(id, who, "expect_spike", format!("until={}", rfc3339(until)))
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
        registry
            .append_audit(id, who, "abuse_reset", String::new())
            .await?;
        self.reset(&t);
        Ok(())
    }
}
