//! The lock-free in-memory token cache of the request path: secret digest -> token.
//!
//! The request path only reads (a dashmap shard read plus one `Arc` clone); the control plane
//! ([`super::registry`]) replaces entries before an admin call returns, so the next request
//! sees the change. The cache holds exactly the secrets the store's records hold: revoked
//! tokens and expired rotation secrets stay as entries, so their secrets are refused as
//! `revoked_token` rather than `unknown_token`; a secret trimmed out of its record by a
//! rotation (each record keeps a bounded number) is removed with it and refused as
//! `unknown_token`, as it would be after a restart. So the cache never outgrows the store.

use std::sync::Arc;

use dashmap::DashMap;

use crate::appcheck::Attestation;
use crate::origin::OriginList;
use crate::ratelimit::TokenLimiter;
use crate::secret::{Digest, TokenType};
use crate::token::ClientType;
use crate::usage::TokenUsage;

/// What the request path needs to know about a token, prebuilt so no lookup happens per request.
pub struct ActiveToken {
    /// `token_id` label and admin id.
    pub id: Arc<str>,
    pub token_type: TokenType,
    /// Allowed origins (client tokens).
    pub origins: OriginList,
    /// Value for the upstream tenant header.
    pub tenant: Option<Arc<str>>,
    /// This token's counters (shared across rotations and PATCHes).
    pub usage: Arc<TokenUsage>,
    /// This token's limiters (shared across PATCHes that do not change limits).
    pub limiter: Arc<TokenLimiter>,
    /// Revoked tokens are kept so their secrets are refused as `revoked_token`.
    pub revoked: bool,
    /// Disabled tokens are refused `403 token_disabled` until enabled.
    pub disabled: bool,
    /// The token's own abuse settings (resolved against `[abuse]` by the engine).
    pub abuse: crate::abuse::AbuseOverrides,
    /// For `ingest_token_info` (the full record stays in the store).
    pub name: Box<str>,
    /// For `ingest_token_info`.
    pub environment: Box<str>,
    /// For `ingest_token_info`.
    pub client_type: Option<ClientType>,
    /// App Check settings of a mobile token (`None`: off).
    pub attestation: Option<Arc<Attestation>>,
    /// Creation or last rotation, seconds since the epoch (`ingest_token_age_seconds`).
    pub age_base: u64,
    /// Digests of the record's secrets, so that a change arriving from another edge (which
    /// comes without the record it replaces) can drop the secrets it no longer has.
    pub secrets: Box<[crate::secret::Digest]>,
}

impl ActiveToken {
    /// Abuse-monitoring state; it lives in the usage counters' allocation (shared across
    /// rotations and PATCHes), so an idle token pays 16 bytes for it and no allocation.
    pub fn watch(&self) -> &crate::abuse::Watch {
        &self.usage.watch
    }
}

/// One secret's entry.
#[derive(Clone)]
struct Entry {
    token: Arc<ActiveToken>,
    /// Unix seconds after which this secret is refused (old secret of a rotation).
    expires_at: Option<u64>,
}

/// Result of a lookup.
pub enum Lookup {
    Active(Arc<ActiveToken>),
    /// Revoked token, or an old secret past its rotation grace period.
    Revoked(Arc<ActiveToken>),
    Unknown,
}

#[derive(Default)]
pub struct TokenCache {
    by_digest: DashMap<Digest, Entry, DigestHasher>,
}

/// Digests are SHA-256 outputs: already uniform, so their first eight bytes are the hash.
/// (Hash flooding needs inserts, and only the admin API inserts; a lookup of a crafted digest
/// probes the same bounded groups as any other.) SipHash over 32 bytes cost more than the rest
/// of a lookup.
#[derive(Clone, Copy, Default)]
pub struct DigestHasher;

impl std::hash::BuildHasher for DigestHasher {
    type Hasher = FirstEight;

    fn build_hasher(&self) -> FirstEight {
        FirstEight(0)
    }
}

/// Hasher of [`DigestHasher`]: keeps the first eight bytes written.
pub struct FirstEight(u64);

impl std::hash::Hasher for FirstEight {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // `Digest` hashes as its 32-byte array: a length prefix (a usize write) then the bytes.
        if bytes.len() >= 8 {
            let mut first = [0u8; 8];
            first.copy_from_slice(&bytes[..8]);
            self.0 ^= u64::from_le_bytes(first);
        }
    }

    fn write_usize(&mut self, _len: usize) {}
}

impl TokenCache {
    pub fn lookup(&self, digest: &Digest, now: u64) -> Lookup {
        match self.by_digest.get(digest) {
            None => Lookup::Unknown,
            Some(e) if e.token.revoked || e.expires_at.is_some_and(|t| now >= t) => {
                Lookup::Revoked(e.token.clone())
            }
            Some(e) => Lookup::Active(e.token.clone()),
        }
    }

    /// Points `digest` at `token`.
    pub fn insert(&self, digest: Digest, token: Arc<ActiveToken>, expires_at: Option<u64>) {
        self.by_digest.insert(digest, Entry { token, expires_at });
    }

    /// Forgets `digest` (a secret no longer in its token's record).
    pub fn remove(&self, digest: &Digest) {
        self.by_digest.remove(digest);
    }

    pub fn len(&self) -> usize {
        self.by_digest.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_digest.is_empty()
    }

    /// Every distinct token in the cache, for housekeeping.
    pub fn tokens(&self) -> Vec<Arc<ActiveToken>> {
        let mut seen = std::collections::HashSet::new();
        self.by_digest
            .iter()
            .filter(|e| seen.insert(Arc::as_ptr(&e.token) as usize))
            .map(|e| e.token.clone())
            .collect()
    }
}
