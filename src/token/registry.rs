//! The control plane: every token change goes through [`Registry`], which persists it, writes
//! the audit event, and updates the request path's cache before returning, so a request sent
//! after an admin call's response sees the change.
//!
//! Writers are serialized by one async mutex (no lost update between concurrent admin calls);
//! readers on the request path never wait for it.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;

use super::cache::{ActiveToken, TokenCache};
use super::store::{AuditEvent, StoreError, TokenStore};
use super::{new_token_id, NewToken, PatchBody, StoredSecret, TokenInputError, TokenRecord};
use crate::config::LimitDefaults;
use crate::ratelimit::TokenLimiter;
use crate::secret::{TokenSecret, TokenType};
use crate::time::{rfc3339, unix_now};
use crate::usage::Usage;

/// Longest rotation grace period an operator may ask for.
pub const MAX_GRACE: Duration = Duration::from_secs(30 * 24 * 3600);
/// Grace period when the rotate call names none.
pub const DEFAULT_GRACE: Duration = Duration::from_secs(24 * 3600);
/// Old secrets kept per token (expired ones still answer `revoked_token`).
const KEPT_SECRETS: usize = 8;

#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("no token with id {0:?}")]
    NotFound(String),
    #[error("token {0:?} is revoked")]
    Revoked(String),
    #[error("grace period must be at most 30 days")]
    GraceTooLong,
    #[error(transparent)]
    Input(#[from] TokenInputError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

pub struct Registry {
    store: Arc<dyn TokenStore>,
    cache: TokenCache,
    usage: Arc<Usage>,
    defaults: LimitDefaults,
    /// Current records by id (what list/show answer from).
    records: DashMap<String, TokenRecord>,
    /// The prebuilt request-path view of each token, to keep limiters and counters across
    /// changes.
    active: DashMap<String, Arc<ActiveToken>>,
    writer: tokio::sync::Mutex<()>,
    /// One clock for every limiter: creating a clock per token costs a calibration each.
    clock: governor::clock::DefaultClock,
}

impl Registry {
    /// Loads every token from the store into the cache.
    pub fn open(
        store: Arc<dyn TokenStore>,
        usage: Arc<Usage>,
        defaults: LimitDefaults,
    ) -> Result<Registry, StoreError> {
        let registry = Registry {
            store,
            cache: TokenCache::default(),
            usage,
            defaults,
            records: DashMap::new(),
            active: DashMap::new(),
            writer: tokio::sync::Mutex::new(()),
            clock: governor::clock::DefaultClock::default(),
        };
        for record in registry.store.load()? {
            registry.apply(record);
        }
        Ok(registry)
    }

    pub fn cache(&self) -> &TokenCache {
        &self.cache
    }

    pub fn list(&self) -> Vec<TokenRecord> {
        let mut all: Vec<TokenRecord> = self.records.iter().map(|e| e.value().clone()).collect();
        all.sort_by(|a, b| (a.created_at, &a.id).cmp(&(b.created_at, &b.id)));
        all
    }

    pub fn get(&self, id: &str) -> Option<TokenRecord> {
        self.records.get(id).map(|r| r.clone())
    }

    pub fn audit(&self, limit: usize) -> Result<Vec<AuditEvent>, StoreError> {
        self.store.read_audit(limit)
    }

    /// Visits every active token (housekeeping of per-client limiter state).
    pub fn for_each_active(&self, mut f: impl FnMut(&ActiveToken)) {
        for e in self.active.iter() {
            f(e.value());
        }
    }

    pub async fn create(
        &self,
        new: NewToken,
        who: &str,
    ) -> Result<(TokenRecord, TokenSecret), RegistryError> {
        let _w = self.writer.lock().await;
        let mut id = new_token_id();
        while self.records.contains_key(&id) {
            id = new_token_id();
        }
        let secret = TokenSecret::generate(new.token_type);
        let record = TokenRecord {
            id,
            name: new.name,
            token_type: new.token_type,
            client_type: new.client_type,
            origins: new.origins,
            environment: new.environment,
            tenant: new.tenant,
            limits: new.limits,
            created_at: unix_now(),
            rotated_at: None,
            revoked_at: None,
            secrets: vec![StoredSecret {
                digest: secret.digest(),
                expires_at: None,
            }],
        };
        self.commit(record.clone(), who, "create", String::new())
            .await?;
        Ok((record, secret))
    }

    pub async fn update(
        &self,
        id: &str,
        patch: &PatchBody,
        who: &str,
    ) -> Result<TokenRecord, RegistryError> {
        let _w = self.writer.lock().await;
        let current = self.current(id)?;
        if current.is_revoked() {
            return Err(RegistryError::Revoked(id.to_owned()));
        }
        let next = current.patched(patch)?;
        let fields: Vec<&str> = [
            ("name", patch.name.is_some()),
            ("origins", patch.origins.is_some()),
            ("environment", patch.environment.is_some()),
            ("tenant", patch.tenant.is_some()),
            ("limits", patch.limits.is_some()),
        ]
        .iter()
        .filter(|(_, set)| *set)
        .map(|(f, _)| *f)
        .collect();
        self.commit(next.clone(), who, "update", fields.join(","))
            .await?;
        Ok(next)
    }

    pub async fn rotate(
        &self,
        id: &str,
        grace: Duration,
        who: &str,
    ) -> Result<(TokenRecord, TokenSecret), RegistryError> {
        if grace > MAX_GRACE {
            return Err(RegistryError::GraceTooLong);
        }
        let _w = self.writer.lock().await;
        let mut next = self.current(id)?;
        if next.is_revoked() {
            return Err(RegistryError::Revoked(id.to_owned()));
        }
        let now = unix_now();
        let old_until = now + grace.as_secs();
        for s in &mut next.secrets {
            // Shorten, never lengthen: an earlier rotation's secret keeps its own deadline.
            s.expires_at = Some(s.expires_at.map_or(old_until, |t| t.min(old_until)));
        }
        let secret = TokenSecret::generate(next.token_type);
        next.secrets.push(StoredSecret {
            digest: secret.digest(),
            expires_at: None,
        });
        let excess = next.secrets.len().saturating_sub(KEPT_SECRETS);
        next.secrets.drain(..excess);
        next.rotated_at = Some(now);
        let detail = format!("grace={}s", grace.as_secs());
        self.commit(next.clone(), who, "rotate", detail).await?;
        Ok((next, secret))
    }

    /// Revoking twice is not an error: the second call returns the revoked token.
    pub async fn revoke(&self, id: &str, who: &str) -> Result<TokenRecord, RegistryError> {
        let _w = self.writer.lock().await;
        let mut next = self.current(id)?;
        if next.is_revoked() {
            return Ok(next);
        }
        next.revoked_at = Some(unix_now());
        self.commit(next.clone(), who, "revoke", String::new())
            .await?;
        Ok(next)
    }

    fn current(&self, id: &str) -> Result<TokenRecord, RegistryError> {
        self.get(id)
            .ok_or_else(|| RegistryError::NotFound(id.to_owned()))
    }

    /// Persist, audit, then publish to the cache: the order that makes a successful response
    /// mean "durable and visible".
    async fn commit(
        &self,
        record: TokenRecord,
        who: &str,
        action: &str,
        detail: String,
    ) -> Result<(), RegistryError> {
        let store = self.store.clone();
        let event = AuditEvent {
            at: rfc3339(unix_now()),
            who: who.to_owned(),
            action: action.to_owned(),
            token_id: record.id.clone(),
            detail,
        };
        let to_store = record.clone();
        tokio::task::spawn_blocking(move || -> Result<(), StoreError> {
            store.upsert(&to_store)?;
            store.append_audit(&event)
        })
        .await
        .map_err(|e| {
            RegistryError::Store(StoreError::Io {
                path: "store task".into(),
                source: std::io::Error::other(e.to_string()),
            })
        })??;
        self.apply(record);
        Ok(())
    }

    /// Builds the request-path view of `record` and points each of its secrets at it.
    fn apply(&self, record: TokenRecord) {
        let defaults = match record.token_type {
            TokenType::Client => self.defaults.client,
            TokenType::RemoteWrite => self.defaults.remote_write,
        };
        let limits = defaults.with(&record.limits);
        let limiter = match self.active.get(&record.id) {
            Some(prev) if prev.limiter.limits == limits => prev.limiter.clone(),
            _ => Arc::new(TokenLimiter::with_clock(
                limits,
                record.token_type == TokenType::Client,
                self.clock.clone(),
            )),
        };
        let token = Arc::new(ActiveToken {
            id: Arc::from(record.id.as_str()),
            token_type: record.token_type,
            origins: record.origins.clone(),
            tenant: record.tenant.as_deref().map(Arc::from),
            usage: self.usage.for_token(&record),
            limiter,
            revoked: record.is_revoked(),
        });
        for s in &record.secrets {
            self.cache.insert(s.digest, token.clone(), s.expires_at);
        }
        self.active.insert(record.id.clone(), token);
        self.records.insert(record.id.clone(), record);
    }

    /// The tokens as the admin API shows them, keyed by id (for tests and the CLI).
    pub fn snapshot(&self) -> HashMap<String, TokenRecord> {
        self.records
            .iter()
            .map(|e| (e.key().clone(), e.value().clone()))
            .collect()
    }
}
