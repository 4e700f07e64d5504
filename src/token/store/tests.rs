//! Unit tests of the file store: persistence across reopen, corruption, the audit trail.

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
        last_event: None,
        attestation: None,
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
        s.append_audit(&[event(i)]).unwrap();
    }
    let mut f = OpenOptions::new()
        .append(true)
        .open(dir.path().join("audit.log"))
        .unwrap();
    f.write_all(b"{\"at\":\"x\",").unwrap();
    let events = s.read_audit(3).unwrap();
    let ids: Vec<_> = events.iter().map(|e| e.token_id.as_str()).collect();
    assert_eq!(ids, ["t2", "t3", "t4"]);
    assert_eq!(s.last_audit().unwrap(), Some(event(4)));
    // The next append starts a fresh line instead of joining the torn one.
    s.append_audit(&[event(5), event(6)]).unwrap();
    let ids: Vec<_> = s.read_audit(3).unwrap().iter().map(|e| e.id).collect();
    assert_eq!(ids, [4, 5, 6]);
    assert_eq!(s.last_audit().unwrap(), Some(event(6)));
}

fn event(i: u64) -> AuditEvent {
    AuditEvent {
        id: i,
        at: "t".into(),
        who: "local".into(),
        action: "create".into(),
        token_id: format!("t{i}"),
        detail: String::new(),
        refers_to: None,
        edge: String::new(),
    }
}
