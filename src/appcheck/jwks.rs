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
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime};

use jsonwebtoken::jwk::{AlgorithmParameters, JwkSet, KeyAlgorithm};
use jsonwebtoken::{DecodingKey, Validation};

/// How often the background task looks at the file's modification time.
pub const REFRESH_EVERY: Duration = Duration::from_secs(2);

/// Largest JWKS file read (Firebase's holds a handful of keys, about 2 KiB).
const MAX_FILE_BYTES: u64 = 1 << 20;

/// Parsed keys by `kid`.
pub type KeySet = HashMap<String, DecodingKey>;

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

    /// Re-reads the file if its modification time, length or inode changed. Returns whether new keys
    /// were installed. Blocking file I/O: call it off the request path.
    pub fn refresh(&self) -> bool {
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
