//! `POST /api/v1/secret-scanning/github` on the ingest listener (SPEC §12): GitHub's secret
//! scanning partner protocol. GitHub finds `iew_`/`iec_` secrets in public code and posts them
//! here; a still valid remote-write secret is revoked at once (or flagged, per
//! `abuse.leaked_secret_action`), so a leak is closed within seconds of the push.
//!
//! Phases: method (405); keys configured (404); signature headers present (401); body at most
//! [`MAX_BODY`] (413); signature over the raw body (401: nothing is looked at before it holds);
//! JSON array of `{token, type, url, source}` (400); then per reported token: format, digest,
//! cache lookup, response, answer entry.
//!
//! A replay changes nothing more: revoking a revoked token writes no second audit event, and
//! an event is published once per secret and edge run.
//!
//! Series: `ingest_secret_scanning_reports_total{label}`, `label` = `true_positive` (a secret of
//! ours, remote-write) | `false_positive` (a client secret: public by design) | `unknown` (not
//! ours, or malformed).

mod keys;
#[cfg(test)]
mod tests;

use std::collections::HashSet;
use std::fmt::Write as _;
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};

use crate::body::RequestBody;
use hyper::header::{HeaderValue, ALLOW};
use hyper::{Method, Request};
use serde_json::json;

pub use keys::{KeyError, KeyFile, KeySet, VerifyError};

use super::event::{Action, Event, EventKind, Signal};
use crate::body;
use crate::config::{AbuseConfig, LeakedSecretAction};
use crate::edge::AppState;
use crate::http::{self, Resp};
use crate::secret::{Digest, TokenSecret, TokenType};
use crate::time::unix_now;
use crate::token::cache::{ActiveToken, Lookup};

/// The path GitHub is given.
pub const PATH: &str = "/api/v1/secret-scanning/github";
/// Who revokes or flags, in the audit trail.
pub const WHO: &str = "secret-scanning:github";
/// Largest accepted report: GitHub batches matches, a few hundred bytes each.
pub const MAX_BODY: usize = 1 << 20;
/// `token_type` of a remote-write secret in the answer (the type name given to GitHub).
pub const REMOTE_WRITE_TYPE: &str = "ingest_edge_remote_write";
/// `token_type` of a client secret in the answer.
pub const CLIENT_TYPE: &str = "ingest_edge_client";

const KEY_ID_HEADER: &str = "github-public-key-identifier";
const SIGNATURE_HEADER: &str = "github-public-key-signature";

/// Where the events of leaked secrets go (the webhook, the recent-event rings). Secret
/// scanning writes its own audit events through the registry, so a hook must not audit.
pub type EventHook = Arc<dyn Fn(&Event) + Send + Sync>;

/// The endpoint's state: keys, action, event hook, counters.
pub struct SecretScanning {
    /// `None`: no keys file configured, the endpoint answers `404`.
    keys: Option<KeyFile>,
    action: LeakedSecretAction,
    hook: EventHook,
    /// By [`Label`].
    reports: [AtomicU64; 3],
    /// Digests of known secrets already reported this run: a replay publishes no second event
    /// and writes no second "flagged" audit event. Bounded by the number of tokens.
    seen: Mutex<HashSet<Digest>>,
}

/// The answer's `label`, and the metric's.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Label {
    TruePositive = 0,
    FalsePositive = 1,
    Unknown = 2,
}

impl Label {
    const ALL: [Label; 3] = [Label::TruePositive, Label::FalsePositive, Label::Unknown];

    fn as_str(self) -> &'static str {
        match self {
            Label::TruePositive => "true_positive",
            Label::FalsePositive => "false_positive",
            Label::Unknown => "unknown",
        }
    }
}

/// One reported match. `type`, `url` and `source` are GitHub's; only the token is used.
#[derive(serde::Deserialize)]
struct Report {
    token: String,
}

impl SecretScanning {
    /// From `[abuse]`; reads the keys file now if one is configured.
    pub fn from_config(config: &AbuseConfig, hook: EventHook) -> Result<SecretScanning, KeyError> {
        let keys = match config.secret_scanning_keys_file.as_str() {
            "" => None,
            path => Some(KeyFile::open(Path::new(path))?),
        };
        Ok(SecretScanning {
            keys,
            action: config.leaked_secret_action,
            hook,
            reports: Default::default(),
            seen: Mutex::default(),
        })
    }

    /// Appends this endpoint's series to a `/metrics` text exposition.
    pub fn render_metrics(&self, out: &mut String) {
        out.push_str(
            "# HELP ingest_secret_scanning_reports_total Secrets reported by GitHub secret scanning, by the label answered.\n\
             # TYPE ingest_secret_scanning_reports_total counter\n",
        );
        for label in Label::ALL {
            let _ = writeln!(
                out,
                "ingest_secret_scanning_reports_total{{label=\"{}\"}} {}",
                label.as_str(),
                self.reports[label as usize].load(Relaxed)
            );
        }
    }

