//! Firebase App Check attestation of mobile client tokens (SPEC §14): the per-token
//! `attestation` settings and the offline check of an `X-Firebase-AppCheck` JWT.
//!
//! A token is an RS256 JWT signed by one of the keys in the JWKS file
//! (`mobile.app_check_jwks_file`, a copy of Firebase's published JWKS kept fresh by the
//! operator). [`jwks::KeyStore`] holds the parsed keys by `kid` and re-reads the file when it
//! changes, off the request path; the request path only reads the current key set.
//!
//! Checks, in order of cost (cheap refusals first): size (at most 4 KiB), header (`alg` must be
//! RS256: `none`, HS256 with the public key as the secret and everything else are refused
//! before a key is looked up), a known `kid`, the signature, then the claims: `exp` in the
//! future and `nbf` not ahead (jsonwebtoken, 60 s leeway), `iat` not ahead (60 s), issuer
//! `https://firebaseappcheck.googleapis.com/<project_number>`, an audience (string or array)
//! containing `projects/<project_number>`, and `sub` one of the token's `app_ids`.
//!
//! A token whose signature checked is remembered by its SHA-256 with its claims (bounded, see
//! `jwks`), so an app's later requests with the same token skip the RSA work (about 140 µs
//! against 0.45 µs in a release build); the claim checks run on every request.

use jsonwebtoken::{Algorithm, Validation};
use serde::{Deserialize, Serialize};

pub mod jwks;
#[cfg(test)]
mod tests;

pub use jwks::KeyStore;

/// Longest `X-Firebase-AppCheck` value looked at; Firebase tokens are about 1 KiB.
pub const MAX_TOKEN_BYTES: usize = 4096;

/// Clock skew allowed on `exp`, `nbf` and `iat`.
pub const LEEWAY_SECS: u64 = 60;

const ISSUER_PREFIX: &str = "https://firebaseappcheck.googleapis.com/";

/// What a token does with the attestation header.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// The header is ignored.
    #[default]
    Off,
    /// Checked; a failure is counted (`ingest_attestation_failures_total`) and the request
    /// accepted, so an operator can see what `enforce` would refuse before switching.
    Report,
    /// Checked; a missing or failing token is `401 attestation_failed`.
    Enforce,
}

/// The `attestation` object of a mobile token (admin API and store).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Attestation {
    pub mode: Mode,
    /// The Firebase project number (digits): issuer and audience are derived from it.
    #[serde(default)]
    pub project_number: String,
    /// Firebase app ids (`1:1234567890:android:0a1b2c...`) whose tokens are accepted (`sub`).
    #[serde(default)]
    pub app_ids: Vec<String>,
}

/// Why `attestation` settings are refused by the admin API.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SettingsError {
    #[error("attestation.project_number must be 1 to 20 digits")]
    ProjectNumber,
    #[error("attestation.app_ids must hold 1 to 32 ids of 1 to 128 characters of [A-Za-z0-9:._-]")]
    AppIds,
}

impl Attestation {
    /// Checks the settings; `Ok(None)` for `off` (nothing to keep).
    pub fn validated(self) -> Result<Option<Attestation>, SettingsError> {
        if self.mode == Mode::Off {
            return Ok(None);
        }
        let pn = &self.project_number;
        if pn.is_empty() || pn.len() > 20 || !pn.bytes().all(|b| b.is_ascii_digit()) {
            return Err(SettingsError::ProjectNumber);
        }
        let id_ok = |id: &String| {
            !id.is_empty()
                && id.len() <= 128
                && id
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b':' | b'.' | b'_' | b'-'))
        };
        if self.app_ids.is_empty() || self.app_ids.len() > 32 || !self.app_ids.iter().all(id_ok) {
            return Err(SettingsError::AppIds);
        }
        Ok(Some(self))
    }
}

/// Why an App Check token was not accepted. `Copy`: refusing costs nothing; the variant is for
/// tests and logs, the response says only `attestation_failed`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AppCheckError {
    #[error("no X-Firebase-AppCheck header")]
    Missing,
    #[error("App Check token over 4 KiB")]
    TooLarge,
    #[error("not a JWT")]
    Malformed,
    #[error("algorithm is not RS256")]
    Algorithm,
    #[error("no key with this kid in the JWKS file")]
    UnknownKey,
    #[error("bad signature")]
    Signature,
    #[error("expired")]
    Expired,
    #[error("not yet valid")]
    NotYetValid,
    #[error("wrong issuer")]
    Issuer,
    #[error("wrong audience")]
    Audience,
    #[error("app id not allowed")]
    App,
}

