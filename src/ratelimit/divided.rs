//! This edge's share of a token's shared limits (the token's limits divided by the live
//! edges): what an edge enforces while Redis is unreachable (SPEC §16).

use std::num::NonZeroU32;
use std::sync::Arc;

use governor::clock::Clock;
use governor::RateLimiter;

use super::{quota, Budget, Direct, TokenLimiter};
use crate::reject::{Reason, Reject};

/// Local stand-ins for the shared budgets: this edge's share of them.
pub(super) struct Divided<C: Clock> {
    /// The live edges the limits were divided by.
    edges: u32,
    requests: Direct<C>,
    items: Direct<C>,
}

impl<C: Clock + Clone> TokenLimiter<C> {
    /// `n` units of `budget` from this edge's share of the token's limits (each rate and
    /// burst divided by `edges`, rounded up, at least 1): the fall-back while the shared
    /// limits are unreachable. A cost over the divided burst is `429`, not `413`: it passes
    /// once the shared limits are back.
    pub fn check_divided(&self, budget: Budget, n: NonZeroU32, edges: u32) -> Result<(), Reject> {
        let divided = self.divided_by(edges.max(1));
        let limiter = match budget {
            Budget::Requests => &divided.requests,
            Budget::Items => &divided.items,
        };
        match limiter.check_n(n) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(nu)) => Err(self.throttled(nu.earliest_possible())),
            Err(_) => Err(Reject::new(Reason::RateLimited).retry_after(1)),
        }
    }

    fn divided_by(&self, edges: u32) -> Arc<Divided<C>> {
        let current = self
            .divided
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone();
        if let Some(d) = current.filter(|d| d.edges == edges) {
            return d;
        }
        let mut slot = self.divided.write().unwrap_or_else(|p| p.into_inner());
        if let Some(d) = slot.as_ref().filter(|d| d.edges == edges) {
            return Arc::clone(d);
        }
        let share =
            |v: NonZeroU32| NonZeroU32::new(v.get().div_ceil(edges)).unwrap_or(NonZeroU32::MIN);
        let l = &self.limits;
        let d = Arc::new(Divided {
            edges,
            requests: RateLimiter::direct_with_clock(
                quota(share(l.requests_per_second), share(l.requests_burst)),
                C::clone(&self.clock),
            ),
            items: RateLimiter::direct_with_clock(
                quota(share(l.items_per_second), share(l.items_burst)),
                C::clone(&self.clock),
            ),
        });
        *slot = Some(Arc::clone(&d));
        d
    }
}
