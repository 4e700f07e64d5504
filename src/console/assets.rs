//! The console's files, embedded in the binary with `include_bytes!` (no build step: the
//! sources under `src/console/assets/` are what is served, so the embedded copy is current by
//! construction). Served with a content hash as `ETag`, `Cache-Control: no-cache` (always
//! revalidated, `304` when unchanged: the URLs carry no version) and the console's CSP.

use hyper::header::{
    HeaderValue, CACHE_CONTROL, CONTENT_SECURITY_POLICY, ETAG, IF_NONE_MATCH, REFERRER_POLICY,
    X_CONTENT_TYPE_OPTIONS, X_FRAME_OPTIONS,
};
use hyper::HeaderMap;

use crate::http::{self, Resp};

/// Same-origin only: no inline script or style, no other host, never framed.
pub const CSP: &str =
    "default-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// One embedded file: its URL path, media type and bytes.
pub struct Asset {
    pub path: &'static str,
    pub content_type: &'static str,
    pub body: &'static [u8],
}

macro_rules! asset {
    ($file:literal, $ct:expr) => {
        Asset {
            path: concat!("/console/", $file),
            content_type: $ct,
            body: include_bytes!(concat!("assets/", $file)),
        }
    };
}

const JS: &str = "text/javascript; charset=utf-8";

/// Every file of the console. A unit test checks that this list and the directory agree.
pub const FILES: &[Asset] = &[
    asset!("index.html", "text/html; charset=utf-8"),
    asset!("console.css", "text/css; charset=utf-8"),
    asset!("favicon.svg", "image/svg+xml"),
    asset!("app.js", JS),
    asset!("api.js", JS),
    asset!("dom.js", JS),
    asset!("chart.js", JS),
    asset!("signin.js", JS),
    asset!("tokens.js", JS),
    asset!("create.js", JS),
    asset!("origins.js", JS),
    asset!("secret.js", JS),
    asset!("token.js", JS),
    asset!("usage.js", JS),
    asset!("abusepanel.js", JS),
    asset!("manage.js", JS),
    asset!("abuse.js", JS),
    asset!("audit.js", JS),
];

/// The files with their ETags, computed once at start-up.
pub struct Assets {
    /// `"` + 16 hex digits of the body's SHA-256 + `"`, one per entry of [`FILES`].
    etags: Vec<HeaderValue>,
}

impl Default for Assets {
    fn default() -> Self {
        use sha2::Digest;
        let etags = FILES
            .iter()
            .map(|f| {
                let hash = sha2::Sha256::digest(f.body);
                let hex: String = hash.iter().take(8).map(|b| format!("{b:02x}")).collect();
                HeaderValue::from_str(&format!("\"{hex}\""))
                    .unwrap_or(HeaderValue::from_static("\"0\""))
            })
            .collect();
        Assets { etags }
    }
}

impl Assets {
    /// Answers `GET /` (the page) and `GET /console/<file>`; `None` when no such file.
    pub fn respond(&self, path: &str, request: &HeaderMap) -> Option<Resp> {
        let path = if path == "/" {
            "/console/index.html"
        } else {
            path
        };
        let (file, etag) = FILES
            .iter()
            .zip(&self.etags)
            .find(|(f, _)| f.path == path)?;
        let fresh = request
            .get_all(IF_NONE_MATCH)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| {
                let t = t.trim();
                t == "*" || t.trim_start_matches("W/").as_bytes() == etag.as_bytes()
            });
        let mut resp = if fresh {
            http::empty(304)
        } else {
            http::bytes(200, file.content_type, file.body)
        };
        let h = resp.headers_mut();
        h.insert(ETAG, etag.clone());
        h.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
        h.insert(CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
        h.insert(X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
        h.insert(X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
        h.insert(REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
        Some(resp)
    }
}
