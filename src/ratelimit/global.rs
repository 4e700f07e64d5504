//! Per-token limits shared by every edge (SPEC §16, `limits.redis_url`).
//!
//! Each token's request and item budgets are one GCRA state in Redis: a theoretical arrival
//! time per budget, read, checked and advanced by one Lua script that takes the time from
//! Redis's own clock (`TIME`), so edges with skewed clocks agree. One round trip per check, on
//! the connection manager's one multiplexed connection (concurrent checks of one edge are
//! pipelined on it). Keys name the token id, never a secret.
//!
//! Failure: every call has a 50 ms timeout. A failed or late call opens the breaker: checks
//! stop calling Redis and use the token's limits divided by the live edges
//! ([`TokenLimiter::check_divided`]) until the heartbeat (every second, the probe) gets an
//! answer again. Live edges come from the heartbeats: a sorted set of instance ids scored by
//! the time of their last beat, entries older than 5 s dropped (a key per edge with a 5 s
//! expiry would need a SCAN of the whole key space to count); the last count seen is kept
//! while Redis is down.

use std::num::NonZeroU32;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::Script;
use tokio::sync::watch;

use super::{Budget, Client, TokenLimiter};
use crate::reject::{Reason, Reject};

/// The longest a request waits on Redis (SPEC §16), also for the heartbeat: an answer that
/// slow means the breaker opens.
pub const CALL_TIMEOUT: Duration = Duration::from_millis(50);
/// Heartbeat period, and so the probe period of an open breaker.
pub const HEARTBEAT: Duration = Duration::from_secs(1);
/// An edge whose last heartbeat is older is no longer counted.
pub const EDGE_EXPIRY: Duration = Duration::from_secs(5);
/// Every key this edge writes starts with it.
const PREFIX: &str = "ingest-edge:";

/// GCRA on Redis's clock. KEYS[1]: the budget's theoretical arrival time (µs). ARGV: the
/// emission interval (µs per unit), the burst (units), the cost (units). Returns {1, 0} when
/// admitted (and stores the new time, expiring once the budget is full again), {0, µs to
/// wait} when not (nothing stored).
const GCRA: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local interval = tonumber(ARGV[1])
local tat = tonumber(redis.call('GET', KEYS[1])) or now
if tat < now then tat = now end
local new_tat = tat + interval * tonumber(ARGV[3])
local wait = new_tat - interval * tonumber(ARGV[2]) - now
if wait > 0 then return {0, math.ceil(wait)} end
redis.call('SET', KEYS[1], string.format('%.3f', new_tat), 'PX', math.ceil((new_tat - now) / 1000) + 1)
return {1, 0}
";

/// KEYS[1]: the live edges (sorted set, score: last beat in ms on Redis's clock). ARGV: this
/// edge's instance id, the expiry in ms. Returns the live edges, this one included.
const HEARTBEAT_SCRIPT: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - tonumber(ARGV[2]))
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return redis.call('ZCARD', KEYS[1])
";

/// The shared limits of one edge: the connection, the breaker, the live-edge count.
pub struct GlobalLimits {
    client: redis::Client,
    /// Set once Redis first answered (the manager reconnects by itself after that).
    conn: OnceLock<ConnectionManager>,
    gcra: Script,
    heartbeat: Script,
    /// This edge in the live-edge set: its name, process id and a random part, so two edges
    /// on one host (or a restarted one) never share an entry.
    instance: String,
    /// Closed breaker: checks go to Redis. Opened by any failed or late call, closed by the
    /// next heartbeat Redis answers in time.
    active: AtomicBool,
    /// Live edges at the last heartbeat (kept while Redis is down); at least 1.
    live_edges: AtomicU32,
    /// Checks decided by the divided local limits.
    fallback_checks: AtomicU64,
    /// Redis calls that failed or timed out.
    errors: AtomicU64,
}

impl GlobalLimits {
    /// Checks the URL (and reads `ca_file`, for `rediss://`); connects later, in
    /// [`GlobalLimits::run`] (Redis may be down at start).
    pub fn new(
        url: &str,
        ca_file: Option<&Path>,
        edge_name: &str,
    ) -> Result<Arc<GlobalLimits>, redis::RedisError> {
        let client = if url.starts_with("rediss://") {
            // The redis crate builds its rustls config with the process-wide provider; ring is
            // the one this build carries (already installed if the listeners use TLS).
            let _ = rustls::crypto::ring::default_provider().install_default();
            let root_cert = ca_file.map(std::fs::read).transpose()?;
            redis::Client::build_with_tls(
                url,
                redis::TlsCertificates {
                    client_tls: None,
                    root_cert,
                },
            )?
        } else {
            redis::Client::open(url)?
        };
        Ok(Arc::new(GlobalLimits {
            client,
            conn: OnceLock::new(),
            gcra: Script::new(GCRA),
            heartbeat: Script::new(HEARTBEAT_SCRIPT),
            instance: format!(
                "{edge_name}:{}:{:016x}",
                std::process::id(),
                rand::random::<u64>()
            ),
            active: AtomicBool::new(false),
            live_edges: AtomicU32::new(1),
            fallback_checks: AtomicU64::new(0),
            errors: AtomicU64::new(0),
        }))
    }

