//! GitHub's secret-scanning signing keys and the check of a request's signature: ECDSA over
//! P-256 with SHA-256, the signature DER-encoded then base64 in `Github-Public-Key-Signature`,
//! the key named by `Github-Public-Key-Identifier`, the keys in GitHub's own JSON format
//! (`{"public_keys": [{"key_identifier", "key" (PEM), "is_current"}]}`).
//!
//! The file is read at start and again whenever its modification time or length changes, so an
//! operator (or a cron job) refreshes GitHub's keys without a restart.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use base64::Engine as _;
use p256::ecdsa::signature::Verifier as _;
use p256::ecdsa::{Signature, VerifyingKey};
use p256::pkcs8::DecodePublicKey as _;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("not GitHub's public_keys JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("no usable P-256 public key in the file")]
    NoKey,
}

/// Why a request's signature is refused (all answered `401`; the variants are for logs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    #[error("unknown key identifier")]
    UnknownKey,
    #[error("signature is not base64 DER")]
    Malformed,
    #[error("signature does not match the body")]
    Mismatch,
}

/// Parsed keys, by identifier.
#[derive(Debug)]
pub struct KeySet {
    keys: Vec<(String, VerifyingKey)>,
}

#[derive(serde::Deserialize)]
struct KeysJson {
    public_keys: Vec<KeyJson>,
}

#[derive(serde::Deserialize)]
struct KeyJson {
    key_identifier: String,
    /// PEM `PUBLIC KEY` (SubjectPublicKeyInfo).
    key: String,
}

impl KeySet {
    /// Every key of the file; a key that is not P-256 is skipped (logged), none usable is an
    /// error. `is_current` is ignored: GitHub may still sign with a key it is retiring.
    pub fn parse(json: &[u8]) -> Result<KeySet, KeyError> {
        let parsed: KeysJson = serde_json::from_slice(json)?;
        let mut keys = Vec::with_capacity(parsed.public_keys.len());
        for k in parsed.public_keys {
            match VerifyingKey::from_public_key_pem(k.key.trim()) {
                Ok(key) => keys.push((k.key_identifier, key)),
                Err(e) => tracing::warn!(
                    key_identifier = %k.key_identifier,
                    error = %e,
                    "secret scanning: skipping a key that is not a P-256 public key"
                ),
            }
        }
        if keys.is_empty() {
            return Err(KeyError::NoKey);
        }
        Ok(KeySet { keys })
    }

    /// Checks `signature` (base64 of DER) over `body` with the key `key_id`.
    pub fn verify(&self, key_id: &str, signature: &str, body: &[u8]) -> Result<(), VerifyError> {
        let key = self
            .keys
            .iter()
            .find(|(id, _)| id == key_id)
            .map(|(_, k)| k)
            .ok_or(VerifyError::UnknownKey)?;
        let der = base64::engine::general_purpose::STANDARD
            .decode(signature.trim())
            .map_err(|_| VerifyError::Malformed)?;
        let signature = Signature::from_der(&der).map_err(|_| VerifyError::Malformed)?;
        key.verify(body, &signature)
            .map_err(|_| VerifyError::Mismatch)
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// The keys file and the keys last read from it.
pub struct KeyFile {
    path: PathBuf,
    loaded: Mutex<Loaded>,
}

struct Loaded {
    /// Modification time and length of the file when it was read.
    stamp: Option<(SystemTime, u64)>,
    keys: Arc<KeySet>,
}

impl KeyFile {
    /// Reads the file now: a missing or bad file stops the start, not the first report.
    pub fn open(path: &Path) -> Result<KeyFile, KeyError> {
        let stamp = stamp(path);
        let keys = Arc::new(read(path)?);
        Ok(KeyFile {
            path: path.to_owned(),
            loaded: Mutex::new(Loaded { stamp, keys }),
        })
    }

    /// The current keys, re-read first if the file changed. A changed file that cannot be
    /// read or parsed keeps the previous keys (logged), so a half-written refresh does not
    /// turn the endpoint off.
    pub async fn keys(&self) -> Arc<KeySet> {
        let path = self.path.clone();
        let now = tokio::task::spawn_blocking(move || stamp(&path))
            .await
            .ok()
            .flatten();
        let (changed, current) = {
            let loaded = self.lock();
            (now.is_some() && now != loaded.stamp, loaded.keys.clone())
        };
        if !changed {
            return current;
        }
        let path = self.path.clone();
        match tokio::task::spawn_blocking(move || read(&path)).await {
            Ok(Ok(keys)) => {
                let keys = Arc::new(keys);
                tracing::info!(keys = keys.len(), path = %self.path.display(), "secret scanning: keys re-read");
                let mut loaded = self.lock();
                loaded.stamp = now;
                loaded.keys = keys.clone();
                keys
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "secret scanning: keeping the previous keys");
                current
            }
            Err(e) => {
                tracing::warn!(error = %e, "secret scanning: keeping the previous keys");
                current
            }
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Loaded> {
        self.loaded
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn stamp(path: &Path) -> Option<(SystemTime, u64)> {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

fn read(path: &Path) -> Result<KeySet, KeyError> {
    let bytes = std::fs::read(path).map_err(|source| KeyError::Read {
        path: path.to_owned(),
        source,
    })?;
    KeySet::parse(&bytes)
}