/// The claims looked at; anything else in the token is ignored. Kept (see
/// [`jwks::KeyStore::remember`]) once the signature checked, so the time, issuer, audience and
/// app checks can run again on a later request without RSA work.
#[derive(Debug, Deserialize)]
pub struct Claims {
    iss: String,
    sub: String,
    aud: Audience,
    exp: u64,
    #[serde(default)]
    nbf: Option<u64>,
    #[serde(default)]
    iat: Option<u64>,
}

/// `aud` is a string or an array of strings (RFC 7519 §4.1.3).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum Audience {
    One(String),
    Many(Vec<String>),
}

impl Audience {
    fn contains_project(&self, project_number: &str) -> bool {
        let is_ours = |a: &str| {
            a.strip_prefix("projects/")
                .is_some_and(|n| n == project_number)
        };
        match self {
            Audience::One(a) => is_ours(a),
            Audience::Many(list) => list.iter().any(|a| is_ours(a)),
        }
    }
}

/// The signature and time checks shared by every token (issuer, audience and app differ per
/// token and are compared by hand, so nothing is built per request).
pub fn validation() -> Validation {
    let mut v = Validation::new(Algorithm::RS256);
    v.leeway = LEEWAY_SECS;
    v.validate_exp = true;
    v.validate_nbf = true;
    v.validate_aud = false;
    v.set_required_spec_claims(&["exp", "iss", "aud", "sub"]);
    v
}

/// Verifies one `X-Firebase-AppCheck` value for a token's settings at `now` (Unix seconds).
pub fn verify(
    keys: &KeyStore,
    settings: &Attestation,
    header: Option<&[u8]>,
    now: u64,
) -> Result<(), AppCheckError> {
    let raw = header.ok_or(AppCheckError::Missing)?;
    if raw.len() > MAX_TOKEN_BYTES {
        return Err(AppCheckError::TooLarge);
    }
    // An app sends the same App Check token until it nears expiry: after the first request,
    // a SHA-256 and a map lookup instead of an RSA verification.
    let digest = jwks::digest(raw);
    if let Some(claims) = keys.verified(&digest) {
        return check_claims(&claims, settings, now);
    }
    let jwt_header = jsonwebtoken::decode_header(raw).map_err(|_| AppCheckError::Malformed)?;
    if jwt_header.alg != Algorithm::RS256 {
        return Err(AppCheckError::Algorithm);
    }
    let kid = jwt_header.kid.as_deref().ok_or(AppCheckError::UnknownKey)?;
    let generation = keys.generation();
    let set = keys.current();
    let key = set.get(kid).ok_or(AppCheckError::UnknownKey)?;
    let data = jsonwebtoken::decode::<Claims>(raw, key, keys.validation()).map_err(|e| {
        use jsonwebtoken::errors::ErrorKind;
        match e.kind() {
            ErrorKind::ExpiredSignature => AppCheckError::Expired,
            ErrorKind::ImmatureSignature => AppCheckError::NotYetValid,
            ErrorKind::InvalidSignature => AppCheckError::Signature,
            ErrorKind::InvalidAlgorithm => AppCheckError::Algorithm,
            _ => AppCheckError::Malformed,
        }
    })?;
    let claims = std::sync::Arc::new(data.claims);
    keys.remember(digest, generation, claims.clone());
    check_claims(&claims, settings, now)
}

/// Everything but the signature, against one token's settings at `now`: also what a
/// remembered token goes through on each later request.
fn check_claims(claims: &Claims, settings: &Attestation, now: u64) -> Result<(), AppCheckError> {
    if claims.exp.saturating_add(LEEWAY_SECS) < now {
        return Err(AppCheckError::Expired);
    }
    let ahead = |t: Option<u64>| t.is_some_and(|t| t > now.saturating_add(LEEWAY_SECS));
    if ahead(claims.nbf) || ahead(claims.iat) {
        return Err(AppCheckError::NotYetValid);
    }
    let pn = settings.project_number.as_str();
    if claims.iss.strip_prefix(ISSUER_PREFIX) != Some(pn) {
        return Err(AppCheckError::Issuer);
    }
    if !claims.aud.contains_project(pn) {
        return Err(AppCheckError::Audience);
    }
    if !settings.app_ids.contains(&claims.sub) {
        return Err(AppCheckError::App);
    }
    Ok(())
}
