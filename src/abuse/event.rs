//! The event of abuse monitoring (SPEC §12): one shape for the webhook payload, the audit
//! trail and the admin reads, so an operator sees the same fields wherever they look.

use rand::Rng;

/// What was noticed. Each is a fixed `signal` label value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
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
    /// The `signal` label value (and the serialized name).
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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

/// What the edge did about it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    Flagged,
    Throttled,
    Blocked,
    Cleared,
    Revoked,
}

impl Action {
    /// The `action` label value (and the serialized name).
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

/// One event, as the webhook receives it (one JSON object per POST).
#[derive(Clone, Debug, serde::Serialize, serde::Deserialize)]
pub struct Event {
    /// Unique per event (`ev_` + 16 base62, random), so a receiver can drop a redelivery.
    pub id: String,
    pub event: EventKind,
    /// `""` for edge-wide signals (`auth_storm`).
    pub token_id: String,
    /// The token's name, so a receiver need not call the admin API to say which token.
    pub name: String,
    pub environment: String,
    pub signal: Signal,
    pub action: Action,
    /// The signal's current value (rate, estimate, ...).
    pub value: f64,
    /// What the value is compared with (0 where there is none).
    pub baseline: f64,
    /// Unix seconds.
    pub at: u64,
}

impl Event {
    /// A new event with a fresh random id.
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

/// `ev_` + 16 base62 characters (about 95 bits): unique without coordination between edges.
fn new_event_id() -> String {
    const ALPHABET: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
    let mut rng = rand::thread_rng();
    let mut id = String::with_capacity(19);
    id.push_str("ev_");
    for _ in 0..16 {
        id.push(char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())]));
    }
    id
}
