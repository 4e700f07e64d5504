//! The control plane's invariants over random change sequences (a seeded `rand` loop, no new
//! dependency; the seed is in every failure message): after every step the secrets the cache
//! accepts are exactly the ones the store says are valid, the cache holds nothing the store
//! does not, a failed change is applied nowhere, the audit trail has an event for every
//! applied change, and a restart from the same store sees the same.

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicU8, Ordering};
use std::sync::Mutex;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::*;
use crate::secret::Digest;
use crate::token::cache::Lookup;
use crate::token::store::{FileStore, NOT_APPLIED};
use crate::token::CreateBody;

/// An in-memory store whose next write can be made to fail, or to "crash" (the audit write
/// lands, then nothing else does until [`MemStore::restart`]).
#[derive(Default)]
struct MemStore {
    records: Mutex<Vec<TokenRecord>>,
    audit: Mutex<Vec<AuditEvent>>,
    /// What the next change meets, one of the `FAIL_*`/`CRASH`/`UNCONFIRMED` values.
    next: AtomicU8,
    /// Set by a crash: every write fails until restart.
    dead: AtomicBool,
}

const OK: u8 = 0;
const FAIL_AUDIT: u8 = 1;
const FAIL_STORE: u8 = 2;
const CRASH: u8 = 3;
const UNCONFIRMED: u8 = 4;

fn io() -> StoreError {
    StoreError::Io {
        path: "mem".into(),
        source: std::io::Error::other("injected"),
    }
}

impl MemStore {
    fn restart(&self) {
        self.dead.store(false, Ordering::SeqCst);
        self.next.store(OK, Ordering::SeqCst);
    }
}

impl TokenStore for MemStore {
    fn for_each(&self, f: &mut dyn FnMut(TokenRecord)) -> Result<(), StoreError> {
        let all = self.records.lock().unwrap().clone();
        all.into_iter().for_each(f);
        Ok(())
    }

    fn upsert(&self, record: &TokenRecord) -> Result<(), StoreError> {
        let mode = self.next.swap(OK, Ordering::SeqCst);
        if self.dead.load(Ordering::SeqCst) || mode == FAIL_STORE {
            return Err(io());
        }
        let mut all = self.records.lock().unwrap();
        match all.iter_mut().find(|r| r.id == record.id) {
            Some(r) => *r = record.clone(),
            None => all.push(record.clone()),
        }
        if mode == UNCONFIRMED {
            return Err(StoreError::Unconfirmed(Box::new(io())));
        }
        Ok(())
    }

    fn append_audit(&self, events: &[AuditEvent]) -> Result<(), StoreError> {
        let mode = self.next.load(Ordering::SeqCst);
        if self.dead.load(Ordering::SeqCst) || mode == FAIL_AUDIT {
            self.next.store(OK, Ordering::SeqCst);
            return Err(io());
        }
        if mode == CRASH {
            self.dead.store(true, Ordering::SeqCst);
        }
        self.audit.lock().unwrap().extend_from_slice(events);
        Ok(())
    }

    fn read_audit(&self, limit: usize) -> Result<Vec<AuditEvent>, StoreError> {
        let all = self.audit.lock().unwrap();
        Ok(all[all.len().saturating_sub(limit)..].to_vec())
    }
}

fn open(store: Arc<dyn TokenStore>) -> Registry {
    Registry::open(store, crate::config::Config::default().limits).unwrap()
}

fn new_token(rng: &mut StdRng) -> NewToken {
    let client = rng.gen_bool(0.5);
    NewToken::parse(CreateBody {
        name: "t".into(),
        token_type: if client {
            TokenType::Client
        } else {
            TokenType::RemoteWrite
        },
        client_type: None,
        origins: client.then(|| vec!["https://a.example".into()]),
        environment: None,
        tenant: None,
        limits: None,
        attestation: None,
        abuse: None,
    })
    .unwrap()
}

/// What a lookup says, comparable across registries.
fn class(reg: &Registry, d: &Digest, now: u64) -> String {
    match reg.cache().lookup(d, now) {
        Lookup::Active(t) => format!("active {}", t.id),
        Lookup::Revoked(t) => format!("revoked {}", t.id),
        Lookup::Unknown => "unknown".into(),
    }
}

/// The invariant: accepted by the cache == valid in the store, and the cache holds exactly
/// the store's secrets (so it cannot grow past the store).
fn check(reg: &Registry, store: &dyn TokenStore, issued: &[Digest], now: u64, ctx: &str) {
    let records = store.load().unwrap();
    let valid: BTreeSet<String> = records
        .iter()
        .filter(|r| !r.is_revoked())
        .flat_map(|r| &r.secrets)
        .filter(|s| s.expires_at.is_none_or(|t| t > now))
        .map(|s| s.digest.to_hex())
        .collect();
    let accepted: BTreeSet<String> = issued
        .iter()
        .filter(|d| matches!(reg.cache().lookup(d, now), Lookup::Active(_)))
        .map(Digest::to_hex)
        .collect();
    assert_eq!(accepted, valid, "{ctx}");
    let stored: usize = records.iter().map(|r| r.secrets.len()).sum();
    assert_eq!(reg.cache().len(), stored, "{ctx}: cache and store differ");
}

/// Every stored token has its create event, every applied change its event.
fn check_trail(store: &dyn TokenStore, ctx: &str) {
    let events = store.read_audit(usize::MAX).unwrap();
    let ids: BTreeSet<u64> = events.iter().map(|e| e.id).collect();
    assert_eq!(ids.len(), events.len(), "{ctx}: duplicate event ids");
    for r in store.load().unwrap() {
        assert!(
            events
                .iter()
                .any(|e| e.token_id == r.id && e.action == "create"),
            "{ctx}: {} has no create event",
            r.id
        );
        assert!(
            r.last_event.is_some_and(|id| ids.contains(&id)),
            "{ctx}: {}'s last change has no event",
            r.id
        );
    }
}

