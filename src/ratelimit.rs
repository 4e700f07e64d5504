//! Per-token rate limits (SPEC §7) with governor's GCRA.
//!
//! Each token has a request limiter, an item limiter (samples or spans/log records: a request
//! of n items costs n) and, for public client tokens, a keyed limiter per client so one
//! abusive browser or app install cannot spend the whole token's budget. The client is the
//! address, or for mobile tokens the install id (`X-Client-Id`, SPEC §14: many phones share
//! one carrier NAT address). Limiters are generic over the clock so tests can drive time by
//! hand.
//!
//! With `limits.redis_url` the token's request and item budgets are shared by every edge
//! (`ratelimit/global.rs`, SPEC §16); the per-client budget always stays here, and while
//! Redis is unreachable each edge falls back to this token's limits divided by the live
//! edges ([`TokenLimiter::check_divided`]).

mod divided;
pub mod global;

use std::collections::hash_map::RandomState;
use std::hash::BuildHasher;
use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::{Arc, OnceLock, RwLock};

use divided::Divided;

use dashmap::DashMap;
use governor::clock::{Clock, DefaultClock, FakeRelativeClock, Reference};
use governor::middleware::NoOpMiddleware;
use governor::state::keyed::DashMapStateStore;
use governor::state::{InMemoryState, NotKeyed};
use governor::{Quota, RateLimiter};

use crate::config::RateLimits;
use crate::reject::{Reason, Reject};

type Direct<C> = RateLimiter<NotKeyed, InMemoryState, C, NoOpMiddleware<<C as Clock>::Instant>>;
type Keyed<C> =
    RateLimiter<ClientKey, DashMapStateStore<ClientKey>, C, NoOpMiddleware<<C as Clock>::Instant>>;

/// Who a per-client budget belongs to, as the caller knows it.
#[derive(Clone, Copy, Debug)]
pub enum Client<'a> {
    /// The peer address (web tokens; mobile requests without a usable `X-Client-Id`).
    Addr(IpAddr),
    /// A mobile install id, already checked (at most 64 of `[A-Za-z0-9_-]`).
    Install(&'a str),
}

/// The key of the per-client map. An install id is kept as a keyed 64-bit hash, so an entry
/// costs the same as an address's whatever the id's length, and nothing is allocated per
/// request; the hash key is random per token, so no one can aim a collision at another
/// install's budget (a chance collision only makes two installs share one budget).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum ClientKey {
    Addr(IpAddr),
    Install(u64),
}

/// The limiters of one token.
pub struct TokenLimiter<C: Clock = DefaultClock> {
    /// The limits these limiters were built from; a PATCH that changes them builds new ones.
    pub limits: RateLimits,
    /// Whether a per-client-address budget applies (client tokens).
    per_client: bool,
    /// Shared by every token's limiter (40 bytes each otherwise).
    clock: Arc<C>,
    /// Built on the token's first request, so each idle token of a large population costs
    /// this pointer instead of three limiters (about 300 bytes).
    built: OnceLock<Box<Limiters<C>>>,
    /// The token's limits divided by the live edges, used only while the shared (Redis)
    /// limits are unreachable; rebuilt when the count of live edges changes. A read lock on
    /// that path only, uncontended but for the rare rebuild.
    divided: RwLock<Option<Arc<Divided<C>>>>,
}

/// Which of a token's shared budgets a check spends.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Budget {
    Requests,
    Items,
}

/// The limiters themselves, once a token has traffic.
struct Limiters<C: Clock> {
    requests: Direct<C>,
    items: Direct<C>,
    /// Client tokens only.
    per_client: Option<Keyed<C>>,
    /// Hashes install ids into [`ClientKey::Install`] (SipHash with a random key).
    install_ids: RandomState,
}

/// Shards of a client token's per-client map (a power of two above 1, as DashMap requires).
const PER_CLIENT_SHARDS: usize = 4;

/// A manual clock for tests.
pub type TestClock = FakeRelativeClock;

fn quota(per_second: NonZeroU32, burst: NonZeroU32) -> Quota {
    Quota::per_second(per_second).allow_burst(burst)
}

impl TokenLimiter<DefaultClock> {
    pub fn new(limits: RateLimits, per_client: bool) -> Self {
        Self::with_clock(limits, per_client, DefaultClock::default())
    }
}

impl<C: Clock + Clone> TokenLimiter<C> {
    pub fn with_clock(limits: RateLimits, per_client: bool, clock: C) -> Self {
        Self::with_shared_clock(limits, per_client, Arc::new(clock))
    }