    fn count(&self, label: Label) {
        self.reports[label as usize].fetch_add(1, Relaxed);
    }

    /// `true` the first time this run that `digest` is reported.
    fn first_report(&self, digest: Digest) -> bool {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.insert(digest)
    }

    fn forget(&self, digest: Digest) {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        seen.remove(&digest);
    }
}

/// Handles a request to [`PATH`].
pub async fn handle(state: &AppState, req: &mut Request<RequestBody>) -> Resp {
    if req.method() != Method::POST {
        let mut r = http::text(405, "method not allowed");
        r.headers_mut()
            .insert(ALLOW, HeaderValue::from_static("POST"));
        return r;
    }
    let scanning = &state.secret_scanning;
    let Some(key_file) = &scanning.keys else {
        return http::text(404, "not found");
    };
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let (Some(key_id), Some(signature)) = (header(KEY_ID_HEADER), header(SIGNATURE_HEADER)) else {
        return http::text(401, "missing Github-Public-Key-Identifier or -Signature");
    };
    if let Err(r) = body::check_declared_length(req.headers(), MAX_BODY) {
        return http::reject(&r);
    }
    let timeout = state.config.server.body_read_timeout;
    let raw = match body::read_bounded(req.body_mut(), MAX_BODY, timeout, 0).await {
        Ok(b) => b,
        Err(r) => return http::reject(&r),
    };
    if let Err(e) = key_file.keys().await.verify(&key_id, &signature, &raw) {
        tracing::warn!(error = %e, "secret scanning: refused a report");
        return http::text(401, "bad signature");
    }
    let reports: Vec<Report> = match serde_json::from_slice(&raw) {
        Ok(r) => r,
        Err(_) => return http::text(400, "expected a JSON array of {token, type, url, source}"),
    };
    let mut answer = Vec::with_capacity(reports.len());
    for report in &reports {
        match respond(state, &report.token).await {
            Ok(Some(entry)) => answer.push(entry),
            Ok(None) => {}
            Err(e) => {
                // GitHub retries; the reports handled so far are not handled twice.
                tracing::error!(error = %e, "secret scanning: cannot revoke a leaked token");
                return http::text(503, "cannot revoke now, retry");
            }
        }
    }
    http::json(200, &serde_json::Value::Array(answer))
}

/// Acts on one reported token; `None` when it is not one of ours (left out of the answer).
async fn respond(
    state: &AppState,
    token: &str,
) -> Result<Option<serde_json::Value>, crate::token::registry::RegistryError> {
    let scanning = &state.secret_scanning;
    let Ok(secret) = TokenSecret::parse(token) else {
        scanning.count(Label::Unknown);
        return Ok(None);
    };
    let digest = secret.digest();
    let (found, still_valid) = match state.registry.cache().lookup(&digest, unix_now()) {
        Lookup::Active(t) => (t, true),
        Lookup::Revoked(t) => (t, false),
        Lookup::Unknown => {
            scanning.count(Label::Unknown);
            return Ok(None);
        }
    };
    let (label, token_type) = match found.token_type {
        TokenType::RemoteWrite => (Label::TruePositive, REMOTE_WRITE_TYPE),
        // Public by design (it sits in every page that loads the RUM SDK): nothing to revoke.
        TokenType::Client => (Label::FalsePositive, CLIENT_TYPE),
    };
    let action = match (found.token_type, scanning.action) {
        (TokenType::RemoteWrite, LeakedSecretAction::Revoke) => Action::Revoked,
        _ => Action::Flagged,
    };
    // A secret that no longer works (revoked, or an old one past its rotation grace) needs
    // nothing more; a replay of one this edge revoked lands here too.
    if still_valid {
        let first = match action {
            Action::Revoked => {
                // Idempotent: a concurrent or repeated revoke writes no second audit event.
                state.registry.revoke(&found.id, WHO).await?;
                scanning.first_report(digest)
            }
            _ => {
                let first = scanning.first_report(digest);
                if first && found.token_type == TokenType::RemoteWrite {
                    let detail = "leaked secret reported by GitHub secret scanning".to_owned();
                    let noted = state
                        .registry
                        .note(&found.id, WHO, "abuse.leaked_secret", detail)
                        .await;
                    if let Err(e) = noted {
                        // GitHub retries: let the retry write it.
                        scanning.forget(digest);
                        return Err(e);
                    }
                }
                first
            }
        };
        if first {
            (scanning.hook)(&leaked(&found, action));
        }
    }
    scanning.count(label);
    Ok(Some(json!({
        "token_hash": digest.to_hex(),
        "token_type": token_type,
        "label": label.as_str(),
    })))
}

fn leaked(token: &ActiveToken, action: Action) -> Event {
    Event::new(
        EventKind::SecretLeaked,
        &token.id,
        &token.name,
        &token.environment,
        Signal::LeakedSecret,
        action,
        0.0,
        0.0,
        unix_now(),
    )
}