    /// Whether checks currently go to Redis.
    pub fn is_active(&self) -> bool {
        self.active.load(Ordering::Relaxed)
    }

    /// Live edges, as last seen.
    pub fn live_edges(&self) -> u32 {
        self.live_edges.load(Ordering::Relaxed).max(1)
    }

    /// One request: the client's budget (always local), then the token's shared one.
    pub async fn check_request(
        &self,
        limiter: &TokenLimiter,
        token_id: &str,
        client: Client<'_>,
    ) -> Result<(), Reject> {
        limiter.check_per_client(client)?;
        let limits = &limiter.limits;
        let (rate, burst) = (limits.requests_per_second, limits.requests_burst);
        self.spend(
            limiter,
            token_id,
            Budget::Requests,
            rate,
            burst,
            NonZeroU32::MIN,
        )
        .await
    }

    /// `n` items, all or nothing; more than the burst is `413` without asking Redis.
    pub async fn check_items(
        &self,
        limiter: &TokenLimiter,
        token_id: &str,
        n: u64,
    ) -> Result<(), Reject> {
        let Some(n) = limiter.item_cost(n)? else {
            return Ok(());
        };
        let limits = &limiter.limits;
        let (rate, burst) = (limits.items_per_second, limits.items_burst);
        self.spend(limiter, token_id, Budget::Items, rate, burst, n)
            .await
    }

    async fn spend(
        &self,
        limiter: &TokenLimiter,
        token_id: &str,
        budget: Budget,
        rate: NonZeroU32,
        burst: NonZeroU32,
        n: NonZeroU32,
    ) -> Result<(), Reject> {
        if let Some(conn) = self.conn.get().filter(|_| self.is_active()) {
            let key = format!(
                "{PREFIX}{{{token_id}}}:{}",
                match budget {
                    Budget::Requests => "requests",
                    Budget::Items => "items",
                }
            );
            let interval_us = 1_000_000.0 / f64::from(rate.get());
            let mut conn = conn.clone();
            let mut call = self.gcra.key(key);
            call.arg(interval_us).arg(burst.get()).arg(n.get());
            match tokio::time::timeout(CALL_TIMEOUT, call.invoke_async::<(i64, i64)>(&mut conn))
                .await
            {
                Ok(Ok((1, _))) => return Ok(()),
                Ok(Ok((_, wait_us))) => {
                    let secs = u64::try_from(wait_us).unwrap_or(0).div_ceil(1_000_000);
                    return Err(Reject::new(Reason::RateLimited)
                        .retry_after(u32::try_from(secs).unwrap_or(u32::MAX)));
                }
                Ok(Err(e)) => self.failed(&e.to_string()),
                Err(_) => self.failed("timed out"),
            }
        }
        self.fallback_checks.fetch_add(1, Ordering::Relaxed);
        limiter.check_divided(budget, n, self.live_edges())
    }

