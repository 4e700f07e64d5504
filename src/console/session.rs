//! Console sessions (SPEC §13): a random 256-bit id in an `HttpOnly; SameSite=Strict` cookie,
//! kept server-side with its expiry in a bounded map, and the CSRF check that every change made
//! with the cookie must pass (`X-Requested-With: ingest-edge` and a same-origin `Origin`).

use std::collections::HashMap;
use std::sync::Mutex;

use hyper::header::{COOKIE, HOST, ORIGIN};
use hyper::{HeaderMap, Method};
use sha2::{Digest, Sha256};

/// Name of the session cookie.
pub const COOKIE_NAME: &str = "ingest_edge_session";
/// A session lasts at most 12 hours (SPEC §13), also enforced here, not only by the cookie's
/// `Max-Age`: a copied cookie stops working at the same time.
pub const SESSION_TTL_SECS: u64 = 12 * 3600;
/// Sessions kept at once. Operators are few; the bound keeps repeated sign-ins from growing
/// memory. When full, expired sessions go first, then the one closest to expiry.
pub const MAX_SESSIONS: usize = 256;
/// The header a console change must carry: a page on another origin cannot add it without a
/// CORS preflight, which the ops listener never answers.
pub const CSRF_HEADER: &str = "x-requested-with";
pub const CSRF_VALUE: &str = "ingest-edge";

/// Signed-in console sessions: SHA-256 of the id -> expiry (unix seconds). Only the digest is
/// kept, so a memory dump does not hand out live cookies.
#[derive(Default)]
pub struct Sessions {
    /// Guarded by a plain mutex: sign-ins and checks are rare (ops listener only).
    map: Mutex<HashMap<[u8; 32], u64>>,
}

fn digest(id: &str) -> [u8; 32] {
    Sha256::digest(id.as_bytes()).into()
}

impl Sessions {
    /// Starts a session; returns its id (64 hex digits, 256 random bits) and expiry.
    pub fn create(&self, now: u64) -> (String, u64) {
        use rand::RngCore;
        let mut raw = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut raw);
        let id: String = raw.iter().map(|b| format!("{b:02x}")).collect();
        let expires = now + SESSION_TTL_SECS;
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        if map.len() >= MAX_SESSIONS {
            map.retain(|_, exp| *exp > now);
        }
        while map.len() >= MAX_SESSIONS {
            let Some(oldest) = map.iter().min_by_key(|(_, exp)| **exp).map(|(k, _)| *k) else {
                break;
            };
            map.remove(&oldest);
        }
        map.insert(digest(&id), expires);
        (id, expires)
    }

    /// The session's expiry if `id` names a live one; an expired one is forgotten.
    pub fn check(&self, id: &str, now: u64) -> Option<u64> {
        let key = digest(id);
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        match map.get(&key) {
            Some(exp) if *exp > now => Some(*exp),
            Some(_) => {
                map.remove(&key);
                None
            }
            None => None,
        }
    }

    /// Ends a session (sign-out).
    pub fn end(&self, id: &str) {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.remove(&digest(id));
    }

    pub fn len(&self) -> usize {
        self.map.lock().unwrap_or_else(|e| e.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The session id in the request's `Cookie` header(s), if any.
pub fn cookie_id(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == COOKIE_NAME).then_some(value.trim())
        })
}

/// `Set-Cookie` for a new session. `secure` when the ops listener speaks TLS: the browser then
/// never sends the cookie over plain HTTP (a plain listener cannot set it, or the browser
/// would drop the cookie and the console could never sign in).
pub fn set_cookie(id: &str, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!(
        "{COOKIE_NAME}={id}; HttpOnly; SameSite=Strict; Path=/; Max-Age={SESSION_TTL_SECS}{secure}"
    )
}

/// `Set-Cookie` that makes the browser forget the session.
pub fn clear_cookie(secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{COOKIE_NAME}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0{secure}")
}