/// One random sequence of create / rotate (grace 0, 1 s, 1 h, 30 d) / patch / revoke, with
/// injected audit and store failures; checks after each step. Returns every issued digest.
async fn run(
    seed: u64,
    steps: usize,
    store: Arc<dyn TokenStore>,
    mem: Option<&MemStore>,
) -> Vec<Digest> {
    let mut rng = StdRng::seed_from_u64(seed);
    let reg = open(store.clone());
    let mut issued: Vec<Digest> = Vec::new();
    let mut ids: Vec<String> = Vec::new();
    for step in 0..steps {
        let ctx = format!("seed {seed} step {step}");
        let fault = match mem {
            Some(m) if rng.gen_ratio(1, 6) => {
                let f = [FAIL_AUDIT, FAIL_STORE, UNCONFIRMED][rng.gen_range(0..3)];
                m.next.store(f, Ordering::SeqCst);
                f
            }
            _ => OK,
        };
        let before = store.load().unwrap();
        let pick = |rng: &mut StdRng| ids[rng.gen_range(0..ids.len())].clone();
        let op = if ids.is_empty() {
            0
        } else {
            rng.gen_range(0..10)
        };
        let result: Result<Option<TokenSecret>, RegistryError> = match op {
            0 | 1 => reg.create(new_token(&mut rng), "t").await.map(|(r, s)| {
                ids.push(r.id);
                Some(s)
            }),
            2..=6 => {
                let grace = [0, 1, 3600, MAX_GRACE.as_secs()][rng.gen_range(0..4)];
                let id = pick(&mut rng);
                reg.rotate(&id, Duration::from_secs(grace), "t")
                    .await
                    .map(|(_, s)| Some(s))
            }
            7 | 8 => {
                let patch = PatchBody {
                    name: Some(format!("n{step}")),
                    limits: rng.gen_bool(0.5).then(Default::default),
                    ..PatchBody::default()
                };
                reg.update(&pick(&mut rng), &patch, "t").await.map(|_| None)
            }
            _ => reg.revoke(&pick(&mut rng), "t").await.map(|_| None),
        };
        // Creates learn their id only on success: a failed create's secret was never shown.
        if let Ok(Some(s)) = &result {
            issued.push(s.digest());
        }
        match (&result, fault) {
            (Err(RegistryError::NotApplied(_)), FAIL_AUDIT | FAIL_STORE) => {
                assert_eq!(
                    store.load().unwrap(),
                    before,
                    "{ctx}: failed change applied"
                );
            }
            (Ok(_) | Err(RegistryError::Revoked(_)), _) => {}
            (other, _) => panic!("{ctx}: fault {fault}: {:?}", other.as_ref().err()),
        }
        if let Some(m) = mem {
            m.next.store(OK, Ordering::SeqCst);
        }
        // Probe every digest the store ever held too, not only those handed out.
        for r in store.load().unwrap() {
            for s in r.secrets {
                if !issued.contains(&s.digest) {
                    issued.push(s.digest);
                }
            }
        }
        check(&reg, &*store, &issued, unix_now(), &ctx);
        check_trail(&*store, &ctx);
    }
    // The restart case: the same store, a fresh registry, the same answers.
    let now = unix_now();
    let again = open(store.clone());
    check(
        &again,
        &*store,
        &issued,
        now,
        &format!("seed {seed} after restart"),
    );
    for d in &issued {
        assert_eq!(class(&reg, d, now), class(&again, d, now), "seed {seed}");
    }
    issued
}

#[tokio::test]
async fn cache_accepts_exactly_what_the_store_says_is_valid() {
    for seed in 0..150 {
        let mem = Arc::new(MemStore::default());
        run(seed, 40, mem.clone(), Some(&mem)).await;
    }
}

#[tokio::test]
async fn the_same_holds_over_the_file_store_and_its_restart() {
    for seed in 1000..1003 {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(FileStore::open(dir.path()).unwrap());
        let issued = run(seed, 25, store, None).await;
        assert!(!issued.is_empty());
    }
}

#[tokio::test]
async fn a_crash_between_audit_and_store_is_marked_at_start_up() {
    let mem = Arc::new(MemStore::default());
    let mut reg = open(mem.clone());
    let mut rng = StdRng::seed_from_u64(7);
    let (kept, secret) = reg.create(new_token(&mut rng), "t").await.unwrap();
    for (crashing, what) in [(true, "revoke"), (false, "create")] {
        mem.next.store(CRASH, Ordering::SeqCst);
        let r = if crashing {
            reg.revoke(&kept.id, "t").await.map(|_| ())
        } else {
            reg.create(new_token(&mut rng), "t").await.map(|_| ())
        };
        assert!(matches!(r, Err(RegistryError::NotApplied(_))), "{what}");
        // The edge dies here (its not_applied mark could not be written either).
        mem.restart();
        let again = open(mem.clone());
        let events = mem.read_audit(usize::MAX).unwrap();
        let [.., change, mark] = &events[..] else {
            panic!("{events:?}")
        };
        assert_eq!(change.action, what);
        assert_eq!(
            (mark.action.as_str(), mark.refers_to),
            (NOT_APPLIED, Some(change.id))
        );
        assert!(matches!(
            again.cache().lookup(&secret.digest(), unix_now()),
            Lookup::Active(_)
        ));
        check_trail(&*mem, what);
        // Reconciled once: another start adds nothing.
        open(mem.clone());
        assert_eq!(mem.read_audit(usize::MAX).unwrap().len(), events.len());
        reg = again;
    }
    assert_eq!(mem.load().unwrap().len(), 1);
}
