//! What the abuse monitor says (SPEC §12): the signals, the kinds of event, the actions, and the
//! event itself: the webhook payload, the audit trail's `abuse.<signal>` entries and what the
//! admin reads return. Every name here is a fixed label value, never taken from a request.

use serde::{Deserialize, Serialize};

/// One anomaly signal; its [`Signal::label`] is the `signal` label value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Signal {
    Spike,
    OriginStorm,
    ClientStorm,
    SeriesGrowth,
    NewOrigin,
    AuthStorm,
    MobileTokenInBrowser,
    LeakedSecret,
}

impl Signal {
    /// Every signal, in label order.
    pub const ALL: [Signal; 8] = [
        Signal::Spike,
        Signal::OriginStorm,
        Signal::ClientStorm,
        Signal::SeriesGrowth,
        Signal::NewOrigin,
        Signal::AuthStorm,
        Signal::MobileTokenInBrowser,
        Signal::LeakedSecret,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Signal::Spike => "spike",
            Signal::OriginStorm => "origin_storm",
            Signal::ClientStorm => "client_storm",
            Signal::SeriesGrowth => "series_growth",
            Signal::NewOrigin => "new_origin",
            Signal::AuthStorm => "auth_storm",
            Signal::MobileTokenInBrowser => "mobile_token_in_browser",
            Signal::LeakedSecret => "leaked_secret",
        }
    }
}

/// The webhook's `event` field.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum EventKind {
    #[serde(rename = "abuse.flagged")]
    Flagged,
    #[serde(rename = "abuse.throttled")]
    Throttled,
    #[serde(rename = "abuse.blocked")]
    Blocked,
    #[serde(rename = "abuse.cleared")]
    Cleared,
    #[serde(rename = "secret.leaked")]
    SecretLeaked,
}

/// What the edge did; the `action` label of `ingest_abuse_events_total` (except `revoked`,
/// which only leaked secrets get).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Flagged,
    Throttled,
    Blocked,
    Cleared,
    Revoked,
}

impl Action {
    /// Every action, in label order.
    pub const ALL: [Action; 5] = [
        Action::Flagged,
        Action::Throttled,
        Action::Blocked,
        Action::Cleared,
        Action::Revoked,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Action::Flagged => "flagged",
            Action::Throttled => "throttled",
            Action::Blocked => "blocked",
            Action::Cleared => "cleared",
            Action::Revoked => "revoked",
        }
    }
}

/// One event (SPEC §12 webhook payload).
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Event {
    /// Unique per event (`ev_` + 16 base62, random), so a receiver can de-duplicate retries.
    pub id: String,
    pub event: EventKind,
    /// `""` for edge-wide signals (`auth_storm`).
    pub token_id: String,
    /// The token's name, so a pager message is readable without a lookup.
    pub name: String,
    pub environment: String,
    pub signal: Signal,
    pub action: Action,
    /// The signal's current value (a rate, an estimate, ...).
    pub value: f64,
    /// What the value is compared against (0 when the signal has no baseline).
    pub baseline: f64,
    /// Unix seconds.
    pub at: u64,
}

impl Event {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        kind: EventKind,
        token_id: &str,
        name: &str,
        environment: &str,
        signal: Signal,
        action: Action,
        value: f64,
        baseline: f64,
        at: u64,
    ) -> Event {
        Event {
            id: new_event_id(),
            event: kind,
            token_id: token_id.to_owned(),
            name: name.to_owned(),
            environment: environment.to_owned(),
            signal,
            action,
            value,
            baseline,
            at,
        }
    }
}

/// `ev_` and 16 base62 characters (95 bits: unique without coordination between edges).
fn new_event_id() -> String {
    use rand::Rng;
    const ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut rng = rand::thread_rng();
    let mut id = String::with_capacity(19);
    id.push_str("ev_");
    for _ in 0..16 {
        id.push(char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]));
    }
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn payload_names_follow_the_spec() {
        let e = Event::new(
            EventKind::Throttled,
            "tk_a",
            "n",
            "prod",
            Signal::OriginStorm,
            Action::Throttled,
            12.5,
            2.0,
            7,
        );
        let v = serde_json::to_value(&e).unwrap();
        assert_eq!(v["event"], "abuse.throttled");
        assert_eq!(v["signal"], "origin_storm");
        assert_eq!(v["action"], "throttled");
        assert_eq!(e.id.len(), 19);
        assert!(e.id.starts_with("ev_"));
        for s in Signal::ALL {
            assert_eq!(serde_json::to_value(s).unwrap(), s.label());
        }
        for a in Action::ALL {
            assert_eq!(serde_json::to_value(a).unwrap(), a.label());
        }
    }
}