    /// Opens the breaker: the next checks stay local until a heartbeat gets an answer.
    fn failed(&self, why: &str) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        if self.active.swap(false, Ordering::Relaxed) {
            tracing::warn!(
                error = why,
                live_edges = self.live_edges(),
                "redis: global limits unavailable, enforcing limit / live edges locally"
            );
        }
    }

    /// The heartbeat and probe task: connects (again and again while Redis is unreachable),
    /// beats every second, and leaves the live-edge set at shutdown.
    pub async fn run(self: Arc<Self>, mut shutdown: watch::Receiver<bool>) {
        let mut tick = tokio::time::interval(HEARTBEAT);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = tick.tick() => self.beat().await,
                _ = shutdown.changed() => break,
            }
        }
        if let Some(conn) = self.conn.get() {
            let mut conn = conn.clone();
            let mut leave = redis::cmd("ZREM");
            leave.arg(edges_key()).arg(&self.instance);
            let _ = tokio::time::timeout(CALL_TIMEOUT, leave.query_async::<i64>(&mut conn)).await;
        }
    }

    async fn beat(&self) {
        let conn = match self.conn.get() {
            Some(c) => c.clone(),
            None => {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Duration::from_millis(500))
                    .set_number_of_retries(1)
                    .set_factor(10)
                    .set_max_delay(200);
                let connect = ConnectionManager::new_with_config(self.client.clone(), config);
                match tokio::time::timeout(Duration::from_secs(1), connect).await {
                    Ok(Ok(c)) => self.conn.get_or_init(|| c).clone(),
                    Ok(Err(e)) => return self.failed(&e.to_string()),
                    Err(_) => return self.failed("connect timed out"),
                }
            }
        };
        let mut conn = conn;
        let mut call = self.heartbeat.key(edges_key());
        call.arg(&self.instance)
            .arg(u64::try_from(EDGE_EXPIRY.as_millis()).unwrap_or(u64::MAX));
        match tokio::time::timeout(CALL_TIMEOUT, call.invoke_async::<u32>(&mut conn)).await {
            Ok(Ok(n)) => {
                self.live_edges.store(n.max(1), Ordering::Relaxed);
                if !self.active.swap(true, Ordering::Relaxed) {
                    tracing::info!(live_edges = n, "redis: global limits active");
                }
            }
            Ok(Err(e)) => self.failed(&e.to_string()),
            Err(_) => self.failed("heartbeat timed out"),
        }
    }

    /// Appends this edge's global-limit gauges and counters (Prometheus text; no labels).
    pub fn render_metrics(&self, out: &mut String) {
        out.push_str(&format!(
            "# HELP ingest_global_limits_active 1 while token limits are enforced across edges \
             in Redis, 0 while this edge enforces limit / live edges locally.\n\
             # TYPE ingest_global_limits_active gauge\n\
             ingest_global_limits_active {}\n\
             # HELP ingest_global_limits_live_edges Live edges seen in Redis's heartbeats (the \
             last count seen while Redis is unreachable).\n\
             # TYPE ingest_global_limits_live_edges gauge\n\
             ingest_global_limits_live_edges {}\n\
             # HELP ingest_global_limits_fallback_checks_total Limit checks decided locally \
             (limit / live edges) because Redis was unavailable.\n\
             # TYPE ingest_global_limits_fallback_checks_total counter\n\
             ingest_global_limits_fallback_checks_total {}\n\
             # HELP ingest_global_limits_redis_errors_total Redis calls that failed or took \
             longer than 50 ms.\n\
             # TYPE ingest_global_limits_redis_errors_total counter\n\
             ingest_global_limits_redis_errors_total {}\n",
            u8::from(self.is_active()),
            self.live_edges(),
            self.fallback_checks.load(Ordering::Relaxed),
            self.errors.load(Ordering::Relaxed),
        ));
    }
}

fn edges_key() -> String {
    format!("{PREFIX}edges")
}

/// One request against the token's limits: shared when `global` is set, else this edge's.
pub async fn check_request(
    global: Option<&GlobalLimits>,
    limiter: &TokenLimiter,
    token_id: &str,
    client: Client<'_>,
) -> Result<(), Reject> {
    match global {
        Some(g) => g.check_request(limiter, token_id, client).await,
        None => limiter.check_client(client),
    }
}

/// `n` items against the token's limits: shared when `global` is set, else this edge's.
pub async fn check_items(
    global: Option<&GlobalLimits>,
    limiter: &TokenLimiter,
    token_id: &str,
    n: u64,
) -> Result<(), Reject> {
    match global {
        Some(g) => g.check_items(limiter, token_id, n).await,
        None => limiter.check_items(n),
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};
    use std::time::Instant;

    use super::*;
    use crate::config::{LimitDefaults, LimitOverrides};

    const CLIENT: Client<'static> = Client::Addr(IpAddr::V4(Ipv4Addr::LOCALHOST));

    #[tokio::test]
    async fn unreachable_redis_leaves_local_limits_that_never_wait() {
        assert!(GlobalLimits::new("http://127.0.0.1", None, "t").is_err());
        // Nothing listens on port 1: never connected, so no count of edges to divide by.
        let g = GlobalLimits::new("redis://127.0.0.1:1", None, "t").unwrap();
        let nz = NonZeroU32::new;
        let limits = LimitDefaults::default().remote_write.with(&LimitOverrides {
            requests_per_second: nz(1),
            requests_burst: nz(3),
            items_burst: nz(10),
            ..LimitOverrides::default()
        });
        let l = TokenLimiter::new(limits, false);
        let start = Instant::now();
        for _ in 0..3 {
            g.check_request(&l, "tk_a", CLIENT).await.unwrap();
        }
        let r = g.check_request(&l, "tk_a", CLIENT).await.unwrap_err();
        assert_eq!((r.status, r.retry_after), (429, Some(1)));
        assert_eq!(g.check_items(&l, "tk_a", 11).await.unwrap_err().status, 413);
        g.check_items(&l, "tk_a", 0).await.unwrap();
        g.check_items(&l, "tk_a", 10).await.unwrap();
        assert!(start.elapsed() < CALL_TIMEOUT, "{:?}", start.elapsed());
        // A heartbeat that cannot connect keeps the breaker open and is counted.
        g.beat().await;
        assert!(!g.is_active());
        let mut m = String::new();
        g.render_metrics(&mut m);
        for series in [
            "ingest_global_limits_active 0\n",
            "ingest_global_limits_live_edges 1\n",
            "ingest_global_limits_fallback_checks_total 5\n",
            "ingest_global_limits_redis_errors_total 1\n",
        ] {
            assert!(m.contains(series), "{series} in {m}");
        }
    }
}
