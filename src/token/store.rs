//! Persistence of tokens and of the audit trail, behind the [`TokenStore`] trait.
//!
//! The embedded [`FileStore`] keeps every token in `<data_dir>/tokens.json`, rewritten as a
//! whole on each change (temp file, fsync, rename, fsync of the directory: a crash leaves either
//! the old or the new file), and appends audit events to `<data_dir>/audit.log` (JSON lines,
//! fsynced). A shared database store for several edge nodes would implement the same trait with
//! one row per token (`upsert` becomes an `INSERT ... ON CONFLICT UPDATE`), and each node would
//! poll or subscribe for changes and feed them to the cache the same way the admin API does.

use std::fs::{File, OpenOptions};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::TokenRecord;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("token store I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("token store file {path} is corrupt: {source}")]
    Corrupt {
        path: PathBuf,
        source: serde_json::Error,
    },
}

/// One control-plane change, as kept in the audit trail. Never contains a secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// RFC 3339 time of the change.
    pub at: String,
    /// Who made it: the admin key's id (`key:<first 8 hex of its SHA-256>`) or `local`.
    pub who: String,
    /// `create`, `update`, `rotate` or `revoke`.
    pub action: String,
    pub token_id: String,
    /// Human summary of what changed (field names, grace period), no secrets.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
}

/// Where tokens live. Calls are blocking and short; the admin API serializes writers.
pub trait TokenStore: Send + Sync + 'static {
    /// Hands every token to `f`, one at a time, revoked ones included (their secrets must keep
    /// failing as `revoked_token`). One at a time so that loading a million tokens never holds
    /// them all as records: the edge keeps only their request-path view.
    fn for_each(&self, f: &mut dyn FnMut(TokenRecord)) -> Result<(), StoreError>;
    /// Every token (admin list).
    fn load(&self) -> Result<Vec<TokenRecord>, StoreError> {
        let mut all = Vec::new();
        self.for_each(&mut |r| all.push(r))?;
        Ok(all)
    }
    /// One token (admin show, and the read of a read-modify-write change).
    fn get(&self, id: &str) -> Result<Option<TokenRecord>, StoreError> {
        let mut found = None;
        self.for_each(&mut |r| {
            if r.id == id {
                found = Some(r);
            }
        })?;
        Ok(found)
    }
    /// Inserts or replaces one token; durable when it returns.
    fn upsert(&self, record: &TokenRecord) -> Result<(), StoreError>;
    /// Inserts or replaces several tokens; durable when it returns. The file store does it
    /// in one rewrite (the batched `last_used_at` write).
    fn upsert_many(&self, records: &[TokenRecord]) -> Result<(), StoreError> {
        records.iter().try_for_each(|r| self.upsert(r))
    }
    fn append_audit(&self, event: &AuditEvent) -> Result<(), StoreError>;
    /// The newest `limit` events, oldest first.
    fn read_audit(&self, limit: usize) -> Result<Vec<AuditEvent>, StoreError>;
}

/// The embedded store: files in the data directory.
pub struct FileStore {
    tokens_path: PathBuf,
    audit_path: PathBuf,
    /// One upsert at a time (each rewrites the whole file). Records are not kept in memory:
    /// every call streams the file, so a million tokens never sit in memory as records.
    write: std::sync::Mutex<()>,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_owned(),
        source,
    }
}

