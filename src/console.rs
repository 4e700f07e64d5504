//! The console (SPEC §13): a web UI on the ops listener for the people who own tokens. It is a
//! thin client of the admin API: this module only serves its embedded files (`assets`), signs
//! operators in and out (`session`), and tells the admin API whether a request carries a live
//! session that may make the change it asks for. Every token rule stays in `admin`/`token`.
//!
//! ```text
//! GET /, GET /console/<file>   -> assets::Assets::respond (ETag, 304, CSP)
//! POST   /api/v1/session {key} -> constant-time key check -> Set-Cookie (HttpOnly, SameSite=Strict)
//! GET    /api/v1/session       -> 200 {expires_at} | 401
//! DELETE /api/v1/session       -> CSRF check -> session ended on the server, cookie cleared
//! /api/v1/... with the cookie  -> admin::authorise -> Console::session_access (CSRF on changes)
//! ```

use std::sync::Arc;

use hyper::header::{HeaderValue, CACHE_CONTROL, SET_COOKIE};
use hyper::{HeaderMap, Method, Request};
use serde_json::json;

use crate::body::{self, RequestBody};
use crate::edge::AppState;
use crate::http::{self, Resp};
use crate::time::{rfc3339, unix_now};

pub mod assets;
pub mod session;

use session::Sessions;

/// A sign-in body is `{"key": "..."}`; anything larger is refused before it is read.
const MAX_SIGN_IN_BODY: usize = 4 << 10;

/// The console's share of the edge's state.
#[derive(Default)]
pub struct Console {
    /// The embedded files and their ETags.
    pub assets: assets::Assets,
    /// Signed-in sessions.
    pub sessions: Sessions,
}

/// What a request's session cookie allows.
#[derive(Debug, PartialEq, Eq)]
pub enum SessionAccess {
    /// No cookie, or not a live session.
    None,
    /// A live session, and the request is a read or passes the CSRF check.
    Granted,
    /// A live session, but a change that fails the CSRF check: refused, nothing changes.
    CsrfRefused(&'static str),
}

impl Console {
    /// Whether the request's cookie names a live session, and, for a change, whether the change
    /// passes the CSRF check.
    pub fn session_access(&self, method: &Method, headers: &HeaderMap) -> SessionAccess {
        let live = session::cookie_id(headers)
            .is_some_and(|id| self.sessions.check(id, unix_now()).is_some());
        if !live {
            return SessionAccess::None;
        }
        if session::is_change(method) {
            if let Some(why) = session::csrf_refusal(headers) {
                return SessionAccess::CsrfRefused(why);
            }
        }
        SessionAccess::Granted
    }
}

fn error(status: u16, code: &str, message: &str) -> Resp {
    no_store(http::json(
        status,
        &json!({"error": {"code": code, "message": message, "details": []}}),
    ))
}

/// Session answers are never cached: they say who is signed in.
fn no_store(mut resp: Resp) -> Resp {
    resp.headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    resp
}

fn with_cookie(mut resp: Resp, cookie: String) -> Resp {
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        resp.headers_mut().insert(SET_COOKIE, v);
    }
    no_store(resp)
}

/// `/api/v1/session`: sign in (`POST {key}`), who am I (`GET`), sign out (`DELETE`).
pub async fn session(state: &Arc<AppState>, req: &mut Request<RequestBody>) -> Resp {
    let console = &state.console;
    let server = &state.config.server;
    let secure = server.ops_tls && server.tls_cert_file.is_some();
    match *req.method() {
        Method::POST => {
            let bytes = match body::read_bounded(
                req.body_mut(),
                MAX_SIGN_IN_BODY,
                state.config.server.body_read_timeout,
                0,
            )
            .await
            {
                Ok(b) => b,
                Err(r) => return error(r.status, "bad_body", r.text()),
            };
            #[derive(serde::Deserialize)]
            struct SignIn {
                key: String,
            }
            let Ok(sign_in) = serde_json::from_slice::<SignIn>(&bytes) else {
                return error(400, "invalid_json", "expected {\"key\": \"<admin key>\"}");
            };
            if !state.admin_key.matches(sign_in.key.trim().as_bytes()) {
                tracing::info!("console sign-in refused: wrong admin key");
                return error(401, "unauthorized", "wrong admin key");
            }
            let (id, expires) = console.sessions.create(unix_now());
            tracing::info!(sessions = console.sessions.len(), "console sign-in");
            with_cookie(
                http::json(200, &json!({"expires_at": rfc3339(expires)})),
                session::set_cookie(&id, secure),
            )
        }
        Method::GET => {
            let expires = session::cookie_id(req.headers())
                .and_then(|id| console.sessions.check(id, unix_now()));
            match expires {
                Some(exp) => no_store(http::json(200, &json!({"expires_at": rfc3339(exp)}))),
                None => error(401, "unauthorized", "not signed in"),
            }
        }
        Method::DELETE => {
            // Signing out is a change too: a foreign page must not end a session.
            if let Some(why) = session::csrf_refusal(req.headers()) {
                return error(403, "csrf", why);
            }
            if let Some(id) = session::cookie_id(req.headers()) {
                console.sessions.end(id);
            }
            with_cookie(http::empty(204), session::clear_cookie(secure))
        }
        _ => error(405, "method_not_allowed", "method not allowed"),
    }
}

#[cfg(test)]
mod tests;
