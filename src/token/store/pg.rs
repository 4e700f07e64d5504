//! The shared token store of several edges: PostgreSQL (`store.url`, SPEC §16).
//!
//! One row per token (`ingest_edge_tokens`: the record as JSONB, a `revision` from a sequence,
//! `updated_at`) and an append-only audit table naming the edge of each event. The schema is in
//! `migrations/`, applied at start in one transaction under an advisory lock, so edges starting
//! together on an empty database take turns. A trigger numbers every change and sends
//! `pg_notify('ingest_edge_tokens', id:revision)`; `super::super::follow` listens.
//!
//! The client is `postgres`, the blocking wrapper of `tokio-postgres`: the [`TokenStore`] trait
//! is blocking (the registry calls it through `spawn_blocking`). That wrapper drives its
//! connection on a runtime of its own, which must not be entered or dropped on an async worker,
//! so every call runs on a short scoped thread (tens of microseconds; control plane only).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use postgres::Client;

use super::{AuditEvent, StoreError, TokenStore};

use self::error::{classify, corrupt};
pub use self::error::{detail, redacted};
pub use self::feed::{changes_since, Cursor};
use self::schema::migrate;
use self::tls::MakeRustls;
use crate::token::TokenRecord;

/// Rows per fetch when streaming every token (bounded memory at a million tokens).
const BATCH: i32 = 1000;
/// Connect timeout when the URL names none: an unreachable database must fail an admin call
/// quickly (503), not hang it.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// A connection idle this long is checked (one empty query) before use: the blocking client
/// reads nothing between calls, so one the database closed during an outage still looks open
/// and would fail the first admin call after it with a needless 503.
const CHECK_AFTER_IDLE: Duration = Duration::from_secs(1);
/// How long that check may take before the connection is replaced.
const CHECK_TIMEOUT: Duration = Duration::from_secs(1);

pub struct PgStore {
    config: postgres::Config,
    /// TLS as the URL's `sslmode` and `sslrootcert` ask (see `pg/tls.rs`).
    tls: MakeRustls,
    /// `server.name`, written into every audit row.
    edge: String,
    /// The one connection of admin calls, reopened after an error that closed it, and when
    /// it was last used.
    client: Mutex<Option<(Client, Instant)>>,
    /// Set by each full load, read by the follower once.
    loaded: Mutex<Cursor>,
    /// The schema is applied on the first connection (at start, or later when the database
    /// was down then).
    migrated: std::sync::atomic::AtomicBool,
}

impl PgStore {
    /// Parses `url` and applies the migrations; fails when the database cannot be reached.
    pub fn connect(url: &str, edge: &str) -> Result<PgStore, StoreError> {
        let store = PgStore::new(url, edge)?;
        store.ensure_schema()?;
        Ok(store)
    }

    /// Parses `url` only: the first call that reaches the database applies the migrations.
    pub fn new(url: &str, edge: &str) -> Result<PgStore, StoreError> {
        let (config, tls) = Self::config(url)?;
        Ok(PgStore {
            config,
            tls,
            edge: edge.to_owned(),
            client: Mutex::new(None),
            loaded: Mutex::new(Cursor::default()),
            migrated: Default::default(),
        })
    }

    /// Connects if needed, which applies the migrations once.
    pub fn ensure_schema(&self) -> Result<(), StoreError> {
        self.with_client(|_| Ok(()))
    }

