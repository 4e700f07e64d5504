//! `last_used_at` (SPEC §12): set by accepted requests in memory (a minute-precision atomic
//! in the token's watch), written to the store by the engine at most once a minute, for all
//! changed tokens in one store write: never a store write per request.

use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;

use crate::edge::AppState;

/// Writes the `last_used_at` of every token whose minute changed since the last write, in
/// one batched store write.
pub async fn last_used(state: &Arc<AppState>) {
    let mut changed: Vec<(String, u64)> = Vec::new();
    let mut marks = Vec::new();
    for t in state.registry.tokens() {
        let Some(w) = t.watch().get() else { continue };
        let minute = w.last_used.load(Relaxed);
        let Ok(es) = w.engine.lock() else { continue };
        if minute > 0 && minute != es.persisted_minute {
            changed.push((t.id.to_string(), minute));
            marks.push((t.clone(), minute));
        }
    }
    if changed.is_empty() {
        return;
    }
    match state.registry.persist_last_used(changed).await {
        Ok(()) => {
            for (t, minute) in marks {
                if let Some(w) = t.watch().get() {
                    if let Ok(mut es) = w.engine.lock() {
                        es.persisted_minute = minute;
                    }
                }
            }
        }
        Err(e) => tracing::error!(error = %e, "last_used_at not persisted"),
    }
}
