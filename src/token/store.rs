//! Persistence of tokens and of the audit trail, behind the [`TokenStore`] trait.
//!
//! The embedded [`FileStore`] keeps every token in `<data_dir>/tokens.json`, rewritten as a
//! whole on each change (temp file, fsync, rename, fsync of the directory: a crash leaves either
//! the old or the new file), and appends audit events to `<data_dir>/audit.log` (JSON lines,
//! fsynced). The registry writes a change's audit event before its record (see `registry`),
//! so the trail never misses an applied change. The shared store of several edges,
//! [`pg::PgStore`], implements the same trait with one row per token; each edge follows its
//! changes (`super::follow`) and feeds them to the cache the way the admin API does.

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
    /// The change is written and visible, but the store could not confirm it survives a crash
    /// (the file store's directory fsync failed after the rename).
    #[error("token store change written but not confirmed durable: {0}")]
    Unconfirmed(Box<StoreError>),
    /// The shared store cannot be reached (admin calls answer `503 store_unavailable`; the
    /// request path keeps serving from the cache). Never carries the URL's password.
    #[error("token store unavailable: {0}")]
    Unavailable(String),
    /// The shared store refused a statement (a bug or a schema out of step, not an outage).
    #[error("token store database error: {0}")]
    Database(String),
    /// Another edge changed the token between this change's read and its write; nothing was
    /// written (the caller retries on the new state).
    #[error("token {0:?} was changed by another edge meanwhile")]
    Conflict(String),
}

/// Action of the event that marks an audited change as never applied.
pub const NOT_APPLIED: &str = "not_applied";

/// Whether an audit action changes a token record (and so names its event in
/// `last_event`); the others (`not_applied`, `abuse.*`, `expect_spike`, `abuse_reset`, ...)
/// record what the edge noticed or did without changing a record.
pub fn changes_record(action: &str) -> bool {
    matches!(
        action,
        "create" | "update" | "rotate" | "revoke" | "disable" | "enable"
    )
}

/// One control-plane change, as kept in the audit trail. Never contains a secret.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AuditEvent {
    /// Unique and increasing: a record names the event of its last change by it, and a
    /// `not_applied` event names the change it cancels. 0 in trails written before ids.
    #[serde(default)]
    pub id: u64,
    /// RFC 3339 time of the change.
    pub at: String,
    /// Who made it: the admin key's id (`key:<first 8 hex of its SHA-256>`) or `local`.
    pub who: String,
    /// `create`, `update`, `rotate`, `revoke`, or `not_applied` (the change `refers_to` names
    /// was audited but never reached the store: its store write failed, or the edge stopped
    /// before it).
    pub action: String,
    pub token_id: String,
    /// Human summary of what changed (field names, grace period), no secrets.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub detail: String,
    /// For `not_applied`: the id of the change event that was not applied.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub refers_to: Option<u64>,
    /// The edge that wrote it (`server.name`), in a store several edges share; empty in the
    /// file store of one edge. Filled from the audit row when read, not stored in the event.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub edge: String,
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
    /// Inserts or replaces one token; durable when it returns. An error means the store is
    /// unchanged, except [`StoreError::Unconfirmed`]: written and visible, durability unknown.
    fn upsert(&self, record: &TokenRecord) -> Result<(), StoreError>;
    /// Writes `record` in place of `prev` (`None`: a new token), as an admin change does. A
    /// shared store refuses with [`StoreError::Conflict`] when the stored record is no longer
    /// `prev` (another edge changed it since it was read); one writer alone just upserts.
    fn replace(&self, prev: Option<&TokenRecord>, record: &TokenRecord) -> Result<(), StoreError> {
        let _ = prev;
        self.upsert(record)
    }
    /// Inserts or replaces several tokens; durable when it returns. The file store does it
    /// in one rewrite (the batched `last_used_at` write).
    fn upsert_many(&self, records: &[TokenRecord]) -> Result<(), StoreError> {
        records.iter().try_for_each(|r| self.upsert(r))
    }
    /// Sets `last_used_at` (unix seconds) of the named tokens where it is older, touching
    /// nothing else: on a shared store, a whole-record write here could undo another edge's
    /// change made since the read. Tokens not in the store are skipped.
    fn record_last_used(&self, changes: &[(String, u64)]) -> Result<(), StoreError> {
        let wanted: std::collections::HashMap<&str, u64> =
            changes.iter().map(|(id, t)| (id.as_str(), *t)).collect();
        let mut records = Vec::new();
        self.for_each(&mut |mut r| {
            if let Some(t) = wanted.get(r.id.as_str()) {
                if r.last_used_at.is_none_or(|old| old < *t) {
                    r.last_used_at = Some(*t);
                    records.push(r);
                }
            }
        })?;
        self.upsert_many(&records)
    }
    /// Appends `events` in one durable write; on an error none may be counted on (a torn
    /// line is skipped by readers).
    fn append_audit(&self, events: &[AuditEvent]) -> Result<(), StoreError>;
    /// The newest `limit` events, oldest first.
    fn read_audit(&self, limit: usize) -> Result<Vec<AuditEvent>, StoreError>;
    /// The newest event (start-up reconciliation and the next event id).
    fn last_audit(&self) -> Result<Option<AuditEvent>, StoreError> {
        Ok(self.read_audit(1)?.pop())
    }
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
        .map_err(|e| StoreError::Unconfirmed(Box::new(io_err(dir)(e))))
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

    fn append_audit(&self, events: &[AuditEvent]) -> Result<(), StoreError> {
        use std::os::unix::fs::FileExt;
        let mut f = OpenOptions::new()
            .create(true)
            .read(true)
            .append(true)
            .open(&self.audit_path)
            .map_err(io_err(&self.audit_path))?;
        // After a torn append (crash or full disk) the file ends mid-line: start a fresh line,
        // or the next event would be glued to the fragment and lost with it.
        let len = f.metadata().map_err(io_err(&self.audit_path))?.len();
        let mut last = [b'\n'];
        if len > 0 {
            f.read_exact_at(&mut last, len - 1)
                .map_err(io_err(&self.audit_path))?;
        }
        let mut lines = Vec::with_capacity(256 * events.len() + 1);
        if last != [b'\n'] {
            lines.push(b'\n');
        }
        for event in events {
            serde_json::to_writer(&mut lines, event).map_err(|source| StoreError::Corrupt {
                path: self.audit_path.clone(),
                source,
            })?;
            lines.push(b'\n');
        }
        f.write_all(&lines).map_err(io_err(&self.audit_path))?;
        f.sync_data().map_err(io_err(&self.audit_path))
    }

    /// Reads only the file's tail: an event is a few hundred bytes, the file grows forever.
    fn last_audit(&self) -> Result<Option<AuditEvent>, StoreError> {
        use std::os::unix::fs::FileExt;
        const TAIL: u64 = 64 << 10;
        let f = match File::open(&self.audit_path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io_err(&self.audit_path)(e)),
        };
        let len = f.metadata().map_err(io_err(&self.audit_path))?.len();
        let start = len.saturating_sub(TAIL);
        let mut tail = vec![0u8; usize::try_from(len - start).unwrap_or(0)];
        f.read_exact_at(&mut tail, start)
            .map_err(io_err(&self.audit_path))?;
        // The newest line that parses (a torn last line is skipped, as in read_audit).
        Ok(tail
            .split(|b| *b == b'\n')
            .rev()
            .find_map(|line| serde_json::from_slice::<AuditEvent>(line).ok()))
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

pub mod pg;
#[cfg(test)]
mod tests;