    /// Like [`TokenLimiter::with_clock`], with a clock shared by many limiters.
    pub fn with_shared_clock(limits: RateLimits, per_client: bool, clock: Arc<C>) -> Self {
        TokenLimiter {
            limits,
            per_client,
            clock,
            built: OnceLock::new(),
            divided: RwLock::new(None),
        }
    }

    fn limiters(&self) -> &Limiters<C> {
        self.built.get_or_init(|| {
            let l = &self.limits;
            Box::new(Limiters {
                requests: RateLimiter::direct_with_clock(
                    quota(l.requests_per_second, l.requests_burst),
                    C::clone(&self.clock),
                ),
                items: RateLimiter::direct_with_clock(
                    quota(l.items_per_second, l.items_burst),
                    C::clone(&self.clock),
                ),
                // Four shards, not `DashMap::default()`'s 4 x cores cache-padded ones: that
                // costs every client token 1 KiB on 2 cores and 32 KiB on 64 at its first
                // request, whatever its client count (tests/active_token_memory.rs).
                per_client: self.per_client.then(|| {
                    RateLimiter::new(
                        quota(
                            l.per_client_requests_per_second,
                            l.per_client_requests_burst,
                        ),
                        DashMap::with_shard_amount(PER_CLIENT_SHARDS),
                        C::clone(&self.clock),
                    )
                }),
                install_ids: RandomState::new(),
            })
        })
    }

    fn throttled(&self, earliest: C::Instant) -> Reject {
        let wait = earliest.duration_since(self.clock.now());
        let secs = u32::try_from(wait.as_u64().div_ceil(1_000_000_000)).unwrap_or(u32::MAX);
        Reject::new(Reason::RateLimited).retry_after(secs)
    }

    /// One request from the client address `client`; see [`TokenLimiter::check_client`].
    pub fn check_request(&self, client: IpAddr) -> Result<(), Reject> {
        self.check_client(Client::Addr(client))
    }

    /// One request from `client`: the client's budget first (so an abuser is stopped before
    /// spending the shared budget), then the token's.
    pub fn check_client(&self, client: Client<'_>) -> Result<(), Reject> {
        self.check_per_client(client)?;
        self.limiters()
            .requests
            .check()
            .map_err(|nu| self.throttled(nu.earliest_possible()))
    }

    /// The client's own budget only (client tokens; always local, also with shared limits).
    pub fn check_per_client(&self, client: Client<'_>) -> Result<(), Reject> {
        let limiters = self.limiters();
        if let Some(keyed) = &limiters.per_client {
            let key = match client {
                Client::Addr(addr) => ClientKey::Addr(addr),
                Client::Install(id) => ClientKey::Install(limiters.install_ids.hash_one(id)),
            };
            keyed
                .check_key(&key)
                .map_err(|nu| self.throttled(nu.earliest_possible()))?;
        }
        Ok(())
    }

    /// The item count as a cost: `None` for zero (nothing to spend), `413` past the burst
    /// (such a request could never pass).
    pub fn item_cost(&self, n: u64) -> Result<Option<NonZeroU32>, Reject> {
        if n == 0 {
            return Ok(None);
        }
        match u32::try_from(n).ok().and_then(NonZeroU32::new) {
            Some(n) if n <= self.limits.items_burst => Ok(Some(n)),
            _ => Err(Reject::new(Reason::TooLarge)
                .with_message("request has more items than the token's items_burst")),
        }
    }

