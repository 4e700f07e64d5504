//! How one change is written: its audit event first, then its record, then the cache (the
//! order and the failure cases are in the parent's header).

use std::sync::Arc;

use super::{blocking, Registry, RegistryError};
use crate::time::{rfc3339, unix_now};
use crate::token::store::{AuditEvent, StoreError, NOT_APPLIED};
use crate::token::TokenRecord;

/// What the one writer carries from change to change.
#[derive(Default)]
pub(super) struct Writer {
    /// Id of the newest audit event written or reserved; the next one is greater.
    pub(super) last_event: u64,
    /// `not_applied` events that could not be written yet: they go out with the next audit
    /// write, ahead of its event, so no later change is audited before them.
    pub(super) unmarked: Vec<AuditEvent>,
}

impl Writer {
    /// Ids increase within a run and, being microseconds of the clock at least, across
    /// restarts even when the trail's last line cannot be read.
    fn next_id(&mut self) -> u64 {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
        self.last_event = now.max(self.last_event.saturating_add(1));
        self.last_event
    }

    /// An event that records what the edge noticed or did without changing a record.
    pub(super) fn note(&mut self, id: &str, who: &str, action: &str, detail: String) -> AuditEvent {
        AuditEvent {
            id: self.next_id(),
            at: rfc3339(unix_now()),
            who: who.to_owned(),
            action: action.to_owned(),
            token_id: id.to_owned(),
            detail,
            refers_to: None,
            edge: String::new(),
        }
    }

    pub(super) fn not_applied(&mut self, change: &AuditEvent, why: String) -> AuditEvent {
        AuditEvent {
            id: self.next_id(),
            at: rfc3339(unix_now()),
            who: change.who.clone(),
            action: NOT_APPLIED.to_owned(),
            token_id: change.token_id.clone(),
            detail: why,
            refers_to: Some(change.id),
            edge: String::new(),
        }
    }
}

impl Registry {
    /// Audit, persist, then publish to the cache: the order that makes a successful response
    /// mean "audited, durable and visible", and any failure leave the store and the cache as
    /// they were (see the module header). Returns the record as stored.
    pub(super) async fn commit(
        &self,
        w: &mut Writer,
        prev: Option<TokenRecord>,
        mut record: TokenRecord,
        who: &str,
        action: &str,
        detail: String,
    ) -> Result<TokenRecord, RegistryError> {
        let event = AuditEvent {
            id: w.next_id(),
            at: rfc3339(unix_now()),
            who: who.to_owned(),
            action: action.to_owned(),
            token_id: record.id.clone(),
            detail,
            refers_to: None,
            edge: String::new(),
        };
        record.last_event = Some(event.id);
        let mut batch = w.unmarked.clone();
        batch.push(event.clone());
        let store = Arc::clone(&self.store);
        blocking(move || store.append_audit(&batch))
            .await
            .map_err(RegistryError::NotApplied)?;
        w.unmarked.clear();
        let store = Arc::clone(&self.store);
        let to_store = record.clone();
        let replaced = prev.clone();
        match blocking(move || store.replace(replaced.as_ref(), &to_store)).await {
            Ok(()) => {
                self.apply(record.clone());
                Ok(record)
            }
            Err(StoreError::Unconfirmed(e)) => {
                // Written and visible in the store, so applied: the cache must agree, and the
                // caller must get the record (a rotation's new secret would be lost otherwise).
                // If a crash does lose it, the start-up check marks its event not_applied.
                tracing::error!(error = %e, token_id = %record.id, "token change applied, durability not confirmed");
                self.apply(record.clone());
                Ok(record)
            }
            Err(e) => {
                let mark = w.not_applied(&event, format!("store write failed: {e}"));
                let store = Arc::clone(&self.store);
                let batch = [mark.clone()];
                if let Err(me) = blocking(move || store.append_audit(&batch)).await {
                    tracing::error!(error = %me, "cannot mark a change not applied yet; retried with the next one");
                    w.unmarked.push(mark);
                }
                Err(RegistryError::NotApplied(e))
            }
        }
    }
}
