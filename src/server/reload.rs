//! Picks the certificate files up again: within [`POLL`] of a change on disk, and at once on
//! `SIGHUP`.
//!
//! A change is seen by comparing (device, inode, length, mtime) of each path with symlinks
//! followed, which catches the three ways certificates are replaced: rewritten in place (new
//! mtime/length), renamed over (new inode: certbot's `live/` symlinks moving to a new
//! `archive/` file do this too) and a symlink swap (Kubernetes' `..data` directory: new
//! target, new inode). Polling needs no inotify dependency and costs two `stat` calls every
//! few seconds.

use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;

use super::tls::CertStore;

/// How often the files are looked at; SPEC §15 promises a pick-up within 10 s.
pub const POLL: Duration = Duration::from_secs(2);

/// What identifies one version of a file without reading it.
type Fingerprint = Option<(u64, u64, u64, i64, i64)>;

fn fingerprint(path: &Path) -> Fingerprint {
    let m = std::fs::metadata(path).ok()?;
    Some((m.dev(), m.ino(), m.len(), m.mtime(), m.mtime_nsec()))
}

fn fingerprints(store: &CertStore) -> [Fingerprint; 2] {
    store.paths().map(fingerprint)
}

/// Reloads and logs the outcome; the old certificate stays on failure.
pub fn reload(store: &CertStore, why: &'static str) -> bool {
    match store.reload() {
        Ok(()) => {
            tracing::info!(trigger = why, "TLS certificate reloaded");
            true
        }
        Err(e) => {
            tracing::warn!(trigger = why, error = %e, "TLS certificate reload failed; still presenting the previous one");
            false
        }
    }
}

/// Watches the files and `SIGHUP` until shutdown.
pub async fn watch(store: Arc<CertStore>, mut shutdown: watch::Receiver<bool>) {
    use tokio::signal::unix::{signal, SignalKind};
    let mut hangup = match signal(SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGHUP; certificates reload on file changes only");
            None
        }
    };
    let mut seen = fingerprints(&store);
    let mut tick = tokio::time::interval(POLL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        let why = tokio::select! {
            _ = tick.tick() => {
                // Taken before reading: a write after this is seen on the next tick.
                let now = fingerprints(&store);
                if now == seen {
                    continue;
                }
                seen = now;
                "file change"
            }
            Some(()) = async { match hangup.as_mut() { Some(h) => h.recv().await, None => None } } => {
                seen = fingerprints(&store);
                "SIGHUP"
            }
            _ = super::stopping(&mut shutdown) => return,
        };
        reload(&store, why);
    }
}