impl FileStore {
    pub fn open(data_dir: &Path) -> Result<FileStore, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(io_err(data_dir))?;
        Ok(FileStore {
            tokens_path: data_dir.join("tokens.json"),
            audit_path: data_dir.join("audit.log"),
            write: std::sync::Mutex::new(()),
        })
    }

    /// Parses the file's `tokens` array one record at a time (a missing file is empty).
    fn read_each(&self, f: &mut dyn FnMut(TokenRecord)) -> Result<(), StoreError> {
        let bytes = match std::fs::read(&self.tokens_path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
            Err(e) => return Err(io_err(&self.tokens_path)(e)),
        };
        let mut de = serde_json::Deserializer::from_slice(&bytes);
        serde::de::DeserializeSeed::deserialize(EachRecord(f), &mut de)
            .and_then(|()| de.end())
            .map_err(|source| StoreError::Corrupt {
                path: self.tokens_path.clone(),
                source,
            })
    }

    /// The file with `record` in place of the token with its id (or appended), written
    /// while the old file is streamed: one record in memory at a time. The layout is one
    /// record per line, which keeps the file greppable and a diff small.
    fn rewrite_with(&self, record: &TokenRecord) -> Result<(), StoreError> {
        let corrupt = |source| StoreError::Corrupt {
            path: self.tokens_path.clone(),
            source,
        };
        let hint = std::fs::metadata(&self.tokens_path).map_or(0, |m| m.len() as usize);
        let mut out = Vec::with_capacity(hint + 1024);
        out.extend_from_slice(b"{\"version\": 1, \"tokens\": [");
        let mut count = 0usize;
        let mut replaced = false;
        let mut failed = None;
        let mut put = |r: &TokenRecord, out: &mut Vec<u8>| {
            out.extend_from_slice(if count == 0 { b"\n" } else { b",\n" });
            count += 1;
            if let Err(e) = serde_json::to_writer(&mut *out, r) {
                failed.get_or_insert(e);
            }
        };
        self.read_each(&mut |r| {
            if r.id == record.id {
                replaced = true;
                put(record, &mut out);
            } else {
                put(&r, &mut out);
            }
        })?;
        if !replaced {
            put(record, &mut out);
        }
        if let Some(e) = failed {
            return Err(corrupt(e));
        }
        out.extend_from_slice(b"\n]}\n");
        write_atomically(&self.tokens_path, &out)
    }
}

/// Reads `{"version": .., "tokens": [record, ..]}`, handing each record on as it is parsed.
struct EachRecord<'f>(&'f mut dyn FnMut(TokenRecord));

impl<'de> serde::de::DeserializeSeed<'de> for EachRecord<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, de: D) -> Result<(), D::Error> {
        de.deserialize_map(self)
    }
}

impl<'de> serde::de::Visitor<'de> for EachRecord<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a token file object with a \"tokens\" array")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = false;
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            if key == "tokens" {
                map.next_value_seed(EachInArray(&mut *self.0))?;
                seen = true;
            } else {
                map.next_value::<serde::de::IgnoredAny>()?;
            }
        }
        if seen {
            Ok(())
        } else {
            Err(serde::de::Error::missing_field("tokens"))
        }
    }
}

struct EachInArray<'f>(&'f mut dyn FnMut(TokenRecord));

impl<'de> serde::de::DeserializeSeed<'de> for EachInArray<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, de: D) -> Result<(), D::Error> {
        de.deserialize_seq(self)
    }
}

impl<'de> serde::de::Visitor<'de> for EachInArray<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("an array of tokens")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some(record) = seq.next_element::<TokenRecord>()? {
            (self.0)(record);
        }
        Ok(())
    }
}

/// Temp file in the same directory, fsync, rename over the target, fsync the directory.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let tmp = path.with_extension("tmp");
    let mut f = File::create(&tmp).map_err(io_err(&tmp))?;
    f.write_all(bytes).map_err(io_err(&tmp))?;
    f.sync_all().map_err(io_err(&tmp))?;
    drop(f);
    std::fs::rename(&tmp, path).map_err(io_err(path))?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_err(dir))?;
    Ok(())
}

impl TokenStore for FileStore {
    fn for_each(&self, f: &mut dyn FnMut(TokenRecord)) -> Result<(), StoreError> {
        self.read_each(f)
    }

    /// Streams the file, replacing or appending the record, and writes it back atomically.
    fn upsert(&self, record: &TokenRecord) -> Result<(), StoreError> {
        // A panic while holding the lock leaves the file as it was (the write is atomic).
        let _one_writer = self.write.lock().unwrap_or_else(|p| p.into_inner());
        self.rewrite_with(record)
    }

    /// One rewrite for all `records` (they must already exist; others are left out).
    fn upsert_many(&self, records: &[TokenRecord]) -> Result<(), StoreError> {
        if records.is_empty() {
            return Ok(());
        }
        let _one_writer = self.write.lock().unwrap_or_else(|p| p.into_inner());
        let by_id: std::collections::HashMap<&str, &TokenRecord> =
            records.iter().map(|r| (r.id.as_str(), r)).collect();
        let mut out = Vec::new();
        out.extend_from_slice(b"{\"version\": 1, \"tokens\": [");
        let mut failed = None;
        let mut first = true;
        self.read_each(&mut |r| {
            out.extend_from_slice(if first { b"\n" } else { b",\n" });
            first = false;
            let r = by_id.get(r.id.as_str()).map_or(&r, |n| *n);
            if let Err(e) = serde_json::to_writer(&mut out, r) {
                failed.get_or_insert(e);
            }
        })?;
        if let Some(source) = failed {
            return Err(StoreError::Corrupt {
                path: self.tokens_path.clone(),
                source,
            });
        }
        out.extend_from_slice(b"\n]}\n");
        write_atomically(&self.tokens_path, &out)
    }

