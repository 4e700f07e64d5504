//! The App Check public keys: the JWKS file parsed into `DecodingKey`s by `kid`, re-read when
//! the file changes.
//!
//! [`KeyStore::refresh`] is called by a background task every [`REFRESH_EVERY`]; it compares
//! the file's modification time and length with the loaded ones and only then reads and parses
//! it. A file that does not parse (half written by a careless refresh job) keeps the previous
//! keys: App Check keys rotate slowly, so old keys are better than none. The request path takes
//! a read lock and clones an `Arc`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed, Ordering::SeqCst};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use dashmap::DashMap;
use sha2::{Digest as _, Sha256};

use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet, KeyAlgorithm};
use jsonwebtoken::{DecodingKey, Validation};

/// How often the background task looks at the file's modification time.
pub const REFRESH_EVERY: Duration = Duration::from_secs(2);

/// Largest JWKS file read (Firebase's holds a handful of keys, about 2 KiB).
const MAX_FILE_BYTES: u64 = 1 << 20;

/// Parsed keys by `kid`.
pub type KeySet = HashMap<String, DecodingKey>;

/// Most App Check tokens remembered as verified. Only tokens with a valid signature get in,
/// so the set is bounded by genuine app installs, not by what an attacker sends; when it is
/// full it is emptied (the next request of each install pays one verification again).
const MAX_VERIFIED: usize = 65_536;

/// SHA-256 of an App Check token: the key it is remembered under.
pub fn digest(token: &[u8]) -> [u8; 32] {
    Sha256::digest(token).into()
}

/// The keys of `mobile.app_check_jwks_file`, kept fresh.
pub struct KeyStore {
    /// The configured file; `None`: no keys, every check fails (as `UnknownKey`).
    path: Option<PathBuf>,
    /// The current keys; replaced whole on reload.
    keys: RwLock<Arc<KeySet>>,
    /// Modification time, length and inode of the file the keys came from (the inode catches
    /// a same-length file renamed into place within the file system's timestamp resolution).
    loaded_from: Mutex<Option<(SystemTime, u64, u64)>>,
    /// Built once: RS256 only, 60 s leeway (see `super::validation`).
    validation: Validation,
    /// Tokens whose signature checked, by digest, with their claims; emptied when the keys
    /// change (a removed key must stop working), expired ones dropped on each refresh tick.
    verified: DashMap<[u8; 32], (u64, Arc<super::Claims>)>,
    /// Bumped after each key change; an entry verified under an older generation is ignored
    /// (a request that checked a signature with the old keys while they were replaced).
    generation: AtomicU64,
    /// Entries in `verified`, kept by hand: `DashMap::len` locks every shard.
    verified_len: AtomicUsize,
}

/// Why a JWKS file was not loaded (logged; the previous keys stay).
#[derive(Debug, thiserror::Error)]
pub enum JwksError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path} is over 1 MiB")]
    TooLarge { path: PathBuf },
    #[error("{path} is not a JWKS: {source}")]
    Parse {
        path: PathBuf,
        source: serde_json::Error,
    },
    #[error("{path} holds no usable RS256 key")]
    NoKeys { path: PathBuf },
}

impl KeyStore {
    /// A store for `path`, loaded once now (a failure is logged; the task retries).
    pub fn new(path: Option<PathBuf>) -> KeyStore {
        let store = KeyStore {
            path,
            keys: RwLock::new(Arc::new(KeySet::new())),
            loaded_from: Mutex::new(None),
            validation: super::validation(),
            verified: DashMap::new(),
            generation: AtomicU64::new(0),
            verified_len: AtomicUsize::new(0),
        };
        store.refresh();
        store
    }

