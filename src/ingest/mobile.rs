//! The mobile side of the RUM endpoints (SPEC §14): for mobile client tokens, the app
//! identity in `X-Client-Origin` instead of the browser `Origin`, the install id in
//! `X-Client-Id` as the per-client budget key, and the optional App Check attestation.
//!
//! Web tokens never reach these checks, so they ignore both headers.

use std::net::IpAddr;

use hyper::header::{HeaderMap, ORIGIN};

use crate::appcheck::{self, Mode};
use crate::edge::AppState;
use crate::origin::AppIdentity;
use crate::ratelimit::Client;
use crate::reject::{Reason, Reject};
use crate::time::unix_now;
use crate::token::cache::ActiveToken;
use crate::token::ClientType;

/// The app identity a mobile SDK sends (`android://<application id>`, `ios://<bundle id>`).
pub const CLIENT_ORIGIN: &str = "x-client-origin";
/// An installation id, keying the per-client budget.
pub const CLIENT_ID: &str = "x-client-id";
/// A Firebase App Check token (JWT).
pub const APP_CHECK: &str = "x-firebase-appcheck";

/// Longest install id used as a budget key.
const MAX_CLIENT_ID: usize = 64;

pub fn is_mobile(token: &ActiveToken) -> bool {
    token.client_type == Some(ClientType::Mobile)
}

/// Phase 4 for a mobile token: no browser `Origin` (a mobile token lifted into a web page is
/// refused and counted as `mobile_token_in_browser`), and an allowed `X-Client-Origin`.
pub fn check_app(token: &ActiveToken, headers: &HeaderMap) -> Result<(), Reason> {
    if headers.contains_key(ORIGIN) {
        token.usage.mobile_token_in_browser();
        token.watch().mobile_token_in_browser();
        return Err(Reason::OriginNotAllowed);
    }
    let app = headers
        .get(CLIENT_ORIGIN)
        .and_then(|v| AppIdentity::parse(v.as_bytes()).ok())
        .ok_or(Reason::OriginNotAllowed)?;
    if token.origins.allows_app(&app) {
        Ok(())
    } else {
        Err(Reason::OriginNotAllowed)
    }
}

/// Whose per-client budget a request spends: a mobile token's valid install id, else the
/// peer address.
pub fn client<'a>(token: &ActiveToken, headers: &'a HeaderMap, peer: IpAddr) -> Client<'a> {
    if is_mobile(token) {
        if let Some(id) = headers
            .get(CLIENT_ID)
            .and_then(|v| install_id(v.as_bytes()))
        {
            return Client::Install(id);
        }
    }
    Client::Addr(peer)
}

/// A usable `X-Client-Id`: 1 to 64 of `[A-Za-z0-9_-]`; anything else is ignored (SPEC §14).
pub fn install_id(raw: &[u8]) -> Option<&str> {
    let ok = !raw.is_empty()
        && raw.len() <= MAX_CLIENT_ID
        && raw
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-'));
    if ok {
        std::str::from_utf8(raw).ok()
    } else {
        None
    }
}

/// The App Check phase, after the request rate check (an RSA verification is the costliest
/// check, so a flood is throttled before it): `enforce` refuses, `report` counts and goes on.
pub fn attest(state: &AppState, token: &ActiveToken, headers: &HeaderMap) -> Result<(), Reject> {
    let Some(settings) = &token.attestation else {
        return Ok(());
    };
    let header = headers.get(APP_CHECK).map(|v| v.as_bytes());
    let result = appcheck::verify(&state.app_check, settings, header, unix_now());
    match (result, settings.mode) {
        (Ok(()), _) | (Err(_), Mode::Off) => Ok(()),
        (Err(_), Mode::Report) => {
            token.usage.attestation_failure();
            Ok(())
        }
        (Err(e), Mode::Enforce) => {
            Err(Reject::new(Reason::AttestationFailed).with_detail(format!("App Check: {e}")))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn install_ids_are_bounded_and_plain() {
        assert_eq!(install_id(b"3f2a-b_9"), Some("3f2a-b_9"));
        assert_eq!(install_id(&[b'a'; 64]).map(str::len), Some(64));
        assert_eq!(install_id(&[b'a'; 65]), None);
        assert_eq!(install_id(b""), None);
        assert_eq!(install_id(b"a b"), None);
        assert_eq!(install_id(b"a.b"), None);
        assert_eq!(install_id("é".as_bytes()), None);
    }
}