/// Whether `method` changes something (and so needs the CSRF check when cookie-authorised).
pub fn is_change(method: &Method) -> bool {
    !matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// The CSRF check for a cookie-authorised change: `X-Requested-With: ingest-edge`, and an
/// `Origin` that is this listener's own (`http(s)://` + the request's `Host`). A request with
/// no `Origin` is refused: browsers send it on every cross-origin and on every same-origin
/// non-GET fetch, so only a non-browser client lacks it, and such a client has the bearer key.
pub fn csrf_refusal(headers: &HeaderMap) -> Option<&'static str> {
    let header_ok = headers
        .get(CSRF_HEADER)
        .is_some_and(|v| v.as_bytes() == CSRF_VALUE.as_bytes());
    if !header_ok {
        return Some("a change made with the console session needs X-Requested-With: ingest-edge");
    }
    let host = headers.get(HOST).and_then(|v| v.to_str().ok());
    let origin = headers.get(ORIGIN).and_then(|v| v.to_str().ok());
    let same = match (origin, host) {
        (Some(o), Some(h)) => {
            let rest = o
                .strip_prefix("http://")
                .or_else(|| o.strip_prefix("https://"));
            rest.is_some_and(|r| r.eq_ignore_ascii_case(h))
        }
        _ => false,
    };
    if same {
        None
    } else {
        Some("a change made with the console session needs an Origin equal to the console's own")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper::header::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn sessions_expire_and_end() {
        let s = Sessions::default();
        let (id, exp) = s.create(1000);
        assert_eq!(id.len(), 64);
        assert_eq!(exp, 1000 + SESSION_TTL_SECS);
        assert_eq!(s.check(&id, 1001), Some(exp));
        assert_eq!(s.check("nope", 1001), None);
        assert_eq!(s.check(&id, exp), None, "expired at its expiry");
        assert!(s.is_empty(), "an expired session is forgotten");
        let (id, _) = s.create(1000);
        s.end(&id);
        assert_eq!(s.check(&id, 1001), None);
    }

    #[test]
    fn sessions_are_bounded() {
        let s = Sessions::default();
        let (first, _) = s.create(1);
        for i in 0..MAX_SESSIONS as u64 + 10 {
            s.create(2 + i);
        }
        assert_eq!(s.len(), MAX_SESSIONS);
        assert_eq!(
            s.check(&first, 3),
            None,
            "the one closest to expiry went first"
        );
    }

    #[test]
    fn cookie_is_found_among_others() {
        let h = headers(&[("cookie", "a=b; ingest_edge_session=abc ; c=d")]);
        assert_eq!(cookie_id(&h), Some("abc"));
        assert_eq!(cookie_id(&headers(&[("cookie", "x=1")])), None);
        assert!(
            set_cookie("abc", false).ends_with("HttpOnly; SameSite=Strict; Path=/; Max-Age=43200")
        );
        assert!(set_cookie("abc", true).ends_with("; Max-Age=43200; Secure"));
        assert!(clear_cookie(true).ends_with("Max-Age=0; Secure"));
        assert!(!clear_cookie(false).contains("Secure"));
    }

    #[test]
    fn csrf_needs_the_header_and_the_same_origin() {
        let ok = [
            ("host", "127.0.0.1:9464"),
            ("origin", "http://127.0.0.1:9464"),
            ("x-requested-with", "ingest-edge"),
        ];
        assert_eq!(csrf_refusal(&headers(&ok)), None);
        assert!(csrf_refusal(&headers(&ok[..2])).is_some(), "no header");
        assert!(
            csrf_refusal(&headers(&[ok[0], ok[2]])).is_some(),
            "no Origin"
        );
        let other = [ok[0], ("origin", "http://evil.localtest:9464"), ok[2]];
        assert!(csrf_refusal(&headers(&other)).is_some(), "other origin");
        let port = [ok[0], ("origin", "http://127.0.0.1:9465"), ok[2]];
        assert!(csrf_refusal(&headers(&port)).is_some(), "other port");
        let null = [ok[0], ("origin", "null"), ok[2]];
        assert!(csrf_refusal(&headers(&null)).is_some(), "opaque origin");
        let wrong = [ok[0], ok[1], ("x-requested-with", "XMLHttpRequest")];
        assert!(
            csrf_refusal(&headers(&wrong)).is_some(),
            "other header value"
        );
    }
}
