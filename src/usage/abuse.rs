//! The abuse-monitoring series of `/metrics` (SPEC §12), declared here next to the other
//! per-token series. Labels: the token id from the store and fixed enums only.

use std::fmt::Write as _;
use std::sync::Arc;

use super::{header, Escaped, Usage};
use crate::abuse::report::{Gauges, GAUGE_SIGNALS};
use crate::abuse::{Action, Monitor, Signal};
use crate::token::cache::ActiveToken;

impl Usage {
    /// The abuse-monitoring series (SPEC §12) of `tokens` that had traffic on this edge, and
    /// the edge-wide `auth_storm` under `token_id=""`. Labels: the token id and fixed enums.
    pub fn render_abuse(&self, out: &mut String, tokens: &[Arc<ActiveToken>], monitor: &Monitor) {
        let mut watched: Vec<(&ActiveToken, Gauges)> = tokens
            .iter()
            .filter_map(|t| Some((&**t, monitor.gauges(t)?)))
            .collect();
        watched.sort_by(|a, b| a.0.id.cmp(&b.0.id));
        for (name, help, value) in [
            (
                "ingest_token_items_per_second",
                "Items per second over the short window (requests that passed the token and origin checks).",
                (|g: &Gauges| g.items_per_second) as fn(&Gauges) -> f64,
            ),
            (
                "ingest_token_baseline_items_per_second",
                "The token's learned baseline of accepted items per second.",
                |g| g.baseline_items_per_second,
            ),
            (
                "ingest_token_distinct_clients",
                "Distinct client addresses over the short window (HyperLogLog estimate, 3.25% standard error).",
                |g| g.distinct_clients,
            ),
        ] {
            header(out, name, "gauge", help);
            for (t, g) in &watched {
                let _ = writeln!(out, "{name}{{token_id=\"{}\"}} {}", Escaped(&t.id), value(g));
            }
        }
        header(
            out,
            "ingest_token_anomaly",
            "gauge",
            "1 while the signal is active on the token (token_id=\"\" for auth_storm).",
        );
        for (t, g) in &watched {
            for (signal, active) in GAUGE_SIGNALS.iter().zip(g.active) {
                let _ = writeln!(
                    out,
                    "ingest_token_anomaly{{token_id=\"{}\",signal=\"{}\"}} {}",
                    Escaped(&t.id),
                    signal.label(),
                    u8::from(active)
                );
            }
        }
        let _ = writeln!(
            out,
            "ingest_token_anomaly{{token_id=\"\",signal=\"auth_storm\"}} {}",
            u8::from(monitor.auth_view().0.active)
        );
        header(
            out,
            "ingest_abuse_events_total",
            "counter",
            "Abuse events by token, signal and action (flagged, throttled, blocked, cleared).",
        );
        let actions = [
            Action::Flagged,
            Action::Throttled,
            Action::Blocked,
            Action::Cleared,
        ];
        for signal in Signal::ALL {
            for action in actions {
                let v = monitor.sink.edge_events_total(signal, action);
                if v > 0 {
                    let _ = writeln!(
                        out,
                        "ingest_abuse_events_total{{token_id=\"\",signal=\"{}\",action=\"{}\"}} {v}",
                        signal.label(),
                        action.label()
                    );
                }
            }
        }
        for (t, _) in &watched {
            let Some(w) = t.watch().get() else { continue };
            for signal in Signal::ALL {
                for action in actions {
                    let v = w.events_total(signal, action);
                    if v > 0 {
                        let _ = writeln!(
                            out,
                            "ingest_abuse_events_total{{token_id=\"{}\",signal=\"{}\",action=\"{}\"}} {v}",
                            Escaped(&t.id),
                            signal.label(),
                            action.label()
                        );
                    }
                }
            }
        }
    }
}
