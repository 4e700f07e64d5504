//! Where every abuse event goes (SPEC §12): counted for `ingest_abuse_events_total`, kept in
//! the recent-event rings the admin reads return, handed to the webhook hook, and written to
//! the audit trail as `abuse.<signal>` by `abuse-monitor`.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, RwLock};

use super::event::{Action, Event, Signal};
use super::watch::{action_index, WatchState, RECENT_EVENTS};
use crate::edge::AppState;

/// Who automatic changes are audited as.
pub const WHO: &str = "abuse-monitor";
/// Recent events kept edge-wide.
pub const RECENT_GLOBAL: usize = 256;

/// Where events go besides the audit trail and the rings: the webhook queue implements it.
pub trait EventHook: Send + Sync {
    fn publish(&self, e: &Event);
}

/// Every event passes here: counted, kept in the recent rings, handed to the hook, audited.
#[derive(Default)]
pub struct EventSink {
    recent: Mutex<VecDeque<Event>>,
    hook: RwLock<Option<Arc<dyn EventHook>>>,
    /// Edge-wide (`token_id=""`) events by signal and action.
    edge_events: [[AtomicU64; 4]; 8],
}

impl EventSink {
    pub fn set_hook(&self, hook: Arc<dyn EventHook>) {
        if let Ok(mut h) = self.hook.write() {
            *h = Some(hook);
        }
    }

    /// Counts and keeps `e`, hands it to the hook, and audits it (`abuse.<signal>` by
    /// `abuse-monitor`) in the background.
    pub fn emit(&self, state: &Arc<AppState>, watch: Option<&WatchState>, e: Event) {
        self.emit_as(state, watch, e, WHO)
    }

    /// [`EventSink::emit`] audited as `who` (secret scanning: `secret-scanning:github`).
    pub fn emit_as(
        &self,
        state: &Arc<AppState>,
        watch: Option<&WatchState>,
        e: Event,
        who: &'static str,
    ) {
        self.record(watch, &e);
        let state = Arc::clone(state);
        tokio::spawn(async move {
            let action = format!("abuse.{}", e.signal.label());
            let detail = format!(
                "{} value={:.2} baseline={:.2} event={}",
                e.action.label(),
                e.value,
                e.baseline,
                e.id
            );
            if let Err(err) = state.registry.note(&e.token_id, who, &action, detail).await {
                tracing::error!(error = %err, "abuse event not audited");
            }
        });
    }

    /// Counts and keeps `e` and hands it to the hook, without auditing it: for events whose
    /// origin audits on its own (secret scanning writes its revoke or flag through the
    /// registry).
    pub fn record(&self, watch: Option<&WatchState>, e: &Event) {
        let a = action_index(e.action);
        let counters = watch.map_or(&self.edge_events, |w| &w.events);
        if let Some(c) = counters.get(e.signal as usize).and_then(|r| r.get(a)) {
            c.fetch_add(1, Relaxed);
        }
        if let Some(w) = watch {
            if let Ok(mut cold) = w.cold.lock() {
                push_bounded(&mut cold.recent, e.clone(), RECENT_EVENTS);
            }
        }
        if let Ok(mut recent) = self.recent.lock() {
            push_bounded(&mut recent, e.clone(), RECENT_GLOBAL);
        }
        if let Ok(hook) = self.hook.read() {
            if let Some(h) = hook.as_ref() {
                h.publish(e);
            }
        }
        tracing::warn!(token_id = %e.token_id, signal = e.signal.label(), action = e.action.label(),
            value = e.value, baseline = e.baseline, "abuse event");
    }

    /// The newest events across tokens, newest last.
    pub fn recent(&self) -> Vec<Event> {
        self.recent
            .lock()
            .map(|r| r.iter().cloned().collect())
            .unwrap_or_default()
    }

    pub fn edge_events_total(&self, signal: Signal, action: Action) -> u64 {
        self.edge_events
            .get(signal as usize)
            .and_then(|r| r.get(action_index(action)))
            .map_or(0, |c| c.load(Relaxed))
    }
}

fn push_bounded<T>(q: &mut VecDeque<T>, v: T, cap: usize) {
    if q.len() >= cap {
        q.pop_front();
    }
    q.push_back(v);
}
