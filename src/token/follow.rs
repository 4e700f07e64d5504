//! Keeps an edge's token cache in step with the shared PostgreSQL store (SPEC §16).
//!
//! One thread per edge holds its own LISTEN session on `ingest_edge_tokens`. Every
//! notification, every (re)connect and every `store.poll_interval` triggers one catch-up: the
//! rows with a revision above the last seen (and those updated shortly before the last
//! catch-up, since a sequence number taken first may commit last), applied in revision order
//! through [`Registry::apply_remote`], the cache path of the admin API. Notifications sent while
//! the session was down are lost; the catch-up on reconnect is what recovers them.
//!
//! After a catch-up that changed something (and once at start), at most every
//! [`SNAPSHOT_EVERY`], it rewrites the local snapshot `<data_dir>/snapshot/tokens.json` (the
//! file store's format) from the store: what an edge restarted during an outage serves.
//!
//! A thread, not a task: the `postgres` client blocks, and its session lives for the edge's
//! life. It stops when the edge shuts down (the watch channel) or its state is gone.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use postgres::fallible_iterator::FallibleIterator;
use tokio::sync::watch;

use super::registry::Registry;
use super::store::pg::{changes_since, Cursor, PgStore};
use super::store::{write_atomically, StoreError, TokenStore};

/// How long one wait for notifications lasts: the bound on noticing shutdown, and how often
/// a live session refreshes the staleness gauge.
const WAIT: Duration = Duration::from_millis(250);
/// Pause between reconnect attempts while the database is down.
const RECONNECT: Duration = Duration::from_secs(1);
/// Rows updated this long before the previous catch-up are read again (idempotent), so a
/// change whose commit landed after a later revision's is not skipped.
const MARGIN: Duration = Duration::from_secs(5);
/// Least time between two snapshot writes: each reads every token from the store.
pub const SNAPSHOT_EVERY: Duration = Duration::from_secs(2);

/// The snapshot file of a data directory.
pub fn snapshot_dir(data_dir: &Path) -> PathBuf {
    data_dir.join("snapshot")
}

/// What the follow loop carries besides the cursor.
struct Follower {
    cursor: Cursor,
    snapshot: PathBuf,
    /// Changes applied since the snapshot was last written.
    dirty: bool,
    written: Option<Instant>,
}

/// Something that owns a registry (the edge's state).
pub trait HasRegistry: Send + Sync + 'static {
    fn registry(&self) -> &Registry;
}

/// Starts the follower thread; it runs until `shutdown` turns true or `owner` is dropped.
pub fn spawn<S: HasRegistry>(
    store: Arc<PgStore>,
    owner: Weak<S>,
    poll: Duration,
    data_dir: &Path,
    shutdown: watch::Receiver<bool>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    if let Some(owner) = owner.upgrade() {
        owner.registry().set_following();
    }
    let dir = snapshot_dir(data_dir);
    std::fs::create_dir_all(&dir)?;
    let mut follower = Follower {
        cursor: store.loaded_cursor(),
        snapshot: dir.join("tokens.json"),
        dirty: true,
        written: None,
    };
    std::thread::Builder::new()
        .name("store-follow".into())
        .spawn(move || run(&store, &owner, poll, &shutdown, &mut follower))
}

fn stopped<S>(owner: &Weak<S>, shutdown: &watch::Receiver<bool>) -> bool {
    *shutdown.borrow() || owner.strong_count() == 0
}

fn run<S: HasRegistry>(
    store: &PgStore,
    owner: &Weak<S>,
    poll: Duration,
    shutdown: &watch::Receiver<bool>,
    follower: &mut Follower,
) {
    let mut down_since: Option<Instant> = None;
    while !stopped(owner, shutdown) {
        match follow(store, owner, poll, shutdown, follower) {
            Ok(()) => return,
            Err(e) => {
                if down_since.is_none() {
                    tracing::warn!(error = %e, "token store change feed lost; serving from the cache, reconnecting");
                    down_since = Some(Instant::now());
                }
            }
        }
        let until = Instant::now() + RECONNECT;
        while Instant::now() < until && !stopped(owner, shutdown) {
            std::thread::sleep(WAIT.min(RECONNECT));
        }
        if let Some(since) = down_since.filter(|_| store.open_session().is_ok()) {
            tracing::info!(down_for = ?since.elapsed(), "token store reachable again; catching up");
            down_since = None;
        }
    }
}