    fn append_audit(&self, event: &AuditEvent) -> Result<(), StoreError> {
        let mut line = serde_json::to_vec(event).map_err(|source| StoreError::Corrupt {
            path: self.audit_path.clone(),
            source,
        })?;
        line.push(b'\n');
        let mut f = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.audit_path)
            .map_err(io_err(&self.audit_path))?;
        f.write_all(&line).map_err(io_err(&self.audit_path))?;
        f.sync_data().map_err(io_err(&self.audit_path))
    }

    fn read_audit(&self, limit: usize) -> Result<Vec<AuditEvent>, StoreError> {
        let f = match File::open(&self.audit_path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(io_err(&self.audit_path)(e)),
        };
        let mut events = std::collections::VecDeque::with_capacity(limit.min(1024));
        for line in BufReader::new(f).lines() {
            let line = line.map_err(io_err(&self.audit_path))?;
            // A torn last line (crash mid-append) is skipped rather than failing the whole read.
            if let Ok(e) = serde_json::from_str::<AuditEvent>(&line) {
                if events.len() == limit {
                    events.pop_front();
                }
                events.push_back(e);
            }
        }
        Ok(events.into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secret::{TokenSecret, TokenType};
    use crate::token::StoredSecret;

    fn record(id: &str) -> TokenRecord {
        TokenRecord {
            id: id.into(),
            name: "n".into(),
            token_type: TokenType::RemoteWrite,
            client_type: None,
            origins: Default::default(),
            environment: String::new(),
            tenant: None,
            limits: Default::default(),
            disabled_at: None,
            abuse: Default::default(),
            last_used_at: None,
            created_at: 1,
            rotated_at: None,
            revoked_at: None,
            secrets: vec![StoredSecret {
                digest: TokenSecret::generate(TokenType::RemoteWrite).digest(),
                expires_at: None,
            }],
        }
    }

    #[test]
    fn upsert_survives_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let s = FileStore::open(dir.path()).unwrap();
        s.upsert(&record("a")).unwrap();
        let mut b = record("b");
        s.upsert(&b).unwrap();
        b.revoked_at = Some(5);
        s.upsert(&b).unwrap();
        let again = FileStore::open(dir.path()).unwrap().load().unwrap();
        assert_eq!(again.len(), 2);
        assert_eq!(again[1].revoked_at, Some(5));
        assert_eq!(again[0], s.load().unwrap()[0]);
    }

    #[test]
    fn corrupt_file_is_an_error_not_an_empty_store() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tokens.json");
        std::fs::write(&path, b"{\"tokens\": [").unwrap();
        let s = FileStore::open(dir.path()).unwrap();
        assert!(matches!(s.load(), Err(StoreError::Corrupt { .. })));
        // Nor is it overwritten by the next change: what is in it may still be recoverable.
        assert!(matches!(
            s.upsert(&record("tk_1")),
            Err(StoreError::Corrupt { .. })
        ));
        assert_eq!(std::fs::read(&path).unwrap(), b"{\"tokens\": [");
    }

    #[test]
    fn audit_keeps_the_newest_and_skips_a_torn_line() {
        let dir = tempfile::tempdir().unwrap();
        let s = FileStore::open(dir.path()).unwrap();
        for i in 0..5 {
            s.append_audit(&AuditEvent {
                at: "t".into(),
                who: "local".into(),
                action: "create".into(),
                token_id: format!("t{i}"),
                detail: String::new(),
            })
            .unwrap();
        }
        let mut f = OpenOptions::new()
            .append(true)
            .open(dir.path().join("audit.log"))
            .unwrap();
        f.write_all(b"{\"at\":\"x\",").unwrap();
        let events = s.read_audit(3).unwrap();
        let ids: Vec<_> = events.iter().map(|e| e.token_id.as_str()).collect();
        assert_eq!(ids, ["t2", "t3", "t4"]);
    }
}
