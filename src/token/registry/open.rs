//! Start-up: the cache loaded from the store (or a snapshot of it), and the trail's last
//! change checked against its record (see the parent's header).

use std::sync::Arc;

use dashmap::DashMap;

use super::commit::Writer;
use super::{IdHasher, Registry};
use crate::config::LimitDefaults;
use crate::token::cache::TokenCache;
use crate::token::store::{StoreError, TokenStore};

impl Registry {
    /// Loads every token from the store into the cache, one record at a time (each is
    /// dropped once its request-path view is built, so its memory serves the next one), and
    /// marks the trail's last change `not_applied` if the store never saw it (a crash between
    /// the audit write and the store write).
    pub fn open(
        store: Arc<dyn TokenStore>,
        defaults: LimitDefaults,
    ) -> Result<Registry, StoreError> {
        let source = Arc::clone(&store);
        Registry::open_from(store, &*source, defaults)
    }

    /// Like [`Registry::open`], but the first view comes from `source`: the local snapshot of
    /// a shared store that is unreachable at start (changes then go to `store` as usual).
    pub fn open_from(
        store: Arc<dyn TokenStore>,
        source: &dyn TokenStore,
        defaults: LimitDefaults,
    ) -> Result<Registry, StoreError> {
        let mut registry = Registry {
            store: Arc::clone(&store),
            cache: TokenCache::default(),
            defaults,
            active: DashMap::with_hasher(IdHasher::default()),
            writer: tokio::sync::Mutex::new(Writer::default()),
            clock: Arc::default(),
            applying: std::sync::Mutex::new(()),
            following: Default::default(),
            synced_at_ms: Default::default(),
            loaded: std::sync::atomic::AtomicBool::new(true),
        };
        let last = source.last_audit().unwrap_or_else(|e| {
            // Ingest must not stop over the audit trail; the next change will fail loudly.
            tracing::error!(error = %e, "cannot read the audit trail; start-up reconciliation skipped");
            None
        });
        // Events before ids (0) cannot be checked; `not_applied` marks and notes changed no record.
        let pending = last.as_ref().filter(|e| {
            e.id != 0 && e.refers_to.is_none() && crate::token::store::changes_record(&e.action)
        });
        let mut applied = None;
        source.for_each(&mut |record| {
            if pending.is_some_and(|e| e.token_id == record.id) {
                applied = record.last_event;
            }
            registry.apply(record);
        })?;
        let writer = registry.writer.get_mut();
        writer.last_event = last.as_ref().map_or(0, |e| e.id);
        // A newer event on the record is another edge's later change (a shared store): this
        // edge's change cannot be checked against it, and is not marked.
        if let Some(change) = pending.filter(|e| applied.is_none_or(|a| a < e.id)) {
            let mark = writer.not_applied(change, "the edge stopped before its store write".into());
            tracing::warn!(token_id = %change.token_id, event = change.id, action = %change.action,
                "an audited change never reached the store; marked not_applied");
            if let Err(e) = store.append_audit(std::slice::from_ref(&mark)) {
                tracing::error!(error = %e, "cannot mark the change; retried with the next one");
                writer.unmarked.push(mark);
            }
        }
        Ok(registry)
    }
}