    /// The parsed URL with this edge's defaults (connect timeout, keepalives, name), and the
    /// TLS connector its `sslmode` asks for.
    pub fn config(url: &str) -> Result<(postgres::Config, MakeRustls), StoreError> {
        let invalid = |e: String| StoreError::Database(format!("store.url: {e}"));
        let (url, ssl_mode, tls) = tls::parse(url).map_err(invalid)?;
        let mut config: postgres::Config = url
            .parse()
            .map_err(|e: postgres::Error| invalid(detail(&e)))?;
        config.ssl_mode(ssl_mode);
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("ingest-edge");
        }
        config
            .keepalives(true)
            .keepalives_idle(Duration::from_secs(10));
        Ok((config, tls))
    }

    /// A new connection of its own (the follower's LISTEN session); call off async workers.
    /// Named `ingest-edge follow <edge>` in `pg_stat_activity`, so an operator can tell them.
    pub fn open_session(&self) -> Result<Client, StoreError> {
        let mut config = self.config.clone();
        config.application_name(&format!("ingest-edge follow {}", self.edge));
        config.connect(self.tls.clone()).map_err(classify)
    }

    /// Where the last full load ended.
    pub fn loaded_cursor(&self) -> Cursor {
        *self.loaded.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs `f` on the shared connection, on a scoped thread (see the module header); a
    /// connection an error closed is dropped and reopened by the next call.
    fn with_client<T: Send>(
        &self,
        f: impl FnOnce(&mut Client) -> Result<T, StoreError> + Send,
    ) -> Result<T, StoreError> {
        std::thread::scope(|s| {
            s.spawn(|| {
                let mut guard = self.client.lock().unwrap_or_else(|p| p.into_inner());
                if let Some((client, used)) = guard.as_mut() {
                    if used.elapsed() >= CHECK_AFTER_IDLE && client.is_valid(CHECK_TIMEOUT).is_err()
                    {
                        *guard = None;
                    }
                }
                if guard.as_ref().is_none_or(|(c, _)| c.is_closed()) {
                    let mut client = self.config.connect(self.tls.clone()).map_err(classify)?;
                    if !self.migrated.load(std::sync::atomic::Ordering::Acquire) {
                        migrate(&mut client)?;
                        self.migrated
                            .store(true, std::sync::atomic::Ordering::Release);
                    }
                    *guard = Some((client, Instant::now()));
                }
                let Some((client, used)) = guard.as_mut() else {
                    return Err(StoreError::Unavailable("no connection".into()));
                };
                let result = f(client);
                *used = Instant::now();
                if matches!(result, Err(StoreError::Unavailable(_))) || client.is_closed() {
                    *guard = None;
                }
                result
            })
            .join()
            .unwrap_or_else(|_| Err(StoreError::Database("store call panicked".into())))
        })
    }
}

impl Drop for PgStore {
    /// The client's own runtime must not be dropped on an async worker.
    fn drop(&mut self) {
        let client = self.client.get_mut().map(Option::take).unwrap_or(None);
        if let Some((client, _)) = client {
            let _ = std::thread::Builder::new().spawn(move || drop(client));
        }
    }
}

impl TokenStore for PgStore {
    fn for_each(&self, f: &mut dyn FnMut(TokenRecord)) -> Result<(), StoreError> {
        // The rows go to `f` on this thread; the scoped thread only fetches batches.
        let (tx_rows, rx_rows) = std::sync::mpsc::sync_channel::<Vec<String>>(2);
        let cursor = std::thread::scope(|s| {
            let fetch = s.spawn(|| {
                self.with_client(|client| {
                    let mut tx = client.transaction().map_err(classify)?;
                    let head = tx
                        .query_one(
                            "SELECT (extract(epoch FROM now()) * 1000)::bigint, \
                             coalesce(max(revision), 0) FROM ingest_edge_tokens",
                            &[],
                        )
                        .map_err(classify)?;
                    let cursor = Cursor {
                        at_ms: head.try_get(0).map_err(classify)?,
                        revision: head.try_get(1).map_err(classify)?,
                    };
                    let portal = tx
                        .bind(
                            "SELECT record::text FROM ingest_edge_tokens ORDER BY id",
                            &[],
                        )
                        .map_err(classify)?;
                    loop {
                        let rows = tx.query_portal(&portal, BATCH).map_err(classify)?;
                        if rows.is_empty() {
                            break;
                        }
                        let texts = rows
                            .iter()
                            .map(|r| r.try_get::<_, String>(0))
                            .collect::<Result<Vec<_>, _>>()
                            .map_err(classify)?;
                        if tx_rows.send(texts).is_err() {
                            break;
                        }
                    }
                    drop(tx_rows);
                    tx.commit().map_err(classify)?;
                    Ok(cursor)
                })
            });
            let mut failed = None;
            for texts in rx_rows.iter() {
                for text in texts {
                    match serde_json::from_str(&text) {
                        Ok(record) if failed.is_none() => f(record),
                        Ok(_) => {}
                        Err(e) => failed = Some(corrupt(e)),
                    }
                }
            }
            let cursor = fetch
                .join()
                .unwrap_or_else(|_| Err(StoreError::Database("store call panicked".into())))?;
            failed.map_or(Ok(cursor), Err)
        })?;
        *self.loaded.lock().unwrap_or_else(|p| p.into_inner()) = cursor;
        Ok(())
    }

    fn get(&self, id: &str) -> Result<Option<TokenRecord>, StoreError> {
        let text: Option<String> = self.with_client(|client| {
            let row = client
                .query_opt(
                    "SELECT record::text FROM ingest_edge_tokens WHERE id = $1",
                    &[&id],
                )
                .map_err(classify)?;
            row.map(|r| r.try_get(0)).transpose().map_err(classify)
        })?;
        text.map(|t| serde_json::from_str(&t).map_err(corrupt))
            .transpose()
    }