/// One session: LISTEN, catch up, then wait for notifications and poll. `Ok` on shutdown.
fn follow<S: HasRegistry>(
    store: &PgStore,
    owner: &Weak<S>,
    poll: Duration,
    shutdown: &watch::Receiver<bool>,
    follower: &mut Follower,
) -> Result<(), StoreError> {
    // The schema may not exist yet if the database was down when the edge started.
    store.ensure_schema()?;
    let mut client = store.open_session()?;
    client
        .batch_execute("LISTEN ingest_edge_tokens")
        .map_err(|e| StoreError::Unavailable(crate::token::store::pg::detail(&e)))?;
    // Everything missed while disconnected (notifications are not queued for us).
    catch_up(&mut client, owner, follower)?;
    let mut next_poll = Instant::now() + poll;
    loop {
        if stopped(owner, shutdown) {
            return Ok(());
        }
        let lost =
            |e: postgres::Error| StoreError::Unavailable(crate::token::store::pg::detail(&e));
        let notified = client
            .notifications()
            .timeout_iter(WAIT)
            .next()
            .map_err(lost)?
            .is_some();
        if notified {
            // One catch-up covers every change already announced.
            let mut notes = client.notifications();
            let mut buffered = notes.iter();
            while buffered.next().map_err(lost)?.is_some() {}
        }
        if client.is_closed() {
            return Err(StoreError::Unavailable("LISTEN session closed".into()));
        }
        if notified || Instant::now() >= next_poll {
            catch_up(&mut client, owner, follower)?;
            next_poll = Instant::now() + poll;
        } else if let Some(owner) = owner.upgrade() {
            // A live session with no notification means nothing changed.
            owner.registry().mark_synced();
        }
        if follower.dirty
            && follower
                .written
                .is_none_or(|t| t.elapsed() >= SNAPSHOT_EVERY)
        {
            // The snapshot goes through the admin connection, which may be one the database
            // closed while it was down: a failure here is retried after SNAPSHOT_EVERY on a
            // new one, and must not cost the live LISTEN session a reconnect (1 s).
            match write_snapshot(store, &follower.snapshot) {
                Ok(()) => follower.dirty = false,
                Err(e) => tracing::warn!(error = %e, "local snapshot not rewritten; retrying"),
            }
            follower.written = Some(Instant::now());
        }
    }
}

fn catch_up<S: HasRegistry>(
    client: &mut postgres::Client,
    owner: &Weak<S>,
    follower: &mut Follower,
) -> Result<(), StoreError> {
    let (records, next) = changes_since(client, follower.cursor, MARGIN)?;
    let Some(owner) = owner.upgrade() else {
        return Ok(());
    };
    let registry = owner.registry();
    follower.dirty |= !records.is_empty();
    for record in records {
        registry.apply_remote(record);
    }
    follower.cursor = next;
    registry.mark_synced();
    Ok(())
}

/// Every token from the store into `path`, in the file store's format, atomically.
fn write_snapshot(store: &PgStore, path: &Path) -> Result<(), StoreError> {
    let mut out = Vec::with_capacity(64 << 10);
    out.extend_from_slice(b"{\"version\": 1, \"tokens\": [");
    let mut first = true;
    let mut failed = None;
    store.for_each(&mut |r| {
        out.extend_from_slice(if first { b"\n" } else { b",\n" });
        first = false;
        if let Err(e) = serde_json::to_writer(&mut out, &r) {
            failed.get_or_insert(e);
        }
    })?;
    if let Some(source) = failed {
        return Err(StoreError::Corrupt {
            path: path.to_owned(),
            source,
        });
    }
    out.extend_from_slice(b"\n]}\n");
    match write_atomically(path, &out) {
        // A snapshot is a convenience: a failed write is logged, the feed goes on.
        Err(e) if !matches!(e, StoreError::Unavailable(_)) => {
            tracing::warn!(error = %e, "cannot write the token snapshot");
            Ok(())
        }
        other => other,
    }
}