    /// The keys in use now.
    pub fn current(&self) -> Arc<KeySet> {
        match self.keys.read() {
            Ok(keys) => keys.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub(super) fn validation(&self) -> &Validation {
        &self.validation
    }

    /// The current key generation; read it before [`KeyStore::current`] and pass it to
    /// [`KeyStore::remember`].
    pub(super) fn generation(&self) -> u64 {
        self.generation.load(SeqCst)
    }

    /// The claims of a token verified before with the current keys.
    pub(super) fn verified(&self, digest: &[u8; 32]) -> Option<Arc<super::Claims>> {
        let current = self.generation();
        self.verified
            .get(digest)
            .filter(|e| e.0 == current)
            .map(|e| e.1.clone())
    }

    /// Remembers a token whose signature checked with the keys of `generation`.
    pub(super) fn remember(&self, digest: [u8; 32], generation: u64, claims: Arc<super::Claims>) {
        if self.verified_len.load(Relaxed) >= MAX_VERIFIED {
            self.forget_all();
        }
        if self.verified.insert(digest, (generation, claims)).is_none() {
            self.verified_len.fetch_add(1, Relaxed);
        }
    }

    /// Forgets every remembered token (key changes; tests measure the uncached cost with it).
    pub fn forget_all(&self) {
        self.verified.clear();
        self.verified_len.store(0, Relaxed);
    }

    /// Drops remembered tokens past their `exp` (and the leeway), so the map holds only
    /// tokens still in use.
    fn forget_expired(&self, now: u64) {
        self.verified
            .retain(|_, (_, c)| c.exp.saturating_add(super::LEEWAY_SECS) >= now);
        self.verified_len.store(self.verified.len(), Relaxed);
    }

    /// How many tokens are remembered (tests).
    pub fn remembered(&self) -> usize {
        self.verified_len.load(Relaxed)
    }

    /// Re-reads the file if its modification time, length or inode changed. Returns whether new keys
    /// were installed. Blocking file I/O: call it off the request path.
    pub fn refresh(&self) -> bool {
        self.forget_expired(crate::time::unix_now());
        let Some(path) = &self.path else {
            return false;
        };
        let stamp = match std::fs::metadata(path) {
            Ok(m) => (
                m.modified().unwrap_or(SystemTime::UNIX_EPOCH),
                m.len(),
                std::os::unix::fs::MetadataExt::ino(&m),
            ),
            Err(source) => {
                tracing::warn!(error = %JwksError::Read { path: path.clone(), source }, "app check keys");
                return false;
            }
        };
        let mut loaded = match self.loaded_from.lock() {
            Ok(l) => l,
            Err(poisoned) => poisoned.into_inner(),
        };
        if *loaded == Some(stamp) {
            return false;
        }
        // Remember the stamp even on failure: a broken file is reported once, not every tick.
        *loaded = Some(stamp);
        match load(path) {
            Ok(keys) => {
                tracing::info!(path = %path.display(), keys = keys.len(), "app check keys loaded");
                let keys = Arc::new(keys);
                match self.keys.write() {
                    Ok(mut k) => *k = keys,
                    Err(poisoned) => *poisoned.into_inner() = keys,
                }
                // Verified with keys that may be gone: verify again (the bump after the swap
                // also voids what a request verifying right now remembers).
                self.generation.fetch_add(1, SeqCst);
                self.forget_all();
                true
            }
            Err(e) => {
                tracing::warn!(error = %e, "app check keys not reloaded; keeping the previous ones");
                false
            }
        }
    }
}

/// Reads and parses a JWKS file: every RSA key with a `kid` whose `alg`, if given, is RS256.
pub fn load(path: &Path) -> Result<KeySet, JwksError> {
    let read_err = |source| JwksError::Read {
        path: path.to_owned(),
        source,
    };
    let len = std::fs::metadata(path).map_err(read_err)?.len();
    if len > MAX_FILE_BYTES {
        return Err(JwksError::TooLarge {
            path: path.to_owned(),
        });
    }
    let text = std::fs::read(path).map_err(read_err)?;
    let set: JwkSet = serde_json::from_slice(&text).map_err(|source| JwksError::Parse {
        path: path.to_owned(),
        source,
    })?;
    let mut keys = KeySet::new();
    for jwk in &set.keys {
        let rs256 = jwk
            .common
            .key_algorithm
            .is_none_or(|a| a == KeyAlgorithm::RS256);
        let (Some(kid), true, AlgorithmParameters::RSA(_)) =
            (&jwk.common.key_id, rs256, &jwk.algorithm)
        else {
            continue;
        };
        if let Ok(key) = DecodingKey::from_jwk(jwk) {
            keys.insert(kid.clone(), key);
        }
    }
    if keys.is_empty() {
        return Err(JwksError::NoKeys {
            path: path.to_owned(),
        });
    }
    Ok(keys)
}