    fn upsert(&self, record: &TokenRecord) -> Result<(), StoreError> {
        let json = serde_json::to_string(record).map_err(corrupt)?;
        self.with_client(|client| {
            client
                .execute(
                    "INSERT INTO ingest_edge_tokens (id, record) VALUES ($1, $2::text::jsonb) \
                     ON CONFLICT (id) DO UPDATE SET record = EXCLUDED.record",
                    &[&record.id, &json],
                )
                .map_err(classify)
                .map(drop)
        })
    }

    /// Compare-and-set on the record's `last_event`: a change read before another edge's
    /// change and written after it would otherwise undo it (a revoke lost to a rename).
    fn replace(&self, prev: Option<&TokenRecord>, record: &TokenRecord) -> Result<(), StoreError> {
        let json = serde_json::to_string(record).map_err(corrupt)?;
        let written = self.with_client(|client| {
            match prev {
                None => client.execute(
                    "INSERT INTO ingest_edge_tokens (id, record) VALUES ($1, $2::text::jsonb) \
                     ON CONFLICT (id) DO NOTHING",
                    &[&record.id, &json],
                ),
                Some(prev) => {
                    let expected = prev.last_event.map(|e| e.to_string());
                    client.execute(
                        "UPDATE ingest_edge_tokens SET record = $2::text::jsonb \
                         WHERE id = $1 AND (record->>'last_event') IS NOT DISTINCT FROM $3::text",
                        &[&record.id, &json, &expected],
                    )
                }
            }
            .map_err(classify)
        })?;
        if written == 1 {
            Ok(())
        } else {
            Err(StoreError::Conflict(record.id.clone()))
        }
    }

    /// Only `last_used_at`, only forward; the trigger gives such a write no new revision.
    fn record_last_used(&self, changes: &[(String, u64)]) -> Result<(), StoreError> {
        if changes.is_empty() {
            return Ok(());
        }
        let ids: Vec<&str> = changes.iter().map(|(id, _)| id.as_str()).collect();
        let times: Vec<i64> = changes
            .iter()
            .map(|(_, t)| i64::try_from(*t).unwrap_or(i64::MAX))
            .collect();
        self.with_client(|client| {
            client
                .execute(
                    "UPDATE ingest_edge_tokens t \
                     SET record = jsonb_set(t.record, '{last_used_at}', to_jsonb(c.at)) \
                     FROM unnest($1::text[], $2::bigint[]) AS c(id, at) \
                     WHERE t.id = c.id AND coalesce((t.record->>'last_used_at')::bigint, 0) < c.at",
                    &[&ids, &times],
                )
                .map_err(classify)
                .map(drop)
        })
    }

    fn append_audit(&self, events: &[AuditEvent]) -> Result<(), StoreError> {
        let rows = events
            .iter()
            .map(|e| {
                let id = i64::try_from(e.id).unwrap_or(i64::MAX);
                serde_json::to_string(e).map(|j| (id, j))
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(corrupt)?;
        self.with_client(|client| {
            let mut tx = client.transaction().map_err(classify)?;
            for (id, json) in &rows {
                tx.execute(
                    "INSERT INTO ingest_edge_audit (id, edge, event) VALUES ($1, $2, $3::text::jsonb)",
                    &[id, &self.edge, json],
                )
                .map_err(classify)?;
            }
            tx.commit().map_err(classify)
        })
    }

    fn read_audit(&self, limit: usize) -> Result<Vec<AuditEvent>, StoreError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let rows: Vec<(String, String)> = self.with_client(|client| {
            client
                .query(
                    "SELECT event::text, edge FROM (SELECT seq, event, edge FROM ingest_edge_audit \
                     ORDER BY seq DESC LIMIT $1) newest ORDER BY seq",
                    &[&limit],
                )
                .map_err(classify)?
                .iter()
                .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
                .collect::<Result<_, postgres::Error>>()
                .map_err(classify)
        })?;
        rows.iter()
            .map(|(text, edge)| {
                let mut event: AuditEvent = serde_json::from_str(text).map_err(corrupt)?;
                event.edge.clone_from(edge);
                Ok(event)
            })
            .collect()
    }

    /// This edge's newest event: start-up reconciliation asks whether *its* last change
    /// reached the store; another edge's change may be in flight and is not ours to mark.
    fn last_audit(&self) -> Result<Option<AuditEvent>, StoreError> {
        let text: Option<String> = self.with_client(|client| {
            client
                .query_opt(
                    "SELECT event::text FROM ingest_edge_audit WHERE edge = $1 \
                     ORDER BY seq DESC LIMIT 1",
                    &[&self.edge],
                )
                .map_err(classify)?
                .map(|r| r.try_get(0))
                .transpose()
                .map_err(classify)
        })?;
        text.map(|t| serde_json::from_str(&t).map_err(corrupt))
            .transpose()
    }
}

mod error;
mod feed;
mod schema;
mod tls;