    /// `n` items, all or nothing. More than the burst can never pass: `413`.
    pub fn check_items(&self, n: u64) -> Result<(), Reject> {
        let Some(n) = self.item_cost(n)? else {
            return Ok(());
        };
        match self.limiters().items.check_n(n) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(nu)) => Err(self.throttled(nu.earliest_possible())),
            Err(_) => Err(Reject::new(Reason::TooLarge)
                .with_message("request has more items than the token's items_burst")),
        }
    }

    /// Forgets clients (addresses, install ids) whose budget is full again; keeps the keyed
    /// map bounded by the clients active within one refill period.
    pub fn housekeeping(&self) {
        if let Some(keyed) = self.built.get().and_then(|b| b.per_client.as_ref()) {
            keyed.retain_recent();
            keyed.shrink_to_fit();
        }
    }

    pub fn tracked_clients(&self) -> usize {
        self.built
            .get()
            .and_then(|b| b.per_client.as_ref())
            .map_or(0, |k| k.len())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn limits(rps: u32, burst: u32, ips: u32, iburst: u32) -> RateLimits {
        let n = |v| NonZeroU32::new(v).unwrap();
        RateLimits {
            requests_per_second: n(rps),
            requests_burst: n(burst),
            items_per_second: n(ips),
            items_burst: n(iburst),
            per_client_requests_per_second: n(1),
            per_client_requests_burst: n(2),
        }
    }

    const A: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 1));
    const B: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(10, 0, 0, 2));

    #[test]
    fn burst_then_throttled_with_retry_after_then_refilled() {
        let clock = TestClock::default();
        let l = TokenLimiter::with_clock(limits(1, 3, 100, 100), false, clock.clone());
        for _ in 0..3 {
            l.check_request(A).unwrap();
        }
        let r = l.check_request(A).unwrap_err();
        assert_eq!(r.status, 429);
        assert_eq!(r.retry_after, Some(1));
        clock.advance(Duration::from_secs(1));
        l.check_request(A).unwrap();
    }

    #[test]
    fn items_are_all_or_nothing_and_over_burst_is_413() {
        let clock = TestClock::default();
        let l = TokenLimiter::with_clock(limits(100, 100, 10, 100), false, clock.clone());
        l.check_items(0).unwrap();
        l.check_items(60).unwrap();
        let r = l.check_items(60).unwrap_err();
        assert_eq!(r.status, 429);
        // 20 missing items at 10/s: two seconds.
        assert_eq!(r.retry_after, Some(2));
        l.check_items(40).unwrap();
        assert_eq!(l.check_items(101).unwrap_err().status, 413);
        assert_eq!(l.check_items(u64::MAX).unwrap_err().status, 413);
    }

    #[test]
    fn one_client_address_cannot_exhaust_a_client_token() {
        let clock = TestClock::default();
        let l = TokenLimiter::with_clock(limits(100, 100, 10, 100), true, clock.clone());
        l.check_request(A).unwrap();
        l.check_request(A).unwrap();
        assert_eq!(l.check_request(A).unwrap_err().status, 429);
        l.check_request(B).unwrap();
        assert_eq!(l.tracked_clients(), 2);
        clock.advance(Duration::from_secs(10));
        l.housekeeping();
        assert_eq!(l.tracked_clients(), 0);
    }

    #[test]
    fn divided_limits_are_this_edges_share_and_follow_the_edge_count() {
        let clock = TestClock::default();
        let l = TokenLimiter::with_clock(limits(30, 9, 100, 100), false, clock.clone());
        let one = NonZeroU32::MIN;
        // Three edges: a burst of 3, then 10/s.
        for _ in 0..3 {
            l.check_divided(Budget::Requests, one, 3).unwrap();
        }
        assert_eq!(
            l.check_divided(Budget::Requests, one, 3)
                .unwrap_err()
                .status,
            429
        );
        clock.advance(Duration::from_millis(100));
        l.check_divided(Budget::Requests, one, 3).unwrap();
        assert_eq!(
            l.check_divided(Budget::Requests, one, 3)
                .unwrap_err()
                .status,
            429
        );
        // One edge left: the whole budget, a fresh burst of 9.
        for _ in 0..9 {
            l.check_divided(Budget::Requests, one, 1).unwrap();
        }
        assert!(l.check_divided(Budget::Requests, one, 1).is_err());
        // Items: a cost over the divided burst (100 / 3 = 34) waits for the shared limits.
        let n = NonZeroU32::new(40).unwrap();
        assert_eq!(
            l.check_divided(Budget::Items, n, 3).unwrap_err().status,
            429
        );
        l.check_divided(Budget::Items, n, 2).unwrap();
        assert_eq!(l.item_cost(0).unwrap(), None);
        assert_eq!(l.item_cost(101).unwrap_err().status, 413);
    }

    #[test]
    fn install_ids_behind_one_address_have_their_own_budgets() {
        let clock = TestClock::default();
        let l = TokenLimiter::with_clock(limits(100, 100, 10, 100), true, clock.clone());
        l.check_client(Client::Install("install-a")).unwrap();
        l.check_client(Client::Install("install-a")).unwrap();
        assert_eq!(
            l.check_client(Client::Install("install-a"))
                .unwrap_err()
                .status,
            429
        );
        // Another install (and the shared address itself) still have their budgets.
        l.check_client(Client::Install("install-b")).unwrap();
        l.check_client(Client::Addr(A)).unwrap();
        assert_eq!(l.tracked_clients(), 3);
        // The keyed state stays bounded: one entry per active client, forgotten once refilled.
        for i in 0..1000 {
            l.check_client(Client::Install(&format!("churn-{i}")))
                .unwrap_or(());
        }
        assert_eq!(l.tracked_clients(), 1003);
        clock.advance(Duration::from_secs(10));
        l.housekeeping();
        assert_eq!(l.tracked_clients(), 0);
    }
}
